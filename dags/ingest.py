"""
### Ingest: land, validate, gate

One run per partition of the pipeline's grain (the period of `schedules.ingest`: an hour, a day,
a week or a month); the data interval's start names the partition `ds`. Catches up on its own from
the pipeline's `start_date`.

    landing/<pipeline>/ds=... --land--> raw --validate (Great Expectations)--> validated | quarantine

`wait_for_past` holds the day's publication until every decision effective on or before it (the
trains due, the verdicts and drift retrains of the days before) is taken, so score and monitor of
the day act on the champion as of the day, at any replay speed. Manual runs do not wait.

A partition that fails a table-level expectation, or quarantines more than the configured share
of rows, fails this run: nothing reaches `validated/` and no `<pipeline>.validated` event fires.

**From the UI.** *Trigger → Single Run* with a logical date re-runs that day. *Trigger → Backfill*
runs a date range, one run per day ("All Runs" reprocesses days that already ran; the same source
gives byte-identical partitions). No parameters. From the CLI:
`airflow backfill create --dag-id <pipeline>_ingest --from-date ... --to-date ...`.

**Output.** `<lake>/<pipeline>/raw|validated|quarantine/ds=<day>/`, and the day's Data Docs and
validation result in `reports/ds=<day>/`: the `validate` task's **Data Docs** link (task → Details)
opens them. A `<pipeline>.validated` event keyed by the day starts score and monitor.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable

from mlops.airflow.dagkit import build_stage, dag_kwargs, end_of, validated_asset
from mlops.airflow.operators.ingest import (
    LandPartitionOperator,
    ValidatePartitionOperator,
    WaitForSourceSensor,
)
from mlops.airflow.operators.settle import WaitForPastSensor
from mlops.config.pipeline import Pipeline


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "ingest", __doc__),
        schedule=CronDataIntervalTimetable(pipeline.schedules.ingest, timezone="UTC"),
        end_date=end_of(pipeline),
        catchup=pipeline.schedules.catchup,
    ) as dag:
        source = pipeline.source
        wait = WaitForSourceSensor(
            task_id="wait_for_source",
            pipeline=pipeline.name,
            timeout=source.wait_timeout_minutes * 60,
            poke_interval=source.poke_interval_seconds,
        )
        land = LandPartitionOperator(task_id="land", pipeline=pipeline.name)
        past = WaitForPastSensor(
            task_id="wait_for_past",
            pipeline=pipeline.name,
            timeout=pipeline.schedules.settle_timeout_minutes * 60,
            poke_interval=pipeline.schedules.settle_poke_seconds,
        )
        validate = ValidatePartitionOperator(
            task_id="validate", pipeline=pipeline.name, outlets=[validated_asset(pipeline.name)]
        )
        wait >> land >> past >> validate
    return dag


globals().update(build_stage("ingest", build))
