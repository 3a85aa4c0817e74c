"""The distributed stack for one test session: ``scripts/distributed.sh up`` before, ``down`` after.

The tests reach it only through its public interfaces: Airflow's REST API v2, the MLflow server
and the S3 endpoint, with the addresses and keys of the environment the stack generated. Teardown always runs ``down`` and then checks on its own that
no process of any service session is left and no service port still answers.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "distributed.sh"
# The caller's Airflow/MLflow/AWS settings (the root conftest's own included) must not leak into
# the stack: it builds its whole environment itself.
_LEAKY = ("AIRFLOW", "MLOPS_", "MLFLOW_", "AWS_")


def _script_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY)}


def _state_dir() -> Path:
    return Path(os.environ.get("DIST_DIR", ROOT / ".local" / "distributed"))


def _run_script(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), command],
        env=_script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _sessions(state: Path) -> dict[str, int]:
    """Service name -> session id, from the pid files (each service leads its own session)."""
    return {
        p.stem: int(p.read_text().strip()) for p in (state / "run").glob("*.pid") if p.read_text().strip()
    }


def _in_session(sid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-a", "-s", str(sid)], capture_output=True, text=True, check=False)
    return found.stdout.splitlines()


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stack_env(state: Path) -> dict[str, str]:
    """The environment the services run with: the generated env.sh, sourced in a clean shell."""
    shell = f"source {shlex.quote(str(state / 'env.sh'))} && env -0"
    dumped = subprocess.run(
        ["bash", "-c", shell], env=_script_env(), capture_output=True, check=True, timeout=30
    ).stdout
    return dict(item.split("=", 1) for item in dumped.decode().split("\0") if "=" in item)


@dataclass(frozen=True)
class Stack:
    state: Path
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.env['MLFLOW_PORT']}"

    @property
    def s3_endpoint(self) -> str:
        return self.env["MLOPS_S3_ENDPOINT"]

    def log(self, service: str) -> str:
        path = self.state / "logs" / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, service: str, lines: int = 40) -> str:
        return "\n".join(self.log(service).splitlines()[-lines:])

    def ports(self) -> list[int]:
        names = (
            "AIRFLOW__API__PORT",
            "MLFLOW_PORT",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
        )
        ports = [int(self.env[n]) for n in names]
        ports.append(int(self.s3_endpoint.rsplit(":", 1)[1]))
        ports.append(int(self.env["AIRFLOW__CELERY__BROKER_URL"].rsplit(":", 1)[1].split("/")[0]))
        ports.append(int(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit(":", 1)[1].split("/")[0]))
        return ports


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    state = _state_dir()
    # From whatever state a previous session left: down first (a no-op when nothing runs).
    first = _run_script("down", timeout=180)
    assert first.returncode == 0, f"down before up failed:\n{first.stdout}\n{first.stderr}"
    started = time.monotonic()
    up = _run_script("up", timeout=900)
    print(f"\ndistributed.sh up: {time.monotonic() - started:.0f}s")
    ports: list[int] = []
    try:
        if up.returncode != 0:
            pytest.fail(f"scripts/distributed.sh up failed:\n{up.stdout[-4000:]}\n{up.stderr[-6000:]}")
        env = _stack_env(state)
        running = Stack(state=state, env=env)
        ports = running.ports()
        yield running
    finally:
        sessions = _sessions(state)
        down = _run_script("down", timeout=300)
        left = {name: procs for name, sid in sessions.items() if (procs := _in_session(sid))}
        listening = [port for port in ports if _answers(port)]
        assert down.returncode == 0, f"scripts/distributed.sh down failed:\n{down.stdout}\n{down.stderr}"
        assert not left, f"processes left after down: {left}"
        assert not listening, f"ports still answering after down: {listening}"


@pytest.fixture(scope="session")
def s3(stack: Stack):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
        region_name=stack.env["AWS_DEFAULT_REGION"],
    )


@pytest.fixture(scope="session")
def mlflow_client(stack: Stack):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)
