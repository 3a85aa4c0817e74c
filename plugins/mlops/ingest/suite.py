"""The Great Expectations suite of a pipeline: generated from its YAML, fingerprinted, committed.

The pipeline YAML is the single source of truth for the rules. ``build_suite`` turns it into a GX
suite, which ``python -m mlops suites write`` writes to ``include/gx/<pipeline>.json`` (committed
and reviewed like code). The suite carries a fingerprint of its rules, so the runtime refuses a suite
that no longer matches the YAML instead of silently checking yesterday's rules. Every expectation's
meta names its level: ``TABLE`` (fails the partition) or ``ROW`` (quarantines the failing rows).

Pure Python: no Airflow import, and no pandas, pyarrow or ``great_expectations`` either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.config.pipeline import OTHER, ConfigError, Pipeline

# Bump when build_suite's output changes for the same YAML: the fingerprint then marks every
# committed suite stale, and `make suites` regenerates them.
SUITE_GENERATOR_VERSION = 1

ROW = "row"
TABLE = "table"

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


def check_name(kind: str, column: str | None) -> str:
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
        check = check_name(kind, kwargs.get("column"))
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
            note = f"values; open: any other value is counted as {OTHER!r}" if column.open else "values"
            add(ROW, "expect_column_values_to_be_in_set", note, column=name, value_set=column.categories)
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
            "note": "Generated by `make suites` (python -m mlops suites write); do not edit by hand.",
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
    fix = "run `make suites` (python -m mlops suites write) and commit the result"
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
