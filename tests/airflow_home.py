"""An Airflow home of its own for a test session or a benchmark: set before Airflow is imported,
since it reads its configuration once, at import."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def isolate_airflow(home: Path) -> None:
    """Airflow's home, metadata database, DAG and plugin folders, and the lake and landing roots,
    all under ``home`` (or this checkout): nothing touches a running stack's state."""
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ.pop("MLOPS_INCLUDE_DIR", None)
    os.environ["MLOPS_LAKE_ROOT"] = str(home / "lake")
    os.environ["MLOPS_LANDING_ROOT"] = str(home / "landing")
