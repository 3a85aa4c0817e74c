"""The monitor stage for one partition: drift of day ``ds`` against the champion as of ``ds``.

``monitor_partition`` reads the day's validated rows, scores them with the champion, measures the
served rows of the label window (``monitor.online``: online accuracy and decay, drift of the served
traffic), builds the report (``monitoring.monitor_day``) with the verdicts of the days before,
applies the retraining policy as of the day, and commits the report to ``reports/ds=.../drift/``.
The operator only turns the outcome into Airflow (logs, the MLflow run, the drift event and the
``performance_decay`` notice). Pure Python over ``Storage``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.lake.storage import PartitionMissing, Storage, partition_dir, read_partition
from mlops.monitor.report_store import earlier_reports, fired, write_report

if TYPE_CHECKING:
    from mlops.config.pipeline import Pipeline


@dataclass(frozen=True)
class Champion:
    """The model a day is monitored against, with what it was shown to do at training time."""

    version: str
    model: Any  # a pyfunc model: ``predict(frame)``
    profile: dict[str, Any]
    reference_auc: float | None
    triggers: list[str]  # days whose drift this champion already triggered a retrain for


@dataclass(frozen=True)
class MonitorOutcome:
    """One day's result: ``status`` is the verdict's, or ``no_partition``."""

    ds: str
    status: str
    champion_version: str | None
    fire: bool
    reason: str
    report: dict[str, Any] | None = None
    page: str | None = None
    event: dict[str, Any] | None = None  # the drift event's extra when ``fire``


def _read_days(lake: Storage, pipeline: Pipeline, days: list[str]) -> tuple[list[str], Any]:
    """The validated rows of those of ``days`` that have a partition (and which days those were)."""
    import pandas as pd

    found, frames = [], []
    for day in days:
        try:
            files = read_partition(lake, partition_dir(pipeline.name, "validated", day))
        except PartitionMissing:
            continue
        found.append(day)
        frames.extend(pd.read_parquet(io.BytesIO(b)) for b in files.values())
    return found, (pd.concat(frames, ignore_index=True) if frames else None)


def seasonal_reference(
    lake: Storage, pipeline: Pipeline, ds: str, champion: Champion
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The profile a partition is compared with under ``drift.reference: same_period_last_cycle``.

    The monitored partition's own period one ``drift.cycle`` earlier (the same month last year, the
    same hour yesterday): the same partitions shifted back by the cycle, never a window of another
    length, whose mix of periods would differ from the monitored one's (a holdout of February and
    March against March). Profiled with the champion's scores on it. Before a cycle of data
    exists, the champion's own profile, and the returned reference says so.
    """
    from mlops.model.pyfunc import model_input
    from mlops.monitor.report import reference_profile

    cycle, grain = pipeline.windows.cycle or 0, pipeline.grain
    span = [grain.shift(ds, -cycle)]
    days, frame = _read_days(lake, pipeline, span)
    if frame is None or frame.empty:
        note = (
            f"drift.reference same_period_last_cycle: no validated partition {', '.join(span)} "
            f"({cycle} {grain.name} partitions before); compared with the champion's holdout instead"
        )
        return champion.profile, {"kind": "holdout", "days": None, "note": note}
    scores = champion.model.predict(model_input(frame, pipeline))
    profile = reference_profile(pipeline, frame, scores)
    return profile, {"kind": "same_period_last_cycle", "days": days, "note": None}


def monitor_partition(
    lake: Storage, pipeline: Pipeline, ds: str, champion: Champion, *, backfill: bool, rerun: bool = False
) -> MonitorOutcome:
    """Monitor day ``ds`` against ``champion`` and commit its report; nothing is written without data.

    ``rerun``: the day was already acted on and its data changed since (a quarantine replay); its
    report is recomputed but decides no retrain, whatever the config says of backfills.
    """
    import pandas as pd

    from mlops.model.pyfunc import model_input
    from mlops.monitor.online import online_section
    from mlops.monitor.page import render_html
    from mlops.monitor.report import current_features, drift_event_extra, monitor_day, should_trigger

    name, cfg = pipeline.name, pipeline.drift
    try:
        files = read_partition(lake, partition_dir(name, "validated", ds))
    except PartitionMissing:
        return MonitorOutcome(ds, "no_partition", champion.version, False, "no validated partition")
    frame = pd.concat([pd.read_parquet(io.BytesIO(b)) for b in files.values()], ignore_index=True)
    scores = champion.model.predict(model_input(frame, pipeline))
    windows, grain = pipeline.windows, pipeline.grain
    lookback = max(windows.persistence, windows.retrain_cooldown, 14)
    reports = earlier_reports(lake, name, ds, lookback, grain)
    before = [r for r in reports if r["ds"] < ds]
    profile, reference = champion.profile, None
    if cfg.reference == "same_period_last_cycle":
        profile, reference = seasonal_reference(lake, pipeline, ds, champion)
    online = online_section(
        lake,
        pipeline,
        ds,
        champion_version=champion.version,
        reference_auc=champion.reference_auc,
        profile=champion.profile,
    )
    report = monitor_day(
        pipeline=pipeline,
        ds=ds,
        frame=frame,
        profile=profile,
        scores=scores,
        champion_version=champion.version,
        reference_auc=champion.reference_auc,
        history=before,
        reference=reference,
        online=online,
    )
    triggered = [r["ds"] for r in reports if fired(r)]
    fire, why = should_trigger(
        report,
        last_drift_trigger=triggered[-1] if triggered else None,
        cooldown_days=windows.retrain_cooldown,
        grain=grain,
        backfill=backfill or rerun,
        allow_backfill_trigger=cfg.allow_backfill_trigger and not rerun,
        champion_triggers=[d for d in champion.triggers if d < ds],
        max_triggers_per_champion=cfg.max_triggers_per_champion,
    )
    if rerun:
        why = f"re-run after a quarantine replay, the day was already acted on: no retrain ({why})"
    report["trigger"] = {"fire": fire, "reason": why}
    page = render_html(
        report, profile=profile, frame_features=current_features(frame, pipeline), trend=before
    )
    write_report(lake, name, report, page)
    return MonitorOutcome(
        ds=ds,
        status=str(report["verdict"].get("status")),
        champion_version=champion.version,
        fire=fire,
        reason=why,
        report=report,
        page=page,
        event=drift_event_extra(report, why) if fire else None,
    )


def monitor_partitions(
    lake: Storage,
    pipeline: Pipeline,
    days: list[str],
    *,
    champion_for: Callable[[str], Champion | None],
    backfill: bool,
    log: Callable[[str], None],
    rerun: bool = False,
) -> list[MonitorOutcome]:
    """The monitor stage over a run's days, oldest first, each against the champion as of it.

    Days without a champion or data are logged and left out. Stops after a day that fires: the
    retrain it asks for decides the champion of the days after it.
    """
    outcomes = []
    for i, ds in enumerate(sorted(days)):
        champion = champion_for(ds)
        if champion is None:
            log(f"{pipeline.name} {ds}: no champion as of this day, nothing to monitor against")
            continue
        outcome = monitor_partition(lake, pipeline, ds, champion, backfill=backfill, rerun=rerun)
        log(f"{pipeline.name} {ds} (champion v{champion.version}): {outcome.status}; {outcome.reason}")
        if outcome.report is not None:
            outcomes.append(outcome)
        if outcome.fire:
            left = sorted(days)[i + 1 :]
            if left:
                log(
                    f"{pipeline.name}: stopping at {ds}, whose drift triggers a retrain; left for a later run: {', '.join(left)}"
                )
            break
    return outcomes
