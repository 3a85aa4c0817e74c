"""A trained booster logged, registered and signed as the training stage does it, for the tests and
benches that need a real signed version in a real MLflow server (the serving suite, its bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def register_signed(
    client: Any,
    model: str,
    booster: Any,
    *,
    yaml_text: str,
    example: Any,
    workdir: Path,
    experiment: str,
    airflow_run_id: str,
) -> str:
    """Log ``booster`` as the package's pyfunc in a run of ``experiment``, register it under
    ``model`` and sign it with the session's key; returns the version. MLflow's tracking URI must
    be the client's."""
    import mlflow

    from mlops.airflow.hooks.signing import signing_key
    from mlops.model.pyfunc import log_model
    from mlops.registry.champion import register_version
    from mlops.registry.signing import record_trial_upload, sign_version
    from mlops.training.experiment import experiment_id

    with mlflow.start_run(experiment_id=experiment_id(client, experiment)) as run:
        logged = record_trial_upload(
            client, signing_key(), run.info.run_id, lambda: log_model(booster, yaml_text, example, workdir)
        )
    version = register_version(
        client,
        model,
        run_id=run.info.run_id,
        source=logged.model_uri,
        model_id=logged.model_id,
        airflow_run_id=airflow_run_id,
        tags={},
    )
    sign_version(client, model, version.version, signing_key())
    return version.version
