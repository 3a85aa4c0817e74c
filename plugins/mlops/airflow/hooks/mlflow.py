"""MlflowHook: tracking and registry on the ``mlflow_default`` connection, clients built lazily."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops.registry.rest import RegistryReader
    from mlops.registry.signing import SigningKey


# Connection extra -> (MLflow's environment variable, the package's bound).
HTTP_LIMITS = {
    "http_timeout_s": ("MLFLOW_HTTP_REQUEST_TIMEOUT", 30),
    "http_retries": ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 2),
    "http_backoff_factor": ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1),
}


def without_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part: links and URIs the package shows carry none."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class MlflowHook(BaseHook):
    """An MLflow tracking server and model registry.

    The connection's host is the tracking URI (``http://127.0.0.1:5000``), or host, port and schema
    separately. The URI is handed to the client and, for MLflow's fluent API inside a task, to
    ``mlflow.set_tracking_uri`` of that task's process. MLflow reads two things from the environment
    only, so the hook sets them in its task's process: the HTTP limits (``http_limits``), so a
    stopped server fails a task in about a minute, not many; and the connection's login and password
    as ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` for a server with basic auth. Credentials never go
    into the URI, so no link or log line built from it carries them.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "http"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def connection(self) -> Any:
        """The connection, looked up once per hook (the URI, the UI address and the limits read it)."""
        return self.get_connection(self.mlflow_conn_id)

    @cached_property
    def tracking_uri(self) -> str:
        from mlops.settings import tracking_uri

        conn = self.connection
        uri = tracking_uri(conn.host, conn.port, conn.schema)
        if uri is None:
            raise ValueError(f"connection {self.mlflow_conn_id!r} has no host: set it to the tracking URI")
        # MLflow reads its HTTP limits and credentials from the environment only: every use of MLflow
        # in this task (client, fluent API, model loading) goes through this URI, so set them here,
        # once. A task runs in a process of its own: they end with it.
        os.environ.update(self.http_limits)
        self.apply_credentials()
        return without_userinfo(uri)

    @cached_property
    def credentials(self) -> tuple[str, str] | None:
        """The connection's login and password (or, for a host written ``http://user:pw@host``,
        those), or None for a server without auth."""
        from urllib.parse import unquote, urlsplit

        conn = self.connection
        if conn.login:
            return conn.login, conn.password or ""
        parts = urlsplit(conn.host or "")
        if parts.username:
            return unquote(parts.username), unquote(parts.password or "")
        return None

    def apply_credentials(self) -> None:
        """Hand the credentials to MLflow the one way it reads them (its environment variables)."""
        if self.credentials is not None:
            os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = self.credentials

    @cached_property
    def http_limits(self) -> dict[str, str]:
        """MLflow's HTTP timeout and retries for this task, as MLflow's environment variables: the
        connection's extras (``http_timeout_s``, ``http_retries``, ``http_backoff_factor``), else
        the environment, else the package's bounds. MLflow's own (120 s, 7 retries, factor 2) keep
        a task on a stopped server for minutes before it fails."""
        extra = self.connection.extra_dejson or {}
        return {
            env: str(extra.get(key, os.environ.get(env, default)))
            for key, (env, default) in HTTP_LIMITS.items()
        }

    @cached_property
    def client(self) -> MlflowClient:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @cached_property
    def reader(self) -> RegistryReader:
        """The registry's version search over REST, without importing MLflow (``registry_reader``)."""
        from mlops.registry.rest import RegistryReader

        headers = {}
        if self.credentials is not None:
            import base64

            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return RegistryReader(
            self.tracking_uri,
            timeout_s=float(self.http_limits["MLFLOW_HTTP_REQUEST_TIMEOUT"]),
            headers=headers,
        )

    # -- verified models: signed at registration, checked before every load (``mlops.signing``) ---

    @cached_property
    def signing_key(self) -> SigningKey:
        from mlops.airflow.hooks.signing import signing_key

        return signing_key()

    def sign_version(self, model: str, version: str) -> str:
        from mlops.registry.signing import sign_version

        return sign_version(self.client, model, version, self.signing_key)

    def verify_version(self, model: str, version: str) -> None:
        """Raise ``UnverifiedModel`` unless the version's files match its signature."""
        import tempfile
        from pathlib import Path

        from mlops.registry.signing import verified_copy

        with tempfile.TemporaryDirectory(prefix=f"mlops-verify-{model}-") as tmp:
            verified_copy(self.client, model, version, self.signing_key, Path(tmp))

    def load_model(self, model: str, version: str) -> Any:
        """The version's pyfunc model, verified before anything is unpickled (cached per process)."""
        from mlops.registry.signing import load_model

        return load_model(self.tracking_uri, model, str(version), self.signing_key)

    # -- bookkeeping every stage shares: run tags and links into the MLflow UI --------------------

    @cached_property
    def ui_url(self) -> str:
        """The MLflow UI as the user's browser reaches it: the connection's ``ui_url`` extra, else the
        tracking URI (under Compose the tracking URI is a name only the containers resolve)."""
        extra = self.connection.extra_dejson or {}
        return without_userinfo(str(extra.get("ui_url") or self.tracking_uri)).rstrip("/")

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/#/runs/{run_id}"

    def version_url(self, model: str, version: str) -> str:
        return f"{self.ui_url}/#/models/{model}/versions/{version}"

    @staticmethod
    def run_tags(context: Any) -> dict[str, str]:
        """The Airflow run a MLflow run belongs to: DAG, run, task, try and logical date."""
        import os

        ti = context["ti"]
        logical = context.get("logical_date")
        return {
            "airflow.dag_id": ti.dag_id,
            "airflow.run_id": context["run_id"],
            "airflow.task_id": ti.task_id,
            "airflow.try_number": str(ti.try_number),
            "airflow.logical_date": logical.isoformat() if logical else "none",
            **({"git.commit": os.environ["MLOPS_GIT_COMMIT"]} if os.environ.get("MLOPS_GIT_COMMIT") else {}),
        }

    def record_run(
        self,
        experiment: str,
        context: Any,
        *,
        name: str,
        role: str,
        tags: dict[str, str],
        metrics: dict[str, float],
        artifacts: dict[str, str | dict[str, Any]] | None = None,
    ) -> str:
        """Log one finished run of a stage (scoring, monitoring): tags, metrics, text or JSON artifacts.

        Returns the run's UI link.
        """
        from mlops.training.experiment import close_abandoned_runs, experiment_id

        client = self.client
        run_tags = self.run_tags(context)
        exp = experiment_id(client, experiment)
        close_abandoned_runs(
            client,
            exp,
            run_tags["airflow.run_id"],
            match={"airflow.task_id": run_tags["airflow.task_id"], "mlops.role": role},
            keep_try=run_tags["airflow.try_number"],
        )
        run = client.create_run(exp, run_name=name, tags={"mlops.role": role, **run_tags, **tags})
        run_id = run.info.run_id
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value))
        for path, body in (artifacts or {}).items():
            if isinstance(body, str):
                client.log_text(run_id, body, path)
            else:
                client.log_dict(run_id, body, path)
        client.set_terminated(run_id)
        return self.run_url(run_id)

    def reference(self, model: str, version: str) -> tuple[dict[str, Any], float | None]:
        """A version's drift reference profile and its holdout AUC, both logged at training time."""
        import json
        from pathlib import Path

        run = self.client.get_run(self.client.get_model_version(model, version).run_id)
        path = self.client.download_artifacts(run.info.run_id, "reference_profile.json")
        return json.loads(Path(path).read_text()), run.data.metrics.get("holdout_auc")
