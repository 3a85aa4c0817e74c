"""The model-signing key comes from the ``mlops_signing`` connection's password, or a message that
says where to put it; a key too short is refused naming the connection."""

from __future__ import annotations

import json

import pytest

from mlops.airflow.hooks.signing import SIGNING_CONN_ID, signing_key
from mlops.registry.signing import SigningKey

MISSING = (
    "no connection 'mlops_signing_missing': models and champion moves are signed and verified with the "
    "key in its password (set AIRFLOW_CONN_MLOPS_SIGNING_MISSING or add it in Admin > Connections). If "
    "this deployment had a key, restore that one: a new key leaves every signed version and move refused "
    "(docs/security.md)"
)


def test_a_missing_connection_says_where_the_key_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MLOPS_SIGNING_MISSING", raising=False)
    with pytest.raises(ValueError) as raised:
        signing_key("mlops_signing_missing")
    assert type(raised.value) is ValueError and str(raised.value) == MISSING
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_key_is_the_connections_password(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "a-signing-key-of-enough-characters"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_SIGNING_UNIT", json.dumps({"conn_type": "generic", "password": secret})
    )
    key = signing_key("mlops_signing_unit")
    assert key == SigningKey.from_text(secret, source="test")
    assert key.key_id == SigningKey(secret.encode()).key_id


def test_the_default_connection_is_mlops_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "the-default-connections-signing-key"
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SIGNING", json.dumps({"conn_type": "generic", "password": secret}))
    assert SIGNING_CONN_ID == "mlops_signing"
    assert signing_key().secret == secret.encode()


@pytest.mark.parametrize(("password", "why"), [(None, "empty"), ("short", "too short")])
def test_an_empty_or_short_password_is_refused_naming_the_connection(
    monkeypatch: pytest.MonkeyPatch, password: str | None, why: str
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_SIGNING_WEAK", json.dumps({"conn_type": "generic", "password": password})
    )
    with pytest.raises(
        ValueError,
        match=rf"^the model-signing key in connection 'mlops_signing_weak' \(its password\) is {why}: ",
    ):
        signing_key("mlops_signing_weak")
