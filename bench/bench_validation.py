"""Benchmark: mlops.ingest.validation.validate_partition against GX alone and a plain pandas mask.

    .venv/bin/python bench/bench_validation.py --rows 1000000 --repeats 3

Prints JSON. A synthetic partition of the churn schema (raw strings, as parse_file returns a
CSV) with ~1% bad rows of mixed kinds, built vectorised from a seed. The churn pipeline's row_count
limit (50,000) is raised to fit, so the partition passes and every stage does its full work.

Times are medians of ``repeats`` wall-clock runs (time.perf_counter) after one warm-up run on a
small frame (which pays the GX import and the context). Measured:

  a  validate_partition: coerce + GX (SUMMARY) + masks and reconciliation + the split
  b  GX alone: mlops.ingest.validation.gx_validate on the coerced frame, i.e. exactly the GX work inside a
  b_naive  one GX run of the same suite on the coerced frame as is (nullable Int64 columns), which is
     what GX costs without gx_view; one run only, it is slow
  c  a plain pandas boolean mask of the same row rules on the coerced frame (no GX)

Peak RSS delta: resource.getrusage(RUSAGE_SELF).ru_maxrss (the process's high-water mark, KiB on
Linux) after the timed runs of (a) minus before them, i.e. how far validating raised the peak above
the input data, GX and its warm-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.ingest import validation  # after the path insert above, so the script runs from a checkout
from mlops.ingest.parsing import coerce
from mlops.ingest.suite import build_suite

ROOT = Path(__file__).resolve().parents[1]

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)
BAD_FRACTION = 0.01


def make_pipeline(rows: int) -> Pipeline:
    churn = load_pipeline(ROOT / "include" / "pipelines" / "churn.yaml")
    row_count = churn.validation.row_count.model_copy(
        update={"max": max(rows, churn.validation.row_count.max)}
    )
    checks = churn.validation.model_copy(update={"row_count": row_count})
    return churn.model_copy(update={"validation": checks})


def make_raw(rows: int, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """A raw churn partition (all strings) with ~1% bad rows; returns it and the bad-row count."""
    rng = np.random.default_rng(seed)
    micros = rng.integers(0, 86_400_000_000, rows)
    event_ts = (pd.Timestamp(START) + pd.to_timedelta(micros, unit="us")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    columns: dict[str, np.ndarray] = {
        "customer_id": np.arange(10_000, 10_000 + rows).astype(str).astype(object),
        "event_ts": np.asarray(event_ts, dtype=object),
        "tenure_months": rng.integers(0, 61, rows).astype(str).astype(object),
        "monthly_charges": np.round(rng.uniform(5, 200, rows), 2).astype(str).astype(object),
        "data_usage_gb": np.round(rng.gamma(2.0, 40.0, rows), 1).astype(str).astype(object),
        "support_calls": rng.poisson(1.5, rows).astype(str).astype(object),
        "late_payments": rng.poisson(0.5, rows).astype(str).astype(object),
        "plan": rng.choice(np.array(["basic", "standard", "premium"], dtype=object), rows),
        "contract": rng.choice(np.array(["monthly", "annual", "two_year"], dtype=object), rows),
        "region": rng.choice(np.array(["north", "south", "east", "west"], dtype=object), rows),
        "payment_method": rng.choice(
            np.array(["card", "bank_transfer", "paypal", "invoice"], dtype=object), rows
        ),
        "autopay": rng.choice(np.array(["true", "false"], dtype=object), rows),
        "churned": (rng.random(rows) < 0.2).astype(int).astype(str).astype(object),
    }
    # Legitimate nulls in nullable columns (5%): not bad rows.
    for name in ("data_usage_gb", "region", "payment_method", "autopay", "late_payments"):
        columns[name][rng.random(rows) < 0.05] = None
    # ~1% bad rows, one fault each, of eight kinds.
    bad = rng.choice(rows, size=int(rows * BAD_FRACTION), replace=False)
    kinds = np.array_split(bad, 8)
    columns["monthly_charges"][kinds[0]] = "n/a"  # unparsable float
    columns["plan"][kinds[1]] = "platinum"  # unknown category
    columns["tenure_months"][kinds[2]] = "999"  # out of range
    columns["contract"][kinds[3]] = None  # null in a non-nullable column
    columns["event_ts"][kinds[4]] = "2026-01-07T00:00:00Z"  # outside the interval
    columns["autopay"][kinds[5]] = "maybe"  # unparsable bool
    columns["support_calls"][kinds[6]] = "-1"  # out of range
    duplicates = kinds[7][: len(kinds[7]) // 2]
    columns["customer_id"][duplicates] = columns["customer_id"][
        kinds[7][len(duplicates) :][: len(duplicates)]
    ]
    raw = pd.DataFrame(columns).astype("str")  # Arrow-backed strings, as read_csv(dtype=str) gives
    n_bad = len(bad) - len(kinds[7]) + 2 * len(duplicates)
    return raw, n_bad


def _median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(rows: int = 1_000_000, repeats: int = 3) -> dict[str, Any]:
    pipeline = make_pipeline(rows)
    suite = build_suite(pipeline)
    raw, n_bad = make_raw(rows)
    parameters = {"interval_start": START, "interval_end": END}

    def a() -> validation.ValidationOutcome:
        return validation.validate_partition(raw, pipeline, suite, interval_start=START, interval_end=END)

    # Warm-up: the GX import, the context, the expectation registry.
    small = make_pipeline(2_000)
    validation.validate_partition(
        make_raw(2_000, seed=1)[0],
        small,
        build_suite(small),
        interval_start=START,
        interval_end=END,
    )

    rss_before = _peak_rss_kib()
    a_seconds, outcome = _median_seconds(a, repeats)
    rss_delta = _peak_rss_kib() - rss_before
    assert outcome.passed, outcome.message
    assert len(outcome.quarantined) == n_bad, (len(outcome.quarantined), n_bad)
    assert outcome.rows == len(outcome.validated) + len(outcome.quarantined)

    coerce_seconds, (typed, _) = _median_seconds(lambda: coerce(raw, pipeline), repeats)
    typed = typed[list(pipeline.columns)]
    b_seconds, _ = _median_seconds(lambda: validation.gx_validate(typed, suite, parameters), repeats)
    b_naive_seconds, _ = _median_seconds(lambda: validation._run_gx(typed, suite, parameters, None), 1)

    row_rules = [e for e in suite["expectations"] if e["meta"]["level"] == "row"]

    def c() -> np.ndarray:
        failing = np.zeros(len(typed), dtype=bool)
        for expectation in row_rules:
            failing |= validation.row_mask(typed, expectation, parameters)
        return failing

    c_seconds, _ = _median_seconds(c, repeats)
    rows_per_second = rows / a_seconds
    return {
        "rows": rows,
        "repeats": repeats,
        "bad_rows": n_bad,
        "quarantined": len(outcome.quarantined),
        "expectations": len(suite["expectations"]),
        "a_validate_partition_s": round(a_seconds, 4),
        "a_rows_per_s": round(rows_per_second),
        "a_breakdown_s": {
            "coerce": round(coerce_seconds, 4),
            "gx": round(b_seconds, 4),
            "masks_reconcile_split": round(max(a_seconds - coerce_seconds - b_seconds, 0.0), 4),
        },
        "b_gx_summary_s": round(b_seconds, 4),
        "b_naive_gx_on_int64_extension_dtypes_s": round(b_naive_seconds, 4),
        "c_pandas_mask_s": round(c_seconds, 4),
        "ratio_a_over_b": round(a_seconds / b_seconds, 2),
        "ratio_a_over_c": round(a_seconds / c_seconds, 2),
        "peak_rss_delta_mib": round(rss_delta / 1024, 1),
        "peak_rss_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss after (a) minus before",
        "goal_a_within_3x_b": a_seconds <= 3 * b_seconds,
        "goal_1m_rows_per_s": rows_per_second >= 1_000_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.repeats), indent=2))


if __name__ == "__main__":
    main()
