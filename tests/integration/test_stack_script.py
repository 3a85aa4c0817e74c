"""The embedded stack's script refuses a taken port by name and stops cleanly when nothing runs."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def stack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "stack.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_taken_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            **os.environ,
            "MLOPS_LOCAL_DIR": str(tmp_path),
            "MLFLOW_PORT": str(port),
            "AIRFLOW_PORT": str(port),
        }
        env.pop("AIRFLOW_HOME", None)
        done = stack("start", env=env)
    assert done.returncode == 1
    assert f"port {port} is taken" in done.stderr
    assert not list((tmp_path / "run").glob("*.pid")), "no server may have been started"


def test_stop_and_status_when_nothing_runs(tmp_path: Path) -> None:
    env = {**os.environ, "MLOPS_LOCAL_DIR": str(tmp_path)}
    env.pop("AIRFLOW_HOME", None)
    assert stack("stop", env=env).returncode == 0
    status = stack("status", env=env)
    assert status.returncode == 0
    assert "mlflow: stopped" in status.stdout and "airflow: stopped" in status.stdout
