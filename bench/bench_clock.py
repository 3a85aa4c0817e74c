"""Benchmark: the logical clock's settle check (``mlops.clock.logical.Past``) on a year of history.

    .venv/bin/python bench/bench_clock.py --days 365 --repeats 50

Prints JSON. A local lake holds ``days`` published days with their drift reports, a weekly train
record per Monday, and a registry history of one move a week. Three figures, medians of
``repeats`` runs after a warm-up:

- steady state: ``before_publish`` of the next day (what ``wait_for_past`` asks once a day);
- catch-up: ``before_publish`` after a 30-day gap of unpublished days (the walk back);
- baseline: the one lake question a day-after-day pipeline asks anyway, "is yesterday committed?"
  (``is_committed``), in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from mlops.clock.logical import AirflowRuns, Past, TrainingRecord, scheduled_fires, shift, write_record
from mlops.config.pipeline import load_pipeline
from mlops.lake.storage import LocalStorage, commit_partition, is_committed, partition_dir
from mlops.monitor.report_store import write_report
from mlops.registry.champion import RecordedMove, champion_on

ROOT = Path(__file__).resolve().parents[1]


def _median(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(days: int = 365, repeats: int = 50) -> dict[str, Any]:
    start = dt.date(2025, 1, 1)
    pipeline = load_pipeline(ROOT / "include/pipelines/churn.yaml").model_copy(
        update={"start_date": start, "end_date": None}
    )
    all_days = [shift(start, i, pipeline.grain) for i in range(days + 31)]
    published, gap = all_days[:days], all_days[days : days + 30]
    with tempfile.TemporaryDirectory() as tmp:
        lake = LocalStorage(tmp)
        moves: list[RecordedMove] = []
        for ds in published:
            commit_partition(lake, partition_dir("churn", "validated", ds), {"part.parquet": b"x"})
            write_report(lake, "churn", {"ds": ds, "trigger": {"fire": False}}, "")
            if scheduled_fires(pipeline, ds):
                write_record(
                    lake,
                    "churn",
                    TrainingRecord(shift(ds, -1, pipeline.grain), "schedule", "promoted", "r", "1"),
                )
                moves.append(RecordedMove(version=str(len(moves) + 1), effective_day=ds))
        # The gap: ingest runs that ended without publishing (no data, failed): the walk goes over them.
        runs = AirflowRuns(ingest=lambda ds: "finished", scheduled_train=lambda fire: "finished")
        past = Past(lake, pipeline, lambda ds: champion_on(moves, ds), runs)
        steady, after_gap = all_days[days], all_days[days + 30]
        assert past.before_publish(steady) == [], past.before_publish(steady)
        assert past.before_publish(after_gap) == []
        return {
            "days": days,
            "repeats": repeats,
            "moves": len(moves),
            "steady_s": _median(lambda: past.before_publish(steady), repeats),
            "catch_up_30_days_s": _median(lambda: past.before_publish(after_gap), repeats),
            "baseline_s": _median(
                lambda: is_committed(lake, partition_dir("churn", "validated", published[-1])), repeats
            ),
            "gap_days": len(gap),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(run(args.days, args.repeats), indent=1))


if __name__ == "__main__":
    main()
