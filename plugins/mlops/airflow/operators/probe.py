"""Probe: is the serving service up, right and fast enough (``mlops.serving.probe``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.airflow.operators.base import ModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.serving.probe import ProbeOutcome

# MLflow: one run per pipeline and partition, ``probe <key>``; each probe adds a point to its metrics.
PROBE_ROLE = "probe"


class ProbeServiceOperator(ModelOperator):
    """Send the known-answer request to the service and record the result (``serving.probe.run_probe``).

    The service is ``serving.url``, else the host of the ``serving_conn_id`` connection. The answer
    is held to the score the named version gives offline (loaded verified from MLflow); when MLflow
    cannot tell, the probe says so in its log and judges the answer by its form alone. Records the
    probe in ``served/ds=<key>/probe/`` and in MLflow, and sends ``service_down`` and
    ``slo_breached`` when they start. A service that is down does not fail the task: the probe's
    job is to record it. Templated: ``pipeline``.
    """

    def __init__(self, *, pipeline: str, serving_conn_id: str = "serving_default", **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.serving_conn_id = serving_conn_id

    def service_url(self) -> str:
        from airflow.sdk import BaseHook

        from mlops.settings import tracking_uri

        if self.pipeline.serving.url:
            return self.pipeline.serving.url
        conn = BaseHook.get_connection(self.serving_conn_id)
        url = tracking_uri(conn.host, conn.port, conn.schema)  # the same host/port/schema reading
        if url is None:
            raise ValueError(
                f"{self.pipeline.name}: no serving.url in the YAML and connection "
                f"{self.serving_conn_id!r} has no host: set one to the service's address"
            )
        return url

    def offline_score(self, version: str) -> float | None:
        """The probe row's score by ``version`` loaded here, or None when MLflow cannot tell."""
        import pandas as pd

        from mlops.model.pyfunc import model_input
        from mlops.serving.probe import probe_row

        try:
            model = self.mlflow.load_model(self.pipeline.name, version)
            frame = model_input(pd.DataFrame([probe_row(self.pipeline)]), self.pipeline)
            return float(model.predict(frame)[0])
        except Exception as exc:  # the known answer is a bonus check; the probe still records
            self.log.warning(
                "%s: the known answer of version %s was not checked (%s: %s); the answer is judged "
                "by its form only",
                self.pipeline.name,
                version,
                type(exc).__name__,
                (str(exc).splitlines() or [""])[0][:300],
            )
            return None

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.serving.probe import run_probe

        name = self.pipeline.name
        outcome = run_probe(
            self.lake_hook().storage,
            self.pipeline,
            self.service_url(),
            airflow_run_id=context["run_id"],
            expected=self.offline_score,
        )
        result, window = outcome.result, outcome.window
        self.log.info(
            "%s: service %s (%s), version %s, %s; window: %d of %d probes up, p95 %s ms",
            name,
            "up" if result.up else "DOWN",
            result.status,
            result.model_version,
            f"{result.latency_ms:.1f} ms" if result.latency_ms is not None else "no latency",
            window.up,
            window.probes,
            f"{window.p95_ms:.1f}" if window.p95_ms is not None else "-",
        )
        for alert in outcome.alerts:
            self.notify(
                context, alert.event, alert.title, day=outcome.key, version=result.model_version,
                details=alert.details,
            )  # fmt: skip
        self._log_run(context, outcome)
        return {
            "ds": outcome.key,
            "up": result.up,
            "latency_ms": result.latency_ms,
            "model_version": result.model_version,
            "status": result.status,
            "alerts": [a.event for a in outcome.alerts],
        }

    def _log_run(self, context: Context, outcome: ProbeOutcome) -> None:
        """One point per probe on the partition's MLflow run (created by its first probe). MLflow
        down is a warning: the lake holds the record, and the probe is about the service."""
        from mlflow.entities import Metric

        from mlops.training.experiment import experiment_id

        result, window, key = outcome.result, outcome.window, outcome.key
        at = int(result.probed_at.timestamp() * 1000)
        step = int((result.probed_at - self.pipeline.grain.start(key)).total_seconds() // 60)
        values = {
            "probe_up": 1.0 if result.up else 0.0,
            "probe_latency_ms": result.latency_ms,
            "window_availability": window.availability,
            "window_p95_ms": window.p95_ms,
        }
        try:
            client = self.mlflow.client
            experiment = experiment_id(client, self.pipeline.name)
            query = f"tags.`mlops.role` = '{PROBE_ROLE}' and tags.ds = '{key}'"
            found = client.search_runs([experiment], filter_string=query, max_results=1)
            if found:
                run_id = found[0].info.run_id
            else:
                tags = {"mlops.role": PROBE_ROLE, "ds": key, "airflow.dag_id": context["ti"].dag_id}
                run_id = client.create_run(experiment, run_name=f"probe {key}", tags=tags).info.run_id
            metrics = [Metric(k, float(v), at, step) for k, v in values.items() if v is not None]
            client.log_batch(run_id, metrics=metrics)
            client.set_terminated(run_id)
        except Exception as exc:
            self.log.warning(
                "%s: the probe was not logged to MLflow (%s: %s); it is in the lake",
                self.pipeline.name,
                type(exc).__name__,
                (str(exc).splitlines() or [""])[0][:300],
            )
            return
        self.mlflow_url = self.mlflow.run_url(run_id)
