"""Run every benchmark in its own subprocess and write BENCHMARKS.md.

    python -m bench.run [--quick] [--only parse validation drift training] [--output PATH]

One subprocess per bench, so memory figures of one bench are not inflated by another and a crash
or timeout in one loses only its own section (recorded in its table). Each child writes its
result as JSON to a file (stdout is left to the libraries' logging); its log goes to
.local/bench/<name>.log. Children get a throwaway Airflow home, so a running stack's state is
never read or written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / ".local" / "bench"
PACKAGES = ("apache-airflow", "xgboost", "great_expectations", "pandas", "numpy", "scipy")
# szilard/GBM-perf: XGBoost (hist) on 2 cores, 1M rows, 100 trees, depth 10, in 5.5 s.
ANCHOR_ROWS_TREES_PER_S = 1_000_000 * 100 / 5.5

Row = tuple[str, str, str, str, str, str]  # figure, median, baseline, ratio, goal, met


@dataclass
class Section:
    title: str
    subtitle: str = ""
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    full: dict[str, Any]
    quick: dict[str, Any]
    timeout_s: int
    title: Callable[[dict[str, Any]], Section]  # from the kwargs alone: a failed run still gets one
    render: Callable[[Section, dict[str, Any]], None]


# --- formatting -------------------------------------------------------------------------------


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def _count(n: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


def _rate(per_s: float) -> str:
    return f"{per_s / 1e6:.2f}M/s"


# --- sections ---------------------------------------------------------------------------------


def _parse_title(kw: dict[str, Any]) -> Section:
    return Section("DAG parse time", f"Warm parse of each file in `dags/`; repeats: {kw['repeats']}.")


def _parse_render(sec: Section, r: dict[str, Any]) -> None:
    base = r["example_median_ms"]
    for name, f in r["files"].items():
        if f["goal_ms"] is None:
            continue
        sec.rows.append(
            (
                f"`dags/{name}` ({f['dags']} DAG)",
                f"{f['median_ms']:.1f} ms (p90 {f['p90_ms']:.1f})",
                f"{base:.1f} ms",
                _x(f["ratio_to_example"]),
                f"≤ {f['goal_ms']:g} ms",
                _met(f["goal_met"]),
            )
        )
    # "example" is a module path (airflow.….example_python_operator): the file is its last part.
    example_file = r["example"].rsplit(".", 1)[-1] + ".py"
    ex = r["files"][example_file]
    sec.rows.append(
        (
            f"`{example_file}` (Airflow's example: the baseline)",
            f"{ex['median_ms']:.1f} ms (p90 {ex['p90_ms']:.1f})",
            "—",
            _x(1.0),
            "—",
            "—",
        )
    )
    firsts = ", ".join(f"{name} {f['first_parse_ms']:.1f}" for name, f in r["files"].items())
    sec.notes += [
        f"Method: {r['method']}; Airflow, pydantic and `mlops` imported and each file parsed "
        f"{r['warmup_parses']}x untimed first. Baseline: `{r['example']}` parsed in the same process.",
        f"First parse in the process (after the warm imports), ms: {firsts}.",
    ]


def _validation_title(kw: dict[str, Any]) -> Section:
    return Section(
        f"Validation + quarantine, {_count(kw['rows'])} rows",
        f"Churn schema, raw strings, ~1% bad rows; repeats: {kw['repeats']}.",
    )


def _validation_render(sec: Section, r: dict[str, Any]) -> None:
    a, b, c = r["a_validate_partition_s"], r["b_gx_summary_s"], r["c_pandas_mask_s"]
    gx_rate = r["rows"] / b
    sec.rows += [
        (
            "`validate_partition` (coerce + GX + masks + split) vs GX SUMMARY alone",
            _s(a),
            _s(b),
            _x(a / b),
            "≤ 3x GX",
            _met(a <= 3 * b),
        ),
        (
            "Throughput of `validate_partition` vs GX alone",
            _rate(r["a_rows_per_s"]),
            _rate(gx_rate),
            _x(r["a_rows_per_s"] / gx_rate),
            "≥ 1M rows/s",
            _met(r["a_rows_per_s"] >= 1_000_000),
        ),
        (
            "`validate_partition` vs a plain pandas mask of the row rules (no GX)",
            _s(a),
            _s(c),
            _x(a / c),
            "—",
            "—",
        ),
        (
            "GX on nullable Int64 as is (no `gx_view`, 1 run) vs GX SUMMARY",
            _s(r["b_naive_gx_on_int64_extension_dtypes_s"]),
            _s(b),
            _x(r["b_naive_gx_on_int64_extension_dtypes_s"] / b),
            "—",
            "—",
        ),
        (
            "Peak RSS raised by validating (ru_maxrss delta)",
            f"{r['peak_rss_delta_mib']:.0f} MiB",
            "—",
            "—",
            "report",
            "—",
        ),
    ]
    br = r["a_breakdown_s"]
    sec.notes += [
        f"Breakdown of `validate_partition`: coerce {_s(br['coerce'])}, GX {_s(br['gx'])}, "
        f"masks + reconcile + split {_s(br['masks_reconcile_split'])}.",
        f"{r['quarantined']:,} of {r['bad_rows']:,} bad rows quarantined; {r['expectations']} expectations.",
    ]


def _drift_title(kw: dict[str, Any]) -> Section:
    return Section(
        f"Drift statistics, {_count(kw['rows'])} rows x {kw['features']} features",
        f"PSI + KS per feature and on the score against a stored profile; repeats: {kw['repeats']}. "
        "Baseline: straightforward numpy/scipy (`np.quantile` + `np.histogram` PSI, `scipy.stats.ks_2samp`).",
    )


def _drift_render(sec: Section, r: dict[str, Any]) -> None:
    base = r["baseline"]
    for label, key in (("`compute_drift`", "ours"), ("`compute_drift(n_jobs=2)`", "ours_2_threads")):
        ours = r[key]
        sec.rows.append(
            (
                f"{label} vs numpy/scipy",
                _s(ours["median_s"]),
                _s(base["median_s"]),
                _x(ours["median_s"] / base["median_s"]),
                "≤ 2 s",
                _met(ours["median_s"] <= 2.0),
            )
        )
    for label, key in (("`compute_drift`", "ours"), ("`compute_drift(n_jobs=2)`", "ours_2_threads")):
        ours = r[key]
        sec.rows.append(
            (
                f"Peak memory of {label} vs numpy/scipy (tracemalloc, input excluded)",
                f"{ours['peak_mib']:.1f} MiB",
                f"{base['peak_mib']:.1f} MiB",
                _x(ours["peak_mib"] / base["peak_mib"]) if base["peak_mib"] else "—",
                "report",
                "—",
            )
        )
    sec.notes.append(
        f"Same KS statistics as scipy (max abs difference {r['max_abs_ks_difference']:.2g}); "
        f"reference sample {r['reference_sample']:,} rows."
    )


def _training_title(kw: dict[str, Any]) -> Section:
    return Section(
        "Training task vs bare xgboost.train",
        f"{_count(kw['rows'])} rows, {kw['trees']} trees, depth {kw['depth']}, {kw['nthread']} threads; "
        f"repeats: {kw['repeats']} (each trains three times, ~2 min at 1M rows here: kept low to bound the run time).",
    )


def _training_render(sec: Section, r: dict[str, Any]) -> None:
    bare = r["bare_s"]
    sec.rows += [
        (
            "`prepare_frame` + `train_model` (train + valid evaluated per round) vs bare",
            _s(r["ours_s"]),
            _s(bare),
            _x(r["ratio_ours_over_bare"]),
            "≤ 1.15x",
            _met(r["ratio_ours_over_bare"] <= 1.15),
        ),
        (
            "Same with `eval_train=False` (valid only) vs bare",
            _s(r["ours_no_train_eval_s"]),
            _s(bare),
            _x(r["ratio_ours_no_train_eval_over_bare"]),
            "≤ 1.15x",
            _met(r["ratio_ours_no_train_eval_over_bare"] <= 1.15),
        ),
        (
            "Peak RSS growth of the task as the operators run it (`eval_train=False`) vs the raw float32 matrix",
            f"{r['ours_no_train_eval_rss_growth_mb']:.0f} MB",
            f"{r['raw_float32_matrix_mb']:.0f} MB",
            _x(r["no_train_eval_rss_growth_over_raw_matrix"]),
            "≤ 2.5x",
            _met(r["no_train_eval_rss_growth_over_raw_matrix"] <= 2.5),
        ),
        (
            "Same with the train set evaluated per round",
            f"{r['ours_rss_growth_mb']:.0f} MB",
            f"{r['raw_float32_matrix_mb']:.0f} MB",
            _x(r["rss_growth_over_raw_matrix"]),
            "—",
            "—",
        ),
        (
            "Rows x trees per second, task vs bare",
            _rate(r["ours_rows_trees_per_s"]),
            _rate(r["bare_rows_trees_per_s"]),
            _x(r["ours_rows_trees_per_s"] / r["bare_rows_trees_per_s"]),
            "—",
            "—",
        ),
        (
            "Bare `xgboost.train` vs the szilard/GBM-perf anchor",
            _rate(r["bare_rows_trees_per_s"]),
            _rate(ANCHOR_ROWS_TREES_PER_S),
            _x(r["bare_rows_trees_per_s"] / ANCHOR_ROWS_TREES_PER_S),
            "context",
            "—",
        ),
    ]
    sec.notes += [
        f"Least disturbed run (ratio of minimums): {_x(r['min_ratio_ours_over_bare'])}, "
        f"{_x(r['min_ratio_ours_no_train_eval_over_bare'])} with `eval_train=False`. "
        f"`prepare_frame` (train + valid): {_s(r['ours_prepare_s'])}. xgboost {r['xgboost']}.",
        "Anchor: szilard/GBM-perf measured XGBoost on 2 cores at 5.5 s for 1M rows, 100 trees, depth 10 "
        f"({_rate(ANCHOR_ROWS_TREES_PER_S)} rows x trees); other data, features, depth and CPU, "
        "so an order-of-magnitude check only.",
    ]


def _scoring_title(kw: dict[str, Any]) -> Section:
    return Section(
        f"Scoring, {_count(kw['rows'])} rows, and serving latency",
        f"repeats: {kw['repeats']}; {kw['requests']} requests per serving figure, after warm-up.",
    )


def _scoring_render(sec: Section, r: dict[str, Any]) -> None:
    a, b = r["a_pyfunc_s"], r["b_inplace_predict_s"]
    sec.rows.append(
        (
            "Batch score through the pyfunc (input conversion included) vs bare `Booster.inplace_predict`",
            _s(a),
            _s(b),
            _x(a / b),
            "≤ 1.3x",
            _met(a / b <= 1.3),
        )
    )
    sec.rows.append(
        (
            "Rows per second",
            f"{r['a_rows_per_s']:,.0f}",
            f"{r['b_rows_per_s']:,.0f}",
            _x(r["a_rows_per_s"] / r["b_rows_per_s"]),
            "report",
            "—",
        )
    )
    for label, key in (("1 row", "serve_1_row"), ("1,000 rows", "serve_1000_rows")):
        sec.rows.append(
            (
                f"`mlflow models serve`, {label}: p50 (p95)",
                f"{r[key + '_p50_ms']:.1f} ms ({r[key + '_p95_ms']:.1f})",
                "—",
                "—",
                "report",
                "—",
            )
        )
    sec.notes.append(
        f"Time inside the pyfunc: {', '.join(f'{k} {_s(v)}' for k, v in r['breakdown_s'].items())}; "
        f"ratio of minimums {r['min_ratio_a_over_b']:.2f}x; served scores equal batch scores "
        f"(max abs difference {r['max_abs_diff_served_vs_batch']:.2g}); server ready after {r['serve_start_s']:.1f} s."
    )


GPU_RECORD = ROOT / "bench" / "records" / "gpu-h100.json"


def _gpu_title(kw: dict[str, Any]) -> Section:
    return Section(
        "Training on a GPU (device `cuda`) vs the CPU",
        f"{_count(kw['rows'])} rows, {kw['trees']} trees, depth {kw['depth']}; repeats: {kw['repeats']}. "
        "Our training task as the operators run it, on `cuda` and on `cpu` with every core.",
    )


def _gpu_rows(sec: Section, r: dict[str, Any], where: str) -> None:
    sec.rows += [
        (
            f"Task on cuda vs task on cpu ({r['nthread']} threads){where}",
            _s(r["cuda_s"]),
            _s(r["cpu_s"]),
            _x(r["cuda_s"] / r["cpu_s"]),
            "< 1x",
            _met(r["cuda_s"] < r["cpu_s"]),
        ),
        (
            f"Task on cuda vs bare `xgboost.train` on cuda{where}",
            _s(r["cuda_s"]),
            _s(r["bare_cuda_s"]),
            _x(r["ratio_ours_over_bare_cuda"]),
            "≤ 1.15x",
            _met(r["ratio_ours_over_bare_cuda"] <= 1.15),
        ),
        (
            f"Held-out AUC, cuda model vs cpu model{where}",
            f"{r['cuda_test_auc']:.4f}",
            f"{r['cpu_test_auc']:.4f}",
            f"gap {r['auc_gap']:.4f}",
            "gap ≤ 0.005",
            _met(r["auc_gap"] <= 0.005),
        ),
    ]


def _gpu_render(sec: Section, r: dict[str, Any]) -> None:
    if "skipped" not in r:
        _gpu_rows(sec, r, "")
        sec.notes.append(f"`auto` resolved to `{r['auto_device']}`: {r['auto_reason']}.")
        return
    sec.notes.append(f"Not measured in this run: {r['skipped']}.")
    if not GPU_RECORD.exists():
        return
    record = json.loads(GPU_RECORD.read_text())
    for result in record["results"]:
        _gpu_rows(sec, result, f", {_count(result['rows'])} rows (recorded)")
    sec.notes.append(
        f"Rows marked *recorded* are from `{GPU_RECORD.relative_to(ROOT)}`, measured {record['measured']} "
        f"on {record['machine']} with `{record['command']}`; not this machine, not this run."
    )


def _clock_title(kw: dict[str, Any]) -> Section:
    return Section(
        f"The logical clock's settle check, {kw['days']} days of history",
        f"`Past.before_publish` on a local lake with a drift report per day, a weekly train record and "
        f"move; repeats: {kw['repeats']}. Baseline: the one lake check a daily pipeline makes anyway "
        "(is yesterday's partition committed).",
    )


def _clock_render(sec: Section, r: dict[str, Any]) -> None:
    base = r["baseline_s"]
    for label, key in (
        ("Steady state: the next day's check vs one `is_committed`", "steady_s"),
        (
            f"Catch-up after {r['gap_days']} unpublished days (the walk back) vs one `is_committed`",
            "catch_up_30_days_s",
        ),
    ):
        sec.rows.append(
            (
                label,
                f"{r[key] * 1000:.2f} ms",
                f"{base * 1000:.3f} ms",
                _x(r[key] / base),
                "≤ 1 s",
                _met(r[key] <= 1.0),
            )
        )
    sec.notes.append(
        "The goal is the issue's: steady daily operation no slower by more than a few seconds per run. "
        "What `wait_for_past` adds on top is one task start (seconds on two cores), not this check."
    )


def _backfill_title(kw: dict[str, Any]) -> Section:
    return Section(
        f"Backfill throughput: `churn_ingest` over {kw['days']} days on the embedded stack",
        f"Backfills created through the REST API, {kw['max_active_runs']} runs at once, 2000 rows a day. "
        "Baseline: Airflow's floor, `floor_ingest` (the same four-task shape, tasks that do nothing), "
        "backfilled over the same days on the same stack in the same run.",
    )


def _backfill_render(sec: Section, r: dict[str, Any]) -> None:
    floor, ours = r["floor"], r["ingest"]
    sec.rows.append(
        (
            f"Days per minute, all {ours['succeeded']}/{r['days']} runs succeeded"
            if ours["succeeded"] == r["days"]
            else f"Days per minute ({ours['succeeded']}/{r['days']} runs succeeded)",
            f"{r['ingest_days_per_min']:.1f} /min ({_s(ours['wall_s'])})",
            f"{r['floor_days_per_min']:.1f} /min ({_s(floor['wall_s'])})",
            _x(r["ratio"]),
            "≤ 1.5x",
            _met(r["ratio"] <= 1.5),
        )
    )
    ours_tasks = ", ".join(f"`{k}` {v:.0f} s" for k, v in sorted(ours["task_seconds"].items()))
    floor_tasks = ", ".join(f"`{k}` {v:.0f} s" for k, v in sorted(floor["task_seconds"].items()))
    sec.notes.append(f"Task-seconds, `churn_ingest`: {ours_tasks}. The floor: {floor_tasks}.")
    sec.notes.append(
        "`wait_for_past` publishes day D only after the run of D - 1 has ended (the logical clock), so "
        "the validations of a backfill follow one another while the floor's run side by side."
    )


def _models_view_title(kw: dict[str, Any]) -> Section:
    return Section(
        f"The Models view: a pipeline page of {kw['days']} days and {kw['features']} features",
        f"{kw['loads']} loads of the pipeline page from a cold index reader (the first load reads every "
        "record): read the lake's index, verify the registry's moves, gather and render. Baseline: reading "
        "what the index summarises straight from the reports (each day's drift report and validated "
        "manifest), once per load, in the same run.",
    )


def _models_view_render(sec: Section, r: dict[str, Any]) -> None:
    base = r["scan_median_s"]
    sec.rows.append(
        (
            "Page, p95 of the loads (the cold first load included)",
            f"{r['page_p95_s'] * 1000:.0f} ms",
            f"{base * 1000:.0f} ms",
            _x(r["page_p95_s"] / base),
            "≤ 300 ms",
            _met(r["page_p95_s"] <= 0.3),
        )
    )
    sec.rows.append(
        (
            "Page, median",
            f"{r['page_median_s'] * 1000:.0f} ms",
            f"{base * 1000:.0f} ms",
            _x(r["page_median_s"] / base),
            "-",
            "-",
        )
    )
    sec.notes.append(
        f"{r['versions']} registered versions; the page is {r['page_bytes'] / 1e6:.2f} MB of HTML and inline SVG. "
        "Airflow's login check and the HTTP hop are not in the figure (the API server's, the same for every "
        "page), nor the registry's one HTTP search (kept 15 s by the plugin). On S3 the baseline's reads are "
        "one GET each (730 for a year), the index's a listing and only the records that changed."
    )


def _scale_title(kw: dict[str, Any]) -> Section:
    sizes = ", ".join(_count(n) for n in (kw.get("rows") or [1_000_000, 4_000_000, 16_000_000]))
    window = kw.get("window_partitions", 100) * kw.get("partition_rows", 1_000_000)
    return Section(
        f"Scale: days of {sizes} rows, a {_count(window)}-row training window",
        f"Each point is one process (its peak RSS includes imports); batch_rows {kw.get('batch_rows', 250_000):,}. "
        "Ingest = land + validate + quarantine + commit of one CSV day; score and monitor read that day's "
        f"validated partition; training: XGBoost's iterator over {kw.get('window_partitions', 100)} "
        f"partitions of {_count(kw.get('partition_rows', 1_000_000))} rows, {kw.get('rounds', 10)} rounds.",
    )


def _scale_render(sec: Section, r: dict[str, Any]) -> None:
    from bench.bench_scale import exponent

    mib = 2**20
    for stage, points in r["curve"].items():
        small, large = points[0], points[-1]
        factor = large["rows"] / small["rows"]
        slope = exponent(small, large)
        sec.rows.append(
            (
                f"{stage}: time at {_count(large['rows'])} rows vs {factor:.0f}x the {_count(small['rows'])} time",
                _s(large["seconds"]),
                _s(factor * small["seconds"]),
                _x(large["seconds"] / (factor * small["seconds"])),
                "exponent ≤ 1.05",
                f"{_met(slope <= 1.05)} ({slope:.3f})",
            )
        )
        ratio = large["peak_rss_bytes"] / small["peak_rss_bytes"]
        sec.rows.append(
            (
                f"{stage}: peak RSS at {_count(large['rows'])} rows vs at {_count(small['rows'])}",
                f"{large['peak_rss_bytes'] / mib:.0f} MiB",
                f"{small['peak_rss_bytes'] / mib:.0f} MiB",
                _x(ratio),
                "≤ 1.2x",
                _met(ratio <= 1.2),
            )
        )
        sec.notes.append(
            f"{stage}: "
            + "; ".join(
                f"{_count(p['rows'])} rows {_s(p['seconds'])} ({_rate(p['rows'] / p['seconds'])}), "
                f"peak {p['peak_rss_bytes'] / mib:.0f} MiB"
                for p in points
            )
        )
    train = r["train"]
    ratio = train["peak_rss_bytes"] / train["matrix_bytes"]
    sec.rows.append(
        (
            f"training over {_count(train['rows'])} rows: peak RSS vs its quantized matrix",
            f"{train['peak_rss_bytes'] / mib:.0f} MiB",
            f"{train['matrix_bytes'] / mib:.0f} MiB",
            _x(ratio),
            "≤ 1.5x",
            _met(ratio <= 1.5),
        )
    )
    sec.notes.append(
        f"training: {_count(train['rows'])} rows in {_s(train['seconds'])}; "
        + ", ".join(
            f"{k} {v}"
            for k, v in train.items()
            if k not in ("rows", "seconds", "peak_rss_bytes", "matrix_bytes")
        )
    )
    sec.notes.append(f"![rows against time and peak RSS, one line per stage]({r['plot']})")


def _serving_title(kw: dict[str, Any]) -> Section:
    return Section(
        "Serving under load: `python -m mlops serve` vs `mlflow models serve`, same version",
        f"One signed churn champion (100 trees, depth 6) on loopback; per point {kw['single_requests']} "
        f"single-row and {kw['batch_requests']} 100-row requests from 1, 8 and 32 concurrent keep-alive "
        "clients, with 1 and 2 workers. Ours with metrics on and every answered row kept for the lake "
        "(`sample_rate` 1.0). Baseline: `mlflow models serve` of the same version with the same workers, "
        "the same client and rows, its points interleaved with ours.",
    )


def _serving_render(sec: Section, r: dict[str, Any]) -> None:
    points = {(p["server"], p["workers"], p["rows"], p["clients"]): p for p in r["points"]}
    batch = r["batch_rows"]
    for workers in r["workers"]:
        for rows in (1, batch):
            for clients in r["concurrency"]:
                ours, base = points["ours", workers, rows, clients], points["mlflow", workers, rows, clients]
                where = f"{workers} worker{'s' if workers > 1 else ''}, {clients} client{'s' if clients > 1 else ''}"
                if rows == 1:
                    for q in ("p50", "p99"):
                        a, b = ours[f"{q}_ms"], base[f"{q}_ms"]
                        sec.rows.append(
                            (
                                f"1 row, {where}: {q}",
                                f"{a:.1f} ms",
                                f"{b:.1f} ms",
                                _x(a / b),
                                "≤ mlflow's",
                                _met(a <= b),
                            )
                        )
                    a, b = ours["requests_per_s"], base["requests_per_s"]
                    sec.rows.append(
                        (
                            f"1 row, {where}: throughput",
                            f"{a:,.0f} req/s",
                            f"{b:,.0f} req/s",
                            _x(a / b),
                            "≥ mlflow's",
                            _met(a >= b),
                        )
                    )
                    continue
                sec.rows.append(
                    (
                        f"{batch} rows, {where}: p50 (p99)",
                        f"{ours['p50_ms']:.1f} ms ({ours['p99_ms']:.1f})",
                        f"{base['p50_ms']:.1f} ms ({base['p99_ms']:.1f})",
                        _x(ours["p50_ms"] / base["p50_ms"]),
                        "report",
                        "—",
                    )
                )
                a, b = ours["rows_per_s"], base["rows_per_s"]
                sec.rows.append(
                    (
                        f"{batch} rows, {where}: throughput",
                        f"{a:,.0f} rows/s",
                        f"{b:,.0f} rows/s",
                        _x(a / b),
                        "≥ mlflow's",
                        _met(a >= b),
                    )
                )
    bad = r["failed_or_wrong"]
    sec.rows.append(
        (
            f"Failed or wrong answers, all {r['answers_checked']:,} requests of both",
            f"{bad['ours']}",
            f"{bad['mlflow']}",
            "—",
            "0",
            _met(bad["ours"] == 0),
        )
    )
    checks = r["checks"]
    for workers in r["workers"]:
        kept, answered = (
            checks["served_rows_committed"][f"{workers}w"],
            checks["served_rows_answered"][f"{workers}w"],
        )
        sec.rows.append(
            (
                f"Rows in ours' served zone after shutdown vs rows answered, {workers} worker{'s' if workers > 1 else ''}",
                f"{kept:,}",
                f"{answered:,}",
                _x(kept / answered) if answered else "—",
                "all",
                _met(kept == answered),
            )
        )
    prof = r["profile_ms"]
    parts = ("read_and_check", "model_input", "pyfunc_predict", "served_rows", "answer_json", "metrics")
    sec.notes += [
        "Throughput: the point's requests over its wall time (first send to last answer); latency: send to "
        "last byte read, at the client. Answers are checked after each point: ours' scores, version and row "
        f"count, mlflow's scores, against the batch scorer's (`score_partition`) within 1e-6. Bodies: ours "
        "JSON records with the key (echoed and logged), mlflow's `dataframe_split` of the model's inputs; the "
        f"client (Python threads, one `http.client` connection each) shares the {r['cpus']} CPUs with the servers.",
        f"HTTP floor, p50 of a bare GET over one connection: ours `/health` {r['floor_ms']['ours']:.2f} ms, "
        f"mlflow's `/ping` {r['floor_ms']['mlflow']:.2f} ms.",
        "Where one row's time goes inside ours (median ms per step, in the bench process on the same verified "
        "model): "
        + ", ".join(f"`{k}` {prof[k]:.2f}" for k in parts)
        + f"; whole request path {prof['ours_whole']:.2f}. Inside `pyfunc_predict`: mlflow's schema "
        f"enforcement {prof['mlflow_schema_enforcement']:.2f}, our features and trees "
        f"{prof['features_and_booster']:.2f}. mlflow's own handler (`scoring_server.invocations`: parse, "
        f"predict, answer) on the same row: {prof['mlflow_invocations']:.2f}. Beside the requests, ours' own "
        f"threads: a registry poll (every `poll_seconds`) {prof['background_champion_poll']:.1f} ms, a commit of "
        f"`flush_rows` single-row answers to the served zone {prof['background_flush_single_rows']:.1f} ms.",
        f"Ours' `/metrics` (1 worker) counted {checks['ours_1w_metrics_requests_200']:.0f} answered requests and "
        f"{checks['ours_1w_metrics_rows']:.0f} rows; the client saw {checks['ours_1w_client_answered_requests']} "
        f"and {checks['ours_1w_client_answered_rows']}. Ready after (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in r["start_s"].items())
        + f". mlflow {r['mlflow']}, fastapi {r['fastapi']}, uvicorn {r['uvicorn']}.",
    ]


BENCHES: dict[str, Bench] = {
    b.name: b
    for b in (
        Bench(
            "parse",
            "bench.bench_parse",
            {"repeats": 20},
            {"repeats": 5},
            300,
            _parse_title,
            _parse_render,
        ),
        Bench(
            "validation",
            "bench.bench_validation",
            {"rows": 1_000_000, "repeats": 3},
            {"rows": 100_000, "repeats": 1},
            900,
            _validation_title,
            _validation_render,
        ),
        Bench(
            "drift",
            "bench.bench_drift",
            {"rows": 1_000_000, "features": 28, "repeats": 3},
            {"rows": 100_000, "features": 28, "repeats": 2},
            900,
            _drift_title,
            _drift_render,
        ),
        Bench(
            "training",
            "bench.bench_training",
            {"rows": 1_000_000, "trees": 100, "depth": 8, "nthread": 2, "repeats": 2},
            {"rows": 100_000, "trees": 100, "depth": 8, "nthread": 2, "repeats": 1},
            900,
            _training_title,
            _training_render,
        ),
        Bench(
            "gpu",
            "bench.bench_gpu",
            {"rows": 1_000_000, "trees": 200, "depth": 8, "repeats": 3},
            {"rows": 50_000, "trees": 20, "depth": 8, "repeats": 1},
            900,
            _gpu_title,
            _gpu_render,
        ),
        Bench(
            "clock",
            "bench.bench_clock",
            {"days": 365, "repeats": 50},
            {"days": 90, "repeats": 10},
            300,
            _clock_title,
            _clock_render,
        ),
        Bench(
            "backfill",
            "bench.bench_backfill",
            {"days": 30, "max_active_runs": 4},
            {"days": 5, "max_active_runs": 4},
            3600,
            _backfill_title,
            _backfill_render,
        ),
        Bench(
            "scoring",
            "bench.bench_scoring",
            {"rows": 1_000_000, "repeats": 3, "requests": 50},
            {"rows": 100_000, "repeats": 1, "requests": 20},
            600,
            _scoring_title,
            _scoring_render,
        ),
        Bench(
            "serving",
            "bench.bench_serving",
            {"single_requests": 400, "batch_requests": 100},
            {"single_requests": 40, "batch_requests": 10},
            900,
            _serving_title,
            _serving_render,
        ),
        Bench(
            "models_view",
            "bench.bench_models_view",
            {"days": 365, "features": 30, "loads": 20},
            {"days": 90, "features": 30, "loads": 10},
            300,
            _models_view_title,
            _models_view_render,
        ),
        Bench(
            "scale",
            "bench.bench_scale",
            {
                "rows": [1_000_000, 4_000_000, 16_000_000],
                "window_partitions": 100,
                "partition_rows": 1_000_000,
            },
            {"rows": [100_000, 400_000], "window_partitions": 4, "partition_rows": 100_000},
            5400,
            _scale_title,
            _scale_render,
        ),
    )
}


# --- running ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    result: dict[str, Any] | None
    error: str | None
    wall_s: float
    peak_rss_mib: float | None
    log: Path
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average before / after: how busy the host was
    kept: bool = False  # an earlier run's result, rendered again (``--only``)


def _child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "plugins"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # A throwaway Airflow home: a bench that imports Airflow never touches the stack's state.
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["MLOPS_LAKE_ROOT"] = str(home / "lake")
    env["MLOPS_LANDING_ROOT"] = str(home / "landing")
    return env


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_bench(bench: Bench, kwargs: dict[str, Any], timeout_s: int) -> Outcome:
    """Run one bench in a subprocess; never raises for the bench's own failure."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log, result_path = LOG_DIR / f"{bench.name}.log", LOG_DIR / f"{bench.name}.json"
    result_path.unlink(missing_ok=True)
    home = Path(tempfile.mkdtemp(prefix=f"mlops-bench-{bench.name}-"))
    cmd = [sys.executable, "-m", "bench.run", "--child", bench.module, json.dumps(kwargs), str(result_path)]
    start, load0 = time.perf_counter(), os.getloadavg()[0]
    try:
        with log.open("w") as out:
            # Own session: a timeout kills the bench and anything it started, nothing else.
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=_child_env(home), stdout=out, stderr=out, start_new_session=True
            )
            timed_out, status, usage = False, 0, None
            try:
                while True:
                    # wait4 gives this child's own peak RSS, which RUSAGE_CHILDREN would merge.
                    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        break
                    if time.perf_counter() - start > timeout_s:
                        timed_out = True
                        os.killpg(proc.pid, signal.SIGKILL)
                        _, status, usage = os.wait4(proc.pid, 0)
                        break
                    time.sleep(0.2)
            except BaseException:  # Ctrl-C: the child is in its own session, so take it down too
                os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                raise
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    finally:
        shutil.rmtree(home, ignore_errors=True)
    wall = time.perf_counter() - start
    peak = usage.ru_maxrss / 1024 if usage is not None else None
    outcome = Outcome(None, None, wall, peak, log, (load0, os.getloadavg()[0]))
    if timed_out:
        outcome.error = f"timed out after {timeout_s} s"
    elif proc.returncode != 0 or not result_path.is_file():
        outcome.error = f"failed (exit {proc.returncode})"
    else:
        outcome.result = json.loads(result_path.read_text())
    return outcome


def _child(module: str, kwargs_json: str, result_path: str) -> None:
    """Inside the subprocess: call ``module.run(**kwargs)`` and write its dict as JSON."""
    result = importlib.import_module(module).run(**json.loads(kwargs_json))
    # numpy scalars -> Python numbers
    Path(result_path).write_text(
        json.dumps(result, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    )


# --- report -----------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> list[str]:
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    return [
        f"CPUs: {os.cpu_count()} x {_cpu_model()}",
        f"Memory: {_mem_total_gib()}",
        f"Python {platform.python_version()} on {platform.platform(terse=True)}",
        f"Packages: {versions}",
    ]


def _table(rows: list[Row]) -> list[str]:
    lines = ["| Figure | Median | Baseline | Ratio | Goal | Met |", "|---|---:|---:|---:|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def render(
    sections: list[tuple[Bench, Section, Outcome]],
    *,
    quick: bool,
    started: dt.datetime,
    load: tuple[float, float],
    total_s: float,
) -> str:
    out = ["# Benchmarks", ""]
    if quick:
        out += [
            "> **Quick run** (`python -m bench.run --quick`): smoke-test sizes, for checking the plumbing.",
            "> The goals are set for the full sizes; run `make bench` for figures to compare with them.",
            "",
        ]
    out += [
        f"Generated by `python -m bench.run{' --quick' if quick else ''}` (`make bench`) on "
        f"{started:%Y-%m-%d %H:%M} UTC in {total_s / 60:.1f} min; do not edit by hand.",
        "",
        "How the figures are made: each bench runs in its own subprocess (its memory figures are its "
        "own; a crash or timeout is recorded in its table and the others still run). Times are "
        "wall-clock medians over the stated repeats, after a warm-up. The machine is shared and "
        "absolute times drift between runs, so each figure is paired with a baseline measured in the "
        "same process in the same run, and **Ratio = figure / baseline** is the number to compare "
        "across runs. Goals are on the ratio or on the absolute figure, as stated.",
        "",
        *(
            [
                "Re-run this time (`--only`): "
                + ", ".join(f"`{b.name}`" for b, _, o in sections if not o.kept)
                + "; the other sections keep the figures of the earlier run of this file.",
                "",
            ]
            if any(o.kept for _, _, o in sections)
            else []
        ),
        "## Machine",
        "",
        *[f"- {fact}" for fact in machine_facts()],
        f"- Load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f}",
        "",
    ]
    missed: list[str] = []
    for bench, sec, outcome in sections:
        out += [f"## {sec.title}", ""]
        if sec.subtitle:
            out += [sec.subtitle, ""]
        out += _table(sec.rows)
        out.append("")
        peak = f"{outcome.peak_rss_mib:.0f} MiB" if outcome.peak_rss_mib is not None else "unknown"
        notes = list(sec.notes)
        if not outcome.kept:
            notes.append(
                f"Bench `{bench.module}`: {outcome.wall_s:.0f} s wall, process peak RSS {peak}, "
                f"load average (1 min) before / after {outcome.load[0]:.2f} / {outcome.load[1]:.2f} "
                f"on {os.cpu_count()} CPUs."
            )
        out += [f"- {note}" for note in notes]
        if outcome.error and (tail := _tail(outcome.log)):
            out += ["", "```", tail, "```"]
        out.append("")
        missed += [
            f"{sec.title}: {row[0]}: {row[1]} (goal {row[4]}, ratio {row[3]})"
            for row in sec.rows
            if row[5] in ("**no**", "FAILED", "TIMED OUT")
        ]
    out += ["## Goals missed" + (" (at smoke-test sizes: not a verdict)" if quick else ""), ""]
    out += [f"- {m}" for m in missed] if missed else ["None."]
    out += ["", "<details><summary>Raw results (JSON)</summary>", ""]
    for bench, _, outcome in sections:
        out += [f"`{bench.name}`:", "", "```json", json.dumps(outcome.result), "```", ""]
    out += ["</details>", ""]
    return "\n".join(out)


def _earlier_results(path: Path) -> dict[str, dict[str, Any]]:
    """The raw results a BENCHMARKS.md holds (its JSON section), by bench name."""
    if not path.exists():
        return {}
    found = {}
    for name, body in re.findall(r"^`(\w+)`:\n\n```json\n(.*?)\n```", path.read_text(), flags=re.M | re.S):
        if body != "null":
            found[name] = json.loads(body)
    return found


def _kept(bench: Bench, result: dict[str, Any], path: Path) -> tuple[Bench, Section, Outcome]:
    """A section rendered again from an earlier run's result (``--only`` ran other benches)."""
    kwargs = {**bench.full, **{k: result[k] for k in bench.full if k in result}}
    sec = bench.title(kwargs)
    bench.render(sec, result)
    sec.notes.append("Not re-run this time (`--only`): the figures of the earlier run of this file.")
    return bench, sec, Outcome(result, None, 0.0, None, path, kept=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats: a smoke run")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), metavar="NAME", help=", ".join(BENCHES))
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--timeout", type=int, help="per-bench timeout in seconds (default: per bench)")
    parser.add_argument("--child", nargs=3, metavar=("MODULE", "KWARGS", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    started, t0, load0 = dt.datetime.now(dt.UTC), time.perf_counter(), os.getloadavg()[0]
    # With --only, the other benches keep the results of the run that wrote the file before.
    earlier = _earlier_results(args.output) if args.only and not args.quick else {}
    sections: list[tuple[Bench, Section, Outcome]] = []
    for name in BENCHES:
        bench = BENCHES[name]
        if args.only and name not in args.only:
            if name in earlier:
                sections.append(_kept(bench, earlier[name], args.output))
            continue
        kwargs = bench.quick if args.quick else bench.full
        timeout = args.timeout or (min(bench.timeout_s, 300) if args.quick else bench.timeout_s)
        print(f"[bench] {name} {json.dumps(kwargs)} (timeout {timeout} s) ...", flush=True)
        outcome = run_bench(bench, kwargs, timeout)
        sec = bench.title(kwargs)
        if outcome.result is not None:
            try:
                bench.render(sec, outcome.result)
            except (KeyError, TypeError, ZeroDivisionError) as exc:  # the bench changed its keys
                outcome.error = f"result not understood ({type(exc).__name__}: {exc})"
                sec.rows.clear()
        if outcome.error:
            verdict = "TIMED OUT" if outcome.error.startswith("timed out") else "FAILED"
            sec.rows.append(("bench run", verdict, "—", "—", "—", verdict))
            sec.notes.append(f"{outcome.error}; log: `{outcome.log.relative_to(ROOT)}` (tail below).")
        status = outcome.error or "ok"
        print(f"[bench] {name}: {status} in {outcome.wall_s:.0f} s", flush=True)
        sections.append((bench, sec, outcome))

    total = time.perf_counter() - t0
    text = render(
        sections, quick=args.quick, started=started, load=(load0, os.getloadavg()[0]), total_s=total
    )
    args.output.write_text(text)
    print(f"[bench] wrote {args.output} in {total / 60:.1f} min", flush=True)
    return 1 if any(outcome.error for _, _, outcome in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
