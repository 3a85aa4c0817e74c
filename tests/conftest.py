"""Test session setup: an Airflow home of its own, so tests never touch a running stack's state.

Set before anything imports Airflow, which reads its configuration once at import.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from tests.airflow_home import isolate_airflow
from tests.embedded_stack import wait_for_http

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="mlops-test-airflow-"))

isolate_airflow(_HOME)
# The model-signing key of this session (every registered version is signed, every load verified).
SIGNING_SECRET = f"test-signing-{os.urandom(16).hex()}"
os.environ["AIRFLOW_CONN_MLOPS_SIGNING"] = json.dumps({"conn_type": "generic", "password": SIGNING_SECRET})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database in the session's Airflow home."""
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "db", "migrate"], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return _HOME / "airflow.db"


@contextmanager
def moto_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A moto S3 server in its own process on loopback, for the block; yields its endpoint URL."""
    import time
    import urllib.request

    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                assert server.poll() is None, "the moto S3 server exited during start"
                assert time.monotonic() < deadline, "the moto S3 server did not answer in 30 s"
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def start_moto() -> Callable[..., AbstractContextManager[str]]:
    """``moto_server`` for tests that need a server of their own (other settings, other scope)."""
    return moto_server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server reached through ``aws_default``'s ``endpoint_url``."""
    with moto_server() as endpoint:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }
        )
        try:
            yield endpoint
        finally:
            os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)


@pytest.fixture
def s3_client(s3_endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@contextmanager
def mlflow_process(
    root: Path,
    *,
    destination: str | None = None,
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """A real MLflow tracking server (SQLite backend, proxied artifacts under ``destination``, by
    default ``root/artifacts``) on a free loopback port, for the block; yields the tracking URI.

    The server runs in a session of its own, so teardown ends its whole process group (the CLI
    spawns uvicorn/gunicorn children).
    """
    import signal
    from contextlib import suppress

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # No job runner: its pool of huey consumers is slow to start and stop, and no test needs it.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.update(extra_env or {})
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(mlflow_cli),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                destination or str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                *extra_args,
            ],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    def stop() -> None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        # The CLI's children (the uvicorn server, job runners) may outlive it: end the whole group.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    try:
        wait_for_http(f"{uri}/health", proc, 90, log_tail)
    except BaseException:
        stop()
        raise
    try:
        yield uri
    finally:
        stop()


@pytest.fixture(scope="session")
def start_mlflow() -> Callable[..., AbstractContextManager[str]]:
    """``mlflow_process`` for tests that need a server of their own (S3 artifacts, basic auth)."""
    return mlflow_process


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's MLflow server (``mlflow_process``), reached through ``mlflow_default``."""
    with mlflow_process(tmp_path_factory.mktemp("mlflow")) as uri:
        previous_conn = os.environ.get("AIRFLOW_CONN_MLFLOW_DEFAULT")
        os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps({"conn_type": "http", "host": uri})
        try:
            yield uri
        finally:
            if previous_conn is None:
                os.environ.pop("AIRFLOW_CONN_MLFLOW_DEFAULT", None)
            else:
                os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = previous_conn
