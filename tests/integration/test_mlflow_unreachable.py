"""MLflow stopped or silent: the package's HTTP bounds make a task fail in seconds, naming MLflow."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from mlflow.exceptions import MlflowException

from mlops.airflow.hooks.mlflow import HTTP_LIMITS, MlflowHook


def hook_for(monkeypatch: pytest.MonkeyPatch, port: int, **extra: float) -> MlflowHook:
    for env, _ in HTTP_LIMITS.values():
        monkeypatch.setenv(env, "recorded")  # so that the test's end restores what was there before
        monkeypatch.delenv(env)
    connection = {"conn_type": "http", "host": f"http://127.0.0.1:{port}", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_UNREACHABLE", json.dumps(connection))
    return MlflowHook("mlflow_unreachable")


def test_the_package_bounds_mlflows_http_retries_unless_the_connection_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    hook = hook_for(monkeypatch, silent_port)
    assert hook.http_limits == {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    tuned = hook_for(monkeypatch, silent_port, http_timeout_s=2, http_retries=0)
    assert tuned.http_limits["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "2"
    assert tuned.http_limits["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_a_silent_mlflow_fails_the_registry_read_quickly_naming_it(
    monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    hook = hook_for(monkeypatch, silent_port, http_timeout_s=2, http_retries=1)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"MLflow at http://127.0.0.1:{silent_port} is unreachable"):
        hook.reader.search_model_versions("name = 'churn'")
    assert time.monotonic() - started < 10


def test_a_stopped_mlflow_fails_the_client_within_the_bounds(
    monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        hook = hook_for(monkeypatch, port, http_timeout_s=2, http_retries=1)
        started = time.monotonic()
        refused = (
            rf"^API request to http://127\.0\.0\.1:{port}/api/2\.0/mlflow/registered-models/search failed "
            r"with exception .*Connection refused"
        )
        with pytest.raises(MlflowException, match=refused):
            hook.client.search_registered_models()
        elapsed = time.monotonic() - started
    assert elapsed < 20, f"{elapsed:.0f}s: MLflow's own retries would take minutes"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
