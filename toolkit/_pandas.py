"""What the toolkit adds to pandas, installed as soon as pandas is imported — not before.

``import toolkit`` and ``toolkit.sandbox.start()`` need no pandas; loading pandas loads numpy and pyarrow too
(some 180 MB of libraries, most of a notebook's first cell on a cold start). So when pandas is not imported
yet, a finder on ``sys.meta_path`` waits for it and, right after pandas' own import, imports
:mod:`toolkit.core.frames`, which registers the ``"cpr"``/``"redacted"`` dtypes and pandas' display and
Parquet hooks (:mod:`toolkit.core.cpr_dtype`) and, inside IPython, the notebook's table of every frame.
Nothing changes for code: any pandas object exists only after pandas is imported, and by then these are in
place.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any, Sequence

MODULES = ("toolkit.core.cpr_dtype", "toolkit.core.frames")


def _install() -> None:
    # a toolkit module that is importing pandas right now (frames, cpr_dtype) finishes the work itself
    if not any(name in sys.modules for name in MODULES):
        importlib.import_module("toolkit.core.frames")


class _AfterPandas(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for ``pandas`` it asks the other finders and runs :func:`_install` after the
    module has executed."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> Any:
        if fullname != "pandas":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _install()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def with_pandas() -> None:
    """Install the toolkit's pandas additions now if pandas is imported, else right after it is."""
    if "pandas" in sys.modules:
        _install()
    elif not any(isinstance(finder, _AfterPandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterPandas())
