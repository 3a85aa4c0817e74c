"""Scale benchmark: rows against time and peak RSS for each stage, up to a 16M-row day and a
100M-row training window.

    .venv/bin/python -m bench.run --only scale          (as part of ``make bench``)

Ingest (land + validate + quarantine + commit), score and monitor run on a generated churn day of
1M, 4M and 16M rows; training runs XGBoost's iterator over a window of 1M-row validated partitions
(100M rows at full size). Every measurement is its own subprocess, so each peak RSS
(``ru_maxrss``) is that stage's alone: imports, Great Expectations and the model included, which is
what a worker pays. The goals of the issue this answers:

- time grows with an exponent of at most 1.05 from the smallest to the largest day
  (``log(t_16M / t_1M) / log(16)``);
- peak RSS of ingest, monitor and score at the largest day within 1.2x of the smallest's;
- training's peak RSS within 1.5x of its quantized matrix (the figure XGBoost reports).

The generated data lives under ``.local/bench/scale/`` and is removed afterwards. The day is the
demo's generator (``mlops.tools.scenario.generate_day``: ~1% bad rows of three kinds) in chunks of
1M rows, each chunk's keys offset so that keys are unique across the day, written to one CSV
without ever holding the day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".local" / "bench" / "scale"
CHUNK_ROWS = 1_000_000
KEY_STRIDE = 10_000_000  # per chunk: above the generator's key pool (5x its rows)
FIRST_DAY = dt.date(2026, 1, 5)
PLOT = ROOT / "bench" / "records" / "scale.png"


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- data ----------------------------------------------------------------------------------------


def scale_pipeline(rows: int, batch_rows: int) -> Any:
    """The churn pipeline with its row-count limit raised to ``rows`` and the batch size set."""
    from mlops.config.pipeline import load_pipeline

    churn = load_pipeline(ROOT / "include" / "pipelines" / "churn.yaml")
    row_count = churn.validation.row_count.model_copy(
        update={"max": max(2 * rows, churn.validation.row_count.max)}
    )
    checks = churn.validation.model_copy(update={"row_count": row_count})
    return churn.model_copy(update={"validation": checks, "batch_rows": batch_rows})


def _chunk(day: dt.date, index: int, rows: int) -> Any:
    from mlops.tools.scenario import ScenarioConfig, generate_day

    config = ScenarioConfig(
        start=day,
        end=day,
        rows_per_day=rows,
        seed=1000 + index,
        corrupt_day=None,
        missing_column_day=None,
        shift_start=None,
    )
    frame = generate_day(config, day)
    frame["customer_id"] = frame["customer_id"] + index * KEY_STRIDE
    return config, frame


def write_day_csv(path: Path, day: dt.date, rows: int) -> int:
    """A churn day of about ``rows`` rows as one CSV file, written a chunk at a time; returns rows."""
    from mlops.tools.scenario import encode_day

    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("wb") as out:
        for index in range(math.ceil(rows / CHUNK_ROWS)):
            config, frame = _chunk(day, index, min(CHUNK_ROWS, rows - index * CHUNK_ROWS))
            data = encode_day(config, day, frame)
            out.write(data if index == 0 else data[data.index(b"\n") + 1 :])
            written += len(frame)
    return written


# --- stages, each in a child process ----------------------------------------------------------


def _ingest(work: Path, ds: str, rows: int, batch_rows: int) -> dict[str, Any]:
    from mlops.ingest.stage import gate, land, partition_interval
    from mlops.ingest.suite import build_suite
    from mlops.lake.storage import LocalStorage

    pipeline = scale_pipeline(rows, batch_rows)
    suite = build_suite(pipeline)
    source, lake = LocalStorage(work / "landing" / pipeline.name), LocalStorage(work / "lake")
    start, end = partition_interval(ds, pipeline.grain)
    base = _peak_rss()
    t0 = time.perf_counter()
    land(source, lake, pipeline, ds)
    report = gate(lake, pipeline, suite, ds, interval_start=start, interval_end=end)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_rss_bytes": _peak_rss(),
        "rss_before_bytes": base,
        "rows": report.rows,
        "validated": report.validated,
        "quarantined": report.quarantined,
    }


def _champion(work: Path, ds: str, batch_rows: int) -> dict[str, Any]:
    """A small model trained on the smallest day, logged as the package's pyfunc model, and its
    drift profile: what score and monitor are run with."""
    import mlflow
    import xgboost

    from mlops.lake.batches import parquet_batches
    from mlops.lake.storage import LocalStorage, partition_dir
    from mlops.model.pyfunc import log_model, model_input
    from mlops.monitor.report import reference_profile
    from mlops.training.fit import predict, prepare_frame

    pipeline = scale_pipeline(CHUNK_ROWS, batch_rows)
    lake = LocalStorage(work / "lake")
    frame = next(parquet_batches(lake, partition_dir(pipeline.name, "validated", ds), batch_rows=200_000))
    X, y = prepare_frame(frame, pipeline)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 6, "tree_method": "hist", "nthread": 2, "seed": 0},
        xgboost.DMatrix(X, y, enable_categorical=True),
        num_boost_round=50,
    )
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mlflow.set_experiment("scale-bench")
    (work / "model").mkdir(exist_ok=True)
    pipeline_yaml = (ROOT / "include" / "pipelines" / "churn.yaml").read_text()
    with mlflow.start_run():
        info = log_model(booster, pipeline_yaml, model_input(frame.head(20), pipeline), work / "model")
    profile = reference_profile(pipeline, frame, predict(booster, X, booster.num_boosted_rounds() - 1))
    (work / "profile.json").write_text(json.dumps(profile))
    return {"model_uri": info.model_uri}


def _load_model(work: Path, model_uri: str) -> Any:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    return mlflow.pyfunc.load_model(model_uri)


def _score(work: Path, ds: str, rows: int, batch_rows: int, model_uri: str) -> dict[str, Any]:
    from mlops.lake.storage import LocalStorage
    from mlops.score.batch import score_partition

    pipeline, lake = scale_pipeline(rows, batch_rows), LocalStorage(work / "lake")
    model = _load_model(work, model_uri)
    base = _peak_rss()
    t0 = time.perf_counter()
    scored = score_partition(lake, pipeline, ds, model, version="1", airflow_run_id="bench")
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_bytes": _peak_rss(),
        "rss_before_bytes": base,
        "rows": scored.rows,
    }


def _monitor(work: Path, ds: str, rows: int, batch_rows: int, model_uri: str) -> dict[str, Any]:
    from mlops.lake.storage import LocalStorage
    from mlops.monitor.stage import Champion, monitor_partition

    pipeline, lake = scale_pipeline(rows, batch_rows), LocalStorage(work / "lake")
    profile = json.loads((work / "profile.json").read_text())
    champion = Champion("1", _load_model(work, model_uri), profile, reference_auc=None, triggers=[])
    base = _peak_rss()
    t0 = time.perf_counter()
    outcome = monitor_partition(lake, pipeline, ds, champion, backfill=True)
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_bytes": _peak_rss(),
        "rss_before_bytes": base,
        "rows": (outcome.report or {}).get("n_rows"),
        "status": outcome.status,
    }


def _train(work: Path, partitions: int, rows: int, rounds: int, batch_rows: int) -> dict[str, Any]:
    from bench.bench_training import iterator_window

    return iterator_window(work / "window", partitions, rows, rounds, batch_rows=batch_rows)


STAGES = {"ingest": _ingest, "champion": _champion, "score": _score, "monitor": _monitor, "train": _train}


def _child(stage: str, **kwargs: Any) -> dict[str, Any]:
    """Run one stage in a fresh interpreter; its peak RSS is its own."""
    cmd = [sys.executable, "-m", "bench.bench_scale", "--child", stage, json.dumps(kwargs, default=str)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} {kwargs}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the curve ---------------------------------------------------------------------------------


def exponent(small: dict[str, Any], large: dict[str, Any]) -> float:
    """The time exponent between two sizes: 1.0 is linear."""
    return math.log(large["seconds"] / small["seconds"]) / math.log(large["rows"] / small["rows"])


def plot(curve: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Rows against seconds and against peak RSS, one line per stage, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for stage, points in curve.items():
        rows = [p["rows"] for p in points]
        left.plot(rows, [p["seconds"] for p in points], marker="o", label=stage)
        right.plot(rows, [p["peak_rss_bytes"] / 2**20 for p in points], marker="o", label=stage)
    for axis, label in ((left, "seconds"), (right, "peak RSS (MiB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("rows")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.suptitle("Stage cost against rows (one process per point)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(
    rows: list[int] | None = None,
    window_partitions: int = 100,
    partition_rows: int = 1_000_000,
    rounds: int = 10,
    batch_rows: int = 250_000,
) -> dict[str, Any]:
    rows = rows or [1_000_000, 4_000_000, 16_000_000]
    shutil.rmtree(WORK, ignore_errors=True)
    curve: dict[str, list[dict[str, Any]]] = {"ingest": [], "score": [], "monitor": []}
    try:
        model_uri = None
        for i, n in enumerate(sorted(rows)):
            day = FIRST_DAY + dt.timedelta(days=i)
            ds = day.isoformat()
            t0 = time.perf_counter()
            generated = write_day_csv(WORK / "landing" / "churn" / f"ds={ds}" / "part-000.csv", day, n)
            print(
                f"[scale] generated {generated} rows for {ds} in {time.perf_counter() - t0:.0f} s", flush=True
            )
            common = {"work": str(WORK), "ds": ds, "rows": generated, "batch_rows": batch_rows}
            curve["ingest"].append({**_child("ingest", **common), "generated": generated})
            shutil.rmtree(WORK / "landing" / "churn" / f"ds={ds}")
            shutil.rmtree(WORK / "lake" / "churn" / "raw" / f"ds={ds}")  # the landed copy
            if model_uri is None:
                model_uri = _child("champion", work=str(WORK), ds=ds, batch_rows=batch_rows)["model_uri"]
            curve["score"].append(_child("score", **common, model_uri=model_uri))
            curve["monitor"].append(_child("monitor", **common, model_uri=model_uri))
            print(f"[scale] {n}: {json.dumps({k: v[-1] for k, v in curve.items()})}", flush=True)
        train = _child(
            "train",
            work=str(WORK),
            partitions=window_partitions,
            rows=partition_rows,
            rounds=rounds,
            batch_rows=batch_rows,
        )
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    plot({**curve, "train": [train]}, PLOT)
    return {
        "rows": sorted(rows),
        "batch_rows": batch_rows,
        "curve": curve,
        "train": train,
        "window_partitions": window_partitions,
        "partition_rows": partition_rows,
        "rounds": rounds,
        "plot": str(PLOT.relative_to(ROOT)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "KWARGS"))
    parser.add_argument("--rows", type=int, nargs="+")
    parser.add_argument("--partitions", type=int, default=100)
    args = parser.parse_args()
    if args.child:
        stage, kwargs = args.child
        params = json.loads(kwargs)
        if "work" in params:
            params["work"] = Path(params["work"])
        print(json.dumps(STAGES[stage](**params)))
        return
    print(json.dumps(run(args.rows, window_partitions=args.partitions), indent=1))


if __name__ == "__main__":
    main()
