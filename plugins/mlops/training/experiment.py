"""One training run in MLflow: a parent run per Airflow run, a nested run per trial.

Each trial trains on the window's train split, early-stops on its validation days, is scored on the
holdout days, and logs params, metrics, cost, the pyfunc model, a feature-importance plot, the drift
reference profile and dataset lineage. No Airflow import.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.training.plan import TrialResult

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from mlops.config.pipeline import Pipeline, TrainingParams
    from mlops.registry.signing import SigningKey

log = logging.getLogger(__name__)
PARENT_TAG = "mlops.role"


def experiment_id(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name)


def close_abandoned_runs(
    client: MlflowClient,
    experiment: str,
    airflow_run_id: str,
    *,
    match: dict[str, str] | None = None,
    keep_try: str | None = None,
) -> list[str]:
    """End as FAILED the runs of an Airflow run that an attempt left RUNNING (killed, or MLflow went
    away before it could end them); returns their ids.

    ``match``: further tags the runs must carry (the task, the trial); ``keep_try``: leave the runs
    of this try alone (the attempt that is calling).
    """
    query = f"tags.`airflow.run_id` = '{airflow_run_id}' and attributes.status = 'RUNNING'"
    for key, value in (match or {}).items():
        query += f" and tags.`{key}` = '{value}'"
    found = client.search_runs([experiment], filter_string=query, max_results=1000)
    closed = [
        r.info.run_id for r in found if keep_try is None or r.data.tags.get("airflow.try_number") != keep_try
    ]
    for run_id in closed:
        client.set_terminated(run_id, "FAILED")
    if closed:
        log.warning(
            "ended %d run(s) of %s left RUNNING by an earlier attempt: %s",
            len(closed),
            airflow_run_id,
            closed,
        )
    return closed


def parent_run(client: MlflowClient, experiment: str, airflow_run_id: str, tags: dict[str, str]) -> str:
    """The parent MLflow run of an Airflow run; a retried task finds the one it created."""
    query = f"tags.`airflow.run_id` = '{airflow_run_id}' and tags.`{PARENT_TAG}` = 'training'"
    existing = client.search_runs([experiment], filter_string=query, max_results=1)
    if existing:
        return existing[0].info.run_id
    run = client.create_run(
        experiment, run_name=f"train {airflow_run_id}", tags={**tags, PARENT_TAG: "training"}
    )
    return run.info.run_id


def _split(pipeline: Pipeline, frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    from mlops.training.fit import time_split

    train, valid, holdout = time_split(frames, pipeline.windows.validation, pipeline.windows.holdout)
    return {"train": train, "valid": valid, "holdout": holdout}


def _profile(pipeline: Pipeline, parts: dict[str, pd.DataFrame], hold_scores: Any) -> dict[str, Any]:
    """The drift reference saved with the model, as ``drift.reference`` chooses.

    ``holdout`` (and ``same_period_last_cycle``, whose monitor builds the seasonal reference itself
    and falls back to this one before a cycle of data exists): the holdout days, the newest of the
    window. They describe the world the model was last shown to work in (its holdout metrics are
    measured there), and after a drift retrain on post-shift days the new champion's reference is
    post-shift: one shift causes one retrain, two at most while new data fills the holdout.
    ``training_window``: the features of every day of the window. The prediction entry is the
    holdout's scores either way: on rows it was trained on, a model's scores are overconfident.
    """
    import pandas as pd

    from mlops.monitor.report import reference_profile

    if pipeline.drift.reference == "training_window":
        window = pd.concat([parts["train"], parts["valid"], parts["holdout"]], ignore_index=True)
        return reference_profile(pipeline, window, hold_scores)
    return reference_profile(pipeline, parts["holdout"], hold_scores)


def train_trial(
    client: MlflowClient,
    *,
    tracking_uri: str,
    pipeline: Pipeline,
    pipeline_yaml: str,
    frames: dict[str, pd.DataFrame],
    params: TrainingParams,
    trial: int,
    device: str,
    parent_run_id: str,
    tags: dict[str, str],
    lineage: dict[str, str],
    key: SigningKey,
    nthread: int | None = None,
    progress: Callable[[str], None] = log.info,
) -> TrialResult:
    """Train, evaluate and log one trial as a nested run; returns its run id and metrics.

    ``tracking_uri`` is ``client``'s server: the model is logged with MLflow's fluent API, which
    needs it set globally (the client does not expose its own). The model's files are hashed as they
    are uploaded and the digest recorded on the run, signed with ``key``: registration signs only
    those files (``mlops.signing``).
    """
    import mlflow

    from mlops.cost import CostMeter
    from mlops.model.pyfunc import log_model, model_input
    from mlops.registry.signing import record_trial_upload
    from mlops.training.evaluation import evaluate
    from mlops.training.fit import feature_importance_plot, predict, prepare_frame, train_model

    cfg = pipeline.training
    parts = _split(pipeline, frames)
    (X_train, y_train), (X_valid, y_valid), (X_hold, y_hold) = (
        prepare_frame(parts[k], pipeline) for k in parts
    )
    slice_col = cfg.slice_column
    one_class = _single_class_validation(pipeline, sorted(frames), y_valid, progress)
    with CostMeter(gpu=device == "cuda") as meter:
        result = train_model(
            (X_train, y_train),
            (X_valid, y_valid),
            params,
            device=device,
            seed=cfg.seed,
            nthread=nthread,
            log=progress,
            eval_train=False,
            class_weight=cfg.class_weight,
            single_class_validation=one_class,
        )
    best = result.booster[: result.best_iteration + 1]
    valid_scores = predict(best, X_valid, best.num_boosted_rounds() - 1)
    hold_scores = predict(best, X_hold, best.num_boosted_rounds() - 1)
    slices = {
        k: parts[k][slice_col].reset_index(drop=True) if slice_col else None for k in ("valid", "holdout")
    }
    metrics = {
        **{
            f"valid_{k}": v
            for k, v in evaluate(
                y_valid, valid_scores, threshold=cfg.threshold, slices=slices["valid"], single_class=one_class
            ).items()
        },
        **{
            f"holdout_{k}": v
            for k, v in evaluate(
                y_hold, hold_scores, threshold=cfg.threshold, slices=slices["holdout"]
            ).items()
        },
        "best_iteration": float(result.best_iteration),
        "rows_train": float(len(y_train)),
        **meter.metrics(),
    }
    mlflow.set_tracking_uri(tracking_uri)
    experiment = client.get_run(parent_run_id).info.experiment_id
    close_abandoned_runs(
        client,
        experiment,
        tags["airflow.run_id"],
        match={"airflow.task_id": tags["airflow.task_id"], "trial": str(trial)},
        keep_try=tags["airflow.try_number"],
    )
    with (
        mlflow.start_run(
            experiment_id=experiment,
            parent_run_id=parent_run_id,
            run_name=f"trial {trial}",
            tags={**tags, "trial": str(trial)},
        ) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        workdir = Path(tmp)
        weight = result.params.get("scale_pos_weight")
        mlflow.log_params(
            {
                **params.model_dump(),
                "device": device,
                "trial": trial,
                **({"scale_pos_weight": f"{weight:.6g}"} if weight is not None else {}),
            }
        )
        mlflow.log_metrics(metrics)
        example = model_input(parts["holdout"].head(5), pipeline)
        logged = record_trial_upload(
            client, key, run.info.run_id, lambda: log_model(best, pipeline_yaml, example, workdir)
        )
        feature_importance_plot(best, workdir / "feature_importance.png")
        mlflow.log_artifact(str(workdir / "feature_importance.png"))
        mlflow.log_dict(_profile(pipeline, parts, hold_scores), "reference_profile.json")
        holdout = sorted(frames)[-pipeline.windows.holdout :]
        mlflow.log_dict({"holdout_days": holdout, **lineage}, "lineage.json")
        _log_dataset(parts["train"], lineage)
    return TrialResult(
        trial=trial,
        run_id=run.info.run_id,
        model_uri=logged.model_uri,
        model_id=logged.model_id,
        valid_metric=metrics[f"valid_{_primary(pipeline)}"],
        metrics=metrics,
    )


def _single_class_validation(
    pipeline: Pipeline, days: list[str], y_valid: Any, progress: Callable[[str], None]
) -> bool:
    """Whether the validation split holds one class only, where the run can still go on.

    Early stopping and ``promotion.primary_metric: log_loss`` still work on one class (the run
    says so); AUC cannot, so with ``primary_metric: auc`` it is an error naming the split's days.
    """
    import numpy as np

    from mlops.training.fit import split_days

    classes = np.unique(y_valid)
    if len(classes) != 1:
        return False
    valid_days = split_days(days, pipeline.windows.validation, pipeline.windows.holdout)[1]
    what = (
        f"the validation split ({', '.join(valid_days)}: {len(y_valid)} rows) holds a single class "
        f"({pipeline.target} = {classes[0]:g})"
    )
    if _primary(pipeline) == "auc":
        raise ValueError(
            f"{pipeline.name}: {what}: AUC, promotion.primary_metric, is undefined there; widen "
            "training.validation or use primary_metric: log_loss"
        )
    progress(f"{what}: early stopping and selection use its log loss; AUC is undefined there")
    return True


def _primary(pipeline: Pipeline) -> str:
    return pipeline.promotion.primary_metric


def _log_dataset(train: pd.DataFrame, lineage: dict[str, str], attempts: int = 3) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    dataset = mlflow.data.from_pandas(train.head(1000), source=lineage.get("source", ""), name="train-window")
    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context="training", tags={"partitions": lineage.get("partitions", "")})
            return
        except MlflowException as error:
            # Parallel trials log the same dataset: on PostgreSQL the second insert of its row can
            # lose the race (dataset_pk). Once the winner committed, a retry finds and links it.
            if not _lost_dataset_race(error) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _lost_dataset_race(error: Exception) -> bool:
    message = str(error)
    return "UniqueViolation" in message or "dataset_pk" in message


def best_trial(trials: list[TrialResult], metric: str) -> TrialResult:
    """The trial best on validation (the first of equals)."""
    from mlops.training.promotion import better

    best = trials[0]
    for trial in trials[1:]:
        if better(metric, trial.valid_metric, best.valid_metric):
            best = trial
    return best


def holdout_metrics(model: Any, pipeline: Pipeline, holdout: pd.DataFrame) -> dict[str, float]:
    """Score a loaded (verified) model on the holdout frame; the gate compares these, model against model."""
    from mlops.model.pyfunc import model_input
    from mlops.training.evaluation import evaluate

    scores = model.predict(model_input(holdout, pipeline))
    slices = (
        holdout[pipeline.training.slice_column].reset_index(drop=True)
        if pipeline.training.slice_column
        else None
    )
    return evaluate(
        holdout[pipeline.target].astype("float32").to_numpy(),
        scores,
        threshold=pipeline.training.threshold,
        slices=slices,
    )


def lineage_of(
    lake_uri: Callable[[str], str],
    pipeline: Pipeline,
    ready: list[str],
    failed: list[str],
    attempts: dict[str, str] | None = None,
) -> dict[str, str]:
    """What a window read: its partitions, the attempt of each (``attempts``: a quarantine replay
    commits a new one), the days it skipped, where they live and their validation reports."""
    from mlops.lake.storage import partition_dir

    return {
        "partitions": ",".join(ready),
        "attempts": json.dumps(attempts or {}, sort_keys=True),
        "skipped_failed": ",".join(failed) or "none",
        "source": lake_uri(f"{pipeline.name}/validated"),
        "gx_results": json.dumps([lake_uri(partition_dir(pipeline.name, "reports", d)) for d in ready]),
    }
