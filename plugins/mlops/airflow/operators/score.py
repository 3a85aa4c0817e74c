"""Score operator: each partition the run carries, scored by the champion as of its day (or a named version)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.airflow.operators.base import ModelOperator, partitions_of, replay_tags

if TYPE_CHECKING:
    from airflow.sdk import Context


class ScorePartitionsOperator(ModelOperator):
    """Write ``predictions/ds=...`` for every partition of the run.

    Each day is scored by the ``model_version`` param when given, else by the champion as of that
    day (rescoring history gives what production scored then). A named version must have been
    champion at some time by the signed history: predictions are production's, and a version that
    never cleared the gate must not overwrite them. Days with no champion as of them are
    skipped with a log line; a run with none at all is skipped. Rows scored, rows per second and the
    versions are logged as metrics of an MLflow run (``mlops.role=scoring``) tagged with the run.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from mlops.registry.champion import champion_on, history, was_champion

        name = self.pipeline.name
        requested = context["params"].get("model_version")
        days = partitions_of(context, self.pipeline.grain)
        moves = history(self.mlflow.reader, name, self.mlflow.signing_key)
        if requested is not None and not was_champion(moves, str(requested)):
            raise AirflowFailException(
                f"{name}: model_version {requested} was never champion (no signed promotion or "
                f"rollback to it in the registry's history): its predictions would overwrite "
                f"production's for {', '.join(days)}; name a version that was promoted at some time"
            )
        if requested is None and not any(champion_on(moves, ds) for ds in days):
            # Before the first promotion: answered without loading MLflow, pandas or a model.
            raise AirflowSkipException(f"{name}: no champion as of {', '.join(days)}, nothing to score with")

        from mlops.cost import CostMeter
        from mlops.lake.storage import PartitionMissing
        from mlops.registry.signing import UnverifiedModel
        from mlops.score.batch import SchemaMismatch, score_partitions

        with CostMeter() as meter:
            try:
                scored = score_partitions(
                    self.lake_hook().storage,
                    self.pipeline,
                    days,
                    version_for=lambda ds: (
                        str(requested) if requested is not None else champion_on(moves, ds)
                    ),
                    model_of=lambda version: self.mlflow.load_model(name, version),
                    airflow_run_id=context["run_id"],
                    log=self.log.info,
                )
            except (PartitionMissing, SchemaMismatch, UnverifiedModel) as exc:
                raise AirflowFailException(str(exc)) from None
        if not scored:
            raise AirflowSkipException(
                f"{name}: no champion yet for these days, nothing to score with (train first)"
            )
        versions = sorted({s.version for s in scored}, key=int)
        self.mlflow_url = self.mlflow.record_run(
            name,
            context,
            name=f"score {context['run_id']}",
            role="scoring",
            tags={
                "model_version": ",".join(versions),
                "partitions": ",".join(s.ds for s in scored),
                **replay_tags(context),
            },
            metrics={
                "rows_scored": sum(s.rows for s in scored),
                "model_version": float(versions[-1]),
                **meter.metrics(),
                "rows_per_second": min(s.rows_per_second for s in scored),
            },
        )
        return [
            {
                "ds": s.ds,
                "version": s.version,
                "rows": s.rows,
                "rows_per_second": s.rows_per_second,
                "path": s.path,
            }
            for s in scored
        ]
