"""
### Ingest: land, validate, gate

Daily, one run per logical date (the data interval's start is the partition `ds`); catches up
and backfills (`airflow backfill create --dag-id <pipeline>_ingest --from-date ... --to-date ...`).

    landing/<pipeline>/ds=... --land--> raw --validate (Great Expectations)--> validated | quarantine

A partition that fails a table-level expectation, or quarantines more than the configured share
of rows, fails this run: nothing reaches `validated/` and no `<pipeline>.validated` event fires.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable

from mlops.config import Pipeline
from mlops.dagkit import build_stage, dag_kwargs, end_of, not_built


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "ingest", __doc__),
        schedule=CronDataIntervalTimetable(pipeline.schedules.ingest, timezone="UTC"),
        end_date=end_of(pipeline),
        catchup=pipeline.schedules.catchup,
    ) as dag:
        not_built(pipeline.name, "ingest")
    return dag


globals().update(build_stage("ingest", build))
