"""A request body read into typed rows, with the pipeline schema's own checks.

The service takes what the lake takes: values are coerced with the ingest's converters
(``mlops.ingest.parsing.coerce``) and checked with the row-level expectations of the pipeline's
generated suite (``mlops.ingest.suite.build_suite``, evaluated by ``mlops.ingest.validation.row_mask``),
so a row the gate would quarantine is refused here, and a row it would pass is scored as the batch
scorer scores it. Every refused value is named: its row (from 0, in the body's order), its field
and why. Only the features (every one required, null where the column allows it) and the key (if
sent, echoed in the answer) are read; other fields are ignored. Pure Python: no Airflow, no GX.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.ingest.parsing import BadInputError, coerce, parse_file
from mlops.ingest.suite import ROW, build_suite
from mlops.ingest.validation import row_mask

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline

# A body of more rows is refused (413): one request holds the event loop while it is scored.
MAX_ROWS = 10_000
# The 422 answer lists this many bad values at most (and says how many there were).
MAX_ERRORS = 100
_SHOWN_CHARS = 40
# Row-level checks that do not apply to a request: keys may repeat across rows of one request, and
# an online row has no data interval for its event time.
_SKIPPED = {"expect_column_values_to_be_unique"}


@dataclass(frozen=True)
class RowError:
    """One refused value: ``row`` None when the whole column is missing from the body."""

    row: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


class BadBody(ValueError):
    """A body that cannot be read as rows at all (400), or too large (``status`` 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class BadRows(ValueError):
    """Rows with values the pipeline's schema refuses (422); ``errors`` name each one."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(
            f"{len(errors)} bad value(s); first: row {first.row}, {first.field}: {first.message}"
        )

    def detail(self) -> list[dict[str, Any]]:
        shown = [error.as_dict() for error in self.errors[:MAX_ERRORS]]
        if len(self.errors) > MAX_ERRORS:
            shown.append(
                {"row": None, "field": None, "message": f"... and {len(self.errors) - MAX_ERRORS} more"}
            )
        return shown


@dataclass(frozen=True)
class Rows:
    """The request's rows: ``typed`` holds the features (and the key, if sent) as the lake types them."""

    typed: pd.DataFrame
    has_key: bool

    def __len__(self) -> int:
        return len(self.typed)


class RowReader:
    """Reads request bodies for one pipeline; the checks are derived from its YAML once."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.read_columns = [*pipeline.features, pipeline.key]
        checked = set(self.read_columns)
        self.checks = [
            expectation
            for expectation in build_suite(pipeline)["expectations"]
            if expectation["meta"]["level"] == ROW
            and expectation["type"] not in _SKIPPED
            and expectation["kwargs"].get("column") in checked
        ]

    def read(self, body: bytes, content_type: str) -> Rows:
        """The body's rows, typed; raises ``BadBody`` or ``BadRows`` naming what is wrong."""
        kind = (content_type or "application/json").split(";", 1)[0].strip().lower()
        if kind in ("application/json", "text/json", ""):
            frame, errors = self._from_records(_records(body))
        elif kind in ("text/csv", "application/csv"):
            frame, errors = self._from_csv(body)
        else:
            raise BadBody(f"unsupported content type {kind!r}: send application/json or text/csv", status=415)
        absent = {e.field: np.zeros(len(frame), dtype=bool) for e in errors if e.row is not None}
        for error in errors:
            if error.row is not None:
                absent[error.field][error.row] = True
        typed, value_errors = self._typed(frame, absent)
        errors.extend(value_errors)
        if errors:
            order = {name: i for i, name in enumerate(self.read_columns)}
            errors.sort(key=lambda e: (-1 if e.row is None else e.row, order.get(e.field, len(order))))
            raise BadRows(errors)
        return Rows(typed=typed, has_key=self.pipeline.key in typed.columns)

    def _from_records(self, records: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[RowError]]:
        import pandas as pd

        errors: list[RowError] = []
        columns: dict[str, list[Any]] = {}
        for name in self.read_columns:
            values = [record.get(name, _ABSENT) for record in records]
            absent = [i for i, value in enumerate(values) if value is _ABSENT]
            if name == self.pipeline.key and len(absent) == len(values):
                continue  # the key is optional; sent, it must be in every row
            if absent:
                errors.extend(
                    RowError(i, name, "missing: send a value, or null where allowed") for i in absent
                )
                values = [None if value is _ABSENT else value for value in values]
            columns[name] = values
        return pd.DataFrame(columns, index=pd.RangeIndex(len(records))), errors

    def _from_csv(self, body: bytes) -> tuple[pd.DataFrame, list[RowError]]:
        try:
            frame = parse_file(
                body, "csv", source="the request body", null_values=self.pipeline.source.null_values
            )
        except BadInputError as exc:
            raise BadBody(str(exc)) from None
        if len(frame) > MAX_ROWS:
            raise BadBody(f"{len(frame)} rows in one request; at most {MAX_ROWS}", status=413)
        errors = [
            RowError(None, name, "missing column: every feature is required")
            for name in self.pipeline.features
            if name not in frame.columns
        ]
        wanted = [name for name in self.read_columns if name in frame.columns]
        return frame[wanted].reset_index(drop=True), errors

    def _typed(
        self, frame: pd.DataFrame, absent: Mapping[str, np.ndarray]
    ) -> tuple[pd.DataFrame, list[RowError]]:
        """Coerced as the ingest coerces, then checked as the gate checks; the errors found."""
        try:
            typed, unparsable = coerce(frame, self.pipeline)
        except BadInputError as exc:
            raise BadBody(str(exc)) from None
        errors: list[RowError] = []
        for name, bad in unparsable.items():
            kind = self.pipeline.columns[name].type
            for i in np.flatnonzero(bad.to_numpy()):
                errors.append(RowError(int(i), name, f"not a valid {kind}: {_shown(frame[name].iloc[i])}"))
        for check in self.checks:
            name = check["kwargs"]["column"]
            if name not in typed.columns:
                continue
            # An unparsable value is null once typed: its not-null failure would only echo the type's.
            # A missing value (``absent``) is reported once, as missing.
            failing = row_mask(typed, check, {}) & ~unparsable[name].to_numpy()
            if name in absent:
                failing &= ~absent[name]
            for i in np.flatnonzero(failing):
                errors.append(RowError(int(i), name, _message(check, frame[name].iloc[i])))
        return typed, errors


_ABSENT = object()


def _records(body: bytes) -> list[dict[str, Any]]:
    """``{"records": [...]}`` or a bare list of objects, refused as a whole when it is neither."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(f"the body is not valid JSON: {exc}") from None
    records = data.get("records") if isinstance(data, Mapping) else data
    shape = 'send {"records": [{"feature": value, ...}, ...]} or a JSON list of such objects'
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise BadBody(f"no records in the body: {shape}")
    if not records:
        raise BadBody("the body holds no rows")
    if len(records) > MAX_ROWS:
        raise BadBody(f"{len(records)} rows in one request; at most {MAX_ROWS}", status=413)
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise BadBody(f"row {i} is a JSON {type(record).__name__}, not an object: {shape}")
    return list(records)


def _shown(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _message(check: Mapping[str, Any], value: Any) -> str:
    kind, kwargs = check["type"], check["kwargs"]
    if kind == "expect_column_values_to_not_be_null":
        return "null, but the column is not nullable"
    if kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        span = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        return f"{_shown(value)} is outside {span}"
    if kind == "expect_column_values_to_be_in_set":
        return f"{_shown(value)} is not one of {list(kwargs['value_set'])}"
    return f"{kind} fails on {_shown(value)}"
