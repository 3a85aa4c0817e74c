"""Charts drawn on the server as inline SVG: no script, no font or file from elsewhere.

Every chart shares a day axis (``Frame``: one slot per partition, oldest left). Each mark carries
its data as ``data-*`` attributes and a ``<title>`` (the tooltip), so what a person reads and what a
test checks are the same numbers. Every text and attribute value is escaped here, where it is
written; callers pass raw values.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GREEN, AMBER, RED, BLUE, GREY = "#2e7d32", "#ef8f00", "#c62828", "#1f6fb2", "#8a8a8a"
PALETTE = ("#1f6fb2", "#7b3fa0", "#00897b", "#c2185b", "#5d4037", "#f9a825", "#455a64", "#6d8f00")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def attrs(**values: object) -> str:
    """``key="value"`` pairs, escaped; ``data_x`` becomes ``data-x``; None values are left out."""
    return " ".join(f'{k.replace("_", "-")}="{esc(v)}"' for k, v in values.items() if v is not None)


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


@dataclass(frozen=True)
class Frame:
    """A plot area over ``days`` (one slot each) and a y range."""

    days: Sequence[str]
    lo: float = 0.0
    hi: float = 1.0
    width: int = 960
    height: int = 150
    left: int = 150  # room for the heatmap's feature names: every chart's days line up
    right: int = 16
    top: int = 10
    bottom: int = 24

    def __post_init__(self) -> None:
        object.__setattr__(self, "_slot", {d: i for i, d in enumerate(self.days)})

    @property
    def slot(self) -> float:
        return (self.width - self.left - self.right) / max(len(self.days), 1)

    def x(self, ds: str) -> float:
        return self.left + (self._slot[ds] + 0.5) * self.slot  # type: ignore[attr-defined]

    def y(self, value: float) -> float:
        span = (self.hi - self.lo) or 1.0
        clipped = min(max(value, self.lo), self.hi)
        return self.top + (self.height - self.top - self.bottom) * (1 - (clipped - self.lo) / span)

    def open(self, label: str, chart: str) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" {attrs(viewBox=f"0 0 {self.width} {self.height}", width=self.width, height=self.height, role="img", aria_label=label, data_chart=chart)}>'
            f"<title>{esc(label)}</title>"
        )

    def axes(self, ticks: Sequence[float], tick_text: Callable[[float], str] = fmt) -> str:
        """The y ticks with grid lines and about seven day labels along x."""
        parts = []
        right = self.width - self.right
        for tick in ticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{self.left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                f'<text x="{self.left - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end" fill="#555">{esc(tick_text(tick))}</text>'
            )
        if self.days:
            step = max(1, math.ceil(len(self.days) / 7))
            for ds in list(self.days)[::step]:
                parts.append(
                    f'<text x="{self.x(ds):.1f}" y="{self.height - 6}" font-size="10" text-anchor="middle" fill="#555">{esc(ds)}</text>'
                )
        return "".join(parts)


def _ticks(lo: float, hi: float, n: int = 3) -> list[float]:
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def _range(values: Sequence[float | None], *, floor: float | None = None) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    lo, hi = min(finite), max(finite)
    if floor is not None:
        lo = min(lo, floor)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 0.5
    return (lo - pad if floor is None else lo, hi + pad)


def link(href: str | None, body: str) -> str:
    return f"<a {attrs(href=href)}>{body}</a>" if href else body


def timeline(
    days: Sequence[str], points: Sequence[Mapping[str, Any]], href: Callable[[str], str], metric: str
) -> str:
    """Registered versions at their window's end: filled when promoted, a cross when the gate refused."""
    placed = [p for p in points if p.get("as_of") in set(days)]
    lo, hi = _range([p.get("metric") for p in placed])
    frame = Frame(days, lo, hi, height=180)
    parts = [
        frame.open(f"champion timeline: {metric} of every registered version", "timeline"),
        frame.axes(_ticks(lo, hi)),
    ]
    for p in placed:
        value = p.get("metric")
        x, y = frame.x(p["as_of"]), frame.y(value if value is not None else lo)
        promoted = bool(p.get("moves"))
        state = "promoted" if promoted else p.get("gate") or "registered"
        title = f"version {p['version']} as of {p['as_of']}: {metric} {fmt(value, 4)} ({p.get('metric_source')}); {state}"
        if p.get("gate_decision"):
            title += f"; gate: {p['gate_decision']}"
        if state == "refused":
            mark = f'<path d="M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}M{x - 5:.1f},{y + 5:.1f}L{x + 5:.1f},{y - 5:.1f}" stroke="{RED}" stroke-width="2"/>'
        else:
            fill = GREEN if promoted else "#fff"
            mark = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{fill}" stroke="{GREEN if promoted else BLUE}" stroke-width="2"/>'
        parts.append(
            link(
                href(p["version"]),
                f"<g {attrs(data_version=p['version'], data_ds=p['as_of'], data_metric=value, data_state=state)}>"
                f"<title>{esc(title)}</title>{mark}"
                f'<text x="{x:.1f}" y="{y - 9:.1f}" font-size="10" text-anchor="middle">{esc("v" + str(p["version"]))}</text></g>',
            )
        )
    return "".join(parts) + "</svg>"


def day_bars(
    days: Sequence[str],
    bars: Sequence[Mapping[str, Any]],
    *,
    chart: str,
    label: str,
    value_text: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> str:
    """One bar per day: ``{"ds", "value", "color", "href", "title", "data": {...}}``."""
    hi = max((b["value"] for b in bars), default=1) or 1
    frame = Frame(days, 0.0, hi * 1.05)
    parts = [frame.open(label, chart), frame.axes(_ticks(0.0, hi), value_text)]
    width = max(frame.slot * 0.8, 1.0)
    for bar in bars:
        x, top = frame.x(bar["ds"]) - width / 2, frame.y(bar["value"])
        height = max(frame.y(0.0) - top, 1.0)
        body = (
            f"<g {attrs(data_ds=bar['ds'], **{f'data_{k}': v for k, v in bar.get('data', {}).items()})}>"
            f"<title>{esc(bar['title'])}</title>"
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{bar.get("color", BLUE)}"/></g>'
        )
        parts.append(link(bar.get("href"), body))
    return "".join(parts) + "</svg>"


def day_lines(
    days: Sequence[str],
    series: Mapping[str, Sequence[tuple[str, float | None]]],
    *,
    chart: str,
    label: str,
    thresholds: Mapping[str, float | None] | None = None,
    marks: Sequence[str] = (),
    mark_label: str = "",
) -> str:
    """Lines per series over the days (gaps where a day has no value), dashed thresholds, and
    vertical marks on ``marks`` days (e.g. the days a retrain fired)."""
    thresholds = {k: v for k, v in (thresholds or {}).items() if v is not None}
    values = [v for points in series.values() for _, v in points] + list(thresholds.values())
    lo, hi = _range(values, floor=0.0)
    frame = Frame(days, lo, hi)
    parts = [frame.open(label, chart), frame.axes(_ticks(lo, hi))]
    for ds in marks:
        if ds in frame._slot:  # type: ignore[attr-defined]
            x = frame.x(ds)
            parts.append(
                f"<g {attrs(data_mark=ds)}><title>{esc(f'{mark_label} {ds}')}</title>"
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{frame.y(lo):.1f}" stroke="{RED}" stroke-dasharray="2,2"/></g>'
            )
    for i, (name, points) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        runs, run = [], []
        for ds, value in points:
            if value is None or not math.isfinite(value) or ds not in frame._slot:  # type: ignore[attr-defined]
                if run:
                    runs.append(run)
                run = []
                continue
            run.append((frame.x(ds), frame.y(value), ds, value))
        if run:
            runs.append(run)
        for run in runs:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in run)
            parts.append(
                f'<polyline {attrs(data_series=name)} points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            )
            for x, y, ds, value in run:
                parts.append(
                    f'<circle {attrs(data_series=name, data_ds=ds, data_value=value)} cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}">'
                    f"<title>{esc(f'{name} {ds}: {fmt(value, 4)}')}</title></circle>"
                )
        if name in thresholds:
            y = frame.y(thresholds[name])
            parts.append(
                f'<line {attrs(data_threshold=name)} x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" stroke-dasharray="6,3"/>'
            )
    legend_x = frame.left + 6
    for i, name in enumerate(series):
        parts.append(
            f'<text x="{legend_x + i * 150}" y="{frame.top + 10}" font-size="10" fill="{PALETTE[i % len(PALETTE)]}">{esc(name)}</text>'
        )
    return "".join(parts) + "</svg>"


@functools.lru_cache(maxsize=256)
def _blend(step: int) -> str:
    """The colour ``step`` hundredths of the way from white (0) over amber (50) to red (100)."""
    t = step / 100
    if t <= 0.5:
        a = t / 0.5
        rgb = (255, round(255 - (255 - 0xBF) * a), round(255 - 255 * a))
    else:
        a = (t - 0.5) / 0.5
        rgb = (round(255 - (255 - 0xC6) * a), round(0xBF - (0xBF - 0x28) * a), round(0x28 * a))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def psi_color(value: float | None, threshold: float) -> str:
    """White at 0, amber at the threshold, red at twice it; grey where there is no figure."""
    if value is None or not math.isfinite(value):
        return "#eeeeee"
    return _blend(round(min(max(value / (2 * threshold), 0.0), 1.0) * 100))


def heatmap(
    days: Sequence[str],
    features: Sequence[str],
    psi: Mapping[str, Mapping[str, float | None]],
    *,
    threshold: float,
    href: Callable[[str], str],
    fired: Sequence[str] = (),
) -> str:
    """PSI per feature (rows, in ``features`` order) and day (columns). A column links to its drift
    report, its tooltip names the day's largest PSIs, each cell carries its ``data-psi``; a red tick
    over the days whose drift fired a retrain. Cells are written without per-cell escaping (numbers
    only): a year of 30 features is 11,000 of them."""
    row = 14
    frame = Frame(days, 0, 1, top=14, height=14 + row * len(features) + 24)
    parts = [
        frame.open(f"PSI per feature and day (threshold {threshold:g})", "heatmap"),
        frame.axes([]),
        *(
            f'<text x="{frame.left - 4}" y="{frame.top + i * row + 11}" font-size="10" text-anchor="end">{esc(name)}</text>'
            for i, name in enumerate(features)
        ),
    ]
    width = f"{max(frame.slot, 1.0):.2f}"
    fired_days = set(fired)
    tops = [frame.top + i * row for i in range(len(features))]
    for ds in days:
        values = psi.get(ds)
        if values is None:
            continue
        x = f"{frame.x(ds) - max(frame.slot, 1.0) / 2:.1f}"
        cells = []
        for top, name in zip(tops, features, strict=True):
            value = values.get(name)
            shown = "" if value is None or not math.isfinite(value) else f"{value:.4g}"
            cells.append(
                f'<rect data-psi="{shown}" x="{x}" y="{top}" width="{width}" height="{row - 1}" fill="{psi_color(value, threshold)}"/>'
            )
        ranked = sorted(
            ((v, n) for n, v in values.items() if v is not None and math.isfinite(v)), reverse=True
        )
        title = f"{ds}: PSI " + ", ".join(f"{n} {v:.3g}" for v, n in ranked[:5])
        tick = (
            f'<rect data-fired="true" x="{x}" y="2" width="{width}" height="8" fill="{RED}"/>'
            if ds in fired_days
            else ""
        )
        parts.append(
            link(href(ds), f"<g {attrs(data_ds=ds)}><title>{esc(title)}</title>{tick}{''.join(cells)}</g>")
        )
    return "".join(parts) + "</svg>"
