"""A whole embedded stack of its own for a test: Airflow (LocalExecutor) and an MLflow server.

``scripts/stack.sh`` with its own state folder and free ports, the demo pipeline rewritten with
``python -m mlops stack-tools pipelines --set ...``, and landing data from ``python -m mlops.scenario``.
The replay and the browser tests drive it through Airflow's REST API (``Api``) or a browser.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = f"{ROOT}/.venv/bin/python"
USER, PASSWORD = "admin", "admin"


def wait_for_http(url: str, proc: subprocess.Popen, timeout_s: float, tail: Callable[[], str]) -> None:
    """Until ``url`` answers 200; fails naming the process's log ``tail`` when it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the server for {url} exited with {proc.returncode}:\n{tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer on {url} after {timeout_s} s:\n{tail()}")
        time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """Airflow's REST API v2 with a token from the login endpoint, as ``user``."""

    def __init__(self, base: str, user: str = USER, password: str = PASSWORD) -> None:
        self.base = base
        body = json.dumps({"username": user, "password": password}).encode()
        request = urllib.request.Request(
            f"{self.base}/auth/token", body, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            self.token = json.load(resp)["access_token"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}",
            json.dumps(body).encode() if body is not None else None,
            {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(f"{method} {path}: {exc.code} {detail}") from None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict]:
        found = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        return {t["task_id"]: t for t in found["task_instances"]}


@dataclass
class EmbeddedStack:
    """One embedded stack under ``state``; ``settings`` are ``key=value`` overrides of the demo YAML."""

    state: Path
    settings: list[str]
    scenario: list[str]
    parallelism: int = 4
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_"))
        }
        self.env = {
            **inherited,
            "MLOPS_LOCAL_DIR": str(self.state),
            "MLOPS_INCLUDE_DIR": str(self.state / "include"),
            "AIRFLOW_PORT": str(free_port()),
            "MLFLOW_PORT": str(free_port()),
            # Its own: a stack next to another must not lose its health server to a taken port.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "STACK_START_TIMEOUT": "300",
        }

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW_PORT']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.env['MLFLOW_PORT']}"

    @property
    def lake_root(self) -> Path:
        return self.state / "lake"

    def shell(self, command: str, timeout: float = 600) -> str:
        done = subprocess.run(
            ["bash", "-c", f"source scripts/env.sh && {command}"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def start(self) -> None:
        sets = " ".join(f"--set {s}" for s in self.settings)
        self.shell(
            f"{PYTHON} -m mlops stack-tools pipelines {ROOT}/include {self.state}/include --only churn {sets}"
        )
        self.shell(f"{PYTHON} -m mlops scenario --landing {self.state}/landing " + " ".join(self.scenario))
        self.shell("scripts/stack.sh start", timeout=420)

    def stop(self) -> None:
        subprocess.run(["bash", "scripts/stack.sh", "stop"], cwd=ROOT, env=self.env, timeout=120, check=False)

    def api(self, user: str = USER) -> Api:
        """The REST API as the admin, or as another user the stack was started with
        (``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` in ``env``), whose password Airflow generated."""
        if user == USER:
            return Api(self.airflow_url)
        passwords = json.loads((self.state / "airflow" / "passwords.json").read_text())
        return Api(self.airflow_url, user, passwords[user])

    def wait_until_quiet(self, days: int, timeout_s: float, quiet_s: float = 90) -> None:
        """Until ``days`` ingest runs have ended and no run of any stage has been active for ``quiet_s``."""
        api, deadline, quiet_since = self.api(), time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            ingest = api.runs("churn_ingest")
            ended = [r for r in ingest if r["state"] in ("success", "failed")]
            active = [
                r
                for dag in ("churn_ingest", "churn_train", "churn_monitor", "churn_score")
                for r in api.runs(dag)
                if r["state"] in ("queued", "running")
            ]
            if len(ended) >= days and not active:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > quiet_s:
                    return
            else:
                quiet_since = None
            time.sleep(10)
        raise AssertionError(f"the stack did not settle in {timeout_s:.0f}s (state under {self.state})")


def session_stack(
    base: Path,
    reuse: str | None,
    settings: list[str],
    scenario: list[str],
    *,
    days: int,
    settle_s: float,
    quiet_s: float,
    env: dict[str, str] | None = None,
) -> Iterator[EmbeddedStack]:
    """A test session's stack under ``base``, settled; ``reuse`` (``<state>:<airflow port>:<mlflow
    port>``) points at a running one instead, left running afterwards. ``env`` adds to the stack's
    environment (a running one was started with its own)."""
    if reuse:
        state, airflow_port, mlflow_port = reuse.rsplit(":", 2)
        embedded = EmbeddedStack(Path(state), settings, scenario)
        embedded.env.update(AIRFLOW_PORT=airflow_port, MLFLOW_PORT=mlflow_port)
        yield embedded
        return
    embedded = EmbeddedStack(base, settings, scenario, parallelism=4)
    embedded.env.update(env or {})
    try:
        embedded.start()
        embedded.wait_until_quiet(days, settle_s, quiet_s=quiet_s)
        yield embedded
    finally:
        embedded.stop()
