"""``python -m mlops init``: draft a pipeline YAML from a sample file, then validate the sample with it.

The draft is a starting point to review, not a verdict: types are the narrowest every present
value parses as (``parsing.infer_type``, the converters ingestion applies), numeric ranges get a
margin, text columns with few levels become closed categories (more levels: open ones, whose
unseen values count as ``__other__``), and the key, event time and partition grain are guessed
from the data and said so. The sample is then checked against the suite generated from the draft,
exactly as the ingest gate would check a partition, and what would be quarantined is printed.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline
    from mlops.ingest.validation import ValidationOutcome

CLOSED_LEVELS = 20  # at most this many distinct texts: a closed category
OPEN_LEVELS = 200  # at most this many (and few per row): an open category; more: a string column
RARE = 0.001  # closed-category levels below this share of the rows are left out of the list
MARGIN = 0.1  # numeric ranges widened by this share of the observed range on each side
GRAINS = {"hour": "@hourly", "day": "@daily", "week": "@weekly", "month": "@monthly"}
# A draft's windows, sized for its grain (each within the config's caps, e.g. a year of partitions
# for training.window): about four weeks of hours or days, half a year of weeks, a year of months.
WINDOWS: dict[str, dict[str, int | str]] = {
    "hour": {"window": "28d", "validation": "3d", "holdout": "3d", "min_partitions": "7d", "cooldown": "7d"},
    "day": {"window": "28d", "validation": 3, "holdout": 3, "min_partitions": 7, "cooldown": "7d"},
    "week": {"window": "26w", "validation": 2, "holdout": 2, "min_partitions": 8, "cooldown": "2w"},
    "month": {"window": 12, "validation": 2, "holdout": 2, "min_partitions": 6, "cooldown": 2},
}


@dataclass
class Draft:
    """A drafted pipeline: the YAML document, and what was guessed (printed for review)."""

    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    interval: tuple[dt.datetime, dt.datetime] | None = None  # the sample's partition


def read_sample(data: bytes, source: str, fmt: str | None = None) -> tuple[pd.DataFrame, str]:
    """A sample file's bytes (CSV, CSV.gz or Parquet) read as ingestion reads them; ``source`` names it."""
    from mlops.ingest.parsing import parse_file

    fmt = fmt or ("parquet" if source.endswith(".parquet") else "csv")
    return parse_file(data, fmt, source=source), fmt  # type: ignore[arg-type]


def _grain(times: pd.Series) -> tuple[str, str]:
    """The partition grain of a sample, and why: one file is taken as one partition, so the
    smallest period that holds its event times; a longer export, the spacing of its times."""
    import pandas as pd

    present = times.dropna().sort_values()
    span = present.iloc[-1] - present.iloc[0]
    for grain, period in (("hour", "1h"), ("day", "1D"), ("week", "7D"), ("month", "31D")):
        if span < pd.Timedelta(period):
            return grain, f"the sample's event times span {span} (< one {grain}): one partition a {grain}"
    spacing = present.drop_duplicates().diff().median()
    grain = "month" if spacing >= pd.Timedelta("28D") else "week" if spacing >= pd.Timedelta("7D") else "day"
    return grain, f"the sample spans {span} with a median spacing of {spacing}: one partition a {grain}"


def _interval(start: pd.Timestamp, grain: str) -> tuple[dt.datetime, dt.datetime]:
    import pandas as pd

    begin = start.floor("h") if grain == "hour" else start.normalize()
    if grain == "week":
        begin -= pd.Timedelta(days=begin.weekday())
    if grain == "month":
        begin = begin.replace(day=1)
    step = {"hour": pd.Timedelta("1h"), "day": pd.Timedelta("1D"), "week": pd.Timedelta("7D")}
    end = begin + step[grain] if grain in step else begin + pd.offsets.MonthBegin(1)
    return begin.to_pydatetime(), end.to_pydatetime()


def _bounds(values: pd.Series, kind: str) -> dict[str, float]:
    low, high = float(values.min()), float(values.max())
    if kind == "int":  # whole steps only: a 0/1 column stays [0, 1]
        margin: float = math.floor((high - low) * MARGIN)
    else:
        margin = (high - low) * MARGIN or abs(high) * MARGIN or 1.0
    lo = low - margin if low < 0 or low - margin >= 0 else 0.0  # non-negative data stays non-negative
    hi = high + margin
    if kind == "int":
        return {"min": int(lo), "max": int(hi)}
    return {"min": float(f"{lo:.6g}"), "max": float(f"{hi:.6g}")}


def _column(series: pd.Series, kind: str) -> dict[str, Any]:
    from mlops.ingest.parsing import coerce_column

    nulls = float(series.isna().mean())
    spec: dict[str, Any] = {"type": kind}
    if nulls == 0:
        spec["nullable"] = False
    else:
        spec["max_null_fraction"] = round(min(1.0, max(0.05, 2 * nulls)), 2)
    if kind in ("int", "float"):
        spec.update(_bounds(coerce_column(series, kind).dropna(), kind))
    if kind == "string":
        counts = series.dropna().astype(str).value_counts()
        present = int(counts.sum())
        if len(counts) <= CLOSED_LEVELS and len(counts) < present:
            # A level in fewer than RARE of the rows is more likely a defect than a category: left
            # out, the sample's validation shows its rows as quarantined, for review.
            kept = counts[counts >= max(1, RARE * present)]
            spec.update(type="category", values=sorted(kept.index))
        elif len(counts) <= OPEN_LEVELS and len(counts) * 5 <= present:
            spec.update(type="category", values=sorted(counts.index), open=True)
    return spec


def _key_like(series: pd.Series) -> bool:
    present = int(series.notna().sum())
    return present >= 0.98 * len(series) and series.nunique() >= 0.98 * present


def draft_pipeline(sample: pd.DataFrame, *, name: str, target: str, fmt: str) -> Draft:
    """A pipeline YAML document for data shaped like ``sample``; ``target`` must be one of its columns."""
    from mlops.grain import grain_of, partitions
    from mlops.ingest.parsing import coerce_column, infer_type

    if target not in sample.columns:
        raise ValueError(f"--target {target!r} is not a column of the sample: {list(sample.columns)}")
    notes: list[str] = []
    kinds = {str(c): infer_type(sample[c]) for c in sample.columns}
    columns = {c: _column(sample[c], k) for c, k in kinds.items()}

    times = [c for c, k in kinds.items() if k == "timestamp" and columns[c].get("nullable") is False]
    times = times or [c for c, k in kinds.items() if k == "timestamp"]
    if not times:
        raise ValueError("the sample has no timestamp column: a pipeline needs an event time")
    event_time = times[0]
    notes.append(f"event_time: {event_time} (candidates: {', '.join(times)})")
    # Nearly unique, nearly never null: a sample's few duplicated or missing keys are what the gate
    # quarantines, not a reason to miss the key. Names ending in "id" first.
    keys = sorted(
        (c for c, k in kinds.items() if k in ("int", "string") and c != target and _key_like(sample[c])),
        key=lambda c: not c.lower().endswith("id"),
    )
    if not keys:
        raise ValueError("no column is (nearly) unique and never null in the sample: a pipeline needs a key")
    key = keys[0]
    notes.append(f"key: {key} (candidates: {', '.join(keys)})")
    columns[key]["nullable"] = False
    columns[key].pop("max_null_fraction", None)
    if columns[key]["type"] == "category":  # a unique text column is an id, not a category
        columns[key] = {"type": "string", "nullable": False}
    stamps = coerce_column(sample[event_time], "timestamp")
    grain, why = _grain(stamps)
    notes.append(f"grain: {grain} ({why})")
    interval = _interval(stamps.min(), grain)

    target_values = set(sample[target].dropna().astype(str).unique())
    if kinds[target] != "int" or not target_values <= {"0", "1"}:
        notes.append(
            f"target {target}: values {sorted(target_values)[:5]} are not 0/1: map them before training"
        )
    features = [
        c
        for c, spec in columns.items()
        if c not in (key, event_time, target) and spec["type"] in ("int", "float", "bool", "category")
    ]
    if skipped := [c for c in columns if c not in (key, event_time, target) and c not in features]:
        notes.append(f"not features (text or time columns): {', '.join(skipped)}")

    rows = len(sample)
    per_partition = {"min": max(1, rows // 2), "max": max(2, rows * 2)}
    sizes = WINDOWS[grain]
    least = partitions(sizes["min_partitions"], grain_of(GRAINS[grain]), "training.min_partitions")
    notes.append(
        f"windows: training.window {sizes['window']}, drift.persistence 2 of 3 {grain} partitions "
        f"(sized for one partition a {grain})"
    )
    document = {
        "name": name,
        "description": f"Drafted by mlops init from a {rows}-row sample; review before use.",
        "start_date": interval[0].date().isoformat(),
        "source": {"uri": name, "format": fmt},
        "key": key,
        "event_time": event_time,
        "target": target,
        "columns": columns,
        "features": features,
        "validation": {
            "suite": f"gx/{name}.json",
            "max_quarantine_fraction": 0.05,
            "row_count": per_partition,
        },
        "schedules": {"ingest": GRAINS[grain]},
        # Sized from the sample so that no minimum is out of reach (``mlops check`` warns otherwise).
        "training": {
            **{k: sizes[k] for k in ("window", "validation", "holdout", "min_partitions")},
            "min_rows": min(5000, per_partition["min"] * least),
        },
        "drift": {
            "min_rows": min(500, per_partition["min"]),
            "persistence": {"window": 3, "required": 2},
            "retrain_cooldown": sizes["cooldown"],
        },
    }
    return Draft(document=document, notes=notes, interval=interval)


def validate_sample(
    sample: pd.DataFrame, pipeline: Pipeline, interval: tuple[dt.datetime, dt.datetime]
) -> ValidationOutcome:
    """The ingest gate's validation of ``sample`` as one partition, with the suite drafted for it."""
    from mlops.ingest.suite import build_suite
    from mlops.ingest.validation import validate_partition

    return validate_partition(
        sample, pipeline, build_suite(pipeline), interval_start=interval[0], interval_end=interval[1]
    )


def render_yaml(draft: Draft) -> str:
    """The draft as YAML, with what was guessed as comments on top; one line per column."""
    import yaml

    def flow(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()

    head = [f"# {line}" for line in ["Drafted by `python -m mlops init`; review every guess:", *draft.notes]]
    doc = dict(draft.document)
    columns = doc.pop("columns")
    width = max(len(c) for c in columns) + 1
    body = yaml.safe_dump({k: doc[k] for k in list(doc)[:7]}, sort_keys=False)
    body += "columns:\n" + "".join(f"  {c + ':':<{width}} {flow(s)}\n" for c, s in columns.items())
    body += yaml.safe_dump({k: doc[k] for k in list(doc)[7:]}, sort_keys=False)
    return "\n".join(head) + "\n" + body


def sample_name(uri: str) -> str:
    return PurePosixPath(uri.removeprefix("s3://")).name
