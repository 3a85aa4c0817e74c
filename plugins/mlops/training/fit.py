"""Model training for a pipeline: device choice, feature frames, time split, XGBoost training.

Pure Python (pandas, numpy, xgboost; matplotlib only for the importance plot), no Airflow or
MLflow import: the operators and hooks call these functions and log what they return.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost

from mlops.config.pipeline import OTHER, Pipeline, TrainingParams
from mlops.grain import normalize_key

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
_NUMERIC_TYPES = ("int", "float", "bool")


# -- device -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceChoice:
    device: Literal["cpu", "cuda"]
    reason: str


def _cuda_visible_devices_hides_all() -> bool:
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return value is not None and value.strip() in ("", "-1")


def _driver_lists_gpu() -> bool:
    # /proc is free to read; nvidia-smi costs a process start, so it is only the second try.
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir() and any(proc.iterdir()):
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("nvidia-smi -L failed (%s); treating the GPU as not visible", exc)
        return False
    return out.returncode == 0 and any(line.startswith("GPU ") for line in out.stdout.splitlines())


def gpu_hardware_visible() -> bool:
    """A GPU is present and not hidden by ``CUDA_VISIBLE_DEVICES``."""
    return not _cuda_visible_devices_hides_all() and _driver_lists_gpu()


def xgboost_cuda_build() -> bool:
    """The installed xgboost was built with CUDA support."""
    return bool(xgboost.build_info().get("USE_CUDA", False))


def gpu_visible() -> bool:
    """A GPU is visible to this process and xgboost can use it. Cheap: no CUDA context is made."""
    return gpu_hardware_visible() and xgboost_cuda_build()


def select_device(
    requested: str,
    *,
    visible: bool | None = None,
    cuda_build: bool | None = None,
) -> DeviceChoice:
    """Resolve the configured device to the one training will use.

    ``visible`` and ``cuda_build`` override the probes (tests, or a caller that already knows).
    Asking for ``cuda`` where it is not available falls back to ``cpu``: a missing GPU must not
    fail a scheduled run; the reason says why so the caller can log it.
    """
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {requested!r}")
    if requested == "cpu":
        return DeviceChoice("cpu", "cpu requested")
    if visible is None:
        visible = gpu_hardware_visible()
    if cuda_build is None:
        cuda_build = xgboost_cuda_build()
    if visible and cuda_build:
        return DeviceChoice("cuda", f"{requested}: a GPU is visible and xgboost is built with CUDA")
    if not visible:
        cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = "no GPU is visible" + (f" (CUDA_VISIBLE_DEVICES={cvd!r})" if cvd is not None else "")
    else:
        why = "xgboost is not built with CUDA"
    if requested == "cuda":
        return DeviceChoice("cpu", f"cuda requested but {why}; falling back to cpu")
    return DeviceChoice("cpu", f"auto: {why}; using cpu")


# -- data -----------------------------------------------------------------------------------------


def _as_categorical(series: pd.Series, values: list[str], other: str | None = None) -> pd.Categorical:
    # Categories are fixed to the YAML values so a category's code means the same thing on every
    # day and in every model; values outside the list become missing, or ``other`` (one of
    # ``values``) for an open category. Factorising first means the string lookup runs once per
    # distinct value instead of once per row.
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    found = pd.Index(values).get_indexer(pd.Index(uniques))
    if other is not None:
        found[found < 0] = values.index(other)
    lookup = np.append(found, -1)  # code -1 (NA) → -1
    return pd.Categorical.from_codes(lookup[codes], categories=values)


def _as_float32(series: pd.Series, name: str) -> np.ndarray:
    try:
        return series.to_numpy(dtype="float32", na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"feature {name!r} (dtype {series.dtype}) cannot be converted to numbers: {exc}"
        ) from exc


def feature_frame(df: pd.DataFrame, pipeline: Pipeline) -> pd.DataFrame:
    """The model's input frame: ``pipeline.features`` in order, typed for XGBoost.

    Categories become pandas Categoricals over the YAML ``values`` (unknown → missing, or
    ``__other__`` for an open category); ints,
    bools and floats become float32 with nulls as NaN, which XGBoost treats as missing.
    """
    missing = [f for f in pipeline.features if f not in df.columns]
    if missing:
        raise ValueError(f"pipeline {pipeline.name!r}: feature columns missing from the frame: {missing}")
    columns: dict[str, Any] = {}
    for name in pipeline.features:
        column = pipeline.columns[name]
        if column.type == "category":
            assert column.values is not None  # guaranteed by the config model
            columns[name] = _as_categorical(df[name], column.categories, OTHER if column.open else None)
        elif column.type in _NUMERIC_TYPES:
            columns[name] = _as_float32(df[name], name)
        else:
            raise ValueError(
                f"pipeline {pipeline.name!r}: feature {name!r} has type {column.type!r}; "
                f"only int, float, bool and category features are supported"
            )
    return pd.DataFrame(columns, index=df.index)


def prepare_frame(df: pd.DataFrame, pipeline: Pipeline) -> tuple[pd.DataFrame, np.ndarray]:
    """Features (see ``feature_frame``) and the target as float32."""
    X = feature_frame(df, pipeline)
    if pipeline.target not in df.columns:
        raise ValueError(
            f"pipeline {pipeline.name!r}: target column {pipeline.target!r} missing from the frame"
        )
    y = _as_float32(df[pipeline.target], pipeline.target)
    if np.isnan(y).any():
        raise ValueError(f"target {pipeline.target!r} has {int(np.isnan(y).sum())} missing values")
    return X, y


def time_split(
    frames: Mapping[str, pd.DataFrame],
    validation_days: int,
    holdout_days: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split daily partitions by date: the last ``holdout_days`` are the holdout, the
    ``validation_days`` before them validate (early stopping), everything earlier trains.

    Splitting by time, not at random, makes the holdout look like tomorrow's data.
    """
    if validation_days < 1 or holdout_days < 1:
        raise ValueError(
            f"validation_days and holdout_days must be >= 1, got {validation_days}, {holdout_days}"
        )
    for ds in frames:
        normalize_key(ds)  # a partition key of any grain (YYYY-MM-DD, or YYYY-MM-DDTHH)
    train_days, valid_days, hold_days = split_days(sorted(frames), validation_days, holdout_days)

    def concat(keys: list[str]) -> pd.DataFrame:
        return pd.concat([frames[k] for k in keys], ignore_index=True)

    return concat(train_days), concat(valid_days), concat(hold_days)


def split_days(
    days: list[str], validation_days: int, holdout_days: int
) -> tuple[list[str], list[str], list[str]]:
    """The sorted partition keys of the train, validation and holdout splits (see ``time_split``)."""
    days = sorted(days)
    needed = validation_days + holdout_days + 1
    if len(days) < needed:
        raise ValueError(
            f"need at least {needed} daily partitions (>= 1 train, {validation_days} validation, "
            f"{holdout_days} holdout), got {len(days)}: {days}"
        )
    n_train = len(days) - validation_days - holdout_days
    return days[:n_train], days[n_train : n_train + validation_days], days[n_train + validation_days :]


def balanced_scale_pos_weight(y: np.ndarray) -> float:
    """XGBoost's ``scale_pos_weight`` for balanced classes: negatives / positives of ``y``."""
    positives = int(np.sum(y == 1))
    if positives == 0:
        raise ValueError("class_weight balanced: the training split has no positive rows")
    return float(np.sum(y == 0)) / positives


# -- training -------------------------------------------------------------------------------------


def xgb_params(
    params: TrainingParams,
    *,
    device: str,
    seed: int,
    nthread: int | None,
    scale_pos_weight: float | None = None,
    stop_on: Literal["auc", "logloss"] = "auc",
) -> dict[str, Any]:
    """The booster parameters for one training run (``nthread`` None: xgboost uses all cores).

    ``stop_on`` is the validation metric early stopping watches (xgboost watches the last one).
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(
            f"device must be 'cpu' or 'cuda' (resolve 'auto' with select_device); got {device!r}"
        )
    out: dict[str, Any] = {
        "tree_method": "hist",
        "device": device,
        "objective": "binary:logistic",
        # The last one drives early stopping; AUC needs both classes in the validation split.
        "eval_metric": ["logloss", "auc"] if stop_on == "auc" else ["logloss"],
        "seed": seed,
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "max_bin": params.max_bin,
    }
    if nthread is not None:
        out["nthread"] = nthread
    if scale_pos_weight is not None:
        out["scale_pos_weight"] = scale_pos_weight
    return out


@dataclass
class TrainResult:
    booster: xgboost.Booster
    best_iteration: int
    best_score: float
    evals_result: dict[str, dict[str, list[float]]]
    device: str
    n_rows: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_trees(self) -> int:
        """Rounds actually built (early stopping may end before n_estimators)."""
        return self.booster.num_boosted_rounds()


class _LogEvery(xgboost.callback.TrainingCallback):
    def __init__(self, every: int, log: Callable[[str], None]) -> None:
        super().__init__()
        self._every = every
        self._log = log

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, dict[str, list[float]]]) -> bool:
        if self._every > 0 and (epoch + 1) % self._every == 0:
            valid = evals_log.get("valid", {})
            scores = " ".join(f"{name}={values[-1]:.5f}" for name, values in valid.items())
            self._log(f"round {epoch + 1}: valid {scores}")
        return False  # never stop training from here; early stopping is xgboost's


def _check_labels(y: np.ndarray, what: str) -> None:
    if len(y) == 0:
        raise ValueError(f"the {what} set is empty")
    classes = np.unique(y)
    if not np.isin(classes, (0.0, 1.0)).all():
        raise ValueError(f"the {what} target must be 0/1; found values {classes[:10].tolist()}")
    if len(classes) < 2:
        raise ValueError(
            f"the {what} target has a single class ({classes[0]:g}) in {len(y)} rows; "
            "a binary classifier needs both 0 and 1"
        )


def train_model(
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    params: TrainingParams,
    *,
    device: str,
    seed: int,
    nthread: int | None = None,
    log_every: int = 25,
    log: Callable[[str], None] = logger.info,
    eval_train: bool = False,
    class_weight: Literal["balanced"] | None = None,
    single_class_validation: bool = False,
) -> TrainResult:
    """Train a binary classifier on ``train`` = (X, y), early-stopping on ``valid``'s AUC.

    ``evals_result`` holds per-round logloss and AUC for "valid" and, with ``eval_train``, for
    "train". Evaluating the train set costs a sort of all train rows per round for its AUC
    (about as much again as building the trees on large data, see bench/bench_training.py);
    ``eval_train=False`` skips it, early stopping is unaffected.

    ``class_weight="balanced"`` sets ``scale_pos_weight`` to negatives / positives of the train
    split (in ``result.params``). ``single_class_validation`` accepts a validation split of one
    class: early stopping then watches its log loss, since AUC is undefined there.

    Score with ``predict(result.booster, X, result.best_iteration)`` so the trees built after
    the best round are not used.
    """
    X_train, y_train = train
    X_valid, y_valid = valid
    _check_labels(y_train, "train")
    one_class = single_class_validation and len(y_valid) > 0 and len(np.unique(y_valid)) == 1
    if not one_class:
        _check_labels(y_valid, "validation")  # AUC on one class is undefined: early stopping can't work
    if list(X_train.columns) != list(X_valid.columns):
        raise ValueError(
            f"train and validation columns differ: {list(X_train.columns)} vs {list(X_valid.columns)}"
        )
    booster_params = xgb_params(
        params,
        device=device,
        seed=seed,
        nthread=nthread,
        scale_pos_weight=balanced_scale_pos_weight(y_train) if class_weight == "balanced" else None,
        stop_on="logloss" if one_class else "auc",
    )
    # QuantileDMatrix builds the histogram bins directly, without a full float copy of the data;
    # the validation matrix reuses the train bins (ref=) as the model will see them.
    dtrain = xgboost.QuantileDMatrix(
        X_train, y_train, enable_categorical=True, max_bin=params.max_bin, nthread=nthread
    )
    dvalid = xgboost.QuantileDMatrix(
        X_valid, y_valid, enable_categorical=True, max_bin=params.max_bin, ref=dtrain, nthread=nthread
    )
    evals_result: dict[str, dict[str, list[float]]] = {}
    booster = xgboost.train(
        booster_params,
        dtrain,
        num_boost_round=params.n_estimators,
        # early stopping watches the last set's last metric: valid AUC
        evals=[(dtrain, "train"), (dvalid, "valid")] if eval_train else [(dvalid, "valid")],
        early_stopping_rounds=params.early_stopping_rounds,
        evals_result=evals_result,
        verbose_eval=False,
        callbacks=[_LogEvery(log_every, log)],
    )
    if device == "cuda":
        # Scoring happens on host DataFrames in other tasks, maybe on machines without a GPU:
        # a CPU model predicts there without a device-mismatch fallback.
        booster.set_param({"device": "cpu"})
    return TrainResult(
        booster=booster,
        best_iteration=int(booster.best_iteration),
        best_score=float(booster.best_score),
        evals_result=evals_result,
        device=device,
        n_rows=len(y_train),
        params=booster_params,
    )


def _align_categories(booster: xgboost.Booster, X: pd.DataFrame) -> pd.DataFrame:
    # xgboost re-codes categoricals by name, but sends a category it never saw down the
    # "not in the split's set" branch, not the missing-value branch. Re-coding onto the model's
    # own categories here makes unknown values missing, as in feature_frame, whatever list
    # the frame was built with (e.g. a YAML that gained a value since the model was trained).
    trained = booster.get_categories(export_to_arrow=True).to_arrow()
    out = X
    for name, values in trained:
        if values is None or name not in X.columns:
            continue
        categories = values.to_pylist()
        column = X[name]
        if isinstance(column.dtype, pd.CategoricalDtype) and list(column.cat.categories) == categories:
            continue
        if out is X:
            out = X.copy(deep=False)
        out[name] = _as_categorical(column, categories)
    return out


def predict(booster: xgboost.Booster, X: pd.DataFrame, best_iteration: int) -> np.ndarray:
    """Probabilities of the positive class from the trees up to and including ``best_iteration``.

    Category values the model was not trained with are scored as missing.
    """
    X = _align_categories(booster, X)
    return np.asarray(booster.inplace_predict(X, iteration_range=(0, best_iteration + 1)))


def _sig(x: float) -> float:
    return float(f"{x:.4g}")  # short, readable values in the MLflow params table


def trial_params(base: TrainingParams, n_trials: int, seed: int) -> list[TrainingParams]:
    """``n_trials`` parameter sets: the base first, then a seeded random search around it.

    max_depth ±2, learning_rate times [0.5, 2] (log-uniform), subsample and colsample_bytree ±0.2
    (kept in [0.5, 1]), min_child_weight times [0.5, 4] (log-uniform; [0, 4] when the base is 0).
    Same arguments, same list.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    rng = np.random.default_rng(seed)
    trials = [base]
    for _ in range(n_trials - 1):
        mcw = (
            base.min_child_weight * 2 ** rng.uniform(-1, 2)
            if base.min_child_weight > 0
            else rng.uniform(0, 4)
        )
        update = {
            "max_depth": int(np.clip(base.max_depth + rng.integers(-2, 3), 1, 16)),
            "learning_rate": _sig(min(1.0, base.learning_rate * 2 ** rng.uniform(-1, 1))),
            "subsample": _sig(float(np.clip(base.subsample + rng.uniform(-0.2, 0.2), 0.5, 1.0))),
            "colsample_bytree": _sig(
                float(np.clip(base.colsample_bytree + rng.uniform(-0.2, 0.2), 0.5, 1.0))
            ),
            "min_child_weight": _sig(float(mcw)),
        }
        trials.append(TrainingParams(**{**base.model_dump(), **update}))  # validated, unlike model_copy
    return trials


def feature_importance_plot(booster: xgboost.Booster, path: str | Path) -> None:
    """Write a PNG bar chart of gain importance (average gain of a feature's splits) to ``path``."""
    # The object API with the Agg canvas never touches pyplot's global backend or figure list,
    # so it is safe in a worker process that has no display and runs other code.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gain = booster.get_score(importance_type="gain")
    items = sorted(gain.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(7, max(2.5, 0.35 * len(items) + 1)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if items:
        ax.barh([k for k, _ in items], [v for _, v in items], color="#4c72b0")
    else:
        ax.text(0.5, 0.5, "no splits: the model uses no feature", ha="center", va="center")
    ax.set_xlabel("gain (average per split)")
    ax.set_title("Feature importance")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
