"""The emulators' reading of a multipart upload, on every Starlette that pyproject.toml allows."""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["read_form"]


def read_form(request: Any, *, max_files: int, max_fields: int, max_part_size: int) -> Any:
    """``request.form(...)`` of an emulator's upload (awaitable). ``max_part_size`` (the largest text field)
    is passed where Starlette takes it (0.44 and newer); older Starlette, down to pyproject's lower bound,
    has no such argument and reads the parts without it (file parts are never limited by it)."""
    if _form_takes_max_part_size(type(request)):
        return request.form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
    return request.form(max_files=max_files, max_fields=max_fields)


@functools.cache
def _form_takes_max_part_size(request_type: type) -> bool:
    return "max_part_size" in inspect.signature(request_type.form).parameters
