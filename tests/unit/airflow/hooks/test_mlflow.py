"""MlflowHook: the tracking URI, credentials and HTTP limits a connection gives, without putting a
password into any URI or link; the connection comes from an ``AIRFLOW_CONN_MLFLOW_DEFAULT``
variable, as a deployment's secrets backend hands it over."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlops.airflow.hooks.mlflow import HTTP_LIMITS, MlflowHook, without_userinfo

# What the hook writes into its task's environment: restored after every test.
WRITTEN = [env for env, _ in HTTP_LIMITS.values()] + ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch):
    """``connection(**fields)``: ``mlflow_default`` as those fields, and a fresh hook on it."""
    for env in WRITTEN:
        monkeypatch.setenv(env, "recorded")  # so that the test's end restores what was there before
        monkeypatch.delenv(env)

    def make(**fields: Any) -> MlflowHook:
        monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "http", **fields}))
        return MlflowHook()

    return make


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://alice:s3cret@mlflow:5000/path?q=1", "http://mlflow:5000/path?q=1"),
        ("https://alice@mlflow.example.com", "https://mlflow.example.com"),
        ("http://alice:p%40ss@host:5000", "http://host:5000"),
        ("http://alice:p@ss@host:5000/", "http://host:5000/"),  # an unescaped @ in the password
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("http://mlflow:5000/#/runs/abc@def", "http://mlflow:5000/#/runs/abc@def"),  # @ outside the host
    ],
)
def test_without_userinfo_drops_only_the_user_and_password(url: str, expected: str) -> None:
    assert without_userinfo(url) == expected


@pytest.mark.parametrize(
    ("fields", "uri"),
    [
        pytest.param({"host": "http://127.0.0.1:5000"}, "http://127.0.0.1:5000", id="the-host-is-the-uri"),
        pytest.param({"host": "http://127.0.0.1:5000/"}, "http://127.0.0.1:5000", id="trailing-slash"),
        pytest.param({"host": "mlflow", "port": 5000}, "http://mlflow:5000", id="host-and-port"),
        pytest.param(
            {"host": "mlflow.example.com", "schema": "https"},
            "https://mlflow.example.com",
            id="with-a-schema",
        ),
        pytest.param(
            {"host": "http://alice:s3cret@mlflow:5000"}, "http://mlflow:5000", id="credentials-in-the-host"
        ),
    ],
)
def test_the_tracking_uri_of_the_connection(connection, fields: dict[str, Any], uri: str) -> None:
    hook = connection(**fields)
    assert hook.tracking_uri == uri
    assert hook.ui_url == uri
    assert hook.run_url("abc") == f"{uri}/#/runs/abc"
    assert hook.version_url("churn", "4") == f"{uri}/#/models/churn/versions/4"


def test_a_connection_without_a_host_is_refused_by_name(connection) -> None:
    hook = connection(login="alice")
    with pytest.raises(ValueError) as raised:
        hook.tracking_uri  # noqa: B018
    assert str(raised.value) == "connection 'mlflow_default' has no host: set it to the tracking URI"


def test_the_ui_url_extra_is_the_browsers_address_without_credentials(connection) -> None:
    hook = connection(host="http://mlflow:5000", extra={"ui_url": "http://bob:pw@localhost:5000/"})
    assert (hook.tracking_uri, hook.ui_url) == ("http://mlflow:5000", "http://localhost:5000")
    assert hook.run_url("abc") == "http://localhost:5000/#/runs/abc"


@pytest.mark.parametrize(
    ("fields", "credentials"),
    [
        pytest.param({"host": "http://mlflow:5000"}, None, id="no-auth"),
        pytest.param(
            {"host": "http://mlflow:5000", "login": "alice", "password": "s3cret"},
            ("alice", "s3cret"),
            id="login-and-password",
        ),
        pytest.param({"host": "http://mlflow:5000", "login": "alice"}, ("alice", ""), id="login-only"),
        pytest.param(
            {"host": "http://al%40ice:p%3Ass@mlflow:5000"}, ("al@ice", "p:ss"), id="in-the-host-url-encoded"
        ),
        pytest.param(
            {"host": "http://carol:x@mlflow:5000", "login": "alice", "password": "s3cret"},
            ("alice", "s3cret"),
            id="the-login-wins-over-the-host",
        ),
    ],
)
def test_credentials_go_to_mlflows_environment_never_into_the_uri(
    connection, fields: dict[str, Any], credentials: tuple[str, str] | None
) -> None:
    hook = connection(**fields)
    assert hook.credentials == credentials
    uri = hook.tracking_uri  # sets MLflow's environment for this task's process
    assert "@" not in uri and "s3cret" not in uri
    if credentials is None:
        assert "MLFLOW_TRACKING_USERNAME" not in os.environ and "MLFLOW_TRACKING_PASSWORD" not in os.environ
    else:
        assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == credentials


def test_http_limits_come_from_the_extra_else_the_environment_else_the_bounds(
    connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert connection(host="http://mlflow:5000").http_limits == {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "45")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    hook = connection(host="http://mlflow:5000", extra={"http_retries": 0, "http_backoff_factor": 0.5})
    assert hook.http_limits == {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "45",  # the environment's
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # the extra's, over the environment's
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0.5",
    }
    hook.tracking_uri  # noqa: B018  # and they are MLflow's for the rest of the task
    assert {env: os.environ[env] for env in hook.http_limits} == hook.http_limits


@pytest.fixture
def registry() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server answering MLflow's version search with no versions; yields its URL and the
    headers of each request it got."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path.split("?", 1)[0], **dict(self.headers)})
            body = b'{"model_versions": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("fields", "authorization"),
    [
        pytest.param({"login": "alice", "password": "s3cret"}, "Basic YWxpY2U6czNjcmV0", id="with-a-login"),
        pytest.param({}, None, id="without"),
    ],
)
def test_the_registry_reader_sends_the_credentials_as_basic_auth(
    connection, registry: tuple[str, list[dict[str, str]]], fields: dict[str, Any], authorization: str | None
) -> None:
    url, seen = registry
    hook = connection(host=url, extra={"http_timeout_s": 7}, **fields)
    assert hook.reader.timeout_s == 7.0
    assert list(hook.reader.search_model_versions("name = 'churn'")) == []
    [request] = seen
    assert request["path"] == "/api/2.0/mlflow/model-versions/search"
    assert request.get("Authorization") == authorization
