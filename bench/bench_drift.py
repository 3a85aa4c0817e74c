"""Benchmark: mlops.monitor.drift.compute_drift against a straightforward numpy/scipy implementation.

    .venv/bin/python bench/bench_drift.py --rows 1000000 --features 28 --repeats 5

Prints JSON. Times are medians of ``repeats`` wall-clock runs (time.perf_counter) after one warm-up
run (which pays the scipy import). Peak memory is measured in one separate run under tracemalloc
(numpy reports its buffers to it): the peak of traced allocations during the call minus what was
allocated before it, i.e. the temporaries on top of the input and the profile. Timing runs are not
traced. Both sides get the same profile, loaded from JSON (lists), and the same current columns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from mlops.monitor import drift  # after the path insert above, so the script runs from a checkout

N_BINS = 10
SAMPLE_SIZE = 20_000  # the upper end of the profile's reference sample: the costliest KS
REFERENCE_ROWS = 200_000


def make_data(
    rows: int, features: int, seed: int = 0
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
    """A profile built from a reference draw, and one day's columns (some of them shifted)."""
    rng = np.random.default_rng(seed)
    ref_rows = min(REFERENCE_ROWS, max(rows, 10_000))
    names = [f"f{i:02d}" for i in range(features)]
    reference = {name: rng.normal(i % 5, 1 + i % 3, ref_rows) for i, name in enumerate(names)}
    ref_scores = rng.beta(2, 5, ref_rows)
    profile = drift.build_profile(reference, None, ref_scores, n_bins=N_BINS, sample_size=SAMPLE_SIZE, seed=1)
    profile = json.loads(json.dumps(profile))  # what the monitor actually reads
    del reference, ref_scores
    current = {
        name: rng.normal(i % 5 + (0.3 if i % 7 == 0 else 0.0), 1 + i % 3, rows)
        for i, name in enumerate(names)
    }
    scores = rng.beta(2.2, 5, rows)
    return profile, current, scores


def baseline(profile: dict[str, Any], current: dict[str, np.ndarray], scores: np.ndarray) -> dict[str, Any]:
    """What a typical implementation does: quantile edges + np.histogram PSI, scipy's ks_2samp."""
    from scipy.stats import ks_2samp

    def one(entry: dict[str, Any], values: np.ndarray) -> dict[str, float]:
        ref = np.asarray(entry["sample"])
        cur = values[~np.isnan(values)]
        edges = np.quantile(ref, np.linspace(0, 1, N_BINS + 1))
        r = np.histogram(ref, edges)[0] / ref.size
        c = np.histogram(cur, edges)[0] / cur.size
        r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
        ks = ks_2samp(ref, cur)
        return {
            "psi": float(np.sum((c - r) * np.log(c / r))),
            "ks": float(ks.statistic),
            "ks_pvalue": ks.pvalue,
        }

    features = {name: one(entry, current[name]) for name, entry in profile["features"].items()}
    return {"features": features, "prediction": one(profile["prediction"], scores)}


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    fn()  # warm-up: imports, page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def run(rows: int = 1_000_000, features: int = 28, repeats: int = 5) -> dict[str, Any]:
    """Time both implementations on the same data; returns the dict that main() prints."""
    profile, current, scores = make_data(rows, features)
    ours = drift.compute_drift(profile, current, scores)
    base = baseline(profile, current, scores)
    # Same KS statistic (the baseline's ks_2samp uses method="asymp" at these sizes, exact below).
    ks_diff = max(abs(ours["features"][n]["ks"] - base["features"][n]["ks"]) for n in profile["features"])
    results: dict[str, Any] = {
        "rows": rows,
        "features": features,
        "repeats": repeats,
        "reference_sample": SAMPLE_SIZE,
        "cpus": os.cpu_count(),
        "memory_method": "tracemalloc peak above the pre-call level (input excluded)",
        "max_abs_ks_difference": ks_diff,
    }
    for label, fn in {
        "ours": lambda: drift.compute_drift(profile, current, scores),
        "ours_2_threads": lambda: drift.compute_drift(profile, current, scores, n_jobs=2),
        "baseline": lambda: baseline(profile, current, scores),
    }.items():
        seconds, peak_mib = _time(fn, repeats)
        results[label] = {"median_s": round(seconds, 4), "peak_mib": round(peak_mib, 1)}
    results["speedup_vs_baseline"] = round(results["baseline"]["median_s"] / results["ours"]["median_s"], 1)
    results["speedup_2_threads_vs_baseline"] = round(
        results["baseline"]["median_s"] / results["ours_2_threads"]["median_s"], 1
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.features, args.repeats), indent=2))


if __name__ == "__main__":
    main()
