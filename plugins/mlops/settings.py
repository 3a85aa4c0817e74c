"""Where this deployment keeps things: the one place that knows the environment.

Everything else asks for a ``Settings`` and does not care whether it runs on the embedded stack
(local paths under ``.local/``), in CI, or scaled out (``s3://`` roots, a remote MLflow server).
Values come from environment variables so the same code runs everywhere; the defaults are the
embedded stack's. Pure Python: no Airflow import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    include_dir: Path
    lake_root: str
    landing_root: str
    aws_conn_id: str
    mlflow_conn_id: str

    @property
    def pipelines_dir(self) -> Path:
        return self.include_dir / "pipelines"

    def source_root(self, uri: str) -> str:
        """A pipeline's ``source.uri``: absolute (a path or ``s3://``) as it is, else under the landing root."""
        return uri if uri.startswith(("s3://", "/")) else f"{self.landing_root}/{uri}"


def _root(value: str) -> str:
    """Local roots become absolute paths; ``s3://`` roots are kept as they are."""
    if value.startswith("s3://"):
        return value.rstrip("/")
    path = Path(value)
    return str(path if path.is_absolute() else PROJECT_ROOT / path)


def get_settings() -> Settings:
    env = os.environ
    return Settings(
        include_dir=Path(env.get("MLOPS_INCLUDE_DIR", PROJECT_ROOT / "include")),
        lake_root=_root(env.get("MLOPS_LAKE_ROOT", ".local/lake")),
        landing_root=_root(env.get("MLOPS_LANDING_ROOT", ".local/landing")),
        aws_conn_id=env.get("MLOPS_AWS_CONN_ID", "aws_default"),
        mlflow_conn_id=env.get("MLOPS_MLFLOW_CONN_ID", "mlflow_default"),
    )


def tracking_uri(host: str | None, port: int | None, schema: str | None) -> str | None:
    """The MLflow tracking URI an ``mlflow_default``-style connection names, or None without a host.

    The host is the whole URI (``http://mlflow:5000``), or host, port and schema (default ``http``)
    separately. ``MlflowHook`` and the preflight both read connections this way.
    """
    host = (host or "").rstrip("/")
    if not host or "://" in host:
        return host or None
    return f"{schema or 'http'}://{host}{f':{port}' if port else ''}"
