"""
### Monitor: drift of each validated partition against the champion's reference profile

Runs once per `<pipeline>.validated` event (every partition a run carries is monitored), and
manually over a date range. Emits `<pipeline>.drift` when the verdict persists, with a cooldown.
"""

from __future__ import annotations

from airflow.sdk import DAG

from mlops.config import Pipeline
from mlops.dagkit import build_stage, dag_kwargs, date_range_params, drift_asset, validated_asset
from mlops.operators.monitor import EmitDriftOperator, MonitorDriftOperator


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "monitor", __doc__),
        schedule=[validated_asset(pipeline.name)],
        catchup=False,
        params=date_range_params("re-monitor history"),
    ) as dag:
        monitor = MonitorDriftOperator(task_id="monitor", pipeline=pipeline.name)
        EmitDriftOperator(
            task_id="emit_drift",
            pipeline=pipeline.name,
            payload=monitor.output,
            outlets=[drift_asset(pipeline.name)],
        )
    return dag


globals().update(build_stage("monitor", build))
