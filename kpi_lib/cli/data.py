"""kpi init, demo, load, status, sql, stop: the warehouse and what is in it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from ..config import settings
from ..errors import KpiError
from .base import DayFirst, app, console, err, progress_bar

load_app = typer.Typer(help="Bring your own data into the warehouse.", no_args_is_help=True)


@app.command()
def init(
    currency: Annotated[
        str | None, typer.Option(help="The business's currency (ISO code, e.g. GBP), recorded in catalog.yml")
    ] = None,
    locale: Annotated[
        str | None, typer.Option(help="How numbers are written (e.g. en_GB, fr_FR), recorded in catalog.yml")
    ] = None,
) -> None:
    """Start the warehouse (embedded unless DATABASE_URL is set) and apply the SQL migrations."""
    from .. import catalog, gold, warehouse

    business = catalog.set_business(currency, locale) if currency or locale else None
    applied = gold.init()
    st = warehouse.status()
    console.print(f"warehouse ready: {st.url} (PostgreSQL {st.version})")
    console.print(f"migrations applied: {', '.join(applied) if applied else 'none needed'}")
    if business:
        console.print(
            f"currency {business['currency']}, locale {business['locale']} "
            f"({catalog.own_business_path() or 'catalog.yml metadata.business'})"
        )
        if currency and not locale and (hint := catalog.locale_hint(business)):
            console.print(hint)


@app.command()
def demo(
    lines: Annotated[int, typer.Option(help="Order lines to generate (10_000_000 works)")] = 1_000_000,
    days: Annotated[int, typer.Option(help="Days of history up to now")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same business)")] = 42,
    force: Annotated[bool, typer.Option(help="Replace data that did not come from the demo")] = False,
    scan: Annotated[
        bool, typer.Option(help="Scan the history for incidents, so Anomaly review opens on them")
    ] = True,
) -> None:
    """Generate the demo retail business and load it (replaces the demo data already there)."""
    from ..demo import load_demo

    with progress_bar() as progress:
        task = progress.add_task("generating and loading", total=lines)

        def report(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        summary = load_demo(lines=lines, days=days, seed=seed, progress=report, force=force)
    s = summary.seconds
    console.print(
        f"loaded {summary.lines:,} order lines in {summary.orders:,} orders from {summary.customers:,} customers "
        f"and {summary.products} products, {summary.start:%Y-%m-%d} → {summary.end:%Y-%m-%d %H:%M} UTC"
    )
    console.print(
        f"COPY {summary.lines_per_second:,.0f} lines/s · generate {s.get('generate', 0):.1f}s · "
        f"copy {s.get('copy', 0):.1f}s · gold {s.get('gold', 0):.1f}s · views {s.get('views', 0):.1f}s · "
        f"total {s.get('total', 0):.1f}s"
    )
    console.print(
        f'{summary.anomalies} labelled anomalies are in ops.anomaly_labels (see `kpi sql "select * from ops.anomaly_labels"`)'
    )
    if scan:
        _scan_history(summary.start)
    password = _demo_user()
    console.print(
        f"dashboard login: user [bold]demo[/], password [bold]{password}[/] "
        f"(kept in {settings().home / 'demo_credentials.txt'})"
    )


def _scan_history(start) -> None:
    """Every KPI's rules over the whole history (the scheduled job only looks back a few days), so
    the dashboards open with the incidents the business had. Stored, not e-mailed: the job and the
    live listener e-mail only incidents that start within their lookback."""
    from ..anomaly.scan import scan

    with console.status("scanning the history for incidents"):
        res = scan(since=start)
    console.print(
        f"scanned {res.series:,} series in {res.seconds:.0f}s: {res.incidents:,} incidents "
        "(`kpi alerts list`, or the Anomaly review page)"
    )
    for problem in res.errors:
        err.print(f"[yellow]scan:[/] {problem}")


def _demo_user() -> str:
    """(Re)create the demo's dashboard user with a fresh password, kept for `kpi serve` to print."""
    import secrets

    from .. import auth

    password = secrets.token_urlsafe(9)
    auth.set_user("demo", password, ["executive"], name="Demo Executive")
    creds = settings().home / "demo_credentials.txt"
    creds.write_text(f"user: demo\npassword: {password}\n")
    creds.chmod(0o600)
    return password


@load_app.command("lines")
def load_lines(
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or Excel (.xlsx, first sheet) export, one row per order line")
    ],
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, e.g. --map order_id=InvoiceNo")
    ] = None,
    dayfirst: DayFirst = None,
    currency: Annotated[
        str | None,
        typer.Option(help="The file's currency (ISO code, e.g. GBP), recorded in catalog.yml"),
    ] = None,
) -> None:
    """Load order lines (order_id, ordered_at, quantity, unit_price required) into silver; gold follows."""
    from .. import catalog
    from ..kpis.definitions import business
    from ..loader import FIELDS, load_lines_file

    mapping = {}
    for item in map_ or []:
        if "=" not in item:
            raise KpiError(f"--map {item!r} should look like FIELD=COLUMN. Fields: {', '.join(FIELDS)}.")
        fld, col = item.split("=", 1)
        mapping[fld.strip()] = col.strip()
    with progress_bar() as progress:
        task = progress.add_task(f"loading {file.name}", total=4)
        summary = load_lines_file(
            file,
            mapping,
            dayfirst=dayfirst,
            currency=currency,
            progress=lambda d, t, w: progress.update(task, completed=d, total=t, description=w),
        )
    console.print(
        f"read {summary.rows:,} rows: loaded {summary.loaded:,} ({summary.orders:,} orders), "
        f"rejected {summary.rejected:,}"
        + (f", replaced {summary.replaced_orders:,} orders loaded before" if summary.replaced_orders else "")
    )
    console.print("columns used: " + ", ".join(f"{k}←{v}" for k, v in summary.mapping.items()))
    if summary.currency:
        where = catalog.own_business_path() or "catalog.yml metadata.business"
        console.print(f"currency: {summary.currency} (recorded in {where})")
        if hint := catalog.locale_hint(business()):
            console.print(hint)
    for note in summary.notes:
        console.print(note)
    if summary.rejected:
        for reason, n in summary.reasons.most_common():
            console.print(f"  rejected {n:,}: {reason}")
        # bronze keeps every load's rejects; one load's share one time (its transaction's)
        console.print(
            "every rejected row is in bronze.rejects with its row number and reason: "
            f"kpi sql \"select row_number, reason, row_data from bronze.rejects where source = 'file:{file.name}'"
            f" and rejected_at = (select max(rejected_at) from bronze.rejects where source = 'file:{file.name}')"
            ' order by row_number"'
        )
    if summary.rows and not summary.loaded:
        err.print(
            "[red]Nothing was loaded:[/] every row was rejected. Fix the reasons above and load the file again."
        )
        raise typer.Exit(1)
    if summary.first is not None:
        # in the business time zone, as the file's own (naive) times were read
        tz = ZoneInfo(settings().timezone)
        first, last = summary.first.astimezone(tz), summary.last.astimezone(tz)
        console.print(
            f"data from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} ({settings().timezone}) "
            f"· data version {summary.version}"
        )


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """Server, URL, rows per layer, data freshness, data version and cache counters."""
    from .. import monitor

    info = monitor.status()
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    srv = info["server"]
    console.print(
        f"[bold]warehouse[/] {'running' if srv['running'] else 'NOT RUNNING'} · {srv['url']}"
        + (f" · PostgreSQL {srv['version']}" if srv.get("version") else "")
    )
    if not srv["running"]:
        console.print("start it with `kpi init`")
        return
    t = Table("layer", "table", "rows", title="rows per layer")
    for row in info["tables"]:
        t.add_row(row["layer"], row["table"], f"{row['rows']:,}")
    console.print(t)
    f = info["freshness"]
    console.print(
        f"data version {f['version']} · latest order {f['latest_order']} · last change {f['last_change']} "
        f"({f['last_change_kind']})"
    )
    for mv in info["views"]:
        console.print(f"  {mv['name']}: refreshed {mv['refreshed_at']} ({view_lag(mv)})")
    rej = info["rejects"]
    if rej["total"]:
        latest = [
            f"{f['file']} {f['rejected']:,} of {f['rows']:,}" for f in rej["latest_loads"] if f["rejected"]
        ]
        console.print(
            f"rejected rows: {rej['total']:,} in bronze.rejects (every load's, kept)"
            + (f"; the latest load of each file rejected: {', '.join(latest)}" if latest else "")
            + ("; every file's latest load was clean" if rej["latest_loads"] and not latest else "")
        )
    landed = info["landings"]
    lead = landed.get("mover")
    if lead:
        console.print(
            f"fast-path mover: running (database backend {lead['pid']}, from {lead['client']}, since {lead['since']})"
        )
    if landed["waiting"]:
        console.print(
            f"[yellow]{landed['waiting']:,} fast-path landing(s), {landed['events']:,} events, wait to be moved "
            f"(oldest {landed['oldest']})[/]: "
            + (
                "the mover is on it"
                if lead
                else "no standing mover runs (`kpi serve` or `kpi move` runs one)"
            )
            + "; `kpi move --drain` moves them now"
        )
    c = info["cache"]
    hits = " ".join(f"{k} {v:,}" for k, v in c["hits"].items())
    misses = " ".join(f"{k} {v:,}" for k, v in c["misses"].items())
    console.print(
        f"cache (last hour, {c['processes']} processes): L2 "
        f"{'Redis ' + c['redis'] if c['redis'] else 'off (set REDIS_URL)'} · answered by: {hits} · "
        f"misses: {misses}"
    )
    for r in info.get("replicas", []):
        lag = (
            f"{r['lag_bytes']:,} bytes behind"
            if r["up"]
            else f"DOWN ({r.get('error')}); reads go to the primary"
        )
        console.print(f"replica {r['name']}: {lag}")


@app.command()
def sql(
    statement: Annotated[
        str | None, typer.Argument(help="One statement; omit for an interactive psql")
    ] = None,
) -> None:
    """Run one SQL statement and print the result, or open psql on the warehouse.

    As a user with a row scope (KPI_USER), both run as the reader role in that scope: the database
    shows them their rows only, and nothing can be changed."""
    import psycopg

    from .. import auth, warehouse
    from .. import scope as row_scope

    who = auth.local_user()
    scoped = not row_scope.current().everything
    url = warehouse.reader_libpq_url() if scoped else warehouse.libpq_url()
    auth.audit(who.login, "sql", "kpi sql", statement=statement or "(interactive psql)", scoped=scoped)
    if statement is None:
        psql = shutil.which("psql") or str(Path(warehouse.embedded_bin_dir()) / "psql")
        raise typer.Exit(subprocess.call([psql, url]))
    try:
        with psycopg.connect(url) if scoped else warehouse.connect_raw() as conn:
            if scoped:
                conn.read_only = True
            # scoped: one statement only (the bound-parameter protocol refuses "...; another one")
            cur = conn.execute(statement, ()) if scoped else conn.execute(statement)
            if cur.description:
                cols = [d.name for d in cur.description]
                t = Table(*cols)
                for row in cur.fetchmany(1000):
                    t.add_row(*["" if v is None else str(v) for v in row])
                console.print(t)
                if cur.rowcount > 1000:
                    console.print(f"(first 1000 of {cur.rowcount:,} rows)")
            else:
                console.print(f"{cur.statusmessage}")
            conn.commit()
    except psycopg.Error as exc:
        raise KpiError(str(exc).strip()) from None


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL (nothing to do with DATABASE_URL)."""
    from .. import warehouse

    console.print("stopped" if warehouse.stop() else "nothing to stop")


def view_lag(mv: dict) -> str:
    """How far a materialized view is behind, as `kpi status` says it. Changes to only today and
    yesterday are no refresh owed: queries read those days from the base tables (gold.py)."""
    behind, owed = mv["behind_versions"], mv["owed_versions"]
    if not behind:
        return "current"
    if not owed:
        return f"{behind} versions behind, all today's or yesterday's: queries read those days from the base tables"
    return f"{behind} versions behind, {owed} to refresh"
