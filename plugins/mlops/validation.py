"""Validate one day's partition against the pipeline's Great Expectations suite.

The pipeline YAML is the single source of truth for the rules. ``build_suite`` turns it into a GX
suite, which ``python -m mlops.validation suites`` writes to ``include/gx/<pipeline>.json`` (committed
and reviewed like code). The suite carries a fingerprint of its rules, so the runtime refuses a suite
that no longer matches the YAML instead of silently checking yesterday's rules.

GX decides pass/fail and counts (``result_format="SUMMARY"``, which is cheap). Which rows failed is
found by our own vectorised masks, derived from the same expectation configs; asking GX for complete
unexpected-index lists is several times slower. After every run the mask counts are reconciled with
GX's ``unexpected_count``, so the masks cannot drift from what GX means (nulls included: GX's column
map expectations ignore nulls, and so do the masks).

Pure Python: no Airflow import. ``great_expectations`` takes seconds to import, so it is imported
inside the functions that need it, never at module level.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import json
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops.config import ConfigError, Pipeline, discover

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

# Bump when build_suite's output changes for the same YAML: the fingerprint then marks every
# committed suite stale, and `make suites` regenerates them.
SUITE_GENERATOR_VERSION = 1

ROW = "row"
TABLE = "table"
QUARANTINE_REASONS = "_quarantine_reasons"
ROW_NUMBER = "_row_number"
# Coercion failures are row-level failures found by `coerce`, not by GX: once a value is coerced to
# null the typed frame no longer holds it, so GX cannot see it. They are named like an expectation so
# that reasons and messages read the same way.
TYPE_CHECK = "expect_column_values_to_be_of_type"

# pandas dtypes, spelled the way GX's expect_column_values_to_be_in_type_list resolves them: it looks
# names up with np.dtype(name) and getattr(pandas, name), so "Int64" (not a pandas attribute) would
# never match and the extension dtype classes must be named instead.
_GX_TYPE_LIST = {
    "int": ["Int64Dtype"],
    "float": ["float64"],
    "bool": ["BooleanDtype"],
    "category": ["StringDtype"],
    "string": ["StringDtype"],
}
# GX 1.24 cannot match a tz-aware datetime64[ns, UTC] column with any type_list entry (it compares the
# dtype instance with dtype classes), so timestamp columns get expect_column_values_to_be_of_type
# "Timestamp", which compares dtype.type: pandas.Timestamp when tz-aware, numpy.datetime64 when naive.

_DTYPE_CHECKS = {"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"}
_INT_PATTERN = r"^[+-]?0*\d{1,18}(\.0*)?$"  # 18 digits always fit int64; "3.0" is read as 3
_FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"  # no inf/nan spellings: non-finite is bad
# The ISO 8601 shape that Arrow and pandas both parse, to the same instant.
_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_TRUE = ["true", "1"]
_FALSE = ["false", "0"]
_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")


class BadInputError(ValueError):
    """A partition file that cannot be read at all (corrupt, truncated, empty); names the source."""


class ValidationInternalError(RuntimeError):
    """Our row masks disagree with GX, or GX could not evaluate an expectation: a bug, not bad data."""


# ----------------------------------------------------------------------------------------------------
# The suite: generated from the YAML, fingerprinted, committed.


def _check_name(kind: str, column: str | None) -> str:
    return f"{kind}({column})" if column else kind


def _number(value: float, column_type: str) -> int | float:
    # Integral bounds on int columns stay ints, so comparisons against int64 data are exact.
    if column_type == "int" and float(value).is_integer():
        return int(value)
    return value


def _fingerprint(name: str, expectations: list[dict[str, Any]]) -> str:
    canonical = json.dumps(
        {"generator": SUITE_GENERATOR_VERSION, "name": name, "expectations": expectations},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_suite(pipeline: Pipeline) -> dict[str, Any]:
    """The GX suite for ``pipeline`` as a JSON-able dict; every expectation's meta names its level."""
    expectations: list[dict[str, Any]] = []

    def add(level: str, kind: str, note: str, **kwargs: Any) -> None:
        check = _check_name(kind, kwargs.get("column"))
        action = "fails the partition" if level == TABLE else "quarantines the failing rows"
        expectations.append(
            {
                "type": kind,
                "kwargs": kwargs,
                "meta": {"level": level, "check": check},
                # For reviewers of the JSON, and shown on GX's suite pages (not on validation pages).
                "notes": f"`{check}` ({level}-level: {action}). {note}",
            }
        )

    columns = pipeline.columns
    validation = pipeline.validation
    add(
        TABLE,
        "expect_table_columns_to_match_set",
        "The declared columns.",
        column_set=list(columns),
        exact_match=True,
    )
    add(
        TABLE,
        "expect_table_row_count_to_be_between",
        "validation.row_count",
        min_value=validation.row_count.min,
        max_value=validation.row_count.max,
    )
    for name, column in columns.items():
        if column.type == "timestamp":
            add(TABLE, "expect_column_values_to_be_of_type", "Coerced dtype.", column=name, type_="Timestamp")
        else:
            type_list = _GX_TYPE_LIST[column.type]
            add(
                TABLE,
                "expect_column_values_to_be_in_type_list",
                "Coerced dtype.",
                column=name,
                type_list=type_list,
            )
    for name, column in columns.items():
        if column.nullable and column.max_null_fraction < 1:
            add(
                TABLE,
                "expect_column_values_to_not_be_null",
                f"At most {column.max_null_fraction:g} of the values may be null.",
                column=name,
                mostly=round(1 - column.max_null_fraction, 12),
            )
    for mean in validation.mean_between:
        ctype = columns[mean.column].type
        add(
            TABLE,
            "expect_column_mean_to_be_between",
            "validation.mean_between",
            column=mean.column,
            min_value=_number(mean.min, ctype),
            max_value=_number(mean.max, ctype),
        )

    for name, column in columns.items():
        if not column.nullable:
            add(ROW, "expect_column_values_to_not_be_null", "nullable: false", column=name)
        if column.min is not None or column.max is not None:
            if column.type not in ("int", "float"):
                raise ConfigError(
                    f"pipelines/{pipeline.name}.yaml: columns.{name}: min/max only apply to int and float "
                    f"columns, not {column.type!r}"
                )
            bounds: dict[str, Any] = {}
            if column.min is not None:
                bounds["min_value"] = _number(column.min, column.type)
            if column.max is not None:
                bounds["max_value"] = _number(column.max, column.type)
            add(ROW, "expect_column_values_to_be_between", "min/max", column=name, **bounds)
        if column.values is not None:
            add(
                ROW, "expect_column_values_to_be_in_set", "values", column=name, value_set=list(column.values)
            )
    add(ROW, "expect_column_values_to_be_unique", "The key.", column=pipeline.key)
    add(
        ROW,
        "expect_column_values_to_be_between",
        "The event time lies in the run's data interval [interval_start, interval_end).",
        column=pipeline.event_time,
        min_value={"$PARAMETER": "interval_start"},
        max_value={"$PARAMETER": "interval_end"},
        strict_max=True,
    )

    checks = [e["meta"]["check"] for e in expectations]
    duplicated = sorted({c for c in checks if checks.count(c) > 1})
    if duplicated:
        # Results are matched to expectations by this name (GX reorders results).
        raise ConfigError(f"pipelines/{pipeline.name}.yaml: the same check is declared twice: {duplicated}")
    return {
        "name": pipeline.name,
        "expectations": expectations,
        "meta": {
            "generated_from": f"pipelines/{pipeline.name}.yaml",
            "fingerprint": _fingerprint(pipeline.name, expectations),
            "note": "Generated by `make suites` (python -m mlops.validation suites); do not edit by hand.",
        },
    }


def suite_path(pipeline: Pipeline, include_dir: Path) -> Path:
    return Path(include_dir) / pipeline.validation.suite


def _dump(suite: Mapping[str, Any]) -> str:
    return json.dumps(suite, indent=2, sort_keys=True) + "\n"


def write_suite(pipeline: Pipeline, include_dir: Path) -> Path:
    """(Re)write the pipeline's generated suite; deterministic, so unchanged rules give no diff."""
    path = suite_path(pipeline, include_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(build_suite(pipeline)))
    return path


def load_suite(pipeline: Pipeline, include_dir: Path) -> dict[str, Any]:
    """The committed suite, refused (ConfigError) if missing, unreadable, stale or edited by hand."""
    path = suite_path(pipeline, include_dir)
    fix = "run `make suites` (python -m mlops.validation suites) and commit the result"
    try:
        suite = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: the suite for pipeline {pipeline.name!r} is missing; {fix}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); {fix}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); {fix}") from None
    expected = build_suite(pipeline)
    stored = suite.get("meta", {}).get("fingerprint") if isinstance(suite, dict) else None
    if stored != expected["meta"]["fingerprint"]:
        raise ConfigError(
            f"{path}: the suite is stale: its fingerprint {str(stored)[:12]!r} does not match "
            f"pipelines/{pipeline.name}.yaml ({expected['meta']['fingerprint'][:12]!r}); {fix}"
        )
    if suite.get("expectations") != expected["expectations"] or suite.get("name") != expected["name"]:
        raise ConfigError(
            f"{path}: the suite was edited by hand (it no longer matches its fingerprint); {fix}"
        )
    return suite


# ----------------------------------------------------------------------------------------------------
# Reading and coercing a partition.


def read_partition(data: bytes, fmt: Literal["csv", "parquet"], *, source: str) -> pd.DataFrame:
    """Read a partition file. CSV columns are all read as strings so nothing is lost or converted.

    Nulls: an empty field and pandas' default NA markers ("NA", "NaN", "null", ...) are null.
    The pyarrow engine is used because it refuses a row with a wrong field count anywhere (pandas'
    C engine silently pads a short last line, which is what a truncated file looks like) and invalid
    UTF-8, and because it is several times faster.
    """
    if not data:
        raise BadInputError(f"{source}: the file is empty (0 bytes)")
    if fmt == "csv":
        # Arrow's reader lets an unterminated quote run to the end of the file, swallowing the rows
        # after it. Every quote in valid (RFC 4180) CSV is paired, an escaped one doubled: count them.
        if data.count(b'"') % 2:
            raise BadInputError(
                f"{source}: not a readable CSV file (corrupt or truncated?): an unterminated quote"
            )
        try:
            frame = pd.read_csv(io.BytesIO(data), dtype=str, engine="pyarrow", keep_default_na=True)
        except pd.errors.EmptyDataError:
            raise BadInputError(
                f"{source}: the file has no rows (it is blank or holds only a header)"
            ) from None
        except (pd.errors.ParserError, pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise BadInputError(
                f"{source}: not a readable CSV file (corrupt or truncated?): {_printable(exc)}"
            ) from None
        _check_header(data, frame, source)
    elif fmt == "parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except (pa.ArrowException, OSError) as exc:
            raise BadInputError(
                f"{source}: not a readable Parquet file (corrupt or truncated?): {exc}"
            ) from None
    else:
        raise ValueError(f"{source}: unknown format {fmt!r}; expected 'csv' or 'parquet'")
    if len(frame) == 0:
        raise BadInputError(f"{source}: the file has a header but no rows")
    return frame


def _printable(exc: BaseException, limit: int = 200) -> str:
    """A parser's message without the raw bytes it quotes: a corrupt file's bytes garble logs."""
    text = str(exc)
    clean = "".join(c if c.isprintable() and c != "\ufffd" else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit] + " ..."


def _check_header(data: bytes, frame: pd.DataFrame, source: str) -> None:
    # pandas renames duplicated header names ("a", "a.1"); a duplicated column is a broken file.
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        names = next(csv.reader([first_line.decode("utf-8")]), [])
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{source}: the header is not valid UTF-8: {exc}") from None
    if len(set(names)) != len(names) and len(names) == frame.shape[1]:
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise BadInputError(f"{source}: duplicated column names in the header: {duplicated}")


def _strings(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The column as an Arrow string array (zero-copy for pandas' Arrow-backed strings)."""
    if not (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object):
        series = series.astype("string")
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # An object column holding non-strings (e.g. from Parquet): render each value as text.
        array = pa.array(series.astype("string"), from_pandas=True)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.large_string())
    return array


def _np(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False)


def _series(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    # Set the index, never pass it: pd.Series(series, index=...) would align on labels, not positions.
    series = array.to_pandas()
    series.index = index
    return series


def _null_unless(ok: pa.Array | pa.ChunkedArray, text: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pc.if_else(ok, text, pa.scalar(None, text.type))


def _int_array(parsed: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    valid = _np(pc.is_valid(parsed)).astype(bool)
    values = _np(pc.fill_null(parsed, 0)).astype("int64", copy=False)
    return pd.Series(pd.arrays.IntegerArray(values, ~valid), index=index)


def _to_int(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    present = series.notna().to_numpy()
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("Int64"), np.zeros(len(series), dtype=bool)
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 1e18)
        ints = np.where(ok, values, 0).astype("int64")
        return pd.Series(pd.arrays.IntegerArray(ints, ~ok), index=series.index), present & ~ok
    text = _strings(series)
    try:
        # Fast path: Arrow's strict cast accepts a subset of what the slow path accepts ("007" but
        # not " 7", "+7" or "7.0") and gives the same values, so it only saves time.
        parsed = pc.cast(text, pa.int64())
        low, high = pc.min_max(parsed).values()
        if low.as_py() is None or (low.as_py() > -(10**18) and high.as_py() < 10**18):
            return _int_array(parsed, series.index), np.zeros(len(series), dtype=bool)
    except pa.ArrowInvalid:
        pass
    # Slow path, the definition: optional sign, at most 18 digits (always fits int64), optionally
    # an integral decimal part ("3.0", as written by tools that store ints as floats), whitespace trimmed.
    text = pc.utf8_trim_whitespace(text)
    ok = pc.fill_null(pc.match_substring_regex(text, _INT_PATTERN), False)
    digits = pc.replace_substring_regex(
        pc.replace_substring_regex(_null_unless(ok, text), r"\.0*$", ""), r"^\+", ""
    )
    parsed = pc.cast(digits, pa.int64())
    return _int_array(parsed, series.index), present & ~_np(ok).astype(bool)


def _to_float(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    present = series.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    else:
        text = _strings(series)
        try:
            # Fast path: Arrow's cast; what it accepts beyond the pattern (inf, nan) is non-finite
            # and so unparsable below, exactly as in the slow path.
            parsed = pc.cast(text, pa.float64())
        except pa.ArrowInvalid:
            text = pc.utf8_trim_whitespace(text)
            ok = pc.fill_null(pc.match_substring_regex(text, _FLOAT_PATTERN), False)
            parsed = pc.cast(_null_unless(ok, text), pa.float64())
        values = _np(pc.fill_null(parsed, np.nan)).astype("float64", copy=False)
    # inf/-inf (spelled out or overflowing, like 1e999) cannot be trusted downstream: unparsable.
    finite = np.isfinite(values)
    if not finite[present].all():
        values = np.where(finite, values, np.nan)
    return pd.Series(values, index=series.index, dtype="float64"), present & ~finite


def _to_bool(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    present = series.notna().to_numpy()
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean"), np.zeros(len(series), dtype=bool)
    text = pc.utf8_lower(pc.utf8_trim_whitespace(_strings(series)))
    is_true = _np(pc.is_in(text, value_set=pa.array(_TRUE))).astype(bool)
    is_false = _np(pc.is_in(text, value_set=pa.array(_FALSE))).astype(bool)
    ok = is_true | is_false
    return pd.Series(pd.arrays.BooleanArray(is_true, ~ok), index=series.index), present & ~ok


def _parse_timestamps(text: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """The definition: any ISO 8601 form pandas reads; a value without an offset is UTC.

    pandas parses ~2M strings/s; Arrow is ~10x faster but all-or-nothing. So the values in the
    common form both read identically are cast by Arrow, and only the others go through pandas.
    """
    common = pc.fill_null(pc.match_substring_regex(text, _TIMESTAMP_PATTERN), False)
    try:
        fast = pc.cast(_null_unless(common, text), pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # A value of the common shape that Arrow refuses (say, February 30): let pandas decide all.
        strings = _series(text, index)
        return pd.to_datetime(strings, utc=True, errors="coerce", format="ISO8601")
    values = _series(fast, index)
    others = np.flatnonzero(_np(pc.and_(pc.is_valid(text), pc.invert(common))).astype(bool))
    if len(others):
        rest = _series(text.take(pa.array(others)), index[others])
        parsed = pd.to_datetime(rest, utc=True, errors="coerce", format="ISO8601")
        parsed = parsed.where((parsed >= _NS_MIN) & (parsed <= _NS_MAX)).astype("datetime64[ns, UTC]")
        values.iloc[others] = parsed.to_numpy()
    return values


def _to_timestamp(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    present = series.notna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
    else:
        text = _strings(series)
        try:
            # Fast path: Arrow parses ISO 8601 with an offset ("Z", "+02:00") in one vectorised pass,
            # but refuses the whole column for one value it cannot parse.
            values = _series(pc.cast(text, pa.timestamp("ns", tz="UTC")), series.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = _parse_timestamps(pc.utf8_trim_whitespace(text), series.index)
    if values.dt.unit != "ns":
        # pandas picks the resolution; values outside the ns range cannot be stored: unparsable.
        values = values.where((values >= _NS_MIN) & (values <= _NS_MAX)).dt.as_unit("ns")
    values = values.astype("datetime64[ns, UTC]")
    return values, present & values.isna().to_numpy()


def coerce(raw: pd.DataFrame, pipeline: Pipeline) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Cast each declared column that exists to its type.

    Returns the typed frame (same index as ``raw``) and, per column, a boolean Series marking the
    values that were present but could not be parsed (non-finite floats included). Those values are
    null in the typed frame. Missing or extra columns are the table-level expectation's business.
    """
    converters = {
        "int": _to_int,
        "float": _to_float,
        "bool": _to_bool,
        "timestamp": _to_timestamp,
    }
    typed: dict[str, pd.Series] = {}
    unparsable: dict[str, pd.Series] = {}
    for name, column in pipeline.columns.items():
        if name not in raw.columns:
            continue
        series = raw[name]
        if column.type in converters:
            values, bad = converters[column.type](series)
        else:
            # Category/string: pandas' "string" dtype (not Categorical: GX handles plain strings better).
            values, bad = series.astype("string"), np.zeros(len(series), dtype=bool)
        typed[name] = values
        unparsable[name] = pd.Series(bad, index=raw.index, name=name)
    return pd.DataFrame(typed, index=raw.index), unparsable


# ----------------------------------------------------------------------------------------------------
# Validation.


@dataclasses.dataclass
class ValidationOutcome:
    passed: bool
    rows: int
    validated: pd.DataFrame  # typed clean rows, the declared columns in order; empty on failure
    quarantined: pd.DataFrame  # raw values of failing rows + _quarantine_reasons + _row_number
    failures: list[dict[str, Any]]
    message: str
    result: dict[str, Any]  # the GX suite validation result, JSON-serialisable
    warnings: list[str] = dataclasses.field(default_factory=list)


def gx_context(project_root_dir: str | None = None) -> AbstractDataContext:
    """A GX data context: ephemeral, or a file context rooted at ``project_root_dir``; quiet either
    way (no progress bars in task logs). The one factory: ``GreatExpectationsHook`` calls it too."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if project_root_dir:
        context = gx.get_context(mode="file", project_root_dir=project_root_dir)
    else:
        context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@functools.cache
def _default_context() -> AbstractDataContext:
    return gx_context()


def _gx_suite(suite: Mapping[str, Any]) -> Any:
    import great_expectations as gx

    gx_suite = gx.ExpectationSuite(name=suite["name"], expectations=list(suite["expectations"]))
    # GX logs and drops an expectation it cannot build instead of raising: refuse a partial suite.
    if len(gx_suite.expectations) != len(suite["expectations"]):
        kept = {e.meta.get("check") for e in gx_suite.expectations}
        dropped = [e["meta"]["check"] for e in suite["expectations"] if e["meta"]["check"] not in kept]
        raise ConfigError(f"suite {suite['name']!r}: GX could not build the expectations {dropped}")
    return gx_suite


def _run_gx(
    frame: pd.DataFrame,
    suite: Mapping[str, Any],
    parameters: Mapping[str, Any],
    context: AbstractDataContext | None,
) -> Any:
    """Validate ``frame`` with GX (SUMMARY); returns the ExpectationSuiteValidationResult."""
    context = context if context is not None else _default_context()
    # add_or_update replaces the data source with a fresh one (no assets), so re-running is safe.
    datasource = context.data_sources.add_or_update_pandas(name="mlops_validation")
    asset = datasource.add_dataframe_asset(name=suite["name"])
    batch_definition = asset.add_batch_definition_whole_dataframe(name="partition")
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(_gx_suite(suite), result_format="SUMMARY", expectation_parameters=dict(parameters))


def gx_view(typed: pd.DataFrame, categorical: Collection[str] = ()) -> pd.DataFrame:
    """The typed frame as GX is shown it, for speed; every check gives the same answer on it.

    GX 1.24 evaluates expect_column_values_to_be_between on pandas extension dtypes with a Python
    function per value (`column.dtype in [int, float]` is false for Int64): ~10x slower than on
    numpy dtypes, 5x the whole validation for the churn schema. So nullable Int64 columns are shown
    as numpy int64 (no nulls) or float64 (nulls, and every value within 2**53, hence exact); a
    column with larger values keeps Int64 and the slow path.

    GX also copies the whole frame once per column-map expectation (to drop the column's nulls), and
    copying Arrow strings dominates that. The ``categorical`` columns (those checked against a value
    set) are shown as pandas Categorical: integer codes, a fraction of the cost.

    The row masks run on the typed frame itself, and are reconciled with GX's counts on every run.
    """
    columns: dict[str, Any] = {}
    for name in typed.columns:
        series = typed[name]
        if isinstance(series.dtype, pd.Int64Dtype):
            if not series.hasnans:
                columns[name] = series.to_numpy(dtype="int64")
                continue
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            if np.nanmax(np.abs(values), initial=0) <= 2**53:
                columns[name] = values
                continue
        elif name in categorical and isinstance(series.dtype, pd.StringDtype):
            columns[name] = series.astype("category").array
            continue
        columns[name] = series.array
    return pd.DataFrame(columns, index=typed.index, copy=False)


def gx_validate(
    typed: pd.DataFrame,
    suite: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    context: AbstractDataContext | None = None,
    run_name: str = "",
) -> Any:
    """Run the whole suite through GX on a coerced frame; one merged ExpectationSuiteValidationResult.

    The dtype checks run on the zero-row typed frame (they look only at dtypes, and must see the
    real ones); everything else runs on ``gx_view(typed, ...)``.
    """
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    dtype_checks = [e for e in suite["expectations"] if e["type"] in _DTYPE_CHECKS]
    data_checks = [e for e in suite["expectations"] if e["type"] not in _DTYPE_CHECKS]
    in_set = {e["kwargs"]["column"] for e in data_checks if e["type"] == "expect_column_values_to_be_in_set"}
    parts = [
        _run_gx(typed.iloc[0:0], {**suite, "expectations": dtype_checks}, parameters, context),
        _run_gx(gx_view(typed, in_set), {**suite, "expectations": data_checks}, parameters, context),
    ]
    results = [r for part in parts for r in part.results]
    successful = sum(1 for r in results if r.success)
    return ExpectationSuiteValidationResult(
        success=successful == len(results),
        results=results,
        suite_name=suite["name"],
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": successful,
            "unsuccessful_expectations": len(results) - successful,
            "success_percent": 100.0 * successful / len(results) if results else None,
        },
        meta={
            **parts[1].meta,
            "run_id": {"run_name": run_name, "run_time": dt.datetime.now(dt.UTC).isoformat()},
        },
        batch_id=parts[1].batch_id,
    )


def _plain_json(result: Any) -> dict[str, Any]:
    # A round trip through json leaves plain floats: GX's own renderer chokes on numpy 2 scalars
    # (num_to_str parses repr(), which is "np.float64(0.5)").
    return json.loads(json.dumps(result.to_json_dict()))


def _aware_utc(value: dt.datetime, name: str) -> pd.Timestamp:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got the naive {value!r}")
    return pd.Timestamp(value).tz_convert("UTC")


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return parameters[value["$PARAMETER"]]
    return value


def _as_bool(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=bool, na_value=False)
    return np.asarray(values, dtype=bool)


def row_mask(
    frame: pd.DataFrame, expectation: Mapping[str, Any], parameters: Mapping[str, Any]
) -> np.ndarray:
    """True where a row fails a row-level expectation, exactly as GX counts it (nulls ignored)."""
    kind = expectation["type"]
    kwargs = expectation["kwargs"]
    series = frame[kwargs["column"]]
    if kind == "expect_column_values_to_not_be_null":
        return series.isna().to_numpy()
    present = series.notna().to_numpy()
    if kind == "expect_column_values_to_be_in_set":
        return present & ~_as_bool(series.isin(kwargs["value_set"]))
    if kind == "expect_column_values_to_be_unique":
        return present & _as_bool(series.duplicated(keep=False))
    if kind == "expect_column_values_to_be_between":
        low = _resolve(kwargs.get("min_value"), parameters)
        high = _resolve(kwargs.get("max_value"), parameters)
        inside = np.ones(len(series), dtype=bool)
        if low is not None:
            inside &= _as_bool(series > low if kwargs.get("strict_min") else series >= low)
        if high is not None:
            inside &= _as_bool(series < high if kwargs.get("strict_max") else series <= high)
        return present & ~inside
    raise ValidationInternalError(f"no row mask is defined for the row-level expectation {kind!r}")


def _describe(failure: Mapping[str, Any]) -> str:
    if failure["unexpected_count"] is not None:
        text = f"{failure['check']}: {failure['unexpected_count']} rows"
        if failure["unexpected_percent"] is not None:
            text += f" ({failure['unexpected_percent']:.2f}%)"
        return text
    return f"{failure['check']}: observed {failure['observed_value']!r}"


@dataclasses.dataclass(frozen=True)
class _RowCheck:
    name: str  # e.g. "expect_column_values_to_be_in_set(plan)"
    kind: str
    column: str
    mask: np.ndarray  # True where the row fails


def _reasons(checks: list[_RowCheck], positions: np.ndarray) -> np.ndarray:
    """One "; "-joined reason string per failing row, built once per distinct failure pattern."""
    matrix = np.column_stack([check.mask[positions] for check in checks])
    patterns, inverse = np.unique(matrix, axis=0, return_inverse=True)
    texts = []
    for pattern in patterns:
        fired = [checks[i] for i in np.flatnonzero(pattern)]
        unparsable = {c.column for c in fired if c.kind == TYPE_CHECK}
        # An unparsable value is null in the typed frame, so a not-null check fails on it too: an
        # echo of the type failure, left out of the reason (GX's count still includes it).
        texts.append(
            "; ".join(
                c.name
                for c in fired
                if not (c.kind == "expect_column_values_to_not_be_null" and c.column in unparsable)
            )
        )
    return np.asarray(texts, dtype=object)[inverse.reshape(-1)]


def _quarantine(raw: pd.DataFrame, checks: list[_RowCheck], bad_rows: np.ndarray) -> pd.DataFrame:
    positions = np.flatnonzero(bad_rows)
    # Only the failing rows are copied, and reason strings are built for them alone.
    quarantined = raw.iloc[positions].reset_index(drop=True)
    reasons = _reasons(checks, positions) if len(positions) else np.empty(0, dtype=object)
    quarantined[QUARANTINE_REASONS] = reasons
    quarantined[ROW_NUMBER] = positions.astype("int64")
    return quarantined


def _gx_outcomes(result: Mapping[str, Any], by_check: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """GX's result per check name (GX reorders results); raises if GX could not evaluate one."""
    outcomes: dict[str, dict] = {}
    for item in result["results"]:
        check = item["expectation_config"]["meta"].get("check")
        if check not in by_check:
            raise ValidationInternalError(f"GX returned a result for an unknown expectation: {check!r}")
        exception = item.get("exception_info") or {}
        if exception.get("raised_exception"):
            raise ValidationInternalError(
                f"GX could not evaluate {check}: {exception.get('exception_message')}"
            )
        outcomes[check] = item
    if set(outcomes) != set(by_check):
        raise ValidationInternalError(f"GX returned no result for {sorted(set(by_check) - set(outcomes))}")
    return outcomes


def _failure(check: str, expectation: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "check": check,
        "type": expectation["type"],
        "column": expectation["kwargs"].get("column"),
        "level": expectation["meta"]["level"],
        "unexpected_count": summary.get("unexpected_count"),
        "unexpected_percent": summary.get("unexpected_percent"),
        "observed_value": summary.get("observed_value"),
    }


def _empty_quarantine(raw: pd.DataFrame) -> pd.DataFrame:
    empty = raw.iloc[0:0].reset_index(drop=True)
    empty[QUARANTINE_REASONS] = pd.Series([], dtype=object)
    empty[ROW_NUMBER] = pd.Series([], dtype="int64")
    return empty


def _empty_typed(pipeline: Pipeline) -> pd.DataFrame:
    empty = pd.DataFrame({name: pd.Series([], dtype="string") for name in pipeline.columns})
    return coerce(empty, pipeline)[0]


def _shape_failure(
    raw: pd.DataFrame,
    pipeline: Pipeline,
    suite: Mapping[str, Any],
    parameters: Mapping[str, Any],
    context: AbstractDataContext | None,
    run_name: str,
) -> ValidationOutcome | None:
    """A failed outcome if the columns are not exactly the declared ones, else None."""
    declared = list(pipeline.columns)
    missing = [c for c in declared if c not in raw.columns]
    extra = [str(c) for c in raw.columns if c not in pipeline.columns]
    duplicated = sorted({str(c) for c in raw.columns[raw.columns.duplicated()]})
    if not (missing or extra or duplicated):
        return None
    # GX still runs the expectations that need no column, so the result and Data Docs show the failure.
    shape_only = {**suite, "expectations": [e for e in suite["expectations"] if "column" not in e["kwargs"]]}
    result = _run_gx(raw, shape_only, parameters, context)
    result.meta["run_id"] = {"run_name": run_name, "run_time": dt.datetime.now(dt.UTC).isoformat()}
    what = "; ".join(
        text
        for text in (
            f"missing {missing}" if missing else "",
            f"unexpected {extra}" if extra else "",
            f"duplicated {duplicated}" if duplicated else "",
        )
        if text
    )
    failure = {
        "check": "expect_table_columns_to_match_set",
        "type": "expect_table_columns_to_match_set",
        "column": None,
        "level": TABLE,
        "unexpected_count": None,
        "unexpected_percent": None,
        "observed_value": [str(c) for c in raw.columns],
    }
    return ValidationOutcome(
        passed=False,
        rows=len(raw),
        validated=_empty_typed(pipeline),
        quarantined=_empty_quarantine(raw),
        failures=[failure],
        message=(
            f"{run_name}: partition FAILED: expect_table_columns_to_match_set: the columns do not match the "
            f"declared schema ({what}); expected exactly {declared}"
        ),
        result=_plain_json(result),
    )


def validate_partition(
    raw: pd.DataFrame,
    pipeline: Pipeline,
    suite: Mapping[str, Any],
    *,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    context: AbstractDataContext | None = None,
) -> ValidationOutcome:
    """Validate one partition: GX decides pass/fail and counts, our masks find the failing rows.

    The partition fails if a table-level expectation fails or the share of rows failing row-level
    expectations exceeds validation.max_quarantine_fraction; otherwise the failing rows are
    quarantined and the rest validated. ``interval_end`` is exclusive; both must be tz-aware.
    """
    expected = build_suite(pipeline)["meta"]["fingerprint"]
    if suite.get("name") != pipeline.name or suite.get("meta", {}).get("fingerprint") != expected:
        raise ConfigError(
            f"the suite {suite.get('name')!r} does not match pipelines/{pipeline.name}.yaml (stale or "
            "another pipeline's); load it with load_suite, after `make suites`"
        )
    start = _aware_utc(interval_start, "interval_start")
    end = _aware_utc(interval_end, "interval_end")
    parameters = {"interval_start": start.to_pydatetime(), "interval_end": end.to_pydatetime()}
    run_name = f"{pipeline.name} [{start.isoformat()}, {end.isoformat()})"

    # Missing or extra columns fail at once: no type check means anything without the declared columns.
    shape = _shape_failure(raw, pipeline, suite, parameters, context, run_name)
    if shape is not None:
        return shape

    rows = len(raw)
    declared = list(pipeline.columns)
    typed, unparsable = coerce(raw, pipeline)
    typed = typed[declared]
    result = _plain_json(gx_validate(typed, suite, parameters, context=context, run_name=run_name))
    by_check = {e["meta"]["check"]: e for e in suite["expectations"]}
    outcomes = _gx_outcomes(result, by_check)

    failures: list[dict[str, Any]] = []
    checks: list[_RowCheck] = []
    # Type-coercion failures are computed by coerce, not by GX: the typed frame GX sees holds nulls
    # where the unparsable values were.
    for name in declared:
        bad = unparsable[name].to_numpy()
        count = int(bad.sum())
        if count:
            present = int(raw[name].notna().sum())
            check = _check_name(TYPE_CHECK, name)
            failures.append(
                {
                    "check": check,
                    "type": TYPE_CHECK,
                    "column": name,
                    "level": ROW,
                    "unexpected_count": count,
                    "unexpected_percent": 100.0 * count / present,
                    "observed_value": f"{count} values not parseable as {pipeline.columns[name].type}",
                    "source": "coerce",
                }
            )
            checks.append(_RowCheck(check, TYPE_CHECK, name, bad))
    for check, expectation in by_check.items():
        summary = outcomes[check].get("result") or {}
        if expectation["meta"]["level"] == ROW:
            mask = row_mask(typed, expectation, parameters)
            count = int(mask.sum())
            if count != summary.get("unexpected_count"):
                raise ValidationInternalError(
                    f"{check}: the row mask finds {count} failing rows but GX counts "
                    f"{summary.get('unexpected_count')}; the mask must mean exactly what GX means"
                )
            if count:
                checks.append(_RowCheck(check, expectation["type"], expectation["kwargs"]["column"], mask))
        if not outcomes[check]["success"]:
            failures.append(_failure(check, expectation, summary))

    bad_rows = np.zeros(rows, dtype=bool)
    for row_check in checks:
        bad_rows |= row_check.mask
    n_bad = int(bad_rows.sum())
    share = n_bad / rows if rows else 0.0
    threshold = pipeline.validation.max_quarantine_fraction
    quarantined = _quarantine(raw, checks, bad_rows)

    table_failures = [f for f in failures if f["level"] == TABLE]
    row_failures = sorted((f for f in failures if f["level"] == ROW), key=lambda f: -f["unexpected_count"])
    why = []
    if table_failures:
        why.append("table-level expectations failed: " + "; ".join(_describe(f) for f in table_failures))
    if share > threshold:
        why.append(
            f"{n_bad} of {rows} rows ({share:.2%}) failed row-level expectations, above "
            f"validation.max_quarantine_fraction {threshold:.2%}; top: "
            + "; ".join(_describe(f) for f in row_failures[:3])
        )
    warnings: list[str] = []
    if why:
        validated = typed.iloc[0:0].reset_index(drop=True)
        message = f"{run_name}: partition FAILED: " + " | ".join(why)
    else:
        validated = typed.iloc[np.flatnonzero(~bad_rows)] if n_bad else typed
        validated = validated.reset_index(drop=True)
        message = f"{run_name}: partition passed: {rows} rows, {rows - n_bad} validated, {n_bad} quarantined"
        if n_bad:
            warnings.append(
                f"{n_bad} of {rows} rows ({share:.2%}) quarantined, within validation.max_quarantine_fraction "
                f"{threshold:.2%}: " + "; ".join(_describe(f) for f in row_failures)
            )
    if failures:
        message += ". Failed expectations: " + "; ".join(_describe(f) for f in failures)
    return ValidationOutcome(
        passed=not why,
        rows=rows,
        validated=validated,
        quarantined=quarantined,
        failures=failures,
        message=message,
        result=result,
        warnings=warnings,
    )


# ----------------------------------------------------------------------------------------------------
# Data Docs.


def render_data_docs(result: Mapping[str, Any] | Any) -> str:
    """A GX Data Docs HTML page for one validation result (a result object or its JSON dict)."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    if isinstance(result, ExpectationSuiteValidationResult):
        result = _plain_json(result)
    result = ExpectationSuiteValidationResultSchema().load(dict(result))
    document = ValidationResultsPageRenderer().render(result)
    return DefaultJinjaPageView().render(document)


# ----------------------------------------------------------------------------------------------------
# CLI: `make suites` and the staleness check.


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.validation", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        choices=["suites", "check"],
        help="suites: (re)write every suite; check: exit 1 if any is stale",
    )
    parser.add_argument(
        "--include", type=Path, default=Path("include"), help="the include/ folder (default: ./include)"
    )
    args = parser.parse_args(argv)
    pipelines = discover(args.include / "pipelines")
    status = 0
    for pipeline in pipelines.values():
        if isinstance(pipeline, ConfigError):
            print(f"error: {pipeline}", file=sys.stderr)
            status = 1
            continue
        if args.command == "suites":
            path = write_suite(pipeline, args.include)
            print(f"wrote {path}")
        else:
            try:
                load_suite(pipeline, args.include)
            except ConfigError as exc:
                print(f"stale: {exc}", file=sys.stderr)
                status = 1
            else:
                print(f"up to date: {suite_path(pipeline, args.include)}")
    if not pipelines:
        print(f"error: no pipelines under {args.include / 'pipelines'}", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(_main())
