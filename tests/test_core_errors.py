"""Errors are plain, name the service, say what to do, and never carry a secret or a raw CPR."""

from __future__ import annotations

import toolkit
from toolkit.core.errors import (APIError, ServerError, Unauthorized, ValidationError, error_class_for_status)


def test_tree_matches_design() -> None:
    for cls in (toolkit.BadRequest, toolkit.Unauthorized, toolkit.Forbidden, toolkit.NotFound, toolkit.Gone,
                toolkit.Conflict, toolkit.RateLimited, toolkit.ServerError):
        assert issubclass(cls, toolkit.APIError) and issubclass(cls, toolkit.ToolkitError)
    for cls in (toolkit.TransportError, toolkit.JobFailed, toolkit.JobTimeout, toolkit.ValidationError):
        assert issubclass(cls, toolkit.ToolkitError) and not issubclass(cls, toolkit.APIError)
    assert error_class_for_status(401) is Unauthorized
    assert error_class_for_status(502) is ServerError
    assert error_class_for_status(418) is APIError


def test_message_names_service_status_and_next_step() -> None:
    err = Unauthorized("token rejected", service="uddata", method="GET",
                       url="https://h/0.7.5/123456/billeder/0101901234?access_token=abcdefgh1", status=401)
    text = str(err)
    assert text.startswith("Uddata+: token rejected")
    assert "HTTP 401" in text and "What to do:" in text
    assert "0101901234" not in text and "abcdefgh1" not in text and "010190-****" in text
    assert "0101901234" not in repr(err)


def test_validation_error_lists_fields() -> None:
    err = ValidationError("the product was not saved", service="dokus",
                          errors={"price": ["Enter a number."], "name": ["This field is required."]})
    assert "price: Enter a number." in str(err) and "name: This field is required." in str(err)
    assert err.errors["price"] == ["Enter a number."]
