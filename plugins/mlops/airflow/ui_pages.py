"""What the package's UI pages read through Airflow: who may read a pipeline, and the Models view's data.

Imported by the API server's plugins only (``mlops_reports``, ``mlops_models``), when a request
comes: nothing here runs while DAGs parse. A page reads the lake's index (one listing, manifests
re-read only when they changed) and the registry over REST (one search per pipeline, kept
``REGISTRY_TTL_S``), so a view costs no scan of reports and no MLflow import. Champion moves count
only when their signature verifies: without the signing key, the page says so and shows no champion.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.index.records import IndexReader
from mlops.names import dag_id as dag_id_of
from mlops.registry.champion import RecordedMove, moves_of, quote, search_versions
from mlops.settings import get_settings
from mlops.views.models import VersionPoint, detail, overview, version_points

log = logging.getLogger(__name__)
REGISTRY_TTL_S = 15.0


def may_read(pipeline: str, user: Any) -> bool:
    """Whether ``user`` may read the pipeline's task results (its ingest DAG's, as for reports)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=DagAccessEntity.TASK_INSTANCE,
        details=DagDetails(id=dag_id_of(pipeline, "ingest")),
        user=user,
    )


class ModelsSource:
    """The Models view's inputs for every pipeline of the deployment, cached between requests."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self._pipelines: dict[Path, tuple[float, Pipeline | str]] = {}
        self._registry: dict[str, tuple[float, list[VersionPoint], list[RecordedMove], str]] = {}
        self._lock = threading.Lock()
        self._index: IndexReader | None = None

    @property
    def index(self) -> IndexReader:
        if self._index is None:
            from mlops.airflow.hooks.lake import storage_for

            self._index = IndexReader(storage_for(self.settings.lake_root, self.settings.aws_conn_id))
        return self._index

    def pipelines(self) -> tuple[dict[str, Pipeline], list[str]]:
        """Every pipeline YAML that loads, and a message per one that does not."""
        found, problems = {}, []
        for path in sorted(self.settings.pipelines_dir.glob("*.yaml")):
            mtime = path.stat().st_mtime
            cached = self._pipelines.get(path)
            if cached is None or cached[0] != mtime:
                try:
                    loaded: Pipeline | str = load_pipeline(path)
                except Exception as exc:  # a broken YAML is reported on the page, the others still show
                    loaded = f"{path.name}: {exc}"
                cached = self._pipelines[path] = (mtime, loaded)
            if isinstance(cached[1], str):
                problems.append(cached[1])
            else:
                found[cached[1].name] = cached[1]
        return found, problems

    def mlflow_ui(self) -> str:
        from mlops.airflow.hooks.mlflow import MlflowHook

        try:
            return MlflowHook(self.settings.mlflow_conn_id).ui_url
        except Exception:  # no connection: links are left relative, the page still renders
            return ""

    def registry(self, pipeline: Pipeline) -> tuple[list[VersionPoint], list[RecordedMove], str]:
        """The versions and signed moves of the pipeline's model, or the error that stopped the read."""
        now = time.monotonic()
        with self._lock:
            cached = self._registry.get(pipeline.name)
        if cached and now - cached[0] < REGISTRY_TTL_S:
            return cached[1], cached[2], cached[3]
        points: list[VersionPoint] = []
        moves: list[RecordedMove] = []
        error = ""
        try:
            from mlops.airflow.hooks.mlflow import MlflowHook
            from mlops.airflow.hooks.signing import signing_key

            reader = MlflowHook(self.settings.mlflow_conn_id).reader
            versions = search_versions(reader, f"name = {quote(pipeline.name)}")
            moves = moves_of(versions, pipeline.name, signing_key())
            points = version_points(versions, moves, pipeline.promotion.primary_metric)
        except Exception as exc:  # shown on the page; the lake's part still renders
            log.warning("Models view: reading the registry of %s failed: %s", pipeline.name, exc)
            error = str(exc)[:300]
            moves, points = [], []
        with self._lock:
            self._registry[pipeline.name] = (now, points, moves, error)
        return points, moves, error

    def pending_reviews(self, pipeline: str) -> list[dict[str, Any]]:
        """Reviews of the pipeline's train runs still waiting under Required Actions."""
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        query = (
            select(HITLDetail.subject, HITLDetail.created_at, TaskInstance.run_id, TaskInstance.task_id)
            .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
            .where(
                TaskInstance.dag_id == dag_id_of(pipeline, "train"),
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                HITLDetail.responded_at.is_(None),
            )
            .order_by(HITLDetail.created_at)
        )
        with create_session() as session:
            rows = session.execute(query).all()
        return [
            {
                "subject": r.subject,
                "created_at": r.created_at.isoformat(),
                "run_id": r.run_id,
                "task_id": r.task_id,
            }
            for r in rows
        ]

    def overview(self, pipeline: Pipeline) -> dict[str, Any]:
        points, moves, error = self.registry(pipeline)
        return overview(pipeline, self.index.read(pipeline.name), points, moves, registry_error=error)

    def detail(self, pipeline: Pipeline) -> dict[str, Any]:
        points, moves, error = self.registry(pipeline)
        return detail(
            pipeline,
            self.index.read(pipeline.name),
            points,
            moves,
            pending=self.pending_reviews(pipeline.name),
            registry_error=error,
        )
