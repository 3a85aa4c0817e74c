"""Benchmark: backfill throughput of ``churn_ingest`` on the embedded stack, against Airflow's floor.

    .venv/bin/python -m bench.bench_backfill --days 30 --max-active-runs 4

Prints JSON. One embedded stack of its own (free ports, a temporary state folder) with catch-up
off, so nothing runs until the backfills are created through the REST API, one after the other:

- the floor: ``floor_ingest``, a DAG of the same shape (a reschedule sensor, a task, a reschedule
  sensor, a task) whose tasks do nothing, backfilled over the same days;
- ``churn_ingest`` over ``days`` days of demo data (2000 rows a day).

Each figure is the wall time from the backfill's creation until its last run ended; the ratio is
ours over the floor's. Task-seconds per task (the sum of the task instances' durations) say where
the time goes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.embedded_stack import Api, EmbeddedStack  # noqa: E402

START = dt.date(2026, 1, 1)
FLOOR_DAG = '''
"""Airflow's floor for a backfill: the shape of <pipeline>_ingest, with tasks that do nothing."""
import datetime as dt

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, CronDataIntervalTimetable

with DAG(
    "floor_ingest",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime({y}, {m}, {d}, tzinfo=dt.UTC),
    end_date=dt.datetime({ey}, {em}, {ed}, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs={runs},
    tags=["bench"],
):
    (
        PythonSensor(task_id="wait_for_source", python_callable=lambda: True, mode="reschedule")
        >> PythonOperator(task_id="land", python_callable=lambda: None)
        >> PythonSensor(task_id="wait_for_past", python_callable=lambda: True, mode="reschedule")
        >> PythonOperator(task_id="validate", python_callable=lambda: None)
    )
'''


def backfill(api: Api, dag_id: str, days: int, max_active_runs: int, timeout_s: float) -> dict[str, Any]:
    """Backfill ``dag_id`` over ``days`` days from START; the wall time and the runs' task-seconds."""
    last = START + dt.timedelta(days=days - 1)
    body = {
        "dag_id": dag_id,
        "from_date": f"{START.isoformat()}T00:00:00Z",
        "to_date": f"{last.isoformat()}T00:00:00Z",
        "max_active_runs": max_active_runs,
        "reprocess_behavior": "none",
    }
    started = time.monotonic()
    for attempt in range(30):
        try:
            api.call("POST", "/api/v2/backfills", body)
            break
        except RuntimeError as exc:
            # On SQLite, Airflow refuses to create a backfill while the scheduler writes (503).
            if "Database is locked" not in str(exc) or attempt == 29:
                raise
            time.sleep(2)
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        runs = [r for r in api.runs(dag_id) if r["run_type"] == "backfill"]
        if len(runs) == days and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(2)
    else:
        raise TimeoutError(f"{dag_id}: the backfill did not end within {timeout_s:.0f}s")
    wall = time.monotonic() - started
    task_seconds: dict[str, float] = defaultdict(float)
    for run in runs:
        for task_id, task in api.tasks(dag_id, run["dag_run_id"]).items():
            task_seconds[task_id] += task.get("duration") or 0.0
    return {
        "wall_s": wall,
        "succeeded": sum(r["state"] == "success" for r in runs),
        "task_seconds": dict(task_seconds),
    }


def run(days: int = 30, max_active_runs: int = 4) -> dict[str, Any]:
    end = START + dt.timedelta(days=days - 1)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        dags = Path(tmp) / "dags"
        dags.mkdir()
        for source in (ROOT / "dags").glob("*.py"):
            (dags / source.name).symlink_to(source)
        (dags / "floor_ingest.py").write_text(
            FLOOR_DAG.format(
                y=START.year,
                m=START.month,
                d=START.day,
                ey=end.year,
                em=end.month,
                ed=end.day,
                runs=max_active_runs,
            )
        )
        settings = [
            f"start_date={START}", f"end_date={end}", "schedules.catchup=false",
            f"schedules.max_active_ingest_runs={max_active_runs}", "schedules.settle_poke_seconds=10",
            "source.poke_interval_seconds=10", "retries=0",
        ]  # fmt: skip
        scenario = [
            "--start", str(START), "--end", str(end), "--rows-per-day", "2000",
            "--corrupt-day", "none", "--missing-column-day", "none", "--shift-start", "none",
        ]  # fmt: skip
        stack = EmbeddedStack(Path(tmp) / "stack", settings, scenario, parallelism=max_active_runs)
        stack.env["MLOPS_DAGS_FOLDER"] = str(dags)
        try:
            stack.start()
            api = stack.api()
            for _ in range(60):  # the DAG processor has parsed the floor DAG
                if any(d["dag_id"] == "floor_ingest" for d in api.get("/api/v2/dags?limit=100")["dags"]):
                    break
                time.sleep(2)
            # Both DAGs end before today, so nothing else is scheduled: on SQLite, Airflow refuses to
            # create a backfill while the scheduler writes, and a half-made one can stop the scheduler.
            time.sleep(20)
            floor = backfill(api, "floor_ingest", days, max_active_runs, timeout_s=1200)
            ours = backfill(api, "churn_ingest", days, max_active_runs, timeout_s=2400)
        finally:
            stack.stop()
    return {
        "days": days,
        "max_active_runs": max_active_runs,
        "floor": floor,
        "ingest": ours,
        "ratio": ours["wall_s"] / floor["wall_s"],
        "floor_days_per_min": days / (floor["wall_s"] / 60),
        "ingest_days_per_min": days / (ours["wall_s"] / 60),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--max-active-runs", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.days, args.max_active_runs), indent=1))


if __name__ == "__main__":
    main()
