"""Holdout metrics for a binary classifier, overall and per slice. Pure Python (sklearn, numpy)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_UNSAFE = re.compile(r"[^0-9A-Za-z_\-./ ]")


def _slice_key(value: object) -> str:
    # MLflow metric names allow letters, digits and _ - . / and space; anything else becomes _.
    return "auc_slice_" + _UNSAFE.sub("_", str(value))


def evaluate(
    y: np.ndarray | pd.Series,
    scores: np.ndarray | pd.Series,
    *,
    threshold: float,
    slices: pd.Series | None = None,
    single_class: bool = False,
) -> dict[str, float]:
    """Metrics of ``scores`` (probabilities of class 1) against 0/1 labels ``y``.

    * ``auc``, ``log_loss``: threshold-free.
    * ``precision``, ``recall``: predicting 1 where ``score >= threshold``; precision is 0.0 when
      nothing is predicted positive.
    * ``positive_rate``: fraction predicted positive at the threshold; ``base_rate``: fraction of
      labels that are 1.
    * ``rows``: number of rows.
    * ``auc_slice_<value>``: AUC within each value of ``slices`` (matched to ``y`` by position).
      Slices with a single class, and rows whose slice value is missing, are skipped: AUC is
      undefined there, and a missing key is honest where a made-up number is not.

    With ``single_class``, labels of one class give every metric but the AUCs (undefined there);
    without it, raises ValueError when ``y`` has a single class, on a length mismatch, on
    labels other than 0/1, or on scores that are NaN or outside [0, 1].
    """
    from sklearn.metrics import log_loss, roc_auc_score

    y_arr = np.asarray(y, dtype="float64")
    s_arr = np.asarray(scores, dtype="float64")
    if y_arr.shape != s_arr.shape or y_arr.ndim != 1:
        raise ValueError(f"y and scores must be 1-D of the same length; got {y_arr.shape} and {s_arr.shape}")
    if len(y_arr) == 0:
        raise ValueError("cannot evaluate on zero rows")
    if np.isnan(s_arr).any():
        raise ValueError(f"scores contain {int(np.isnan(s_arr).sum())} NaN values")
    if s_arr.min() < 0.0 or s_arr.max() > 1.0:
        raise ValueError(f"scores must be probabilities in [0, 1]; got [{s_arr.min():g}, {s_arr.max():g}]")
    classes = np.unique(y_arr)
    if not np.isin(classes, (0.0, 1.0)).all():
        raise ValueError(f"labels must be 0/1; found {classes[:10].tolist()}")
    if len(classes) < 2 and not single_class:
        raise ValueError(
            f"AUC is undefined: all {len(y_arr)} labels are {classes[0]:g}; the evaluation set needs both classes"
        )

    truth = y_arr == 1.0
    predicted = s_arr >= threshold
    tp = int(np.sum(truth & predicted))
    n_pred = int(predicted.sum())
    n_true = int(truth.sum())
    metrics: dict[str, float] = {
        **({"auc": float(roc_auc_score(truth, s_arr))} if len(classes) == 2 else {}),
        "log_loss": float(log_loss(truth, s_arr, labels=[False, True])),
        "precision": tp / n_pred if n_pred else 0.0,
        "recall": tp / n_true if n_true else 0.0,
        "positive_rate": n_pred / len(y_arr),
        "base_rate": n_true / len(y_arr),
        "rows": float(len(y_arr)),
    }

    if slices is not None:
        if len(slices) != len(y_arr):
            raise ValueError(f"slices has {len(slices)} rows, y has {len(y_arr)}")
        codes, uniques = pd.factorize(pd.Series(slices).reset_index(drop=True), sort=True)
        for code, value in enumerate(uniques):
            mask = codes == code
            if len(np.unique(truth[mask])) < 2:
                continue
            metrics[_slice_key(value)] = float(roc_auc_score(truth[mask], s_arr[mask]))
    return metrics
