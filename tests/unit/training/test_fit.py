"""Training: device choice, feature frames, time split, XGBoost training and search space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.config.pipeline import Pipeline, TrainingParams, parse_pipeline
from mlops.training import fit as training
from mlops.training.evaluation import evaluate
from mlops.training.fit import (
    DeviceChoice,
    feature_importance_plot,
    predict,
    prepare_frame,
    select_device,
    time_split,
    train_model,
    trial_params,
    xgb_params,
)

PLANS = ["basic", "standard", "premium"]
COLORS = ["red", "green", "blue"]


def make_pipeline() -> Pipeline:
    return parse_pipeline(
        {
            "name": "toy",
            "start_date": "2026-01-01",
            "source": {"uri": "toy"},
            "key": "id",
            "event_time": "ts",
            "target": "label",
            "columns": {
                "id": {"type": "int", "nullable": False},
                "ts": {"type": "timestamp"},
                "x_float": {"type": "float"},
                "x_int": {"type": "int"},
                "flag": {"type": "bool"},
                "plan": {"type": "category", "values": PLANS},
                "color": {"type": "category", "values": COLORS},
                "const": {"type": "float"},
                "label": {"type": "int"},
            },
            "features": ["x_float", "x_int", "flag", "plan", "color", "const"],
            "validation": {"suite": "gx/toy.json", "row_count": {"min": 1, "max": 10**6}},
            "training": {"slice_column": "plan"},
        },
        source="test",
    )


def make_frame(n: int, seed: int, *, noise_only: bool = False) -> pd.DataFrame:
    """A learnable frame typed like a validated partition, with NaNs sprinkled in."""
    rng = np.random.default_rng(seed)
    x_float = rng.normal(size=n)
    x_int = rng.integers(0, 10, size=n)
    flag = rng.random(n) < 0.4
    plan = rng.choice(PLANS, size=n)
    color = rng.choice(COLORS, size=n)
    logit = 1.8 * x_float - 0.35 * (x_int - 4.5) + 1.2 * flag + 1.5 * (plan == "premium") - (color == "blue")
    p = 1 / (1 + np.exp(-logit))
    label = (rng.random(n) < (0.3 if noise_only else p)).astype(int)
    df = pd.DataFrame(
        {
            "id": pd.array(np.arange(n), dtype="Int64"),
            "x_float": x_float,
            "x_int": pd.array(x_int, dtype="Int64"),
            "flag": pd.array(flag, dtype="boolean"),
            "plan": pd.array(plan, dtype="string"),
            "color": pd.array(color, dtype="string"),
            "const": np.full(n, 3.0),
            "label": pd.array(label, dtype="Int64"),
        }
    )
    nan_rows = rng.random(n) < 0.05
    df.loc[nan_rows, "x_float"] = np.nan
    df.loc[rng.random(n) < 0.05, "x_int"] = pd.NA
    df.loc[rng.random(n) < 0.05, "flag"] = pd.NA
    df.loc[rng.random(n) < 0.05, "color"] = pd.NA
    return df


SMALL = TrainingParams(max_depth=4, learning_rate=0.2, n_estimators=60, early_stopping_rounds=10, max_bin=64)


def fit(
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    params: TrainingParams = SMALL,
    seed: int = 7,
    *,
    eval_train: bool = False,
):
    pipeline = make_pipeline()
    return train_model(
        prepare_frame(train_df, pipeline),
        prepare_frame(valid_df, pipeline),
        params,
        device="cpu",
        seed=seed,
        nthread=1,  # the test host is shared: OpenMP threads stall badly when cores are busy
        log=lambda _msg: None,
        eval_train=eval_train,
    )


# -- device ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "visible", "cuda_build", "device", "reason_has"),
    [
        ("auto", True, True, "cuda", "GPU is visible"),
        ("auto", False, True, "cpu", "no GPU is visible"),
        ("auto", True, False, "cpu", "not built with CUDA"),
        ("cpu", True, True, "cpu", "cpu requested"),
        ("cuda", True, True, "cuda", "GPU is visible"),
        ("cuda", False, True, "cpu", "cuda requested but no GPU is visible"),
        ("cuda", True, False, "cpu", "cuda requested but xgboost is not built with CUDA"),
    ],
)
def test_select_device(requested: str, visible: bool, cuda_build: bool, device: str, reason_has: str) -> None:
    choice = select_device(requested, visible=visible, cuda_build=cuda_build)
    assert isinstance(choice, DeviceChoice)
    assert choice.device == device
    assert reason_has in choice.reason


def test_select_device_rejects_unknown_value() -> None:
    with pytest.raises(ValueError, match=r"auto, cpu, cuda.*'gpu'"):
        select_device("gpu")


def test_cuda_visible_devices_hides_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "_driver_lists_gpu", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not training.gpu_hardware_visible()
    choice = select_device("auto", cuda_build=True)
    assert choice.device == "cpu" and "CUDA_VISIBLE_DEVICES='-1'" in choice.reason
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert training.gpu_hardware_visible()


def test_gpu_visible_needs_cuda_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(training, "_driver_lists_gpu", lambda: True)
    monkeypatch.setattr(training.xgboost, "build_info", lambda: {"USE_CUDA": False})
    assert not training.gpu_visible()
    monkeypatch.setattr(training.xgboost, "build_info", lambda: {"USE_CUDA": True})
    assert training.gpu_visible()


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_xgb_params_exact(device: str) -> None:
    params = TrainingParams(
        max_depth=5,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.7,
        min_child_weight=2.0,
        reg_lambda=3.0,
        max_bin=128,
    )
    assert xgb_params(params, device=device, seed=11, nthread=4) == {
        "tree_method": "hist",
        "device": device,
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "seed": 11,
        "max_depth": 5,
        "eta": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.7,
        "min_child_weight": 2.0,
        "lambda": 3.0,
        "max_bin": 128,
        "nthread": 4,
    }
    assert "nthread" not in xgb_params(params, device=device, seed=11, nthread=None)


def test_xgb_params_rejects_auto() -> None:
    with pytest.raises(ValueError, match="select_device"):
        xgb_params(TrainingParams(), device="auto", seed=1, nthread=None)


# -- frames ---------------------------------------------------------------------------------------


def test_prepare_frame_types_and_stable_codes() -> None:
    pipeline = make_pipeline()
    df = make_frame(200, seed=1)
    X, y = prepare_frame(df, pipeline)
    assert list(X.columns) == pipeline.features
    for name in ("x_float", "x_int", "flag", "const"):
        assert X[name].dtype == np.float32, name
    assert list(X["plan"].cat.categories) == PLANS
    assert list(X["color"].cat.categories) == COLORS
    assert y.dtype == np.float32 and set(np.unique(y)) <= {0.0, 1.0}
    # nulls survive as NaN / missing category
    assert X["x_int"].isna().sum() == df["x_int"].isna().sum() > 0
    assert X["flag"].isna().sum() == df["flag"].isna().sum() > 0
    assert X["color"].isna().sum() == df["color"].isna().sum() > 0
    # a day with only one plan value gets the same codes as any other day
    one_plan = df[df["plan"] == "premium"]
    X1, _ = prepare_frame(one_plan, pipeline)
    assert list(X1["plan"].cat.categories) == PLANS
    assert (X1["plan"].cat.codes == 2).all()


def test_prepare_frame_unknown_category_becomes_missing() -> None:
    df = make_frame(5, seed=2)
    df["color"] = pd.array(["red", "purple", None, "blue", "GREEN"], dtype="string")
    X, _ = prepare_frame(df, make_pipeline())
    assert X["color"].isna().tolist() == [False, True, True, False, True]


def test_prepare_frame_names_missing_columns() -> None:
    df = make_frame(10, seed=3).drop(columns=["x_int", "color"])
    with pytest.raises(ValueError, match=r"\['x_int', 'color'\]"):
        prepare_frame(df, make_pipeline())


def test_prepare_frame_missing_target() -> None:
    with pytest.raises(ValueError, match="target column 'label'"):
        prepare_frame(make_frame(10, seed=3).drop(columns=["label"]), make_pipeline())


def test_time_split_boundaries() -> None:
    frames = {f"2026-01-{d:02d}": pd.DataFrame({"day": [d] * d}) for d in range(1, 11)}
    shuffled = dict(reversed(list(frames.items())))  # order of the dict must not matter
    train, valid, holdout = time_split(shuffled, validation_days=3, holdout_days=2)
    assert sorted(train["day"].unique()) == [1, 2, 3, 4, 5]
    assert sorted(valid["day"].unique()) == [6, 7, 8]
    assert sorted(holdout["day"].unique()) == [9, 10]
    assert len(train) == 15 and len(valid) == 21 and len(holdout) == 19


def test_time_split_too_few_partitions() -> None:
    frames = {f"2026-01-0{d}": pd.DataFrame({"a": [d]}) for d in range(1, 5)}
    with pytest.raises(ValueError, match=r"at least 5 daily partitions.*got 4"):
        time_split(frames, validation_days=2, holdout_days=2)
    train, _, _ = time_split(frames, validation_days=2, holdout_days=1)
    assert train["a"].tolist() == [1]


def test_time_split_rejects_bad_keys() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        time_split({"yesterday": pd.DataFrame()}, validation_days=1, holdout_days=1)


# -- training -------------------------------------------------------------------------------------


def test_learns_synthetic_frame_and_logs_progress() -> None:
    pipeline = make_pipeline()
    lines: list[str] = []
    params = TrainingParams(
        max_depth=4, learning_rate=0.1, n_estimators=100, early_stopping_rounds=20, max_bin=64
    )
    result = train_model(
        prepare_frame(make_frame(4000, seed=10), pipeline),
        prepare_frame(make_frame(1000, seed=11), pipeline),
        params,
        device="cpu",
        seed=3,
        nthread=1,
        log_every=10,
        log=lines.append,
        eval_train=True,
    )
    X_hold, y_hold = prepare_frame(make_frame(2000, seed=12), pipeline)
    metrics = evaluate(y_hold, predict(result.booster, X_hold, result.best_iteration), threshold=0.5)
    assert metrics["auc"] > 0.8
    assert result.device == "cpu" and result.n_rows == 4000
    assert set(result.evals_result) == {"train", "valid"}
    assert set(result.evals_result["valid"]) == {"logloss", "auc"}
    assert result.best_score == pytest.approx(max(result.evals_result["valid"]["auc"]))
    assert lines and lines[0].startswith("round 10: valid logloss=")
    assert len(lines) == result.n_trees // 10


def test_early_stopping_on_noise() -> None:
    params = TrainingParams(
        max_depth=6, learning_rate=0.3, n_estimators=500, early_stopping_rounds=10, max_bin=64
    )
    result = fit(
        make_frame(3000, seed=20, noise_only=True), make_frame(1000, seed=21, noise_only=True), params
    )
    assert result.n_trees < 500
    assert result.n_trees == result.best_iteration + 1 + 10


def test_eval_train_off_keeps_early_stopping_on_valid() -> None:
    params = TrainingParams(
        max_depth=6, learning_rate=0.3, n_estimators=500, early_stopping_rounds=10, max_bin=64
    )
    train_df, valid_df = (
        make_frame(3000, seed=20, noise_only=True),
        make_frame(1000, seed=21, noise_only=True),
    )
    full = fit(train_df, valid_df, params, eval_train=True)
    lean = fit(train_df, valid_df, params)
    assert set(lean.evals_result) == {"valid"}
    assert lean.evals_result["valid"] == full.evals_result["valid"]
    assert (lean.best_iteration, lean.n_trees) == (full.best_iteration, full.n_trees)


def test_prediction_uses_best_iteration() -> None:
    params = TrainingParams(
        max_depth=6, learning_rate=0.3, n_estimators=500, early_stopping_rounds=10, max_bin=64
    )
    result = fit(
        make_frame(3000, seed=20, noise_only=True), make_frame(1000, seed=21, noise_only=True), params
    )
    X, _ = prepare_frame(make_frame(50, seed=22), make_pipeline())
    all_trees = result.booster.inplace_predict(X)
    best = predict(result.booster, X, result.best_iteration)
    expected = result.booster.inplace_predict(X, iteration_range=(0, result.best_iteration + 1))
    np.testing.assert_array_equal(best, expected)
    assert not np.array_equal(best, all_trees)


def test_training_is_deterministic() -> None:
    train_df, valid_df = make_frame(2000, seed=30), make_frame(500, seed=31)
    X, _ = prepare_frame(make_frame(300, seed=32), make_pipeline())
    a, b = fit(train_df, valid_df, seed=5), fit(train_df, valid_df, seed=5)
    np.testing.assert_array_equal(
        predict(a.booster, X, a.best_iteration), predict(b.booster, X, b.best_iteration)
    )
    c = fit(train_df, valid_df, seed=6)  # subsampling makes the seed matter
    assert not np.array_equal(
        predict(a.booster, X, a.best_iteration), predict(c.booster, X, c.best_iteration)
    )


def test_mostly_missing_and_constant_features_train() -> None:
    train_df, valid_df = make_frame(2000, seed=40), make_frame(500, seed=41)
    for df in (train_df, valid_df):
        df.loc[df.index % 3 != 0, "x_float"] = np.nan
        df["x_int"] = pd.array([pd.NA] * len(df), dtype="Int64")  # entirely missing
    result = fit(train_df, valid_df)
    X, _ = prepare_frame(valid_df, make_pipeline())
    scores = predict(result.booster, X, result.best_iteration)
    assert np.isfinite(scores).all()
    used = result.booster.get_score(importance_type="gain")
    assert "const" not in used and "x_int" not in used  # nothing to split on


def test_single_class_target_fails_early() -> None:
    train_df = make_frame(500, seed=50)
    train_df["label"] = pd.array([0] * len(train_df), dtype="Int64")
    with pytest.raises(ValueError, match=r"train target has a single class \(0\)"):
        fit(train_df, make_frame(200, seed=51))
    valid_df = make_frame(200, seed=51)
    valid_df["label"] = pd.array([1] * len(valid_df), dtype="Int64")
    with pytest.raises(ValueError, match=r"validation target has a single class \(1\)"):
        fit(make_frame(500, seed=50), valid_df)


def test_unknown_category_at_predict_is_missing() -> None:
    result = fit(make_frame(2000, seed=60), make_frame(500, seed=61))
    pipeline = make_pipeline()
    raw = make_frame(4, seed=62)
    unknown, missing = raw.copy(), raw.copy()
    unknown["color"] = pd.array(["purple"] * 4, dtype="string")
    missing["color"] = pd.array([None] * 4, dtype="string")
    X_unknown, _ = prepare_frame(unknown, pipeline)
    X_missing, _ = prepare_frame(missing, pipeline)
    np.testing.assert_array_equal(
        predict(result.booster, X_unknown, result.best_iteration),
        predict(result.booster, X_missing, result.best_iteration),
    )
    # A frame typed with another category list (say, a YAML that gained a value): known values
    # are matched by name, and the new one is still scored as missing.
    X_other = X_missing.copy()
    X_other["color"] = pd.Categorical(
        ["purple", "blue", None, "red"], categories=["purple", *reversed(COLORS)]
    )
    X_known = X_missing.copy()
    X_known["color"] = pd.Categorical([None, "blue", None, "red"], categories=COLORS)
    np.testing.assert_array_equal(
        predict(result.booster, X_other, result.best_iteration),
        predict(result.booster, X_known, result.best_iteration),
    )
    assert list(X_other["color"].cat.categories) == ["purple", *reversed(COLORS)]  # caller's frame untouched


def test_feature_importance_plot(tmp_path: Path) -> None:
    result = fit(make_frame(1000, seed=70), make_frame(300, seed=71))
    path = tmp_path / "plots" / "importance.png"
    feature_importance_plot(result.booster, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- search space ---------------------------------------------------------------------------------


def test_trial_params_deterministic_and_bounded() -> None:
    base = TrainingParams(
        max_depth=6, learning_rate=0.1, subsample=0.9, colsample_bytree=0.9, min_child_weight=1.0
    )
    trials = trial_params(base, 16, seed=42)
    assert len(trials) == 16
    assert trials[0] == base
    assert trials == trial_params(base, 16, seed=42)
    assert trials != trial_params(base, 16, seed=43)
    assert len({t.model_dump_json() for t in trials}) == 16
    for t in trials:
        assert 4 <= t.max_depth <= 8
        assert 0.05 - 1e-9 <= t.learning_rate <= 0.2 + 1e-9
        assert 0.5 <= t.subsample <= 1.0 and 0.5 <= t.colsample_bytree <= 1.0
        assert 0.5 - 1e-9 <= t.min_child_weight <= 4.0 + 1e-9
        # what is not searched is carried over
        assert (t.n_estimators, t.early_stopping_rounds, t.max_bin, t.reg_lambda) == (300, 20, 256, 1.0)


def test_trial_params_one_trial_and_clipping() -> None:
    assert trial_params(TrainingParams(), 1, seed=0) == [TrainingParams()]
    edge = TrainingParams(max_depth=1, learning_rate=0.9, subsample=1.0, min_child_weight=0.0)
    for t in trial_params(edge, 20, seed=1):
        assert 1 <= t.max_depth <= 3 and t.learning_rate <= 1.0 and 0 <= t.min_child_weight <= 4
    with pytest.raises(ValueError, match="n_trials"):
        trial_params(TrainingParams(), 0, seed=0)
