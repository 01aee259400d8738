"""The public names the README and the notebooks call (connect, doctor, the widgets, the sandbox, the CPR
helpers) stay callable however often and in whatever order they are reached (a submodule named like a
function must not shadow the function)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

NAMES = ["toolkit.widgets.doctor", "toolkit.widgets.product_editor", "toolkit.widgets.credentials_form",
         "toolkit.widgets.image_grid", "toolkit.widgets.contact_sheet", "toolkit.contact_sheet", "toolkit.doctor",
         "toolkit.sandbox.start", "toolkit.uddata.connect", "toolkit.dokus.connect", "toolkit.uddata.cpr.validate",
         "toolkit.uddata.cpr.mask"]

PROBE = """
import importlib, toolkit
for mod in ("toolkit.widgets.doctor", "toolkit.widgets.product_editor", "toolkit.widgets.forms",
            "toolkit.widgets.images"):
    importlib.import_module(mod)   # e.g. a test or a user importing the submodule first
bad = []
for name in {names!r}:
    for _ in range(2):
        obj = toolkit
        for part in name.split(".")[1:]:
            obj = getattr(obj, part)
        if not callable(obj):
            bad.append(name)
print("BAD", sorted(set(bad)))
"""


def test_public_functions_stay_callable_after_their_submodules_are_imported() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE.format(names=NAMES)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BAD []" in out.stdout, out.stdout


@pytest.mark.parametrize("name", NAMES)
def test_public_name_is_callable_in_this_process(name: str) -> None:
    obj = importlib.import_module("toolkit")
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    assert callable(obj)
