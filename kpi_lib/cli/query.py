"""kpi query, ask and detect: questions to the KPIs, and anomaly rules over a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from ..errors import KpiError
from ..formats import cents, money_columns, spreadsheet_safe, to_json
from .base import DayFirst, actor, app, console, err


def _as_the_data_spells(filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each --where value as the data holds it. A slip of case or accent ("österreich") is read as
    the one value it can be, and said so; a value the data does not hold is an error listing the
    ones it does (it used to answer 0, as if nothing had been sold there)."""
    from .. import kpis
    from ..ask.lexicon import norm

    out: dict[str, list[str]] = {}
    for dim, values in filters.items():
        known = [str(v) for v in kpis.dimension_values(dim) if v is not None]
        spelt: dict[str, list[str]] = {}
        for k in known:
            spelt.setdefault(norm(k), []).append(k)
        for v in values:
            match = [v] if v in known else spelt.get(norm(v), [])
            if len(match) != 1:
                shown = ", ".join(known[:20]) + (f" ... ({len(known)} in all)" if len(known) > 20 else "")
                raise KpiError(
                    f"No {dim} {v!r} in the data"
                    + (f" you can see. The {dim} values are: {shown}." if known else ".")
                )
            if match[0] != v:
                err.print(f"--where {dim}={v}: read as {match[0]!r}")
            out.setdefault(dim, []).append(match[0])
    return out


@app.command()
def query(
    kpi: Annotated[str, typer.Argument(help="KPI name (kpi query --list shows them)")] = "",
    grain: Annotated[str, typer.Option(help="hour | day | week | month | total")] = "day",
    start: Annotated[str | None, typer.Option(help="First day/time, inclusive (business time zone)")] = None,
    end: Annotated[str | None, typer.Option(help="Last day/time, exclusive")] = None,
    by: Annotated[list[str] | None, typer.Option(help="Dimension to break down by (repeatable)")] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="DIM=VALUE filter (repeatable; repeat a DIM for OR)")
    ] = None,
    compare: Annotated[str | None, typer.Option(help="previous_period | previous_year")] = None,
    top: Annotated[int | None, typer.Option(help="Keep the N largest values of the --by dimension")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="What 'now' is for a missing --start/--end (default: the latest data, or now if live)"
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    show_sql: Annotated[
        bool, typer.Option("--sql", help="Also print the SQL and where it came from")
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the KPIs and their dimensions")] = False,
) -> None:
    """Ask a KPI question. CSV output: period first, then dimensions, value last."""
    from .. import kpis

    if list_ or not kpi:
        t = Table("kpi", "label", "dimensions", "description")
        for k in kpis.definitions().values():
            t.add_row(k.name, k.label, ", ".join(k.dimensions), k.description)
        console.print(t)
        return
    filters: dict[str, list[str]] = {}
    for item in where or []:
        if "=" not in item:
            raise KpiError(f"--where {item!r} should look like DIM=VALUE, e.g. --where region=Europe.")
        dim, value = item.split("=", 1)
        filters.setdefault(dim.strip(), []).append(value.strip())
    filters = _as_the_data_spells(filters)
    r = kpis.query(
        kpi,
        grain,
        start=start,
        end=end,
        by=by or (),
        where=filters,
        compare=compare,
        top=top,
        as_of=as_of,
    )
    from .. import auth

    auth.audit(actor(), "query", kpi, grain=grain, start=str(r.start), end=str(r.end), by=by, where=filters)
    df = r.df.copy()
    if "period" in df:
        fmt_p = "%Y-%m-%d %H:%M" if grain == "hour" else "%Y-%m-%d"
        df["period"] = df["period"].dt.strftime(fmt_p)
    if fmt in ("csv", "json"):  # money to the cent; ratios and changes keep their precision
        df = cents(df, money_columns(r.kpi))
    if fmt == "csv":
        sys.stdout.write(spreadsheet_safe(df).to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(
            to_json({"data": df.to_dict(orient="records"), "provenance": r.provenance()}, indent=1) + "\n"
        )
    else:
        # periods before the first order or after the last hold no data, not a zero (a 2018-2019
        # export asked about the whole of both years)
        first, last = kpis.earliest_data(), kpis.latest_data()
        outside = pd.Series(False, index=r.df.index)
        notes = []
        if first is not None and "period" in r.df and grain != "total":
            before = r.df["period"] < pd.Timestamp(kpis.floor_period(first, grain))
            # on live data an hour after the newest order is a quiet hour: a zero, not "no data"
            after = (r.df["period"] > pd.Timestamp(last)) & (not r.as_of.live)
            outside = before | after
            if before.any():
                notes.append(f"before the data starts ({first:%Y-%m-%d %H:%M})")
            if after.any():
                notes.append(f"after it ends ({last:%Y-%m-%d %H:%M})")
        t = Table(
            *df.columns,
            title=f"{r.kpi.label} · {r.start:%Y-%m-%d %H:%M} → {r.end:%Y-%m-%d %H:%M} · {r.as_of.describe()}",
            caption=f"– {' and '.join(notes)}" if notes else None,
        )
        for empty, row in zip(outside, df.itertuples(index=False), strict=True):
            cells = []
            for col, v in zip(df.columns, row, strict=True):
                if col == "value" and empty:
                    cells.append("–")
                elif col in ("value", "previous"):
                    cells.append(r.kpi.format_value(v))
                elif col == "change":
                    cells.append("–" if v != v else f"{v:+.1%}")
                else:
                    cells.append(str(v))
            t.add_row(*cells)
        console.print(t)
    if show_sql:
        err.print(
            f"-- catalog entries: {', '.join(r.catalog_entries)} · answered by {r.cache_level} · "
            f"data version {r.version} · {r.elapsed_ms:.1f} ms"
        )
        err.print(r.sql)
        err.print(f"-- parameters: {r.params}")


@app.command()
def ask(
    question: Annotated[list[str], typer.Argument(help="The question, in plain English")],
    as_of: Annotated[
        str | None,
        typer.Option(help="What 'now' is for relative dates (default: the latest data, or now if live)"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    user: Annotated[
        str | None, typer.Option(help="Answer as this dashboard user (their masking applies)")
    ] = None,
) -> None:
    """Answer a question about the KPIs exactly, with its SQL and sources, or say why not."""
    from .. import auth
    from ..ask import ask as run
    from ..ask.render import text

    who = auth.user(user) if user else None
    answer = run(" ".join(question), as_of=as_of, user=who, surface="cli")
    if fmt == "json":
        sys.stdout.write(answer.to_json() + "\n")
        return
    console.print(text(answer), markup=False, highlight=False)
    if answer.sql:
        err.print(answer.sql, markup=False, highlight=False)


@app.command()
def detect(
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or Excel (.xlsx) with a time column and a value column")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the scored rows")],
    time_column: Annotated[
        str | None,
        typer.Option(help="Time column (default: timestamp, else the file's only column of dates)"),
    ] = None,
    value_column: Annotated[
        str | None, typer.Option(help="Value column (default: value, else the file's only column of numbers)")
    ] = None,
    rules: Annotated[str, typer.Option(help="Built-in rule set name or a YAML/JSON rules file")] = "default",
    dayfirst: DayFirst = None,
    sensitivity: Annotated[
        str,
        typer.Option(help="low | medium | high: false alarms allowed a quarter, once or four times as often"),
    ] = "medium",
    chart: Annotated[
        Path | None,
        typer.Option(help="Also draw the series, its expected range and its incidents (.png, .svg, .pdf)"),
    ] = None,
) -> None:
    """Run anomaly rules over a series; writes is_anomaly, score, severity, explanation and rule per row."""
    from ..anomaly import detect_file

    guess = tuple(name for name, given in (("time", time_column), ("value", value_column)) if given is None)
    out = detect_file(
        file,
        output,
        time_column=time_column or "timestamp",
        value_column=value_column or "value",
        rules=rules,
        dayfirst=dayfirst,
        guess=guess,
        sensitivity=sensitivity,
        chart=chart,
        suggest=True,
    )
    time_column, value_column = out.attrs["columns"]
    if (time_column, value_column) != ("timestamp", "value") and guess:
        console.print(f"Columns: {time_column} (time), {value_column} (value).")
    _print_detect_summary(out, time_column, output)
    if chart is not None:
        console.print(f"Drew {chart}.")


_SHOWN_INCIDENTS = 20


def _print_detect_summary(out, time_column: str, output: Path) -> None:
    """What a person reads after `kpi detect`: the incidents, the warm-up, where the file went."""
    onsets = np.flatnonzero(out["is_anomaly"].to_numpy() == 1)
    n, first = len(out), out.attrs.get("judged_from")
    if first is None:
        console.print(f"Read {n:,} rows.")
    else:
        console.print(f"Scored {n:,} rows: {len(onsets):,} incident{'s' if len(onsets) != 1 else ''}.")
    if len(onsets):
        for pos in onsets[:_SHOWN_INCIDENTS]:
            r = out.iloc[pos]
            console.print(
                f"  {r[time_column]} (row {pos + 1:,}, {r['severity']}, {r['rule']}): {r['explanation']}",
                markup=False,
                highlight=False,
            )
        if len(onsets) > _SHOWN_INCIDENTS:
            console.print(f"... and {len(onsets) - _SHOWN_INCIDENTS:,} more in the output file.")
    if out.attrs.get("near_miss"):
        console.print(out.attrs["near_miss"], markup=False, highlight=False)
    if out.attrs.get("more_sensitive"):
        found = out.attrs["more_sensitive"]
        pos, sentence = found[0]
        console.print(
            f"With --sensitivity high (false alarms allowed four times as often) it would raise "
            f"{len(found)} more incident{'s' if len(found) != 1 else ''}, the first at row {pos + 1:,}: "
            f"{sentence}",
            markup=False,
            highlight=False,
        )
    if first is None:
        console.print(
            "[yellow]No row could be judged:[/] the rules learn a series' usual range and its alarm "
            f"thresholds from its own past before they can alarm, and {n:,} rows were not enough "
            "for any of them. Nothing in this file was checked: give it more history."
        )
    elif first > 0:
        console.print(
            f"Rows 1-{first:,} (to {out[time_column].iloc[first - 1]}) were the warm-up: the rules "
            "learned the series' usual range there, and no alarm could fire."
        )
    console.print(f"Wrote {output}.")
