"""Export, edit, submit: a file that does not fit the quarantine is refused naming the rows."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from tests.unit.quarantine.conftest import BAD, DS, NOT_A_NUMBER

from mlops.config.pipeline import Pipeline
from mlops.lake.storage import LocalStorage, read_manifest, read_partition
from mlops.quarantine.submission import (
    SubmissionRejected,
    export_csv,
    read_submission,
    submission_dir,
    submit,
)
from mlops.quarantine.summary import read_quarantine


def exported(lake: LocalStorage, pipeline: Pipeline) -> pd.DataFrame:
    data = export_csv(read_quarantine(lake, pipeline, DS), pipeline)
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_the_export_lists_the_rows_in_order_with_their_reasons(
    lake: LocalStorage, pipeline: Pipeline
) -> None:
    frame = exported(lake, pipeline)
    assert list(frame.columns) == ["_row_number", *pipeline.columns, "_quarantine_reasons"]
    assert frame["_row_number"].astype(int).tolist() == BAD
    assert set(frame.loc[frame["_row_number"].astype(int).isin(NOT_A_NUMBER), "tenure_months"]) == {"N/A"}


def test_an_edited_export_is_stored_and_a_new_one_keeps_the_old_for_audit(
    lake: LocalStorage, pipeline: Pipeline
) -> None:
    frame = exported(lake, pipeline)
    edited = frame.assign(tenure_months=frame["tenure_months"].replace("N/A", "12"))
    quarantine = read_quarantine(lake, pipeline, DS)
    first = submit(lake, pipeline, quarantine, as_csv(edited), source="edited.csv", by="steward")
    assert (first.rows, first.changed) == (6, 2)
    second = submit(lake, pipeline, quarantine, as_csv(edited.head(2)), source="again.csv")
    manifest = read_manifest(lake, submission_dir("churn", DS))
    assert manifest.attempt == second.attempt and [h["attempt"] for h in manifest.history] == [first.attempt]
    assert manifest.history[0]["extra"]["by"] == "steward"
    assert len(lake.list_files(submission_dir("churn", DS))) == 3  # two files and the manifest
    rows, _ = read_submission(lake, pipeline, quarantine)
    assert rows["_row_number"].tolist() == BAD[:2]
    assert list(read_partition(lake, submission_dir("churn", DS)).values()) == [as_csv(edited.head(2))]


def _extra_row(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.tail(1).assign(_row_number="777")], ignore_index=True)


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [
        pytest.param(
            lambda f: f.drop(columns=["plan"]), r"the columns changed \(missing \['plan'\]\)", id="missing"
        ),
        pytest.param(lambda f: f.assign(note="x"), r"unexpected \['note'\]", id="extra-column"),
        pytest.param(
            lambda f: f.rename(columns={"plan": "tier"}),
            r"missing \['plan'\]; unexpected \['tier'\]",
            id="renamed",
        ),
        pytest.param(
            _extra_row, r"line\(s\) 8 \(_row_number 777\) are not rows of the 2026-01-05", id="extra-row"
        ),
        pytest.param(
            lambda f: f.assign(_row_number=f["_row_number"].replace("3", "4")),
            r"\(_row_number 4\) are not rows",
            id="other-row",
        ),
        pytest.param(
            lambda f: pd.concat([f, f.head(1)]),
            r"_row_number 3 given more than once \(line\(s\) 2, 8\)",
            id="twice",
        ),
        pytest.param(
            lambda f: f.assign(customer_id=f["customer_id"].replace("1010", "99")),
            r"key column 'customer_id' changed in 1 row\(s\) \(_row_number 10\)",
            id="key",
        ),
        pytest.param(
            lambda f: f.assign(_row_number=["x", *f["_row_number"][1:]]),
            r"no _row_number on line\(s\) 2",
            id="no-number",
        ),
        pytest.param(lambda f: f.head(0), r"has a header but no rows", id="empty"),
    ],
)
def test_a_submission_that_does_not_fit_is_refused_and_nothing_is_stored(
    lake: LocalStorage, pipeline: Pipeline, edit, phrase: str
) -> None:
    quarantine = read_quarantine(lake, pipeline, DS)
    with pytest.raises(SubmissionRejected, match=phrase):
        submit(lake, pipeline, quarantine, as_csv(edit(exported(lake, pipeline))), source="edited.csv")
    assert lake.list_files(submission_dir("churn", DS)) == []


def test_the_reasons_column_may_be_dropped(lake: LocalStorage, pipeline: Pipeline) -> None:
    quarantine = read_quarantine(lake, pipeline, DS)
    frame = exported(lake, pipeline).drop(columns=["_quarantine_reasons"])
    assert submit(lake, pipeline, quarantine, as_csv(frame), source="edited.csv").changed == 0
