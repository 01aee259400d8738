"""Every module of the toolkit exports what its ``__all__`` names: ``from toolkit.core.bulk import *`` and the
like work (``__all__`` once named a ``check_concurrency`` that bulk.py did not have)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import toolkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(toolkit.__path__, "toolkit.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_star_import_of_every_module_works(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    space: dict = {}
    exec(f"from {name} import *", space)  # noqa: S102 - the idiom under test
    assert set(exported) <= set(space)


def test_bulk_exports_the_one_concurrency_check() -> None:
    space: dict = {}
    exec("from toolkit.core.bulk import *", space)  # noqa: S102
    assert space["check_concurrency"](8, "uddata") == 8
