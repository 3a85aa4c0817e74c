"""Benchmark: the Models view's pipeline page for a year of daily partitions and 30 features.

    .venv/bin/python bench/bench_models_view.py --days 365 --features 30 --loads 20

Prints JSON. A local lake holds what the stages write for ``days`` partitions: the lake's index
(an ingest, monitor and score record per day) and, for the baseline, each day's drift report
(``drift.json`` with a statistic per feature). The registry holds a version a week with a signed
promotion every fourth, read back through their signatures as the plugin does. Figures:

- the page: what a request does once Airflow has let it in (read the index, the versions' moves,
  gather the charts' data, render the HTML), ``loads`` times from a cold reader: median and p95;
- baseline: what the same page would cost without the index, reading every day's drift report and
  validated manifest (a scan of the reports per view), once per load, in the same run.

Not included: Airflow's login check and the HTTP hop (the API server's own, the same for every
page), and the registry's HTTP search (one call, cached 15 s by the plugin).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from mlops.config.pipeline import load_pipeline
from mlops.index.records import IndexReader
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir, read_manifest
from mlops.monitor.report_store import read_report, write_report
from mlops.registry.champion import Move, moves_of
from mlops.registry.signing import SigningKey
from mlops.tools.index_scenario import write_index
from mlops.views.models import detail, version_points
from mlops.views.page import pipeline_page

ROOT = Path(__file__).resolve().parents[1]
KEY = SigningKey.from_text("bench-signing-key", source="bench")


class _Version:
    def __init__(self, version: str, tags: dict[str, str]) -> None:
        self.version, self.tags = version, tags


def registry(keys: list[str]) -> list[_Version]:
    """A version a week, every fourth promoted by a signed move, every other refused by the gate."""
    versions, champion = [], None
    for n, ds in enumerate(keys[::7], start=1):
        tags = {"window.as_of": ds, "trigger": "schedule", "gate.auc": f"{0.8 + (n % 9) / 100:.3f}"}
        if n % 4 == 1:
            tags |= Move(
                "churn", str(n), champion, "scheduled", f"scheduled__{ds}", {}, ds, 0, "promotion"
            ).tags(KEY)
            champion = str(n)
            tags["gate.outcome"] = "passed"
        else:
            tags["gate.outcome"] = "refused"
        versions.append(_Version(str(n), tags))
    return versions


def _feature_stats() -> dict[str, Any]:
    """A feature's entry of a drift report, shaped and sized as ``monitor.drift`` writes them
    (statistics, ten bin edges, reference and current shares)."""
    shares = [0.1 + i / 1000 for i in range(10)]
    return {
        "kind": "numeric", "psi": 0.0123, "psi_bias": 0.0011, "ks": 0.021, "ks_pvalue": 0.43,
        "n": 9_876, "null_fraction": 0.0, "edges": [i * 1.2345 for i in range(11)],
        "reference": shares, "current": shares[::-1], "mean": 12.3, "std": 4.56,
    }  # fmt: skip


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def run(days: int = 365, features: int = 30, loads: int = 20) -> dict[str, Any]:
    pipeline = load_pipeline(ROOT / "include/pipelines/churn.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        lake = LocalStorage(tmp)
        keys = write_index(lake, "churn", start="2025-01-01", days=days, features=features)
        names = [f"feature_{j:02d}" for j in range(features)]
        for ds in keys:  # what the baseline reads: the reports and manifests the index summarises
            index = read_manifest(lake, f"churn/index/ds={ds}/ingest").extra
            commit_partition(
                lake, partition_dir("churn", "validated", ds), {"part.parquet": b"x"}, extra=index
            )
            write_report(
                lake,
                "churn",
                {"ds": ds, "features": {n: _feature_stats() for n in names}},
                "<html></html>",
            )
        write_index(lake, "churn", start="2025-01-01", days=days, features=features)  # the records again
        versions = registry(keys)

        reader = IndexReader(lake)  # cold: the first load reads every record
        page_s, size = [], 0
        for _ in range(loads):
            started = time.perf_counter()
            moves = moves_of(versions, "churn", KEY)
            data = detail(pipeline, reader.read("churn"), version_points(versions, moves, "auc"), moves)
            size = len(pipeline_page(data, mlflow_ui="http://127.0.0.1:5000"))
            page_s.append(time.perf_counter() - started)

        scan_s = []
        for _ in range(max(3, loads // 4)):
            started = time.perf_counter()
            for ds in keys:
                read_manifest(lake, partition_dir("churn", "validated", ds))
                read_report(lake, "churn", ds)
            scan_s.append(time.perf_counter() - started)
    return {
        "days": days,
        "features": features,
        "loads": loads,
        "versions": len(versions),
        "page_median_s": statistics.median(page_s),
        "page_p95_s": _percentile(page_s, 0.95),
        "page_first_s": page_s[0],
        "page_bytes": size,
        "scan_median_s": statistics.median(scan_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args.days, args.features, args.loads)))


if __name__ == "__main__":
    main()
