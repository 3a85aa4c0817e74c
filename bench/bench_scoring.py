"""Scoring benchmark: the logged pyfunc against bare ``Booster.inplace_predict``, and serving latency.

    .venv/bin/python bench/bench_scoring.py --rows 1000000 --repeats 3 --requests 50

A small churn model (100 trees, depth 6, trained on ~50k synthetic rows typed like a validated
partition) is logged with ``mlops.model.pyfunc.log_model`` and registered as ``champion`` in a throwaway
SQLite tracking/registry store (no server needed). Then, in the same run:

* (a) batch scoring through the registered pyfunc: ``model.predict(model_input(frame, pipeline))``
  on ``rows`` rows, the input conversion included;
* (b) bare ``Booster.inplace_predict`` (the pyfunc's own booster) on the already prepared
  feature frame (``training.feature_frame``): the floor for the same scores;
* a/b (goal <= 1.3x), rows/s for both, and a breakdown of (a), each step timed on its own:
  ``model_input``, MLflow's schema enforcement, ``feature_frame`` (on the converted input), and
  (b) itself;
* (c) ``mlflow models serve`` of ``models:/<name>@champion`` (started here on a free port,
  ``--env-manager local``): p50/p95 latency of 1-row and 1,000-row ``dataframe_split`` requests,
  ``requests`` of each after a few warm-ups, over one keep-alive connection; the client runs on
  the same machine (its time to send and read is in the figures, not its JSON encoding).

Times are medians of ``repeats`` after one warm-up; (a) and (b) run alternately. Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import xgboost  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.models.utils import _enforce_schema  # noqa: E402  (private: what pyfunc.predict runs first)

from bench.bench_training import synthetic_churn  # noqa: E402
from mlops.config.pipeline import Pipeline, TrainingParams, load_pipeline  # noqa: E402
from mlops.model.pyfunc import log_model, model_input  # noqa: E402
from mlops.registry.champion import register_version  # noqa: E402
from mlops.training.fit import feature_frame, prepare_frame, train_model  # noqa: E402

CHURN = ROOT / "include" / "pipelines" / "churn.yaml"
MODEL = "bench_scoring"
TRAIN_ROWS = 50_000
TREES, DEPTH = 100, 6
BATCH_ROWS = 1_000  # the larger serving request
WARMUP_REQUESTS = 5
START_TIMEOUT_S = 180


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, out


def _interleaved(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int
) -> tuple[list[float], list[float], Any, Any]:
    """Times of ``a`` and ``b`` run alternately ``repeats`` times each (after one warm-up each)."""
    out_a, out_b = a(), b()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return times_a, times_b, out_a, out_b


def _train(pipeline: Pipeline) -> xgboost.Booster:
    frame = synthetic_churn(TRAIN_ROWS, seed=1)
    cut = int(len(frame) * 0.8)
    train, valid = prepare_frame(frame.iloc[:cut], pipeline), prepare_frame(frame.iloc[cut:], pipeline)
    # Patience above the tree count: all TREES trees are built.
    params = TrainingParams(max_depth=DEPTH, n_estimators=TREES, early_stopping_rounds=TREES + 1)
    result = train_model(train, valid, params, device="cpu", seed=42, nthread=2, log=lambda _m: None)
    return result.booster


def _register(pipeline: Pipeline, booster: xgboost.Booster, example: pd.DataFrame, tmp: Path) -> str:
    """Log and register the model in a SQLite store under ``tmp``; returns its tracking URI."""
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("bench-scoring", artifact_location=(tmp / "artifacts").as_uri())
    workdir = tmp / "work"
    workdir.mkdir()
    with mlflow.start_run(experiment_id=experiment) as run:
        logged = log_model(booster, CHURN.read_text(), model_input(example, pipeline), workdir)
    version = register_version(
        client,
        MODEL,
        run_id=run.info.run_id,
        source=logged.model_uri,
        model_id=logged.model_id,
        airflow_run_id="bench",
        tags={},
    )
    client.set_registered_model_alias(MODEL, "champion", version.version)
    return uri


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # If this bench is killed (bench.run's timeout), the server gets SIGTERM instead of living on;
    # the CLI does the same for its uvicorn child.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _serve(tracking_uri: str, tmp: Path) -> Iterator[tuple[int, float]]:
    """``mlflow models serve`` of the champion on a free port; yields (port, seconds to /ping)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    bin_dir = str(Path(sys.executable).parent)  # the CLI starts `uvicorn` from PATH
    env.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "plugins"), env.get("PYTHONPATH")])),
        PATH=os.pathsep.join(filter(None, [bin_dir, env.get("PATH")])),
    )
    log_path = tmp / "serve.log"
    command = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        started = time.perf_counter()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.perf_counter() - started > START_TIMEOUT_S:
                raise RuntimeError(f"no answer on port {port} in {START_TIMEOUT_S} s:\n{_tail(log_path)}")
            time.sleep(0.5)
        yield port, time.perf_counter() - started
    finally:
        _stop(proc)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the CLI and uvicorn), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    time.sleep(1)  # uvicorn's own graceful shutdown
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _body(rows: pd.DataFrame) -> bytes:
    data = [[None if pd.isna(v) else v for v in row] for row in rows.itertuples(index=False, name=None)]
    split = {"columns": list(rows.columns), "data": data}
    return json.dumps({"dataframe_split": split}, allow_nan=False).encode()


def _latencies(port: int, body: bytes, requests: int) -> tuple[list[float], list[float]]:
    """Wall-clock seconds of ``requests`` POSTs (after warm-ups) and the last answer's predictions."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}

    def post() -> bytes:
        conn.request("POST", "/invocations", body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {payload[:1000]!r}")
        return payload

    try:
        for _ in range(WARMUP_REQUESTS):
            post()
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            payload = post()
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    return times, json.loads(payload)["predictions"]


def _ms(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(seconds, q)) * 1000, 2)


def run(rows: int = 1_000_000, repeats: int = 3, requests: int = 50) -> dict[str, Any]:
    pipeline = load_pipeline(CHURN)
    t = time.perf_counter()
    booster = _train(pipeline)
    train_s = time.perf_counter() - t
    frame = synthetic_churn(rows, seed=2)

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp_name:
        tmp = Path(tmp_name)
        tracking_uri = _register(pipeline, booster, frame.head(5), tmp)
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        served_booster = model.unwrap_python_model().booster  # what the pyfunc scores with

        # (a) the pyfunc, input conversion included; (b) bare inplace_predict on prepared features.
        # Interleaved, so a change in the host's load hits both sides alike.
        X = feature_frame(frame, pipeline)
        a_all, b_all, scores, bare_scores = _interleaved(
            lambda: model.predict(model_input(frame, pipeline)),
            lambda: served_booster.inplace_predict(X),
            repeats,
        )
        a_s, b_s = statistics.median(a_all), statistics.median(b_all)
        max_diff = float(np.max(np.abs(np.asarray(scores, "float64") - np.asarray(bare_scores, "float64"))))

        # Breakdown of (a), each step timed on its own (differences of medians are noise here).
        schema = model.metadata.get_input_schema()
        convert_s, _, rows_in = _median_time(lambda: model_input(frame, pipeline), repeats)
        enforce_s, _, _ = _median_time(lambda: _enforce_schema(rows_in, schema), repeats)
        features_s, _, _ = _median_time(lambda: feature_frame(rows_in, pipeline), repeats)
        X = rows_in = None  # release before serving

        # (c) serving latency.
        requests_rows = model_input(frame.head(BATCH_ROWS), pipeline)
        with _serve(tracking_uri, tmp) as (port, start_s):
            one_s, one_pred = _latencies(port, _body(requests_rows.head(1)), requests)
            batch_s, batch_pred = _latencies(port, _body(requests_rows), requests)
        served_diff = max(
            float(np.max(np.abs(np.asarray(one_pred) - scores[:1]))),
            float(np.max(np.abs(np.asarray(batch_pred) - scores[:BATCH_ROWS]))),
        )

    return {
        "rows": rows,
        "repeats": repeats,
        "requests": requests,
        "trees": booster.num_boosted_rounds(),
        "depth": DEPTH,
        "train_rows": TRAIN_ROWS,
        "train_s": round(train_s, 2),
        "cpus": os.cpu_count(),
        "xgboost": xgboost.__version__,
        "mlflow": mlflow.__version__,
        "a_pyfunc_s": round(a_s, 3),
        "b_inplace_predict_s": round(b_s, 3),
        "ratio_a_over_b": round(a_s / b_s, 2),
        "min_ratio_a_over_b": round(min(a_all) / min(b_all), 2),
        "goal_ratio": 1.3,
        "goal_met": a_s / b_s <= 1.3,
        "a_rows_per_s": round(rows / a_s),
        "b_rows_per_s": round(rows / b_s),
        "max_abs_diff_a_b": max_diff,
        "breakdown_s": {
            "model_input": round(convert_s, 3),
            "mlflow_schema_enforcement": round(enforce_s, 3),
            "feature_frame": round(features_s, 3),
            "inplace_predict": round(b_s, 3),
        },
        "all_a_s": [round(v, 3) for v in a_all],
        "all_b_s": [round(v, 3) for v in b_all],
        "serve_start_s": round(start_s, 1),
        "serve_1_row_p50_ms": _ms(one_s, 50),
        "serve_1_row_p95_ms": _ms(one_s, 95),
        f"serve_{BATCH_ROWS}_rows_p50_ms": _ms(batch_s, 50),
        f"serve_{BATCH_ROWS}_rows_p95_ms": _ms(batch_s, 95),
        f"serve_{BATCH_ROWS}_rows_per_s_at_p50": round(BATCH_ROWS / (_ms(batch_s, 50) / 1000)),
        "max_abs_diff_served_vs_batch": served_diff,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rows, args.repeats, args.requests), indent=2))


if __name__ == "__main__":
    main()
