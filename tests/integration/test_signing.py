"""Verified models against real MLflow servers: one storing artifacts on local disk, one on S3 (moto).

A small churn model is logged, registered and signed as the train DAG does; then a file of it is
altered in the artifact store itself (the disk, or the bucket), and loading must fail naming the
version and the file before anything is unpickled. A signed, untouched version loads and scores.
Also: unsigned versions, altered or copied signature tags, files swapped between the trial's upload
and registration, and key rotation with ``python -m mlops.signing``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops.config.pipeline import TrainingParams, load_pipeline
from mlops.registry.signing import (
    KEY_ID_TAG,
    MANIFEST_TAG,
    SIGNATURE_TAG,
    SigningKey,
    UnverifiedModel,
    load_verified,
    record_trial_upload,
    sign_version,
)
from mlops.tools import scenario

ROOT = Path(__file__).resolve().parents[2]
CHURN = ROOT / "include" / "pipelines" / "churn.yaml"
KEY = SigningKey.from_text("k" * 8 + uuid.uuid4().hex, source="test")
BUCKET = "mlflow-artifacts"

pytestmark = pytest.mark.integration


@dataclass
class Store:
    """An MLflow server and the raw artifact store behind it: ``files(model_id)`` lists the logged
    model's files as store keys, ``write(key, data)`` / ``delete(key)`` change one behind MLflow's back."""

    uri: str
    files: Callable[[str], list[str]]
    write: Callable[[str, bytes], None]
    delete: Callable[[str], None]


@pytest.fixture(scope="module")
def booster() -> Any:
    from mlops.training.fit import prepare_frame, train_model

    pipeline = load_pipeline(CHURN)
    config = scenario.ScenarioConfig(rows_per_day=300, seed=3)
    train, valid = (
        prepare_frame(
            scenario.generate_day(config, dt.date(2026, 1, d)).dropna(subset=[pipeline.target]), pipeline
        )
        for d in (5, 6)
    )
    params = TrainingParams(n_estimators=5, max_depth=3, early_stopping_rounds=5)
    return train_model(train, valid, params, device="cpu", seed=1, nthread=1, log=lambda _m: None).booster


@pytest.fixture(scope="module")
def local_store(start_mlflow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("signing-local")
    artifacts = root / "artifacts"
    with start_mlflow(root, destination=str(artifacts)) as uri:

        def files(model_id: str) -> list[str]:
            [model_dir] = [p for p in artifacts.rglob(model_id) if p.is_dir()]
            return sorted(str(p) for p in model_dir.rglob("*") if p.is_file())

        yield Store(uri, files, lambda key, data: Path(key).write_bytes(data), lambda key: Path(key).unlink())


@pytest.fixture(scope="module")
def s3_store(start_mlflow, start_moto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    import boto3

    keys = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with start_moto() as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=BUCKET)
        env = {**keys, "MLFLOW_S3_ENDPOINT_URL": endpoint}
        with start_mlflow(
            tmp_path_factory.mktemp("signing-s3"), destination=f"s3://{BUCKET}/mlflow", extra_env=env
        ) as uri:

            def files(model_id: str) -> list[str]:
                listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/").get("Contents", [])
                return sorted(o["Key"] for o in listed if f"/{model_id}/" in o["Key"])

            yield Store(
                uri,
                files,
                lambda key, data: s3.put_object(Bucket=BUCKET, Key=key, Body=data),
                lambda key: s3.delete_object(Bucket=BUCKET, Key=key),
            )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")


def client_of(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def register(
    uri: str,
    booster: Any,
    tmp_path: Path,
    *,
    sign: bool = True,
    name: str | None = None,
    before_register: Callable[[str], None] = lambda _model_id: None,
) -> tuple[str, str, str]:
    """Log (recording the trial's upload, as ``train_trial`` does), register (and sign) a fresh
    model, as a new registered model unless ``name`` is given; returns (registered name, version,
    logged model id). ``before_register(model_id)`` runs between the upload and the registration."""
    import mlflow

    from mlops.model.pyfunc import log_model, model_input
    from mlops.registry.champion import register_version
    from mlops.training.experiment import experiment_id

    pipeline = load_pipeline(CHURN)
    example = model_input(
        scenario.generate_day(scenario.ScenarioConfig(rows_per_day=20), dt.date(2026, 1, 7)).head(3), pipeline
    )
    client, name = client_of(uri), name or f"signed-{uuid.uuid4().hex[:8]}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=experiment_id(client, "signing-test")) as run:
            logged = record_trial_upload(
                client, KEY, run.info.run_id, lambda: log_model(booster, CHURN.read_text(), example, tmp_path)
            )
    finally:
        mlflow.set_tracking_uri(previous)
    before_register(logged.model_id)
    version = register_version(
        client,
        name,
        run_id=run.info.run_id,
        source=logged.model_uri,
        model_id=logged.model_id,
        airflow_run_id="t",
        tags={},
    ).version
    if sign:
        sign_version(client, name, version, KEY)
    return name, version, logged.model_id


def key_of(files: list[str], suffix: str) -> str:
    [found] = [f for f in files if f.endswith(suffix)]
    return found


def test_a_signed_version_loads_and_scores(store: Store, booster: Any, tmp_path: Path) -> None:
    name, version, _ = register(store.uri, booster, tmp_path)
    model = load_verified(client_of(store.uri), name, version, KEY)
    pipeline = load_pipeline(CHURN)
    from mlops.model.pyfunc import model_input

    frame = scenario.generate_day(scenario.ScenarioConfig(rows_per_day=50), dt.date(2026, 1, 8))
    scores = model.predict(model_input(frame, pipeline))
    assert len(scores) == len(frame) and 0 <= min(scores) <= max(scores) <= 1


@pytest.mark.parametrize(
    ("change", "suffix", "message"),
    [
        pytest.param(
            "alter",
            "python_model.pkl",
            "artifact file python_model.pkl was altered after signing",
            id="pickle-altered",
        ),
        pytest.param(
            "alter",
            "code/mlops/model/pyfunc.py",
            "artifact file code/mlops/model/pyfunc.py was altered",
            id="code-altered",
        ),
        pytest.param(
            "delete",
            "artifacts/booster.ubj",
            "artifact file artifacts/booster.ubj is missing",
            id="booster-removed",
        ),
        pytest.param(
            "add",
            "code/mlops/evil.py",
            "artifact file code/mlops/evil.py was added after signing",
            id="file-added",
        ),
    ],
)
def test_a_changed_artifact_fails_the_load_naming_version_and_file(
    store: Store, booster: Any, tmp_path: Path, change: str, suffix: str, message: str
) -> None:
    name, version, model_id = register(store.uri, booster, tmp_path)
    files = store.files(model_id)
    if change == "add":
        anchor = key_of(files, "code/mlops/model/pyfunc.py")
        store.write(
            anchor.replace("model/pyfunc.py", "evil.py"), b"import os; os.system('touch /tmp/pwned')\n"
        )
    elif change == "delete":
        store.delete(key_of(files, suffix))
    else:
        store.write(key_of(files, suffix), b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    with pytest.raises(UnverifiedModel, match=rf"model {name} version {version}: {message}"):
        load_verified(client_of(store.uri), name, version, KEY)


def test_unsigned_versions_and_altered_manifests_are_refused(
    local_store: Store, booster: Any, tmp_path: Path
) -> None:
    client = client_of(local_store.uri)
    name, version, _ = register(local_store.uri, booster, tmp_path / "a", sign=False)
    with pytest.raises(UnverifiedModel, match=rf"model {name} version {version} is unsigned"):
        load_verified(client, name, version, KEY)

    name, version, _ = register(local_store.uri, booster, tmp_path / "b")
    # Someone with registry access rewrites the manifest to match a swapped pickle: the HMAC catches it.
    manifest = client.get_model_version(name, version).tags[MANIFEST_TAG]
    client.set_model_version_tag(name, version, MANIFEST_TAG, manifest.replace("0", "1", 1))
    with pytest.raises(UnverifiedModel, match=rf"version {version}: its signature tags do not verify"):
        load_verified(client, name, version, KEY)


def test_resign_after_rotation_keeps_good_versions_and_refuses_altered_ones(
    local_store: Store, booster: Any, tmp_path: Path
) -> None:
    """``python -m mlops signing resign`` with both keys read through Airflow connections."""
    client, new = client_of(local_store.uri), SigningKey.from_text("n" * 8 + uuid.uuid4().hex, source="test")
    name, good, _ = register(local_store.uri, booster, tmp_path / "a")
    with pytest.raises(
        UnverifiedModel, match=rf"version {good} was signed with key {KEY.key_id}, not the current"
    ):
        load_verified(client, name, good, new)
    # A second version of the same registered model, altered in the store before the rotation.
    _, bad, model_id = register(local_store.uri, booster, tmp_path / "b", name=name)
    local_store.write(key_of(local_store.files(model_id), "python_model.pkl"), b"not the signed pickle")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "host": local_store.uri}),
        "AIRFLOW_CONN_MLOPS_SIGNING": json.dumps({"conn_type": "generic", "password": new.secret.decode()}),
        "AIRFLOW_CONN_MLOPS_SIGNING_OLD": json.dumps(
            {"conn_type": "generic", "password": KEY.secret.decode()}
        ),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops",
            "signing",
            "resign",
            "--pipeline",
            name,
            "--old-conn",
            "mlops_signing_old",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4, done.stdout + done.stderr  # 4: some versions were refused
    assert f"re-signed model {name} version {good} with key {new.key_id}" in done.stdout
    assert f"refused: model {name} version {bad}: artifact file python_model.pkl was altered" in done.stdout
    load_verified(client, name, good, new)  # loads under the new key
    with pytest.raises(UnverifiedModel, match="signed with key"):
        load_verified(client, name, good, KEY)  # and no longer under the old one
    with pytest.raises(UnverifiedModel, match=rf"version {bad} was signed with key {KEY.key_id}"):
        load_verified(client, name, bad, new)  # still refused


def test_a_file_swapped_between_the_trials_upload_and_registration_is_never_signed(
    store: Store, booster: Any, tmp_path: Path
) -> None:
    def swap(model_id: str) -> None:
        store.write(
            key_of(store.files(model_id), "python_model.pkl"), b"cos\nsystem\n(S'touch /tmp/pwned'\ntR."
        )

    with pytest.raises(
        UnverifiedModel, match=r"its files in the artifact store differ from those its trial uploaded"
    ):
        register(store.uri, booster, tmp_path, before_register=swap)


def test_registration_refuses_a_run_without_a_signed_record_of_its_upload(
    local_store: Store, booster: Any, tmp_path: Path
) -> None:
    client = client_of(local_store.uri)
    name, version, _ = register(local_store.uri, booster, tmp_path, sign=False)
    run_id = client.get_model_version(name, version).run_id
    client.set_tag(run_id, "signature.trial_manifest_sha256", "0" * 64)  # rewritten without the key
    with pytest.raises(
        UnverifiedModel, match=rf"the record of its trial's upload on run {run_id} does not verify"
    ):
        sign_version(client, name, version, KEY)
    client.delete_tag(run_id, "signature.trial_hmac_sha256")
    with pytest.raises(UnverifiedModel, match=rf"its run {run_id} has no signed record of the files"):
        sign_version(client, name, version, KEY)


def test_signature_tags_copied_onto_another_version_or_model_do_not_verify(
    local_store: Store, booster: Any, tmp_path: Path
) -> None:
    """The same logged model registered again, as another version and under another model: the very
    same files, so only the signature's binding to model, version and run tells them apart."""
    from mlops.registry.champion import ensure_model

    client = client_of(local_store.uri)
    name, first, model_id = register(local_store.uri, booster, tmp_path)
    signed = client.get_model_version(name, first)
    other = f"other-{uuid.uuid4().hex[:8]}"
    ensure_model(client, other)
    copies = [
        (
            model,
            client.create_model_version(
                model, signed.source, run_id=signed.run_id, model_id=model_id
            ).version,
        )
        for model in (name, other)
    ]
    for model, version in copies:
        for tag in (MANIFEST_TAG, KEY_ID_TAG, SIGNATURE_TAG):
            client.set_model_version_tag(model, version, tag, signed.tags[tag])
        with pytest.raises(
            UnverifiedModel, match=rf"model {model} version {version}: its signature tags do not verify"
        ):
            load_verified(client, model, version, KEY)
    load_verified(client, name, first, KEY)  # the original still loads


def run_cli(uri: str, key: SigningKey, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "host": uri}),
        "AIRFLOW_CONN_MLOPS_SIGNING": json.dumps({"conn_type": "generic", "password": key.secret.decode()}),
    }
    return subprocess.run(
        [sys.executable, "-m", "mlops", "signing", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sign_upgrades_an_older_signature_and_refuses_another_keys(
    local_store: Store, booster: Any, tmp_path: Path
) -> None:
    """The migration path: ``sign`` re-signs a version signed by the older scheme (manifest only) once
    its files still match, and refuses a version signed with another key (a lost key) unless --force."""
    client = client_of(local_store.uri)
    name, version, _ = register(local_store.uri, booster, tmp_path)
    manifest = client.get_model_version(name, version).tags[MANIFEST_TAG]
    client.set_model_version_tag(name, version, SIGNATURE_TAG, KEY.sign(manifest))  # the older scheme
    with pytest.raises(
        UnverifiedModel, match=r"signature of the older scheme, which did not name the version"
    ):
        load_verified(client, name, version, KEY)

    done = run_cli(local_store.uri, KEY, "sign", "--pipeline", name, "--version", version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signed by the older scheme; re-signing it bound to its version and run" in done.stdout
    load_verified(client, name, version, KEY)

    new = SigningKey.from_text("n" * 8 + uuid.uuid4().hex, source="test")
    done = run_cli(local_store.uri, new, "sign", "--pipeline", name, "--version", version)
    assert done.returncode == 5, done.stdout + done.stderr
    assert (
        f"is signed with key {KEY.key_id}, not the current key {new.key_id}: restore the key" in done.stderr
    )
    load_verified(client, name, version, KEY)  # untouched
