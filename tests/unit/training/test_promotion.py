"""The promotion gate: each way a challenger can win or lose, and the tags written on a move."""

from __future__ import annotations

import pytest

from mlops.config.pipeline import Promotion
from mlops.training.promotion import better, decide, improvement

AUC = Promotion(primary_metric="auc", min_improvement=0.002, floor=0.6, max_slice_regression=0.02)
LOGLOSS = Promotion(primary_metric="log_loss", min_improvement=0.005, floor=0.5, max_slice_regression=0.02)


def test_better_handles_direction() -> None:
    assert better("auc", 0.8, 0.7) and not better("auc", 0.7, 0.8)
    assert better("log_loss", 0.3, 0.4) and not better("log_loss", 0.4, 0.3)
    assert not better("auc", 0.8, 0.8)
    assert better("auc_slice_basic", 0.9, 0.8)
    assert improvement("log_loss", 0.3, 0.4) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown metric"):
        better("accuracy", 1, 0)


def test_better_challenger_promoted() -> None:
    d = decide({"auc": 0.805}, {"auc": 0.800}, AUC)
    assert d.promote and not d.forced
    assert "0.8050" in d.reason and "0.8000" in d.reason and "+0.0050" in d.reason
    assert d.compared["auc"]["challenger"] == 0.805 and d.compared["auc"]["champion"] == 0.800


def test_exact_min_improvement_is_enough() -> None:
    assert decide({"auc": 0.802}, {"auc": 0.800}, AUC).promote  # float noise must not refuse it


def test_too_small_improvement_refused() -> None:
    d = decide({"auc": 0.801}, {"auc": 0.800}, AUC)
    assert not d.promote and "+0.0010" in d.reason and "0.0020" in d.reason


def test_worse_challenger_refused() -> None:
    d = decide({"auc": 0.78}, {"auc": 0.80}, AUC)
    assert not d.promote and "-0.0200" in d.reason


def test_equal_refused_even_with_zero_min_improvement() -> None:
    cfg = Promotion(min_improvement=0.0)
    assert not decide({"auc": 0.8}, {"auc": 0.8}, cfg).promote
    assert decide({"auc": 0.8001}, {"auc": 0.8}, cfg).promote


def test_slice_regression_blocks() -> None:
    challenger = {"auc": 0.83, "auc_slice_basic": 0.80, "auc_slice_premium": 0.85}
    champion = {"auc": 0.80, "auc_slice_basic": 0.83, "auc_slice_premium": 0.80}
    d = decide(challenger, champion, AUC)
    assert not d.promote
    assert "auc_slice_basic 0.8300 -> 0.8000 (-0.0300)" in d.reason and "premium" not in d.reason
    assert d.compared["slices"]["auc_slice_basic"]["change"] == pytest.approx(-0.03)


def test_small_slice_regression_and_one_sided_slices_allowed() -> None:
    challenger = {"auc": 0.83, "auc_slice_basic": 0.81, "auc_slice_new": 0.1}
    champion = {"auc": 0.80, "auc_slice_basic": 0.83, "auc_slice_gone": 0.99}
    d = decide(challenger, champion, AUC)
    assert d.promote
    assert set(d.compared["slices"]) == {"auc_slice_basic"}  # only slices both models have


def test_first_model_above_floor() -> None:
    d = decide({"auc": 0.7}, None, AUC)
    assert d.promote and "first model" in d.reason and "0.7000" in d.reason and "0.6000" in d.reason


def test_first_model_below_floor() -> None:
    d = decide({"auc": 0.55}, None, AUC)
    assert not d.promote and "floor" in d.reason and "0.5500" in d.reason


def test_floor_applies_with_a_champion_too() -> None:
    assert not decide({"auc": 0.59}, {"auc": 0.5}, AUC).promote


def test_forced_promotes_a_worse_model_and_says_so() -> None:
    d = decide({"auc": 0.78}, {"auc": 0.80}, AUC, force=True)
    assert d.promote and d.forced and "forced" in d.reason and "0.7800" in d.reason
    assert decide({"auc": 0.7}, None, AUC, force=True).forced


def test_forced_still_refuses_below_floor() -> None:
    d = decide({"auc": 0.55}, {"auc": 0.50}, AUC, force=True)
    assert not d.promote and "force does not override the floor" in d.reason


def test_log_loss_lower_is_better() -> None:
    assert decide({"log_loss": 0.30}, {"log_loss": 0.32}, LOGLOSS).promote
    assert not decide({"log_loss": 0.32}, {"log_loss": 0.30}, LOGLOSS).promote
    assert not decide({"log_loss": 0.318}, {"log_loss": 0.32}, LOGLOSS).promote  # 0.002 < 0.005
    # the floor is a maximum for log_loss
    assert decide({"log_loss": 0.45}, None, LOGLOSS).promote
    d = decide({"log_loss": 0.55}, None, LOGLOSS)
    assert not d.promote and "maximum" in d.reason


def test_missing_primary_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match="challenger metrics have no 'auc'"):
        decide({"log_loss": 0.3}, None, AUC)
    with pytest.raises(ValueError, match="champion metrics have no 'auc'"):
        decide({"auc": 0.9}, {"log_loss": 0.3}, AUC)
