"""A model registered by the previous release still loads, verifies and scores the same.

Registered versions pickle ``mlops.model.TabularModel`` and carry the package's signature tags. The
release before the package was reorganised by concern (commit ``PREVIOUS``) is exported from git;
a process of its own, with only that release's package importable, trains a small model with that
release's code, logs, registers and signs it on the session's MLflow server, and scores a few rows
with it. This process loads the same version through today's verified loader: the signature must
verify, the unpickled model must be today's ``mlops.model.TabularModel`` (the old names resolve),
and its predictions must equal the old release's, value for value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
# The last commit before the reorganisation: the release whose models are in registries today.
PREVIOUS = "9cf6531"
MODEL = "previous_release_model"

pytestmark = pytest.mark.integration

# Run by the previous release's own package (PYTHONPATH=<export>/plugins), the way its tests
# registered a champion: its training, its pyfunc, its registration and its signing.
TRAIN_WITH_THE_PREVIOUS_RELEASE = textwrap.dedent(
    """
    import datetime as dt, json, sys
    from pathlib import Path

    import mlflow
    import mlops
    from mlflow import MlflowClient

    from mlops import scenario
    from mlops.config import TrainingParams, load_pipeline
    from mlops.experiment import experiment_id
    from mlops.hooks.signing import signing_key
    from mlops.model import log_model, model_input
    from mlops.registry import register_version
    from mlops.signing import load_verified, record_trial_upload, sign_version
    from mlops.training import prepare_frame, train_model

    tracking_uri, model, export, out = sys.argv[1:5]
    yaml_path = Path(export) / "include" / "pipelines" / "churn.yaml"
    pipeline = load_pipeline(yaml_path)
    config = scenario.ScenarioConfig(rows_per_day=400, seed=11)
    days = {"train": dt.date(2026, 1, 5), "valid": dt.date(2026, 1, 6), "score": dt.date(2026, 1, 7)}
    frames = {part: scenario.generate_day(config, day) for part, day in days.items()}
    train, valid = (
        prepare_frame(frames[part].dropna(subset=[pipeline.target]), pipeline) for part in ("train", "valid")
    )
    params = TrainingParams(n_estimators=20, max_depth=3, early_stopping_rounds=5)
    result = train_model(train, valid, params, device="cpu", seed=1, nthread=1, log=lambda _m: None)

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    key = signing_key()
    with mlflow.start_run(experiment_id=experiment_id(client, model)) as run:
        logged = record_trial_upload(
            client,
            key,
            run.info.run_id,
            lambda: log_model(
                result.booster, yaml_path.read_text(), model_input(frames["valid"].head(5), pipeline), Path(out)
            ),
        )
    version = register_version(
        client, model, run_id=run.info.run_id, source=logged.model_uri, model_id=logged.model_id,
        airflow_run_id="previous-release", tags={},
    )
    sign_version(client, model, version.version, key)

    rows = model_input(frames["score"], pipeline)  # a day's rows, defects included
    rows.to_parquet(Path(out) / "rows.parquet")
    scored = load_verified(client, model, version.version, key).predict(rows)
    print(json.dumps({
        "package": mlops.__file__,
        "version": version.version,
        "predictions": [float(p) for p in scored],
    }))
    """
)


@pytest.fixture
def previous_release(tmp_path: Path) -> Path:
    """The previous release's ``plugins`` and ``include``, exported from git into ``tmp_path``
    (before the MLflow server starts: a clone without the commit fails at once)."""
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"], capture_output=True, text=True
    )
    if known.returncode != 0:
        pytest.fail(
            f"commit {PREVIOUS}, the release before the package was reorganised, is not in the repository at "
            f"{ROOT} (a shallow clone?): this test trains a model with that release's code. Fetch the "
            f"history (git fetch --unshallow) and run it again. git said: {known.stderr.strip()}",
            pytrace=False,
        )
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PREVIOUS, "plugins", "include"], capture_output=True, check=True
    )
    export = tmp_path / "previous"
    export.mkdir()
    archive_path = tmp_path / "previous.tar"
    archive_path.write_bytes(archive.stdout)
    with tarfile.open(archive_path) as tar:
        tar.extractall(export, filter="data")
    assert (export / "plugins" / "mlops" / "model.py").is_file(), "the export is not the flat release"
    return export


def train_with_previous_release(export: Path, tracking_uri: str, workdir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        PYTHONPATH=str(export / "plugins"),  # only the previous release's package is importable
        AIRFLOW__CORE__PLUGINS_FOLDER=str(export / "plugins"),
        MLOPS_INCLUDE_DIR=str(export / "include"),
    )
    # The session's signing key (tests/conftest.py) reaches it as it reaches the current code.
    assert "AIRFLOW_CONN_MLOPS_SIGNING" in env
    script = workdir / "train_previous.py"
    script.write_text(TRAIN_WITH_THE_PREVIOUS_RELEASE)
    done = subprocess.run(
        [sys.executable, str(script), tracking_uri, MODEL, str(export), str(workdir)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"the previous release failed to train:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).resolve() == (export / "plugins" / "mlops" / "__init__.py").resolve(), (
        f"the previous release's process imported {found['package']}"
    )
    return found


def test_a_model_registered_by_the_previous_release_loads_verified_and_scores_the_same(
    previous_release: Path, mlflow_server: str, tmp_path: Path
) -> None:
    import mlops.model
    from mlops.airflow.hooks.signing import signing_key
    from mlops.model.pyfunc import TabularModel
    from mlops.registry.signing import load_model

    workdir = tmp_path / "work"
    workdir.mkdir()
    old = train_with_previous_release(previous_release, mlflow_server, workdir)
    rows = pd.read_parquet(workdir / "rows.parquet")
    assert len(old["predictions"]) == len(rows) and len(rows) > 300
    assert rows.isna().any().any(), "the scored rows should include missing values"

    loaded = load_model(mlflow_server, MODEL, old["version"], signing_key())

    python_model = loaded.unwrap_python_model()
    # The pickle names ``mlops.model.TabularModel``: today that name is the class in mlops.model.pyfunc.
    assert type(python_model) is mlops.model.TabularModel is TabularModel
    assert type(python_model).__module__ == "mlops.model.pyfunc"
    scored = np.asarray(loaded.predict(rows), dtype="float64")
    np.testing.assert_array_equal(scored, np.asarray(old["predictions"], dtype="float64"))
    assert np.ptp(scored) > 0.01, "the model should not score every row alike"
