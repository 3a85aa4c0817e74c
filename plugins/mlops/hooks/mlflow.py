"""MlflowHook: tracking and registry on the ``mlflow_default`` connection, clients built lazily."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from mlflow import MlflowClient


class MlflowHook(BaseHook):
    """An MLflow tracking server and model registry.

    The connection's host is the tracking URI (``http://127.0.0.1:5000``), or host, port and schema
    separately. Nothing is written into the process environment: the URI is handed to the client and,
    for MLflow's fluent API inside a task, to ``mlflow.set_tracking_uri`` of that task's process.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "http"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def tracking_uri(self) -> str:
        from mlops.settings import tracking_uri

        conn = self.get_connection(self.mlflow_conn_id)
        uri = tracking_uri(conn.host, conn.port, conn.schema)
        if uri is None:
            raise ValueError(f"connection {self.mlflow_conn_id!r} has no host: set it to the tracking URI")
        return uri

    @cached_property
    def client(self) -> MlflowClient:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
