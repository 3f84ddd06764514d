"""An email report built block by block: HTML with inline charts plus its plain-text twin.

Alert emails and the daily digest share it, so every email has the same look and the same
provenance section (which job, which parameters, which catalog entries and SQL, which notebook).
In a notebook a Report shows itself (charts as data: URIs), so the job's HTML rendering is the email.

    >>> r = Report("Daily KPI report")                      # doctest: +SKIP
    >>> r.paragraph("Revenue was $12.4k."); r.figure(fig, "revenue", "Revenue, last 90 days")
    >>> r.table(df); r.provenance(prov)
    >>> email = r.to_email("Daily KPI report", ["exec@example.com"], kind="report")
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from ..mail.compose import Email, Part, csv_part, figure_part

#: One macro per block (templates/email.html); autoescaped, so only Markup passes through as HTML.
BLOCKS = (
    jinja2.Environment(
        loader=jinja2.PackageLoader("kpi_lib.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    .get_template("email.html")
    .module
)
SEVERITY_COLORS = {"high": "#c0392b", "medium": "#e67e22", "low": "#b7950b"}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _shown(value: Any) -> Any:
    """What a block shows for a value: None as nothing, HTML as is, anything else as escaped text."""
    if value is None:
        return ""
    if isinstance(value, Html):
        return Markup(value.html)
    return value


def signed_pct(pct: float | None, digits: int = 0) -> str:
    """-94.2 -> '−94%' (a real minus sign), 12.5 -> '+13%', None -> '–'."""
    if pct is None or (isinstance(pct, float) and not math.isfinite(pct)):
        return "–"
    text = f"{abs(pct):,.{digits}f}%"
    return ("−" if pct < 0 else "+") + text if round(abs(pct), digits) else f"{0:.{digits}f}%"


def badge(severity: str) -> str:
    return str(BLOCKS.badge(severity, SEVERITY_COLORS.get(severity, "#555")))


@dataclass
class _Block:
    html: str
    text: str


class Report:
    """Blocks of HTML with a text twin each, inline images and attachments."""

    def __init__(self, title: str, subtitle: str | None = None):
        self.title = title
        self.blocks: list[_Block] = []
        self.inline: list[Part] = []
        self.attachments: list[Part] = []
        self.add(BLOCKS.title(title), f"{title}\n{'=' * len(title)}")
        if subtitle:
            self.add(BLOCKS.subtitle(subtitle), subtitle)

    # --- blocks ---------------------------------------------------------------------------------

    def add(self, html_fragment: str, text: str) -> None:
        """A block of ready HTML (escape what it shows) with its plain-text twin."""
        self.blocks.append(_Block(str(html_fragment), text))

    def heading(self, text: str, level: int = 2) -> None:
        size = {2: 17, 3: 15}.get(level, 14)
        self.add(BLOCKS.heading(text, level, size), f"\n{text}\n{'-' * len(text)}")

    def paragraph(self, text: str, muted: bool = False) -> None:
        self.add(BLOCKS.paragraph(text, muted), text)

    def facts(self, items: Mapping[str, Any]) -> None:
        """A two-column key/value table (values may be pre-built HTML via :class:`Html`)."""
        self.add(
            BLOCKS.facts([(k, _shown(v)) for k, v in items.items() if v is not None]),
            "\n".join(
                f"{k}: {v.text if isinstance(v, Html) else v}" for k, v in items.items() if v is not None
            ),
        )

    def table(
        self,
        df: pd.DataFrame,
        formats: Mapping[str, Callable[[Any], str]] | None = None,
        max_rows: int = 30,
        html_columns: tuple[str, ...] = (),
    ) -> None:
        """A DataFrame as a table; ``formats`` maps column -> formatter; ``html_columns`` hold HTML."""
        formats = formats or {}
        shown = df.head(max_rows)

        def cell(col: str, v: Any) -> str:
            if col in formats:
                return formats[col](v)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "–"
            if isinstance(v, float):
                return f"{v:,.2f}"
            if isinstance(v, pd.Timestamp | datetime):
                return f"{v:%Y-%m-%d %H:%M}"
            return str(v)

        rows = [
            [
                Markup(cell(c, v)) if c in html_columns else cell(c, v)
                for c, v in zip(shown.columns, row, strict=True)
            ]
            for row in shown.itertuples(index=False)
        ]
        text_rows = [" | ".join(str(c) for c in shown.columns)]
        text_rows += [
            " | ".join(
                html.unescape(re.sub(r"<[^>]+>", "", cell(c, v))) if c in html_columns else cell(c, v)
                for c, v in zip(shown.columns, row, strict=True)
            )
            for row in shown.itertuples(index=False)
        ]
        if len(df) > max_rows:
            text_rows.append(f"... and {len(df) - max_rows} more rows")
        self.add(BLOCKS.table(list(shown.columns), rows, max(0, len(df) - max_rows)), "\n".join(text_rows))

    def figure(self, fig, name: str, alt: str, width: int = 640) -> Part:
        """A matplotlib Figure as an inline PNG (closed afterwards to free memory)."""
        part = figure_part(fig, name)
        self.inline.append(part)
        self.add(BLOCKS.figure(part.content_id, alt, width), f"[chart: {alt}]")
        return part

    def attach(self, part: Part) -> None:
        self.attachments.append(part)

    def attach_csv(self, df: pd.DataFrame, filename: str) -> Part:
        part = csv_part(df, filename)
        self.attachments.append(part)
        return part

    def provenance(self, prov: Mapping[str, Any]) -> None:
        """The standard "where did this come from" section: job, run, parameters, notebook, queries."""
        self.heading("Provenance", 3)
        p = dict(prov)
        items: dict[str, Any] = {}
        if p.get("job"):
            run = f" run #{p['run_id']}" if p.get("run_id") is not None else ""
            items["Job"] = f"{p['job']}{run} ({p.get('trigger') or 'manual'})"
        else:
            items["Job"] = p.get("source") or "interactive session (no job run)"
        if p.get("scheduled_for"):
            items["Scheduled for"] = p["scheduled_for"]
        if p.get("parameters"):
            params = json.dumps(p["parameters"], default=str)
            items["Parameters"] = Html(str(BLOCKS.code(params)), params)
        for key, label in (("notebook", "Executed notebook"), ("html", "Rendered report")):
            if p.get(key):
                url = p.get(f"{key}_url")
                items[label] = Html(
                    str(BLOCKS.link(url, p[key]) if url else BLOCKS.code(p[key])),
                    f"{p[key]}" + (f" ({url})" if url else ""),
                )
        items["Generated"] = p.get("generated_at")
        items["Host"] = p.get("host")
        self.facts(items)
        for q in p.get("queries") or ():
            entries = ", ".join(q.get("catalog_entries") or ())
            where = q.get("where") or {}
            title = f"{q.get('kpi')} by {q.get('grain')}" + (f" where {where}" if where else "")
            params = json.dumps(q.get("params") or {}, default=str)
            self.add(
                BLOCKS.query(title, entries, *(_shown(q.get(k)) for k in ("start", "end", "sql")), params),
                f"Query {title}; catalog: {entries}; {q.get('start')} -> {q.get('end')}\n{q.get('sql')}\n"
                f"-- params: {json.dumps(q.get('params') or {}, default=str)}",
            )

    # --- output ---------------------------------------------------------------------------------

    def html(self) -> str:
        return str(BLOCKS.document(Markup("\n".join(b.html for b in self.blocks))))

    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks) + "\n"

    def to_email(
        self,
        subject: str,
        recipients: list[str],
        kind: str = "report",
        provenance: Mapping[str, Any] | None = None,
        kpis: list[str] | None = None,
        rows: dict[str, list[str]] | None = None,
    ) -> Email:
        """The report as an e-mail. ``kpis`` and ``rows`` say what it shows, so the inbox and
        report pages show it only to people whose roles may read all of it."""
        return Email(
            subject=subject,
            recipients=list(recipients),
            text=self.text(),
            html=self.html(),
            inline=list(self.inline),
            attachments=list(self.attachments),
            kind=kind,
            provenance=dict(provenance or {}),
            kpis=None if kpis is None else list(kpis),
            rows=rows,
        )

    def _repr_html_(self) -> str:
        out = "\n".join(b.html for b in self.blocks)
        for p in self.inline:
            uri = f"data:{p.content_type};base64,{base64.b64encode(p.read()).decode('ascii')}"
            out = out.replace(f"cid:{p.content_id}", uri)
        return str(BLOCKS.notebook_view(Markup(out), [p.filename for p in self.attachments]))


@dataclass(frozen=True)
class Html:
    """A value that is already HTML (with its text twin) for :meth:`Report.facts`."""

    html: str
    text: str
