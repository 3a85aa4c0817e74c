"""Partition validation: each kind of bad input is caught, named, and split off exactly."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.cli import suites
from mlops.config.pipeline import ConfigError, Pipeline, load_pipeline
from mlops.ingest import validation as v
from mlops.ingest.data_docs import render_data_docs
from mlops.ingest.parsing import BadInputError, coerce, parse_file
from mlops.ingest.suite import build_suite, load_suite, suite_path, write_suite

ROOT = Path(__file__).resolve().parents[3]
INCLUDE = ROOT / "include"
START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)


def churn_frame(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A clean raw partition of the churn schema: every value a string, as parse_file gives it."""
    rng = np.random.default_rng(seed)
    micros = rng.integers(0, 86_400_000_000, n)
    ts = pd.Timestamp(START) + pd.to_timedelta(micros, unit="us")
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n).astype(str),
            "event_ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "tenure_months": rng.integers(0, 61, n).astype(str),
            "monthly_charges": np.round(rng.uniform(5, 200, n), 2).astype(str),
            "data_usage_gb": np.round(rng.uniform(0, 500, n), 1).astype(str),
            "support_calls": rng.integers(0, 8, n).astype(str),
            "late_payments": rng.integers(0, 4, n).astype(str),
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "contract": rng.choice(["monthly", "annual", "two_year"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "payment_method": rng.choice(["card", "bank_transfer", "paypal", "invoice"], n),
            "autopay": rng.choice(["true", "false", "TRUE", "0", "1"], n),
            "churned": (rng.random(n) < 0.2).astype(int).astype(str),
        }
    )
    return frame.astype("str")


def run(raw: pd.DataFrame, pipeline: Pipeline, suite: dict) -> v.ValidationOutcome:
    outcome = v.validate_partition(raw, pipeline, suite, interval_start=START, interval_end=END)
    json.dumps(outcome.result)  # always JSON-serialisable
    json.dumps(outcome.failures)
    return outcome


def reasons_at(outcome: v.ValidationOutcome, row: int) -> str:
    match = outcome.quarantined.loc[outcome.quarantined[v.ROW_NUMBER] == row, v.QUARANTINE_REASONS]
    assert len(match) == 1, f"row {row} is not quarantined"
    return match.iloc[0]


def failed_checks(outcome: v.ValidationOutcome) -> set[str]:
    return {f["check"] for f in outcome.failures}


# ------------------------------------------------------------------------------------------------
# Unreadable files.


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_corrupt_file_is_bad_input() -> None:
    data = b'customer_id,plan\n1,"basic\n2,standard\n'  # an unterminated quote
    with pytest.raises(BadInputError, match=r"landing/churn/2026-01-05\.csv"):
        parse_file(data, "csv", source="landing/churn/2026-01-05.csv")
    with pytest.raises(BadInputError, match="not a readable Parquet file"):
        parse_file(b"PAR1 this is not parquet", "parquet", source="p.parquet")


def test_truncated_file_is_bad_input() -> None:
    data = to_csv(churn_frame(50))
    cut = data[: data.rindex(b",") - 3]  # the last line loses its final fields
    with pytest.raises(BadInputError, match="truncated"):
        parse_file(cut, "csv", source="cut.csv")
    # Invalid UTF-8 is refused too, instead of being decoded into something else.
    with pytest.raises(BadInputError, match=r"bad\.csv"):
        parse_file(b"customer_id,plan\n1,\xff\xfe\n", "csv", source="bad.csv")


def test_empty_file_is_bad_input() -> None:
    with pytest.raises(BadInputError, match=r"empty.csv: the file is empty \(0 bytes\)"):
        parse_file(b"", "csv", source="empty.csv")


def test_header_only_file_is_bad_input() -> None:
    header = ",".join(churn_frame(1).columns).encode()
    with pytest.raises(BadInputError, match=r"head\.csv: the file has a header but no rows"):
        parse_file(header + b"\n", "csv", source="head.csv")


def test_parse_file_keeps_raw_strings() -> None:
    data = b"customer_id,plan,late_payments\n007,basic,\n8,NA,3.0\n"
    raw = parse_file(data, "csv", source="s.csv")
    assert raw["customer_id"].tolist() == ["007", "8"]  # no int conversion, leading zeros kept
    assert raw["late_payments"].iloc[1] == "3.0"
    # By default only the empty field is null: a literal "NA" stays text, for the category check.
    assert raw["late_payments"].isna().iloc[0] and raw["plan"].iloc[1] == "NA"
    chosen = parse_file(data, "csv", source="s.csv", null_values=["", "NA"])
    assert chosen["plan"].isna().iloc[1]


# ------------------------------------------------------------------------------------------------
# Table-level failures.


def test_clean_frame_passes(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    outcome = run(raw, pipeline, suite)
    assert outcome.passed, outcome.message
    assert outcome.rows == len(raw) == len(outcome.validated)
    assert outcome.quarantined.empty and outcome.failures == [] and outcome.warnings == []
    assert list(outcome.validated.columns) == list(pipeline.columns)
    dtypes = outcome.validated.dtypes.astype(str).to_dict()
    assert dtypes["customer_id"] == "Int64" and dtypes["monthly_charges"] == "float64"
    assert dtypes["event_ts"] == "datetime64[ns, UTC]" and dtypes["autopay"] == "boolean"
    assert dtypes["plan"] == "string"
    assert outcome.validated["customer_id"].tolist() == raw["customer_id"].astype(int).tolist()
    assert outcome.result["success"] is True


def test_missing_column_fails_naming_it(pipeline: Pipeline, suite: dict) -> None:
    outcome = run(churn_frame().drop(columns=["region"]), pipeline, suite)
    assert not outcome.passed
    assert "expect_table_columns_to_match_set" in outcome.message and "missing ['region']" in outcome.message
    assert outcome.validated.empty and list(outcome.validated.columns) == list(pipeline.columns)
    assert failed_checks(outcome) == {"expect_table_columns_to_match_set"}
    assert outcome.result["success"] is False


def test_extra_column_fails_naming_it(pipeline: Pipeline, suite: dict) -> None:
    outcome = run(churn_frame().assign(surprise="x"), pipeline, suite)
    assert not outcome.passed
    assert "unexpected ['surprise']" in outcome.message
    assert outcome.validated.empty


def test_text_in_a_float_column_fails_as_unparsable(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw["monthly_charges"] = "about forty"
    outcome = run(raw, pipeline, suite)
    assert not outcome.passed
    assert "expect_column_values_to_be_of_type(monthly_charges)" in outcome.message
    assert "above validation.max_quarantine_fraction 5.00%" in outcome.message
    assert len(outcome.quarantined) == len(raw) and outcome.validated.empty
    # The not-null failure is an echo of the unparsable value, so the reason names the type only.
    assert set(outcome.quarantined[v.QUARANTINE_REASONS]) == {
        "expect_column_values_to_be_of_type(monthly_charges)"
    }
    assert (outcome.quarantined["monthly_charges"] == "about forty").all()  # the raw value, kept


def test_nan_flood_in_a_nullable_column_fails_the_table(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[raw.index[: len(raw) // 2], "data_usage_gb"] = None  # 50% nulls, 20% allowed
    outcome = run(raw, pipeline, suite)
    assert not outcome.passed
    assert (
        "table-level expectations failed: expect_column_values_to_not_be_null(data_usage_gb)"
        in outcome.message
    )
    assert outcome.quarantined.empty  # nulls are allowed row by row: the share is what fails
    # Below the allowed share, nulls pass.
    raw = churn_frame()
    raw.loc[raw.index[:100], "data_usage_gb"] = None
    assert run(raw, pipeline, suite).passed


def test_inf_flood_is_unparsable(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[raw.index[:300], "monthly_charges"] = "inf"
    raw.loc[raw.index[300:400], "monthly_charges"] = "-Infinity"
    outcome = run(raw, pipeline, suite)
    assert not outcome.passed
    assert reasons_at(outcome, 0) == "expect_column_values_to_be_of_type(monthly_charges)"
    assert sorted(outcome.quarantined[v.ROW_NUMBER]) == list(range(400))
    failure = next(
        f for f in outcome.failures if f["check"] == "expect_column_values_to_be_of_type(monthly_charges)"
    )
    assert failure["unexpected_count"] == 400 and failure["level"] == "row"


def test_row_count_spike_fails_the_table(pipeline: Pipeline, suite: dict) -> None:
    outcome = run(churn_frame(50_001), pipeline, suite)
    assert not outcome.passed
    assert "expect_table_row_count_to_be_between: observed 50001" in outcome.message
    assert outcome.validated.empty and outcome.quarantined.empty


def test_mean_out_of_range_fails_the_table(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw["tenure_months"] = "100"
    outcome = run(raw, pipeline, suite)
    assert not outcome.passed
    assert "expect_column_mean_to_be_between(tenure_months): observed 100.0" in outcome.message


# ------------------------------------------------------------------------------------------------
# Row-level failures: quarantined.


def test_unknown_categories_are_quarantined(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[[3, 7], "plan"] = ["gold", "Basic"]
    raw.loc[9, "region"] = None  # nullable: a null is not an unknown category
    outcome = run(raw, pipeline, suite)
    assert outcome.passed, outcome.message
    assert sorted(outcome.quarantined[v.ROW_NUMBER]) == [3, 7]
    assert reasons_at(outcome, 3) == "expect_column_values_to_be_in_set(plan)"
    assert outcome.quarantined["plan"].tolist() == ["gold", "Basic"]


def test_duplicate_keys_quarantine_both_rows(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[10, "customer_id"] = raw.loc[20, "customer_id"]
    outcome = run(raw, pipeline, suite)
    assert outcome.passed
    assert sorted(outcome.quarantined[v.ROW_NUMBER]) == [10, 20]
    assert reasons_at(outcome, 20) == "expect_column_values_to_be_unique(customer_id)"
    assert raw.loc[20, "customer_id"] not in set(outcome.validated["customer_id"].astype(str))


def test_event_time_outside_the_interval_is_quarantined(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[0:4, "event_ts"] = [
        "2026-01-05T00:00:00Z",  # the start: inside
        "2026-01-05T23:59:59.999999999Z",  # the last instant: inside
        "2026-01-06T00:00:00Z",  # the end is exclusive: outside
        "2026-01-04T23:59:59Z",  # before: outside
        "2026-01-06T01:00:00+02:00",  # 23:00 UTC on the 5th: inside
    ]
    outcome = run(raw, pipeline, suite)
    assert outcome.passed
    assert sorted(outcome.quarantined[v.ROW_NUMBER]) == [2, 3]
    assert reasons_at(outcome, 2) == "expect_column_values_to_be_between(event_ts)"
    assert outcome.validated["event_ts"].iloc[2] == pd.Timestamp("2026-01-05T23:00:00Z")


def test_one_percent_bad_rows_pass_with_a_warning(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame(2000)
    bad = {
        11: ("monthly_charges", "-3"),
        222: ("plan", "platinum"),
        333: ("tenure_months", "twelve"),
        444: ("support_calls", None),
        555: ("autopay", "maybe"),
        666: ("event_ts", "yesterday"),
        777: ("late_payments", "99"),
        888: ("churned", "2"),
        999: ("contract", None),
        1111: ("customer_id", "-5"),
    }
    for row, (column, value) in bad.items():
        raw.loc[row, column] = value
    raw.loc[1500, "customer_id"] = raw.loc[1501, "customer_id"]
    raw.loc[1600, ["plan", "monthly_charges"]] = ["gold", "9999"]  # two failures on one row
    # _row_number is the position in the file, whatever the frame's index.
    outcome = run(raw.set_axis(raw.index[::-1] * 3 + 7), pipeline, suite)
    assert outcome.passed, outcome.message
    expected = sorted([*bad, 1500, 1501, 1600])
    assert sorted(outcome.quarantined[v.ROW_NUMBER]) == expected
    assert outcome.rows == len(outcome.validated) + len(outcome.quarantined) == 2000
    assert len(outcome.warnings) == 1 and outcome.warnings[0].startswith(f"{len(expected)} of 2000 rows")
    assert reasons_at(outcome, 1600) == (
        "expect_column_values_to_be_between(monthly_charges); expect_column_values_to_be_in_set(plan)"
    )
    assert reasons_at(outcome, 333) == "expect_column_values_to_be_of_type(tenure_months)"
    assert reasons_at(outcome, 666) == "expect_column_values_to_be_of_type(event_ts)"
    assert reasons_at(outcome, 444) == "expect_column_values_to_not_be_null(support_calls)"
    # The quarantine keeps the raw strings; the validated rows are the others, in order, typed.
    row = outcome.quarantined.set_index(v.ROW_NUMBER).loc[555]
    assert row["autopay"] == "maybe" and row["customer_id"] == raw.loc[555, "customer_id"]
    kept = raw.drop(index=expected)["customer_id"].astype(int).tolist()
    assert outcome.validated["customer_id"].tolist() == kept


def test_quarantine_share_above_the_threshold_fails(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame(1000)
    raw.loc[raw.index[:51], "contract"] = "weekly"  # 5.1% > 5%
    outcome = run(raw, pipeline, suite)
    assert not outcome.passed
    assert "51 of 1000 rows (5.10%)" in outcome.message and "5.00%" in outcome.message
    assert "expect_column_values_to_be_in_set(contract): 51 rows" in outcome.message
    assert outcome.validated.empty and len(outcome.quarantined) == 51
    raw.loc[50, "contract"] = "annual"  # exactly 5%: passes
    assert run(raw, pipeline, suite).passed


# ------------------------------------------------------------------------------------------------
# The masks mean what GX means.


def messy_frame() -> pd.DataFrame:
    raw = churn_frame(1500, seed=7)
    rng = np.random.default_rng(3)
    for column, values in {
        "tenure_months": ["-1", "121", "3.0", " 7 ", "1e2", None],
        "monthly_charges": ["500", "500.01", "nan", "-0.0", "1e999", None],
        "data_usage_gb": ["2000.5", "", "abc", "0"],
        "late_payments": ["25", None, "24", "-0"],
        "plan": ["gold", None, " basic", "premium"],
        "region": ["mars", None, "north"],
        "autopay": ["YES", "False", None, "1"],
        "customer_id": ["5", "5", None, "+1001"],
        "event_ts": [
            "2026-01-06T00:00:00Z",
            "2026-01-05",
            None,
            "2026-02-30T00:00:00Z",
            "2026-01-05T12:00:00",
        ],
    }.items():
        rows = rng.choice(len(raw), size=20, replace=False)
        raw.loc[rows, column] = rng.choice(np.array(values, dtype=object), size=20)
    return raw


def test_masks_equal_gx_counts_on_a_messy_frame(pipeline: Pipeline, suite: dict) -> None:
    raw = messy_frame()
    outcome = run(raw, pipeline, suite)  # raises ValidationInternalError on any disagreement
    typed, _ = coerce(raw, pipeline)
    parameters = {"interval_start": START, "interval_end": END}
    gx_counts = {
        r["expectation_config"]["meta"]["check"]: r["result"].get("unexpected_count")
        for r in outcome.result["results"]
    }
    row_level = [e for e in suite["expectations"] if e["meta"]["level"] == "row"]
    assert len(row_level) == 21  # 8 not-null, 7 between, 4 in-set, the key, the event-time window
    nonzero = 0
    for expectation in row_level:
        count = int(v.row_mask(typed, expectation, parameters).sum())
        assert count == gx_counts[expectation["meta"]["check"]], expectation["meta"]["check"]
        nonzero += count > 0
    assert nonzero >= 8  # the frame really is messy


def test_a_mask_that_disagrees_with_gx_is_an_internal_error(
    pipeline: Pipeline, suite: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = v.row_mask

    def off_by_one(frame: pd.DataFrame, expectation: dict, parameters: dict) -> np.ndarray:
        mask = real(frame, expectation, parameters).copy()
        if expectation["type"] == "expect_column_values_to_be_in_set":
            mask[0] = not mask[0]
        return mask

    monkeypatch.setattr(v, "row_mask", off_by_one)
    with pytest.raises(v.ValidationInternalError, match="the row mask finds"):
        run(churn_frame(), pipeline, suite)


# ------------------------------------------------------------------------------------------------
# Coercion details.


def test_coerce_parses_and_flags_unparsable_values(pipeline: Pipeline) -> None:
    raw = pd.DataFrame(
        {
            "customer_id": ["1", "3.0", "3.5", None, " 12 ", "+4"],
            "autopay": ["TRUE", "false", "0", "1", "yes", None],
            "monthly_charges": ["1.5", "inf", "-inf", "1e999", "NaN", None],
            "event_ts": [
                "2026-01-05T10:00:00+02:00",
                "2026-01-05 10:00:00",
                "2026-01-05",
                "soon",
                None,
                "2026-13-01",
            ],
            "plan": ["basic", "x", None, "premium", "standard", "basic"],
        },
        dtype="str",
        index=[50, 40, 30, 20, 10, 0],  # results are positional, whatever the index
    )
    typed, bad = coerce(raw, pipeline)
    assert typed.index.equals(raw.index)
    assert typed["customer_id"].tolist()[:3] == [1, 3, pd.NA] and typed["customer_id"].tolist()[4:] == [12, 4]
    assert bad["customer_id"].tolist() == [False, False, True, False, False, False]
    assert typed["autopay"].tolist()[:4] == [True, False, False, True]
    assert bad["autopay"].tolist() == [False, False, False, False, True, False]
    assert typed["monthly_charges"].iloc[0] == 1.5 and typed["monthly_charges"].iloc[1:].isna().all()
    assert bad["monthly_charges"].tolist() == [False, True, True, True, True, False]
    assert typed["event_ts"].iloc[0] == pd.Timestamp("2026-01-05T08:00:00Z")  # converted to UTC
    assert typed["event_ts"].iloc[1] == pd.Timestamp("2026-01-05T10:00:00Z")  # no offset: UTC
    assert bad["event_ts"].tolist() == [False, False, False, True, False, True]
    assert str(typed["plan"].dtype) == "string" and not bad["plan"].any()


def test_parquet_partitions_with_native_types_validate(pipeline: Pipeline, suite: dict) -> None:
    typed, _ = coerce(churn_frame(), pipeline)
    native = typed.astype({"customer_id": "int64", "plan": object})
    native.loc[5, "monthly_charges"] = np.inf
    buffer = io.BytesIO()
    native.to_parquet(buffer)
    raw = parse_file(buffer.getvalue(), "parquet", source="p.parquet")
    outcome = run(raw, pipeline, suite)
    assert outcome.passed, outcome.message
    assert outcome.quarantined[v.ROW_NUMBER].tolist() == [5]
    assert reasons_at(outcome, 5) == "expect_column_values_to_be_of_type(monthly_charges)"
    assert str(outcome.validated["customer_id"].dtype) == "Int64"


def test_naive_interval_bounds_are_refused(pipeline: Pipeline, suite: dict) -> None:
    with pytest.raises(ValueError, match="interval_start must be timezone-aware"):
        v.validate_partition(
            churn_frame(), pipeline, suite, interval_start=START.replace(tzinfo=None), interval_end=END
        )


# ------------------------------------------------------------------------------------------------
# The generated suite.


def test_committed_suite_is_up_to_date(pipeline: Pipeline) -> None:
    path = suite_path(pipeline, INCLUDE)
    assert path == INCLUDE / "gx" / "churn.json"
    built = build_suite(pipeline)
    assert json.loads(path.read_text()) == built, "include/gx/churn.json is stale: run `make suites`"
    assert path.read_text() == json.dumps(built, indent=2, sort_keys=True) + "\n"
    levels = {e["meta"]["check"]: e["meta"]["level"] for e in built["expectations"]}
    assert levels["expect_column_values_to_not_be_null(customer_id)"] == "row"
    assert levels["expect_column_values_to_not_be_null(region)"] == "table"  # nullable: a share limit
    window = next(
        e
        for e in built["expectations"]
        if e["meta"]["check"] == "expect_column_values_to_be_between(event_ts)"
    )
    assert (
        window["kwargs"]["min_value"] == {"$PARAMETER": "interval_start"} and window["kwargs"]["strict_max"]
    )


def test_stale_or_missing_suite_is_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"churn\.json: the suite for pipeline 'churn' is missing; run `make suites`"
    ):
        load_suite(pipeline, tmp_path)
    write_suite(pipeline, tmp_path)
    assert load_suite(pipeline, tmp_path) == build_suite(pipeline)
    changed_columns = {
        **pipeline.columns,
        "plan": pipeline.columns["plan"].model_copy(update={"values": ["basic"]}),
    }
    changed = pipeline.model_copy(update={"columns": changed_columns})
    with pytest.raises(ConfigError, match=r"gx/churn\.json: the suite is stale.*run `make suites`"):
        load_suite(changed, tmp_path)
    with pytest.raises(ConfigError, match=r"does not match pipelines/churn\.yaml"):  # nor used when passed
        v.validate_partition(
            churn_frame(), changed, build_suite(pipeline), interval_start=START, interval_end=END
        )
    path = suite_path(pipeline, tmp_path)
    edited = json.loads(path.read_text())
    edited["expectations"][1]["kwargs"]["max_value"] = 10**9
    path.write_text(json.dumps(edited))
    with pytest.raises(ConfigError, match="edited by hand"):
        load_suite(pipeline, tmp_path)


def test_cli_check_exits_1_for_a_stale_suite(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "churn.yaml").write_text((INCLUDE / "pipelines" / "churn.yaml").read_text())
    assert suites.main(["check", "--include", str(tmp_path)]) == 1
    assert suites.main(["write", "--include", str(tmp_path)]) == 0
    assert suites.main(["check", "--include", str(tmp_path)]) == 0


def test_render_data_docs(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[3, "plan"] = "gold"
    outcome = run(raw, pipeline, suite)
    html = render_data_docs(outcome.result)
    assert html.lstrip().startswith("<!DOCTYPE html>") or "<html" in html[:500]
    # GX renders each expectation as prose: the in-set check on plan, and the unexpected value.
    assert "values must belong to this set" in html and "gold" in html
    assert "churn" in html


def test_a_monthly_partition_checks_event_times_over_the_month_and_says_so(tmp_path: Path) -> None:
    """A month of real dates passes a monthly pipeline's event-time check; a row of the next month
    is quarantined, and a partition of another month fails with a message naming the check."""
    data = yaml.safe_load((INCLUDE / "pipelines" / "churn.yaml").read_text())
    data["schedules"]["ingest"], data["training"]["window"] = "@monthly", "12 partitions"
    data["drift"]["retrain_cooldown"] = 1
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # the column order is part of the suite
    monthly = load_pipeline(path)
    suite = load_suite(monthly, INCLUDE)  # same rules: the grain changes the interval, not the suite
    grain, ds = monthly.grain, "2026-01-01"
    raw = churn_frame()
    days = pd.date_range("2026-01-01", "2026-01-31 23:00", periods=len(raw), tz="UTC")
    raw["event_ts"] = [d.isoformat() for d in days]
    raw.loc[0, "event_ts"] = "2026-02-01T00:00:00Z"
    kwargs = {"interval_start": grain.start(ds), "interval_end": grain.end(ds), "period": grain.describe(ds)}
    outcome = v.validate_partition(raw, monthly, suite, **kwargs)
    assert outcome.passed and sorted(outcome.quarantined[v.ROW_NUMBER]) == [0]
    raw["event_ts"] = [(d + pd.DateOffset(months=1)).isoformat() for d in days]
    outcome = v.validate_partition(raw, monthly, suite, **kwargs)
    assert not outcome.passed
    assert "event-time check (event_ts outside the month 2026-01-01 .. 2026-01-31 (UTC))" in outcome.message
