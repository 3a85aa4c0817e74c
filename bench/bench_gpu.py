"""GPU training check and benchmark: the same training task on ``cuda`` and on ``cpu``.

    .venv/bin/python bench/bench_gpu.py --rows 1000000

Meant for a machine with an NVIDIA GPU and a CUDA build of xgboost (the PyPI wheel is one).
Elsewhere it reports why ``auto`` falls back to the CPU and times nothing; ``make bench`` then
quotes the last GPU measurement, kept in ``bench/records/``.

Checks, each raising when it fails:

* ``select_device("auto")`` resolves to ``cuda``, with its reason;
* ``train_model(device="cuda")`` builds exactly ``trees`` trees and hands back a booster set to
  predict on the CPU (scoring runs on hosts without a GPU);
* the cuda model's AUC on a held-out frame is within ``auc_tolerance`` of the cpu model's
  (GPU and CPU ``hist`` differ in floating-point order, not in what they learn).

Times (medians of ``repeats``): our task (``prepare_frame`` + ``train_model`` with
``eval_train=False``, as the operators run it) on cuda and on cpu with every core, and bare
``xgboost.train`` on the prepared frame on cuda, the floor for building the same trees there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import xgboost

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT))

from bench.bench_training import synthetic_churn  # noqa: E402
from mlops.config.pipeline import TrainingParams, load_pipeline  # noqa: E402
from mlops.training.evaluation import evaluate  # noqa: E402
from mlops.training.fit import (  # noqa: E402
    gpu_hardware_visible,
    predict,
    prepare_frame,
    select_device,
    train_model,
    xgb_params,
    xgboost_cuda_build,
)

CHURN = ROOT / "include" / "pipelines" / "churn.yaml"


def _timed_task(train_df, valid_df, pipeline, params: TrainingParams, device: str, nthread: int):
    t = time.perf_counter()
    result = train_model(
        prepare_frame(train_df, pipeline),
        prepare_frame(valid_df, pipeline),
        params,
        device=device,
        seed=42,
        nthread=nthread,
        log=lambda _m: None,
        eval_train=False,
    )
    return result, time.perf_counter() - t


def run(
    rows: int = 1_000_000, trees: int = 200, depth: int = 8, repeats: int = 3, auc_tolerance: float = 0.005
) -> dict[str, Any]:
    pipeline = load_pipeline(CHURN)
    nthread = os.cpu_count() or 1
    choice = select_device("auto")
    out: dict[str, Any] = {
        "rows": rows,
        "trees": trees,
        "depth": depth,
        "repeats": repeats,
        "nthread": nthread,
        "xgboost": xgboost.__version__,
        "xgboost_cuda_build": xgboost_cuda_build(),
        "gpu_visible": gpu_hardware_visible(),
        "auto_device": choice.device,
        "auto_reason": choice.reason,
    }
    if choice.device != "cuda":
        # Timing the CPU alone says nothing about the GPU path; the harness quotes the record.
        out["skipped"] = choice.reason
        return out
    # Patience above the tree count: early stopping never fires, every run builds `trees` trees.
    params = TrainingParams(max_depth=depth, n_estimators=trees, early_stopping_rounds=trees + 1)
    train_df = synthetic_churn(rows, seed=1)
    valid_df = synthetic_churn(max(1000, rows // 10), seed=2)
    test_df = synthetic_churn(max(1000, rows // 10), seed=3)
    X_test, y_test = prepare_frame(test_df, pipeline)

    for device in ("cuda", "cpu"):
        _timed_task(train_df.head(20_000), valid_df.head(5_000), pipeline, params, device, nthread)  # warm-up
        seconds, result = [], None
        for _ in range(repeats):
            result, s = _timed_task(train_df, valid_df, pipeline, params, device, nthread)
            seconds.append(s)
        if result.n_trees != trees:
            raise RuntimeError(f"{device}: built {result.n_trees} trees, expected {trees}")
        config = json.loads(result.booster.save_config())
        handed_over = config["learner"]["generic_param"]["device"]
        if handed_over != "cpu":
            raise RuntimeError(f"{device}: the trained booster predicts on {handed_over!r}, expected 'cpu'")
        out[f"{device}_s"] = round(statistics.median(seconds), 3)
        out[f"{device}_all_s"] = [round(s, 3) for s in seconds]
        scores = predict(result.booster, X_test, result.best_iteration)
        out[f"{device}_test_auc"] = round(evaluate(y_test, scores, threshold=0.5)["auc"], 5)

    X, y = prepare_frame(train_df, pipeline)
    bare = []
    for _ in range(repeats):
        t = time.perf_counter()
        d = xgboost.QuantileDMatrix(X, y, enable_categorical=True, max_bin=params.max_bin)
        booster = xgboost.train(xgb_params(params, device="cuda", seed=42, nthread=nthread), d, trees)
        bare.append(time.perf_counter() - t)
        if booster.num_boosted_rounds() != trees:
            raise RuntimeError(f"bare cuda: built {booster.num_boosted_rounds()} trees, expected {trees}")
    out["bare_cuda_s"] = round(statistics.median(bare), 3)
    out["speedup_cuda_over_cpu"] = round(out["cpu_s"] / out["cuda_s"], 2)
    out["ratio_ours_over_bare_cuda"] = round(out["cuda_s"] / out["bare_cuda_s"], 3)
    gap = abs(out["cuda_test_auc"] - out["cpu_test_auc"])
    out["auc_gap"] = round(gap, 5)
    if gap > auc_tolerance:
        raise RuntimeError(f"cuda AUC {out['cuda_test_auc']} vs cpu {out['cpu_test_auc']}: gap {gap:.4f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(rows=args.rows, trees=args.trees, depth=args.depth, repeats=args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
