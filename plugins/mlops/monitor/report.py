"""Daily model monitoring: drift of one day against the champion's reference profile.

One pass per pipeline and day ``ds``: the day's validated frame is compared with the reference
profile saved next to the champion at training time (``mlops.drift`` format), the champion's
scores on the day with the profile's prediction entry, and, where the day's rows are labelled, the
champion's AUC with its holdout AUC. ``drift.decide`` turns that and the earlier days' flags into
a verdict; ``should_trigger`` applies the retraining policy (cooldown, backfills) on top of it.

The report is a plain JSON-serialisable dict (no NaN: undefined values are ``None``) so that it
can be written to the lake's ``reports`` zone, attached to an event, and read back as the history
of the next days. ``mlops.monitor.page.render_html`` makes a self-contained HTML page of it.

Pure Python (numpy, pandas; scipy through ``mlops.drift``; xgboost, through
``mlops.training.fit.feature_frame``, imported lazily). No Airflow or MLflow import: the operator that
loads the frame, the profile and the model calls these functions and stores what they return.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops.config.pipeline import Pipeline
from mlops.grain import Grain
from mlops.monitor import drift

logger = logging.getLogger(__name__)

REPORT_FORMAT = "mlops.monitoring/v1"
STATUS_INSUFFICIENT = "insufficient_rows"


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def current_features(frame: pd.DataFrame, pipeline: Pipeline) -> dict[str, np.ndarray]:
    """The day's feature columns in the form ``drift.compute_drift`` expects.

    Numeric features (int, float, bool) go through ``training.feature_frame``, exactly as the
    model and the reference profile see them (float32, missing as NaN), returned as float64 arrays.
    Categorical features are object arrays of the *raw* strings with ``None`` for missing: the
    profile counts values outside the YAML list in an "unseen" bin, which ``feature_frame`` would
    fold into missing. Features absent from ``frame`` are left out (``compute_drift`` lists them as
    missing).
    """
    from mlops.training.fit import feature_frame  # lazy: imports xgboost

    numeric = [f for f in pipeline.numeric_features if f in frame.columns]
    out: dict[str, np.ndarray] = {}
    if numeric:
        # Only the numeric features present: categoricals are taken raw below.
        X = feature_frame(frame, pipeline.model_copy(update={"features": numeric}))
        for name in numeric:
            out[name] = X[name].to_numpy(dtype=np.float64)
    for name in pipeline.categorical_features:
        if name not in frame.columns:
            continue
        series = frame[name]
        values = series.to_numpy(dtype=object, na_value=None)
        missing = pd.isna(series).to_numpy()
        if missing.any():  # NaN/NA that to_numpy did not turn into None (e.g. a float column)
            values[missing] = None
        out[name] = values
    # Keep the pipeline's feature order.
    return {name: out[name] for name in pipeline.features if name in out}


def reference_profile(pipeline: Pipeline, reference: pd.DataFrame, scores: Any) -> dict[str, Any]:
    """A drift reference profile of ``reference``'s features and the champion's ``scores``.

    The one builder: training writes the champion's profile with it, and the monitor builds a
    seasonal reference (``drift.reference: same_period_last_cycle``) with it, so the two agree.
    Open categories count their ``__other__`` bucket as a category: its share drifts like any other.
    """
    from mlops.training.fit import feature_frame  # lazy: imports xgboost

    X = feature_frame(reference, pipeline.model_copy(update={"features": pipeline.numeric_features}))
    numeric = {f: X[f].to_numpy() for f in pipeline.numeric_features}
    categorical = {
        f: (reference[f].to_numpy(dtype=object), pipeline.columns[f].categories)
        for f in pipeline.categorical_features
    }
    return drift.build_profile(numeric, categorical, scores, seed=pipeline.training.seed)


def history_from_reports(
    reports: Sequence[Mapping[str, Any]], ds: str | dt.date, window: int, grain: Grain
) -> list[bool]:
    """The ``day_drift`` flags of the ``window - 1`` partitions of ``grain`` before ``ds``, oldest first.

    ``reports`` are earlier reports (or any dicts with ``ds`` and ``verdict.day_drift``, or a flat
    ``day_drift``), in any order; reports for ``ds`` or later are ignored. A day without a report,
    or whose flag is missing, counts as not drifted; when a day has several reports, the last one
    in the list wins (a re-run replaces the earlier result).
    """
    day = grain.key(ds)
    flags: dict[str, bool] = {}
    for report in reports:
        try:
            when = grain.key(report["ds"])
        except (KeyError, TypeError, ValueError):
            continue
        if when >= day:
            continue
        verdict = report.get("verdict")
        flag = verdict.get("day_drift") if isinstance(verdict, Mapping) else report.get("day_drift")
        flags[when] = bool(flag)
    days = [grain.shift(day, -k) for k in range(max(window, 1) - 1, 0, -1)]
    return [flags.get(d, False) for d in days]


def thresholds_of(pipeline: Pipeline) -> drift.Thresholds:
    """The drift thresholds, with the persistence window in partitions of the pipeline's grain."""
    persistence = pipeline.drift.persistence.model_copy(update={"window": pipeline.windows.persistence})
    return drift.Thresholds.of(pipeline.drift.model_copy(update={"persistence": persistence}))


def _performance(
    pipeline: Pipeline, frame: pd.DataFrame, scores: np.ndarray, reference_auc: float | None
) -> dict[str, Any]:
    from mlops.training.evaluation import evaluate

    out: dict[str, Any] = {
        "n_labelled": 0,
        "auc": None,
        "log_loss": None,
        "reference_auc": _finite_or_none(reference_auc),
        "auc_drop": None,
        "note": None,
    }
    if pipeline.target not in frame.columns:
        out["note"] = f"target column {pipeline.target!r} is not in the frame"
        return out
    y = pd.to_numeric(frame[pipeline.target], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(y) & ~np.isnan(scores)
    out["n_labelled"] = int(keep.sum())
    if len(np.unique(y[keep])) < 2:
        out["note"] = f"{int(keep.sum())} labelled rows with a single class or none: AUC undefined"
        return out
    metrics = evaluate(y[keep], scores[keep], threshold=pipeline.training.threshold)
    out["auc"] = _finite_or_none(metrics["auc"])
    out["log_loss"] = _finite_or_none(metrics["log_loss"])
    if out["auc"] is not None and out["reference_auc"] is not None:
        out["auc_drop"] = out["reference_auc"] - out["auc"]
    return out


def _feature_kinds(profile: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(entry.get("kind")) for name, entry in profile.get("features", {}).items()}


# --------------------------------------------------------------------------------------------
# the monitoring pass
# --------------------------------------------------------------------------------------------


def monitor_day(
    *,
    pipeline: Pipeline,
    ds: str,
    frame: pd.DataFrame,
    profile: Mapping[str, Any],
    scores: np.ndarray,
    champion_version: str,
    reference_auc: float | None,
    history: list[dict],
    reference: Mapping[str, Any] | None = None,
    online: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Monitor one day: drift statistics, performance and the drift verdict, as a JSON-able dict.

    ``frame`` is the day's validated frame, ``scores`` the champion's probabilities on its rows
    (same order and length), ``history`` earlier reports (see ``history_from_reports``). Keys:

    * ``format``, ``pipeline``, ``ds``, ``champion_version``, ``n_rows``;
    * ``features``: ``{name: {"kind", "psi", "ks", "ks_pvalue"} | {"kind", "psi", "chi2",
      "chi2_pvalue", "js"}}`` for every profiled feature present in the frame;
    * ``missing_features``: profiled features absent from the frame;
    * ``prediction``: ``{"psi", "ks", "ks_pvalue"}`` of the scores, or None without a profile entry;
    * ``performance``: ``{"n_labelled", "auc", "log_loss", "reference_auc", "auc_drop", "note"}``
      (AUC and log loss only when the labelled rows hold both classes);
    * ``thresholds``: the ``drift.Thresholds`` applied; ``history``: the earlier flags used;
    * ``verdict``: ``drift.decide``'s result (``status`` is ``"insufficient_rows"`` below
      ``min_rows``: no verdict, ``day_drift`` False);
    * ``drifted_features``: ``[{"feature", "kind", <statistics>}]``, by PSI descending;
    * ``unexpected_columns``: frame columns the pipeline does not declare; ``warnings``: messages;
    * ``reference``: what the day was compared with (``{"kind", "days", "note"}``; the champion's
      own profile when not given);
    * ``online``: ``monitor.online.online_section``'s measures of the served rows, when given; its
      champion's decay counts toward the verdict as a ``performance`` reason ``online_auc_drop``.
    """
    grain = pipeline.grain
    day = grain.key(ds)
    scores_arr = np.asarray(scores, dtype=np.float64).ravel()
    if scores_arr.size != len(frame):
        raise ValueError(f"{len(frame)} rows in the frame but {scores_arr.size} scores")
    th = thresholds_of(pipeline)
    warnings: list[str] = []

    from mlops.quarantine.lineage import LINEAGE  # a replayed row's lineage: not data, not unexpected

    unexpected = [str(c) for c in frame.columns if c not in pipeline.columns and c not in LINEAGE]
    if unexpected:
        warnings.append(f"columns not declared by pipeline {pipeline.name!r}: {', '.join(unexpected)}")

    current = current_features(frame, pipeline)
    stats = drift.compute_drift(profile, current, scores_arr)
    # compute_drift takes the row count from the columns; a frame with no profiled column still has rows.
    stats["n_rows"] = len(frame)
    if stats["missing_features"]:
        warnings.append(f"profiled features missing from the frame: {', '.join(stats['missing_features'])}")
    unprofiled = [f for f in pipeline.features if f in current and f not in stats["features"]]
    if unprofiled:
        warnings.append(f"features without a reference profile entry: {', '.join(unprofiled)}")
    if scores_arr.size and np.isnan(scores_arr).any():
        warnings.append(f"{int(np.isnan(scores_arr).sum())} scores are NaN")

    performance = _performance(pipeline, frame, scores_arr, reference_auc)
    metrics = {"auc_drop": performance["auc_drop"]} if performance["auc_drop"] is not None else {}
    decay = (online or {}).get("champion") or {}
    if decay.get("decay"):
        metrics["online_auc_drop"] = decay["auc_drop"]
    flags = history_from_reports(history, day, th.window, grain)
    verdict = drift.decide(stats, th, flags, metrics or None)
    if verdict["status"] == STATUS_INSUFFICIENT:
        message = (
            f"{stats['n_rows']} rows on {day}, fewer than drift.min_rows={th.min_rows}: "
            f"no drift verdict for this {grain.name}"
        )
        verdict["message"] = message
        warnings.append(message)
        logger.warning("pipeline %s: %s", pipeline.name, message)
    if note := verdict.get("unreliable_note"):
        warnings.append(note)
    reference = dict(reference or {"kind": pipeline.drift.reference, "days": None, "note": None})
    if reference.get("note"):
        warnings.append(str(reference["note"]))

    kinds = _feature_kinds(profile)
    features = {name: {"kind": kinds.get(name), **s} for name, s in stats["features"].items()}
    drifted_names = list(
        dict.fromkeys(r["feature"] for r in verdict["reasons"] if r["scope"] == "feature" and r["feature"])
    )
    drifted = [{"feature": name, **features[name]} for name in drifted_names]
    drifted.sort(key=lambda d: -(d.get("psi") or 0.0))

    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "pipeline": pipeline.name,
        "ds": day,
        "champion_version": str(champion_version),
        "n_rows": int(stats["n_rows"]),
        "features": features,
        "missing_features": list(stats["missing_features"]),
        "prediction": stats["prediction"],
        "performance": performance,
        "thresholds": dataclasses.asdict(th),
        "history": flags,
        "verdict": verdict,
        "drifted_features": drifted,
        "unexpected_columns": unexpected,
        "warnings": warnings,
        "reference": reference,
        **({"online": dict(online)} if online is not None else {}),
    }
    logger.info(
        "pipeline %s ds %s champion %s: %s (%d drifted feature(s), %d of last %d days drifted)",
        pipeline.name,
        report["ds"],
        report["champion_version"],
        verdict["status"],
        len(drifted),
        verdict["drifted_days"],
        th.window,
    )
    return report


# --------------------------------------------------------------------------------------------
# retraining policy and events
# --------------------------------------------------------------------------------------------


def _summary(report: Mapping[str, Any]) -> str:
    verdict = report.get("verdict", {})
    parts = []
    for r in verdict.get("reasons", []):
        what = r["feature"] if r["scope"] == "feature" else r["scope"]
        parts.append(f"{what} {r['statistic']}={r['value']:.3g}>={r['threshold']:g}")
    return "; ".join(parts) or "no reasons"


def should_trigger(
    report: Mapping[str, Any],
    *,
    last_drift_trigger: str | None,
    cooldown_days: int,
    backfill: bool,
    allow_backfill_trigger: bool,
    champion_triggers: Sequence[str] = (),
    max_triggers_per_champion: int = 1,
    grain: Grain,
) -> tuple[bool, str]:
    """Whether this day's report should trigger retraining, and why (or why not).

    Triggers only when drift is declared (``verdict.drift``, persistence met), the run is not a
    backfill (unless ``allow_backfill_trigger``), the last drift trigger (a ds) is at least
    ``cooldown_days`` partitions of ``grain`` (days, for the daily grain) away from this ``ds``,
    and the champion the report was measured against
    has triggered fewer than ``max_triggers_per_champion`` retrains for other days
    (``champion_triggers``). The cooldown distance is taken both ways: a trigger recorded for a
    later day also blocks a re-run of an earlier one, and one recorded for the same day always
    blocks (re-running a day does not retrain twice) unless ``cooldown_days`` is 0. The
    per-champion limit is what keeps one shift to one retrain when the retrain takes longer than
    the cooldown (a queue of catch-up runs ahead of it): until a new champion replaces this one,
    its drift has already been acted on.
    """
    ds = grain.key(report["ds"])
    verdict = report.get("verdict", {})
    status = verdict.get("status")
    if not verdict.get("drift"):
        detail = ""
        if status == "unconfirmed":
            detail = (
                f" ({verdict.get('drifted_days')} of the last {verdict.get('window')} days drifted, "
                f"{verdict.get('required')} required)"
            )
        return False, f"no drift declared for {ds}: status {status}{detail}"
    if backfill and not allow_backfill_trigger:
        return False, (
            f"backfill: drift declared for {ds} but this is a backfill run and "
            f"drift.allow_backfill_trigger is false"
        )
    if last_drift_trigger and cooldown_days > 0:
        last = grain.key(last_drift_trigger)
        gap = grain.distance(last, ds)  # in partitions of the grain
        if abs(gap) < cooldown_days:
            unit = grain.name
            when = f"{gap} {unit}(s) ago" if gap >= 0 else f"{-gap} {unit}(s) later"
            return False, (
                f"cooldown: last drift retrain was triggered for {last}, {when}, "
                f"cooldown {cooldown_days} {unit}s"
            )
    earlier = sorted(d for d in champion_triggers if grain.key(d) != ds)
    if len(earlier) >= max_triggers_per_champion:
        return False, (
            f"drift declared for {ds} against champion version "
            f"{report.get('champion_version')}, which already triggered a retrain for "
            f"{', '.join(earlier)} (drift.max_triggers_per_champion={max_triggers_per_champion}); "
            f"a new champion resets the baseline"
        )
    return True, f"drift declared for {ds}: {_summary(report)}"


def _compact(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_compact(v) for v in value]
    return value


def drift_event_extra(report: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The payload of a drift event: ``{ds, champion_version, features, reason}``.

    ``features`` maps each drifted feature to its statistics (floats to 6 significant digits).
    """
    features = {
        d["feature"]: _compact({k: v for k, v in d.items() if k != "feature"})
        for d in report.get("drifted_features", [])
    }
    return {
        "ds": report["ds"],
        "champion_version": report["champion_version"],
        "features": features,
        "reason": str(reason),
    }
