"""Read the model registry over MLflow's REST API, without importing MLflow.

Score and monitor first ask "which champion held on each day?" (``registry.history``), and before
the first promotion the answer is "none": the task then skips. Importing MLflow's client stack for
that costs seconds per task; this reader answers the same search with one HTTP call. It offers the
one method ``registry.history`` uses, ``search_model_versions``, with MLflow's paging; ``history``
checks each move's signature on what it returns, as for the MLflow client. Pure Python.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


@dataclass(frozen=True)
class VersionRecord:
    """The fields of a registered model version that the registry's history reads."""

    name: str
    version: str
    tags: dict[str, str] = field(default_factory=dict)


class Page(list[VersionRecord]):
    """One page of a search, with the token of the next (None after the last), like MLflow's."""

    def __init__(self, items: list[VersionRecord], token: str | None) -> None:
        super().__init__(items)
        self.token = token


class RegistryReader:
    """``search_model_versions`` over ``<tracking_uri>/api/2.0/mlflow/model-versions/search``."""

    def __init__(
        self, tracking_uri: str, timeout_s: float = 30, headers: dict[str, str] | None = None
    ) -> None:
        self.base = tracking_uri.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = headers or {}

    def _get(self, endpoint: str, query: dict[str, str], what: str) -> dict:
        url = f"{self.base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise RuntimeError(f"MLflow at {self.base}: {what} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ConnectionError(f"MLflow at {self.base} is unreachable: {exc}") from None

    def alias_version(self, model: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None (no such alias or model). The version search
        does not return aliases (MLflow's SQL store leaves them out), hence this one call."""
        what = f"alias {model}@{alias}"
        try:
            body = self._get("registered-models/alias", {"name": model, "alias": alias}, what)
        except RuntimeError as exc:
            # No model: RESOURCE_DOES_NOT_EXIST; no alias: INVALID_PARAMETER_VALUE "... not found."
            text = str(exc)
            if "RESOURCE_DOES_NOT_EXIST" in text or (
                "INVALID_PARAMETER_VALUE" in text and "not found" in text
            ):
                return None
            raise
        return str(body["model_version"]["version"])

    def search_model_versions(self, filter_string: str, page_token: str | None = None) -> Page:
        query = {"filter": filter_string, "max_results": "1000"}
        if page_token:
            query["page_token"] = page_token
        body = self._get("model-versions/search", query, "model version search")
        items = [
            VersionRecord(
                name=v["name"],
                version=str(v["version"]),
                tags={t["key"]: t.get("value", "") for t in v.get("tags", [])},
            )
            for v in body.get("model_versions", [])
        ]
        return Page(items, body.get("next_page_token") or None)
