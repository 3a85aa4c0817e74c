"""Issue 16, part B: config limits before DAGs, drift statistics beyond the demo, class weight, open
categories. Each test feeds a real config, frame or profile through the pure modules."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.config.pipeline import (
    OTHER,
    ConfigError,
    TrainingParams,
    bounds,
    parse_pipeline,
    pipeline_warnings,
)
from mlops.ingest.parsing import coerce
from mlops.ingest.suite import build_suite
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir
from mlops.monitor import drift
from mlops.tools.scenario import ScenarioConfig, generate_day

ROOT = Path(__file__).resolve().parents[3]
CHURN = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
CONFIG = ScenarioConfig(rows_per_day=1500, bad_row_fraction=0.0, corrupt_day=None, missing_column_day=None)


def churn(**changes: dict) -> dict:
    """The churn document with sections updated (one level deep)."""
    doc = yaml.safe_load(yaml.safe_dump(CHURN))
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(doc.get(section), dict):
            doc[section].update(values)
        else:
            doc[section] = values
    return doc


# -- config: DAG-level limits and warnings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "window", "year"),
    [
        ("@daily", "730d", "365 day"),
        ("@daily", 730, "365 day"),
        ("@hourly", "400d", "8760 hour"),
        ("@monthly", 13, "12 month"),
    ],
)
def test_a_window_above_the_form_cap_is_a_config_error_naming_file_key_and_limit(
    schedule: str, window: str | int, year: str
) -> None:
    doc = churn(training={"window": window}, schedules={"ingest": schedule})
    doc["training"].update({"validation": 1, "holdout": 1, "min_partitions": 3})
    doc["drift"]["retrain_cooldown"] = 1
    with pytest.raises(ConfigError) as error:
        parse_pipeline(doc, source="pipelines/wide.yaml")
    text = str(error.value)
    assert "pipelines/wide.yaml" in text and "training.window" in text and f"{year} partitions" in text


def test_the_deprecated_window_days_key_meets_the_same_cap() -> None:
    doc = churn()
    del doc["training"]["window"]
    doc["training"]["window_days"] = 730
    with pytest.raises(ConfigError, match="365 day partitions"):
        parse_pipeline(doc, source="pipelines/wide.yaml")


def test_the_form_takes_its_bounds_from_the_config_model() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_dag_for_bounds", ROOT / "dags" / "train.py")
    assert spec and spec.loader
    pipeline = parse_pipeline(churn(), source="churn.yaml")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    form = module.params(pipeline)
    assert form["window"].schema["maximum"] == pipeline.grain.per_year == 365
    assert (
        form["early_stopping_rounds"].schema["maximum"]
        == bounds(TrainingParams, "early_stopping_rounds")["maximum"]
    )
    assert form["learning_rate"].schema["exclusiveMinimum"] == 0
    # The largest value the config accepts is a valid default of the form.
    wide = parse_pipeline(
        churn(training={"window": 365, "params": {"early_stopping_rounds": 1000}}), source="x"
    )
    for param in module.params(wide).values():
        param.resolve()


def test_settings_that_can_never_be_met_are_warned_at_load(caplog: pytest.LogCaptureFixture) -> None:
    doc = churn(
        validation={"row_count": {"min": 10, "max": 30}},
        training={"min_rows": 5000},
        drift={"min_rows": 500},
    )
    with caplog.at_level(logging.WARNING, logger="mlops.config.pipeline"):
        pipeline = parse_pipeline(doc, source="pipelines/monthly.yaml")
    warnings = pipeline_warnings(pipeline)
    assert any("drift.min_rows (500)" in w and "validation.row_count.max (30)" in w for w in warnings)
    assert any("training.min_rows (5000)" in w and "28 day partitions x 30 = 840" in w for w in warnings)
    assert all(w in caplog.text for w in warnings) and "pipelines/monthly.yaml" in caplog.text
    assert pipeline_warnings(parse_pipeline(churn(), source="churn.yaml")) == []


def test_every_drift_threshold_and_the_reference_are_settable() -> None:
    doc = churn(
        drift={
            "ks_threshold": 0.1,
            "ks_alpha": 0.01,
            "min_expected_per_bin": 8,
            "reference": "same_period_last_cycle",
            "cycle": "365d",
        }
    )
    pipeline = parse_pipeline(doc, source="x")
    th = drift.Thresholds.of(pipeline.drift)
    assert (th.ks_threshold, th.ks_alpha, th.min_expected_per_bin) == (0.1, 0.01, 8)
    assert pipeline.windows.cycle == 365
    assert (
        parse_pipeline(
            churn(drift={"reference": "same_period_last_cycle", "cycle": 7}), source="x"
        ).windows.cycle
        == 7
    )
    assert parse_pipeline(churn(), source="x").drift.reference == "holdout"
    with pytest.raises(ConfigError, match=r"drift: .*needs a cycle"):
        parse_pipeline(churn(drift={"reference": "same_period_last_cycle"}), source="x")
    with pytest.raises(ConfigError, match=r"drift.cycle: .*'a year'"):
        parse_pipeline(churn(drift={"reference": "same_period_last_cycle", "cycle": "a year"}), source="x")


# -- drift statistics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(np.array([1, 2, None], dtype=object), [1, 1, 0, 1], id="object-ints-and-None"),
        pytest.param(np.array([1.0, 2.0, np.nan]), [1, 1, 0, 1], id="floats-with-NaN"),
        pytest.param(np.array([1, 2, 3]), [1, 1, 1, 0], id="int64-with-an-unseen-level"),
        pytest.param(pd.Series(["1", "2", None]), [1, 1, 0, 1], id="strings"),
    ],
)
def test_category_counts_match_categories_of_any_dtype(values: object, expected: list[int]) -> None:
    assert drift.category_counts(values, ["1", "2"]).tolist() == expected


def test_ks_threshold_with_a_missing_p_value_gives_a_verdict_not_a_type_error() -> None:
    stats = {"n_rows": 1000, "features": {"x": {"psi": 0.01, "ks": 1.0, "ks_pvalue": None}}}
    verdict = drift.decide(stats, drift.Thresholds(ks_threshold=0.1, min_rows=1), [])
    assert verdict["status"] == "no_drift"


def _uniform_psi(levels: int, rows: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    categories = [f"c{i}" for i in range(levels)]
    ref = rng.choice(categories, rows)
    cur = rng.choice(categories, rows)
    return drift.feature_drift(drift.profile_feature_categorical(ref, categories), cur)


def test_psi_small_sample_bias_no_longer_alarms_on_many_uniform_levels() -> None:
    stats = _uniform_psi(1000, 10_000, seed=1)
    assert stats["psi"] > 0.2, "the raw index is above the default threshold with no shift at all"
    assert stats["psi_bias"] == pytest.approx(999 * 2 / 10_000)
    th = drift.Thresholds()
    assert drift.judged_psi(stats, th) < 0.05
    verdict = drift.decide({"n_rows": 10_000, "features": {"level": stats}}, th, [])
    assert verdict["status"] == "no_drift"
    # A real shift still drifts: half the rows move to one level.
    rng = np.random.default_rng(2)
    categories = [f"c{i}" for i in range(1000)]
    shifted = np.where(rng.random(10_000) < 0.5, "c0", rng.choice(categories, 10_000))
    moved = drift.feature_drift(
        drift.profile_feature_categorical(rng.choice(categories, 10_000), categories), shifted
    )
    assert drift.decide({"n_rows": 10_000, "features": {"level": moved}}, th, [])["day_drift"] is True


def test_too_few_rows_per_bin_give_no_psi_vote_and_say_so() -> None:
    stats = _uniform_psi(100, 300, seed=3)  # 3 rows per level
    verdict = drift.decide({"n_rows": 300, "features": {"level": stats}}, drift.Thresholds(min_rows=1), [])
    assert verdict["day_drift"] is False
    assert verdict["unreliable"] == ["level"] and "min_expected_per_bin" in verdict["unreliable_note"]


# -- class weight and a validation split of one class -----------------------------------------------


def _matrix(rows: int, positives: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    y = (rng.random(rows) < positives * (1 + np.tanh(x))).astype(np.float32)
    return pd.DataFrame({"x": x.astype(np.float32)}), y


def test_balanced_class_weight_sets_scale_pos_weight_from_the_training_split() -> None:
    from mlops.training.fit import train_model

    train, valid = _matrix(2000, 0.05, 1), _matrix(500, 0.05, 2)
    result = train_model(
        train, valid, TrainingParams(n_estimators=5), device="cpu", seed=0, class_weight="balanced"
    )
    y = train[1]
    assert result.params["scale_pos_weight"] == pytest.approx((y == 0).sum() / (y == 1).sum())
    plain = train_model(train, valid, TrainingParams(n_estimators=5), device="cpu", seed=0)
    assert "scale_pos_weight" not in plain.params


def test_a_validation_split_of_one_class() -> None:
    from mlops.training.experiment import _single_class_validation
    from mlops.training.fit import train_model

    train = _matrix(1000, 0.2, 1)
    valid = (train[0].head(200), np.zeros(200, dtype=np.float32))
    with pytest.raises(ValueError, match="validation target has a single class"):
        train_model(train, valid, TrainingParams(n_estimators=5), device="cpu", seed=0)
    result = train_model(
        train, valid, TrainingParams(n_estimators=5), device="cpu", seed=0, single_class_validation=True
    )
    assert result.params["eval_metric"] == ["logloss"]

    days = [f"2026-01-{d:02d}" for d in range(1, 11)]
    pipeline = parse_pipeline(churn(), source="x")
    with pytest.raises(
        ValueError, match=r"validation split \(2026-01-05, 2026-01-06, 2026-01-07: 200 rows\).*primary_metric"
    ):
        _single_class_validation(pipeline, days, valid[1], print)
    said: list[str] = []
    by_log_loss = parse_pipeline(churn(promotion={"primary_metric": "log_loss"}), source="x")
    assert _single_class_validation(by_log_loss, days, valid[1], said.append) is True
    assert "single class" in said[0] and "log loss" in said[0]


# -- open categories -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_pipeline():
    doc = churn()
    doc["columns"]["region"] = {"type": "category", "values": ["north", "south"], "open": True}
    return parse_pipeline(doc, source="x")


def test_open_category_counts_unseen_values_as_other(open_pipeline) -> None:
    from mlops.training.fit import feature_frame

    column = open_pipeline.columns["region"]
    assert column.categories == ["north", "south", OTHER]
    raw = pd.DataFrame({c: ["1"] * 3 for c in open_pipeline.columns})
    raw["region"] = ["north", "east", None]
    typed, unparsable = coerce(raw, open_pipeline)
    assert typed["region"].tolist()[:2] == ["north", OTHER] and pd.isna(typed["region"].iloc[2])
    assert not unparsable["region"].any()
    # The model sees __other__ as a category of its own; a frame that skipped ingestion too.
    model_in = feature_frame(
        pd.DataFrame({**{f: [1] * 2 for f in open_pipeline.features}, "region": ["west", "north"]}).assign(
            plan="basic", contract="annual", payment_method="card", autopay=True
        ),
        open_pipeline,
    )
    assert list(model_in["region"].cat.categories) == column.categories
    assert model_in["region"].tolist() == [OTHER, "north"]


def test_the_suite_and_the_drift_profile_reflect_an_open_category(open_pipeline) -> None:
    from mlops.ingest.validation import validate_partition
    from mlops.monitor.report import current_features, reference_profile

    suite = build_suite(open_pipeline)
    in_set = next(
        e for e in suite["expectations"] if e["meta"]["check"] == "expect_column_values_to_be_in_set(region)"
    )
    assert in_set["kwargs"]["value_set"] == ["north", "south", OTHER] and OTHER in in_set["notes"]
    day = pd.Timestamp("2026-02-20", tz="UTC")
    raw = generate_day(CONFIG, day.date()).astype("string")  # what a CSV gives ingestion
    outcome = validate_partition(
        raw,
        open_pipeline,
        suite,
        interval_start=day.to_pydatetime(),
        interval_end=(day + pd.Timedelta("1D")).to_pydatetime(),
    )
    assert outcome.passed and not outcome.quarantined["_quarantine_reasons"].str.contains("region").any()
    share = (outcome.validated["region"] == OTHER).mean()
    assert 0.3 < share < 0.7, "east and west became __other__, not quarantined"
    profile = reference_profile(open_pipeline, outcome.validated, np.full(len(outcome.validated), 0.5))
    entry = profile["features"]["region"]
    assert entry["categories"] == ["north", "south", OTHER]
    # Drift sees the share of __other__: a day where it doubles drifts on region.
    current = current_features(outcome.validated, open_pipeline)
    more_other = np.where(np.arange(len(current["region"])) % 3 == 0, OTHER, current["region"])
    assert drift.feature_drift(entry, current["region"])["psi"] < 0.05
    assert drift.feature_drift(entry, more_other)["psi"] > 0.05


# -- drift reference: the same period of the last cycle ------------------------------------------------


class _ConstantModel:
    """A champion's pyfunc surface: ``predict(frame)``; constant scores are enough for a profile."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), 0.3)


def test_seasonal_reference_reads_the_same_days_one_cycle_earlier(tmp_path: Path) -> None:
    import io

    from mlops.monitor.stage import Champion, seasonal_reference

    pipeline = parse_pipeline(
        churn(drift={"reference": "same_period_last_cycle", "cycle": "30d"}), source="x"
    )
    lake = LocalStorage(tmp_path)
    champion = Champion(
        version="1", model=_ConstantModel(), profile={"format": "own"}, reference_auc=None, triggers=[]
    )
    profile, reference = seasonal_reference(lake, pipeline, "2026-03-05", champion)
    assert profile == {"format": "own"} and reference == {
        "kind": "holdout",
        "days": None,
        "note": "drift.reference same_period_last_cycle: no validated partition 2026-02-03 (30 day "
        "partitions before); compared with the champion's holdout instead",
    }
    rows = {}
    for ds in ("2026-02-02", "2026-02-03"):
        frame = generate_day(CONFIG, pd.Timestamp(ds).date())
        rows[ds] = len(frame)
        buffer = io.BytesIO()
        coerce(frame.astype("string"), pipeline)[0].to_parquet(buffer, index=False)
        commit_partition(lake, partition_dir("churn", "validated", ds), {"part.parquet": buffer.getvalue()})
    profile, reference = seasonal_reference(lake, pipeline, "2026-03-05", champion)
    # The monitored day's own period a cycle earlier: one day, not a holdout's length of them.
    assert reference == {"kind": "same_period_last_cycle", "days": ["2026-02-03"], "note": None}
    assert profile["features"]["plan"]["n"] == rows["2026-02-03"]
