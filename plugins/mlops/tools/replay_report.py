"""The outcome of a replay, day by day, read back from the lake and the registry.

``python -m mlops report replay [--pipeline churn]`` prints one row per day: whether the day was
validated, the champion as of the day, the version its predictions name, the drift verdict and
whether it fired, and the train decisions that took effect on the day. Nothing in it depends on the
wall clock or on run ids, so two replays of the same history give the same bytes whatever their
speed. The replay table in docs/quickstart.md is this command's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.clock.logical import read_record
from mlops.clock.window import day_state
from mlops.lake.storage import Storage, is_committed, partition_dir, read_manifest
from mlops.monitor.report_store import fired, read_report

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


def last_day(lake: Storage, pipeline: Any) -> str:
    if pipeline.end_date:
        return pipeline.end_date.isoformat()
    days = [p.split("ds=", 1)[1][:10] for p in lake.list_files(f"{pipeline.name}/raw") if "ds=" in p]
    return max(days, default=pipeline.start_date.isoformat())
