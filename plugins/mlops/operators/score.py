"""Score operator: each partition the run carries, scored by the champion as of its day (or a named version)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.operators.base import ModelOperator, partitions_of

if TYPE_CHECKING:
    from airflow.sdk import Context


class ScorePartitionsOperator(ModelOperator):
    """Write ``predictions/ds=...`` for every partition of the run.

    Each day is scored by the ``model_version`` param when given, else by the champion as of that
    day (rescoring history gives what production scored then). Days with no champion as of them are
    skipped with a log line; a run with none at all is skipped. Rows scored, rows per second and the
    versions are logged as metrics of an MLflow run (``mlops.role=scoring``) tagged with the run.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from mlops.cost import CostMeter
        from mlops.lake import PartitionMissing
        from mlops.registry import champion_on, history
        from mlops.scoring import SchemaMismatch, load_model, score_partition

        name = self.pipeline.name
        requested = context["params"].get("model_version")
        moves = [] if requested is not None else history(self.mlflow.client, name)
        lake = self.lake_hook().storage
        results = []
        with CostMeter() as meter:
            for ds in partitions_of(context):
                version = str(requested) if requested is not None else champion_on(moves, ds)
                if version is None:
                    self.log.info("%s %s: no champion as of this day, nothing to score with", name, ds)
                    continue
                model = load_model(self.mlflow.tracking_uri, name, version)
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
                        "version": version,
                        "rows": scored.rows,
                        "rows_per_second": scored.rows_per_second,
                        "path": scored.path,
                    }
                )
        if not results:
            raise AirflowSkipException(
                f"{name}: no champion yet for these days, nothing to score with (train first)"
            )
        versions = sorted({r["version"] for r in results}, key=int)
        self.mlflow_url = self.mlflow.record_run(
            name,
            context,
            name=f"score {context['run_id']}",
            role="scoring",
            tags={"model_version": ",".join(versions), "partitions": ",".join(r["ds"] for r in results)},
            metrics={
                "rows_scored": sum(r["rows"] for r in results),
                "model_version": float(versions[-1]),
                **meter.metrics(),
                "rows_per_second": min(r["rows_per_second"] for r in results),
            },
        )
        return results
