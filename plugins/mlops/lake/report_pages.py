"""The lake's report pages over HTTP: which paths may be served, and the links that point to them.

Data Docs, drift reports and training decisions live in the lake (a local folder or S3), where a
browser cannot open them. The Airflow API server serves them under ``/mlops/reports/`` (the
``mlops_reports`` plugin, behind Airflow's login); task links point there. A URL names a report by
its name without the commit's attempt suffix (``ds=2026-01-09/data_docs.html``), so a link stays
valid when the day is re-run: it always opens the committed version.

Only committed files under ``<pipeline>/reports/ds=<day>/`` are served, by their manifest; any
other path is refused before the lake is touched. Pure Python over ``Storage``; no Airflow import.
"""

from __future__ import annotations

import re

from mlops.grain import normalize_key
from mlops.lake.storage import MANIFEST, PartitionMissing, Storage, partition_dir, read_manifest

ROUTE = "/mlops"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".csv": "text/csv; charset=utf-8",
}
# Report pages hold values copied from landed files: untrusted text. They are escaped where they are
# rendered, and served so that nothing in them could run anyway: no script, no request to any host
# (inline styles and data: images only), a sandbox with an opaque origin (no cookies, no API calls
# with the viewer's session), never framed by another site.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_PIPELINE = re.compile(r"^[a-z][a-z0-9_]*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*$")


class NotServed(LookupError):
    """A path that is not a committed report file of a known pipeline."""


def report_url(pipeline: str, ds: str, name: str, base_url: str | None = None) -> str:
    """The URL of report ``name`` (``data_docs.html``, ``drift/drift.html``) of day ``ds``.

    Relative to the Airflow UI's origin unless the deployment sets its public ``base_url``.
    """
    day = normalize_key(ds)
    return f"{(base_url or '').rstrip('/')}{ROUTE}/reports/{pipeline}/ds={day}/{name}"


def _split(pipeline: str, path: str, pipelines: set[str]) -> tuple[str, str]:
    """(partition directory, file name) of a requested path, or NotServed."""
    if pipeline not in pipelines or not _PIPELINE.match(pipeline):
        raise NotServed(f"no pipeline {pipeline!r}")
    parts = path.split("/")
    if len(parts) < 2 or not all(_SEGMENT.match(p) for p in parts) or parts[-1] == MANIFEST:
        raise NotServed(f"not a report path: {path!r}")
    day = parts[0].removeprefix("ds=")
    try:
        if parts[0] == day or normalize_key(day) != day:
            raise ValueError
    except ValueError:
        raise NotServed(
            f"not a day partition nor an hour one: {parts[0]!r} (expected ds=YYYY-MM-DD or ds=YYYY-MM-DDTHH)"
        ) from None
    if not any(parts[-1].endswith(ext) for ext in MEDIA_TYPES):
        raise NotServed(f"not a report file type: {parts[-1]!r}")
    directory = "/".join([partition_dir(pipeline, "reports", day), *parts[1:-1]])
    return directory, parts[-1]


def read_report_file(storage: Storage, pipelines: set[str], pipeline: str, path: str) -> tuple[bytes, str]:
    """The bytes and media type of committed report ``path`` (``ds=<day>/[sub/]<name>``) of ``pipeline``."""
    directory, name = _split(pipeline, path, pipelines)
    try:
        manifest = read_manifest(storage, directory)
    except PartitionMissing:
        raise NotServed(f"no committed reports at {path!r}") from None
    suffix = f"-{manifest.attempt}"
    for stored in manifest.files:
        if name in (stored, stored.replace(suffix, "", 1)):
            ext = name[name.rfind(".") :]
            return storage.read_bytes(f"{directory}/{stored}"), MEDIA_TYPES[ext]
    raise NotServed(f"{name!r} is not in the committed reports of {path.rsplit('/', 1)[0]!r}")
