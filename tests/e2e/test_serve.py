"""`scripts/serve.sh` (`make serve`) against a real MLflow server, without Airflow.

The script starts the package's serving service (python -m mlops serve; the service itself is
tested end to end in tests/serving, `make test-serving`). Here: its argument checks, the refusals
before it starts (MLflow not answering, a taken port, an unknown pipeline), a start before any
champion (up, not ready, 503 naming why), a clean stop, and that the logged model's signature is the
pipeline YAML's, not the example's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.embedded_stack import free_port, wait_for_http

from mlops.config.pipeline import Pipeline, TrainingParams, load_pipeline
from mlops.model.pyfunc import log_model, model_input
from mlops.tools import scenario

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "scripts" / "serve.sh"
CHURN = ROOT / "include" / "pipelines" / "churn.yaml"
# Registered-model names of this module's own: the session's MLflow server is shared.
MODEL = "serve_test"
NO_ALIAS = "serve_test_no_alias"
START_TIMEOUT_S = 120

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return load_pipeline(CHURN)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """Three seeded scenario days (defects included: nulls, unknown categories, out-of-range)."""
    config = scenario.ScenarioConfig(rows_per_day=500, seed=7)
    days = {"train": dt.date(2026, 1, 5), "valid": dt.date(2026, 1, 6), "score": dt.date(2026, 1, 7)}
    return {part: scenario.generate_day(config, day) for part, day in days.items()}


@pytest.fixture(scope="module")
def client(mlflow_server: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


@pytest.fixture(scope="module")
def champion(
    mlflow_server: str, client, pipeline: Pipeline, frames, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Train, log and register a small model and point ``champion`` at it; yields its version."""
    import mlflow

    from mlops.airflow.hooks.signing import signing_key
    from mlops.registry.champion import register_version
    from mlops.registry.signing import record_trial_upload, sign_version
    from mlops.training.experiment import experiment_id
    from mlops.training.fit import prepare_frame, train_model

    train, valid = (
        prepare_frame(frames[part].dropna(subset=[pipeline.target]), pipeline) for part in ("train", "valid")
    )
    params = TrainingParams(n_estimators=30, max_depth=4, early_stopping_rounds=10)
    result = train_model(train, valid, params, device="cpu", seed=1, nthread=1, log=lambda _m: None)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    try:
        # An explicit experiment: set_experiment would leave it active for later modules.
        # An example whose first category is all null: the signature must still require it.
        example = model_input(frames["valid"].head(5), pipeline)
        example[pipeline.categorical_features[0]] = pd.array([pd.NA] * len(example), dtype="string")
        workdir = tmp_path_factory.mktemp("model")
        with mlflow.start_run(experiment_id=experiment_id(client, "serve-test")) as run:
            logged = record_trial_upload(
                client,
                signing_key(),
                run.info.run_id,
                lambda: log_model(result.booster, CHURN.read_text(), example, workdir),
            )
        version = register_version(
            client,
            MODEL,
            run_id=run.info.run_id,
            source=logged.model_uri,
            model_id=logged.model_id,
            airflow_run_id="test",
            tags={},
        )
        sign_version(client, MODEL, version.version, signing_key())
        client.set_registered_model_alias(MODEL, "champion", version.version)
        yield version.version
    finally:
        mlflow.set_tracking_uri(previous)


def _env(mlflow_server: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = mlflow_server
    env["MLFLOW_PORT"] = mlflow_server.rsplit(":", 1)[1]
    return {**env, **extra}


def _session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of a session: what a server started with setsid left running."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's whole process group, wait, then SIGKILL whatever ignored it."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    deadline = time.monotonic() + 10
    while _session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # the CLI's uvicorn child finishes its own shutdown
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _run_script(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """serve.sh expected to refuse: run it to its exit (and end its group if it started serving)."""
    proc = subprocess.Popen(
        ["bash", str(SERVE)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        out, err = proc.communicate()
        pytest.fail(f"serve.sh did not exit in {timeout:.0f} s:\n{out}\n{err}"[-3000:])
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def include(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An include folder whose churn pipeline is named ``NO_ALIAS`` (the service serves pipelines)."""
    import yaml

    data = yaml.safe_load(CHURN.read_text())
    data["name"] = NO_ALIAS
    folder = tmp_path_factory.mktemp("include")
    (folder / "pipelines").mkdir()
    (folder / "pipelines" / f"{NO_ALIAS}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"PIPELINE": "Churn!"}, "PIPELINE must be a pipeline name", id="pipeline"),
        pytest.param({"SERVE_PORT": "70000"}, "SERVE_PORT must be a port number", id="port"),
        pytest.param({"SERVE_WORKERS": "0"}, "SERVE_WORKERS must be a number of processes", id="workers"),
    ],
)
def test_refuses_bad_arguments(mlflow_server: str, extra: dict[str, str], message: str) -> None:
    done = _run_script(_env(mlflow_server, **extra))
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_refuses_when_mlflow_does_not_answer(mlflow_server: str) -> None:
    done = _run_script(_env(f"http://127.0.0.1:{free_port()}", SERVE_PORT=str(free_port())))
    assert done.returncode != 0 and "does not answer (start the stack: make run)" in done.stderr, done.stderr


def test_refuses_a_taken_port(mlflow_server: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = _run_script(_env(mlflow_server, SERVE_PORT=str(port)))
    assert done.returncode != 0, done.stdout
    assert f"port {port} is taken" in done.stderr, done.stderr


def test_refuses_an_unknown_pipeline(mlflow_server: str, include: Path) -> None:
    env = _env(
        mlflow_server, PIPELINE="never_declared", SERVE_PORT=str(free_port()), MLOPS_INCLUDE_DIR=str(include)
    )
    done = _run_script(env)
    assert done.returncode == 2, done.stdout
    assert f"no pipeline 'never_declared' (known: ['{NO_ALIAS}'])" in done.stderr, done.stderr


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_starts_before_a_champion_not_ready_then_stops_cleanly(
    mlflow_server: str, client, include: Path, tmp_path: Path
) -> None:
    from mlops.registry.champion import ensure_model

    ensure_model(client, NO_ALIAS)  # a registered model, but no champion move on it
    port = free_port()
    env = _env(
        mlflow_server,
        PIPELINE=NO_ALIAS,
        SERVE_PORT=str(port),
        MLOPS_INCLUDE_DIR=str(include),
        MLOPS_LAKE_ROOT=str(tmp_path / "lake"),
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", str(SERVE)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", proc, START_TIMEOUT_S, lambda: log.read_text(errors="replace")[-3000:])
        status, ready = _get(f"{url}/ready")
        assert status == 503 and ready["ready"] is False, ready
        assert "no signed champion move yet" in ready["missing"][NO_ALIAS], ready
        request = urllib.request.Request(
            f"{url}/{NO_ALIAS}/predict",
            data=b"[{}]",
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 503
        assert f"note: {NO_ALIAS} has no champion yet" in log.read_text()
    finally:
        sid = proc.pid
        _stop(proc)
    assert _session_members(sid) == [], f"left running: {_session_members(sid)}"
    with socket.socket() as sock, pytest.raises(OSError):
        sock.connect(("127.0.0.1", port))


def test_the_signature_is_the_pipeline_yaml_not_the_example(champion: str, pipeline: Pipeline) -> None:
    import mlflow

    from mlops.model.pyfunc import input_schema

    inputs = mlflow.models.get_model_info(f"models:/{MODEL}/{champion}").signature.inputs
    assert inputs.to_dict() == input_schema(pipeline).to_dict()
    specs = {spec.name: spec for spec in inputs.inputs}
    assert list(specs) == pipeline.features
    assert all(spec.required for spec in specs.values())
    for name, spec in specs.items():
        assert spec.type.name == ("string" if name in pipeline.categorical_features else "double"), name
