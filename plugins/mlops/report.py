"""The outcome of a replay, day by day, read back from the lake and the registry.

``python -m mlops.report replay [--pipeline churn]`` prints one row per day: whether the day was
validated, the champion as of the day, the version its predictions name, the drift verdict and
whether it fired, and the train decisions that took effect on the day. Nothing in it depends on the
wall clock or on run ids, so two replays of the same history give the same bytes whatever their
speed. The README's replay table is this command's output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from typing import Any

from mlops.clock import read_record
from mlops.drift_reports import fired, read_report
from mlops.lake import Storage, is_committed, partition_dir, read_manifest
from mlops.window import day_state

KINDS = ("schedule", "drift", "manual")
HEADER = ("day", "data", "champion", "scored by", "monitor", "train decisions effective this day")


def _metric(metrics: dict[str, Any] | None, who: str, name: str) -> str:
    value = ((metrics or {}).get(who) or {}).get(name)
    return "-" if value is None else f"{value:.4f}"


def _decision(record: Any, metric: str) -> str:
    if record.outcome == "failed":
        return f"{record.kind}: failed ({record.reason[:80]})"
    versus = (
        f" vs v{record.champion_version} {_metric(record.metrics, 'champion', metric)}"
        if record.champion_version
        else ""
    )
    compared = f" ({metric} {_metric(record.metrics, 'challenger', metric)}{versus})"
    return f"{record.kind}: v{record.version} {record.outcome.replace('_', ' ')}{compared}"


def _verdict(report: dict[str, Any] | None) -> str:
    if report is None:
        return "-"
    status = str((report.get("verdict") or {}).get("status"))
    return f"{status}, fires" if fired(report) else status


def replay_rows(
    lake: Storage, pipeline: Any, champion_on: Callable[[str], str | None], last: str
) -> list[tuple[str, ...]]:
    """One row per day from the pipeline's start through ``last``."""
    name, metric = pipeline.name, pipeline.promotion.primary_metric
    rows = []
    grain = pipeline.grain
    day = grain.key(pipeline.start_date)
    while day <= last:
        state = {"ready": "validated", "failed": "rejected", "pending": "-"}[day_state(lake, name, day)]
        predictions = partition_dir(name, "predictions", day)
        scored = (
            f"v{read_manifest(lake, predictions).extra.get('model_version')}"
            if is_committed(lake, predictions)
            else "-"
        )
        champion = champion_on(day)
        decisions = [
            _decision(record, metric)
            for kind in KINDS
            if (record := read_record(lake, name, grain.shift(day, -1), kind)) is not None
        ]
        rows.append(
            (
                day,
                state,
                f"v{champion}" if champion else "-",
                scored,
                _verdict(read_report(lake, name, day)),
                "; ".join(decisions) or "",
            )
        )
        day = grain.shift(day, 1)
    return rows


def markdown(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _last_day(lake: Storage, pipeline: Any) -> str:
    if pipeline.end_date:
        return pipeline.end_date.isoformat()
    days = [p.split("ds=", 1)[1][:10] for p in lake.list_files(f"{pipeline.name}/raw") if "ds=" in p]
    return max(days, default=pipeline.start_date.isoformat())


def main(argv: list[str] | None = None) -> int:
    from mlflow import MlflowClient

    from mlops.config import load_pipeline
    from mlops.preflight import mlflow_uri_from_env
    from mlops.registry import champion_on, history
    from mlops.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m mlops.report", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["replay"])
    parser.add_argument("--pipeline", default="churn")
    parser.add_argument("--last", type=dt.date.fromisoformat, help="last day (default: end_date)")
    args = parser.parse_args(argv)

    settings = get_settings()
    pipeline = load_pipeline(settings.pipelines_dir / f"{args.pipeline}.yaml")
    uri = mlflow_uri_from_env(settings.mlflow_conn_id, os.environ)
    if uri is None:
        print(
            f"report: no MLflow tracking URI ({settings.mlflow_conn_id} or MLFLOW_TRACKING_URI)",
            file=sys.stderr,
        )
        return 2
    from mlops.hooks.lake import storage_for
    from mlops.hooks.signing import signing_key

    # The champion of each day from signed moves only, as score and monitor read it.
    moves = history(MlflowClient(tracking_uri=uri, registry_uri=uri), pipeline.name, signing_key())

    lake = storage_for(settings.lake_root, settings.aws_conn_id)
    last = args.last.isoformat() if args.last else _last_day(lake, pipeline)
    sys.stdout.write(markdown(replay_rows(lake, pipeline, lambda ds: champion_on(moves, ds), last)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
