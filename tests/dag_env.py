"""The DAG folder parsed against roots of a test's own, for the tests that run DAGs with ``dag.test``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def dags_with_roots(base: Path, include: Path) -> Iterator[dict[str, Any]]:
    """The DAG folder parsed with the include, landing and lake roots under ``base``, for the block;
    the environment is restored afterwards."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLOPS_INCLUDE_DIR", str(include))
        env.setenv("MLOPS_LANDING_ROOT", str(base / "landing"))
        env.setenv("MLOPS_LAKE_ROOT", str(base / "lake"))
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert not bag.import_errors, bag.import_errors
        yield bag.dags
