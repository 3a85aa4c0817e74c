"""Validate one day's partition against the pipeline's Great Expectations suite.

The suite itself is generated from the pipeline YAML by ``mlops.suite`` (written and checked by this
module's CLI, ``python -m mlops suites write|check``); raw files are read and coerced by
``mlops.parsing``; Data Docs are rendered by ``mlops.data_docs``.

GX decides pass/fail and counts (``result_format="SUMMARY"``, which is cheap). Which rows failed is
found by our own vectorised masks, derived from the same expectation configs; asking GX for complete
unexpected-index lists is several times slower. After every run the mask counts are reconciled with
GX's ``unexpected_count``, so the masks cannot drift from what GX means (nulls included: GX's column
map expectations ignore nulls, and so do the masks).

Pure Python: no Airflow import. ``great_expectations`` takes seconds to import, so it is imported
inside the functions that need it, never at module level.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops.config.pipeline import ConfigError, Pipeline
from mlops.ingest.data_docs import plain_json
from mlops.ingest.parsing import coerce
from mlops.ingest.suite import ROW, TABLE, build_suite, check_name

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

QUARANTINE_REASONS = "_quarantine_reasons"
ROW_NUMBER = "_row_number"
# Coercion failures are row-level failures found by `coerce`, not by GX: once a value is coerced to
# null the typed frame no longer holds it, so GX cannot see it. They are named like an expectation so
# that reasons and messages read the same way.
TYPE_CHECK = "expect_column_values_to_be_of_type"
_DTYPE_CHECKS = {"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"}


class ValidationInternalError(RuntimeError):
    """Our row masks disagree with GX, or GX could not evaluate an expectation: a bug, not bad data."""


# ----------------------------------------------------------------------------------------------------
# Running GX, finding the failing rows, splitting the partition.


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


def shown_names(names: list[str], limit: int = 10) -> list[str]:
    """Header names as a message quotes them: a file that is not what it claims (a key, a log) has its
    first line read as the header, so each name is cut short and only the first few are shown."""
    cut = [name if len(name) <= 40 else name[:37] + "..." for name in names[:limit]]
    return cut + ([f"... {len(names) - limit} more"] if len(names) > limit else [])


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
            f"unexpected {shown_names(extra)}" if extra else "",
            f"duplicated {shown_names(duplicated)}" if duplicated else "",
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
        "observed_value": shown_names([str(c) for c in raw.columns], 40),
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
        result=plain_json(result),
    )


def validate_partition(
    raw: pd.DataFrame,
    pipeline: Pipeline,
    suite: Mapping[str, Any],
    *,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    period: str | None = None,
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
    event_check = check_name("expect_column_values_to_be_between", pipeline.event_time)
    period = period or f"[{start.isoformat()}, {end.isoformat()})"

    def describe(failure: Mapping[str, Any]) -> str:
        # The event-time check shares its expectation with min/max checks: say which one failed.
        text = _describe(failure)
        if failure["check"] != event_check:
            return text
        return f"event-time check ({pipeline.event_time} outside {period}): {text.split(': ', 1)[1]}"

    # Missing or extra columns fail at once: no type check means anything without the declared columns.
    shape = _shape_failure(raw, pipeline, suite, parameters, context, run_name)
    if shape is not None:
        return shape

    rows = len(raw)
    declared = list(pipeline.columns)
    typed, unparsable = coerce(raw, pipeline)
    typed = typed[declared]
    result = plain_json(gx_validate(typed, suite, parameters, context=context, run_name=run_name))
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
            check = check_name(TYPE_CHECK, name)
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
        why.append("table-level expectations failed: " + "; ".join(describe(f) for f in table_failures))
    if share > threshold:
        why.append(
            f"{n_bad} of {rows} rows ({share:.2%}) failed row-level expectations, above "
            f"validation.max_quarantine_fraction {threshold:.2%}; top: "
            + "; ".join(describe(f) for f in row_failures[:3])
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
                f"{threshold:.2%}: " + "; ".join(describe(f) for f in row_failures)
            )
    if failures:
        message += ". Failed expectations: " + "; ".join(describe(f) for f in failures)
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
# CLI: `make suites` and the staleness check.
