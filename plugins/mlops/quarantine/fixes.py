"""The declarative fixes of the pipeline YAML (``fixes:``) applied to quarantined rows at replay.

A fix is a list of steps (``mlops.config.pipeline.FixStep``), each on one column: ``map`` replaces
raw values (``{"N/A": null}``, ``{platinum: premium}``), ``default`` fills a null, ``scale``
multiplies a number (a unit conversion, cents to euros: ``0.01``). A step touches only the rows
whose quarantine reasons name its column, so a conversion never reaches a row that was quarantined
for something else. Values stay raw text, as landed: the replay parses and validates them again.
The config refuses a fix on the key column; ``key_unchanged`` checks it again on the result, for
fixes and submitted files alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.config.pipeline import NO_FIX, SUBMITTED_FIX, ConfigError
from mlops.ingest.validation import QUARANTINE_REASONS, ROW_NUMBER
from mlops.quarantine.summary import column_of, reasons_of

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import FixStep, Pipeline


class KeyChanged(ValueError):
    """A fix or a submitted file changed a key value: the replayed row would not be the row it was."""


def fix_steps(pipeline: Pipeline, name: str) -> list[FixStep]:
    """The steps of the fix ``name``, refusing a name the pipeline does not declare."""
    if name not in pipeline.fixes:
        known = [*pipeline.fixes, SUBMITTED_FIX, NO_FIX]
        raise ConfigError(
            f"pipelines/{pipeline.name}.yaml declares no fix {name!r} under fixes:; one of {known}"
        )
    return pipeline.fixes[name]


def _number_text(value: float, kind: str) -> str:
    # An int column keeps whole numbers as integers ("12", not "12.0"); anything else as Python
    # writes a float, which the parser reads back exactly.
    if kind == "int" and float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def apply_step(frame: pd.DataFrame, step: FixStep, pipeline: Pipeline) -> pd.DataFrame:
    """``frame`` (raw quarantined rows) with one step applied to the rows it is meant for."""
    import pandas as pd

    column = step.column
    named = frame[QUARANTINE_REASONS].map(lambda text: any(column_of(r) == column for r in reasons_of(text)))
    values = frame[column]
    text = values.astype("string")
    if step.map is not None:
        hit = named & text.isin(list(step.map)).fillna(False)
        new = text[hit].map(step.map)
    elif step.default is not None:
        hit = named & values.isna()
        new = pd.Series(step.default, index=values.index[hit])
    else:
        numbers = pd.to_numeric(text, errors="coerce")
        hit = named & numbers.notna()
        kind = pipeline.columns[column].type
        new = (numbers[hit] * step.scale).map(lambda v: _number_text(v, kind))
    fixed = frame.copy()
    if hit.any():
        fixed[column] = fixed[column].astype(object)  # raw text and nulls, whatever the stored dtype
        fixed.loc[hit, column] = new.astype(object).where(new.notna(), None)
    return fixed


def apply_fix(frame: pd.DataFrame, pipeline: Pipeline, name: str) -> pd.DataFrame:
    """The fix ``name`` applied to quarantined rows, step after step; the key is checked unchanged."""
    fixed = frame
    for step in fix_steps(pipeline, name):
        fixed = apply_step(fixed, step, pipeline)
    key_unchanged(frame, fixed, pipeline)
    return fixed


def key_unchanged(before: pd.DataFrame, after: pd.DataFrame, pipeline: Pipeline) -> None:
    """Refuse (``KeyChanged``, naming the rows) a result whose key differs from the rows' own."""
    from mlops.ingest.parsing import coerce_column

    kind = pipeline.columns[pipeline.key].type
    old = coerce_column(before[pipeline.key].astype("string"), kind).reset_index(drop=True)
    new = coerce_column(after[pipeline.key].astype("string"), kind).reset_index(drop=True)
    differs = (old != new).fillna(True) & ~(old.isna() & new.isna())
    if differs.any():
        rows = before[ROW_NUMBER].reset_index(drop=True)[differs].tolist()
        raise KeyChanged(
            f"{pipeline.name}: the key column {pipeline.key!r} changed in {len(rows)} row(s) "
            f"(_row_number {some_rows(rows)}): a replay never changes a key; fix it in the source and "
            "re-run the ingest of the day"
        )


def some_rows(rows: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")
