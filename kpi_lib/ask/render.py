"""An Answer as an HTML card (JupyterLab, the landing page, the executive page) and as text.

Everything that came from the question or the data is escaped: the card is safe to put in a page.
"""

from __future__ import annotations

import html
import math

from .. import kpis
from ..errors import KpiError
from .answer import Answer

CSS = """
.kpi-ask-card {font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; border: 1px solid #e3e6ea;
  border-radius: 10px; padding: 14px 16px; background: #fff; color: #15202b; max-width: 760px;}
.kpi-ask-card .kpi-ask-q {color: #5f6b7a; font-size: 13px; margin-bottom: 6px;}
.kpi-ask-card .kpi-ask-number {font-size: 30px; font-weight: 650; margin: 2px 0 6px;}
.kpi-ask-card .kpi-ask-text {font-size: 15px; line-height: 1.45;}
.kpi-ask-card.kpi-ask-decline .kpi-ask-text, .kpi-ask-card.kpi-ask-clarify .kpi-ask-text {color: #9a6700;}
.kpi-ask-card table {border-collapse: collapse; margin-top: 8px; font-size: 13px;}
.kpi-ask-card td, .kpi-ask-card th {border-bottom: 1px solid #eef0f2; padding: 3px 10px 3px 0; text-align: left;}
.kpi-ask-card details {margin-top: 10px; font-size: 13px; color: #3b4754;}
.kpi-ask-card pre {white-space: pre-wrap; background: #f6f8fa; padding: 8px; border-radius: 6px; font-size: 12px;}
.kpi-ask-card .kpi-ask-asof {font-size: 12px; color: #6e7781; margin-top: 6px;}
.kpi-ask-card a {color: #0969da;}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def chart_svg(a: Answer, width: int = 420, height: int = 120) -> str:
    """A small bar chart of the answer's rows (inline SVG: no JavaScript, nothing from a CDN)."""
    rows = [r for r in a.rows if isinstance(r.get("value"), int | float) and math.isfinite(r["value"])]
    if len(rows) < 2 or a.masked:
        return ""
    label_key = next((k for k in rows[0] if k != "value"), None)
    rows = rows[:24]
    top = max(abs(r["value"]) for r in rows) or 1.0
    bw = width / len(rows)
    bars = []
    for i, r in enumerate(rows):
        h = abs(r["value"]) / top * (height - 20)
        label = _e(r.get(label_key, "")) if label_key else ""
        bars.append(
            f"<rect x='{i * bw + 2:.1f}' y='{height - 14 - h:.1f}' width='{max(bw - 4, 1):.1f}' height='{h:.1f}' "
            f"fill='{'#4c78a8' if r['value'] >= 0 else '#cf222e'}'><title>{label}: {r['value']:,.2f}</title></rect>"
        )
    first = _e(rows[0].get(label_key, "")) if label_key else ""
    last = _e(rows[-1].get(label_key, "")) if label_key else ""
    return (
        f"<svg class='kpi-ask-chart' width='{width}' height='{height}' role='img' aria-label='chart'>"
        + "".join(bars)
        + f"<text x='0' y='{height - 2}' font-size='10' fill='#6e7781'>{first}</text>"
        f"<text x='{width}' y='{height - 2}' font-size='10' fill='#6e7781' text-anchor='end'>{last}</text></svg>"
    )


def card_html(a: Answer, with_css: bool = True) -> str:
    number = ""
    if a.status == "answer" and a.formatted:
        number = f"<div class='kpi-ask-number' data-ask-value='{_e(a.kpi)}'>{_e(a.formatted)}</div>"
    table = ""
    if a.status == "answer" and a.rows and len(a.rows) > 1:
        keys = list(a.rows[0])
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        fmt = _value_format(a.kpi)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{_e(_cell(r.get(k), _COLUMN_FORMATS.get(k, fmt if k == 'value' else None)))}</td>"
                for k in keys
            )
            + "</tr>"
            for r in a.rows[:25]
        )
        table = f"<table><tr>{head}</tr>{body}</table>"
    choices = ""
    if a.choices:
        choices = (
            "<div class='kpi-ask-choices'>Try: "
            + ", ".join(f"<span>{_e(c)}</span>" for c in a.choices[:8])
            + "</div>"
        )
    reading = "".join(f"<li>{_e(r['words'])} → {_e(r['meaning'])}</li>" for r in a.reading)
    how = ""
    if a.status == "answer":
        how = (
            "<details class='kpi-ask-how'><summary>How this was answered</summary>"
            f"<ul>{reading}</ul><div>Reading: <code>{_e(a.spec)}</code></div>"
            + (f"<div>Compared with: <code>{_e(a.compare_spec)}</code></div>" if a.compare_spec else "")
            + f"<div>Catalog entries: {_e(', '.join(a.catalog_entries))} · data version {_e(a.data_version)}</div>"
            f"<pre>{_e(a.sql)}</pre></details>"
        )
    link = (
        f"<div><a class='kpi-ask-link' href='{_e(a.link)}'>Open in the executive dashboard</a></div>"
        if a.link
        else ""
    )
    return (
        (f"<style>{CSS}</style>" if with_css else "") + f"<div class='kpi-ask-card kpi-ask-{_e(a.status)}'>"
        f"<div class='kpi-ask-q'>{_e(a.question)}</div>{number}"
        f"<div class='kpi-ask-text'>{_e(a.text)}</div>{choices}{chart_svg(a)}{table}{link}{how}"
        f"<div class='kpi-ask-asof'>{_e(a.as_of_text)}</div></div>"
    )


def _value_format(kpi: str | None):
    """The KPI's own formatter for the table's values (239 orders, $1,234.50, 23.7%)."""
    try:
        return kpis.get(kpi).format_value if kpi else None
    except KpiError:
        return None


_COLUMN_FORMATS = {"share": lambda v: f"{v:.1%}"}  # a breakdown's shares of the whole


def _cell(v, fmt=None) -> str:
    if fmt is not None and isinstance(v, int | float) and not isinstance(v, bool):
        return fmt(v)
    if isinstance(v, float):
        return f"{v:,.2f}"
    return "" if v is None else str(v)


def text(a: Answer) -> str:
    """Plain text for the terminal: the sentence, then how it was read and where it came from."""
    lines = [a.text]
    if a.choices:
        lines.append("Try: " + "; ".join(a.choices[:8]))
    if a.status == "answer":
        if a.reading:
            lines.append("Read as: " + "; ".join(f"{r['words']} → {r['meaning']}" for r in a.reading))
        lines.append(f"Catalog entries: {', '.join(a.catalog_entries)} · data version {a.data_version}")
    if a.as_of_text:
        lines.append(a.as_of_text)
    return "\n".join(lines)
