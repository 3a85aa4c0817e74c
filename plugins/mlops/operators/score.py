"""Score operator: the champion (or a named version) scores each partition the run carries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.operators.base import ModelOperator, partitions_of

if TYPE_CHECKING:
    from airflow.sdk import Context


class ScorePartitionsOperator(ModelOperator):
    """Write ``predictions/ds=...`` for every partition of the run with one model version.

    The version is resolved once per run: the ``model_version`` param, else the current champion
    (rescoring history uses today's champion unless a version is named). No champion yet: skipped.
    Rows scored, rows per second and the version are logged as metrics of an MLflow run
    (``mlops.role=scoring``) tagged with the Airflow run.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from mlops.cost import CostMeter
        from mlops.lake import PartitionMissing
        from mlops.registry import CHAMPION, alias_version
        from mlops.scoring import SchemaMismatch, load_model, score_partition

        name, client = self.pipeline.name, self.mlflow.client
        requested = context["params"].get("model_version")
        version = str(requested) if requested is not None else alias_version(client, name, CHAMPION)
        if version is None:
            raise AirflowSkipException(f"{name}: no champion yet, nothing to score with (train first)")
        model = load_model(self.mlflow.tracking_uri, name, version)
        lake = self.lake_hook().storage
        results = []
        with CostMeter() as meter:
            for ds in partitions_of(context):
                try:
                    scored = score_partition(
                        lake, self.pipeline, ds, model, version=version, airflow_run_id=context["run_id"]
                    )
                except PartitionMissing as exc:
                    raise AirflowFailException(
                        f"{name} {ds}: no validated partition to score ({exc})"
                    ) from None
                except SchemaMismatch as exc:
                    raise AirflowFailException(str(exc)) from None
                self.log.info(
                    "%s %s: %d rows scored by version %s (%.0f rows/s)",
                    name,
                    ds,
                    scored.rows,
                    version,
                    scored.rows_per_second,
                )
                results.append(
                    {
                        "ds": ds,
                        "rows": scored.rows,
                        "rows_per_second": scored.rows_per_second,
                        "path": scored.path,
                    }
                )
        self._record(context, version, results, meter.metrics())
        return results

    def _record(
        self, context: Context, version: str, results: list[dict[str, Any]], cost: dict[str, float]
    ) -> None:
        from mlops.experiment import experiment_id

        client = self.mlflow.client
        ti = context["ti"]
        run = client.create_run(
            experiment_id(client, self.pipeline.name),
            run_name=f"score {context['run_id']}",
            tags={
                "mlops.role": "scoring",
                "airflow.dag_id": ti.dag_id,
                "airflow.run_id": context["run_id"],
                "airflow.try_number": str(ti.try_number),
                "model_version": version,
                "partitions": ",".join(r["ds"] for r in results),
            },
        )
        rows = sum(r["rows"] for r in results)
        for key, value in {
            "rows_scored": rows,
            "model_version": float(version),
            **cost,
            "rows_per_second": min(r["rows_per_second"] for r in results),
        }.items():
            client.log_metric(run.info.run_id, key, float(value))
        client.set_terminated(run.info.run_id)
        self.mlflow_url = (
            f"{self.mlflow.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        )
