"""Verified models: a registered version's artifact files, signed at registration, checked before loading.

Loading a pyfunc model unpickles ``python_model.pkl`` and imports the model's ``code/``: whoever can
write to the artifact store could run code in every task that loads it. So each version carries a
signature over its files: the manifest (one ``<sha256>  <relative path>`` line per artifact file,
sorted by path) and an HMAC-SHA256, under a key that MLflow never sees (it lives in Airflow's
secrets backend, see ``hooks/signing.py``), of that manifest bound to the model's name, the
version and its MLflow run: signature tags copied onto another version or model do not verify.
Loading downloads the version into a private directory, checks the HMAC of the recorded manifest,
then every file against it, and only then loads from that same directory: what was checked is what
is loaded.

The files signed at registration are the ones the trial uploaded: the trial hashes the model's
directory right before MLflow uploads it and records that digest, signed, on its run
(``record_trial_upload``); registration refuses to sign files in the store that differ from it.

The manifest, the signature and the key's id are version tags. Anyone who can write tags can
change them, but not forge an HMAC without the key. The same key signs the registry's other
records that decide what runs (champion moves and gate decisions, ``sign_record``). No Airflow import.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mlflow import MlflowClient

MANIFEST_TAG = "signature.manifest"
SIGNATURE_TAG = "signature.hmac_sha256"
KEY_ID_TAG = "signature.key_id"
# Run tags: the digest of the model directory the trial uploaded, and its signature.
TRIAL_MANIFEST_TAG = "signature.trial_manifest_sha256"
TRIAL_SIGNATURE_TAG = "signature.trial_hmac_sha256"
MIN_KEY_CHARS = 16
_KEY_ID_LABEL = b"mlops model signing key id"
T = TypeVar("T")


class UnverifiedModel(RuntimeError):
    """A version that must not be loaded: unsigned, signed with another key, or altered since signing."""


@dataclass(frozen=True)
class SigningKey:
    """The secret that signs model versions; ``key_id`` names it without revealing it."""

    secret: bytes = field(repr=False)

    @classmethod
    def from_text(cls, text: str, *, source: str) -> SigningKey:
        if len(text) < MIN_KEY_CHARS:
            raise ValueError(
                f"the model-signing key in {source} is {'empty' if not text else 'too short'}: "
                f"it needs at least {MIN_KEY_CHARS} characters (a random one: "
                f"python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        return cls(text.encode())

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]

    def sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()


def sign_record(key: SigningKey, kind: str, fields: Mapping[str, str]) -> str:
    """The HMAC of a record: its kind and fields as canonical JSON, so no field can be moved to
    another record (another version, model or kind) and still verify."""
    return key.sign(json.dumps({"record": kind, **fields}, sort_keys=True, separators=(",", ":")))


def record_verifies(key: SigningKey, kind: str, fields: Mapping[str, str], signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(str(signature), sign_record(key, kind, fields))


def version_signature(key: SigningKey, *, model: str, version: str, run_id: str, manifest: str) -> str:
    """What ``signature.hmac_sha256`` holds: the manifest bound to the model, the version and its run."""
    fields = {"model": model, "version": str(version), "run_id": run_id, "manifest": manifest}
    return sign_record(key, "model-files", fields)


def manifest_of(root: Path) -> str:
    """Every file under ``root`` as ``<sha256>  <relative path>`` lines, sorted by path."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        lines.append(f"{digest.hexdigest()}  {path.relative_to(root).as_posix()}")
    return "\n".join(lines) + "\n"


def _parse(manifest: str) -> dict[str, str]:
    return {path: digest for digest, path in (line.split("  ", 1) for line in manifest.splitlines() if line)}


@dataclass(frozen=True)
class VersionRef:
    """A registered version as its signature binds it: model name, version and MLflow run id."""

    model: str
    version: str
    run_id: str

    @property
    def label(self) -> str:
        return label_of(self.model, self.version)

    def signature(self, key: SigningKey, manifest: str) -> str:
        return version_signature(
            key, model=self.model, version=self.version, run_id=self.run_id, manifest=manifest
        )


def ref_of(client: MlflowClient, model: str, version: str) -> tuple[VersionRef, dict[str, str]]:
    """The version's reference and its tags, as the registry holds them."""
    found = client.get_model_version(model, str(version))
    return VersionRef(model, str(found.version), found.run_id or ""), dict(found.tags)


def signature_tags(key: SigningKey, ref: VersionRef, manifest: str) -> dict[str, str]:
    return {MANIFEST_TAG: manifest, KEY_ID_TAG: key.key_id, SIGNATURE_TAG: ref.signature(key, manifest)}


def is_signed(tags: dict[str, str]) -> bool:
    return all(tag in tags for tag in (MANIFEST_TAG, KEY_ID_TAG, SIGNATURE_TAG))


def _legacy_signed(tags: dict[str, str], key: SigningKey) -> bool:
    """Signed by the first scheme, over the manifest alone (before signatures named the version)."""
    return hmac.compare_digest(tags[SIGNATURE_TAG], key.sign(tags[MANIFEST_TAG]))


def check_tags(tags: dict[str, str], key: SigningKey, ref: VersionRef) -> None:
    """Raise ``UnverifiedModel`` unless the version is signed, with ``key``, over its manifest tag,
    its model name, version and run."""
    label = ref.label
    if not is_signed(tags):
        raise UnverifiedModel(
            f"{label} is unsigned (no {SIGNATURE_TAG} tag): refusing to load it; re-sign it with "
            f"python -m mlops signing sign if its files are known to be good"
        )
    if tags[KEY_ID_TAG] != key.key_id:
        raise UnverifiedModel(
            f"{label} was signed with key {tags[KEY_ID_TAG]}, not the current key {key.key_id}: if "
            f"the key was not rotated on purpose, restore the key that signed it (the mlops_signing "
            f"connection; docs/security.md); after a rotation, re-sign old versions with "
            f"python -m mlops signing resign"
        )
    if hmac.compare_digest(tags[SIGNATURE_TAG], ref.signature(key, tags[MANIFEST_TAG])):
        return
    if _legacy_signed(tags, key):
        raise UnverifiedModel(
            f"{label} carries a signature of the older scheme, which did not name the version: "
            f"after checking its files, re-sign it with python -m mlops signing sign --version {ref.version}"
        )
    raise UnverifiedModel(
        f"{label}: its signature tags do not verify for this model, version and run "
        f"(tags altered, or copied from another version)"
    )


def check_files(manifest: str, root: Path, label: str) -> None:
    """Raise ``UnverifiedModel`` naming the first file under ``root`` that differs from ``manifest``."""
    expected, found = _parse(manifest), _parse(manifest_of(root))
    for path in sorted(expected.keys() | found.keys()):
        if path not in found:
            raise UnverifiedModel(f"{label}: artifact file {path} is missing from the artifact store")
        if path not in expected:
            raise UnverifiedModel(f"{label}: artifact file {path} was added after signing")
        if expected[path] != found[path]:
            raise UnverifiedModel(f"{label}: artifact file {path} was altered after signing (sha256 differs)")


def check(tags: dict[str, str], root: Path, key: SigningKey, ref: VersionRef) -> None:
    """Raise ``UnverifiedModel`` naming the version and the offending file, if any."""
    check_tags(tags, key, ref)
    check_files(tags[MANIFEST_TAG], root, ref.label)


# -- the trial's record of what it uploaded ------------------------------------------------------


def _digest(manifest: str) -> str:
    return hashlib.sha256(manifest.encode()).hexdigest()


def trial_tags(key: SigningKey, run_id: str, manifest: str) -> dict[str, str]:
    """The run tags vouching for the model directory a trial uploaded (``manifest``)."""
    digest = _digest(manifest)
    signature = sign_record(key, "trial-files", {"run_id": run_id, "manifest_sha256": digest})
    return {TRIAL_MANIFEST_TAG: digest, TRIAL_SIGNATURE_TAG: signature}


@contextmanager
def _hashing_uploads() -> Iterator[list[str]]:
    """The manifests of the model directories MLflow uploads in this block, each taken from the
    local directory right before its upload (``MlflowClient.log_model_artifacts``, which
    ``log_model`` calls): what the trial vouches for is exactly what it sent."""
    from mlflow import MlflowClient

    upload = MlflowClient.log_model_artifacts
    manifests: list[str] = []

    def hashed(self: MlflowClient, model_id: str, local_dir: str, *args: Any, **kwargs: Any) -> None:
        manifests.append(manifest_of(Path(local_dir)))
        return upload(self, model_id, local_dir, *args, **kwargs)

    MlflowClient.log_model_artifacts = hashed  # type: ignore[method-assign]
    try:
        yield manifests
    finally:
        MlflowClient.log_model_artifacts = upload  # type: ignore[method-assign]


def record_trial_upload(client: MlflowClient, key: SigningKey, run_id: str, log: Callable[[], T]) -> T:
    """Run ``log`` (which logs one model under the run ``run_id``) and record on the run, signed,
    the digest of the files it uploaded; returns what ``log`` returns."""
    with _hashing_uploads() as manifests:
        logged = log()
    if len(manifests) != 1:
        raise RuntimeError(
            f"run {run_id}: expected one model upload to hash, saw {len(manifests)}; not vouching for it"
        )
    for tag, value in trial_tags(key, run_id, manifests[0]).items():
        client.set_tag(run_id, tag, value)
    return logged


def check_trial(client: MlflowClient, key: SigningKey, ref: VersionRef, manifest: str) -> None:
    """Raise ``UnverifiedModel`` unless ``manifest`` (the version's files in the store now) is what
    its trial uploaded, by the signed record on its run."""
    tags = client.get_run(ref.run_id).data.tags if ref.run_id else {}
    digest = tags.get(TRIAL_MANIFEST_TAG, "")
    fields = {"run_id": ref.run_id, "manifest_sha256": digest}
    if TRIAL_SIGNATURE_TAG not in tags:
        raise UnverifiedModel(
            f"{ref.label}: its run {ref.run_id or '(none)'} has no signed record of the files its "
            f"trial uploaded ({TRIAL_SIGNATURE_TAG}): refusing to sign files nobody vouched for"
        )
    if not record_verifies(key, "trial-files", fields, tags[TRIAL_SIGNATURE_TAG]):
        raise UnverifiedModel(
            f"{ref.label}: the record of its trial's upload on run {ref.run_id} does not verify "
            f"(tags altered or copied): refusing to sign"
        )
    if digest != _digest(manifest):
        raise UnverifiedModel(
            f"{ref.label}: its files in the artifact store differ from those its trial uploaded "
            f"(run {ref.run_id}): they were replaced after the upload; refusing to sign them"
        )


def label_of(model: str, version: str) -> str:
    return f"model {model} version {version}"


def download_version(client: MlflowClient, model: str, version: str, dest: Path) -> Path:
    """The version's artifact files (the logged model's directory) under ``dest``.

    From the location the registry gives for the version, against ``client``'s server: resolving
    ``models:/...`` instead would go through MLflow's global URIs for some sources.
    """
    import mlflow.artifacts

    location = client.get_model_version_download_uri(model, str(version))
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(dest), tracking_uri=client.tracking_uri
        )
    )


def verified_copy(client: MlflowClient, model: str, version: str, key: SigningKey, dest: Path) -> Path:
    """Download ``version`` into ``dest`` and check it; returns the model directory to load from."""
    ref, tags = ref_of(client, model, version)
    check_tags(tags, key, ref)  # before downloading anything
    root = download_version(client, model, ref.version, dest)
    check_files(tags[MANIFEST_TAG], root, ref.label)
    return root


def load_verified(client: MlflowClient, model: str, version: str, key: SigningKey) -> Any:
    """The version's pyfunc model, loaded only after its files matched their signature."""
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix=f"mlops-{model}-v{version}-") as tmp:
        root = verified_copy(client, model, version, key, Path(tmp))
        # The booster and the pipeline YAML are read into memory by load_context: the copy can go.
        return mlflow.pyfunc.load_model(str(root))


def sign_version(
    client: MlflowClient,
    model: str,
    version: str,
    key: SigningKey,
    *,
    require_trial: bool = True,
    force: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> str:
    """Sign the version's files as they are in the store now; returns the signature.

    Idempotent: a version already signed with this key is checked, not re-signed, so a retried
    registration never blesses files altered since the first attempt signed them. With
    ``require_trial`` (registration) the files must be those its trial uploaded (``check_trial``);
    without it (``python -m mlops signing sign``, for versions registered before trials recorded
    their uploads) they are signed as found. A version signed with another key is refused unless
    ``force``: re-signing it would bless whatever the store holds now.
    """
    ref, tags = ref_of(client, model, version)
    with tempfile.TemporaryDirectory(prefix=f"mlops-sign-{model}-v{version}-") as tmp:
        root = download_version(client, model, ref.version, Path(tmp))
        if is_signed(tags) and tags[KEY_ID_TAG] == key.key_id:
            if hmac.compare_digest(tags[SIGNATURE_TAG], ref.signature(key, tags[MANIFEST_TAG])):
                check(tags, root, key, ref)
                return tags[SIGNATURE_TAG]
            if not _legacy_signed(tags, key):
                check_tags(tags, key, ref)  # raises: altered or copied tags
            # The older scheme: the files must still match what it signed.
            check_files(tags[MANIFEST_TAG], root, ref.label)
            log(f"{ref.label}: signed by the older scheme; re-signing it bound to its version and run")
        elif is_signed(tags) and not force:
            raise UnverifiedModel(
                f"{ref.label} is signed with key {tags[KEY_ID_TAG]}, not the current key {key.key_id}: "
                f"restore the key that signed it (the mlops_signing connection), or after a rotation "
                f"re-sign with python -m mlops signing resign --old-conn ...; sign --force only once "
                f"its files are known to be good"
            )
        manifest = manifest_of(root)
        if require_trial:
            check_trial(client, key, ref, manifest)
        signed = signature_tags(key, ref, manifest)
    # The signature last: a version carrying it has its manifest and key id too.
    for tag in (MANIFEST_TAG, KEY_ID_TAG, SIGNATURE_TAG):
        client.set_model_version_tag(model, ref.version, tag, signed[tag])
    return signed[SIGNATURE_TAG]


def load_model(tracking_uri: str, model: str, version: str, key: SigningKey) -> Any:
    """The version's pyfunc model, its files checked against their signature before loading."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return load_verified(client, model, version, key)
