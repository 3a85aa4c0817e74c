"""Reading a raw partition file into strings, and coercing those strings to the declared types.

``parse_file`` turns one file's bytes (CSV or Parquet) into a DataFrame without converting a value
(CSV columns stay strings), refusing a file that cannot be read at all with ``BadInputError``.
``coerce`` then casts each declared column to its type and marks the values that could not be
parsed; those become row-level failures in ``mlops.validation``.

Pure Python: no Airflow import (nor ``great_expectations``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops.config.pipeline import OTHER, Pipeline

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


def parse_file(
    data: bytes, fmt: Literal["csv", "parquet"], *, source: str, null_values: Sequence[str] = ("",)
) -> pd.DataFrame:
    """Read a partition file. CSV columns are all read as strings so nothing is lost or converted.

    Nulls: exactly the pipeline's ``source.null_values`` (default: the empty field only). A literal
    "NA" or "null" stays text, so a category column checks it against its allowed values.
    The pyarrow engine is used because it refuses a row with a wrong field count anywhere (pandas'
    C engine silently pads a short last line, which is what a truncated file looks like) and invalid
    UTF-8, and because it is several times faster.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"{source}: unknown format {fmt!r}; expected 'csv' or 'parquet'")
    if not data:
        raise BadInputError(f"{source}: the file is empty (0 bytes)")
    data = _decompressed(data, source)
    try:
        frame = _read_csv(data, source, null_values) if fmt == "csv" else _read_parquet(data, source)
    except BadInputError:
        raise
    except (csv.Error, pa.ArrowException, ValueError, TypeError, OverflowError, OSError) as exc:
        # Whatever else a reader raises on these bytes is this file's problem, never a task's crash
        # (that would be retried on the same bytes); named by its kind, not by the bytes it quotes.
        raise BadInputError(
            f"{source}: not a readable {fmt} file: {type(exc).__name__}: {_printable(exc)}"
        ) from None
    if len(frame) == 0:
        raise BadInputError(f"{source}: the file has a header but no rows")
    return frame


def _read_csv(data: bytes, source: str, null_values: Sequence[str]) -> pd.DataFrame:
    # A cut file (a copy still running, a truncated transfer) ends inside a row, often inside its
    # last field, where a shorter value still parses ("63.6" read as "63"): every line ends.
    if not data.endswith((b"\n", b"\r")):
        raise BadInputError(
            f"{source}: not a complete CSV file (truncated, or still being written?): it does not end "
            f"with a line break, so its last line (line {_line_count(data) + 1}) may be cut short; land "
            "the complete file, ending with a newline"
        )
    # Arrow's reader lets an unterminated quote run to the end of the file, swallowing the rows
    # after it. Every quote in valid (RFC 4180) CSV is paired, an escaped one doubled: count them.
    if data.count(b'"') % 2:
        raise BadInputError(
            f"{source}: not a readable CSV file (corrupt or truncated?): an unterminated quote"
        )
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            engine="pyarrow",
            keep_default_na=False,
            na_values=list(null_values),
        )
    except pd.errors.EmptyDataError:
        raise BadInputError(f"{source}: the file has no rows (it is blank or holds only a header)") from None
    except (pd.errors.ParserError, pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if "straddling" in str(exc):
            raise BadInputError(
                f"{source}: a field is larger than the CSV reader's block ({_BLOCK_MIB} MiB); "
                "split the field or land the data as Parquet"
            ) from None
        raise BadInputError(
            f"{source}: not a readable CSV file (corrupt or truncated?): {_where(exc, data)}"
        ) from None
    _check_header(data, frame, source)
    return frame


def _read_parquet(data: bytes, source: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise BadInputError(
            f"{source}: not a readable Parquet file (corrupt or truncated?): {_printable(exc)}"
        ) from None


def _line_count(data: bytes) -> int:
    return len(_LINE_BREAK.findall(data))


_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK_MIB = 1  # Arrow's CSV reader's default block size, through pandas


def _decompressed(data: bytes, source: str) -> bytes:
    """A ``.gz`` file's content; a mismatch between the name and the bytes is named, not guessed."""
    import gzip
    import zlib

    gzipped = data[:2] == _GZIP_MAGIC
    named_gz = source.lower().endswith(".gz")
    if named_gz and not gzipped:
        raise BadInputError(f"{source}: named .gz but not gzip data (rename it, or compress it)")
    if gzipped and not named_gz:
        raise BadInputError(f"{source}: gzip data in a file not named .gz (name it .csv.gz)")
    if not gzipped:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadInputError(f"{source}: a corrupt or truncated gzip file: {exc}") from None


_LINE_BREAK = re.compile(rb"\r\n|\n|\r")  # the line ends Arrow's reader accepts
# Arrow quotes the offending row after its field counts ("Expected 13 columns, got 2: <row>"): the row
# may hold anything the file does (a secret, when the file is not what it seems), so it is dropped.
_QUOTED_ROW = re.compile(r"(Expected \d+ columns, got \d+):.*", re.DOTALL)
_FIELD_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")


def _printable(exc: BaseException, limit: int = 120) -> str:
    """A parser's message without the content it quotes: a corrupt file's bytes garble logs, and
    whatever a file holds must not reach a page, a log or a notification through an error."""
    text = _QUOTED_ROW.sub(r"\1", str(exc))
    clean = "".join(c if c.isprintable() and c != "\ufffd" else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit] + " ..."


def _where(exc: BaseException, data: bytes) -> str:
    """Arrow's message for a row of the wrong width, with the row's line number in place of the row."""
    found = _FIELD_COUNT.search(str(exc))
    if not found:
        return _printable(exc)
    expected = int(found.group(1))
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    reader = csv.reader(text)
    try:
        for row in reader:
            if len(row) != expected:
                return f"line {reader.line_num} has {len(row)} fields where the header has {expected}"
    except csv.Error:
        return f"line {reader.line_num + 1} cannot be split into fields ({_printable(exc)})"
    return _printable(exc)


def _check_header(data: bytes, frame: pd.DataFrame, source: str) -> None:
    # pandas renames duplicated header names ("a", "a.1"); a duplicated column is a broken file.
    first_line = _LINE_BREAK.split(data, maxsplit=1)[0]
    try:
        names = next(csv.reader([first_line.decode("utf-8")]), [])
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{source}: the header is not valid UTF-8: {exc}") from None
    except csv.Error:
        raise BadInputError(f"{source}: the header (line 1) cannot be split into fields") from None
    if len(set(names)) != len(names) and len(names) == frame.shape[1]:
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise BadInputError(f"{source}: duplicated column names in the header: {duplicated}")


# ----------------------------------------------------------------------------------------------------
# Coercing to the declared types.


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
    if pd.api.types.is_unsigned_integer_dtype(series.dtype) and series.dtype.itemsize == 8:
        # A uint64 beyond int64 (2**63 and up) does not fit the declared int: unparsable, as its
        # CSV spelling would be.
        values = series.to_numpy(dtype="uint64", na_value=0)
        ok = present & (values < 2**63)
        ints = np.where(ok, values, 0).astype("int64")
        return pd.Series(pd.arrays.IntegerArray(ints, ~ok), index=series.index), present & ~ok
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


_CONVERTERS = {"int": _to_int, "float": _to_float, "bool": _to_bool, "timestamp": _to_timestamp}


def coerce_column(series: pd.Series, kind: str) -> pd.Series:
    """One column cast to a declared type as ``coerce`` casts it (unparsable values become null)."""
    return _CONVERTERS[kind](series)[0] if kind in _CONVERTERS else series.astype("string")


def infer_type(series: pd.Series) -> str:
    """The narrowest column type every present value of ``series`` parses as, by the converters
    ``coerce`` applies: int, then float, bool, timestamp; else string. A column with no value is string.
    """
    if not series.notna().any():
        return "string"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "timestamp"
    text = series if series.dtype == object or pd.api.types.is_string_dtype(series.dtype) else None
    if text is None:  # a typed (Parquet) numeric column
        return "int" if pd.api.types.is_integer_dtype(series.dtype) else "float"
    for name, convert in (
        ("int", _to_int),
        ("float", _to_float),
        ("bool", _to_bool),
        ("timestamp", _to_timestamp),
    ):
        if not convert(text.astype("string"))[1].any():
            return name
    return "string"


_Converter = Callable[[pd.Series], tuple[pd.Series, np.ndarray]]


def _converted(convert: _Converter, series: pd.Series, name: str, kind: str) -> tuple[pd.Series, np.ndarray]:
    """``convert(series)``, refusing a column of a stored type it cannot take (a Parquet list, a
    decimal beyond float) with an error that names the column, never a crash of the gate."""
    try:
        return convert(series)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise BadInputError(
            f"column {name!r}: values stored as {series.dtype} cannot be read as {kind} "
            f"({type(exc).__name__}: {_printable(exc)})"
        ) from None


def coerce(raw: pd.DataFrame, pipeline: Pipeline) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Cast each declared column that exists to its type.

    Values of an open category outside its list become ``__other__``.
    Returns the typed frame (same index as ``raw``) and, per column, a boolean Series marking the
    values that were present but could not be parsed (non-finite floats included). Those values are
    null in the typed frame. Missing or extra columns are the table-level expectation's business.
    """
    converters = _CONVERTERS
    typed: dict[str, pd.Series] = {}
    unparsable: dict[str, pd.Series] = {}
    for name, column in pipeline.columns.items():
        if name not in raw.columns:
            continue
        series = raw[name]
        if column.type in converters:
            values, bad = _converted(converters[column.type], series, name, column.type)
        else:
            # Category/string: pandas' "string" dtype (not Categorical: GX handles plain strings better).
            values, bad = series.astype("string"), np.zeros(len(series), dtype=bool)
            if column.open:
                # An open category keeps its rows: a value outside the list is counted as __other__
                # (the raw file in the lake still holds what it was).
                values = values.where(values.isna() | values.isin(column.values or []), OTHER)
        typed[name] = values
        unparsable[name] = pd.Series(bad, index=raw.index, name=name)
    return pd.DataFrame(typed, index=raw.index), unparsable
