"""`scripts/serve.sh` (`make serve`) against a real MLflow server, without Airflow.

A small champion is trained, logged and registered straight through the package's functions; the
script serves it with `mlflow models serve`, and the HTTP answers must equal the batch scorer's
(the same pyfunc loaded in process) for the same rows. Also: a missing column is refused with its
name, the script refuses to start without a champion or on a taken port, and stopping the server's
process group leaves nothing behind.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
UNSIGNED = "serve_test_unsigned"
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


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def server(mlflow_server: str, champion: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", str(SERVE)],
            env=_env(mlflow_server, PIPELINE=MODEL, SERVE_PORT=str(port)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for_http(f"{running.url}/ping", proc, START_TIMEOUT_S, running.tail)
        yield running
    finally:
        if proc.returncode is None:
            _stop(proc)


def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(body, allow_nan=False).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def dataframe_split(frame: pd.DataFrame) -> dict[str, Any]:
    """The ``dataframe_split`` request body; NaN and None become JSON null."""
    rows = [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False, name=None)]
    return {"dataframe_split": {"columns": list(frame.columns), "data": rows}}


def test_refuses_without_champion(mlflow_server: str, client) -> None:
    from mlops.registry.champion import ensure_model

    ensure_model(client, NO_ALIAS)  # a registered model, but no alias on it
    for name in (NO_ALIAS, "serve_test_never_registered"):
        done = _run_script(_env(mlflow_server, PIPELINE=name, SERVE_PORT=str(free_port())))
        assert done.returncode != 0, done.stdout
        assert f"no champion yet: run {name}_train first" in done.stderr, done.stderr


def test_refuses_an_unsigned_champion_before_loading_it(mlflow_server: str, client, champion: str) -> None:
    from mlops.registry.champion import ensure_model

    signed = client.get_model_version(MODEL, champion)
    ensure_model(client, UNSIGNED)
    version = client.create_model_version(
        UNSIGNED, signed.source, run_id=signed.run_id, model_id=signed.source.removeprefix("models:/")
    ).version
    client.set_registered_model_alias(UNSIGNED, "champion", version)
    done = _run_script(_env(mlflow_server, PIPELINE=UNSIGNED, SERVE_PORT=str(free_port())))
    assert done.returncode != 0, done.stdout
    assert f"model {UNSIGNED} version {version} is unsigned" in done.stderr, done.stderr
    assert f"refusing to serve models:/{UNSIGNED}/{version}" in done.stderr, done.stderr


def test_refuses_a_taken_port(mlflow_server: str, champion: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = _run_script(_env(mlflow_server, PIPELINE=MODEL, SERVE_PORT=str(port)))
    assert done.returncode != 0, done.stdout
    assert f"port {port} is taken" in done.stderr, done.stderr


def test_served_scores_equal_batch_scores(server: Server, pipeline: Pipeline, frames) -> None:
    import mlflow

    rows = model_input(frames["score"], pipeline)
    assert rows.isna().any().any(), "the scored rows should include missing values"
    batch = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict(rows)

    status, body = _post(server.url, dataframe_split(rows))
    assert status == 200, f"{status}: {body[:2000]}\n{server.tail()}"
    served = np.asarray(json.loads(body)["predictions"], dtype="float64")
    assert served.shape == (len(rows),)
    assert np.ptp(served) > 0.01, "the model should not score every row alike"
    np.testing.assert_allclose(served, np.asarray(batch, dtype="float64"), rtol=0, atol=1e-6)

    status, body = _post(server.url, dataframe_split(rows.iloc[[3]]))  # one row on its own
    assert status == 200, body[:2000]
    assert json.loads(body)["predictions"] == pytest.approx([float(batch[3])], abs=1e-6)


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


def test_a_feature_null_in_the_example_is_still_refused_when_missing(
    server: Server, pipeline: Pipeline, frames
) -> None:
    column = pipeline.categorical_features[0]
    rows = model_input(frames["score"].head(3), pipeline).drop(columns=[column])
    status, body = _post(server.url, dataframe_split(rows))
    assert status == 400, f"{status}: {body[:2000]}"
    assert_refused_for_missing(body, column)


def test_missing_column_is_refused_by_name(server: Server, pipeline: Pipeline, frames) -> None:
    rows = model_input(frames["score"].head(3), pipeline).drop(columns=["autopay"])
    status, body = _post(server.url, dataframe_split(rows))
    assert status == 400, f"{status}: {body[:2000]}"
    assert_refused_for_missing(body, "autopay")


def assert_refused_for_missing(body: str, column: str) -> None:
    """The scoring server's answer to a request without ``column``: a client error naming it."""
    answer = json.loads(body)
    assert (answer["error_code"], answer["error_class"]) == (
        "INVALID_PARAMETER_VALUE",
        "SCHEMA_ENFORCEMENT_FAILED",
    ), body[:2000]
    assert answer["message"].endswith(f"Error: Model is missing inputs ['{column}']."), body[:2000]


def test_stops_cleanly(server: Server) -> None:
    sid = server.proc.pid
    assert len(_session_members(sid)) >= 2, "expected the mlflow CLI and its uvicorn server"
    _stop(server.proc)
    assert server.proc.returncode is not None
    assert _session_members(sid) == [], f"left running: {_session_members(sid)}"
    with socket.socket() as sock, pytest.raises(OSError):
        sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
