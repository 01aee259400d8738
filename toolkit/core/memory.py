"""Keep a long streamed job's resident memory small: :func:`small_pages`.

Arrow (pyarrow ≥ 20) allocates through mimalloc, which asks the kernel for transparent huge pages on
its arenas. On a kernel whose THP mode is ``madvise`` (the usual default) that turns each first touch
of a fresh 2 MiB area into 2 MiB of resident memory, however little of it is used: a streamed
Boknett pull to Parquet carried some 12 MB of mostly empty huge pages (``benchmarks/boknett_parquet.py``).

``with small_pages():`` sets the process's "no transparent huge pages" flag (Linux ``prctl``
``PR_SET_THP_DISABLE``) for as long as the block runs, and clears it afterwards unless it was already
set. Memory is then faulted in 4 KiB pages: what a page of the report uses, and no more. Nothing else
changes — huge pages already in place stay, allocations keep working — so it is safe around any code;
it only costs the small speed-up huge pages give to very large in-memory arrays, which a streamed job
does not build. Nested and concurrent blocks share the flag (a count); on systems without ``prctl``
(macOS, Windows, a kernel without THP) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections.abc import Iterator

__all__ = ["small_pages"]

_PR_SET_THP_DISABLE = 41
_PR_GET_THP_DISABLE = 42

_lock = threading.Lock()
_depth = 0
_set_here = False  #: whether the outermost block set the flag (and so clears it)


def _prctl() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None


def thp_disabled() -> bool | None:
    """Whether the process's "no transparent huge pages" flag is set (``None``: not a Linux with prctl)."""
    prctl = _prctl()
    if prctl is None:
        return None
    got = prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0)
    return None if got < 0 else bool(got)


@contextlib.contextmanager
def small_pages() -> Iterator[None]:
    """Fault memory in small pages while the block runs; see the module docstring."""
    global _depth, _set_here
    prctl = _prctl()
    if prctl is None:
        yield
        return
    with _lock:
        if _depth == 0:
            # set it only where it was clear (0); already set (1) or unknown (-1): leave it alone
            _set_here = prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0 and prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _set_here:
                prctl(_PR_SET_THP_DISABLE, 0, 0, 0, 0)
                _set_here = False
