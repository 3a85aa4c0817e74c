"""Training overhead benchmark: our prepare_frame + train_model against bare xgboost.train.

    .venv/bin/python bench/bench_training.py --rows 100000

On a seeded, churn-like frame typed like a validated partition (Int64, float64, boolean,
string; nulls where the YAML allows them), times, median of ``repeats``:

* (a) ``prepare_frame`` (train and validation) + ``train_model`` (QuantileDMatrix for both,
  train and valid evaluated every round, logging callback), with early-stopping patience above
  ``trees`` so exactly ``trees`` trees are built;
* (a') the same with ``eval_train=False`` (only the validation set is evaluated per round);
* (b) ``xgboost.QuantileDMatrix`` + ``xgboost.train`` on the already prepared training frame,
  same booster params, no evaluation sets: the floor for building the same trees.

Reports a/b (of medians, and of minimums: on a busy host the minimum is the least disturbed
run), rows*trees per second for each, and the peak RSS growth during (a) and (a') against the
size of the raw float32 feature matrix (rows * features * 4 bytes); the largest over the repeats.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import xgboost

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from mlops.config.pipeline import Pipeline, TrainingParams, load_pipeline  # noqa: E402
from mlops.cost import CostMeter  # noqa: E402
from mlops.training.fit import TrainResult, prepare_frame, train_model, xgb_params  # noqa: E402

CHURN = ROOT / "include" / "pipelines" / "churn.yaml"
_MB = 2**20


def _category(rng: np.random.Generator, values: list[str], n: int, p: list[float], null: float) -> pd.Series:
    codes = rng.choice(len(values), size=n, p=p)
    codes[rng.random(n) < null] = -1
    return pd.Series(pd.Categorical.from_codes(codes, categories=values)).astype("string")


def synthetic_churn(rows: int, seed: int) -> pd.DataFrame:
    """A churn-like frame with the dtypes and nulls of a validated churn partition."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 121, rows)
    charges = np.round(rng.gamma(4.0, 18.0, rows).clip(0, 500), 2)
    usage = rng.lognormal(3.0, 1.0, rows).clip(0, 2000)
    usage[rng.random(rows) < 0.03] = np.nan
    calls = rng.poisson(1.5, rows).clip(0, 50)
    late = pd.array(rng.poisson(0.6, rows).clip(0, 24), dtype="Int64")
    late[rng.random(rows) < 0.02] = pd.NA
    plan = _category(rng, ["basic", "standard", "premium"], rows, [0.5, 0.35, 0.15], 0.0)
    contract = _category(rng, ["monthly", "annual", "two_year"], rows, [0.55, 0.3, 0.15], 0.0)
    region = _category(rng, ["north", "south", "east", "west"], rows, [0.25] * 4, 0.02)
    payment = _category(
        rng, ["card", "bank_transfer", "paypal", "invoice"], rows, [0.4, 0.25, 0.2, 0.15], 0.02
    )
    autopay = pd.array(rng.random(rows) < 0.6, dtype="boolean")
    autopay[rng.random(rows) < 0.02] = pd.NA
    logit = (
        -1.0
        - 0.03 * tenure
        + 0.01 * charges
        + 0.35 * calls
        + 0.5 * late.to_numpy(dtype=float, na_value=0.0)
        + 1.2 * (contract == "monthly").to_numpy(dtype=float)
        - 0.4 * (plan == "premium").to_numpy(dtype=float)
        - 0.5 * autopay.to_numpy(dtype=float, na_value=0.5)
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": pd.array(np.arange(rows), dtype="Int64"),
            "tenure_months": pd.array(tenure, dtype="Int64"),
            "monthly_charges": charges,
            "data_usage_gb": usage,
            "support_calls": pd.array(calls, dtype="Int64"),
            "late_payments": late,
            "plan": plan,
            "contract": contract,
            "region": region,
            "payment_method": payment,
            "autopay": autopay,
            "churned": pd.array(churned, dtype="Int64"),
        }
    )


def _ours(
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    pipeline: Pipeline,
    params: TrainingParams,
    nthread: int,
    *,
    eval_train: bool = True,
) -> tuple[TrainResult, float]:
    t0 = time.perf_counter()
    train = prepare_frame(train_df, pipeline)
    valid = prepare_frame(valid_df, pipeline)
    t1 = time.perf_counter()
    result = train_model(
        train,
        valid,
        params,
        device="cpu",
        seed=42,
        nthread=nthread,
        log=lambda _m: None,
        eval_train=eval_train,
    )
    return result, t1 - t0


def _bare(
    X: pd.DataFrame, y: np.ndarray, params: TrainingParams, trees: int, nthread: int
) -> xgboost.Booster:
    dtrain = xgboost.QuantileDMatrix(X, y, enable_categorical=True, max_bin=params.max_bin, nthread=nthread)
    return xgboost.train(
        xgb_params(params, device="cpu", seed=42, nthread=nthread), dtrain, num_boost_round=trees
    )


def run(
    rows: int = 1_000_000, trees: int = 100, depth: int = 8, nthread: int = 2, repeats: int = 3
) -> dict[str, Any]:
    pipeline = load_pipeline(CHURN)
    # Patience above the tree count: early stopping can never fire, both sides build `trees`.
    params = TrainingParams(max_depth=depth, n_estimators=trees, early_stopping_rounds=trees + 1)
    train_df = synthetic_churn(rows, seed=1)
    valid_df = synthetic_churn(max(1000, rows // 10), seed=2)
    X, y = prepare_frame(train_df, pipeline)  # input of (b): the same prepared arrays

    process = psutil.Process()
    ours_s, lean_s, prep_s, bare_s, rss_growth_mb, peak_rss_mb = [], [], [], [], [], []
    lean_rss_growth_mb: list[float] = []
    for _ in range(repeats):
        gc.collect()
        before_mb = process.memory_info().rss / _MB
        with CostMeter() as meter:
            t = time.perf_counter()
            result, prep = _ours(train_df, valid_df, pipeline, params, nthread)
            ours_s.append(time.perf_counter() - t)
        if result.n_trees != trees:
            raise RuntimeError(f"(a) built {result.n_trees} trees, expected {trees}")
        prep_s.append(prep)
        peak = meter.metrics()["cost_peak_rss_mb"]
        peak_rss_mb.append(peak)
        rss_growth_mb.append(peak - before_mb)
        del result
        gc.collect()

        gc.collect()
        before_mb = process.memory_info().rss / _MB
        with CostMeter() as meter:
            t = time.perf_counter()
            lean, _ = _ours(train_df, valid_df, pipeline, params, nthread, eval_train=False)
            lean_s.append(time.perf_counter() - t)
        lean_rss_growth_mb.append(meter.metrics()["cost_peak_rss_mb"] - before_mb)
        if lean.n_trees != trees:
            raise RuntimeError(f"(a, eval_train=False) built {lean.n_trees} trees, expected {trees}")
        del lean
        gc.collect()

        t = time.perf_counter()
        booster = _bare(X, y, params, trees, nthread)
        bare_s.append(time.perf_counter() - t)
        if booster.num_boosted_rounds() != trees:
            raise RuntimeError(f"(b) built {booster.num_boosted_rounds()} trees, expected {trees}")
        del booster

    a, b = statistics.median(ours_s), statistics.median(bare_s)
    raw_mb = rows * len(pipeline.features) * 4 / _MB
    return {
        "rows": rows,
        "valid_rows": len(valid_df),
        "trees": trees,
        "depth": depth,
        "nthread": nthread,
        "repeats": repeats,
        "xgboost": xgboost.__version__,
        "ours_s": round(a, 3),
        "ours_prepare_s": round(statistics.median(prep_s), 3),
        "ours_no_train_eval_s": round(statistics.median(lean_s), 3),
        "bare_s": round(b, 3),
        "ratio_ours_over_bare": round(a / b, 3),
        "ratio_ours_no_train_eval_over_bare": round(statistics.median(lean_s) / b, 3),
        # On a shared host the minimum is the least disturbed run; compare it with the median.
        "min_ratio_ours_over_bare": round(min(ours_s) / min(bare_s), 3),
        "min_ratio_ours_no_train_eval_over_bare": round(min(lean_s) / min(bare_s), 3),
        "ours_rows_trees_per_s": round(rows * trees / a),
        "bare_rows_trees_per_s": round(rows * trees / b),
        "raw_float32_matrix_mb": round(raw_mb, 1),
        "ours_peak_rss_mb": round(max(peak_rss_mb), 1),
        "ours_rss_growth_mb": round(max(rss_growth_mb), 1),
        "rss_growth_over_raw_matrix": round(max(rss_growth_mb) / raw_mb, 2),
        # The path the operators run (eval_train=False): the one the memory goal is about.
        "ours_no_train_eval_rss_growth_mb": round(max(lean_rss_growth_mb), 1),
        "no_train_eval_rss_growth_over_raw_matrix": round(max(lean_rss_growth_mb) / raw_mb, 2),
        "all_ours_s": [round(v, 3) for v in ours_s],
        "all_ours_no_train_eval_s": [round(v, 3) for v in lean_s],
        "all_bare_s": [round(v, 3) for v in bare_s],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--nthread", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rows, args.trees, args.depth, args.nthread, args.repeats), indent=2))


if __name__ == "__main__":
    main()
