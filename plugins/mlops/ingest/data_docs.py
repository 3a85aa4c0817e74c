"""Data Docs: one validation result as a self-contained HTML page, every value escaped.

``plain_json`` is the JSON form of a GX result that is stored and rendered (``mlops.validation``
keeps its results in that form). ``render_data_docs`` draws the page from that JSON itself rather
than through GX's renderer: GX's templates copy unexpected values, observed values and column names
into the page unescaped, and its page loads scripts and fonts from public CDNs. A landed file is
untrusted input, so here every text that reaches the page passes ``html.escape`` once, the page has
no script and no external resource, and the report plugin serves it under a CSP that allows none.

The prose follows GX's own ("Must have greater than or equal to 1000 and less than or equal to ...
rows", "3 unexpected values found. 0.25% of 1200 total rows.") so a reader of GX's docs recognises
it. Pure Python: no Airflow import, and no GX import either (the page needs only the JSON).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

SAMPLE_VALUES = 20  # distinct unexpected values shown per expectation (GX keeps at most 20)
_TEXT_LIMIT = 300  # characters of any one value shown; a landed value can be megabytes

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.failed td:first-child{color:#b00020;font-weight:bold}
.passed td:first-child{color:#1b7f3b}.verdict-failed{color:#b00020}.verdict-passed{color:#1b7f3b}
code{background:#f6f6f6;padding:0 .2em;white-space:pre-wrap;word-break:break-all}
ul.sample{margin:0;padding-left:1.2em}
"""


def plain_json(result: Any) -> dict[str, Any]:
    """A GX result object as plain JSON-able dicts and lists: the form results are stored in."""
    # A round trip through json leaves plain floats: numpy 2 scalars would not survive json.dumps
    # later, and GX's ``to_json_dict`` can still hold them.
    return json.loads(json.dumps(result.to_json_dict()))


def _text(value: Any) -> str:
    """A value as short, escaped text: None is null, long values are cut with a mark."""
    if value is None:
        text = "null"
    elif isinstance(value, float):
        text = "NaN" if math.isnan(value) else format(value, ".6g")
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) > _TEXT_LIMIT:
        text = text[:_TEXT_LIMIT] + f"… ({len(text)} characters)"
    return html.escape(text)


def _code(value: Any) -> str:
    return f"<code>{_text(value)}</code>"


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _text(value)
    return _text(value if isinstance(value, int) or not value.is_integer() else int(value))


def _limits(kwargs: Mapping[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    parts = []
    if low is not None:
        parts.append(f"greater than or equal to {_num(low)}")
    if high is not None:
        parts.append(f"less than or equal to {_num(high)}")
    return " and ".join(parts) or "any number of"


def _mostly(kwargs: Mapping[str, Any]) -> str:
    mostly = kwargs.get("mostly")
    return "" if mostly in (None, 1, 1.0) else f", at least {_num(100 * float(mostly))}% of the time"


_PROSE: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "expect_table_row_count_to_be_between": lambda k: f"Must have {_limits(k)} rows.",
    "expect_table_columns_to_match_set": lambda k: (
        "Must have exactly these columns (in any order): "
        + ", ".join(_code(c) for c in k.get("column_set") or [])
        + "."
    ),
    "expect_column_values_to_not_be_null": lambda k: "values must never be null" + _mostly(k) + ".",
    "expect_column_values_to_be_between": lambda k: f"values must be {_limits(k)}{_mostly(k)}.",
    "expect_column_values_to_be_in_set": lambda k: (
        "values must belong to this set: "
        + " ".join(_code(v) for v in k.get("value_set") or [])
        + _mostly(k)
        + "."
    ),
    "expect_column_values_to_be_unique": lambda k: "values must be unique" + _mostly(k) + ".",
    "expect_column_values_to_be_in_type_list": lambda k: (
        "value types must belong to this set: " + " ".join(_code(t) for t in k.get("type_list") or []) + "."
    ),
    "expect_column_values_to_be_of_type": lambda k: f"values must be of type {_code(k.get('type_'))}.",
    "expect_column_mean_to_be_between": lambda k: f"mean must be {_limits(k)}.",
}
_SHOWN_KWARGS = ("batch_id", "column", "result_format")


def describe(expectation_type: str, kwargs: Mapping[str, Any]) -> str:
    """The expectation as one escaped sentence (the expectation's type and arguments when unknown)."""
    prose = _PROSE.get(expectation_type)
    if prose is not None:
        return prose(kwargs)
    rest = {k: v for k, v in kwargs.items() if k not in _SHOWN_KWARGS}
    return f"{_code(expectation_type)} {_code(rest) if rest else ''}".strip()


def _observed(result: Mapping[str, Any]) -> str:
    if "observed_value" in result:
        return _code(result["observed_value"])
    return ""


def _unexpected(result: Mapping[str, Any]) -> str:
    count = result.get("unexpected_count")
    if count is None:
        return ""
    percent = result.get("unexpected_percent") or 0.0
    total = result.get("element_count")
    text = f"{_num(count)} unexpected values found. {float(percent):.4g}% of {_num(total)} total rows."
    sample: Sequence[Mapping[str, Any]] = result.get("partial_unexpected_counts") or []
    if not sample:
        return text
    items = "".join(
        f"<li>{_code(s.get('value'))}: {_num(s.get('count'))} rows</li>" for s in sample[:SAMPLE_VALUES]
    )
    return f'{text}<ul class="sample">{items}</ul>'


def _row(entry: Mapping[str, Any]) -> str:
    config = entry.get("expectation_config") or {}
    kwargs = config.get("kwargs") or {}
    result = entry.get("result") or {}
    status = "passed" if entry.get("success") else "failed"
    error = (entry.get("exception_info") or {}).get("exception_message")
    cells = [
        status,
        _text(kwargs.get("column")) if kwargs.get("column") is not None else "(table)",
        describe(str(config.get("type")), kwargs),
        _observed(result) + (f"<br>error: {_code(error)}" if error else ""),
        _unexpected(result),
    ]
    return f'<tr class="{status}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _own_check_row(failure: Mapping[str, Any]) -> str:
    """A failure the gate found itself (a value that is not of its type), not one GX evaluated."""
    count, percent = failure.get("unexpected_count"), failure.get("unexpected_percent")
    found = (
        ""
        if count is None
        else f"{_num(count)} unexpected values found. {float(percent or 0):.4g}% of present values."
    )
    cells = ["failed", _text(failure.get("column") or "(table)"), _code(failure.get("check")), "", found]
    return '<tr class="failed">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


_HEADER = (
    "<tr><th>status</th><th>column</th><th>expectation</th><th>observed</th><th>unexpected rows</th></tr>"
)


def render_data_docs(
    result: Mapping[str, Any] | Any,
    *,
    summary: str | None = None,
    failures: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The Data Docs page of one validation result (a GX result object or its JSON dict).

    ``summary`` is the gate's one-line verdict; ``failures`` are the gate's failure records, of which
    those GX did not evaluate (type coercion) are listed too, so the page shows every reason.
    """
    if not isinstance(result, Mapping):
        result = plain_json(result)
    entries: list[Mapping[str, Any]] = list(result.get("results") or [])
    stats = result.get("statistics") or {}
    run_name = ((result.get("meta") or {}).get("run_id") or {}).get("run_name") or ""
    suite = result.get("suite_name") or ""
    evaluated = {(e.get("expectation_config") or {}).get("meta", {}).get("check") for e in entries}
    own = [f for f in failures if f.get("check") not in evaluated]
    passed = bool(result.get("success")) and not any(f.get("level") == "table" for f in own)
    verdict = "passed" if passed else "failed"
    failed = [e for e in entries if not e.get("success")]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Data Docs: {_text(run_name or suite)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Validation of {_text(suite)}</h1>",
        f"<p>{_text(run_name)}</p>",
        f'<p>Great Expectations verdict: <b class="verdict-{verdict}">{verdict}</b>; '
        f"{_num(stats.get('evaluated_expectations', len(entries)))} expectations evaluated, "
        f"{_num(stats.get('successful_expectations'))} successful, "
        f"{_num(stats.get('unsuccessful_expectations', len(failed)))} unsuccessful.</p>",
    ]
    if summary:
        out.append(f"<p>Gate: {_text(summary)}</p>")
    if result.get("error"):
        out.append(f"<h2>Unreadable input</h2><p>{_code(result['error'])}</p>")
    if failed or own:
        out += ["<h2>Failed expectations</h2>", "<table>", _HEADER]
        out += [_row(e) for e in failed] + [_own_check_row(f) for f in own]
        out.append("</table>")
    if entries:
        out += ["<h2>All expectations</h2>", "<table>", _HEADER, *(_row(e) for e in entries), "</table>"]
    out.append("</body></html>")
    return "\n".join(out)
