"""The Models view's HTML: the pipelines overview and one pipeline's page, from ``models``' data.

Values come from landed files (feature names, rejection messages) and from people (approval
comments): every one is escaped where it is written, and the pages are served under a CSP that lets
no script run. Links are relative to the Airflow UI's origin unless a ``base_url`` is given.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.lake.report_pages import report_url
from mlops.views import svg
from mlops.views.models import HEALTH_RULES
from mlops.views.svg import esc, fmt

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px 24px;color:#222}
h1{font-size:22px;margin:0 0 12px}h2{font-size:16px;margin:22px 0 6px}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
th{background:#f5f5f5}.mark{display:inline-block;width:12px;height:12px;border-radius:6px;vertical-align:middle}
.green{background:#2e7d32}.amber{background:#ef8f00}.red{background:#c62828}
.note{color:#555;font-size:12px;max-width:960px}.err{color:#c62828}svg{display:block;margin:4px 0}
a{color:#1f6fb2}
"""


def _doc(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _a(href: str, text: object, **extra: str) -> str:
    return f"<a {svg.attrs(href=href, **extra)}>{esc(text)}</a>"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rules() -> str:
    items = "".join(
        f'<li><span class="mark {m}"></span> {esc(m)}: {esc(text)}</li>' for m, text in HEALTH_RULES
    )
    return f'<ul class="note" data-rules="health">{items}</ul>'


def overview_page(rows: Sequence[Mapping[str, Any]], *, problems: Sequence[str] = ()) -> str:
    """One row per pipeline, linking to its page (``pipelines/<name>``, relative to this page)."""
    head = (
        "<tr><th>health</th><th>pipeline</th><th>champion</th><th>metric</th><th>promoted</th>"
        "<th>by</th><th>latest partition</th><th>quarantined</th><th>drift</th><th>partitions since retrain</th>"
        "<th>uptime</th></tr>"
    )
    body = []
    for r in rows:
        reasons = "; ".join(r["health_reasons"]) or "all rules green"
        body.append(
            f"<tr {svg.attrs(data_pipeline=r['pipeline'], data_champion=r['champion'] or '', data_health=r['health'])}>"
            f'<td><span class="mark {esc(r["health"])}" title="{esc(reasons)}"></span> {esc(r["health"])}</td>'
            f"<td>{_a('pipelines/' + urllib.parse.quote(r['pipeline']), r['pipeline'])}</td>"
            f"<td>{esc('v' + r['champion'] if r['champion'] else 'none')}</td>"
            f"<td>{esc(r['metric_name'])} {esc(fmt(r['champion_metric'], 4))}</td>"
            f"<td>{esc(r['promoted_on'] or '-')}</td>"
            f"<td>{esc(r['promoted_by'] or '-')}<br><span class='note'>{esc(r['promoted_run'])}</span></td>"
            f"<td>{esc(r['latest_day'] or '-')}{'' if r['latest_passed'] in (None, True) else ' <b class=err>rejected</b>'}</td>"
            f"<td>{esc(_pct(r['latest_quarantine_rate']))}</td>"
            f"<td>{esc(r['drift_status'] or '-')} <span class='note'>{esc(r['drift_day'])}</span></td>"
            f"<td>{esc('-' if r['partitions_since_retrain'] is None else r['partitions_since_retrain'])}</td>"
            f"<td>{esc(_pct(r.get('uptime')))} <span class='note'>{esc(r.get('uptime_day', ''))}</span></td></tr>"
        )
    notes = "".join(f'<p class="err">{esc(p)}</p>' for p in problems)
    table = f"<table>{head}{''.join(body)}</table>" if body else "<p>No pipeline you may read.</p>"
    return _doc(
        "Models",
        f"<h1>Models</h1>{notes}{table}<h2>Health marks</h2>{_rules()}"
        '<p class="note">Counted on the logical clock: "latest" is the newest partition the lake\'s index holds, '
        "never today's date.</p>",
    )


def pipeline_page(
    data: Mapping[str, Any],
    *,
    mlflow_ui: str,
    base_url: str = "",
    required_actions: str = "/required_actions",
) -> str:
    """A pipeline's page: the champion timeline, data health, drift, scoring and approvals."""
    o = data["overview"]
    name = o["pipeline"]
    days = sorted({r["ds"] for key in ("ingest", "monitor", "score") for r in data[key]})

    def version_url(version: str) -> str:
        return f"{mlflow_ui.rstrip('/')}/#/models/{urllib.parse.quote(name)}/versions/{urllib.parse.quote(version)}"

    sections = [
        f"<h1>{esc(name)} <span class='mark {esc(o['health'])}'></span></h1>",
        f'<p><a href="../">All models</a> · champion <b data-champion="{esc(o["champion"] or "")}">'
        f"{esc('v' + o['champion'] if o['champion'] else 'none')}</b>"
        + (f" since {esc(o['promoted_on'])} ({esc(o['promoted_by'])})" if o["promoted_on"] else "")
        + f" · health {esc(o['health'])}: {esc('; '.join(o['health_reasons']) or 'all rules green')}</p>",
    ]
    if o["registry_error"]:
        sections.append(f"<p class='err'>The registry could not be read: {esc(o['registry_error'])}</p>")
    sections += [
        "<h2>Champion timeline</h2>",
        '<p class="note">Each registered version at the end of its training window, '
        f"{esc(o['metric_name'])} on its gate's holdout (else on validation); filled: made champion by a signed move; "
        "a cross: the gate refused it. Each point opens the version in MLflow.</p>",
        svg.timeline(days, data["versions"], version_url, o["metric_name"]),
        _versions_table(data["versions"], version_url),
        "<h2>Data health</h2>",
        '<p class="note">Rows landed per partition: green while the quarantined share is at most half of '
        f"validation.max_quarantine_fraction ({data['quarantine_limit']:.0%}), amber above, red when the gate "
        "rejected the partition (its reason in the tooltip). Each bar opens the partition's Data Docs.</p>",
        svg.day_bars(
            days,
            [_health_bar(name, r, base_url, data["quarantine_limit"]) for r in data["ingest"]],
            chart="data-health",
            label="rows landed and quarantined per partition",
        ),
        svg.day_lines(
            days,
            {
                "quarantine share": [
                    (r["ds"], r.get("quarantine_rate")) for r in data["ingest"] if r.get("passed")
                ]
            },
            chart="quarantine",
            label="quarantined share per partition",
        ),
        _rejections(name, data["ingest"], base_url),
        _reasons(data["reasons"]),
        "<h2>Drift</h2>",
        f'<p class="note">PSI per feature and partition (threshold {esc(data["psi_threshold"])}: amber at it, red at twice it); '
        "a red tick marks a partition whose drift fired a retrain. Each column opens the drift report.</p>",
        svg.heatmap(
            days,
            data["features"],
            {r["ds"]: r.get("psi", {}) for r in data["monitor"]},
            threshold=float(data["psi_threshold"]),
            href=lambda ds: report_url(name, ds, "drift/drift.html", base_url),
            fired=[r["ds"] for r in data["monitor"] if r.get("fired")],
        ),
        svg.day_lines(
            days,
            {
                "prediction PSI": [(r["ds"], r.get("prediction_psi")) for r in data["monitor"]],
                "AUC drop": [(r["ds"], r.get("auc_drop")) for r in data["monitor"]],
            },
            chart="prediction-drift",
            label="prediction drift and performance decay per partition",
            thresholds={
                "prediction PSI": _first(data["monitor"], "prediction_psi_threshold"),
                "AUC drop": _first(data["monitor"], "auc_drop_threshold"),
            },
            marks=[r["ds"] for r in data["monitor"] if r.get("fired")],
            mark_label="retrain fired on",
        ),
        "<h2>Scoring</h2>",
        '<p class="note">Rows scored per partition, coloured by the version that scored them.</p>',
        _score_chart(days, data["score"]),
        "<h2>Serving</h2>",
        _serving(days, data["probe"], data["slo"]),
        "<h2>Approvals</h2>",
        _approvals(data["approvals"], required_actions),
        "<h2>Health marks</h2>",
        _rules(),
    ]
    return _doc(f"{name} · Models", "".join(sections))


def _first(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)


def _health_bar(name: str, r: Mapping[str, Any], base_url: str, limit: float) -> dict[str, Any]:
    rate = r.get("quarantine_rate") or 0.0
    if not r.get("passed"):
        color, title = svg.RED, f"{r['ds']}: rejected: {r.get('message', '')}"
    else:
        color = svg.GREEN if rate <= limit / 2 else svg.AMBER
        title = f"{r['ds']}: {r.get('rows', 0):,} rows, {r.get('quarantined', 0):,} quarantined ({rate:.2%})"
        if r.get("reasons"):
            title += "; " + ", ".join(f"{k} x{v}" for k, v in r["reasons"].items())
        if r.get("replayed_by"):
            title += f"; quarantine replayed by {r['replayed_by']}"
    return {
        "ds": r["ds"],
        "value": r.get("rows", 0),
        "color": color,
        "href": report_url(name, r["ds"], "data_docs.html", base_url),
        "title": title,
        "data": {
            "rows": r.get("rows", 0),
            "quarantined": r.get("quarantined", 0),
            "passed": str(bool(r.get("passed"))).lower(),
        },
    }


def _rejections(name: str, ingest: Sequence[Mapping[str, Any]], base_url: str) -> str:
    rows = [r for r in ingest if not r.get("passed")]
    if not rows:
        return '<p class="note">No partition rejected.</p>'
    body = "".join(
        f'<tr data-rejected="{esc(r["ds"])}"><td>{_a(report_url(name, r["ds"], "data_docs.html", base_url), r["ds"])}</td>'
        f"<td>{esc(r.get('message', ''))}</td></tr>"
        for r in rows
    )
    return f"<table><tr><th>rejected partition</th><th>why</th></tr>{body}</table>"


def _reasons(reasons: Sequence[Mapping[str, Any]]) -> str:
    if not reasons:
        return '<p class="note">No row quarantined.</p>'
    body = "".join(
        f'<tr data-reason="{esc(r["reason"])}" data-rows="{r["rows"]}"><td>{esc(r["reason"])}</td><td>{r["rows"]:,}</td>'
        f"<td>{r['partitions']}</td><td>{esc(r['first'])}</td><td>{esc(r['last'])}</td></tr>"
        for r in reasons
    )
    head = "<tr><th>quarantined for</th><th>rows</th><th>partitions</th><th>first</th><th>last</th></tr>"
    return (
        '<p class="note">Why rows were quarantined, over these partitions (a row failing two checks counts '
        "under each). <code>python -m mlops quarantine show</code> lists a partition's rows; a replay puts "
        f"fixed rows back (docs/quarantine.md).</p><table>{head}{body}</table>"
    )


def _versions_table(versions: Sequence[Mapping[str, Any]], version_url: Any) -> str:
    body = "".join(
        f'<tr data-version="{esc(v["version"])}"><td>{_a(version_url(v["version"]), "v" + v["version"])}</td>'
        f"<td>{esc(v['as_of'] or '-')}</td><td>{esc(v['trigger'] or '-')}</td><td>{esc(fmt(v['metric'], 4))}</td>"
        f"<td>{esc(', '.join(m['kind'] + ' ' + m['effective_day'] for m in v['moves']) or '-')}</td>"
        f"<td>{esc(v['gate'] or '-')}</td><td class='note'>{esc(v['gate_decision'])}</td></tr>"
        for v in versions
    )
    head = "<tr><th>version</th><th>as of</th><th>trigger</th><th>metric</th><th>champion moves</th><th>gate</th><th>decision</th></tr>"
    return f"<details><summary>every version</summary><table>{head}{body}</table></details>"


def _score_chart(days: Sequence[str], score: Sequence[Mapping[str, Any]]) -> str:
    versions = sorted({r.get("version", "") for r in score}, key=lambda v: int(v) if v.isdigit() else 0)
    color = {v: svg.PALETTE[i % len(svg.PALETTE)] for i, v in enumerate(versions)}
    chart = svg.day_bars(
        days,
        [
            {
                "ds": r["ds"],
                "value": r.get("rows", 0),
                "color": color[r.get("version", "")],
                "title": f"{r['ds']}: {r.get('rows', 0):,} rows scored by v{r.get('version', '')}",
                "data": {"rows": r.get("rows", 0), "version": r.get("version", "")},
            }
            for r in score
        ],
        chart="scoring",
        label="rows scored per partition",
    )
    legend = " ".join(f'<span style="color:{color[v]}">■ v{esc(v)}</span>' for v in versions)
    return chart + f'<p class="note">{legend}</p>'


def _serving(days: Sequence[str], probe: Sequence[Mapping[str, Any]], slo: Mapping[str, Any]) -> str:
    if not probe:
        return (
            '<p class="note">No probe of the serving service recorded (the <code>&lt;pipeline&gt;_probe</code> '
            "DAG is paused when created: unpause it once the service runs; docs/serving-slo.md).</p>"
        )
    availability = svg.day_lines(
        days,
        {"availability": [(r["ds"], r.get("availability")) for r in probe]},
        chart="uptime",
        label="share of the probes the service answered, per partition",
        thresholds={"availability": slo.get("availability")},
    )
    latency = svg.day_lines(
        days,
        {
            "p95 ms": [(r["ds"], r.get("p95_ms")) for r in probe],
            "p50 ms": [(r["ds"], r.get("p50_ms")) for r in probe],
        },
        chart="latency",
        label="probe latency per partition (ms)",
        thresholds={"p95 ms": slo.get("p95_ms")},
    )
    return (
        f"<p class=\"note\">The probe's known-answer requests: availability per partition (the SLO's "
        f"{esc(slo.get('availability'))} dashed) and latency (p95 against the SLO's {esc(slo.get('p95_ms'))} ms).</p>"
        + availability
        + latency
    )


def _approvals(approvals: Mapping[str, Any], required_actions: str) -> str:
    pending = approvals.get("pending", [])
    parts = []
    if pending:
        rows = "".join(
            f'<tr data-pending="{esc(p.get("run_id", ""))}"><td>{esc(p.get("subject", ""))}</td><td>{esc(p.get("run_id", ""))}</td>'
            f"<td>{esc(p.get('created_at', ''))}</td></tr>"
            for p in pending
        )
        parts.append(
            f"<p>{len(pending)} pending review(s): {_a(required_actions, 'open Required Actions')}</p>"
            f"<table><tr><th>asks</th><th>run</th><th>since</th></tr>{rows}</table>"
        )
    else:
        parts.append(f"<p>No pending review ({_a(required_actions, 'Required Actions')}).</p>")
    decisions = approvals.get("decisions", [])
    if decisions:
        rows = "".join(
            f'<tr data-decision="{esc(d["version"])}"><td>v{esc(d["version"])}</td><td>{esc(d["kind"])}</td>'
            f"<td>{esc(d['decision'])}{' (timed out)' if d.get('timed_out') == 'true' else ''}</td>"
            f"<td>{esc(d['by'])}</td><td>{esc(d['comment'])}</td><td>{esc(d['at'])}</td></tr>"
            for d in decisions
        )
        parts.append(
            "<table><tr><th>version</th><th>move</th><th>decision</th><th>reviewer</th><th>comment</th><th>at</th></tr>"
            f"{rows}</table>"
        )
    else:
        parts.append('<p class="note">No past decision.</p>')
    return "".join(parts)
