"""
### Replay quarantine: fix quarantined rows and put them back into the lake

Manual only. For each chosen day, the quarantined rows are fixed, re-validated against the
current suite, and those that pass join the day's validated data as a new attempt (the old one is
kept for audit); the others stay in quarantine with their new reasons. Landed = validated +
quarantined still holds. Each replayed row keeps its `_row_number` and records its source file, the
fix and this run (`_source_file`, `_replay_fix`, `_replay_run`).

    quarantine/ds=... --fix--> re-validate --> validated (new attempt) | quarantine (new reasons)

**From the UI.** *Trigger*, list the *Partitions* (days) and choose the *Fix*: one of the
pipeline's `fixes:`, the *submitted file* (`python -m mlops quarantine submit`), or *none* (after
accepting a new category level or range in the YAML and `make suites`).

**Output.** A day whose validated data changed is published again (`<pipeline>.validated`, keyed by
the day, oldest first), so score and monitor recompute that day alone; a day where no row passed is
skipped. See `docs/quarantine.md`.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from mlops.airflow.dagkit import HOURLY_KEY_PATTERN, build_stage, dag_kwargs, validated_asset
from mlops.airflow.operators.quarantine import PlanReplayOperator, ReplayPartitionOperator
from mlops.config.pipeline import NO_FIX, SUBMITTED_FIX, Pipeline


def build(pipeline: Pipeline) -> DAG:
    fixes = [SUBMITTED_FIX, *pipeline.fixes, NO_FIX]
    with DAG(
        **dag_kwargs(pipeline, "replay_quarantine", __doc__),
        schedule=None,
        catchup=False,
        params={
            "partitions": Param(
                [],
                type="array",
                items={"type": "string", "pattern": HOURLY_KEY_PATTERN},
                minItems=1,
                maxItems=pipeline.grain.per_year,
                title="Partitions",
                section="Replay",
                description=f"the {pipeline.grain.name}s whose quarantine to replay (YYYY-MM-DD), one a line",
            ),
            "fix": Param(
                SUBMITTED_FIX,
                type="string",
                enum=fixes,
                values_display={
                    SUBMITTED_FIX: "the submitted file",
                    NO_FIX: "none: re-validate against the current suite",
                },
                title="Fix",
                section="Replay",
                description="a fix of the pipeline YAML (fixes:), the submitted file, or none",
            ),
        },
    ) as dag:
        plan = PlanReplayOperator(task_id="plan", pipeline=pipeline.name)
        ReplayPartitionOperator.partial(
            task_id="replay",
            pipeline=pipeline.name,
            outlets=[validated_asset(pipeline.name)],
            max_active_tis_per_dagrun=1,  # one day at a time, in the plan's order: published in order
        ).expand(ds=plan.output)
    return dag


globals().update(build_stage("replay_quarantine", build))
