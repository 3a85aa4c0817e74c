"""Small tools the local stacks' scripts share (``python -m mlops stack-tools <command>``).

- ``secrets``: print fresh passwords, S3 keys, a Fernet key and JWT/API secrets as ``NAME=value``.
- ``buckets ENDPOINT BUCKET...``: create S3 buckets (keys from ``AWS_ACCESS_KEY_ID``/``..._SECRET...``).
- ``pipelines SRC DEST [--only NAME] --set key.path=value ...``: copy every pipeline YAML of the
  include folder ``SRC`` (or only those named) into ``DEST`` with the settings changed (values read
  as YAML), and generate the copies' suites (a suite carries a fingerprint of its YAML's rules). The
  distributed test and the replay test run the demo pipeline alone this way, sized for a short
  history.
- ``healthy``: read Airflow's ``/api/v2/monitor/health`` JSON on stdin; exit 0 if every component
  reports healthy.

No Airflow import.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


def new_secrets() -> dict[str, str]:
    from cryptography.fernet import Fernet

    values = {name: secrets.token_hex(16) for name in ("PG_AIRFLOW_PASSWORD", "PG_MLFLOW_PASSWORD")}
    values |= {name: secrets.token_hex(16) for name in ("JWT_SECRET", "API_SECRET_KEY")}
    values["AWS_ACCESS_KEY_ID"] = f"MLOPS{secrets.token_hex(8).upper()}"
    values["AWS_SECRET_ACCESS_KEY"] = secrets.token_hex(20)
    values["FERNET_KEY"] = Fernet.generate_key().decode()
    return values


def create_buckets(endpoint: str, buckets: list[str]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)


def override(doc: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``doc`` with each ``a.b.c=value`` set (the value read as YAML: numbers, booleans, dates)."""
    import yaml

    for assignment in assignments:
        path, sep, raw = assignment.partition("=")
        if not sep or not path:
            raise ValueError(f"expected key.path=value, got {assignment!r}")
        *parents, leaf = path.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = yaml.safe_load(raw)
    return doc


def copy_pipelines(
    source: Path, target: Path, assignments: list[str], only: list[str] | None = None
) -> list[Path]:
    """Copy ``source/pipelines/*.yaml`` (those named in ``only``, if given) to ``target`` with
    ``assignments``; write their suites."""
    import yaml

    from mlops.config.pipeline import load_pipeline
    from mlops.ingest.suite import write_suite

    (target / "pipelines").mkdir(parents=True, exist_ok=True)
    written = []
    paths = sorted((source / "pipelines").glob("*.yaml"))
    if only and (unknown := sorted(set(only) - {p.stem for p in paths})):
        raise ValueError(f"no pipeline {unknown} in {source / 'pipelines'}")
    for path in paths:
        if only and path.stem not in only:
            continue
        doc = override(yaml.safe_load(path.read_text()), assignments)
        header = f"# A copy of include/pipelines/{path.name} for a short run: {' '.join(assignments)}\n"
        copy = target / "pipelines" / path.name
        copy.write_text(header + yaml.safe_dump(doc, sort_keys=False))
        write_suite(load_pipeline(copy), target)
        written.append(copy)
    return written


def healthy(report: dict[str, Any]) -> bool:
    return all((v or {}).get("status") == "healthy" for v in report.values())
