"""The monitoring pass on the demo scenario: no model, scores are a fixed function of the features."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.grain import DAY
from mlops.monitor import drift
from mlops.monitor import page as drift_page
from mlops.monitor import report as monitoring
from mlops.tools.scenario import ScenarioConfig, generate_day
from mlops.training.evaluation import evaluate
from mlops.training.fit import feature_frame

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ScenarioConfig(rows_per_day=3000, bad_row_fraction=0.0, corrupt_day=None, missing_column_day=None)
REFERENCE_DAYS = [dt.date(2026, 2, 20), dt.date(2026, 2, 21), dt.date(2026, 2, 22)]
CLEAN_DAY = dt.date(2026, 2, 25)
SHIFTED_DAY = dt.date(2026, 3, 3)


def _scores(frame: pd.DataFrame) -> np.ndarray:
    """A fixed 'champion': a logistic of a few features, monthly_charges among them."""

    def col(name: str) -> np.ndarray:
        return np.nan_to_num(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))

    logit = (
        -0.8
        - 0.55 * np.log1p(col("tenure_months"))
        + 0.35 * col("support_calls")
        + 0.45 * col("late_payments")
        + 0.01 * (col("monthly_charges") - 50.0)
    )
    return 1.0 / (1.0 + np.exp(-logit))


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return load_pipeline(ROOT / "include" / "pipelines" / "churn.yaml")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.concat([generate_day(CONFIG, d) for d in REFERENCE_DAYS], ignore_index=True)


@pytest.fixture(scope="module")
def reference_auc(reference: pd.DataFrame) -> float:
    return evaluate(reference["churned"].to_numpy(dtype=float), _scores(reference), threshold=0.5)["auc"]


@pytest.fixture(scope="module")
def profile(pipeline: Pipeline, reference: pd.DataFrame) -> dict:
    X = feature_frame(reference, pipeline)
    numeric = {f: X[f].to_numpy() for f in pipeline.numeric_features}
    categorical = {
        f: (reference[f].to_numpy(dtype=object), pipeline.columns[f].values)
        for f in pipeline.categorical_features
    }
    prof = drift.build_profile(numeric, categorical, _scores(reference), seed=0)
    return json.loads(json.dumps(prof, allow_nan=False))


@pytest.fixture(scope="module")
def clean_frame() -> pd.DataFrame:
    return generate_day(CONFIG, CLEAN_DAY)


@pytest.fixture(scope="module")
def shifted_frame() -> pd.DataFrame:
    return generate_day(CONFIG, SHIFTED_DAY)


Monitor = Callable[..., dict]


@pytest.fixture(scope="module")
def monitor(pipeline: Pipeline, profile: dict, reference_auc: float) -> Monitor:
    """``monitor(frame, day, history=())``: the monitoring pass with the test champion."""

    def run(frame: pd.DataFrame, day: dt.date, history: Sequence[dict] = ()) -> dict:
        return monitoring.monitor_day(
            pipeline=pipeline,
            ds=day.isoformat(),
            frame=frame,
            profile=profile,
            scores=_scores(frame),
            champion_version="3",
            reference_auc=reference_auc,
            history=list(history),
        )

    return run


def _flag(day: dt.date, drifted: bool) -> dict:
    return {"ds": day.isoformat(), "verdict": {"day_drift": drifted}}


@pytest.fixture(scope="module")
def clean_report(monitor: Monitor, clean_frame: pd.DataFrame) -> dict:
    return monitor(clean_frame, CLEAN_DAY)


@pytest.fixture(scope="module")
def shifted_report(monitor: Monitor, shifted_frame: pd.DataFrame) -> dict:
    return monitor(shifted_frame, SHIFTED_DAY)


def test_current_features_types(pipeline: Pipeline, clean_frame: pd.DataFrame) -> None:
    frame = clean_frame.copy()
    already_missing = int(frame["region"].isna().sum())
    frame.loc[frame.index[:5], "region"] = None
    frame.loc[frame.index[5], "region"] = "central"  # unseen: kept raw, not turned into missing
    cols = monitoring.current_features(frame, pipeline)
    assert list(cols) == pipeline.features
    for name in pipeline.numeric_features:
        assert cols[name].dtype == np.float64 and len(cols[name]) == len(frame)
    region = cols["region"]
    assert region.dtype == object and region[0] is None and region[5] == "central"
    assert all(v is None or isinstance(v, str) for v in region)
    counts = drift.category_counts(region, pipeline.columns["region"].values)
    assert counts[-2] == 1  # unseen
    assert 5 <= counts[-1] <= already_missing + 5  # missing
    # a feature missing from the frame is left out instead of failing
    assert "plan" not in monitoring.current_features(frame.drop(columns="plan"), pipeline)


def test_clean_day_has_no_drift(clean_report: dict, pipeline: Pipeline, reference_auc: float) -> None:
    r = clean_report
    assert r["ds"] == CLEAN_DAY.isoformat() and r["champion_version"] == "3"
    assert r["n_rows"] > 2900
    assert set(r["features"]) == set(pipeline.features)
    assert r["verdict"]["day_drift"] is False and r["verdict"]["status"] == "no_drift"
    assert r["drifted_features"] == [] and r["warnings"] == [] and r["unexpected_columns"] == []
    assert r["features"]["monthly_charges"]["psi"] < 0.05
    assert r["features"]["plan"]["kind"] == "categorical" and r["features"]["plan"]["js"] is not None
    perf = r["performance"]
    assert 0.5 < perf["auc"] < 1 and perf["log_loss"] > 0 and perf["n_labelled"] == r["n_rows"]
    assert perf["reference_auc"] == reference_auc > 0.6
    assert perf["auc_drop"] == pytest.approx(reference_auc - perf["auc"])
    assert perf["auc_drop"] < pipeline.drift.auc_drop_threshold
    json.dumps(r, allow_nan=False)


def test_shifted_day_flags_monthly_charges(shifted_report: dict) -> None:
    r = shifted_report
    assert r["verdict"]["day_drift"] is True
    names = [d["feature"] for d in r["drifted_features"]]
    assert "monthly_charges" in names
    mc = next(d for d in r["drifted_features"] if d["feature"] == "monthly_charges")
    assert mc["psi"] >= 0.2 and mc["kind"] == "numeric" and "ks" in mc
    psis = [d["psi"] for d in r["drifted_features"]]
    assert psis == sorted(psis, reverse=True)
    # no history: a single drifted day is not yet declared drift
    assert r["verdict"]["status"] == "unconfirmed" and r["verdict"]["drift"] is False
    json.dumps(r, allow_nan=False)


def test_persistence(monitor: Monitor, shifted_frame: pd.DataFrame) -> None:
    d = SHIFTED_DAY
    one = dt.timedelta(days=1)
    clean_history = [_flag(d - 2 * one, False), _flag(d - one, False)]
    r = monitor(shifted_frame, d, clean_history)
    assert r["history"] == [False, False] and r["verdict"]["status"] == "unconfirmed"
    # two of three (the day before yesterday and today), yesterday missing from history
    r = monitor(shifted_frame, d, [_flag(d - 2 * one, True)])
    assert r["history"] == [True, False] and r["verdict"]["status"] == "drift" and r["verdict"]["drift"]
    # a drifted day outside the window, or on/after ds, does not count
    outside = [_flag(d - 3 * one, True), _flag(d, True), _flag(d + one, True)]
    r = monitor(shifted_frame, d, outside)
    assert r["history"] == [False, False] and r["verdict"]["status"] == "unconfirmed"


def test_history_from_reports() -> None:
    d = dt.date(2026, 3, 10)
    reports = [
        {"ds": "2026-03-09", "verdict": {"day_drift": True}},
        {"ds": "2026-03-07", "verdict": {"day_drift": True}},
        {"ds": "2026-03-09", "verdict": {"day_drift": False}},  # a re-run replaces the first
        {"ds": "2026-03-10", "verdict": {"day_drift": True}},
        {"ds": "2026-03-08", "day_drift": True},
    ]
    assert monitoring.history_from_reports(reports, d, 4, DAY) == [True, True, False]
    assert monitoring.history_from_reports(reports, "2026-03-10", 1, DAY) == []
    assert monitoring.history_from_reports([], d, 3, DAY) == [False, False]


def test_insufficient_rows(monitor: Monitor, pipeline: Pipeline, shifted_frame: pd.DataFrame) -> None:
    small = shifted_frame.head(pipeline.drift.min_rows - 1)
    r = monitor(small, SHIFTED_DAY, [_flag(SHIFTED_DAY - dt.timedelta(days=1), True)])
    v = r["verdict"]
    assert v["status"] == "insufficient_rows" and v["drift"] is False and v["day_drift"] is False
    assert r["drifted_features"] == [] and "min_rows" in v["message"]
    assert any("min_rows" in w for w in r["warnings"])
    ok, why = monitoring.should_trigger(
        r, last_drift_trigger=None, cooldown_days=7, backfill=False, allow_backfill_trigger=False, grain=DAY
    )
    assert not ok and "insufficient_rows" in why


def test_unexpected_column_is_a_warning(monitor: Monitor, clean_frame: pd.DataFrame) -> None:
    frame = clean_frame.assign(loyalty_points=1, constant_feature=0.0)
    frame["tenure_months"] = pd.array([12] * len(frame), dtype="Int64")  # a constant column is fine
    r = monitor(frame, CLEAN_DAY)
    assert r["unexpected_columns"] == ["loyalty_points", "constant_feature"]
    assert any("loyalty_points" in w for w in r["warnings"])
    assert r["features"]["tenure_months"]["psi"] is not None
    json.dumps(r, allow_nan=False)


def test_missing_feature_column(monitor: Monitor, clean_frame: pd.DataFrame) -> None:
    r = monitor(clean_frame.drop(columns="region"), CLEAN_DAY)
    assert r["missing_features"] == ["region"] and "region" not in r["features"]
    assert any("region" in w for w in r["warnings"])


def test_single_class_labels_give_no_auc(monitor: Monitor, clean_frame: pd.DataFrame) -> None:
    frame = clean_frame.assign(churned=pd.array([0] * len(clean_frame), dtype="Int64"))
    r = monitor(frame, CLEAN_DAY)
    assert r["performance"]["auc"] is None and r["performance"]["auc_drop"] is None
    assert r["performance"]["note"]


def test_scores_length_must_match(pipeline: Pipeline, profile: dict, clean_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="scores"):
        monitoring.monitor_day(
            pipeline=pipeline,
            ds=CLEAN_DAY.isoformat(),
            frame=clean_frame,
            profile=profile,
            scores=np.zeros(3),
            champion_version="1",
            reference_auc=None,
            history=[],
        )


def _declared(report: dict) -> dict:
    verdict = {**report["verdict"], "status": "drift", "drift": True}
    return {**report, "verdict": verdict}


def test_should_trigger(shifted_report: dict, clean_report: dict) -> None:
    declared = _declared(shifted_report)  # ds 2026-03-03
    kw = {"cooldown_days": 7, "backfill": False, "allow_backfill_trigger": False, "grain": DAY}

    ok, why = monitoring.should_trigger(declared, last_drift_trigger=None, **kw)
    assert ok and "monthly_charges" in why

    ok, why = monitoring.should_trigger(declared, last_drift_trigger="2026-03-02", **kw)
    assert not ok
    assert why == "cooldown: last drift retrain was triggered for 2026-03-02, 1 day(s) ago, cooldown 7 days"
    ok, _ = monitoring.should_trigger(declared, last_drift_trigger="2026-03-03", **kw)
    assert not ok  # a re-run of the same day does not retrain twice
    ok, _ = monitoring.should_trigger(declared, last_drift_trigger="2026-02-24", **kw)
    assert ok  # 7 days ago: the cooldown is over
    ok, _ = monitoring.should_trigger(declared, last_drift_trigger="2026-03-02", **{**kw, "cooldown_days": 0})
    assert ok

    ok, why = monitoring.should_trigger(declared, last_drift_trigger=None, **{**kw, "backfill": True})
    assert not ok and why.startswith("backfill")
    ok, _ = monitoring.should_trigger(
        declared, last_drift_trigger=None, **{**kw, "backfill": True, "allow_backfill_trigger": True}
    )
    assert ok

    ok, why = monitoring.should_trigger(shifted_report, last_drift_trigger=None, **kw)
    assert not ok and "unconfirmed" in why
    ok, why = monitoring.should_trigger(clean_report, last_drift_trigger=None, **kw)
    assert not ok and "no_drift" in why


def test_one_drift_retrain_per_champion(shifted_report: dict) -> None:
    declared = _declared(shifted_report)  # ds 2026-03-03, measured against champion version 3
    kw = {"last_drift_trigger": "2026-02-20", "cooldown_days": 7, "backfill": False, "grain": DAY}
    kw["allow_backfill_trigger"] = False

    ok, why = monitoring.should_trigger(declared, champion_triggers=["2026-02-20"], **kw)
    assert not ok
    assert why == (
        "drift declared for 2026-03-03 against champion version 3, which already triggered a "
        "retrain for 2026-02-20 (drift.max_triggers_per_champion=1); a new champion resets the baseline"
    )
    ok, _ = monitoring.should_trigger(declared, champion_triggers=[], **kw)
    assert ok  # a new champion (no triggers of its own yet) may trigger
    ok, _ = monitoring.should_trigger(
        declared, champion_triggers=["2026-02-20"], max_triggers_per_champion=2, **kw
    )
    assert ok
    ok, _ = monitoring.should_trigger(
        declared, champion_triggers=["2026-02-10", "2026-02-20"], max_triggers_per_champion=2, **kw
    )
    assert not ok
    # Its own day does not count against it: re-running a day is the cooldown's business.
    ok, _ = monitoring.should_trigger(
        declared, champion_triggers=["2026-03-03"], **{**kw, "cooldown_days": 0}
    )
    assert ok


def test_drift_event_extra(shifted_report: dict) -> None:
    extra = monitoring.drift_event_extra(shifted_report, "drift declared")
    assert set(extra) == {"ds", "champion_version", "features", "reason"}
    assert extra["ds"] == SHIFTED_DAY.isoformat() and extra["champion_version"] == "3"
    assert "monthly_charges" in extra["features"] and extra["features"]["monthly_charges"]["psi"] >= 0.2
    assert extra["reason"] == "drift declared"
    text = json.dumps(extra, allow_nan=False)
    assert len(text) < 2000


def test_render_html(
    pipeline: Pipeline, profile: dict, shifted_frame: pd.DataFrame, shifted_report: dict, clean_report: dict
) -> None:
    page = drift_page.render_html(
        shifted_report,
        profile=profile,
        frame_features=monitoring.current_features(shifted_frame, pipeline),
        trend=[clean_report],
    )
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert SHIFTED_DAY.isoformat() in page and "monthly_charges" in page
    n_images = page.count("data:image/png;base64,")
    # one histogram per drifted feature, the feature trend and the prediction/performance chart
    assert n_images == len(shifted_report["drifted_features"]) + 2
    assert "<script" not in page.lower()
    assert 'class="drifted"' in page


def test_render_html_escapes_and_clean_day(
    pipeline: Pipeline, profile: dict, clean_frame: pd.DataFrame, clean_report: dict
) -> None:
    evil = {**clean_report, "champion_version": "<script>alert(1)</script>", "warnings": ["<b>$x$</b>"]}
    page = drift_page.render_html(
        evil, profile=profile, frame_features=monitoring.current_features(clean_frame, pipeline), trend=[]
    )
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "none drifted" in page
    assert page.count("data:image/png;base64,") == 3 + 2  # top 3 by PSI, then the two trend charts
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)


@pytest.mark.parametrize("days", [1, 2, 5, 12, 45])
def test_time_axes_get_readable_day_ticks_without_warnings(days: int) -> None:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dates = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(days)]
    fig, ax = plt.subplots()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib warns when its date locator gives up
            ax.plot(dates, range(days))
            drift_page._style_time_axis(ax, dates)
            fig.canvas.draw()
        ticks = [label.get_text() for label in ax.get_xticklabels() if label.get_text()]
        assert 2 <= len(ticks) <= 8, ticks
    finally:
        plt.close(fig)
