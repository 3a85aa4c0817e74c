"""MlflowHook against a real MLflow server with basic auth (``mlflow server --app-name basic-auth``).

The credentials come from the connection's login and password and reach MLflow as its
``MLFLOW_TRACKING_USERNAME``/``PASSWORD``; the tracking URI and every link the hook builds (the
links operators show in the UI) carry none, even when the connection's host was written with them.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops.airflow.hooks.mlflow import HTTP_LIMITS, MlflowHook

pytestmark = pytest.mark.integration

ADMIN = "mlops-admin"
PASSWORD = f"pw-{secrets.token_hex(12)}"


@pytest.fixture(scope="module")
def auth_server(start_mlflow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-auth")
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = {ADMIN}\n"
        f"admin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    with start_mlflow(
        root,
        extra_env={
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        },
        extra_args=("--app-name", "basic-auth"),
    ) as uri:
        yield uri


@pytest.fixture(autouse=True)
def clean_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook sets MLflow's credentials, limits and global URIs in its process: restore them."""
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    monkeypatch.setattr(tracking, "_tracking_uri", tracking._tracking_uri)
    monkeypatch.setattr(registry, "_registry_uri", registry._registry_uri)
    names = (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
    )
    for name in (*names, *(env for env, _ in HTTP_LIMITS.values())):
        was = os.environ.get(name)
        # setenv records the variable as it was (unset included), so teardown puts it back.
        monkeypatch.setenv(name, was or "")
        if was is None or name.endswith(("USERNAME", "PASSWORD")):
            monkeypatch.delenv(name)


def hook_for(monkeypatch: pytest.MonkeyPatch, conn_id: str, **connection: object) -> MlflowHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **connection}))
    return MlflowHook(conn_id)


def context() -> dict:
    ti = SimpleNamespace(dag_id="churn_score", task_id="score", try_number=1)
    return {"ti": ti, "run_id": "manual__auth-test", "logical_date": None}


@pytest.mark.parametrize(
    "connection",
    [
        pytest.param({"login": ADMIN, "password": PASSWORD}, id="login-and-password"),
        pytest.param({"userinfo": True}, id="credentials-written-into-the-host"),
    ],
)
def test_the_hook_authenticates_and_no_link_carries_the_credentials(
    auth_server: str, monkeypatch: pytest.MonkeyPatch, connection: dict
) -> None:
    host = auth_server
    if connection.pop("userinfo", False):
        host = auth_server.replace("http://", f"http://{ADMIN}:{PASSWORD}@")
    hook = hook_for(monkeypatch, "mlflow_auth", host=host, **connection)

    assert hook.tracking_uri == auth_server  # no userinfo
    url = hook.record_run(
        "auth-test", context(), name="score", role="scoring", tags={}, metrics={"rows": 1.0}
    )
    assert url.startswith(f"{auth_server}/#/runs/")
    assert hook.version_url("churn", "1") == f"{auth_server}/#/models/churn/versions/1"
    assert hook.reader.search_model_versions("name = 'churn'") == []  # the REST reader authenticates too
    for shown in (url, hook.tracking_uri, hook.ui_url, hook.version_url("churn", "1")):
        assert PASSWORD not in shown and "@" not in shown, shown


def test_without_credentials_the_server_refuses(auth_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.exceptions import MlflowException

    hook = hook_for(monkeypatch, "mlflow_anonymous", host=auth_server)
    with pytest.raises(MlflowException, match=r"401|Unauthorized|credentials"):
        hook.client.search_experiments()
    with pytest.raises(RuntimeError, match="answered 401"):
        hook.reader.search_model_versions("name = 'churn'")


def test_a_ui_url_with_userinfo_is_shown_without_it(
    auth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ui = f"http://{ADMIN}:{PASSWORD}@mlflow.example:5000/"
    hook = hook_for(
        monkeypatch, "mlflow_ui", host=auth_server, login=ADMIN, password=PASSWORD, extra={"ui_url": ui}
    )
    assert hook.run_url("abc") == "http://mlflow.example:5000/#/runs/abc"


@pytest.mark.parametrize(
    ("connection", "code"),
    [
        pytest.param({"login": ADMIN, "password": PASSWORD}, 3, id="with-the-connections-credentials"),
        pytest.param({}, 1, id="without-credentials"),
    ],
)
def test_make_serves_champion_lookup_logs_in_with_the_connection(
    auth_server: str, connection: dict, code: int
) -> None:
    """``python -m mlops registry champion`` (what ``make serve`` runs first): 3 is "no champion", an
    answer only an authenticated client gets; 1 is "registry unreachable" (here: 401)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps({"conn_type": "http", "host": auth_server, **connection})
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "plugins")
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "registry", "champion", "churn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stdout + done.stderr
    if code == 1:
        assert "401" in done.stderr or "nauthorized" in done.stderr, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
