"""The monitoring report's HTML page: one day's drift report as a self-contained page.

``render_html`` turns a report of ``monitoring.monitor_day`` into one HTML page with its charts
inline (base64 PNG): the verdict and its reasons, every feature's statistics, reference-vs-current
histograms of the drifted features (the top ones by PSI when none drifted), and PSI, prediction
PSI and AUC by day over the earlier reports. ``monitor_stage`` writes it next to the report in
``reports/ds=.../drift/``.

Pure Python (numpy; ``mlops.drift`` for the histogram bins; matplotlib imported lazily, when a
chart is drawn). No Airflow or MLflow import.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.grain import parse_key
from mlops.monitor import drift

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_FIGSIZE = (4.0, 3.0)
_DPI = 80
_TOP_WHEN_CLEAN = 3


def _new_figure(figsize: tuple[float, float] = _FIGSIZE) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _label(text: Any) -> str:
    # Matplotlib reads $...$ as mathtext; a category name is data, not markup.
    return str(text).replace("$", r"\$")


def _fmt(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "-"
    return format(x, spec) if isinstance(x, int | float) else str(x)


def _bars(ax: Any, labels: list[str], ref: np.ndarray, cur: np.ndarray) -> None:
    ref_p = ref / ref.sum() if ref.sum() else ref * 0.0
    cur_p = cur / cur.sum() if cur.sum() else cur * 0.0
    x = np.arange(len(labels))
    ax.bar(x - 0.2, ref_p, width=0.4, label="reference", color="#8da0cb")
    ax.bar(x + 0.2, cur_p, width=0.4, label="current", color="#fc8d62")
    ax.set_xticks(x)
    ax.set_xticklabels([_label(s) for s in labels], rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("share of rows", fontsize=7)
    ax.tick_params(axis="y", labelsize=6)
    ax.legend(fontsize=6)


def _histogram(name: str, entry: Mapping[str, Any], values: Any, stats: Mapping[str, Any]) -> str | None:
    fig = _new_figure()
    ax = fig.add_subplot()
    if entry.get("kind") == "numeric":
        inner = [float(e) for e in entry["inner_edges"]]
        full = np.concatenate(([-np.inf], inner, [np.inf]))
        cur = drift.bin_counts(np.asarray(values, dtype=np.float64), full) if values is not None else None
        labels = [f"≤{inner[0]:.4g}"] if inner else ["all"]
        labels += [f"{a:.4g} to {b:.4g}" for a, b in itertools.pairwise(inner)]
        labels += [f">{inner[-1]:.4g}"] if inner else []
        labels.append("missing")
    elif entry.get("kind") == "categorical":
        cur = drift.category_counts(values, entry["categories"]) if values is not None else None
        labels = [*entry["categories"], "(unseen)", "(missing)"]
    else:
        return None
    ref = np.asarray(entry["counts"], dtype=np.float64)
    if cur is None:
        cur = np.zeros_like(ref)
    _bars(ax, labels, ref, np.asarray(cur, dtype=np.float64))
    ax.set_title(_label(f"{name}  (PSI {_fmt(stats.get('psi'))})"), fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _trend_reports(report: Mapping[str, Any], trend: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    by_day: dict[str, Mapping[str, Any]] = {}
    for r in [*trend, report]:  # today's report last, so it wins over a stored copy of itself
        if isinstance(r, Mapping) and "ds" in r:
            by_day[str(r["ds"])] = r
    return [by_day[d] for d in sorted(by_day)]


def _dates(reports: Sequence[Mapping[str, Any]]) -> list[dt.datetime]:
    # Partition starts: an hourly pipeline's trend is plotted by the hour.
    return [parse_key(r["ds"]).replace(tzinfo=None) for r in reports]


def _style_time_axis(ax: Any, dates: Sequence[dt.date]) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    if len(set(dates)) < 2:  # one day: give the locator a range to work with
        day = dates[0] if dates else dt.date.today()
        ax.set_xlim(day - dt.timedelta(days=1), day + dt.timedelta(days=1))
    locator = AutoDateLocator(minticks=2, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.tick_params(labelsize=6)


def _psi_of(report: Mapping[str, Any], name: str) -> float:
    features = report.get("features")
    entry = features.get(name) if isinstance(features, Mapping) else None
    value = entry.get("psi") if isinstance(entry, Mapping) else None
    return np.nan if value is None else float(value)


def _feature_trend(reports: Sequence[Mapping[str, Any]], names: list[str], threshold: float) -> str:
    fig = _new_figure((5.0, 3.0))
    ax = fig.add_subplot()
    dates = _dates(reports)
    for name in names:
        ys = [_psi_of(r, name) for r in reports]
        ax.plot(dates, ys, marker=".", linewidth=1, label=_label(name))
    ax.axhline(threshold, color="red", linestyle="--", linewidth=0.8, label="threshold")
    ax.set_ylabel("PSI", fontsize=7)
    ax.set_title("feature PSI by day", fontsize=8)
    _style_time_axis(ax, dates)
    ax.legend(fontsize=5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return _png(fig)


def _prediction_trend(reports: Sequence[Mapping[str, Any]], thresholds: Mapping[str, Any]) -> str:
    fig = _new_figure((4.0, 4.0))
    top, bottom = fig.subplots(2, 1, sharex=True)
    dates = _dates(reports)

    def pick(r: Mapping[str, Any], *path: str) -> float:
        value: Any = r
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        return np.nan if value is None else float(value)

    top.plot(dates, [pick(r, "prediction", "psi") for r in reports], marker=".", linewidth=1)
    if thresholds.get("prediction_psi_threshold") is not None:
        top.axhline(thresholds["prediction_psi_threshold"], color="red", linestyle="--", linewidth=0.8)
    top.set_ylabel("prediction PSI", fontsize=7)
    top.set_title("prediction drift and performance", fontsize=8)
    bottom.plot(dates, [pick(r, "performance", "auc") for r in reports], marker=".", linewidth=1, label="AUC")
    bottom.plot(
        dates,
        [pick(r, "performance", "reference_auc") for r in reports],
        linestyle="--",
        linewidth=0.8,
        color="grey",
        label="reference AUC",
    )
    bottom.set_ylabel("AUC", fontsize=7)
    bottom.legend(fontsize=6)
    for ax in (top, bottom):
        _style_time_axis(ax, dates)
    fig.tight_layout()
    return _png(fig)


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.drifted{background:#fde0dc;font-weight:bold}
.status-drift{color:#b00}.status-unconfirmed{color:#c60}.status-no_drift{color:#070}
.status-insufficient_rows{color:#666}figure{display:inline-block;margin:0.3em}
"""


def render_html(
    report: Mapping[str, Any],
    *,
    profile: Mapping[str, Any],
    frame_features: Mapping[str, Any],
    trend: list[dict],
) -> str:
    """A self-contained HTML page of a monitoring report (charts as inline base64 PNG images).

    ``frame_features`` is ``monitoring.current_features(frame, pipeline)`` of the day (for the histograms);
    ``trend`` holds earlier reports, today's is added if it is not there. Shows the verdict and its
    reasons, a table of every feature's statistics (drifted ones highlighted), reference-vs-current
    histograms for the drifted features (the top 3 by PSI when none drifted), PSI by day per
    feature, and prediction PSI and AUC by day. Every text is escaped.
    """
    e = html.escape
    verdict = report.get("verdict", {})
    status = str(verdict.get("status"))
    features: Mapping[str, Any] = report.get("features", {})
    drifted = [d["feature"] for d in report.get("drifted_features", [])]
    thresholds = report.get("thresholds", {})
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Monitoring {e(str(report.get('pipeline', '')))} {e(str(report.get('ds')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Monitoring report: {e(str(report.get('pipeline', '')))} — {e(str(report.get('ds')))}</h1>",
        "<p>",
        f"Champion version <b>{e(str(report.get('champion_version')))}</b>; ",
        f"{e(str(report.get('n_rows')))} rows. ",
        f'Verdict: <b class="status-{e(status)}">{e(status)}</b> ',
        f"({e(str(verdict.get('drifted_days')))} of the last {e(str(verdict.get('window')))} days drifted, "
        f"{e(str(verdict.get('required')))} required).",
        "</p>",
    ]
    reasons = verdict.get("reasons", [])
    if reasons:
        out.append("<h2>Reasons</h2><ul>")
        for r in reasons:
            what = f"{r.get('scope')} {r['feature']}" if r.get("feature") else str(r.get("scope"))
            out.append(
                f"<li>{e(what)} {e(str(r.get('statistic')))} = "
                f"{e(_fmt(r.get('value'), '.4g'))} ≥ {e(_fmt(r.get('threshold'), 'g'))}</li>"
            )
        out.append("</ul>")
    warnings = report.get("warnings", [])
    if warnings:
        out.append("<h2>Warnings</h2><ul>")
        out.extend(f"<li>{e(str(w))}</li>" for w in warnings)
        out.append("</ul>")

    out.append("<h2>Features</h2><table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS</th>")
    out.append("<th>KS p</th><th>χ²</th><th>χ² p</th><th>JS</th></tr>")
    for name, s in features.items():
        cls = ' class="drifted"' if name in drifted else ""
        cells = [s.get(k) for k in ("psi", "ks", "ks_pvalue", "chi2", "chi2_pvalue", "js")]
        out.append(
            f"<tr{cls}><td>{e(str(name))}</td><td>{e(str(s.get('kind')))}</td>"
            + "".join(f"<td>{e(_fmt(c))}</td>" for c in cells)
            + "</tr>"
        )
    out.append("</table>")
    for name in report.get("missing_features", []):
        out.append(f"<p>Missing from the frame: {e(str(name))}</p>")

    pred = report.get("prediction") or {}
    perf = report.get("performance") or {}
    out.append("<h2>Prediction and performance</h2><ul>")
    out.append(
        f"<li>prediction PSI {e(_fmt(pred.get('psi')))} (threshold "
        f"{e(_fmt(thresholds.get('prediction_psi_threshold'), 'g'))}), KS {e(_fmt(pred.get('ks')))}</li>"
    )
    out.append(
        f"<li>AUC {e(_fmt(perf.get('auc'), '.4f'))} on {e(str(perf.get('n_labelled')))} labelled rows, "
        f"reference AUC {e(_fmt(perf.get('reference_auc'), '.4f'))}, drop {e(_fmt(perf.get('auc_drop'), '.4f'))} "
        f"(threshold {e(_fmt(thresholds.get('auc_drop_threshold'), 'g'))}), "
        f"log loss {e(_fmt(perf.get('log_loss'), '.4f'))}</li>"
    )
    if perf.get("note"):
        out.append(f"<li>{e(str(perf['note']))}</li>")
    out.append("</ul>")

    shown = drifted or sorted(features, key=lambda n: -(features[n].get("psi") or 0.0))[:_TOP_WHEN_CLEAN]
    entries = profile.get("features", {})
    title = "Drifted features" if drifted else f"Top {len(shown)} features by PSI (none drifted)"
    out.append(f"<h2>{e(title)}</h2>")
    for name in shown:
        if name not in entries:
            continue
        uri = _histogram(name, entries[name], frame_features.get(name), features.get(name, {}))
        if uri:
            out.append(f'<figure><img alt="{e(str(name))} histogram" src="{uri}"></figure>')

    reports = _trend_reports(report, trend)
    out.append("<h2>Over time</h2>")
    names = list(features)
    if names:
        uri = _feature_trend(reports, names, float(thresholds.get("psi_threshold", 0.2)))
        out.append(f'<figure><img alt="feature PSI by day" src="{uri}"></figure>')
    uri = _prediction_trend(reports, thresholds)
    out.append(f'<figure><img alt="prediction PSI and AUC by day" src="{uri}"></figure>')
    out.append("</body></html>")
    return "\n".join(out)
