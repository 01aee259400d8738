"""``toolkit dokus check``: the live contract check of Dokus (read-only calls; see :mod:`toolkit.core.check`).

The password is read from ``TOOLKIT_DOKUS_PASSWORD`` (environment, ``.env``, keyring) or asked for with a
hidden prompt — never taken from the command line. Exit codes: 0 all ok, 1 something differs, 3 a call
failed or an error stopped the check.
"""

from __future__ import annotations

from typing import Any

from ..core.check import add_check_command

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``toolkit dokus …`` to the ``toolkit`` command line."""
    dokus = subparsers.add_parser("dokus", help="Dokus: check what the toolkit assumes of the service")
    sub = dokus.add_subparsers(dest="dokus_command", required=True)
    add_check_command(sub, "dokus")
