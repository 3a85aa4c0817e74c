"""``python -m mlops serve`` against a real MLflow server: the service end to end (``make test-serve``).

Two small champions are trained, logged, registered and signed straight through the package's
functions (as tests/e2e/test_serve.py does) and promoted with signed moves (``move_champion``). The
service runs as a uvicorn subprocess on a pipeline of its own (poll and flush every half second) and
a lake under the test's folder. Its scores must equal the batch scorer's (``score_partition``) on
the same rows; a promotion made while clients send requests switches the answers without one failed
request; ``/metrics`` moves; the answered rows are in the lake's served zone; and a version whose
file signature is broken never serves.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.embedded_stack import free_port, wait_for_http
from tests.signed_models import register_signed

from mlops.config.pipeline import Pipeline, TrainingParams, load_pipeline
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir
from mlops.tools import scenario

ROOT = Path(__file__).resolve().parents[2]
CHURN = ROOT / "include" / "pipelines" / "churn.yaml"
NAME = "serving_it"  # the pipeline and its registered model: the session's MLflow server is shared
START_TIMEOUT_S = 120

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def include(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An include folder with the churn pipeline under a name of its own, polling fast."""
    data = yaml.safe_load(CHURN.read_text())
    data["name"] = NAME
    data["serving"] = {"poll_seconds": 0.5, "flush_seconds": 0.5}
    folder = tmp_path_factory.mktemp("include")
    (folder / "pipelines").mkdir()
    (folder / "pipelines" / f"{NAME}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def pipeline(include: Path) -> Pipeline:
    return load_pipeline(include / "pipelines" / f"{NAME}.yaml")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> LocalStorage:
    return LocalStorage(tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    config = scenario.ScenarioConfig(rows_per_day=400, seed=11)
    days = {"train": dt.date(2026, 1, 5), "valid": dt.date(2026, 1, 6), "score": dt.date(2026, 1, 7)}
    return {part: scenario.generate_day(config, day) for part, day in days.items()}


@pytest.fixture(scope="module")
def client(mlflow_server: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


@pytest.fixture(scope="module")
def register(
    mlflow_server: str,
    client,
    include: Path,
    pipeline: Pipeline,
    frames,
    tmp_path_factory: pytest.TempPathFactory,
):
    """``register(seed, depth)``: train, log, register and sign a version; returns it."""
    import mlflow

    from mlops.model.pyfunc import model_input
    from mlops.training.fit import prepare_frame, train_model

    train, valid = (
        prepare_frame(frames[part].dropna(subset=[pipeline.target]), pipeline) for part in ("train", "valid")
    )

    def make(seed: int, depth: int) -> str:
        params = TrainingParams(n_estimators=20, max_depth=depth, early_stopping_rounds=5)
        result = train_model(train, valid, params, device="cpu", seed=seed, nthread=1, log=lambda _m: None)
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(mlflow_server)
        try:
            return register_signed(
                client,
                NAME,
                result.booster,
                yaml_text=(include / "pipelines" / f"{NAME}.yaml").read_text(),
                example=model_input(frames["valid"].head(5), pipeline),
                workdir=tmp_path_factory.mktemp("model"),
                experiment="serving-it",
                airflow_run_id="test",
            )
        finally:
            mlflow.set_tracking_uri(previous)

    return make


def promote(client, version: str, day: str) -> None:
    """A signed move, as the train DAG's promotion makes it."""
    from mlops.airflow.hooks.signing import signing_key
    from mlops.registry.champion import CHAMPION, Move, alias_version, move_champion

    current = alias_version(client, NAME, CHAMPION)
    move = Move(NAME, version, current, f"test promotes {version}", f"test-{version}", {}, day)
    move_champion(client, move, expected=current, key=signing_key())


@pytest.fixture(scope="module")
def versions(register, client) -> list[str]:
    first = register(seed=1, depth=3)
    second = register(seed=2, depth=6)
    promote(client, first, "2026-01-12")
    return [first, second]


class Service:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def post(self, body: bytes, content_type: str = "application/json", **headers: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.url}/{NAME}/predict",
            data=body,
            headers={"Content-Type": content_type, **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def metric(self, name: str, **labels: str) -> float:
        status, text = self.get("/metrics")
        assert status == 200, text
        found = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    found += sample.value
        return found


def _stop(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def service(
    mlflow_server: str, versions: list[str], include: Path, lake: LocalStorage, tmp_path_factory
) -> Iterator[Service]:
    port = free_port()
    log = tmp_path_factory.mktemp("service") / "service.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLOPS_INCLUDE_DIR=str(include),
        MLOPS_LAKE_ROOT=str(lake.root),
        PYTHONPATH=str(ROOT / "plugins"),
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops", "serve", "--pipeline", NAME, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Service(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for_http(f"{running.url}/ready", proc, START_TIMEOUT_S, running.tail)
        yield running
    finally:
        if proc.returncode is None:
            _stop(proc)


def valid_rows(pipeline: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """The scenario rows the schema passes (its defects removed), as a client would send them."""
    from mlops.serving.rows import BadRows, RowReader

    sent = frame[[pipeline.key, *pipeline.features]]
    try:
        RowReader(pipeline).read(records_body(sent), "application/json")
    except BadRows as exc:
        bad = {e.row for e in exc.errors}
        sent = sent.drop(index=sent.index[sorted(bad)])
    return sent.reset_index(drop=True)


def records_body(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records").encode()


def batch_scores(
    lake: LocalStorage, pipeline: Pipeline, rows: pd.DataFrame, version: str, ds: str
) -> pd.DataFrame:
    """The batch scorer's predictions for ``rows``, committed as a validated partition first."""
    from mlops.airflow.hooks.signing import signing_key
    from mlops.ingest.parsing import coerce
    from mlops.lake.batches import parquet_bytes
    from mlops.lake.storage import read_partition
    from mlops.registry.signing import load_model
    from mlops.score.batch import score_partition

    typed, _ = coerce(rows, pipeline)
    commit_partition(lake, partition_dir(NAME, "validated", ds), {"part.parquet": parquet_bytes(typed)})
    model = load_model(os.environ["MLFLOW_IT_URI"], NAME, version, signing_key())
    score_partition(lake, pipeline, ds, model, version=version, airflow_run_id="test")
    files = read_partition(lake, partition_dir(NAME, "predictions", ds))
    return pd.concat([pd.read_parquet(io.BytesIO(data)) for data in files.values()], ignore_index=True)


@pytest.fixture(scope="module", autouse=True)
def _tracking_uri(mlflow_server: str) -> Iterator[None]:
    os.environ["MLFLOW_IT_URI"] = mlflow_server
    yield
    os.environ.pop("MLFLOW_IT_URI", None)


@pytest.fixture(scope="module")
def rows(pipeline: Pipeline, frames) -> pd.DataFrame:
    sent = valid_rows(pipeline, frames["score"])
    assert len(sent) > 300 and sent.isna().any().any(), "the rows should include missing values"
    return sent


def test_scores_equal_the_batch_scorers_on_the_same_rows(
    service: Service, lake: LocalStorage, pipeline: Pipeline, versions: list[str], rows: pd.DataFrame
) -> None:
    status, answer = service.post(records_body(rows), **{"X-Request-ID": "equal-batch"})
    assert status == 200, f"{answer}\n{service.tail()}"
    assert answer["model_version"] == versions[0]
    served = pd.DataFrame(answer["predictions"])
    batch = batch_scores(lake, pipeline, rows, versions[0], "2026-01-07")
    assert np.ptp(served["score"]) > 0.01, "the model should not score every row alike"
    np.testing.assert_allclose(served["score"], batch["score"], rtol=0, atol=1e-6)
    assert served["label"].tolist() == batch["label"].tolist()
    assert served[pipeline.key].tolist() == batch[pipeline.key].tolist() == rows[pipeline.key].tolist()

    csv = rows.drop(columns=[pipeline.key]).head(50).to_csv(index=False).encode()
    status, answer = service.post(csv, "text/csv")
    assert status == 200, answer
    scores = [p["score"] for p in answer["predictions"]]
    np.testing.assert_allclose(scores, batch["score"].head(50), rtol=0, atol=1e-6)


def test_a_bad_row_gets_a_422_naming_its_field(service: Service, rows: pd.DataFrame) -> None:
    bad = rows.head(3).copy()
    bad.loc[1, "tenure_months"] = 500
    status, answer = service.post(records_body(bad))
    assert status == 422, answer
    assert [(d["row"], d["field"]) for d in answer["detail"]] == [(1, "tenure_months")]


def test_a_promotion_under_load_switches_the_answers_without_a_failed_request(
    service: Service, client, versions: list[str], rows: pd.DataFrame, lake: LocalStorage, pipeline: Pipeline
) -> None:
    first, second = versions
    sample = rows.head(8).reset_index(drop=True)
    expected = {
        first: batch_scores(lake, pipeline, sample, first, "2026-01-08")["score"].tolist(),
        second: batch_scores(lake, pipeline, sample, second, "2026-01-09")["score"].tolist(),
    }
    assert not np.allclose(expected[first], expected[second]), "the two versions should score differently"
    answers: list[list[tuple[int, str | None, int, float | None]]] = [[] for _ in range(4)]
    stop = threading.Event()

    def send(lane: int) -> None:
        i = 0
        while not stop.is_set():
            row = i % len(sample)
            status, answer = service.post(records_body(sample.iloc[[row]]))
            version = answer.get("model_version") if status == 200 else None
            score = answer["predictions"][0]["score"] if status == 200 else None
            answers[lane].append((status, version, row, score))
            i += 1

    lanes = [threading.Thread(target=send, args=(lane,)) for lane in range(4)]
    for lane in lanes:
        lane.start()
    try:
        time.sleep(1.0)
        promoted = time.monotonic()
        promote(client, second, "2026-01-19")
        while time.monotonic() - promoted < 30:
            if all(lane and lane[-1][1] == second for lane in answers):
                break
            time.sleep(0.1)
        switched = time.monotonic() - promoted
        time.sleep(0.5)
    finally:
        stop.set()
        for lane in lanes:
            lane.join(30)
    every = [a for lane in answers for a in lane]
    assert every and all(status == 200 for status, *_ in every), [a for a in every if a[0] != 200][:5]
    for lane in answers:
        seen = [version for _, version, _, _ in lane]
        assert seen[0] == first and seen[-1] == second, seen
        assert seen == sorted(seen, key=lambda v: v != first), "an answer went back to the old version"
    for _, version, row, score in every:
        assert score == pytest.approx(expected[version][row], abs=1e-6), (version, row)
    assert switched < 10, f"the switch took {switched:.1f}s with poll_seconds 0.5"
    print(f"\n{len(every)} requests, switched {switched:.2f}s after the promotion")


def test_metrics_count_the_answers_by_version_and_the_histogram_moves(
    service: Service, versions: list[str], rows: pd.DataFrame
) -> None:
    first, second = versions
    labels = {"pipeline": NAME}
    assert service.metric("mlops_serving_requests_total", model_version=first, status="200", **labels) >= 2
    assert service.metric("mlops_serving_requests_total", model_version=second, status="200", **labels) >= 1
    assert service.metric("mlops_serving_requests_total", status="422", **labels) >= 1
    assert service.metric("mlops_serving_model_version", **labels) == float(second)
    assert service.metric("mlops_serving_model_loads_total", outcome="loaded", **labels) == 2
    before = service.metric("mlops_serving_request_seconds_count", model_version=second, **labels)
    rows_before = service.metric("mlops_serving_rows_total", model_version=second, **labels)
    assert service.post(records_body(rows.head(5)))[0] == 200
    assert service.metric("mlops_serving_request_seconds_count", model_version=second, **labels) == before + 1
    assert service.metric("mlops_serving_rows_total", model_version=second, **labels) == rows_before + 5
    assert service.metric("mlops_serving_request_seconds_sum", model_version=second, **labels) > 0


def test_the_answered_rows_are_in_the_served_zone(
    service: Service, lake: LocalStorage, pipeline: Pipeline, rows: pd.DataFrame, versions: list[str]
) -> None:
    from mlops.lake.batches import manifest_rows, parquet_batches

    answered = service.metric("mlops_serving_rows_total", pipeline=NAME)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        days = sorted(
            {p.split("ds=")[1].split("/")[0] for p in lake.list_files(f"{NAME}/served") if "_SUCCESS" in p}
        )
        total = sum(manifest_rows(lake, partition_dir(NAME, "served", ds)) or 0 for ds in days)
        if total >= answered:
            break
        time.sleep(0.2)
    assert days == [pipeline.grain.key(dt.datetime.now(dt.UTC))] or len(days) == 2  # midnight
    assert total == answered, f"{total} rows in the served zone, {answered} answered"
    served = pd.concat([f for ds in days for f in parquet_batches(lake, partition_dir(NAME, "served", ds))])
    first = served[served["_request_id"] == "equal-batch"]
    assert first[pipeline.key].tolist() == rows[pipeline.key].tolist()
    assert set(first["_model_version"]) == {versions[0]} and first["score"].between(0, 1).all()
    assert set(served["_model_version"]) == set(versions)
    assert str(served["_served_at"].dtype) == "datetime64[ns, UTC]"


def test_a_version_with_a_broken_signature_never_serves(
    service: Service, client, register, versions: list[str], rows: pd.DataFrame
) -> None:
    from mlops.registry.signing import SIGNATURE_TAG

    broken = register(seed=3, depth=2)
    client.set_model_version_tag(NAME, broken, SIGNATURE_TAG, "0" * 64)
    promote(client, broken, "2026-01-26")  # a valid signed move onto files that do not verify
    deadline = time.monotonic() + 20
    while service.metric("mlops_serving_model_loads_total", pipeline=NAME, outcome="unverified") < 1:
        assert time.monotonic() < deadline, f"the broken version was never refused\n{service.tail()}"
        time.sleep(0.2)
    for _ in range(10):
        status, answer = service.post(records_body(rows.head(2)))
        assert (status, answer["model_version"]) == (200, versions[1])
        time.sleep(0.1)
    status, ready = service.get("/ready")
    assert status == 200 and json.loads(ready)["models"] == {NAME: versions[1]}
    assert service.metric("mlops_serving_model_version", pipeline=NAME) == float(versions[1])
    assert f"refusing version {broken}" in service.tail()


def test_the_probe_records_the_service_up_with_the_known_answer_then_the_outage(
    service: Service, pipeline: Pipeline, lake: LocalStorage, versions: list[str]
) -> None:
    """Last: it stops the service. The probe's known answer is the serving version's own offline
    score of the probe row (as the probe DAG computes it); the outage is recorded and alerted."""
    from mlops.airflow.hooks.signing import signing_key
    from mlops.index.records import IndexReader
    from mlops.model.pyfunc import model_input
    from mlops.registry.signing import load_model
    from mlops.serving.probe import probe_row, run_probe

    def offline(version: str) -> float:
        model = load_model(os.environ["MLFLOW_IT_URI"], NAME, version, signing_key())
        return float(model.predict(model_input(pd.DataFrame([probe_row(pipeline)]), pipeline))[0])

    up = run_probe(lake, pipeline, service.url, airflow_run_id="probe_up", expected=offline)
    assert up.result.up and up.result.model_version == versions[1], up.result
    assert not up.alerts
    _stop(service.proc)
    down = run_probe(lake, pipeline, service.url, airflow_run_id="probe_down", expected=offline)
    assert not down.result.up and down.result.latency_ms is None
    assert [a.event for a in down.alerts] == ["service_down"]
    summary = IndexReader(lake).read(NAME)[down.key]["probe"]
    assert (summary["probes"], summary["up"]) == (2, 1)
