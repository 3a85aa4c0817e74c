"""The lake's index: one small summary per stage and partition, written by the stage that decided it.

A page that shows a pipeline's year (the Models view) must not open 365 validation results and
drift reports per view. Each stage therefore commits, beside its outputs, a summary of what it
decided for the partition: ``<pipeline>/index/ds=<key>/<stage>/`` is a committed partition with no
files whose manifest ``extra`` is the record (one read per record, atomic like every partition, and
re-written by a re-run). ``ingest`` says rows, counts, quarantine reasons and the verdict; ``monitor``
the per-feature PSI, prediction drift, performance decay and the trigger; ``score`` rows and the
version; ``probe`` the serving service's probes of the partition (availability, p50 and p95). A day rejected after it was scored loses its ``monitor`` and ``score`` records with the
outputs they describe.

``IndexReader`` reads a pipeline's records with one listing and re-reads only the manifests that
changed since its last read. Pure Python over ``Storage``.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from mlops.lake.storage import (
    MANIFEST,
    PartitionMissing,
    Storage,
    commit_partition,
    partition_dir,
    read_manifest,
    withdraw_partition,
)

Stage = Literal["ingest", "monitor", "score", "probe"]
STAGES: tuple[Stage, ...] = ("ingest", "monitor", "score", "probe")
FORMAT = 1
# Reasons and features beyond these are summed up, not listed: a record stays small whatever the data.
MAX_REASONS = 20
MAX_FAILURES = 10
MAX_TEXT = 300


def record_dir(pipeline: str, ds: str, stage: Stage) -> str:
    return f"{partition_dir(pipeline, 'index', ds)}/{stage}"


def write_record(lake: Storage, pipeline: str, ds: str, stage: Stage, record: Mapping[str, Any]) -> None:
    """Commit ``record`` as the ``stage`` summary of partition ``ds`` (replacing an earlier one)."""
    commit_partition(
        lake, record_dir(pipeline, ds, stage), {}, extra={"format": FORMAT, "stage": stage, **record}
    )


def withdraw_records(lake: Storage, pipeline: str, ds: str, stages: Iterable[Stage]) -> None:
    for stage in stages:
        withdraw_partition(lake, record_dir(pipeline, ds, stage))


def _text(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def lake_relative(text: str, lake: Storage) -> str:
    """``text`` with the lake's own address cut from the paths it names: a record reads the same
    wherever the lake lives, and a page shows no machine's folders."""
    root = lake.uri("").rstrip("/") + "/"
    return text.replace(root, "") if root != "/" else text


def reason_counts(reasons: Iterable[str], limit: int | None = MAX_REASONS) -> dict[str, int]:
    """Quarantined rows per failed check (a row failing two checks counts under each), largest first
    (then by name); beyond ``limit`` checks the rest are summed as ``(other checks)``."""
    counts: Counter[str] = Counter()
    for joined in reasons:
        if isinstance(joined, str):  # a null is no reason
            counts.update(part for part in joined.split("; ") if part)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if limit is None or len(ranked) <= limit:
        return dict(ranked)
    top = ranked[:limit]
    return {**dict(top), "(other checks)": sum(counts.values()) - sum(n for _, n in top)}


def ingest_record(
    *,
    passed: bool,
    rows: int,
    validated: int,
    quarantined: int,
    reasons: Mapping[str, int],
    failures: list[dict[str, Any]],
    message: str,
    replayed_by: str = "",
) -> dict[str, Any]:
    """The gate's decision on a partition: counts, the quarantine's reasons, the failures if rejected;
    ``replayed_by``: the quarantine replay run that last changed the counts."""
    return {
        "replayed_by": replayed_by,
        "passed": passed,
        "rows": int(rows),
        "validated": int(validated),
        "quarantined": int(quarantined),
        "quarantine_rate": (quarantined / rows) if rows else 0.0,
        "reasons": {str(k): int(v) for k, v in reasons.items()},
        "failures": [
            {"expectation": _text(f.get("expectation", "")), "message": _text(f.get("message", ""))}
            for f in failures[:MAX_FAILURES]
        ],
        "message": _text(message),
    }


def _finite(value: Any) -> float | None:
    """A statistic as a number a JSON page can carry: NaN and infinities (a constant feature's
    statistics) become None, shown as "no figure"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def monitor_record(report: Mapping[str, Any]) -> dict[str, Any]:
    """A drift report (``monitor.report.monitor_day`` with its ``trigger``) cut to what a chart needs."""
    verdict = report.get("verdict") or {}
    performance = report.get("performance") or {}
    prediction = report.get("prediction") or {}
    thresholds = report.get("thresholds") or {}
    return {
        "champion_version": str(report.get("champion_version", "")),
        "rows": int(report.get("n_rows") or 0),
        "status": str(verdict.get("status", "")),
        "psi": {
            name: _finite(stats.get("psi"))
            for name, stats in (report.get("features") or {}).items()
            if isinstance(stats, Mapping)
        },
        "psi_threshold": thresholds.get("psi_threshold"),
        "prediction_psi": _finite(prediction.get("psi")) if isinstance(prediction, Mapping) else None,
        "prediction_psi_threshold": thresholds.get("prediction_psi_threshold"),
        "auc_drop": _finite(performance.get("auc_drop")),
        "auc_drop_threshold": thresholds.get("auc_drop_threshold"),
        "fired": bool((report.get("trigger") or {}).get("fire")),
        "trigger_reason": _text((report.get("trigger") or {}).get("reason") or ""),
    }


def score_record(*, rows: int, version: str, airflow_run_id: str) -> dict[str, Any]:
    return {"rows": int(rows), "version": str(version), "airflow_run_id": airflow_run_id}


class IndexReader:
    """A pipeline's records, ``{ds: {stage: record}}``, kept between reads.

    One listing per read; a manifest is read again only when the listing shows it changed (its
    tag: an S3 ETag, a local inode and mtime), so a page view of a settled year reads nothing.
    Safe to share between threads.
    """

    def __init__(self, lake: Storage) -> None:
        self.lake = lake
        self._seen: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def read(self, pipeline: str) -> dict[str, dict[str, dict[str, Any]]]:
        prefix = f"{pipeline}/index/"
        listed = {
            entry.path: entry.tag or f"{entry.size}:{entry.mtime}"
            for entry in self.lake.stat_files(prefix)
            if entry.path.endswith(f"/{MANIFEST}") and not entry.link
        }
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for path, tag in listed.items():
            parts = path[len(prefix) :].split("/")
            if len(parts) != 3 or not parts[0].startswith("ds=") or parts[1] not in STAGES:
                continue
            with self._lock:
                cached = self._seen.get(path)
            if cached is None or cached[0] != tag:
                try:
                    record = read_manifest(self.lake, path.rsplit("/", 1)[0]).extra
                except PartitionMissing:  # withdrawn since the listing
                    continue
                cached = (tag, record)
                with self._lock:
                    self._seen[path] = cached
            found.setdefault(parts[0].removeprefix("ds="), {})[parts[1]] = cached[1]
        with self._lock:  # forget withdrawn records
            for path in [p for p in self._seen if p.startswith(prefix) and p not in listed]:
                del self._seen[path]
        return dict(sorted(found.items()))
