"""Online measures: the rows the serving service answered, against labels that arrived later.

The service commits what it answered to ``served/ds=<S>/`` (``mlops.serving``; columns
``_served_at``, ``_request_id``, ``_model_version``, the key when the request sent it, the features,
``score``, ``label``). Labels arrive with the ingest of a later partition: a validated partition
carries the target of its keys. The monitor run for day ``D`` measures, on the logical clock (only
served rows and labels of partitions ``<= D``):

* **online accuracy** of each served partition ``S`` of the label window (the ``window`` partitions
  ending with ``D``), per model version: rows served, rows labelled, AUC, log loss and accuracy
  where defined. A served row's label is its key's target in the first validated partition from
  ``S`` to ``D`` that holds the key (the last row of the key there, by event time). A row without a
  key, or whose key no partition holds yet, is unlabelled: its day's figures grow as labels come.
* **decay**: the champion's rows over the window, pooled, against the champion's reference AUC; it
  decays when the drop reaches ``drift.auc_drop_threshold`` on at least ``drift.min_rows`` labelled
  rows holding both classes. The monitor counts it toward the drift trigger.
* **drift on served traffic**: the served rows of ``D`` (their features and served scores) against
  the reference profile, with the batch partition's statistics (reported, not counted).

The probe's requests (``_request_id`` starting ``probe-``) are not traffic and are left out. The
served zone is written on the wall clock: a run for ``D`` while ``D`` is still served sees the rows
committed so far (``served_rows`` says how many). Pure Python over ``Storage`` (pandas; scikit-learn
through ``training.evaluation``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops.lake.batches import parquet_batches
from mlops.lake.storage import PartitionMissing, Storage, is_committed, partition_dir
from mlops.serving.probe import PROBE_REQUEST_PREFIX

if TYPE_CHECKING:
    from mlops.config.pipeline import Pipeline

SERVED_AT, REQUEST_ID, MODEL_VERSION, SCORE = "_served_at", "_request_id", "_model_version", "score"
# Served partitions whose labels the monitor still looks for: a week of partitions of the grain.
LABEL_WINDOW = 7


def _typed_key(series: pd.Series, pipeline: Pipeline) -> pd.Series:
    """The key in one dtype on both sides of the join (served rows may hold it as sent)."""
    kind = pipeline.columns[pipeline.key].type
    if kind == "int":
        return pd.to_numeric(series, errors="coerce").astype("Int64")
    if kind == "float":
        return pd.to_numeric(series, errors="coerce").astype("Float64")
    return series.astype("string")


def read_served(
    lake: Storage, pipeline: Pipeline, ds: str, columns: list[str] | None = None
) -> pd.DataFrame | None:
    """The served rows of partition ``ds`` without the probe's (``columns`` and the request id), or
    None when the partition has none committed."""
    directory = partition_dir(pipeline.name, "served", ds)
    if not is_committed(lake, directory):
        return None
    wanted = None if columns is None else list(dict.fromkeys([*columns, REQUEST_ID]))
    try:
        frames = list(parquet_batches(lake, directory, columns=wanted, batch_rows=pipeline.batch_rows))
    except PartitionMissing:  # withdrawn between the two reads
        return None
    if not frames:
        return None
    frame = pd.concat(frames, ignore_index=True)
    probe = frame[REQUEST_ID].astype("string").str.startswith(PROBE_REQUEST_PREFIX).fillna(False)
    return frame[~probe.to_numpy(dtype=bool)].reset_index(drop=True)


def _labels_of(lake: Storage, pipeline: Pipeline, ds: str) -> pd.DataFrame | None:
    """Key and target of a validated partition, one row per key (its last by event time)."""
    directory = partition_dir(pipeline.name, "validated", ds)
    if not is_committed(lake, directory):
        return None
    columns = [pipeline.key, pipeline.target, pipeline.event_time]
    frames = list(parquet_batches(lake, directory, columns=columns, batch_rows=pipeline.batch_rows))
    if not frames:
        return None
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.assign(_key=_typed_key(frame[pipeline.key], pipeline))
    frame["_y"] = pd.to_numeric(frame[pipeline.target], errors="coerce")
    frame = frame.dropna(subset=["_key", "_y"]).sort_values(pipeline.event_time, kind="stable")
    return frame.drop_duplicates("_key", keep="last")[["_key", "_y"]]


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def accuracy_of(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """AUC, log loss and accuracy of labelled rows; the AUC and log loss need both classes."""
    from mlops.training.evaluation import evaluate

    out: dict[str, Any] = {"rows_labelled": len(y), "auc": None, "log_loss": None, "accuracy": None}
    if not len(y):
        return out
    out["accuracy"] = float(np.mean((scores >= threshold).astype(float) == y))
    if len(np.unique(y)) < 2:
        out["note"] = f"{len(y)} labelled rows of a single class: AUC and log loss undefined"
        return out
    metrics = evaluate(y, scores, threshold=threshold)
    out["auc"], out["log_loss"] = _finite(metrics["auc"]), _finite(metrics["log_loss"])
    return out


def _day_rows(served: pd.DataFrame, labels: pd.DataFrame | None, pipeline: Pipeline) -> pd.DataFrame:
    """Served rows with their label (``_y``, NaN when not known yet)."""
    sent = served[pipeline.key] if pipeline.key in served.columns else pd.Series(None, index=served.index)
    keys = _typed_key(sent, pipeline)
    rows = pd.DataFrame(
        {
            "_key": keys,
            MODEL_VERSION: served[MODEL_VERSION].astype("string"),
            SCORE: pd.to_numeric(served[SCORE], errors="coerce"),
        }
    )
    if labels is None:
        return rows.assign(_y=np.nan)
    joined = rows.merge(labels, on="_key", how="left")
    joined.loc[joined["_key"].isna(), "_y"] = np.nan  # a missing key never matches a missing key
    return joined


def online_accuracy(
    lake: Storage, pipeline: Pipeline, ds: str, *, window: int = LABEL_WINDOW
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Per served partition of the label window and per model version: ``{ds, model_version,
    rows_served, rows_labelled, auc, log_loss, accuracy}`` (oldest first); and every labelled row of
    the window (``ds``, ``_model_version``, ``score``, ``_y``), for pooled measures.

    Reads the validated partitions newest first, keeping for each key the first label at or after
    the partition read, so each served partition is joined once, in one pass.
    """
    grain, threshold = pipeline.grain, pipeline.training.threshold
    days = grain.last(ds, window)
    wanted = [pipeline.key, MODEL_VERSION, SCORE]
    labels: pd.DataFrame | None = None
    found: list[dict[str, Any]] = []
    labelled: list[pd.DataFrame] = []
    for day in reversed(days):
        # This partition's labels win over the later ones: a row's label is the first one from its day.
        here = _labels_of(lake, pipeline, day)
        if here is not None:
            labels = here if labels is None else pd.concat([here, labels]).drop_duplicates("_key")
        served = read_served(lake, pipeline, day, wanted)
        if served is None or served.empty:
            continue
        rows = _day_rows(served, labels, pipeline)
        for version, group in rows.groupby(MODEL_VERSION, sort=True, dropna=False):
            known = group.dropna(subset=["_y", SCORE])
            measured = accuracy_of(known["_y"].to_numpy(float), known[SCORE].to_numpy(float), threshold)
            found.append({"ds": day, "model_version": str(version), "rows_served": len(group), **measured})
        labelled.append(rows.dropna(subset=["_y", SCORE]).assign(ds=day))
    found.sort(key=lambda r: (r["ds"], r["model_version"]))
    pooled = (
        pd.concat(labelled, ignore_index=True)
        if labelled
        else pd.DataFrame(columns=["ds", MODEL_VERSION, SCORE, "_y"])
    )
    return found, pooled


def decay_of(
    pooled: pd.DataFrame, pipeline: Pipeline, *, champion_version: str, reference_auc: float | None
) -> dict[str, Any]:
    """The champion's online AUC over the window against its reference AUC, and whether it decays."""
    mine = pooled[pooled[MODEL_VERSION].astype("string") == str(champion_version)]
    measured = accuracy_of(
        mine["_y"].to_numpy(float), mine[SCORE].to_numpy(float), pipeline.training.threshold
    )
    reference = _finite(reference_auc)
    drop = reference - measured["auc"] if reference is not None and measured["auc"] is not None else None
    cfg = pipeline.drift
    enough = measured["rows_labelled"] >= cfg.min_rows
    decay = bool(enough and drop is not None and drop >= cfg.auc_drop_threshold)
    note = measured.pop("note", None)
    if not enough:
        note = (
            f"{measured['rows_labelled']} labelled served rows of version {champion_version}, fewer "
            f"than drift.min_rows={cfg.min_rows}: no decay verdict"
        )
    elif reference is None:
        note = f"version {champion_version} has no reference AUC: no decay verdict"
    return {
        "model_version": str(champion_version),
        **measured,
        "days": sorted(set(mine["ds"])),
        "reference_auc": reference,
        "auc_drop": drop,
        "threshold": cfg.auc_drop_threshold,
        "decay": decay,
        "note": note,
    }


def served_drift(
    lake: Storage, pipeline: Pipeline, ds: str, profile: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Drift of partition ``ds``'s served rows (features and served scores) against ``profile``:
    ``{n_rows, features, missing_features, prediction, day_drift, reasons}``, None without rows."""
    from mlops.monitor import drift
    from mlops.monitor.report import current_features, thresholds_of

    served = read_served(lake, pipeline, ds)
    if served is None or served.empty:
        return None
    features = [f for f in pipeline.features if f in served.columns]
    scores = pd.to_numeric(served[SCORE], errors="coerce").to_numpy(dtype=np.float64)
    stats = drift.compute_drift(profile, current_features(served[features], pipeline), scores)
    stats["n_rows"] = len(served)
    verdict = drift.decide(stats, thresholds_of(pipeline))
    return {
        "n_rows": len(served),
        "features": stats["features"],
        "missing_features": list(stats["missing_features"]),
        "prediction": stats["prediction"],
        "status": verdict["status"],
        "day_drift": verdict["day_drift"],
        "reasons": verdict["reasons"],
    }


def online_section(
    lake: Storage,
    pipeline: Pipeline,
    ds: str,
    *,
    champion_version: str,
    reference_auc: float | None,
    profile: Mapping[str, Any],
    window: int = LABEL_WINDOW,
) -> dict[str, Any] | None:
    """The drift report's ``online`` section for day ``ds``, or None when no partition of the label
    window was served (a pipeline without the service pays a few existence checks)."""
    days = pipeline.grain.last(ds, window)
    if not any(is_committed(lake, partition_dir(pipeline.name, "served", d)) for d in days):
        return None
    accuracy, pooled = online_accuracy(lake, pipeline, ds, window=window)
    return {
        "label_window": {"first": days[0], "last": days[-1], "partitions": window},
        "served_rows": {d: sum(r["rows_served"] for r in accuracy if r["ds"] == d) for d in days},
        "accuracy": accuracy,
        "champion": decay_of(
            pooled, pipeline, champion_version=champion_version, reference_auc=reference_auc
        ),
        "drift": served_drift(lake, pipeline, ds, profile),
    }
