"""
### Monitor: drift of each validated partition against the champion's reference profile

Runs once per validated day (`<pipeline>.validated` events are keyed by the day), and manually
over a date range or for one partition key. When the verdict persists (with a cooldown) it emits
`<pipeline>.drift` and `retrain` starts the drift retrain, `<pipeline>_train` run `drift__<day>`.
"""

from __future__ import annotations

from airflow.sdk import DAG, PartitionedAssetTimetable

from mlops.config import Pipeline
from mlops.dagkit import build_stage, dag_kwargs, date_range_params, drift_asset, validated_asset
from mlops.operators.monitor import EmitDriftOperator, MonitorDriftOperator, RetrainOperator


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "monitor", __doc__),
        schedule=PartitionedAssetTimetable(assets=validated_asset(pipeline.name)),
        catchup=False,
        params=date_range_params("re-monitor history"),
    ) as dag:
        monitor = MonitorDriftOperator(task_id="monitor", pipeline=pipeline.name)
        emit = EmitDriftOperator(
            task_id="emit_drift",
            pipeline=pipeline.name,
            payload=monitor.output,
            outlets=[drift_asset(pipeline.name)],
        )
        RetrainOperator(task_id="retrain", pipeline=pipeline.name, payload=emit.output)
    return dag


globals().update(build_stage("monitor", build))
