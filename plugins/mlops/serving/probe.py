"""The serving service's availability probe: one known-answer request, its record in the lake, the SLO.

``probe_service`` sends one fixed, valid row (``probe_row``: built from the pipeline schema, so it
passes the service's input checks) to ``POST <url>/<pipeline>/predict`` and times the answer. The
service is *up* when it answers 200 with one prediction, a score in [0, 1], the label the training
threshold gives and the model version; ``check_answer`` also holds the score to the one the named
version gives offline (the known answer) when the caller could compute it. Anything else is *down*,
with the HTTP status or the error as the reason.

``record_probe`` commits the result as one Parquet part of ``served/ds=<key>/probe/`` (the key of
the probe's UTC time in the pipeline's grain), adopting the parts already committed; a retry of the
same Airflow run replaces its own part, so a run records one probe. ``recent_probes`` reads the
probes of the last ``serving.slo.window_minutes``, ``slo_status`` measures them (availability,
nearest-rank p95 latency of the up probes) and ``alerts`` says what to notify: ``service_down`` when
a probe finds the service down after one that found it up (or none), ``slo_breached`` when the
window's p95 goes over ``serving.slo.p95_ms``. Both fire on the change, not on every probe.

Pure Python over ``Storage``; pandas and pyarrow are imported where rows are read or written.
The HTTP client is the standard library's: a probe is one request, and it must not share the
service's stack.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.index.records import write_record
from mlops.lake.storage import PartitionMissing, Storage, open_partition, partition_dir, read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline, ServingSlo

PROBE_TIMEOUT_S = 10.0
# A probe's request id: the service keeps it as the served row's ``_request_id``, and the monitor's
# online measures leave those rows out (a probe is not traffic).
PROBE_REQUEST_PREFIX = "probe-"
ANSWER_TOLERANCE = 1e-6
COLUMNS = ("_probed_at", "up", "latency_ms", "model_version", "status", "airflow_run_id")
_PART = re.compile(r"^part-(\d+)-")


@dataclass(frozen=True)
class ProbeResult:
    """One probe: when, whether the service answered right, how fast, with which version."""

    probed_at: dt.datetime  # UTC
    up: bool
    latency_ms: float | None  # None when down
    model_version: str | None
    status: str  # the HTTP status ("200"), or what went wrong
    score: float | None = None  # the score the service gave the probe row


def probe_row(pipeline: Pipeline) -> dict[str, Any]:
    """A valid row of the pipeline's features, the same on every probe: numbers at the middle of
    their declared range (or their bound, or 0), categories at their first value, booleans False.
    The key is left out: a probe row must never be joined with a label."""
    row: dict[str, Any] = {}
    for name in pipeline.features:
        column = pipeline.columns[name]
        if column.type == "category":
            row[name] = column.categories[0]
        elif column.type == "bool":
            row[name] = False
        else:
            low, high = column.min, column.max
            middle = (low + high) / 2 if low is not None and high is not None else low or high or 0.0
            if column.type == "int":  # a whole number inside the bounds, which may be fractions
                row[name] = max(math.floor(middle), math.ceil(low)) if low is not None else math.floor(middle)
            else:
                row[name] = float(middle)
    return row


def predict_url(base_url: str, pipeline: str) -> str:
    return f"{base_url.rstrip('/')}/{pipeline}/predict"


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "reason", None) or error) or type(error).__name__
    return text.splitlines()[0][:300]


def read_answer(body: bytes, threshold: float) -> tuple[str, float]:
    """The version and the score of an answer to the one probe row; ``ValueError`` naming what is
    wrong with it otherwise (the contract: ``{"model_version", "predictions": [{"score", "label"}]}``)."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise ValueError("the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    version = answer.get("model_version")
    if version is None or str(version).strip() == "":
        raise ValueError("the answer names no model_version")
    predictions = answer.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != 1 or not isinstance(predictions[0], dict):
        raise ValueError("the answer does not hold one prediction for the one row sent")
    score, label = predictions[0].get("score"), predictions[0].get("label")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= float(score) <= 1.0:
        raise ValueError(f"score {score!r} is not a probability in [0, 1]")
    if label != int(float(score) >= threshold):
        raise ValueError(f"label {label!r} is not the one score {score} gives at threshold {threshold}")
    return str(version), float(score)


def probe_service(
    url: str,
    pipeline: Pipeline,
    *,
    request_id: str,
    timeout_s: float = PROBE_TIMEOUT_S,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ProbeResult:
    """Send the probe row to the service at ``url`` and judge the answer (see the module docstring)."""
    body = json.dumps({"records": [probe_row(pipeline)]}).encode()
    request = urllib.request.Request(
        predict_url(url, pipeline.name),
        body,
        {"Content-Type": "application/json", "X-Request-ID": request_id},
        method="POST",
    )
    probed_at = now()
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer, code = response.read(), response.status
    except urllib.error.HTTPError as exc:
        return ProbeResult(probed_at, False, None, None, f"HTTP {exc.code}: {_first_line(exc)}")
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out, no such host
        return ProbeResult(probed_at, False, None, None, f"unreachable: {_first_line(exc)}")
    latency_ms = (time.perf_counter() - started) * 1000
    try:
        version, score = read_answer(answer, pipeline.training.threshold)
    except ValueError as exc:
        return ProbeResult(probed_at, False, None, None, f"wrong answer (HTTP {code}): {exc}")
    return ProbeResult(probed_at, True, latency_ms, version, str(code), score)


def check_answer(result: ProbeResult, expected: float | None) -> ProbeResult:
    """``result``, down when its score is not ``expected`` (the named version's offline score for the
    probe row); unchanged when down already or when there is nothing to hold it to."""
    if not result.up or expected is None or result.score is None:
        return result
    if abs(result.score - expected) <= ANSWER_TOLERANCE:
        return result
    status = (
        f"wrong answer: score {result.score:.6g}, version {result.model_version} gives {expected:.6g} offline"
    )
    return dataclasses.replace(result, up=False, latency_ms=None, status=status)


# ---------------------------------------------------------------------------------------------
# the record in the lake
# ---------------------------------------------------------------------------------------------


def probe_dir(pipeline: str, key: str) -> str:
    """``<pipeline>/served/ds=<key>/probe``: committed on its own, beside the served rows."""
    return f"{partition_dir(pipeline, 'served', key)}/probe"


def _frame(result: ProbeResult, airflow_run_id: str) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "_probed_at": pd.Series([result.probed_at], dtype="datetime64[us, UTC]"),
            "up": pd.Series([result.up], dtype=bool),
            "latency_ms": pd.Series([result.latency_ms], dtype="float64"),
            "model_version": pd.Series([result.model_version], dtype=object),
            "status": pd.Series([result.status], dtype=object),
            "airflow_run_id": pd.Series([airflow_run_id], dtype=object),
        }
    )


def record_probe(lake: Storage, pipeline: Pipeline, result: ProbeResult, *, airflow_run_id: str) -> str:
    """Commit ``result`` as a new part of its partition's ``probe/`` folder; returns the partition key.

    The new attempt adopts every committed part but the one ``airflow_run_id`` wrote before (a retry
    replaces its own probe). The manifest's extra: ``rows`` (probes in the partition), ``runs`` (each
    stored part's Airflow run) and ``next`` (the next part's number: names never repeat).
    """
    from mlops.lake.batches import parquet_bytes, part_name

    key = pipeline.grain.key(result.probed_at)
    directory = probe_dir(pipeline.name, key)
    try:
        previous = read_manifest(lake, directory)
    except PartitionMissing:
        previous = None
    runs: dict[str, str] = dict(previous.extra.get("runs", {})) if previous else {}
    # Each part's outcome, [up, latency_ms]: the day's summary without reading a part.
    outcomes: dict[str, list[Any]] = dict(previous.extra.get("outcomes", {})) if previous else {}
    rows = int(previous.extra.get("rows", 0)) if previous else 0
    number = int(previous.extra.get("next", len(previous.files))) if previous else 0
    with open_partition(lake, directory) as writer:
        for stored in previous.files if previous else []:
            if runs.get(stored) == airflow_run_id:
                runs.pop(stored)
                outcomes.pop(stored, None)
                rows -= 1
            else:
                writer.adopt(stored)
        stored = writer.add(part_name(number), parquet_bytes(_frame(result, airflow_run_id)))
        runs[stored] = airflow_run_id
        outcomes[stored] = [bool(result.up), result.latency_ms]
        writer.commit({"rows": rows + 1, "runs": runs, "outcomes": outcomes, "next": number + 1})
    write_record(lake, pipeline.name, key, "probe", probe_record(list(outcomes.values())))
    return key


def probe_record(outcomes: list[list[Any]]) -> dict[str, Any]:
    """The day's probes summarised for the lake's index: how many, how many up, the availability,
    and the p50 and p95 latency of the answered ones (nearest rank)."""
    latencies = [float(ms) for up, ms in outcomes if up and ms is not None]
    up = sum(1 for ok, _ in outcomes if ok)
    return {
        "probes": len(outcomes),
        "up": up,
        "availability": up / len(outcomes) if outcomes else None,
        "p50_ms": nearest_rank(latencies, 0.5),
        "p95_ms": nearest_rank(latencies, 0.95),
    }


def recent_probes(lake: Storage, pipeline: Pipeline, *, until: dt.datetime, minutes: float) -> pd.DataFrame:
    """The probes of ``(until - minutes, until]``, oldest first (the ``COLUMNS``).

    Parts are read newest first and the reading stops at the first part older than the window: a
    window costs its own probes, not the day's.
    """
    import io

    import pandas as pd

    from mlops.lake.storage import partition_files

    since = until - dt.timedelta(minutes=minutes)
    grain, frames = pipeline.grain, []
    older = False
    for key in reversed(grain.span(grain.key(since), grain.key(until))):
        try:
            files = partition_files(lake, probe_dir(pipeline.name, key))
        except PartitionMissing:
            continue
        for _, path in sorted(files, key=lambda f: _part_number(f[1]), reverse=True):
            part = pd.read_parquet(io.BytesIO(lake.read_bytes(path)))
            frames.append(part)
            if older := bool((part["_probed_at"] <= since).all()):
                break
        if older:
            break
    if not frames:
        return _frame(ProbeResult(until, False, None, None, ""), "").iloc[0:0]
    found = pd.concat(frames, ignore_index=True)
    found = found[(found["_probed_at"] > since) & (found["_probed_at"] <= until)]
    return found.sort_values("_probed_at", kind="stable").reset_index(drop=True)


def _part_number(path: str) -> int:
    found = _PART.match(path.rsplit("/", 1)[-1])
    return int(found.group(1)) if found else -1


# ---------------------------------------------------------------------------------------------
# the SLO and what to notify
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SloStatus:
    """A window of probes measured against ``serving.slo``."""

    probes: int
    up: int
    availability: float | None  # share of probes up; None without probes
    p95_ms: float | None  # nearest-rank p95 latency of the up probes; None without one
    p95_limit_ms: float
    availability_goal: float

    @property
    def latency_breached(self) -> bool:
        return self.p95_ms is not None and self.p95_ms > self.p95_limit_ms

    @property
    def availability_breached(self) -> bool:
        return self.availability is not None and self.availability < self.availability_goal


def nearest_rank(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: a value that was measured, never an interpolation (of 6 probes,
    the p95 is the slowest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def slo_status(probes: pd.DataFrame, slo: ServingSlo) -> SloStatus:
    up = probes[probes["up"].astype(bool)]
    latencies = [float(v) for v in up["latency_ms"] if v is not None and not math.isnan(v)]
    return SloStatus(
        probes=len(probes),
        up=len(up),
        availability=len(up) / len(probes) if len(probes) else None,
        p95_ms=nearest_rank(latencies, 0.95),
        p95_limit_ms=float(slo.p95_ms),
        availability_goal=float(slo.availability),
    )


@dataclass(frozen=True)
class Alert:
    event: str  # a notification event: service_down, slo_breached
    title: str
    details: list[str]


def alerts(result: ProbeResult, window: pd.DataFrame, slo: ServingSlo) -> list[Alert]:
    """What this probe changes: the service went down, or the window's p95 went over the SLO.

    ``window`` holds the window's probes, this one (the newest) included. A service that stays down,
    or a p95 that stays over, alerts once, when it starts.
    """
    before = window.iloc[:-1]
    now, then = slo_status(window, slo), slo_status(before, slo)
    minutes = slo.window_minutes
    measured = (
        f"last {minutes} min: {now.up} of {now.probes} probes up"
        + (f" (availability {now.availability:.1%}, goal {now.availability_goal:.1%})" if now.probes else "")
        + (f"; p95 {now.p95_ms:.0f} ms (SLO {now.p95_limit_ms:g} ms)" if now.p95_ms is not None else "")
    )
    found = []
    was_up = bool(before["up"].iloc[-1]) if len(before) else True
    if not result.up and was_up:
        found.append(Alert("service_down", f"serving service down: {result.status}", [measured]))
    if now.latency_breached and not then.latency_breached:
        found.append(
            Alert(
                "slo_breached",
                f"serving p95 latency {now.p95_ms:.0f} ms over the {now.p95_limit_ms:g} ms SLO",
                [measured],
            )
        )
    return found


@dataclass(frozen=True)
class ProbeOutcome:
    """One probe run: the result, where it was recorded, the window's SLO status and the alerts."""

    result: ProbeResult
    key: str
    window: SloStatus
    alerts: list[Alert]


def run_probe(
    lake: Storage,
    pipeline: Pipeline,
    url: str,
    *,
    airflow_run_id: str,
    expected: Callable[[str], float | None] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ProbeOutcome:
    """The probe stage: probe, hold the answer to ``expected(version)`` (the named version's offline
    score, None when it cannot be told), record, measure the window, decide the alerts."""
    result = probe_service(
        url, pipeline, request_id=f"{PROBE_REQUEST_PREFIX}{airflow_run_id}", timeout_s=timeout_s
    )
    if result.up and result.model_version and expected is not None:
        result = check_answer(result, expected(result.model_version))
    key = record_probe(lake, pipeline, result, airflow_run_id=airflow_run_id)
    slo = pipeline.serving.slo
    window = recent_probes(lake, pipeline, until=result.probed_at, minutes=slo.window_minutes)
    return ProbeOutcome(result, key, slo_status(window, slo), alerts(result, window, slo))
