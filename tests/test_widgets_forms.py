"""The credentials form: fields, prefill rules, submit, and no secret left in widget state or a saved notebook."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import ipywidgets as w
import pytest

import toolkit
from toolkit.core.credentials import FIELDS, Secret
from toolkit.core.errors import ValidationError
from toolkit.widgets.forms import CredentialsForm, credentials_form
from .conftest import widget_tree

FAKE_SECRET = "fake-client-secret-Zq81xP"  # what the analyst "types"
ENV_SECRET = "env-secret-never-prefilled-7Hk2"  # in the environment: must not reach the form
CLIENT_ID = "visible-client-id-4821"


descendants = widget_tree


def synced_state(form: w.Widget) -> str:
    """Every synced trait of the form and its children, plus the whole widget registry, as one text."""
    states: list[Any] = [x.get_state() for x in descendants(form)]
    manager_state = getattr(w.Widget, "get_manager_state", None)
    if manager_state is not None:
        states.append(manager_state(drop_defaults=False))
    return json.dumps(states, default=repr)


def fill(form: CredentialsForm) -> None:
    form.inputs["institution"].value = "123456"
    form.inputs["client_id"].value = CLIENT_ID
    form.inputs["client_secret"].value = FAKE_SECRET


@pytest.mark.parametrize("service", sorted(FIELDS))
def test_fields_come_from_the_service_field_list(service: str) -> None:
    form = credentials_form(service)
    assert list(form.inputs) == [f.name for f in FIELDS[service]]
    for spec in FIELDS[service]:
        box = form.inputs[spec.name]
        assert isinstance(box, w.Password) == spec.secret, spec.name
        assert box.description == spec.label
        if spec.secret:
            assert box.value == ""
    assert form.credentials is None and not form.submitted


def test_non_secret_fields_prefill_from_arguments_env_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_UDDATA_CLIENT_ID", "id-from-env")
    monkeypatch.setenv("TOOLKIT_UDDATA_CLIENT_SECRET", ENV_SECRET)
    form = credentials_form("uddata", institution="654321")
    assert form.inputs["institution"].value == "654321"
    assert form.inputs["client_id"].value == "id-from-env"
    assert form.inputs["api_version"].value == "0.7.5"  # the field's default
    assert form.inputs["client_secret"].value == ""  # secrets are never prefilled
    assert ENV_SECRET not in synced_state(form)


def test_secret_or_unknown_prefill_is_refused() -> None:
    with pytest.raises(ValidationError, match="never prefilled"):
        credentials_form("uddata", client_secret="x")
    with pytest.raises(ValidationError, match="no field colour"):
        credentials_form("uddata", colour="red")
    with pytest.raises(ValidationError, match="no credentials form for 'nope'"):
        credentials_form("nope")


def test_submit_moves_secrets_into_credentials_and_blanks_the_form() -> None:
    form = credentials_form("uddata")
    fill(form)
    assert FAKE_SECRET in synced_state(form)  # control: the scan does see a typed secret
    form.button.click()
    assert form.submitted
    creds = form.credentials
    assert isinstance(creds, toolkit.Credentials) and creds.source == "form"
    assert isinstance(creds["client_secret"], Secret) and creds["client_secret"].reveal() == FAKE_SECRET
    assert creds["client_id"] == CLIENT_ID and creds["institution"] == "123456"
    assert form.inputs["client_secret"].value == ""
    state = synced_state(form)
    assert FAKE_SECRET not in state
    assert CLIENT_ID in state  # non-secret values stay visible
    assert "stored in memory; secrets cleared" in form.status.value
    for text in (repr(form), repr(creds), str(creds), repr(form.inputs["client_secret"]), form.status.value):
        assert FAKE_SECRET not in text


def test_missing_fields_are_named_and_typed_secrets_are_kept_not_shown() -> None:
    form = credentials_form("uddata")
    form.inputs["client_secret"].value = FAKE_SECRET
    assert form.submit() is None and not form.submitted
    assert "Missing: Institution number, Client id" in form.status.value
    assert form.inputs["client_secret"].value == ""  # blanked even on an incomplete submit
    assert FAKE_SECRET not in synced_state(form)
    form.inputs["institution"].value = "123456"
    form.inputs["client_id"].value = CLIENT_ID
    creds = form.submit()
    assert creds is not None and creds["client_secret"].reveal() == FAKE_SECRET  # not typed twice


def test_connect_uses_the_submitted_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("toolkit.uddata")
    fake.connect = lambda **kw: calls.append(kw) or "client"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toolkit.uddata", fake)
    form = credentials_form("uddata")
    with pytest.raises(ValidationError, match="not been submitted"):
        form.connect()
    fill(form)
    form.submit()
    assert form.connect(api_version="1.0") == "client"
    assert calls[0]["client_secret"].reveal() == FAKE_SECRET and calls[0]["api_version"] == "1.0"


NOTEBOOK_CELLS = [
    "import os\nimport toolkit\nform = toolkit.widgets.credentials_form('uddata', institution='123456')\nform",
    # what the analyst types (read from the environment here so the secret is not in the cell's source)
    "form.inputs['client_id'].value = os.environ['FORM_TEST_CLIENT_ID']\n"
    "form.inputs['client_secret'].value = os.environ['FORM_TEST_SECRET']",
    "form.submit()\nprint(form.credentials)\nprint(repr(form), form.status.value)\nform.credentials",
]


@pytest.mark.notebook
def test_a_notebook_saved_with_widget_state_holds_no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("FORM_TEST_SECRET", FAKE_SECRET)
    monkeypatch.setenv("FORM_TEST_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TOOLKIT_UDDATA_CLIENT_SECRET", ENV_SECRET)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = nbformat.writes(nb)
    assert FAKE_SECRET not in saved and ENV_SECRET not in saved
    # the notebook does hold widget state and outputs, so the scan above could have found a secret
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = [m["model_name"] for m in state.values()]
    assert "PasswordModel" in models and "TextModel" in models
    assert CLIENT_ID in json.dumps(state)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "application/vnd.jupyter.widget-view+json" in outputs
    assert "stored in memory; secrets cleared" in outputs and "Secret('***')" in outputs
