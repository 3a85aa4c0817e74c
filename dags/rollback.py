"""
### Rollback: move `champion` back

Manual only. Moves the `champion` alias to a target version (default: the previous champion in
the audit trail), recorded like any promotion. Refuses versions that do not exist or never
cleared the promotion floor.

**From the UI.** *Trigger*, type a *Reason* (required: Trigger stays disabled until there is one)
and optionally a *Target version*.

**Output.** The `champion` alias on the target version, with the reason, the run and the day on
the version's tags (a `<pipeline>.champion` event); the task's **MLflow** link opens the version.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from mlops.airflow.dagkit import build_stage, champion_asset, dag_kwargs, version_param
from mlops.airflow.operators.approval import ApproveRollbackOperator
from mlops.airflow.operators.rollback import RollbackOperator
from mlops.config.pipeline import Pipeline


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "rollback", __doc__),
        schedule=None,
        catchup=False,
        params={
            "target_version": version_param(
                "Target version", "Rollback", "version to make champion; empty: the previous champion"
            ),
            "reason": Param(
                "",
                type="string",
                minLength=3,
                maxLength=500,
                title="Reason",
                section="Rollback",
                description="why (required, at least 3 characters); recorded on the version",
            ),
        },
    ) as dag:
        approval = None
        if pipeline.promotion.approval.rollback:
            approval = ApproveRollbackOperator(
                task_id="approve",
                pipeline=pipeline.name,
                response_timeout=pipeline.promotion.approval.timeout_delta,
            )
        rollback = RollbackOperator(
            task_id="rollback",
            pipeline=pipeline.name,
            approval=approval.output if approval else None,
            outlets=[champion_asset(pipeline.name)],
        )
        if approval:
            approval >> rollback
    return dag


globals().update(build_stage("rollback", build))
