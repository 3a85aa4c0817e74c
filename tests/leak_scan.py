"""Look for secrets where a pipeline run leaves things: task logs, XCom, rendered templates, the
MLflow tracking store and the lake. Each place is read in full and searched for every secret's
exact text; a hit names the place and the secret's name, never its value.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def scan(secrets: dict[str, str], places: Iterable[tuple[str, bytes | str]]) -> tuple[list[str], int]:
    """``<place>: <secret name>`` for every secret found in a place, and how many places were read."""
    found, read = [], 0
    needles = {name: value.encode() for name, value in secrets.items() if value}
    for place, body in places:
        read += 1
        data = body.encode() if isinstance(body, str) else body
        found.extend(f"{place}: {name}" for name, needle in needles.items() if needle in data)
    return found, read


def files(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(path), path.read_bytes()


def s3_objects(s3: Any, bucket: str) -> Iterator[tuple[str, bytes]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            yield f"s3://{bucket}/{item['Key']}", s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()


def database_rows(url: str, queries: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Each row of each query as text (XCom values, rendered template fields)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for label, query in queries.items():
                for row in conn.execute(text(query)):
                    yield f"{label} {row[:-1]}", str(row[-1])
    finally:
        engine.dispose()


AIRFLOW_QUERIES = {
    "xcom": "select dag_id, run_id, task_id, map_index, key, value from xcom",
    "rendered template": "select dag_id, run_id, task_id, map_index, rendered_fields from rendered_task_instance_fields",
}


def mlflow_store(client: Any) -> Iterator[tuple[str, str | bytes]]:
    """Every run's params, tags, metric names and artifacts; every registered version's tags; every
    logged model's artifacts."""
    from mlflow.artifacts import download_artifacts

    experiments = client.search_experiments()
    ids = [e.experiment_id for e in experiments]
    for experiment in experiments:
        yield f"experiment {experiment.name}", repr((experiment.name, experiment.tags))
    runs = []
    token = None
    while True:
        page = client.search_runs(ids, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    with tempfile.TemporaryDirectory(prefix="leak-scan-") as tmp:
        for run in runs:
            label = f"run {run.info.run_id}"
            yield f"{label} params", repr(run.data.params)
            yield f"{label} tags", repr(run.data.tags)
            yield f"{label} metric names", repr(sorted(run.data.metrics))
            if client.list_artifacts(run.info.run_id):
                local = Path(
                    download_artifacts(
                        run_id=run.info.run_id,
                        dst_path=f"{tmp}/{run.info.run_id}",
                        tracking_uri=client.tracking_uri,
                    )
                )
                yield from ((f"{label} artifact {p}", data) for p, data in files(local))
        for model in client.search_logged_models(ids):
            local = Path(
                download_artifacts(
                    artifact_uri=model.artifact_location,
                    dst_path=f"{tmp}/{model.model_id}",
                    tracking_uri=client.tracking_uri,
                )
            )
            yield from ((f"logged model {model.model_id} {p}", data) for p, data in files(local))
        for version in client.search_model_versions():
            yield f"model {version.name} version {version.version} tags", repr(version.tags)
