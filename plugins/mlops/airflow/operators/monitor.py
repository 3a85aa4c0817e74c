"""Monitor operators: drift of each partition against the champion as of its day, and the retrain trigger."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk.exceptions import AirflowSkipException

from mlops.airflow.operators.base import (
    MlflowRunLink,
    ModelOperator,
    TaskSetLink,
    partitions_of,
    replay_of,
    replay_tags,
    reports_base_url,
    run_type,
)
from mlops.airflow.operators.train_run import DRIFT_CONF

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.monitor.stage import Champion, MonitorOutcome


class DriftReportLink(TaskSetLink):
    """The drift report page of the last day the task monitored, served by the API server."""

    name = "Drift report"
    attribute = "drift_report_url"


class MonitorDriftOperator(ModelOperator):
    """Monitor each partition of the run (``monitor_stage.monitor_partition``), oldest first.

    Each day is compared with the reference profile of the champion as of that day. Reports go to
    ``reports/ds=.../drift/`` and to an MLflow run (``mlops.role=monitoring``). Returns the drift
    event's extra when retraining should be triggered (``emit_drift`` fires it), else None; it
    stops at a day that fires, since the retrain decides the champion of the days after it.
    Skipped when no day had a champion.
    """

    operator_extra_links = (MlflowRunLink(), DriftReportLink())

    def execute(self, context: Context) -> dict[str, Any] | None:
        import functools

        from mlops.registry.champion import champion_on, history

        name = self.pipeline.name
        days = partitions_of(context, self.pipeline.grain)  # a bad range fails before MLflow is asked
        moves = history(self.mlflow.reader, name, self.mlflow.signing_key)
        if not any(champion_on(moves, ds) for ds in days):
            # Before the first promotion: answered without loading MLflow, pandas or a model.
            raise AirflowSkipException(
                f"{name}: no champion as of {', '.join(days)}, nothing to monitor against"
            )

        from mlops.monitor.stage import monitor_partitions

        champion = functools.cache(self._champion)
        replay = replay_of(context)
        if replay:
            self.log.info(
                "%s: a re-run of %s after quarantine replay %s (%s rows, fix %s): the report is recomputed, "
                "no retrain is decided",
                name,
                ", ".join(days),
                replay.get("run_id"),
                replay.get("rows"),
                replay.get("fix"),
            )
        outcomes = monitor_partitions(
            self.lake_hook().storage,
            self.pipeline,
            days,
            champion_for=lambda ds: champion(version) if (version := champion_on(moves, ds)) else None,
            backfill=run_type(context) == "backfill",
            log=self.log.info,
            rerun=replay is not None,
        )
        for outcome in outcomes:
            self._log_run(context, outcome)
            self._announce_decay(context, outcome)
        if outcomes:
            from mlops.lake.report_pages import report_url
            from mlops.monitor.report_store import PAGE

            self.drift_report_url = report_url(name, outcomes[-1].ds, f"drift/{PAGE}", reports_base_url())
        if not outcomes:
            raise AirflowSkipException(f"{name}: no partition of {', '.join(days)} had a champion or data")
        return outcomes[-1].event

    def _champion(self, version: str) -> Champion:
        from mlops.monitor.stage import Champion
        from mlops.registry.champion import drift_triggers

        profile, auc = self.mlflow.reference(self.pipeline.name, version)
        return Champion(
            version=version,
            model=self.mlflow.load_model(self.pipeline.name, version),
            profile=profile,
            reference_auc=auc,
            triggers=drift_triggers(self.mlflow.client, self.pipeline.name, version),
        )

    def _announce_decay(self, context: Context, outcome: MonitorOutcome) -> None:
        """``performance_decay``: the champion's online AUC (its served rows of the label window,
        joined with the labels that arrived since) dropped below its reference AUC."""
        from mlops.lake.report_pages import report_url
        from mlops.monitor.report_store import PAGE

        decay = ((outcome.report or {}).get("online") or {}).get("champion") or {}
        if not decay.get("decay"):
            return
        version = str(decay["model_version"])
        self.notify(
            context,
            "performance_decay",
            f"online AUC of version {version} is {decay['auc']:.3f}, "
            f"{decay['auc_drop']:.3f} below its reference",
            day=outcome.ds,
            version=version,
            details=[
                f"{decay['rows_labelled']} served rows labelled, served on {', '.join(decay['days'])}",
                f"reference AUC {decay['reference_auc']:.3f}; drift.auc_drop_threshold "
                f"{decay['threshold']:g}",
                f"counted toward the drift verdict; retrain: {outcome.reason}",
            ],
            links={
                "Drift report": report_url(
                    self.pipeline.name, outcome.ds, f"drift/{PAGE}", reports_base_url()
                ),
                "MLflow champion version": self.mlflow.version_url(self.pipeline.name, version),
            },
        )

    def _log_run(self, context: Context, outcome: MonitorOutcome) -> None:
        from mlops.monitor.report_store import PAGE, REPORT

        report = outcome.report or {}
        metrics = {f"psi.{k}": v["psi"] for k, v in report["features"].items() if v.get("psi") is not None}
        if report.get("prediction") and report["prediction"].get("psi") is not None:
            metrics["prediction_psi"] = report["prediction"]["psi"]
        if report["performance"].get("auc") is not None:
            metrics["auc"] = report["performance"]["auc"]
        online = (report.get("online") or {}).get("champion") or {}
        for key in ("auc", "accuracy", "rows_labelled"):
            if online.get(key) is not None:
                metrics[f"online_{key}"] = online[key]
        self.mlflow_url = self.mlflow.record_run(
            self.pipeline.name,
            context,
            name=f"monitor {outcome.ds}",
            role="monitoring",
            tags={
                "ds": outcome.ds,
                "champion_version": str(outcome.champion_version),
                "verdict": outcome.status,
                **replay_tags(context),
            },
            metrics=metrics,
            artifacts={PAGE: outcome.page or "", REPORT: json.loads(json.dumps(report, default=str))},
        )


class EmitDriftOperator(ModelOperator):
    """Fire ``<pipeline>.drift`` with the monitor's payload; skipped (no event) when there is none.

    The champion's model version records the trigger first (``drift.triggered_for``), so later
    monitor runs know this champion's drift has been acted on.
    """

    template_fields = (*ModelOperator.template_fields, "payload")

    def __init__(self, *, pipeline: str, payload: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.payload = payload

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.registry.champion import record_drift_trigger

        if not self.payload:
            raise AirflowSkipException("no drift to act on")
        record_drift_trigger(
            self.mlflow.client, self.pipeline.name, self.payload["champion_version"], self.payload["ds"]
        )
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = dict(self.payload)
        self._announce(context)
        return dict(self.payload)

    def _announce(self, context: Context) -> None:
        from mlops.lake.report_pages import report_url
        from mlops.monitor.report_store import PAGE

        ds, version = str(self.payload["ds"]), str(self.payload["champion_version"])
        features = ", ".join(str(f) for f in self.payload.get("features") or []) or "none"
        self.notify(
            context,
            "drift_fired",
            f"drift fired on {ds}: a retrain starts",
            day=ds,
            version=version,
            details=[f"drifted features: {features}", str(self.payload.get("reason") or "")],
            links={
                "Drift report": report_url(self.pipeline.name, ds, f"drift/{PAGE}", reports_base_url()),
                "MLflow champion version": self.mlflow.version_url(self.pipeline.name, version),
            },
        )


class RetrainOperator(TriggerDagRunOperator):
    """Start the drift retrain: one ``<pipeline>_train`` run per drifted day, ``drift__<ds>``.

    A run of its own rather than a schedule on ``<pipeline>.drift``: the logical clock waits for
    this retrain's decision, so it must exist exactly once, whatever Airflow's asset queue does
    (events that arrive while a run is being created can be merged or left unconsumed). A retry or
    a re-run of the day finds the run already there and leaves it.
    """

    template_fields = (*TriggerDagRunOperator.template_fields, "payload")

    def __init__(self, *, pipeline: str, payload: Any, **kwargs: Any) -> None:
        from mlops.names import dag_id

        super().__init__(
            trigger_dag_id=dag_id(pipeline, "train"),
            skip_when_already_exists=True,
            openlineage_inject_parent_info=False,
            # No logical date, like an asset-triggered run: one of "now" would lie after a replayed
            # pipeline's end_date, and Airflow would create the run without its tasks.
            logical_date=None,
            **kwargs,
        )
        self.payload = payload

    def execute(self, context: Context) -> None:
        if not self.payload:
            raise AirflowSkipException("no drift to act on")
        self.trigger_run_id = f"drift__{self.payload['ds']}"
        self.conf = {DRIFT_CONF: dict(self.payload)}
        super().execute(context)
