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


def test_every_server_of_the_stack_listens_on_the_loopback_only(tmp_path: Path) -> None:
    """A stack with no pipeline, started for real: its sockets as the kernel bound them.

    Airflow's log servers bind every interface, so the stack runs without them; the scheduler's
    health server, the API server and MLflow are on 127.0.0.1.
    """
    import time
    import urllib.request

    from tests.embedded_stack import EmbeddedStack
    from tests.listening import listeners, pids_of

    (tmp_path / "include" / "pipelines").mkdir(parents=True)
    embedded = EmbeddedStack(tmp_path, settings=[], scenario=[])
    health_port = int(embedded.env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"])
    try:
        embedded.shell("scripts/stack.sh start", timeout=420)
        expected = {int(embedded.env["AIRFLOW_PORT"]), int(embedded.env["MLFLOW_PORT"]), health_port}
        deadline = time.monotonic() + 90
        while True:  # the scheduler's health server comes up after the API server answers
            found = listeners(pids_of(tmp_path / "run"))
            if expected <= {s.port for s in found} or time.monotonic() > deadline:
                break
            time.sleep(2)
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/health", timeout=5) as answer:
            assert answer.status == 200  # the scheduler runs, its health server with it
        assert {s.port for s in found} == expected, [str(s) for s in found]
        exposed = [str(s) for s in found if not s.loopback]
        assert exposed == [], f"listening beyond the loopback: {exposed}"
        # Every component runs (a crashed one would listen nowhere and pass the check above).
        import psutil

        airflow = psutil.Process(int((tmp_path / "run" / "airflow.pid").read_text()))
        running = " ".join(" ".join(p.cmdline()) for p in airflow.children(recursive=True))
        for component in ("scheduler --skip-serve-logs", "triggerer --skip-serve-logs", "dag-processor"):
            assert f"airflow {component}" in running, running
    finally:
        embedded.stop()


def source_env(local: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` after ``source scripts/env.sh`` for the state directory ``local``, with no
    signing key in the environment (as a shell that never set one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_CONN_MLOPS_SIGNING", "AIRFLOW_HOME")}
    return subprocess.run(
        ["bash", "-c", f"source scripts/env.sh && {command}"],
        cwd=ROOT,
        env={**env, "MLOPS_LOCAL_DIR": str(local)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_signing_key_is_generated_once_and_a_lost_one_is_never_replaced(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "model-signing.key"
    first = source_env(tmp_path, 'echo "$AIRFLOW_CONN_MLOPS_SIGNING"')
    assert first.returncode == 0, first.stderr
    key = key_file.read_text()
    assert len(key) == 64 and f'"password": "{key}"' in first.stdout
    assert (tmp_path / "model-signing.issued").is_file()
    assert source_env(tmp_path, 'echo "$AIRFLOW_CONN_MLOPS_SIGNING"').stdout == first.stdout

    key_file.unlink()  # lost: a fresh key would make every signed version unloadable
    lost = source_env(tmp_path, "echo ran")
    assert lost.returncode == 1 and "ran" not in lost.stdout
    assert f"error: the model-signing key {key_file} is missing, but a key was issued" in lost.stderr
    assert f"- Restore the key: copy it back to {key_file} (mode 600), or set" in lost.stderr
    assert "python -m mlops signing sign --pipeline P --version N --force" in lost.stderr
    assert not key_file.exists()

    key_file.write_text(key)  # restored from a backup
    assert source_env(tmp_path, 'echo "$AIRFLOW_CONN_MLOPS_SIGNING"').stdout == first.stdout


def test_a_registry_without_its_key_refuses_even_before_the_marker_existed(tmp_path: Path) -> None:
    """A state directory from before the marker: its MLflow registry says a key was issued."""
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "mlflow.db").write_bytes(b"SQLite format 3\0")
    done = source_env(tmp_path, "echo ran")
    assert done.returncode == 1 and "ran" not in done.stdout
    assert f"absent, but {tmp_path}/mlflow holds a registry" in done.stderr
    assert not (tmp_path / "secrets" / "model-signing.key").exists()
