"""How a connection names the MLflow tracking server (shared by MlflowHook and the preflight)."""

from __future__ import annotations

import pytest

from mlops.settings import tracking_uri
from mlops.tools.preflight import mlflow_uri_from_env


@pytest.mark.parametrize(
    ("host", "port", "schema", "uri"),
    [
        ("http://mlflow:5000", None, None, "http://mlflow:5000"),
        ("https://mlflow.example.com/", 443, "ignored", "https://mlflow.example.com"),
        ("mlflow", 5000, None, "http://mlflow:5000"),
        ("mlflow", None, "https", "https://mlflow"),
        ("", 5000, "http", None),
        (None, None, None, None),
    ],
)
def test_tracking_uri(host: str | None, port: int | None, schema: str | None, uri: str | None) -> None:
    assert tracking_uri(host, port, schema) == uri


def test_the_preflight_reads_the_connection_in_either_form_like_the_hook() -> None:
    as_json = {"AIRFLOW_CONN_MLFLOW_DEFAULT": '{"conn_type": "http", "host": "mlflow", "port": 5000}'}
    as_uri = {"AIRFLOW_CONN_MLFLOW_DEFAULT": "http://mlflow:5000"}
    assert mlflow_uri_from_env("mlflow_default", as_json) == "http://mlflow:5000"
    assert mlflow_uri_from_env("mlflow_default", as_uri) == "http://mlflow:5000"
    assert mlflow_uri_from_env("mlflow_default", {"MLFLOW_TRACKING_URI": "http://x:1"}) == "http://x:1"
