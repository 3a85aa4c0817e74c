"""
### Monitor: drift of each validated partition against the champion's reference profile

Runs once per validated day (`<pipeline>.validated` events are keyed by the day). When the verdict
persists (with a cooldown) it emits `<pipeline>.drift` and `retrain` starts the drift retrain,
`<pipeline>_train` run `drift__<day>`.

**From the UI.** *Trigger* with *First day* and *Last day* re-monitors that range, each day
against the champion as of the day; empty, the run monitors its partition key.

**Output.** `reports/ds=<day>/drift/` (`drift.json`, `drift.html`): the `monitor` task's **Drift
report** link opens the last day's page; its **MLflow** link opens the monitoring run.
"""

from __future__ import annotations

from airflow.sdk import DAG, PartitionedAssetTimetable

from mlops.airflow.dagkit import build_stage, dag_kwargs, date_range_params, drift_asset, validated_asset
from mlops.airflow.operators.monitor import EmitDriftOperator, MonitorDriftOperator, RetrainOperator
from mlops.config.pipeline import Pipeline


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "monitor", __doc__),
        schedule=PartitionedAssetTimetable(assets=validated_asset(pipeline.name)),
        catchup=False,
        params=date_range_params("re-monitor history", pipeline.grain),
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
