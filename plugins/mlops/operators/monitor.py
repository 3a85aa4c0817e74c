"""Monitor operators: drift of each partition against the champion's reference, and the retrain trigger."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops.operators.base import ModelOperator, partitions_of

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.lake import Storage

REPORT, PAGE = "drift.json", "drift.html"


def report_dir(pipeline: str, ds: str) -> str:
    from mlops.lake import partition_dir

    return f"{partition_dir(pipeline, 'reports', ds)}/drift"


def earlier_reports(lake: Storage, pipeline: str, ds: str, days: int) -> list[dict[str, Any]]:
    """The drift reports of the ``days`` days before ``ds`` (and of ``ds`` itself), oldest first."""
    from mlops.lake import is_committed, read_partition

    first = dt.date.fromisoformat(ds) - dt.timedelta(days=days)
    found = []
    for offset in range(days + 1):
        day = (first + dt.timedelta(days=offset)).isoformat()
        if is_committed(lake, report_dir(pipeline, day)):
            found.append(json.loads(read_partition(lake, report_dir(pipeline, day))[REPORT]))
    return found


class MonitorDriftOperator(ModelOperator):
    """Compare each partition of the run with the champion's reference profile; write the reports.

    Reports (JSON and a self-contained HTML page) go to ``reports/ds=.../drift/`` and to an MLflow
    run (``mlops.role=monitoring``). Returns the drift event's extra when retraining should be
    triggered (``emit_drift`` fires it), else None. No champion yet: skipped with a log line.
    """

    def execute(self, context: Context) -> dict[str, Any] | None:
        import io
        from pathlib import Path

        import pandas as pd

        from mlops.lake import PartitionMissing, commit_partition, partition_dir, read_partition
        from mlops.model import model_input
        from mlops.monitoring import (
            current_features,
            drift_event_extra,
            monitor_day,
            render_html,
            should_trigger,
        )
        from mlops.registry import CHAMPION, alias_version, drift_triggers
        from mlops.scoring import load_model

        name, client, cfg = self.pipeline.name, self.mlflow.client, self.pipeline.drift
        version = alias_version(client, name, CHAMPION)
        if version is None:
            raise AirflowSkipException(f"{name}: no champion yet, so no reference to monitor against")
        run = client.get_run(client.get_model_version(name, version).run_id)
        profile = json.loads(
            Path(client.download_artifacts(run.info.run_id, "reference_profile.json")).read_text()
        )
        model = load_model(self.mlflow.tracking_uri, name, version)
        lake = self.lake_hook().storage
        backfill = (
            str(getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)) == "backfill"
        )
        lookback = max(cfg.persistence.window, cfg.retrain_cooldown_days, 14)
        champion_triggers = drift_triggers(client, name, version)
        trigger = None
        for ds in partitions_of(context):
            try:
                files = read_partition(lake, partition_dir(name, "validated", ds))
            except PartitionMissing:
                self.log.warning("%s %s: no validated partition; nothing to monitor", name, ds)
                continue
            frame = pd.concat([pd.read_parquet(io.BytesIO(b)) for b in files.values()], ignore_index=True)
            scores = model.predict(model_input(frame, self.pipeline))
            reports = earlier_reports(lake, name, ds, lookback)
            before = [r for r in reports if r["ds"] < ds]
            report = monitor_day(
                pipeline=self.pipeline,
                ds=ds,
                frame=frame,
                profile=profile,
                scores=scores,
                champion_version=version,
                reference_auc=run.data.metrics.get("holdout_auc"),
                history=before,
            )
            fired = [r["ds"] for r in reports if r.get("trigger", {}).get("fire")]
            fire, why = should_trigger(
                report,
                last_drift_trigger=fired[-1] if fired else None,
                cooldown_days=cfg.retrain_cooldown_days,
                backfill=backfill,
                allow_backfill_trigger=cfg.allow_backfill_trigger,
                champion_triggers=champion_triggers,
                max_triggers_per_champion=cfg.max_triggers_per_champion,
            )
            report["trigger"] = {"fire": fire, "reason": why}
            page = render_html(
                report, profile=profile, frame_features=current_features(frame, self.pipeline), trend=before
            )
            commit_partition(
                lake,
                report_dir(name, ds),
                {REPORT: json.dumps(report, default=str).encode(), PAGE: page.encode()},
            )
            self._log_run(context, report, page)
            self.log.info("%s %s: %s; %s", name, ds, report["verdict"].get("status"), why)
            if fire:
                trigger = drift_event_extra(report, why)
                champion_triggers.append(ds)
        return trigger

    def _log_run(self, context: Context, report: dict[str, Any], page: str) -> None:
        from mlops.experiment import experiment_id

        client = self.mlflow.client
        run = client.create_run(
            experiment_id(client, self.pipeline.name),
            run_name=f"monitor {report['ds']}",
            tags={
                "mlops.role": "monitoring",
                "airflow.run_id": context["run_id"],
                "ds": report["ds"],
                "champion_version": report["champion_version"],
                "verdict": str(report["verdict"].get("status")),
            },
        )
        metrics = {f"psi.{k}": v["psi"] for k, v in report["features"].items() if v.get("psi") is not None}
        if report.get("prediction") and report["prediction"].get("psi") is not None:
            metrics["prediction_psi"] = report["prediction"]["psi"]
        if report["performance"].get("auc") is not None:
            metrics["auc"] = report["performance"]["auc"]
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, float(value))
        client.log_text(run.info.run_id, page, PAGE)
        client.log_dict(run.info.run_id, json.loads(json.dumps(report, default=str)), REPORT)
        client.set_terminated(run.info.run_id)
        self.mlflow_url = (
            f"{self.mlflow.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
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
        from mlops.registry import record_drift_trigger

        if not self.payload:
            raise AirflowSkipException("no drift to act on")
        record_drift_trigger(
            self.mlflow.client, self.pipeline.name, self.payload["champion_version"], self.payload["ds"]
        )
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = dict(self.payload)
        return dict(self.payload)
