"""Declarative fixes: the config refuses what a fix must not do, and a step touches only its rows."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.unit.quarantine.conftest import with_fixes

from mlops.config.pipeline import ConfigError
from mlops.quarantine.fixes import KeyChanged, apply_fix, apply_step, key_unchanged

REASONS = "_quarantine_reasons"


def rows(**columns) -> pd.DataFrame:
    frame = pd.DataFrame(columns, dtype=object)
    frame["_row_number"] = range(len(frame))
    return frame


@pytest.mark.parametrize(
    ("fixes", "phrase"),
    [
        pytest.param(
            {"k": [{"column": "customer_id", "map": {"1": "2"}}]}, "key column 'customer_id'", id="key"
        ),
        pytest.param(
            {"k": [{"column": "colour", "default": "x"}]}, "column 'colour' is not declared", id="unknown"
        ),
        pytest.param(
            {"k": [{"column": "plan", "scale": 2}]}, "scale applies to int and float", id="scale-text"
        ),
        pytest.param(
            {"k": [{"column": "plan", "map": {"a": "b"}, "default": "c"}]}, "exactly one of", id="two"
        ),
        pytest.param({"k": [{"column": "plan"}]}, "exactly one of", id="none"),
        pytest.param({"k": [{"column": "tenure_months", "scale": 0}]}, "non-zero", id="zero"),
        pytest.param({"k": [{"column": "plan", "mapp": {"a": "b"}}]}, "unknown key", id="typo"),
        pytest.param({"submitted": [{"column": "plan", "default": "basic"}]}, "reserved", id="reserved"),
        pytest.param({"Bad-Name": [{"column": "plan", "default": "basic"}]}, "not a fix name", id="name"),
        pytest.param({"k": []}, "at least one step", id="empty"),
    ],
)
def test_the_config_refuses_a_bad_fix_naming_it(fixes: dict, phrase: str) -> None:
    with pytest.raises(ConfigError, match=r"churn\.yaml") as error:
        with_fixes(fixes)
    assert phrase in str(error.value)
    assert "fixes" in str(error.value)


def test_yaml_numbers_and_nulls_in_a_map_are_raw_text() -> None:
    pipeline = with_fixes({"k": [{"column": "tenure_months", "map": {"N/A": None, 999: 99}}]})
    assert pipeline.fixes["k"][0].map == {"N/A": None, "999": "99"}


def test_a_step_touches_only_the_rows_quarantined_for_its_column() -> None:
    pipeline = with_fixes()
    frame = rows(
        monthly_charges=["4999", "4999", "12.5"],
        **{
            REASONS: [
                "expect_column_values_to_be_between(monthly_charges)",
                "expect_column_values_to_be_in_set(plan)",
                "",
            ]
        },
    )
    fixed = apply_fix(frame.assign(customer_id=["1", "2", "3"]), pipeline, "charges_in_cents")
    # Row 1 was quarantined for its plan: its charge is left as it came, like row 2's.
    assert fixed["monthly_charges"].tolist() == ["49.99", "4999", "12.5"]


def test_map_default_and_scale_write_raw_text_the_parser_reads_back() -> None:
    pipeline = with_fixes(
        {
            "na": [{"column": "tenure_months", "map": {"N/A": None}}],
            "fill": [{"column": "late_payments", "default": 0}],
            "months": [{"column": "tenure_months", "scale": 12}],
        }
    )
    reason = (
        "expect_column_values_to_be_of_type(tenure_months); expect_column_values_to_be_between(late_payments)"
    )
    frame = rows(tenure_months=["N/A", "2"], late_payments=[None, "3"], **{REASONS: [reason, reason]})
    assert apply_step(frame, pipeline.fixes["na"][0], pipeline)["tenure_months"].tolist() == [None, "2"]
    assert apply_step(frame, pipeline.fixes["fill"][0], pipeline)["late_payments"].tolist() == ["0", "3"]
    # An int column keeps whole numbers as integers; text that is no number is left alone.
    assert apply_step(frame, pipeline.fixes["months"][0], pipeline)["tenure_months"].tolist() == ["N/A", "24"]


def test_an_unknown_fix_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no fix 'nope'.*'plan_renamed'.*'submitted'.*'none'"):
        apply_fix(rows(plan=["x"], **{REASONS: [""]}), with_fixes(), "nope")


def test_a_changed_key_is_refused_naming_the_row() -> None:
    pipeline = with_fixes()
    before = rows(customer_id=["1", "2", "3"])
    after = before.assign(customer_id=["1", "22", "3"])
    with pytest.raises(KeyChanged, match=r"changed in 1 row\(s\) \(_row_number 1\)"):
        key_unchanged(before, after, pipeline)
    key_unchanged(before, before.assign(customer_id=["1", "2", "3.0"]), pipeline)  # the same int
