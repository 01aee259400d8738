"""A credentials form for one service, that never keeps a secret in widget state.

    form = toolkit.widgets.credentials_form("uddata")   # shows the fields Uddata+ needs
    # … type the values, press Submit …
    ud = form.connect()                                  # or form.credentials → toolkit.Credentials

The fields are those of ``toolkit.core.credentials.FIELDS[service]``. Non-secret fields may be prefilled
(keyword arguments, then ``TOOLKIT_<SERVICE>_<FIELD>`` environment variables, then the field's default);
secret fields never are. On submit the values go into a :class:`toolkit.Credentials` object (secrets as
:class:`toolkit.Secret`) and every password box is blanked at once ("read once, then blank it"), so no
secret stays in the widgets — nor in a notebook saved with widget state.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import ipywidgets as w

from ..core.credentials import FIELDS, Credentials, Field, Secret, env_name
from ..core.errors import ValidationError, service_name

__all__ = ["credentials_form", "CredentialsForm"]


class _PasswordBox(w.Password):
    """A password box whose ``repr`` never shows what was typed."""

    def __repr__(self) -> str:
        return f"Password(description={self.description!r}, value='***')"


def _check_service(service: str) -> list[Field]:
    if service not in FIELDS:
        raise ValidationError(f"no credentials form for {service!r}; choose one of {', '.join(FIELDS)}",
                              service="toolkit")
    return FIELDS[service]


class CredentialsForm(w.VBox):
    """The form for one service's credentials: text boxes, password boxes, Submit and a status line.

    * ``submit()`` does what the button does (for scripts and tests);
    * ``submitted`` tells whether a complete submit happened; ``credentials`` is then a
      :class:`toolkit.Credentials` (``None`` before);
    * ``connect(**overrides)`` returns the service's client.
    """

    def __init__(self, service: str, env: Mapping[str, str] | None = None, **prefill: Any) -> None:
        fields = _check_service(service)
        names = {f.name: f for f in fields}
        unknown = sorted(set(prefill) - set(names))
        if unknown:
            raise ValidationError(f"{service_name(service)} has no field {', '.join(unknown)}; its fields are "
                                  f"{', '.join(names)}", service=service)
        secret_given = sorted(k for k in prefill if names[k].secret)
        if secret_given:
            raise ValidationError(f"{', '.join(secret_given)} is secret and is never prefilled: type it into the "
                                  "form, or use toolkit.load_credentials() for secrets from the environment",
                                  service=service)
        env = os.environ if env is None else env
        self.service = service
        self.fields = fields
        self.credentials: Credentials | None = None
        self.submitted = False
        #: secrets read by a submit that was incomplete: kept (as Secret) so they need not be typed again
        self._kept: dict[str, Secret] = {}
        self.inputs: dict[str, w.Text | w.Password] = {}
        style = {"description_width": "170px"}
        layout = w.Layout(width="560px")
        for spec in fields:
            tip = spec.help or spec.label
            if not spec.required or spec.default is not None:
                tip += " (optional)" if not spec.required else f" (default {spec.default})"
            if spec.secret:
                box: w.Text | w.Password = _PasswordBox(description=spec.label, placeholder=tip, style=style,
                                                        layout=layout)
            else:
                value = prefill.get(spec.name)
                if value in (None, ""):
                    value = env.get(env_name(service, spec.name)) or spec.default or ""
                box = w.Text(value=str(value), description=spec.label, placeholder=tip, style=style,
                             layout=layout)
            box.tooltip = tip
            self.inputs[spec.name] = box
        self.title = w.HTML(f"<b>{service_name(service)} credentials</b>")
        self.button = w.Button(description="Submit", button_style="primary", icon="check")
        self.status = w.Label(value="Fill in the fields and press Submit. Secrets stay in memory only.")
        self.button.on_click(lambda _: self.submit())
        super().__init__([self.title, *self.inputs.values(), w.HBox([self.button, self.status])])

    # -- actions ----------------------------------------------------------------------------------------
    def submit(self) -> Credentials | None:
        """Read the fields, blank every password box, and keep the values as :attr:`credentials`.

        Returns the credentials, or ``None`` (with the missing fields named in the status line) when a
        required field is empty.
        """
        values: dict[str, Any] = {}
        for spec in self.fields:
            box = self.inputs[spec.name]
            if spec.secret:
                typed = box.value
                box.value = ""  # read once, then blank it
                if typed:
                    self._kept[spec.name] = Secret(typed)
                elif self.credentials is not None and spec.name in self.credentials:
                    self._kept.setdefault(spec.name, self.credentials[spec.name])
                if spec.name in self._kept:
                    values[spec.name] = self._kept[spec.name]
                    box.placeholder = "stored (type to replace)"
            else:
                text = str(box.value).strip()
                if text:
                    values[spec.name] = text
        missing = [spec.label for spec in self.fields
                   if spec.required and spec.default is None and spec.name not in values]
        if missing:
            kept = [spec.label for spec in self.fields if spec.name in self._kept]
            self.status.value = (f"Missing: {', '.join(missing)}. Fill in and press Submit again."
                                 + (f" ({', '.join(kept)} kept in memory.)" if kept else ""))
            return None
        self.credentials = Credentials(self.service, values, source="form")
        self.submitted = True
        self._kept.clear()
        self.status.value = (f"Credentials for {service_name(self.service)} stored in memory; secrets cleared "
                             "from the form. Next: form.connect()")
        return self.credentials

    def connect(self, **overrides: Any) -> Any:
        """The service's client made from the submitted credentials (``toolkit.<service>.connect``)."""
        if self.credentials is None:
            raise ValidationError("the credentials form has not been submitted yet: fill it in and press Submit",
                                  service=self.service)
        return self.credentials.connect(**overrides)

    def __repr__(self) -> str:
        state = "submitted" if self.submitted else "not submitted"
        return f"<CredentialsForm {service_name(self.service)}: {state}>"


def credentials_form(service: str, **prefill: Any) -> CredentialsForm:
    """A form with the fields ``service`` needs (``"uddata"``, ``"dokus"``, ``"livingdocs"`` …).

    Non-secret fields can be prefilled by keyword (``credentials_form("uddata", institution="123456")``)
    or from ``TOOLKIT_<SERVICE>_<FIELD>`` environment variables; secret fields are always typed in.
    After Submit, ``form.credentials`` holds the values and ``form.connect()`` gives the client.
    """
    return CredentialsForm(service, **prefill)
