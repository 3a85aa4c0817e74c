"""Rebuild a pipeline's index from what its stages committed before the index existed.

A lake written by an earlier release has validation reports, drift reports and predictions but no
index records: the Models view would show nothing for those partitions. ``rebuild`` reads each
partition's committed outputs once and writes the records the stages would have written: the
ingest record from the reports' and validated partition's manifests (and the quarantine's reason
column), the monitor record from ``drift.json``, the score record from the predictions' manifest.
Partitions without outputs get no record; re-running it rewrites the same records. Pure Python.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from mlops.index.records import (
    ingest_record,
    lake_relative,
    monitor_record,
    reason_counts,
    score_record,
    write_record,
)
from mlops.lake.storage import PartitionMissing, Storage, iter_partition, partition_dir, read_manifest
from mlops.monitor.report_store import read_report


def partition_keys(lake: Storage, pipeline: str) -> list[str]:
    """The partitions that have reports: every gated partition has them, passed or rejected."""
    prefix = f"{pipeline}/reports/"
    return sorted(
        {
            p[len(prefix) :].split("/", 1)[0].removeprefix("ds=")
            for p in lake.list_files(prefix)
            if "/ds=" in f"/{p}"
        }
    )


def _reasons(lake: Storage, pipeline: str, ds: str) -> dict[str, int]:
    import pyarrow.parquet as pq

    from mlops.ingest.validation import QUARANTINE_REASONS

    def column() -> Iterator[str]:
        for _, data in iter_partition(lake, partition_dir(pipeline, "quarantine", ds)):
            table = pq.read_table(io.BytesIO(data), columns=[QUARANTINE_REASONS])
            yield from (str(v) for v in table.column(0).to_pylist() if v is not None)

    try:
        return reason_counts(column())
    except PartitionMissing:
        return {}


def rebuild(lake: Storage, pipeline: str) -> dict[str, int]:
    """Write every record the lake's outputs support; returns how many of each stage."""
    written = {"ingest": 0, "monitor": 0, "score": 0}
    for ds in partition_keys(lake, pipeline):
        try:
            reports = read_manifest(lake, partition_dir(pipeline, "reports", ds)).extra
        except PartitionMissing:
            continue
        passed = bool(reports.get("passed"))
        counts = {"rows": 0, "validated": 0, "quarantined": 0}
        if passed:
            try:
                counts |= read_manifest(lake, partition_dir(pipeline, "validated", ds)).extra
            except PartitionMissing:
                continue  # reports without the data they passed: an interrupted run, not a record
        failures = [
            {**f, "message": lake_relative(str(f.get("message", "")), lake)}
            for f in reports.get("failures") or []
        ]
        record = ingest_record(
            passed=passed,
            rows=int(counts["rows"]),
            validated=int(counts["validated"]),
            quarantined=int(counts["quarantined"]),
            reasons=_reasons(lake, pipeline, ds) if passed else {},
            failures=failures,
            message="passed" if passed else "; ".join(str(f.get("message", "")) for f in failures[:3]),
        )
        write_record(lake, pipeline, ds, "ingest", record)
        written["ingest"] += 1
        if (report := read_report(lake, pipeline, ds)) is not None:
            write_record(lake, pipeline, ds, "monitor", monitor_record(report))
            written["monitor"] += 1
        try:
            scored = read_manifest(lake, partition_dir(pipeline, "predictions", ds)).extra
        except PartitionMissing:
            continue
        write_record(
            lake,
            pipeline,
            ds,
            "score",
            score_record(
                rows=int(scored.get("rows", 0)),
                version=str(scored.get("model_version", "")),
                airflow_run_id=str(scored.get("airflow_run_id", "")),
            ),
        )
        written["score"] += 1
    return written
