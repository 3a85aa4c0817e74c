"""Where a day's drift report lives in the lake, and reading it back.

``reports/ds=YYYY-MM-DD/drift/`` holds ``drift.json`` (the report ``monitoring.monitor_day`` builds,
with the trigger decision) and ``drift.html``, committed together. Pure Python over ``Storage``.
"""

from __future__ import annotations

import json
from typing import Any

from mlops.grain import Grain
from mlops.index.records import monitor_record, write_record
from mlops.lake.storage import Storage, commit_partition, is_committed, partition_dir, read_partition

REPORT, PAGE = "drift.json", "drift.html"


def report_dir(pipeline: str, ds: str) -> str:
    return f"{partition_dir(pipeline, 'reports', ds)}/drift"


def read_report(lake: Storage, pipeline: str, ds: str) -> dict[str, Any] | None:
    """The committed drift report of ``ds``, or None when the day has none."""
    directory = report_dir(pipeline, ds)
    if not is_committed(lake, directory):
        return None
    return json.loads(read_partition(lake, directory)[REPORT])


def write_report(lake: Storage, pipeline: str, report: dict[str, Any], page: str) -> None:
    """Commit the day's report and page, then its summary in the lake's index."""
    commit_partition(
        lake,
        report_dir(pipeline, report["ds"]),
        {REPORT: json.dumps(report, default=str).encode(), PAGE: page.encode()},
    )
    write_record(lake, pipeline, report["ds"], "monitor", monitor_record(report))


def earlier_reports(lake: Storage, pipeline: str, ds: str, days: int, grain: Grain) -> list[dict[str, Any]]:
    """The drift reports of the ``days`` partitions before ``ds`` (and of ``ds`` itself), oldest first."""
    found = []
    for key in grain.last(ds, days + 1):
        report = read_report(lake, pipeline, key)
        if report is not None:
            found.append(report)
    return found


def fired(report: dict[str, Any] | None) -> bool:
    """Whether the report's day triggered a drift retrain."""
    return bool(report and (report.get("trigger") or {}).get("fire"))
