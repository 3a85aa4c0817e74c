"""
### Probe: the serving service's availability and latency SLO

Every few minutes (`serving.probe_schedule`, no catch-up) sends one known-answer request to the
serving service (`serving.url`, else the `serving_default` connection): a fixed valid row, whose
answer must be a 200 with the model version and the score that version gives offline.
**Paused when created**: unpause it once the service runs (`make serve`, or Compose's `serving`).

**From the UI.** *Trigger* probes once, now (the form has no fields).

**Output.** One probe (up or down, latency, version, status) in `served/ds=<day>/probe/` and a
point on the day's MLflow run `probe <day>` (the task's **MLflow** link). Notifies `service_down`
when a probe finds the service down after one found it up, and `slo_breached` when the p95 latency
over `serving.slo.window_minutes` goes over `serving.slo.p95_ms`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronTriggerTimetable

from mlops.airflow.dagkit import build_stage, dag_kwargs
from mlops.airflow.operators.probe import ProbeServiceOperator
from mlops.config.pipeline import Pipeline


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "probe", __doc__),
        schedule=CronTriggerTimetable(pipeline.serving.probe_schedule, timezone="UTC"),
        catchup=False,
        is_paused_upon_creation=True,
    ) as dag:
        # A probe is one request: bounded well below the 30 minutes a stage's task gets.
        ProbeServiceOperator(
            task_id="probe", pipeline=pipeline.name, execution_timeout=dt.timedelta(minutes=4)
        )
    return dag


globals().update(build_stage("probe", build))
