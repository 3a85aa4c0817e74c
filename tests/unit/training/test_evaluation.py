"""Holdout metrics against hand-computed values and sklearn."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlops.training.evaluation import evaluate

Y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1])
S = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.6, 0.55, 0.1, 0.35])


def test_threshold_metrics_by_hand() -> None:
    m = evaluate(Y, S, threshold=0.5)
    # predicted positive: 0.9 (1), 0.8 (0), 0.7 (1), 0.6 (1), 0.55 (0) → tp=3, fp=2; positives: 5
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 5)
    assert m["positive_rate"] == pytest.approx(5 / 10)
    assert m["base_rate"] == pytest.approx(5 / 10)
    assert m["rows"] == 10.0
    m = evaluate(Y, S, threshold=0.65)  # 0.9, 0.8, 0.7 → tp=2, fp=1
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 5)
    assert m["positive_rate"] == pytest.approx(0.3)


def test_threshold_is_inclusive_and_nothing_predicted() -> None:
    assert evaluate(Y, S, threshold=0.9)["precision"] == 1.0
    m = evaluate(Y, S, threshold=0.95)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["positive_rate"] == 0.0


def test_auc_and_log_loss() -> None:
    m = evaluate(Y, S, threshold=0.5)
    assert m["auc"] == pytest.approx(roc_auc_score(Y, S))
    # positive/negative pairs ranked right: 0.9 beats 5, 0.7 beats 4, 0.6 beats 4, 0.4 and 0.35 beat 3
    assert m["auc"] == pytest.approx(19 / 25)
    expected = -np.mean(Y * np.log(S) + (1 - Y) * np.log(1 - S))
    assert m["log_loss"] == pytest.approx(expected)


def test_accepts_series_and_extreme_scores() -> None:
    m = evaluate(pd.Series(Y, dtype="Int64"), pd.Series([1.0, 0.0] * 5, dtype="float32"), threshold=0.5)
    assert math.isfinite(m["log_loss"])


def test_slices() -> None:
    slices = pd.Series(["a", "a", "a", "a", "b", "b", "b", "c", "c", None], index=range(100, 110))
    m = evaluate(Y, S, threshold=0.5, slices=slices)
    assert m["auc_slice_a"] == pytest.approx(roc_auc_score(Y[:4], S[:4]))
    assert m["auc_slice_b"] == pytest.approx(roc_auc_score(Y[4:7], S[4:7]))
    assert "auc_slice_c" not in m  # only negatives in slice c: skipped
    assert not [k for k in m if k.startswith("auc_slice_") and k not in ("auc_slice_a", "auc_slice_b")]


def test_slice_names_are_metric_safe() -> None:
    m = evaluate(Y, S, threshold=0.5, slices=pd.Series(["pro+plus"] * 10))
    assert "auc_slice_pro_plus" in m


def test_single_class_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"AUC is undefined: all 4 labels are 0"):
        evaluate(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]), threshold=0.5)


@pytest.mark.parametrize(
    ("y", "scores", "message"),
    [
        ([0, 1], [0.5], "same length"),
        ([0, 2], [0.5, 0.5], "0/1"),
        ([0, 1], [0.5, float("nan")], "NaN"),
        ([0, 1], [0.5, 1.5], r"\[0, 1\]"),
        ([], [], "zero rows"),
    ],
)
def test_bad_input(y: list, scores: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(np.array(y), np.array(scores), threshold=0.5)


def test_slices_length_must_match() -> None:
    with pytest.raises(ValueError, match="slices has 3 rows"):
        evaluate(Y, S, threshold=0.5, slices=pd.Series(["a", "b", "c"]))
