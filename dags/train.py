"""
### Train: XGBoost on an as-of window, tracked in MLflow, promoted through a gate

Runs on the pipeline's training cron (weekly in the demo), as `drift__<day>` when the monitor of a
day fires `<pipeline>.drift` (its `retrain` task starts it), and manually from the trigger form.
Trains on the committed validated partitions of the window that ends the day before the run's
logical date, registers the best trial as `challenger`, and moves `champion` only when the
challenger beats the champion as of the run's day by the configured margin (never from a backfill
run). Scheduled and drift runs first wait until every decision before them in the logical order is
taken; `record` writes what the run decided, whatever happened.

**From the UI.** *Trigger*: the logical date sets the window's end (the day before it); every
field starts from the pipeline's `training:` config. *Training data*: the window's length.
*Hyperparameters*: XGBoost's depth, learning rate, trees and early stopping. *Search and device*:
how many trials run in parallel and on which device (`auto` uses a GPU where the trial runs).
*Promotion*: *Force promotion* promotes without the required improvement (never below the floor);
*Reason* (optional) is recorded on the MLflow run.

**Approval.** With `promotion.approval.enabled` in the pipeline's YAML, `approve` sits between
`gate` and `promote`: when the gate decides to promote (forced runs too, never a backfill), it waits
under Browse → Required Actions, holding no worker slot, with challenger and champion compared on
the page. *Approve* lets `promote` move `champion`; *Reject* (or the timeout's configured outcome)
keeps the new version `challenger`, and the run succeeds. The answer is recorded on the version.
Only `promotion.approval.assigned_users` may answer when the YAML names them, and the user who
triggered a forced run cannot approve it. `promote` moves nothing without an approval that counts:
an `approve` task marked success by hand, or a refused approval, fails `promote` with the reason;
clear `approve` with its downstream tasks to ask again.

**Output.** The MLflow experiment `<pipeline>` (each trial's **MLflow** link), a registered version
with the alias `challenger`, `champion` when promoted (a `<pipeline>.champion` event), and the
run's decision in `reports/ds=<window end>/training/<kind>/decision.json`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronTriggerTimetable, Param

from mlops.airflow.dagkit import build_stage, champion_asset, dag_kwargs, end_of
from mlops.airflow.operators.approval import ApprovePromotionOperator
from mlops.airflow.operators.settle import WaitForWindowSensor
from mlops.airflow.operators.train import (
    APPROVAL_TASK,
    PrepareTrainingOperator,
    PromoteOperator,
    PromotionGateOperator,
    RecordTrainingOperator,
    RegisterChallengerOperator,
    TrainTrialOperator,
)
from mlops.config.pipeline import Pipeline, Training, TrainingParams, bounds


def params(pipeline: Pipeline) -> dict[str, Param]:
    cfg, hp, windows = pipeline.training, pipeline.training.params, pipeline.windows
    data, hyper, search, promo = "Training data", "Hyperparameters", "Search and device", "Promotion"
    grain = pipeline.grain
    return {
        "window": Param(
            windows.window,
            type="integer",
            minimum=windows.validation + windows.holdout + 1,
            maximum=grain.per_year,  # the config model's limit (``Pipeline``): every valid config builds
            title=f"Window ({grain.name} partitions)",
            section=data,
            description=f"validated {grain.name} partitions read, ending at the last complete one "
            "before the logical date",
        ),
        "max_depth": Param(
            hp.max_depth,
            type="integer",
            **bounds(TrainingParams, "max_depth"),
            title="Max tree depth",
            section=hyper,
            description="XGBoost max_depth: deeper trees fit more interactions and overfit sooner",
        ),
        "learning_rate": Param(
            hp.learning_rate,
            type="number",
            **bounds(TrainingParams, "learning_rate"),
            title="Learning rate",
            section=hyper,
            description="XGBoost eta: the weight of each new tree",
        ),
        "n_estimators": Param(
            hp.n_estimators,
            type="integer",
            **bounds(TrainingParams, "n_estimators"),
            title="Trees (n_estimators)",
            section=hyper,
            description="boosting rounds at most; early stopping usually ends sooner",
        ),
        "early_stopping_rounds": Param(
            hp.early_stopping_rounds,
            type="integer",
            **bounds(TrainingParams, "early_stopping_rounds"),
            title="Early stopping rounds",
            section=hyper,
            description="stop when validation AUC has not improved for this many rounds",
        ),
        "n_trials": Param(
            cfg.n_trials,
            type="integer",
            **bounds(Training, "n_trials"),
            title="Trials",
            section=search,
            description="candidates trained in parallel; the best on validation is the challenger",
        ),
        "device": Param(
            cfg.device,
            type="string",
            enum=["auto", "cpu", "cuda"],
            title="Device",
            section=search,
            description="auto uses a GPU when one is visible",
        ),
        "force_promote": Param(
            False,
            type="boolean",
            title="Force promotion",
            section=promo,
            description="promote even without the required improvement (never below the floor)",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            section=promo,
            description="why this run was started (optional); recorded on the MLflow run",
        ),
    }


def build(pipeline: Pipeline) -> DAG:
    with DAG(
        **dag_kwargs(pipeline, "train", __doc__),
        schedule=CronTriggerTimetable(pipeline.schedules.train, timezone="UTC"),
        end_date=end_of(pipeline),
        catchup=pipeline.schedules.catchup,
        params=params(pipeline),
    ) as dag:
        name = pipeline.name
        wait = WaitForWindowSensor(
            task_id="wait_for_window",
            pipeline=name,
            timeout=max(pipeline.training.wait_timeout_minutes, pipeline.schedules.settle_timeout_minutes)
            * 60,
            poke_interval=pipeline.schedules.settle_poke_seconds,
        )
        prepare = PrepareTrainingOperator(task_id="prepare", pipeline=name)
        routing = {"queue": pipeline.training.queue} if pipeline.training.queue else {}
        trials = TrainTrialOperator.partial(
            task_id="train_trial",
            pipeline=name,
            execution_timeout=dt.timedelta(minutes=pipeline.trial_timeout_minutes),
            **routing,
        ).expand(trial=prepare.output)
        register = RegisterChallengerOperator(
            task_id="register_challenger", pipeline=name, trials=trials.output
        )
        gate = PromotionGateOperator(task_id="gate", pipeline=name, challenger=register.output)
        approval = None
        if pipeline.promotion.approval.enabled:
            approval = ApprovePromotionOperator(
                task_id=APPROVAL_TASK,
                pipeline=name,
                decision=gate.output,
                response_timeout=pipeline.promotion.approval.timeout_delta,
            )
        promote = PromoteOperator(
            task_id="promote",
            pipeline=name,
            decision=gate.output,
            approval=approval.output if approval else None,
            outlets=[champion_asset(name)],
        )
        record = RecordTrainingOperator(task_id="record", pipeline=name, trigger_rule="all_done", retries=3)
        wait >> prepare >> trials >> register >> gate >> promote >> record
        if approval:
            gate >> approval >> promote
    return dag


globals().update(build_stage("train", build))
