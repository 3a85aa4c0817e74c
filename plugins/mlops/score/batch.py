"""Batch scoring: one validated partition in, one predictions partition out, naming the model.

No Airflow import. The model is the registered pyfunc; a process keeps one loaded copy per version,
so a worker scoring many partitions loads each version once.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.index.records import score_record, write_record
from mlops.lake.storage import PartitionMissing, Storage, commit_partition, partition_dir, read_partition

if TYPE_CHECKING:
    from mlops.config.pipeline import Pipeline


class SchemaMismatch(ValueError):
    """The partition lacks columns the model's signature needs; names them."""


@functools.lru_cache(maxsize=4)
@dataclass(frozen=True)
class Scored:
    ds: str
    rows: int
    seconds: float
    path: str
    version: str = ""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def score_partition(
    lake: Storage, pipeline: Pipeline, ds: str, model: Any, *, version: str, airflow_run_id: str
) -> Scored:
    """Score ``validated/ds=...`` and commit ``predictions/ds=...``; nothing is written on a mismatch."""
    import pandas as pd

    from mlops.model.pyfunc import model_input

    files = read_partition(lake, partition_dir(pipeline.name, "validated", ds))
    frame = pd.concat([pd.read_parquet(io.BytesIO(data)) for data in files.values()], ignore_index=True)
    needed = model.metadata.get_input_schema().input_names()
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SchemaMismatch(
            f"{pipeline.name} {ds}: the partition lacks columns that model version {version} needs: {missing}"
        )
    started = time.perf_counter()
    scores = model.predict(model_input(frame, pipeline))
    seconds = time.perf_counter() - started
    predictions = pd.DataFrame(
        {
            pipeline.key: frame[pipeline.key],
            "score": pd.Series(scores, dtype="float64").to_numpy(),
            "label": (pd.Series(scores, dtype="float64") >= pipeline.training.threshold)
            .astype("int8")
            .to_numpy(),
            "model_version": version,
            "airflow_run_id": airflow_run_id,
        }
    )
    buffer = io.BytesIO()
    predictions.to_parquet(buffer, index=False)
    directory = partition_dir(pipeline.name, "predictions", ds)
    commit_partition(
        lake,
        directory,
        {"part.parquet": buffer.getvalue()},
        extra={"rows": len(predictions), "model_version": version, "airflow_run_id": airflow_run_id},
    )
    record = score_record(rows=len(predictions), version=version, airflow_run_id=airflow_run_id)
    write_record(lake, pipeline.name, ds, "score", record)
    return Scored(ds=ds, rows=len(predictions), seconds=seconds, path=lake.uri(directory), version=version)


def score_partitions(
    lake: Storage,
    pipeline: Pipeline,
    days: list[str],
    *,
    version_for: Callable[[str], str | None],
    model_of: Callable[[str], Any],
    airflow_run_id: str,
    log: Callable[[str], None],
) -> list[Scored]:
    """The score stage: each day scored by ``version_for(day)`` (None: no model that day, skipped).

    ``model_of(version)`` loads a version (cached by the caller). Raises ``PartitionMissing`` or
    ``SchemaMismatch`` for a day that cannot be scored; days before it stay committed.
    """
    scored = []
    for ds in days:
        version = version_for(ds)
        if version is None:
            log(f"{pipeline.name} {ds}: no champion as of this day, nothing to score with")
            continue
        try:
            result = score_partition(
                lake, pipeline, ds, model_of(version), version=version, airflow_run_id=airflow_run_id
            )
        except PartitionMissing as exc:
            raise PartitionMissing(f"{pipeline.name} {ds}: no validated partition to score ({exc})") from None
        log(
            f"{pipeline.name} {ds}: {result.rows} rows scored by version {version} "
            f"({result.rows_per_second:.0f} rows/s)"
        )
        scored.append(result)
    return scored
