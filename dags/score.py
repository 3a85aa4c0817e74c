"""
### Score: batch predictions with the champion

Runs once per validated day (`<pipeline>.validated` events are keyed by the day).

**From the UI.** *Trigger* with *First day* and *Last day* rescores that range, each day with the
champion as of the day, or with *Model version* when one is given; empty, the run scores its
partition key.

**Output.** `predictions/ds=<day>/` with the key, the score, the label, the model version and the
run id; the `score` task's **MLflow** link opens the scoring run.
"""

from __future__ import annotations

from airflow.sdk import DAG, PartitionedAssetTimetable

from mlops.airflow.dagkit import build_stage, dag_kwargs, date_range_params, validated_asset, version_param
from mlops.airflow.operators.score import ScorePartitionsOperator
from mlops.config.pipeline import Pipeline


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "score", __doc__),
        schedule=PartitionedAssetTimetable(assets=validated_asset(pipeline.name)),
        catchup=False,
        params={
            **date_range_params("rescore history", pipeline.grain),
            "model_version": version_param(
                "Model version", "Model", "registered version to score with; empty: the champion"
            ),
        },
    ) as dag:
        ScorePartitionsOperator(task_id="score", pipeline=pipeline.name)
    return dag


globals().update(build_stage("score", build))
