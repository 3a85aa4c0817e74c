"""Verified models: a registered version's artifact files, signed at registration, checked before loading.

Loading a pyfunc model unpickles ``python_model.pkl`` and imports the model's ``code/``: whoever can
write to the artifact store could run code in every task that loads it. So each version carries a
signature over its files: the manifest (one ``<sha256>  <relative path>`` line per artifact file,
sorted by path) and an HMAC-SHA256 of that manifest under a key that MLflow never sees (it lives in
Airflow's secrets backend, see ``hooks/signing.py``). Loading downloads the version into a private
directory, checks the HMAC of the recorded manifest, then every file against it, and only then
loads from that same directory: what was checked is what is loaded.

The manifest, the signature and the key's id are version tags. Anyone who can write tags can
change them, but not forge an HMAC without the key. No Airflow import.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

MANIFEST_TAG = "signature.manifest"
SIGNATURE_TAG = "signature.hmac_sha256"
KEY_ID_TAG = "signature.key_id"
MIN_KEY_CHARS = 16
_KEY_ID_LABEL = b"mlops model signing key id"


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

    def sign(self, manifest: str) -> str:
        return hmac.new(self.secret, manifest.encode(), hashlib.sha256).hexdigest()


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


def signature_tags(key: SigningKey, root: Path) -> dict[str, str]:
    manifest = manifest_of(root)
    return {MANIFEST_TAG: manifest, KEY_ID_TAG: key.key_id, SIGNATURE_TAG: key.sign(manifest)}


def is_signed(tags: dict[str, str]) -> bool:
    return all(tag in tags for tag in (MANIFEST_TAG, KEY_ID_TAG, SIGNATURE_TAG))


def check_tags(tags: dict[str, str], key: SigningKey, label: str) -> None:
    """Raise ``UnverifiedModel`` unless the version is signed, with ``key``, over its manifest tag."""
    if not is_signed(tags):
        raise UnverifiedModel(
            f"{label} is unsigned (no {SIGNATURE_TAG} tag): refusing to load it; re-sign it with "
            f"python -m mlops.signing sign if its files are known to be good"
        )
    if tags[KEY_ID_TAG] != key.key_id:
        raise UnverifiedModel(
            f"{label} was signed with key {tags[KEY_ID_TAG]}, not the current key {key.key_id}: "
            f"re-sign old versions after a key rotation (python -m mlops.signing resign)"
        )
    if not hmac.compare_digest(tags[SIGNATURE_TAG], key.sign(tags[MANIFEST_TAG])):
        raise UnverifiedModel(f"{label}: its {MANIFEST_TAG} tag does not match its signature (tags altered)")


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


def check(tags: dict[str, str], root: Path, key: SigningKey, label: str) -> None:
    """Raise ``UnverifiedModel`` naming ``label`` (the version) and the offending file, if any."""
    check_tags(tags, key, label)
    check_files(tags[MANIFEST_TAG], root, label)


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
    tags = client.get_model_version(model, str(version)).tags
    label = label_of(model, str(version))
    check_tags(tags, key, label)  # before downloading anything
    root = download_version(client, model, str(version), dest)
    check_files(tags[MANIFEST_TAG], root, label)
    return root


def load_verified(client: MlflowClient, model: str, version: str, key: SigningKey) -> Any:
    """The version's pyfunc model, loaded only after its files matched their signature."""
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix=f"mlops-{model}-v{version}-") as tmp:
        root = verified_copy(client, model, version, key, Path(tmp))
        # The booster and the pipeline YAML are read into memory by load_context: the copy can go.
        return mlflow.pyfunc.load_model(str(root))


def sign_version(client: MlflowClient, model: str, version: str, key: SigningKey) -> str:
    """Sign the version's files as they are in the store now; returns the signature.

    Idempotent: a version already signed with this key is checked, not re-signed, so a retried
    registration never blesses files altered since the first attempt signed them.
    """
    tags = client.get_model_version(model, str(version)).tags
    with tempfile.TemporaryDirectory(prefix=f"mlops-sign-{model}-v{version}-") as tmp:
        root = download_version(client, model, str(version), Path(tmp))
        if is_signed(tags) and tags[KEY_ID_TAG] == key.key_id:
            check(tags, root, key, label_of(model, str(version)))
            return tags[SIGNATURE_TAG]
        signed = signature_tags(key, root)
    # The signature last: a version carrying it has its manifest and key id too.
    for tag in (MANIFEST_TAG, KEY_ID_TAG, SIGNATURE_TAG):
        client.set_model_version_tag(model, str(version), tag, signed[tag])
    return signed[SIGNATURE_TAG]


def resign(
    client: MlflowClient,
    model: str,
    *,
    old: SigningKey,
    new: SigningKey,
    log: Callable[[str], None] = print,
) -> tuple[list[str], list[str]]:
    """After a key rotation: re-sign with ``new`` every version whose files verify under ``old``.

    Versions already signed with ``new`` are checked and kept; versions that verify under neither
    (unsigned, altered, or signed with a third key) are left as they are, so loading refuses them.
    Returns (versions signed with ``new`` now, versions refused).
    """
    from mlops.registry import _quote, _search_versions

    good, refused = [], []
    for found in sorted(_search_versions(client, f"name = {_quote(model)}"), key=lambda v: int(v.version)):
        version, label = found.version, label_of(model, found.version)
        with tempfile.TemporaryDirectory(prefix=f"mlops-resign-{model}-v{version}-") as tmp:
            try:
                root = download_version(client, model, version, Path(tmp))
                signer = new if found.tags.get(KEY_ID_TAG) == new.key_id else old
                check(found.tags, root, signer, label)
            except UnverifiedModel as exc:
                log(f"refused: {exc}")
                refused.append(version)
                continue
        if signer is old:
            # The files match the manifest the old key signed: the same manifest, under the new key.
            manifest = found.tags[MANIFEST_TAG]
            client.set_model_version_tag(model, version, KEY_ID_TAG, new.key_id)
            client.set_model_version_tag(model, version, SIGNATURE_TAG, new.sign(manifest))
            log(f"re-signed {label} with key {new.key_id}")
        good.append(version)
    return good, refused


def _main(argv: list[str] | None = None) -> int:
    """``python -m mlops.signing``, with the key from Airflow's secrets backend (``mlops_signing``):

    - ``resign --pipeline churn --old-conn mlops_signing_old``: after a rotation, re-sign the
      versions that verify under the old key; exit 4 when some were refused.
    - ``sign --pipeline churn --version 3``: sign a version (one registered before signing existed).
    - ``fetch --pipeline churn --version 3 --dest DIR``: download and verify a version into DIR
      (what ``make serve`` serves from); exit 5 when it does not verify.

    The tracking server is ``mlflow_default``'s, its credentials from the same connection.
    """
    import argparse
    import sys

    from mlops.hooks.mlflow import MlflowHook
    from mlops.hooks.signing import signing_key

    parser = argparse.ArgumentParser(prog="python -m mlops.signing")
    parser.add_argument("command", choices=["resign", "sign", "fetch"])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--version")
    parser.add_argument("--dest", type=Path)
    parser.add_argument("--conn", default="mlops_signing", help="the connection holding the key")
    parser.add_argument("--old-conn", help="resign: the connection holding the previous key")
    args = parser.parse_args(argv)
    hook = MlflowHook()
    hook.apply_credentials()
    key = signing_key(args.conn)
    if args.command == "resign":
        if not args.old_conn:
            parser.error("resign needs --old-conn (the connection holding the previous key)")
        _, refused = resign(hook.client, args.pipeline, old=signing_key(args.old_conn), new=key)
        return 4 if refused else 0
    if not args.version:
        parser.error(f"{args.command} needs --version")
    if args.command == "sign":
        print(sign_version(hook.client, args.pipeline, args.version, key))
        return 0
    if args.dest is None:
        parser.error("fetch needs --dest")
    try:
        root = verified_copy(hook.client, args.pipeline, args.version, key, args.dest)
    except UnverifiedModel as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 5
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
