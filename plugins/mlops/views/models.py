"""What the Models view shows, as plain data: a pipeline's model life from the index and the registry.

Inputs are the lake's index (``mlops.index.records``: one summary per stage and partition) and the
registry's versions with their signed champion moves (``mlops.registry.champion.history``). Outputs
are dictionaries the page renders and the JSON API returns unchanged. Every "latest" and "since" is
counted on the logical clock, from the newest partition the index holds, never from today's date.
Pure Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.registry.champion import RecordedMove, champion_on

# The health mark's rules; the page states them in these words.
STALE_AFTER = 30  # partitions since the champion's training window ended
HEALTH_RULES = (
    ("red", "no champion, or the newest partition was rejected by the gate"),
    (
        "amber",
        "the newest drift verdict is drift, the newest partition quarantined more than half of "
        "validation.max_quarantine_fraction, or the champion's window ended more than "
        f"{STALE_AFTER} partitions before the newest one",
    ),
    ("green", "otherwise"),
)


@dataclass(frozen=True)
class VersionPoint:
    """One registered version on the champion timeline."""

    version: str
    as_of: str  # the logical partition its training window ended on ("" when unrecorded)
    trigger: str  # schedule, drift, manual, backfill (the training run's)
    metric: float | None  # the gate's holdout figure, else the best trial's validation figure
    metric_source: str  # "holdout" or "validation"
    gate: str  # promoted, refused, would_promote (a backfill's), or "" (no gate decision)
    gate_decision: str
    moves: list[dict[str, str]] = field(default_factory=list)  # signed moves that made it champion
    approvals: list[dict[str, str]] = field(default_factory=list)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def version_points(versions: Sequence[Any], moves: Sequence[RecordedMove], metric: str) -> list[VersionPoint]:
    """The registry's versions (objects with ``version`` and ``tags``), oldest first.

    Moves come from ``history``: only signed records mark a version promoted; a tag set by hand
    marks nothing.
    """
    by_version: dict[str, list[dict[str, str]]] = {}
    for move in moves:
        by_version.setdefault(move.version, []).append(
            {
                "kind": move.kind,
                "effective_day": move.effective_day,
                "reason": move.reason,
                "airflow_run_id": move.airflow_run_id,
                "previous": move.previous or "",
            }
        )
    points = []
    for record in sorted(versions, key=lambda v: int(v.version)):
        tags = record.tags
        holdout = _float(tags.get(f"gate.{metric}"))
        approvals = []
        for kind in ("promotion", "rollback"):
            if f"approval.{kind}.decision" in tags:
                approvals.append(
                    {
                        "kind": kind,
                        "decision": tags[f"approval.{kind}.decision"],
                        "by": tags.get(f"approval.{kind}.by", ""),
                        "comment": tags.get(f"approval.{kind}.comment", ""),
                        "at": tags.get(f"approval.{kind}.at", ""),
                        "timed_out": tags.get(f"approval.{kind}.timed_out", ""),
                    }
                )
        points.append(
            VersionPoint(
                version=str(record.version),
                as_of=tags.get("window.as_of", ""),
                trigger=tags.get("trigger", ""),
                metric=holdout if holdout is not None else _float(tags.get(f"valid.{metric}")),
                metric_source="holdout" if holdout is not None else "validation",
                gate=tags.get("gate.outcome", ""),
                gate_decision=tags.get("gate.decision", ""),
                moves=by_version.get(str(record.version), []),
                approvals=approvals,
            )
        )
    return points


def promoted_by(move: RecordedMove | None, point: VersionPoint | None) -> str:
    """Which kind of run made the champion: rollback, approval, or the training run's trigger."""
    if move is None:
        return ""
    if move.kind == "rollback":
        return "rollback"
    if point and any(a["kind"] == "promotion" and a["decision"] == "approved" for a in point.approvals):
        return "approval"
    return (point.trigger if point else "") or "schedule"


def _latest(index: Mapping[str, Mapping[str, Any]], stage: str) -> tuple[str, dict[str, Any]] | None:
    for ds in reversed(list(index)):
        if stage in index[ds]:
            return ds, dict(index[ds][stage])
    return None


def _gap(days: Sequence[str], start: str, end: str) -> int | None:
    """Partitions from ``start`` to ``end`` among ``days`` (the index's, in order)."""
    if not start or not end:
        return None
    return sum(1 for d in days if start < d <= end)


def overview(
    pipeline: Any,
    index: Mapping[str, Mapping[str, Any]],
    points: Sequence[VersionPoint],
    moves: Sequence[RecordedMove],
    *,
    registry_error: str = "",
) -> dict[str, Any]:
    """One pipeline's overview row, with its health mark and the reasons for it."""
    days = list(index)
    latest = _latest(index, "ingest")
    latest_day = latest[0] if latest else ""
    # The champion as of the newest partition, by the signed history (the logical clock's answer).
    champion = champion_on(moves, latest_day) if latest_day else (moves[-1].version if moves else None)
    move = next(
        (
            m
            for m in reversed(moves)
            if m.version == champion and (not latest_day or m.effective_day <= latest_day)
        ),
        None,
    )
    point = next((p for p in points if p.version == champion), None)
    drift = _latest(index, "monitor")
    probed = _latest(index, "probe")
    retrained = max((p.as_of for p in points), default="")
    since_retrain = _gap(days, retrained, latest_day)
    ingest = latest[1] if latest else {}
    threshold = pipeline.validation.max_quarantine_fraction
    red: list[str] = []
    if champion is None:
        red.append("no champion")
    if latest and not ingest.get("passed"):
        red.append(f"{latest_day} rejected: {ingest.get('message', '')}")
    amber: list[str] = []
    if registry_error:
        amber.append(f"registry unreachable: {registry_error}")
    if drift and drift[1].get("status") == "drift":
        amber.append(f"drift on {drift[0]}")
    if ingest.get("passed") and ingest.get("quarantine_rate", 0.0) > threshold / 2:
        amber.append(f"{ingest['quarantine_rate']:.1%} quarantined on {latest_day} (limit {threshold:.0%})")
    champion_as_of = point.as_of if point else ""
    stale = _gap(days, champion_as_of, latest_day)
    if stale is not None and stale > STALE_AFTER:
        amber.append(f"champion trained on data up to {champion_as_of}, {stale} partitions before the newest")
    mark = "red" if red else "amber" if amber else "green"
    return {
        "pipeline": pipeline.name,
        "metric_name": pipeline.promotion.primary_metric,
        "champion": champion,
        "champion_metric": point.metric if point else None,
        "promoted_on": move.effective_day if move else "",
        "promoted_by": promoted_by(move, point),
        "promoted_run": move.airflow_run_id if move else "",
        "latest_day": latest_day,
        "latest_rows": ingest.get("rows"),
        "latest_quarantine_rate": ingest.get("quarantine_rate"),
        "latest_passed": ingest.get("passed"),
        "drift_day": drift[0] if drift else "",
        "drift_status": drift[1].get("status", "") if drift else "",
        "last_retrain": retrained,
        "partitions_since_retrain": since_retrain,
        "uptime_day": probed[0] if probed else "",
        "uptime": probed[1].get("availability") if probed else None,
        "health": mark,
        "health_reasons": red + amber,
        "registry_error": registry_error,
    }


def detail(
    pipeline: Any,
    index: Mapping[str, Mapping[str, Any]],
    points: Sequence[VersionPoint],
    moves: Sequence[RecordedMove],
    *,
    pending: Sequence[Mapping[str, Any]] = (),
    registry_error: str = "",
) -> dict[str, Any]:
    """The pipeline page's data: every series its charts draw, day by day."""
    days = list(index)
    ingest = [{"ds": d, **index[d]["ingest"]} for d in days if "ingest" in index[d]]
    monitor = [{"ds": d, **index[d]["monitor"]} for d in days if "monitor" in index[d]]
    score = [{"ds": d, **index[d]["score"]} for d in days if "score" in index[d]]
    probe = [{"ds": d, **index[d]["probe"]} for d in days if "probe" in index[d]]
    features = sorted({name for m in monitor for name in m.get("psi", {})})
    decisions = [{"version": p.version, **a} for p in points for a in p.approvals]
    decisions.sort(key=lambda a: a.get("at", ""))
    return {
        "overview": overview(pipeline, index, points, moves, registry_error=registry_error),
        "versions": [asdict(p) for p in points],
        "moves": [
            {"version": m.version, "kind": m.kind, "effective_day": m.effective_day, "reason": m.reason}
            for m in moves
        ],
        "ingest": ingest,
        "monitor": monitor,
        "features": features,
        "psi_threshold": pipeline.drift.psi_threshold,
        "quarantine_limit": pipeline.validation.max_quarantine_fraction,
        "score": score,
        "probe": probe,
        "slo": {"p95_ms": pipeline.serving.slo.p95_ms, "availability": pipeline.serving.slo.availability},
        "reasons": quarantine_reasons(ingest),
        "approvals": {"pending": list(pending), "decisions": decisions},
    }


def quarantine_reasons(ingest: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each failed check over the partitions: rows quarantined for it, in how many partitions, the
    first and last of them; most rows first."""
    found: dict[str, dict[str, Any]] = {}
    for r in ingest:
        for reason, rows in (r.get("reasons") or {}).items():
            entry = found.setdefault(reason, {"reason": reason, "rows": 0, "partitions": 0, "first": r["ds"]})
            entry["rows"] += int(rows)
            entry["partitions"] += 1
            entry["last"] = r["ds"]
    return sorted(found.values(), key=lambda e: (-e["rows"], e["reason"]))
