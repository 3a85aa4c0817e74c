"""Test session setup: an Airflow home of its own, so tests never touch a running stack's state.

Set before anything imports Airflow, which reads its configuration once at import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="mlops-test-airflow-"))

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.pop("MLOPS_INCLUDE_DIR", None)
os.environ["MLOPS_LAKE_ROOT"] = str(_HOME / "lake")
os.environ["MLOPS_LANDING_ROOT"] = str(_HOME / "landing")
