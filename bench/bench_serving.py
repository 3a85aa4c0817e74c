"""Serving under load: ``python -m mlops serve`` against ``mlflow models serve`` on the same version.

    .venv/bin/python -m bench.bench_serving --single-requests 400 --batch-requests 100

One run, everything on loopback. A throwaway MLflow server (``tests.conftest.mlflow_process``) gets
one small churn champion (100 trees, depth 6), trained, logged, registered, signed and promoted with
a signed move as the service tests do it (``tests/serving``). Four servers of that one version:

* ours: ``python -m mlops serve`` with metrics on and every answered row kept for the lake's served
  zone (``serving.sample_rate`` 1.0; each service its own lake), with 1 and with 2 ``--workers``;
* the baseline: ``mlflow models serve -m models:/<name>/<version> --env-manager local``, started as
  ``bench_scoring`` starts it, with 1 and 2 ``--workers``.

The client: one thread per concurrent client, each with its own keep-alive ``http.client``
connection, sending a bounded number of requests per point (``single_requests`` single-row
bodies, ``batch_requests`` 100-row bodies) at 1, 8 and 32 concurrent clients. The points of the four
servers are interleaved, ours and mlflow's with the same workers back to back (which goes first
alternates), so a change in the host's load hits both alike. Per point: requests/s and rows/s (the
requests over the wall time from the first send to the last answer), p50 and p99 of each request's
time (send to last byte read), failed requests (no answer, or not 200) and wrong answers (a score
off the batch scorer's, ``score_partition``, by more than 1e-6, or the wrong version or row count),
checked after the point so the check does not slow the client. Each server gets its own body
format for the same rows: ours JSON records with the key, mlflow's ``dataframe_split`` of the
model's inputs.

After the load: ours' ``/metrics`` count of answered requests (1 worker) and the rows its served
zone holds after shutdown, against what the client saw answered; and where a single row's time goes
inside our service: the request path's steps timed in this process on the same verified model,
beside mlflow's own handler (``scoring_server.invocations``), and both servers' HTTP floor (``GET
/health``, ``GET /ping``) through the same client. Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Importing the test session's setup isolates Airflow in a home of its own (removed at the end).
import tests.conftest as test_session  # noqa: E402
from tests.embedded_stack import free_port, wait_for_http  # noqa: E402
from tests.serving.test_service import (  # noqa: E402
    NAME,
    Service,
    batch_scores,
    promote,
    records_body,
    valid_rows,
)
from tests.signed_models import register_signed  # noqa: E402

from bench.bench_scoring import _body as split_body  # noqa: E402
from bench.bench_scoring import _die_with_parent, _stop  # noqa: E402
from mlops.config.pipeline import Pipeline, TrainingParams, load_pipeline  # noqa: E402
from mlops.lake.storage import LocalStorage, partition_dir  # noqa: E402
from mlops.tools import scenario  # noqa: E402

CHURN = ROOT / "include" / "pipelines" / "churn.yaml"
TREES, DEPTH = 100, 6
TRAIN_ROWS_PER_DAY = 2_000
SCORE_ROWS = 1_000  # the scenario day the request rows come from (its schema defects removed)
BATCH_ROWS = 100
SINGLE_BODIES = 100  # distinct single-row bodies, sent in turn
BATCH_BODIES = 4  # distinct 100-row bodies
CONCURRENCY = (1, 8, 32)
WORKERS = (1, 2)
TOLERANCE = 1e-6
WARMUP_REQUESTS = 20  # per server and body size, before the first point
FLOOR_REQUESTS = 300  # GET /health or /ping, one connection
PROFILE_WARMUP, PROFILE_REPEATS = 20, 300
BACKGROUND_REPEATS = 5
START_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 60
HEADERS = {"Content-Type": "application/json"}


# --- the champion -----------------------------------------------------------------------------


def _include(folder: Path) -> Path:
    """An include folder with the churn pipeline as ``NAME``, every answered row kept."""
    data = yaml.safe_load(CHURN.read_text())
    data["name"] = NAME
    data["serving"] = {**data.get("serving", {}), "sample_rate": 1.0}
    (folder / "pipelines").mkdir(parents=True)
    (folder / "pipelines" / f"{NAME}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def _champion(client, uri: str, pipeline: Pipeline, yaml_text: str, tmp: Path) -> str:
    """Train, log, register and sign one version, then promote it with a signed move."""
    import mlflow

    from mlops.model.pyfunc import model_input
    from mlops.training.fit import prepare_frame, train_model

    config = scenario.ScenarioConfig(rows_per_day=TRAIN_ROWS_PER_DAY, seed=5)
    frames = [scenario.generate_day(config, dt.date(2026, 1, day)) for day in (5, 6)]
    train, valid = (prepare_frame(f.dropna(subset=[pipeline.target]), pipeline) for f in frames)
    # Patience above the tree count: all TREES trees are built.
    params = TrainingParams(n_estimators=TREES, max_depth=DEPTH, early_stopping_rounds=TREES + 1)
    result = train_model(train, valid, params, device="cpu", seed=42, nthread=2, log=lambda _m: None)
    mlflow.set_tracking_uri(uri)
    workdir = tmp / "model"
    workdir.mkdir()
    version = register_signed(
        client,
        NAME,
        result.booster,
        yaml_text=yaml_text,
        example=model_input(frames[1].head(5), pipeline),
        workdir=workdir,
        experiment="bench-serving",
        airflow_run_id="bench",
    )
    promote(client, version, "2026-01-12")
    return version


# --- the servers ------------------------------------------------------------------------------


@dataclass
class Server:
    kind: str  # "ours" or "mlflow"
    workers: int
    port: int
    path: str
    bodies: dict[int, list[bytes]]  # rows per request -> the bodies sent in turn
    log: Path
    proc: subprocess.Popen
    start_s: float = 0.0
    answered_requests: int = 0  # its 200 answers
    answered_rows: int = 0  # the rows in them

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.workers}w"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _log_text(server: Server) -> str:
    return server.log.read_text(errors="replace")


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A server in a session of its own (its workers ended with it), for the block."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        yield proc
    finally:
        _stop(proc)


def _wait_ready(server: Server, ready_path: str, markers: list[str]) -> None:
    """Until ``ready_path`` answers and the log shows every worker up: a worker still loading
    would answer 503 (ours) or leave its share of the connections waiting (mlflow's)."""
    started = time.perf_counter()
    wait_for_http(f"http://127.0.0.1:{server.port}{ready_path}", server.proc, START_TIMEOUT_S, server.tail)
    while not all(_log_text(server).count(marker) >= server.workers for marker in markers):
        if server.proc.poll() is not None or time.perf_counter() - started > START_TIMEOUT_S:
            raise RuntimeError(f"{server.label}: not every worker came up:\n{server.tail()}")
        time.sleep(0.2)
    server.start_s = time.perf_counter() - started


def _ours(
    stack: contextlib.ExitStack, workers: int, version: str, include: Path, tmp: Path, bodies
) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLOPS_INCLUDE_DIR=str(include),
        MLOPS_LAKE_ROOT=str(tmp / f"lake-{workers}w"),
        PYTHONPATH=str(ROOT / "plugins"),
    )
    command = [sys.executable, "-m", "mlops", "serve", "--pipeline", NAME, "--port", str(port)]
    log = tmp / f"ours-{workers}w.log"
    proc = stack.enter_context(_process([*command, "--workers", str(workers)], env, log))
    server = Server("ours", workers, port, f"/{NAME}/predict", bodies, log, proc)
    # Each worker logs its load (uvicorn's own startup lines go nowhere under Airflow's logging).
    _wait_ready(server, "/ready", [f"version {version} in force"])
    return server


def _mlflow(stack: contextlib.ExitStack, workers: int, version: str, uri: str, tmp: Path, bodies) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    bin_dir = str(Path(sys.executable).parent)  # the CLI starts `uvicorn` from PATH
    env.update(
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "plugins"), env.get("PYTHONPATH")])),
        PATH=os.pathsep.join(filter(None, [bin_dir, env.get("PATH")])),
    )
    command = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", f"models:/{NAME}/{version}"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp / f"mlflow-{workers}w.log"
    proc = stack.enter_context(_process([*command, "--workers", str(workers)], env, log))
    server = Server("mlflow", workers, port, "/invocations", bodies, log, proc)
    _wait_ready(server, "/ping", ["Application startup complete"])
    return server


# --- the client -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    body: int  # index into the server's bodies
    status: int  # 0: no answer (the connection failed)
    payload: bytes
    seconds: float


def _load(server: Server, rows: int, requests: int, clients: int) -> tuple[list[Sent], float]:
    """``requests`` POSTs shared by ``clients`` threads; their results and the wall time."""
    bodies = server.bodies[rows]
    counter = itertools.count()  # next() on it is atomic under the GIL
    sent: list[Sent] = []
    marks: list[float] = []
    barrier = threading.Barrier(clients, action=lambda: marks.append(time.perf_counter()))

    def lane() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQUEST_TIMEOUT_S)
        with contextlib.suppress(OSError):  # a refused connect shows as the requests' failures
            conn.connect()
        barrier.wait()
        while (i := next(counter)) < requests:
            body = i % len(bodies)
            start = time.perf_counter()
            try:
                conn.request("POST", server.path, body=bodies[body], headers=HEADERS)
                resp = conn.getresponse()
                status, payload = resp.status, resp.read()
            except (OSError, http.client.HTTPException) as exc:
                status, payload = 0, repr(exc).encode()
                conn.close()  # the next request connects again
            sent.append(Sent(body, status, payload, time.perf_counter() - start))
        marks.append(time.perf_counter())
        conn.close()

    threads = [threading.Thread(target=lane, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent, max(marks) - marks[0]


def _wrong(server: Server, rows: int, sent: Sent, expected: dict[int, list[np.ndarray]], version: str) -> str:
    """Why an answer is wrong, or ''."""
    try:
        answer = json.loads(sent.payload)
        predictions = answer["predictions"]
        if server.kind == "ours":
            if answer["model_version"] != version:
                return f"version {answer['model_version']!r}, not {version!r}"
            predictions = [p["score"] for p in predictions]
        scores = np.asarray(predictions, dtype="float64")
    except (ValueError, KeyError, TypeError) as exc:
        return f"not an answer ({type(exc).__name__}: {exc}): {sent.payload[:200]!r}"
    want = expected[rows][sent.body]
    if scores.shape != want.shape:
        return f"{scores.shape[0] if scores.ndim else 'no'} scores for {len(want)} rows"
    off = float(np.max(np.abs(scores - want)))
    return f"a score off by {off:.3g}" if off > TOLERANCE else ""


def _point(server: Server, rows: int, requests: int, clients: int, expected, version: str) -> dict[str, Any]:
    sent, wall = _load(server, rows, requests, clients)
    failed = [s for s in sent if s.status != 200]
    wrong = [why for s in sent if s.status == 200 and (why := _wrong(server, rows, s, expected, version))]
    server.answered_requests += len(sent) - len(failed)
    server.answered_rows += rows * (len(sent) - len(failed))
    seconds = [s.seconds for s in sent]
    first_error = (
        f"HTTP {failed[0].status}: {failed[0].payload[:300]!r}" if failed else (wrong[0] if wrong else None)
    )
    return {
        "server": server.kind,
        "workers": server.workers,
        "rows": rows,
        "clients": clients,
        "requests": len(sent),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(sent) / wall, 1),
        "rows_per_s": round(rows * len(sent) / wall),
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 2),
        "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 2),
        "failed": len(failed),
        "wrong": len(wrong),
        "first_error": first_error,
    }


def _floor_ms(server: Server, path: str) -> float:
    """p50 of a bare ``GET path`` over one keep-alive connection: the HTTP stack's own time."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQUEST_TIMEOUT_S)
    times = []
    try:
        for i in range(FLOOR_REQUESTS + 10):
            start = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{server.label} {path}: HTTP {resp.status}")
            if i >= 10:
                times.append(time.perf_counter() - start)
    finally:
        conn.close()
    return round(statistics.median(times) * 1000, 3)


# --- where a single row's time goes in our service --------------------------------------------


def _profile(version: str, ours_body: bytes, mlflow_body: bytes, lake_root: Path) -> dict[str, float]:
    """Median ms of each step of ``mlops.serving.app``'s request path for one row, in this process
    on the champion as the service loads it (verified), beside mlflow's handler on the same model.
    The steps run in turn, round after round, so a change in the host's load hits them alike."""
    from mlflow.models.utils import _enforce_schema  # private: what pyfunc.predict runs first
    from mlflow.pyfunc import scoring_server

    from mlops.cli.serve import build_service
    from mlops.model.pyfunc import model_input
    from mlops.serving.app import _answer, _scores, predict
    from mlops.serving.served import served_frame

    os.environ["MLOPS_LAKE_ROOT"] = str(lake_root)  # a lake of its own: the profile's rows stay apart
    service = build_service([NAME])  # as the CLI builds it; its threads are not started
    outcome = service.holder.refresh(NAME)
    loaded = service.holder.get(NAME)
    if loaded is None or loaded.version != version:
        raise RuntimeError(f"the profile's service did not load version {version}: {outcome}")
    pipeline, reader, writer = service.pipelines[NAME], service.readers[NAME], service.writers[NAME]
    kind = "application/json"
    rows = reader.read(ours_body, kind)
    inputs = model_input(rows.typed, pipeline)
    scores = _scores(loaded, rows, pipeline)
    python_model = loaded.model.unwrap_python_model()
    schema = loaded.model.metadata.get_input_schema()
    now = dt.datetime.now(dt.UTC)
    steps: dict[str, Callable[[], Any]] = {
        # The parts of ours_whole (``app.predict`` and the answer's JSON), in order:
        "read_and_check": lambda: reader.read(ours_body, kind),
        "model_input": lambda: model_input(rows.typed, pipeline),
        "pyfunc_predict": lambda: loaded.model.predict(inputs),
        "served_rows": lambda: writer.add(
            served_frame(pipeline, rows, scores, version=version, request_id="profile", served_at=now)
        ),
        "answer_json": lambda: json.dumps(_answer(pipeline, rows, scores, version), allow_nan=False),
        "metrics": lambda: service.metrics.answered(NAME, version, 200, 0.003, 1),
        # Inside pyfunc_predict: mlflow's schema enforcement, then our model's features and trees.
        "mlflow_schema_enforcement": lambda: _enforce_schema(inputs, schema),
        "features_and_booster": lambda: python_model.predict(None, inputs),
        "ours_whole": lambda: json.dumps(predict(service, NAME, ours_body, kind, "profile").body),
        # mlflow models serve's handler body: parse dataframe_split, pyfunc predict, answer JSON.
        "mlflow_invocations": lambda: scoring_server.invocations(mlflow_body, kind, loaded.model, schema),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(PROFILE_WARMUP + PROFILE_REPEATS):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= PROFILE_WARMUP:
                times[name].append(time.perf_counter() - start)
        if writer.buffered >= pipeline.serving.flush_rows:
            writer.flush()  # as the service's flush thread would (off the timed steps)
    medians = {name: round(statistics.median(t) * 1000, 3) for name, t in times.items()}
    # What the service's own threads do beside the requests, holding the GIL part of the time: a poll
    # of the registry that finds the champion unchanged, and a flush of flush_rows single-row answers.
    polls = []
    for _ in range(BACKGROUND_REPEATS):
        start = time.perf_counter()
        service.holder.refresh(NAME)
        polls.append(time.perf_counter() - start)
    frame = served_frame(pipeline, rows, scores, version=version, request_id="profile", served_at=now)
    flushes = []
    for _ in range(BACKGROUND_REPEATS):
        writer.flush()
        for _ in range(pipeline.serving.flush_rows):
            writer.add(frame)
        start = time.perf_counter()
        writer.flush()
        flushes.append(time.perf_counter() - start)
    medians["background_champion_poll"] = round(statistics.median(polls) * 1000, 3)
    medians["background_flush_single_rows"] = round(statistics.median(flushes) * 1000, 3)
    return medians


# --- the run ----------------------------------------------------------------------------------


def _served_rows(lake_root: Path) -> int:
    """Rows committed to the served zone of a lake (its manifests' counts)."""
    from mlops.lake.batches import manifest_rows

    lake = LocalStorage(lake_root)
    days = {p.split("ds=")[1].split("/")[0] for p in lake.list_files(f"{NAME}/served") if "_SUCCESS" in p}
    return sum(manifest_rows(lake, partition_dir(NAME, "served", ds)) or 0 for ds in days)


def _bodies(pipeline: Pipeline, sent: pd.DataFrame) -> tuple[dict[int, list[bytes]], dict[int, list[bytes]]]:
    """The same rows as each server takes them: ours JSON records with the key, mlflow's
    ``dataframe_split`` of the model's inputs; by rows per request."""
    from mlops.ingest.parsing import coerce
    from mlops.model.pyfunc import model_input

    inputs = model_input(coerce(sent, pipeline)[0], pipeline)
    ours, theirs = {}, {}
    for rows, count in ((1, SINGLE_BODIES), (BATCH_ROWS, BATCH_BODIES)):
        cuts = [slice(i * rows, (i + 1) * rows) for i in range(count)]
        ours[rows] = [records_body(sent.iloc[cut]) for cut in cuts]
        theirs[rows] = [split_body(inputs.iloc[cut]) for cut in cuts]
    return ours, theirs


def _serve_and_measure(
    single_requests: int,
    batch_requests: int,
    *,
    tmp: Path,
    uri: str,
    version: str,
    include: Path,
    pipeline: Pipeline,
) -> dict[str, Any]:
    config = scenario.ScenarioConfig(rows_per_day=SCORE_ROWS, seed=11)
    sent = valid_rows(pipeline, scenario.generate_day(config, dt.date(2026, 1, 7)))
    needed = max(SINGLE_BODIES, BATCH_ROWS * BATCH_BODIES)
    if len(sent) < needed:
        raise RuntimeError(f"{len(sent)} valid request rows, {needed} needed")
    sent = sent.head(needed)
    batch = batch_scores(LocalStorage(tmp / "batch-lake"), pipeline, sent, version, "2026-01-07")
    scores = batch["score"].to_numpy(dtype="float64")
    expected = {
        rows: [scores[i * rows : (i + 1) * rows] for i in range(count)]
        for rows, count in ((1, SINGLE_BODIES), (BATCH_ROWS, BATCH_BODIES))
    }
    ours_bodies, mlflow_bodies = _bodies(pipeline, sent)

    points: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        servers: dict[tuple[str, int], Server] = {}
        for workers in WORKERS:
            servers["ours", workers] = _ours(stack, workers, version, include, tmp, ours_bodies)
            servers["mlflow", workers] = _mlflow(stack, workers, version, uri, tmp, mlflow_bodies)
        for server in servers.values():  # first requests (lazy imports, allocations) off the figures
            for rows in (1, BATCH_ROWS):
                warm = _point(server, rows, WARMUP_REQUESTS, 2, expected, version)
                if warm["failed"] or warm["wrong"]:
                    raise RuntimeError(f"{server.label} warm-up: {warm['first_error']}\n{server.tail()}")
        flip = False
        for rows, requests in ((1, single_requests), (BATCH_ROWS, batch_requests)):
            for clients in CONCURRENCY:
                for workers in WORKERS:
                    pair = [servers["ours", workers], servers["mlflow", workers]]
                    for server in reversed(pair) if flip else pair:
                        points.append(_point(server, rows, requests, clients, expected, version))
                    flip = not flip
        floor = {
            "ours": _floor_ms(servers["ours", 1], "/health"),
            "mlflow": _floor_ms(servers["mlflow", 1], "/ping"),
        }
        one = servers["ours", 1]
        watched = Service(f"http://127.0.0.1:{one.port}", one.proc, one.log)
        checks["ours_1w_metrics_requests_200"] = watched.metric(
            "mlops_serving_requests_total", pipeline=NAME, status="200"
        )
        checks["ours_1w_metrics_rows"] = watched.metric("mlops_serving_rows_total", pipeline=NAME)
        checks["ours_1w_client_answered_requests"] = one.answered_requests
        checks["ours_1w_client_answered_rows"] = one.answered_rows
        start_s = {server.label: round(server.start_s, 1) for server in servers.values()}
    # Stopped: the services committed their last served rows on the way out.
    checks["served_rows_committed"] = {f"{w}w": _served_rows(tmp / f"lake-{w}w") for w in WORKERS}
    checks["served_rows_answered"] = {f"{w}w": servers["ours", w].answered_rows for w in WORKERS}
    profile = _profile(version, ours_bodies[1][0], mlflow_bodies[1][0], tmp / "profile-lake")
    return {"points": points, "checks": checks, "floor_ms": floor, "profile_ms": profile, "start_s": start_s}


def run(single_requests: int = 400, batch_requests: int = 100) -> dict[str, Any]:
    import fastapi
    import mlflow
    import uvicorn
    from mlflow import MlflowClient

    started = time.perf_counter()
    os.environ["AIRFLOW_CONN_MLOPS_SIGNING"] = json.dumps(
        {"conn_type": "generic", "password": f"bench-signing-{secrets.token_hex(16)}"}
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_name:
            tmp = Path(tmp_name)
            (tmp / "mlflow").mkdir()
            with test_session.mlflow_process(tmp / "mlflow") as uri:
                # As the tests' mlflow_server fixture: the services find it through mlflow_default.
                os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps({"conn_type": "http", "host": uri})
                os.environ["MLFLOW_IT_URI"] = uri  # what tests/serving's batch_scores loads from
                include = _include(tmp / "include")
                os.environ["MLOPS_INCLUDE_DIR"] = str(include)  # for the profile's service
                path = include / "pipelines" / f"{NAME}.yaml"
                pipeline = load_pipeline(path)
                client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                version = _champion(client, uri, pipeline, path.read_text(), tmp)
                measured = _serve_and_measure(
                    single_requests,
                    batch_requests,
                    tmp=tmp,
                    uri=uri,
                    version=version,
                    include=include,
                    pipeline=pipeline,
                )
    finally:
        shutil.rmtree(test_session._HOME, ignore_errors=True)

    points = measured["points"]

    def find(server: str, workers: int, rows: int, clients: int) -> dict[str, Any]:
        return next(
            p
            for p in points
            if (p["server"], p["workers"], p["rows"], p["clients"]) == (server, workers, rows, clients)
        )

    goals = {"p50_single_row": True, "p99_single_row": True, "throughput": True}
    for workers in WORKERS:
        for clients in CONCURRENCY:
            ours, theirs = find("ours", workers, 1, clients), find("mlflow", workers, 1, clients)
            goals["p50_single_row"] &= ours["p50_ms"] <= theirs["p50_ms"]
            goals["p99_single_row"] &= ours["p99_ms"] <= theirs["p99_ms"]
            for rows in (1, BATCH_ROWS):
                ours, theirs = find("ours", workers, rows, clients), find("mlflow", workers, rows, clients)
                goals["throughput"] &= ours["requests_per_s"] >= theirs["requests_per_s"]
    failed = {
        kind: sum(p["failed"] + p["wrong"] for p in points if p["server"] == kind)
        for kind in ("ours", "mlflow")
    }
    goals["no_failed_or_wrong"] = failed["ours"] == 0
    return {
        "single_requests": single_requests,
        "batch_requests": batch_requests,
        "batch_rows": BATCH_ROWS,
        "concurrency": list(CONCURRENCY),
        "workers": list(WORKERS),
        "trees": TREES,
        "depth": DEPTH,
        "version": version,
        "cpus": os.cpu_count(),
        "mlflow": mlflow.__version__,
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
        "failed_or_wrong": failed,
        "answers_checked": sum(p["requests"] for p in points),
        "goals_met": goals,
        "wall_s": round(time.perf_counter() - started, 1),
        **measured,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single-requests", type=int, default=400, help="per point, single-row bodies")
    parser.add_argument("--batch-requests", type=int, default=100, help="per point, 100-row bodies")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.single_requests, args.batch_requests), indent=2))


if __name__ == "__main__":
    main()
