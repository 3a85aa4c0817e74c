"""Train operators: wait for the window, prepare the run, train trials (mapped), register, gate."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops.operators.base import ModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def trigger_of(context: Context) -> dict[str, Any]:
    """Why this run trains and on which window: drift (with its payload), schedule, backfill or manual.

    A drift-triggered run trains on the window ending at the drifted day; any other run on the window
    ending the day before its logical date (that day's partition is the last one complete).
    """
    run = context["dag_run"]
    run_type = str(getattr(run.run_type, "value", run.run_type))
    drift = [e for events in (context.get("triggering_asset_events") or {}).values() for e in events]
    if drift:
        payload = dict(drift[-1].extra or {})
        return {"kind": "drift", "as_of": payload["ds"], "payload": payload, "backfill": False}
    logical = context.get("logical_date") or run.run_after
    as_of = (logical.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    reason = (context["params"].get("reason") or "").strip()
    kind = {"backfill": "backfill", "manual": "manual"}.get(run_type, "schedule")
    return {
        "kind": kind,
        "as_of": as_of,
        "payload": {"reason": reason} if reason else {},
        "backfill": kind == "backfill",
    }


def window_days(pipeline: Any, context: Context) -> int:
    return int(context["params"].get("window_days") or pipeline.training.window_days)


class WaitForWindowSensor(ModelOperator, BaseSensorOperator):
    """Wait (reschedule mode) while the window's last day is still being ingested."""

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(pipeline=pipeline, **kwargs)

    def poke(self, context: Context) -> bool:
        from mlops.window import day_state

        as_of = trigger_of(context)["as_of"]
        state = day_state(self.lake_hook().storage, self.pipeline.name, as_of)
        self.log.info("last day of the window %s: %s", as_of, state)
        return state != "pending"


class PrepareTrainingOperator(ModelOperator):
    """Scan the window, open the parent MLflow run, and lay out the trials.

    Returns the trials, mapped over by ``train_trial``; each carries the run's facts (``prepared``),
    which travel on through the chain's return values.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from mlops.experiment import experiment_id, lineage_of, parent_run
        from mlops.registry import CHAMPION, alias_version
        from mlops.training import select_device, trial_params
        from mlops.window import WindowTooSmall, scan

        trigger = trigger_of(context)
        lake = self.lake_hook()
        window = scan(
            lake.storage,
            self.pipeline,
            dt.date.fromisoformat(trigger["as_of"]),
            window_days(self.pipeline, context),
        )
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
        device = select_device(params.get("device") or self.pipeline.training.device)
        self.log.info("training on %s: %s", device.device, device.reason)
        client = self.mlflow.client
        lineage = lineage_of(lake.uri, self.pipeline, window.ready, window.failed)
        tags = {
            **self.run_tags(context),
            "trigger": trigger["kind"],
            "trigger.payload": _json(trigger["payload"]),
            "window.as_of": window.as_of,
            "window.partitions": lineage["partitions"],
            "window.skipped_failed": lineage["skipped_failed"],
        }
        parent = parent_run(client, experiment_id(client, self.pipeline.name), context["run_id"], tags)
        self.mlflow_url = f"{self.mlflow.tracking_uri}/#/experiments/{client.get_run(parent).info.experiment_id}/runs/{parent}"
        prepared = {
            "trigger": trigger,
            "as_of": window.as_of,
            "ready": window.ready,
            "failed": window.failed,
            "parent_run_id": parent,
            "champion_at_start": alias_version(client, self.pipeline.name, CHAMPION),
            "lineage": lineage,
            "tags": tags,
        }
        return [
            {"trial": i, "params": p.model_dump(), "device": device.device, "prepared": prepared}
            for i, p in enumerate(trial_params(base, n_trials, self.pipeline.training.seed))
        ]

    def run_tags(self, context: Context) -> dict[str, str]:
        ti = context["ti"]
        logical = context.get("logical_date")
        return {
            "airflow.dag_id": ti.dag_id,
            "airflow.run_id": context["run_id"],
            "airflow.task_id": ti.task_id,
            "airflow.try_number": str(ti.try_number),
            "airflow.logical_date": logical.isoformat() if logical else "none",
            **({"git.commit": os.environ["MLOPS_GIT_COMMIT"]} if os.environ.get("MLOPS_GIT_COMMIT") else {}),
        }


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)[:4000]


class TrainTrialOperator(ModelOperator):
    """Train one candidate (``trial``, mapped) as a nested MLflow run of the parent run."""

    template_fields = (*ModelOperator.template_fields, "trial")

    def __init__(self, *, pipeline: str, trial: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.trial = trial

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.config import TrainingParams
        from mlops.experiment import train_trial
        from mlops.window import load_frames

        trial = self.trial
        prepared = trial["prepared"]
        frames = load_frames(self.lake_hook().storage, self.pipeline, prepared["ready"])
        yaml_text = (self.settings.pipelines_dir / f"{self.pipeline.name}.yaml").read_text()
        tags = {
            **prepared["tags"],
            "airflow.task_id": context["ti"].task_id,
            "airflow.try_number": str(context["ti"].try_number),
        }
        result = train_trial(
            self.mlflow.client,
            tracking_uri=self.mlflow.tracking_uri,
            pipeline=self.pipeline,
            pipeline_yaml=yaml_text,
            frames=frames,
            params=TrainingParams(**trial["params"]),
            trial=trial["trial"],
            device=trial["device"],
            parent_run_id=prepared["parent_run_id"],
            tags=tags,
            lineage=prepared["lineage"],
            nthread=len(os.sched_getaffinity(0)),
            progress=self.log.info,
        )
        self.mlflow_url = f"{self.mlflow.tracking_uri}/#/runs/{result['run_id']}"
        return {**result, "prepared": prepared}


class RegisterChallengerOperator(ModelOperator):
    """Register the best trial (on validation) as a new version with alias ``challenger``; idempotent."""

    template_fields = (*ModelOperator.template_fields, "trials")

    def __init__(self, *, pipeline: str, trials: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.trials = trials

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.experiment import best_trial
        from mlops.registry import register_version

        best = best_trial(list(self.trials), self.pipeline.promotion.primary_metric)
        prepared = best["prepared"]
        version = register_version(
            self.mlflow.client,
            self.pipeline.name,
            run_id=best["run_id"],
            source=best["model_uri"],
            model_id=best["model_id"],
            airflow_run_id=context["run_id"],
            tags={
                "window.partitions": prepared["lineage"]["partitions"],
                "trigger": prepared["trigger"]["kind"],
            },
        )
        self.log.info(
            "registered %s version %s from trial %s", self.pipeline.name, version.version, best["trial"]
        )
        self.mlflow_url = (
            f"{self.mlflow.tracking_uri}/#/models/{self.pipeline.name}/versions/{version.version}"
        )
        return {
            "version": version.version,
            "run_id": best["run_id"],
            "trial": best["trial"],
            "prepared": prepared,
        }


class PromotionGateOperator(ModelOperator):
    """Score challenger and champion on the same holdout and decide; records the decision on the version."""

    template_fields = (*ModelOperator.template_fields, "challenger")

    def __init__(self, *, pipeline: str, challenger: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.challenger = challenger

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        from mlops.experiment import holdout_metrics
        from mlops.promotion import clears_floor, decide
        from mlops.window import load_frames

        cfg, name = self.pipeline.promotion, self.pipeline.name
        client = self.mlflow.client
        prepared = self.challenger["prepared"]
        holdout_days = prepared["ready"][-self.pipeline.training.holdout_days :]
        holdout = pd.concat(
            load_frames(self.lake_hook().storage, self.pipeline, holdout_days, whole_window=False).values(),
            ignore_index=True,
        )
        version = self.challenger["version"]
        challenger = holdout_metrics(f"models:/{name}/{version}", self.pipeline, holdout)
        champion_version = prepared["champion_at_start"]
        champion = (
            holdout_metrics(f"models:/{name}/{champion_version}", self.pipeline, holdout)
            if champion_version
            else None
        )
        decision = decide(challenger, champion, cfg, force=bool(context["params"].get("force_promote")))
        cleared = clears_floor(cfg.primary_metric, challenger[cfg.primary_metric], cfg.floor)
        client.set_model_version_tag(name, version, "gate.cleared_floor", str(cleared).lower())
        client.set_model_version_tag(name, version, "gate.decision", decision.reason[:4000])
        self.log.info("gate: %s", decision.reason)
        self.mlflow_url = f"{self.mlflow.tracking_uri}/#/models/{name}/versions/{version}"
        blocked = decision.promote and prepared["trigger"]["backfill"] and not cfg.allow_backfill_promotion
        if blocked:
            self.log.info("backfill run: would promote version %s; champion stays as it is", version)
            client.set_model_version_tag(name, version, "gate.backfill_would_promote", "true")
        return {
            "version": version,
            "promote": decision.promote and not blocked,
            "reason": decision.reason,
            "challenger": challenger,
            "champion": champion,
            "champion_version": champion_version,
        }


class PromoteOperator(ModelOperator):
    """Move ``champion`` to the challenger by compare-and-set, audited; skipped when the gate says no.

    Its outlet ``<pipeline>.champion`` fires only on a move (a skipped task emits no event).
    """

    template_fields = (*ModelOperator.template_fields, "decision")

    def __init__(self, *, pipeline: str, decision: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.decision = decision

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from mlops.registry import ChampionChanged, Move, move_champion

        decision = self.decision
        if not decision["promote"]:
            raise AirflowSkipException(f"not promoted: {decision['reason']}")
        move = Move(
            model=self.pipeline.name,
            version=decision["version"],
            previous=decision["champion_version"],
            reason=decision["reason"],
            airflow_run_id=context["run_id"],
            metrics={"challenger": decision["challenger"], "champion": decision["champion"]},
        )
        try:
            move_champion(self.mlflow.client, move, expected=decision["champion_version"])
        except ChampionChanged as exc:
            raise AirflowFailException(str(exc)) from None
        extra = {
            "version": move.version,
            "previous": move.previous,
            "reason": move.reason,
            "run_id": context["run_id"],
        }
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.info("champion is now version %s (was %s)", move.version, move.previous)
        return extra
