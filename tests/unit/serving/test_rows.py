"""Request bodies read with the pipeline schema's own coercion and row checks (``mlops.serving.rows``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.unit.serving.conftest import record

from mlops.config.pipeline import Pipeline, parse_pipeline
from mlops.ingest.parsing import coerce
from mlops.serving.rows import MAX_ERRORS, MAX_ROWS, BadBody, BadRows, RowReader


def read(pipeline: Pipeline, body: object, content_type: str = "application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RowReader(pipeline).read(data, content_type)


def csv_of(rows: list[dict]) -> bytes:
    return pd.DataFrame(rows).to_csv(index=False).encode()


def test_json_records_are_typed_as_the_ingest_types_them(pipeline: Pipeline) -> None:
    rows = read(pipeline, {"records": [record(), record(customer_id=8, autopay=None, region=None)]})
    assert rows.has_key and len(rows) == 2
    raw = pd.DataFrame([record(), record(customer_id=8, autopay=None, region=None)]).astype("string")
    expected, _ = coerce(raw[[*pipeline.features, pipeline.key]], pipeline)
    pd.testing.assert_frame_equal(rows.typed[expected.columns], expected)
    assert str(rows.typed["tenure_months"].dtype) == "Int64" and str(rows.typed["autopay"].dtype) == "boolean"
    assert rows.typed["autopay"].isna().tolist() == [False, True]


def test_a_bare_list_and_a_csv_body_read_the_same_rows(pipeline: Pipeline) -> None:
    rows = [record(), record(customer_id=9, plan="premium", data_usage_gb=12.5)]
    from_records = read(pipeline, {"records": rows}).typed
    from_list = read(pipeline, rows).typed
    from_csv = read(pipeline, csv_of(rows), "text/csv; charset=utf-8").typed
    pd.testing.assert_frame_equal(from_records, from_list)
    pd.testing.assert_frame_equal(from_records, from_csv[from_records.columns])


def test_the_key_is_optional_and_other_fields_are_ignored(pipeline: Pipeline) -> None:
    row = record(churned=1, event_ts="2026-01-01T00:00:00Z", anything="else")
    del row["customer_id"]
    rows = read(pipeline, [row])
    assert not rows.has_key
    assert list(rows.typed.columns) == pipeline.features


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param({"tenure_months": 500}, "tenure_months", "500 is outside [0, 120]", id="above-max"),
        pytest.param({"monthly_charges": -1}, "monthly_charges", "-1.0 is outside [0, 500]", id="below-min"),
        pytest.param(
            {"plan": "gold"}, "plan", "'gold' is not one of ['basic', 'standard', 'premium']", id="category"
        ),
        pytest.param(
            {"tenure_months": "twelve"}, "tenure_months", "not a valid int: 'twelve'", id="int-text"
        ),
        pytest.param({"tenure_months": 1.5}, "tenure_months", "not a valid int: 1.5", id="int-fraction"),
        pytest.param({"autopay": "maybe"}, "autopay", "not a valid bool: 'maybe'", id="bool"),
        pytest.param({"monthly_charges": "1e999"}, "monthly_charges", "not a valid float", id="non-finite"),
        pytest.param(
            {"contract": None}, "contract", "null, but the column is not nullable", id="not-nullable"
        ),
        pytest.param({"customer_id": -3}, "customer_id", "-3 is outside [0, inf]", id="bad-key"),
    ],
)
def test_a_bad_value_is_refused_naming_its_row_and_field(
    pipeline: Pipeline, changes: dict, field: str, message: str
) -> None:
    with pytest.raises(BadRows) as refused:
        read(pipeline, [record(), record(**changes)])
    assert [(e["row"], e["field"]) for e in refused.value.detail()] == [(1, field)]
    assert message in refused.value.detail()[0]["message"]


def test_a_feature_missing_from_a_row_is_named_once(pipeline: Pipeline) -> None:
    row = record()
    del row["support_calls"]  # not nullable: reported as missing, not also as null
    with pytest.raises(BadRows) as refused:
        read(pipeline, [record(), row])
    assert refused.value.detail() == [
        {"row": 1, "field": "support_calls", "message": "missing: send a value, or null where allowed"}
    ]


def test_a_column_missing_from_a_csv_body_is_named(pipeline: Pipeline) -> None:
    frame = pd.DataFrame([record()]).drop(columns=["autopay", "plan"])
    with pytest.raises(BadRows) as refused:
        read(pipeline, frame.to_csv(index=False).encode(), "text/csv")
    assert {(e["row"], e["field"]) for e in refused.value.detail()} == {(None, "autopay"), (None, "plan")}


def test_errors_are_ordered_by_row_then_column_and_capped(pipeline: Pipeline) -> None:
    rows = [record(tenure_months=-1, plan="x") for _ in range(MAX_ERRORS)]
    with pytest.raises(BadRows) as refused:
        read(pipeline, rows)
    detail = refused.value.detail()
    assert len(refused.value.errors) == 2 * MAX_ERRORS
    assert len(detail) == MAX_ERRORS + 1 and detail[-1]["message"] == f"... and {MAX_ERRORS} more"
    assert [(e["row"], e["field"]) for e in detail[:3]] == [
        (0, "tenure_months"),
        (0, "plan"),
        (1, "tenure_months"),
    ]


def test_an_open_category_counts_an_unseen_value_as_other(pipeline: Pipeline) -> None:
    data = pipeline.model_dump(mode="json", exclude_unset=True)
    data["columns"]["region"] = {"type": "category", "values": ["north", "south"], "open": True}
    opened = parse_pipeline(data, source="test")
    rows = read(opened, [record(region="mars")])
    assert rows.typed["region"].tolist() == ["__other__"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        pytest.param(b"{", "application/json", 400, "not valid JSON", id="not-json"),
        pytest.param(b'{"rows": []}', "application/json", 400, "no records", id="no-records-key"),
        pytest.param(b"[]", "application/json", 400, "no rows", id="empty"),
        pytest.param(b"[1, 2]", "application/json", 400, "row 0 is a JSON int", id="not-objects"),
        pytest.param(b'"text"', "application/json", 400, "no records", id="a-string"),
        pytest.param(b"a,b\n1,2", "text/csv", 400, "not a complete CSV file", id="truncated-csv"),
        pytest.param(b"x", "application/xml", 415, "unsupported content type", id="xml"),
    ],
)
def test_a_body_that_is_not_rows_is_refused_whole(
    pipeline: Pipeline, body: bytes, content_type: str, status: int, message: str
) -> None:
    with pytest.raises(BadBody) as refused:
        read(pipeline, body, content_type)
    assert refused.value.status == status and message in str(refused.value)


def test_too_many_rows_are_refused_before_they_are_read(pipeline: Pipeline) -> None:
    with pytest.raises(BadBody) as refused:
        read(pipeline, [{}] * (MAX_ROWS + 1))
    assert refused.value.status == 413
