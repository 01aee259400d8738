"""Secrets never show themselves; credentials come from arguments, the environment or a .env file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from toolkit.core.credentials import Credentials, Secret, env_name, load_credentials


def test_secret_never_shows() -> None:
    s = Secret("very-secret-value-1")
    for shown in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s})):
        assert "very-secret-value-1" not in shown
    assert s.reveal() == "very-secret-value-1"
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_credentials_repr_and_kwargs() -> None:
    creds = Credentials("uddata", {"institution": "123456", "client_id": "id", "client_secret": "cs-abcdef-123"})
    assert "cs-abcdef-123" not in repr(creds)
    kwargs = creds.to_kwargs()
    assert isinstance(kwargs["client_secret"], Secret) and kwargs["client_secret"].reveal() == "cs-abcdef-123"
    assert creds.missing() == []
    assert Credentials("uddata", {"institution": "123456"}).missing() == ["client_id", "client_secret"]


def test_load_from_environment_then_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"{env_name('dokus', 'password')}=from-dotenv-pw\n{env_name('dokus', 'email')}=dot@x.no\n")
    env = {env_name("dokus", "email"): "env@x.no", env_name("dokus", "base_url"): "http://127.0.0.1:1"}
    creds = load_credentials("dokus", env=env, dotenv=dotenv, use_keyring=False)
    assert creds["email"] == "env@x.no"  # the environment wins over .env
    assert creds["password"].reveal() == "from-dotenv-pw"
    assert "from-dotenv-pw" not in repr(creds)
    assert set(creds.source.split(", ")) == {"environment", ".env"}
