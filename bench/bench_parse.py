"""Benchmark: warm parse time of each DAG file in dags/, beside Airflow's example_python_operator.py.

    .venv/bin/python -m bench.bench_parse --repeats 20

Prints JSON. Each parse is ``DagBag.process_file(path, only_if_updated=False)`` on a fresh
``DagBag``: the DAG processor's own path (the module is dropped from sys.modules and re-executed
under its unique module name, then every DAG is validated and bagged). "Warm": Airflow, pydantic
and the mlops package are imported first and each file is parsed twice untimed, so the timed runs
measure the file itself, not first imports. Files are parsed round-robin within each repeat, so
noise on a shared machine falls on our files and on the example alike; the example's median is
the baseline of each ratio. The Airflow home is a temporary directory set before Airflow is
imported, so the bench never reads or writes a running stack's state.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
FILES = ("ingest.py", "train.py", "monitor.py", "score.py", "rollback.py")
EXAMPLE = "example_python_operator.py"
GOAL_MS = 50.0
WARMUP = 2


def _isolate_airflow(home: Path) -> None:
    """Point Airflow at a throwaway home, as the tests do; must run before it is imported."""
    from tests.airflow_home import isolate_airflow

    isolate_airflow(home)
    if str(ROOT / "plugins") not in sys.path:
        sys.path.insert(0, str(ROOT / "plugins"))


def find_example() -> Path:
    """example_python_operator.py in the installed Airflow (core, then the standard provider)."""
    import importlib.util

    candidates = []
    for package in ("airflow.example_dags", "airflow.providers.standard.example_dags"):
        try:
            spec = importlib.util.find_spec(package)
        except ModuleNotFoundError:
            continue
        if spec is not None and spec.submodule_search_locations:
            candidates += [Path(p) / EXAMPLE for p in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{EXAMPLE} not found in the installed Airflow packages: {candidates}")


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]


def run(repeats: int = 20) -> dict[str, Any]:
    """Time ``repeats`` warm parses of each file; returns the dict that main() prints."""
    home = Path(tempfile.mkdtemp(prefix="mlops-bench-airflow-"))
    try:
        _isolate_airflow(home)
        return _run(repeats)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run(repeats: int) -> dict[str, Any]:
    import airflow.sdk
    import pydantic
    from airflow.dag_processing.dagbag import DagBag

    import mlops.airflow.dagkit  # noqa: F401  (warm: our parse-time surface, mlops.config.pipeline included)

    example = find_example()
    paths = {name: DAGS / name for name in FILES} | {EXAMPLE: example}

    def parse(path: Path) -> tuple[float, DagBag, int]:
        bag = DagBag(dag_folder=str(path.parent), collect_dags=False)
        start = time.perf_counter()
        found = bag.process_file(str(path), only_if_updated=False)
        return time.perf_counter() - start, bag, len(found)

    first_ms: dict[str, float] = {}
    dags: dict[str, int] = {}
    for name, path in paths.items():
        for i in range(WARMUP):
            seconds, bag, n = parse(path)
            if bag.import_errors:
                raise RuntimeError(f"{name} failed to parse: {bag.import_errors}")
            if i == 0:
                first_ms[name] = seconds * 1000
        dags[name] = n

    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, path in paths.items():
            gc.collect()  # a collection left over from the previous file is not this file's cost
            seconds, _, _ = parse(path)
            times[name].append(seconds * 1000)

    base = statistics.median(times[EXAMPLE])
    files: dict[str, Any] = {}
    for name, values in times.items():
        median = statistics.median(values)
        files[name] = {
            "dags": dags[name],
            "median_ms": round(median, 2),
            "p90_ms": round(_p90(values), 2),
            "min_ms": round(min(values), 2),
            "first_parse_ms": round(first_ms[name], 2),
            "ratio_to_example": round(median / base, 2),
            # The example is the baseline, not held to our goal.
            "goal_ms": None if name == EXAMPLE else GOAL_MS,
            "goal_met": None if name == EXAMPLE else median <= GOAL_MS,
        }
    return {
        "repeats": repeats,
        "warmup_parses": WARMUP,
        "method": "DagBag.process_file(only_if_updated=False), fresh DagBag per parse, round-robin",
        "airflow": airflow.__version__,
        "pydantic": pydantic.VERSION,
        # As a module path: the site-packages location is a fact of this machine, not of the figure.
        "example": ".".join(example.with_suffix("").parts[example.parts.index("airflow") :]),
        "example_median_ms": round(base, 2),
        "files": files,
        "goal_ms": GOAL_MS,
        "all_goals_met": all(files[name]["goal_met"] for name in FILES),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args.repeats), indent=2))


if __name__ == "__main__":
    main()
