"""Train operators: wait for the window, prepare the run, train trials (mapped), register, gate."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.airflow.operators.base import ModelOperator, effective_from
from mlops.airflow.operators.train_run import (
    APPROVAL_TASK,
    PLAN_KEY,
    gate_of,
    plan_of,
    promotion_review,
    record_outcome,
    trigger_of,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.config.pipeline import Pipeline


def window_length(pipeline: Pipeline, context: Context) -> int:
    """The window in partitions: the trigger form's ``window``, else ``training.window``."""
    return int(context["params"].get("window") or pipeline.windows.window)


class PrepareTrainingOperator(ModelOperator):
    """Scan the window, open the parent MLflow run, and lay out the trials.

    Pushes the run's ``TrainingPlan`` once (XCom key ``plan``) and returns the trials, mapped over by
    ``train_trial``: each is only its index, its hyperparameters and the device asked for.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from mlops.clock.window import WindowTooSmall, attempts_of, scan
        from mlops.registry.champion import champion_as_of
        from mlops.training.experiment import experiment_id, lineage_of, parent_run
        from mlops.training.fit import trial_params
        from mlops.training.plan import TrainingPlan

        trigger = trigger_of(context, self.pipeline.grain)
        lake = self.lake_hook()
        window = scan(lake.storage, self.pipeline, trigger.as_of, window_length(self.pipeline, context))
        try:
            window.check(self.pipeline)
        except WindowTooSmall as exc:
            raise AirflowFailException(str(exc)) from None  # more retries will not add days
        params = context["params"]
        base = self.pipeline.training.params.model_copy(
            update={
                k: params[k]
                for k in ("max_depth", "learning_rate", "n_estimators", "early_stopping_rounds")
                if k in params
            }
        )
        n_trials = int(params.get("n_trials") or self.pipeline.training.n_trials)
        client = self.mlflow.client
        attempts = attempts_of(lake.storage, self.pipeline.name, window.ready)
        lineage = lineage_of(lake.uri, self.pipeline, window.ready, window.failed, attempts)
        tags = {
            **self.mlflow.run_tags(context),
            "trigger": trigger.kind,
            "trigger.payload": _json(trigger.payload),
            "window.as_of": window.as_of,
            "window.partitions": lineage["partitions"],
            "window.skipped_failed": lineage["skipped_failed"],
        }
        parent = parent_run(client, experiment_id(client, self.pipeline.name), context["run_id"], tags)
        self.mlflow_url = self.mlflow.run_url(parent)
        champion = champion_as_of(client, self.pipeline.name, trigger.effective_day, self.mlflow.signing_key)
        self.log.info(
            "%s run as of %s (effective %s): champion then is %s",
            trigger.kind,
            trigger.as_of,
            trigger.effective_day,
            champion or "none",
        )
        plan = TrainingPlan(
            trigger=trigger,
            ready=window.ready,
            failed=window.failed,
            parent_run_id=parent,
            champion_at_start=champion,
            lineage=lineage,
            tags=tags,
        )
        context["ti"].xcom_push(key=PLAN_KEY, value=plan.to_dict())
        device = params.get("device") or self.pipeline.training.device
        return [
            {"trial": i, "params": p.model_dump(), "device": device}
            for i, p in enumerate(trial_params(base, n_trials, self.pipeline.training.seed))
        ]


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)[:4000]


class TrainTrialOperator(ModelOperator):
    """Train one candidate (``trial``, mapped) as a nested MLflow run of the parent run.

    The device is resolved here, on the worker that trains (the GPU worker when ``training.queue``
    routes the trials there), and recorded on the trial's run with the reason.
    """

    template_fields = (*ModelOperator.template_fields, "trial")

    def __init__(self, *, pipeline: str, trial: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.trial = trial

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.clock.window import load_frames
        from mlops.config.pipeline import TrainingParams
        from mlops.training.experiment import train_trial
        from mlops.training.fit import select_device

        plan = plan_of(context)
        device = select_device(self.trial["device"])
        self.log.info("training on %s: %s", device.device, device.reason)
        frames = load_frames(self.lake_hook().storage, self.pipeline, plan.ready, attempts=plan.attempts)
        yaml_text = (self.settings.pipelines_dir / f"{self.pipeline.name}.yaml").read_text()
        tags = {
            **plan.tags,
            **self.mlflow.run_tags(context),
            "device": device.device,
            "device.reason": device.reason,
        }
        result = train_trial(
            self.mlflow.client,
            tracking_uri=self.mlflow.tracking_uri,
            pipeline=self.pipeline,
            pipeline_yaml=yaml_text,
            frames=frames,
            params=TrainingParams(**self.trial["params"]),
            trial=self.trial["trial"],
            device=device.device,
            parent_run_id=plan.parent_run_id,
            tags=tags,
            lineage=plan.lineage,
            key=self.mlflow.signing_key,
            nthread=len(os.sched_getaffinity(0)),
            progress=self.log.info,
        )
        self.mlflow_url = self.mlflow.run_url(result.run_id)
        return result.to_dict()


class RegisterChallengerOperator(ModelOperator):
    """Register the best trial (on validation) as a new version with alias ``challenger``; idempotent.

    The version records the days it was fitted on and its holdout, which the gate's leak guard reads.
    """

    template_fields = (*ModelOperator.template_fields, "trials")

    def __init__(self, *, pipeline: str, trials: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.trials = trials

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.registry.champion import register_version, window_tags
        from mlops.training.experiment import best_trial
        from mlops.training.plan import TrialResult

        plan = plan_of(context)
        trials = [TrialResult.from_dict(t) for t in self.trials]
        best = best_trial(trials, self.pipeline.promotion.primary_metric)
        trained, holdout = plan.split(self.pipeline.windows.holdout)
        version = register_version(
            self.mlflow.client,
            self.pipeline.name,
            run_id=best.run_id,
            source=best.model_uri,
            model_id=best.model_id,
            airflow_run_id=context["run_id"],
            tags={
                "window.partitions": plan.lineage["partitions"],
                "trigger": plan.trigger.kind,
                f"valid.{self.pipeline.promotion.primary_metric}": repr(float(best.valid_metric)),
                **window_tags(plan.as_of, trained, holdout),
            },
        )
        # Signed before anything loads it: the gate, score, monitor and serving verify first. Only
        # the files the trial uploaded are signed: a swap in the store since then fails the task.
        from mlops.registry.signing import UnverifiedModel

        try:
            self.mlflow.sign_version(self.pipeline.name, version.version)
        except UnverifiedModel as exc:
            raise AirflowFailException(f"not signing: {exc}") from None
        self.log.info(
            "registered and signed %s version %s from trial %s",
            self.pipeline.name,
            version.version,
            best.trial,
        )
        self.mlflow_url = self.mlflow.version_url(self.pipeline.name, version.version)
        return {"version": version.version, "run_id": best.run_id, "trial": best.trial}


class PromotionGateOperator(ModelOperator):
    """Score challenger and the champion as of the run's day on the same holdout, and decide.

    Refuses a comparison on holdout days either model was trained on. Records the decision on the
    version; a backfill run only records what it would have done.
    """

    template_fields = (*ModelOperator.template_fields, "challenger")

    def __init__(self, *, pipeline: str, challenger: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.challenger = challenger

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.training.gate import gate_challenger

        version = str(self.challenger["version"])
        self.mlflow_url = self.mlflow.version_url(self.pipeline.name, version)
        decision = gate_challenger(
            self.mlflow.client,
            self.lake_hook().storage,
            self.pipeline,
            plan_of(context),
            version,
            force=bool(context["params"].get("force_promote")),
            load=lambda v: self.mlflow.load_model(self.pipeline.name, v),
            key=self.mlflow.signing_key,
        )
        self.log.info("gate: %s", decision.reason)
        if decision.would_promote and not decision.promote:
            self.log.info("backfill run: would promote version %s; champion stays as it is", version)
        return decision.to_dict()


class PromoteOperator(ModelOperator):
    """Move ``champion`` to the challenger by compare-and-set, audited; skipped when the gate says no.

    The move takes effect as of the run's effective day, or from the first day after it that no
    stage has acted on when a re-run comes late (never retroactively). Skipped, alias untouched, when a decision
    later in the logical order already holds. Its outlet ``<pipeline>.champion`` fires only on a move.
    With ``promotion.approval.enabled`` it moves nothing without an approval that counts
    (``promotion_review``): a rejection skips, a missing or refused approval fails.
    """

    template_fields = (*ModelOperator.template_fields, "decision", "approval")

    def __init__(self, *, pipeline: str, decision: Any, approval: Any = None, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.decision = decision
        self.approval = approval  # the approval task's answer, when the pipeline asks for one

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.registry.champion import Move
        from mlops.training.promotion import GateDecision
        from mlops.training.review import ApprovalMissing

        decision = GateDecision.from_dict(self.decision)
        if not decision.promote:
            raise AirflowSkipException(f"not promoted: {decision.reason}")
        try:
            review = promotion_review(self, context, decision, self.approval)
        except ApprovalMissing as exc:
            raise AirflowFailException(str(exc)) from None
        if review is not None and not review.approved:
            raise AirflowSkipException(
                f"not promoted: {review.summary}; version {decision.version} stays challenger"
            )
        reason = decision.reason + (f"; {review.summary}" if review else "")
        trigger = plan_of(context).trigger
        move = Move(
            model=self.pipeline.name,
            version=decision.version,
            previous=decision.champion_version,
            reason=reason,
            airflow_run_id=context["run_id"],
            metrics={"challenger": decision.challenger, "champion": decision.champion},
            effective_day=effective_from(self, trigger.effective_day),
            order=trigger.order,
        )
        # Linked even when the move is refused: the task's MLflow link shows the challenger.
        self.mlflow_url = self.mlflow.version_url(self.pipeline.name, decision.version)
        return self.make_move(context, move, superseded_fails=False)


class RecordTrainingOperator(ModelOperator):
    """Write the run's ``TrainingRecord`` to the lake, whatever happened upstream (all_done).

    Later stages of the logical clock wait for this record (``mlops.clock``): a run that failed is
    over too, and says where it failed. It fails itself after recording a failure, so the run's
    state stays failed.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.training.review import ApprovalMissing

        trigger = trigger_of(context, self.pipeline.grain)
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[context["run_id"]]).get(context["run_id"], {})
        failed = sorted(t for t, state in states.items() if state == "failed" and t != ti.task_id)
        decision = gate_of(context)
        review, refused = None, ""
        if decision is not None and decision.promote:
            answer = ti.xcom_pull(task_ids=APPROVAL_TASK) if APPROVAL_TASK in states else None
            try:
                review = promotion_review(self, context, decision, answer)
            except ApprovalMissing as exc:
                refused = f": {exc}"  # what promote failed with
        if failed:
            where = ", ".join(failed)
            outcome, reason = "failed", f"failed in {where}" + (refused if "promote" in failed else "")
        elif decision is None:
            outcome, reason = "failed", "no gate decision"
        elif states.get("promote") == "success":
            outcome, reason = "promoted", decision.reason + (f"; {review.summary}" if review else "")
        elif decision.promote and review is not None and not review.approved:
            outcome, reason = "rejected", f"{decision.reason}; {review.summary}"
        elif decision.promote:
            outcome, reason = "superseded", "a decision later in the logical order already holds"
        else:
            outcome, reason = "not_promoted", decision.reason
        record = record_outcome(self, context, outcome, reason, review=review)
        self.log.info("%s run as of %s: %s (%s)", trigger.kind, trigger.as_of, outcome, reason)
        self._end_mlflow_runs(context, failed=outcome == "failed")
        if outcome == "failed":
            # The last task decides the run's state: a run that failed upstream stays failed.
            raise AirflowFailException(f"{trigger.kind} run as of {trigger.as_of} {reason} (recorded)")
        return record.to_dict()

    def _end_mlflow_runs(self, context: Context, *, failed: bool) -> None:
        """End the parent run with the run's outcome, and whatever a dead attempt left RUNNING."""
        from mlops.training.experiment import close_abandoned_runs

        plan = context["ti"].xcom_pull(task_ids="prepare", key=PLAN_KEY)
        if not plan:
            return  # prepare failed before it opened the parent run
        client = self.mlflow.client
        parent = plan["parent_run_id"]
        client.set_terminated(parent, "FAILED" if failed else "FINISHED")
        close_abandoned_runs(client, client.get_run(parent).info.experiment_id, context["run_id"])
