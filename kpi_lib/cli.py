"""The ``kpi`` command: a thin front on kpi_lib. Library code never prints; this module does."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import reset as reset_settings
from .config import settings
from .errors import KpiError
from .formats import cents, money_columns, spreadsheet_safe, to_json

app = typer.Typer(
    help="Jupyter-native BI: warehouse, KPIs, live dashboards and alert jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
load_app = typer.Typer(help="Bring your own data into the warehouse.", no_args_is_help=True)
app.add_typer(load_app, name="load")
users_app = typer.Typer(help="Dashboard users and roles ($KPI_HOME/users.yml).", no_args_is_help=True)
app.add_typer(users_app, name="users")
from .api.tokens_cli import tokens_app  # noqa: E402 - kpi users token add|list|revoke

users_app.add_typer(tokens_app, name="token")
jobs_app = typer.Typer(help="Scheduled papermill jobs (schedules/schedules.yml).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
alerts_app = typer.Typer(help="Incidents and alert e-mails.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
mail_app = typer.Typer(help="The e-mail outbox and the demo SMTP sink.", no_args_is_help=True)
app.add_typer(mail_app, name="mail")
audit_app = typer.Typer(
    help="The audit log: search it (kpi audit --actor ...) or check its chain (kpi audit verify).",
    invoke_without_command=True,
)
app.add_typer(audit_app, name="audit")
console = Console(soft_wrap=True)  # no hard wraps: URLs and paths stay copyable
err = Console(stderr=True, soft_wrap=True)


def _setup_logging() -> None:
    logging.basicConfig(level=settings().log_level, format="%(levelname)s %(name)s: %(message)s")


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("·"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


@app.callback()
def _main(
    home: Annotated[
        Path | None, typer.Option("--home", help="Warehouse folder ($KPI_HOME, default ./var)")
    ] = None,
):
    if home is not None:
        os.environ["KPI_HOME"] = str(home)
        reset_settings()
    _setup_logging()


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
    from . import catalog, warehouse

    try:
        business = catalog.set_business(currency, locale) if currency or locale else None
        applied = warehouse.init()
    except KpiError as exc:
        _fail(exc)
    st = warehouse.status()
    console.print(f"warehouse ready: {st.url} (PostgreSQL {st.version})")
    console.print(f"migrations applied: {', '.join(applied) if applied else 'none needed'}")
    if business:
        console.print(
            f"currency {business['currency']}, locale {business['locale']} (catalog.yml metadata.business)"
        )


@app.command()
def demo(
    lines: Annotated[int, typer.Option(help="Order lines to generate (10_000_000 works)")] = 1_000_000,
    days: Annotated[int, typer.Option(help="Days of history up to now")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same business)")] = 42,
    force: Annotated[bool, typer.Option(help="Replace data that did not come from the demo")] = False,
) -> None:
    """Generate the demo retail business and load it (replaces the demo data already there)."""
    from .demo import load_demo

    with _progress() as progress:
        task = progress.add_task("generating and loading", total=lines)

        def report(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        try:
            summary = load_demo(lines=lines, days=days, seed=seed, progress=report, force=force)
        except KpiError as exc:
            _fail(exc)
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
    password = _demo_user()
    console.print(
        f"dashboard login: user [bold]demo[/], password [bold]{password}[/] "
        f"(kept in {settings().home / 'demo_credentials.txt'})"
    )


def _demo_user() -> str:
    """(Re)create the demo's dashboard user with a fresh password, kept for `kpi serve` to print."""
    import secrets

    from . import auth

    password = secrets.token_urlsafe(9)
    auth.set_user("demo", password, ["executive"], name="Demo Executive")
    creds = settings().home / "demo_credentials.txt"
    creds.write_text(f"user: demo\npassword: {password}\n")
    creds.chmod(0o600)
    return password


@load_app.command("lines")
def load_lines(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet export, one row per order line")],
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, e.g. --map order_id=InvoiceNo")
    ] = None,
    dayfirst: Annotated[bool, typer.Option(help="Dates are day-first (31/01/2025)")] = False,
    currency: Annotated[
        str | None,
        typer.Option(help="The file's currency (ISO code, e.g. GBP), recorded in catalog.yml"),
    ] = None,
) -> None:
    """Load order lines (order_id, ordered_at, quantity, unit_price required) into silver; gold follows."""
    from .loader import FIELDS, load_lines_file

    mapping = {}
    for item in map_ or []:
        if "=" not in item:
            _fail(KpiError(f"--map {item!r} should look like FIELD=COLUMN. Fields: {', '.join(FIELDS)}."))
        fld, col = item.split("=", 1)
        mapping[fld.strip()] = col.strip()
    with _progress() as progress:
        task = progress.add_task(f"loading {file.name}", total=4)
        try:
            summary = load_lines_file(
                file,
                mapping,
                dayfirst=dayfirst,
                currency=currency,
                progress=lambda d, t, w: progress.update(task, completed=d, total=t, description=w),
            )
        except KpiError as exc:
            _fail(exc)
    console.print(
        f"read {summary.rows:,} rows: loaded {summary.loaded:,} ({summary.orders:,} orders), "
        f"rejected {summary.rejected:,}"
        + (f", replaced {summary.replaced_orders:,} orders loaded before" if summary.replaced_orders else "")
    )
    console.print("columns used: " + ", ".join(f"{k}←{v}" for k, v in summary.mapping.items()))
    if summary.currency:
        console.print(f"currency: {summary.currency} (recorded in catalog.yml metadata.business)")
    if summary.rejected:
        for reason, n in summary.reasons.most_common():
            console.print(f"  rejected {n:,}: {reason}")
        console.print(
            "every rejected row is in bronze.rejects with its row number and reason: "
            f"kpi sql \"select row_number, reason, row_data from bronze.rejects where source = 'file:{file.name}'\""
        )
    if summary.first is not None:
        console.print(
            f"data from {summary.first:%Y-%m-%d %H:%M} to {summary.last:%Y-%m-%d %H:%M} · data version {summary.version}"
        )


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """Server, URL, rows per layer, data freshness, data version and cache counters."""
    from . import monitor

    try:
        info = monitor.status()
    except KpiError as exc:
        _fail(exc)
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
        lag = "current" if mv["behind_versions"] == 0 else f"{mv['behind_versions']} versions behind"
        console.print(f"  {mv['name']}: refreshed {mv['refreshed_at']} ({lag})")
    c = info["cache"]
    hits = " ".join(f"{k} {v:,}" for k, v in c["hits"].items())
    misses = " ".join(f"{k} {v:,}" for k, v in c["misses"].items())
    console.print(
        f"cache (last hour, {c['processes']} processes): L2 "
        f"{'Redis ' + c['redis'] if c['redis'] else 'off (set REDIS_URL)'} · answered by: {hits} · "
        f"misses: {misses}"
    )


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
    from . import kpis

    try:
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
    except KpiError as exc:
        _fail(exc)
    from . import auth

    auth.audit(_actor(), "query", kpi, grain=grain, start=str(r.start), end=str(r.end), by=by, where=filters)
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
        t = Table(
            *df.columns,
            title=f"{r.kpi.label} · {r.start:%Y-%m-%d %H:%M} → {r.end:%Y-%m-%d %H:%M} · {r.as_of.describe()}",
        )
        for row in df.itertuples(index=False):
            cells = []
            for col, v in zip(df.columns, row, strict=True):
                if col in ("value", "previous"):
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
    from . import auth
    from .ask import ask as run
    from .ask.render import text

    try:
        who = auth.user(user) if user else None
        answer = run(" ".join(question), as_of=as_of, user=who, surface="cli")
    except KpiError as exc:
        _fail(exc)
    if fmt == "json":
        sys.stdout.write(answer.to_json() + "\n")
        return
    console.print(text(answer), markup=False, highlight=False)
    if answer.sql:
        err.print(answer.sql, markup=False, highlight=False)


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

    from . import auth, warehouse
    from . import scope as row_scope

    who = auth.local_user()
    scoped = not row_scope.current().everything
    try:
        url = warehouse.reader_libpq_url() if scoped else warehouse.libpq_url()
    except KpiError as exc:
        _fail(exc)
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
        _fail(KpiError(str(exc).strip()))


@app.command()
def ingest(
    file: Annotated[
        str | None, typer.Argument(help="JSON-lines or CSV file of order events; '-' reads stdin")
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", help="Consume from a broker instead, e.g. amqp://guest:guest@127.0.0.1:5672/%2F"
        ),
    ] = None,
    queue: Annotated[str, typer.Option(help="Broker queue name")] = "kpi.orders",
    idle_timeout: Annotated[
        float | None, typer.Option(help="Stop consuming after this many idle seconds")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source name recorded in bronze")] = None,
) -> None:
    """Ingest order events (one order with its lines each) in micro-batches; bad ones go to bronze.rejects."""
    from . import stream

    try:
        if from_:
            err.print(f"consuming {from_} queue {queue} (Ctrl-C to stop)")
            try:
                res = stream.consume_amqp(from_, queue, idle_timeout=idle_timeout)
            except KeyboardInterrupt:
                return
        elif file:
            src = source or ("stdin" if file == "-" else f"file:{Path(file).name}")
            handle = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
            with handle:
                first = handle.readline()
                rest = (ln for ln in handle)
                if first.lstrip().startswith("{"):
                    events = (ln for ln in _chain(first, rest) if ln.strip())
                else:
                    events = stream.events_from_csv(_chain(first, rest))
                ing = stream.Ingestor(src)
                for ev in events:
                    ing.put(ev)
                res = ing.close()
        else:
            raise KpiError("Give a FILE (or '-' for stdin), or --from amqp://... to consume a queue.")
    except KpiError as exc:
        _fail(exc)
    console.print(
        f"received {res.received:,} events: loaded {res.loaded:,} new orders, {res.duplicates:,} seen before "
        f"(no effect), rejected {res.rejected:,} · {res.batches} batches · data version {res.version}"
    )
    for reason in res.reasons[:10]:
        console.print(f"  rejected: {reason}")
    if res.rejected:
        console.print("all rejects are in bronze.rejects with the event and the reason")


def _chain(first: str, rest):
    yield first
    yield from rest


@app.command()
def simulate(
    rate: Annotated[
        str,
        typer.Option(
            help="Average orders per second (seasonality shapes it), or auto: the business's own pace"
        ),
    ] = "auto",
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C)")
    ] = None,
    anomaly: Annotated[
        str | None,
        typer.Option(help="Inject an incident: region_outage | payment_outage | traffic_spike | price_bug"),
    ] = None,
    anomaly_after: Annotated[float, typer.Option(help="Seconds before the incident starts")] = 0.0,
    anomaly_minutes: Annotated[float, typer.Option(help="How long the incident lasts")] = 10.0,
) -> None:
    """Stream live orders that continue the demo business, optionally with a labelled incident."""
    from .demo import LIVE_ANOMALIES, natural_rate
    from .demo import simulate as run

    if anomaly and anomaly not in LIVE_ANOMALIES:
        _fail(KpiError(f"Unknown anomaly {anomaly!r}. Kinds: {', '.join(LIVE_ANOMALIES)}."))
    try:
        per_s = _rate(rate, natural_rate)
    except KpiError as exc:
        _fail(exc)
    pace = " (the business's own pace)" if rate == "auto" else ""
    err.print(
        f"simulating ~{per_s:.3g} orders/s{pace}, about one every {1 / per_s:.3g} s"
        + (f" with a {anomaly} after {anomaly_after:g}s" if anomaly else "")
        + " (Ctrl-C to stop)"
    )
    last = [0.0]

    def tick(stats) -> None:
        if stats.seconds - last[0] >= 10:
            last[0] = stats.seconds
            err.print(f"  {stats.orders:,} orders in {stats.seconds:.0f}s")

    try:
        stats = run(
            rate=per_s,
            duration=duration,
            anomaly=anomaly,
            anomaly_after=anomaly_after,
            anomaly_minutes=anomaly_minutes,
            on_tick=tick,
        )
    except KeyboardInterrupt:
        return
    except KpiError as exc:
        _fail(exc)
    console.print(
        f"simulated {stats.orders:,} orders in {stats.seconds:.0f}s"
        + (f" · incident label {stats.label}" if stats.label else "")
    )


def _rate(text: str, natural) -> float:
    """Orders per second from `--rate`: a positive number, or auto (the warehouse's own recent pace)."""
    if text.strip().lower() == "auto":
        return natural()
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise KpiError(f"--rate should be a positive number of orders per second or 'auto', not {text!r}.")
    return value


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 for every interface)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The one port browsers use")] = 8080,
    simulate_rate: Annotated[
        str | None,
        typer.Option(
            "--simulate", help="Also stream live demo orders: orders/s, or auto for the business's own pace"
        ),
    ] = None,
    panel_procs: Annotated[int, typer.Option(help="Panel worker processes")] = 1,
    voila_pool: Annotated[int, typer.Option(help="Pre-heated Voila kernels per notebook")] = 2,
    alerts: Annotated[bool, typer.Option(help="Run the live alert listener")] = True,
    mail_sink: Annotated[bool, typer.Option(help="Run the demo SMTP sink when SMTP_HOST is local")] = True,
) -> None:
    """Serve every dashboard behind one login: Panel apps, Voila notebooks, landing page and inbox."""
    from . import auth
    from . import serve as srv

    if not auth.list_users():
        _fail(
            KpiError(
                "No dashboard users yet. Create one: `kpi users add NAME --role executive` (or run `kpi demo`)."
            )
        )
    server = srv.Server(
        host=host,
        port=port,
        simulate_rate=simulate_rate,
        panel_procs=panel_procs,
        voila_pool=voila_pool,
        with_alerts=alerts,
        with_mail_sink=mail_sink,
    )

    def ready(s: srv.Server) -> None:
        url = f"http://{s.public_origin()}"
        console.print(f"[bold green]serving[/] {url}  (Ctrl-C stops everything)")
        for d in srv.discover():
            console.print(f"  {d.title:<28} {url}{d.url}")
        console.print(f"  {'Inbox':<28} {url}/inbox")
        creds = settings().home / "demo_credentials.txt"
        if creds.exists():  # the password itself was printed once, by `kpi demo`
            console.print(f"  sign in as demo (password in {creds})")
        if simulate_rate:
            from .demo import natural_rate

            try:
                per_s = _rate(simulate_rate, natural_rate)
            except KpiError as exc:
                console.print(f"  [red]live orders:[/] {exc}")
                return
            hint = ""
            if simulate_rate.strip().lower() == "auto":  # at 1 M lines: one order every ~2 minutes
                hint = " (the business's own pace; `make demo RATE=2` streams a livelier 2/s)"
            console.print(f"  live orders: ~{per_s:.3g}/s, about one every {1 / per_s:.3g} s{hint}")

    try:
        srv.run(server, on_ready=ready)
    except (KpiError, RuntimeError) as exc:
        _fail(exc)


@users_app.command("add")
def users_add(
    login: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[
        list[str] | None, typer.Option(help="admin | executive | analyst | viewer (repeatable)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="DIM=VALUE row limit, repeatable (region, channel, category)")
    ] = None,
    email: Annotated[
        str | None, typer.Option(help="E-mail address (alerts to it follow the user's roles)")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts)")
    ] = False,
    keep_password: Annotated[bool, typer.Option(help="Update roles/scope of an existing user only")] = False,
) -> None:
    """Create or update a dashboard user. The password is prompted for (or read from stdin), never
    taken as an argument: arguments show in every process list. A new password ends the user's sessions."""
    from . import auth

    if keep_password:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    limits: dict[str, list[str]] = {}
    for item in scope or []:
        dim, sep, value = item.partition("=")
        if not sep or not value.strip():
            _fail(KpiError(f"--scope {item!r} should look like DIM=VALUE, e.g. --scope region=Europe."))
        limits.setdefault(dim.strip(), []).append(value.strip())
    roles = role or (auth.user(login).roles if keep_password and auth.exists(login) else ["executive"])
    try:
        changed = auth.set_user(login, password, roles, name=name, scope=limits or None, email=email)
    except KpiError as exc:
        _fail(exc)
    ended = auth.sessions.end_all(login, "password changed") if changed else 0
    auth.audit(_actor(), "user set", login, roles=list(roles), scope=limits or None, sessions_ended=ended)
    console.print(f"user {login} saved" + (f"; {ended} session(s) ended" if ended else ""))


def _actor() -> str:
    """Who runs this command, for the audit log."""
    return os.environ.get("KPI_USER") or os.environ.get("USER") or "cli"


@users_app.command("list")
def users_list() -> None:
    """List users and what they may see."""
    from . import auth

    t = Table("user", "name", "roles", "masked KPIs", "rows")
    for u in auth.list_users():
        t.add_row(u.login, u.name, ", ".join(u.roles), ", ".join(sorted(u.masked)) or "-", u.scope.describe())
    console.print(t)


@users_app.command("remove")
def users_remove(login: Annotated[str, typer.Argument()]) -> None:
    """Remove a dashboard user (and end their sessions)."""
    from . import auth

    if not auth.remove_user(login):
        console.print(f"no user {login}")
        return
    ended = auth.sessions.end_all(login, "user removed")
    auth.audit(_actor(), "user removed", login, sessions_ended=ended)
    console.print(f"removed {login}; {ended} session(s) ended")


@users_app.command("sessions")
def users_sessions(
    login: Annotated[str | None, typer.Argument(help="Only this user's sessions")] = None,
    revoke: Annotated[bool, typer.Option(help="End the listed sessions now")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Include ended and expired sessions")] = False,
) -> None:
    """Sign-in sessions: who is signed in, from where, since when; --revoke ends them."""
    from . import auth

    if revoke:
        if not login:
            _fail(KpiError("Say whose sessions to end: `kpi users sessions LOGIN --revoke`."))
        n = auth.sessions.end_all(login, f"revoked by {_actor()}")
        auth.audit(_actor(), "sessions revoked", login, count=n)
        console.print(f"ended {n} session(s) of {login}")
        return
    t = Table("user", "signed in", "last seen", "expires", "ended", "address", "browser")
    for s in auth.sessions.listing(login, include_ended=all_):
        t.add_row(
            s.login,
            f"{s.created_at:%Y-%m-%d %H:%M}",
            f"{s.last_seen_at:%Y-%m-%d %H:%M}",
            f"{s.expires_at:%Y-%m-%d %H:%M}",
            f"{s.revoked_at:%Y-%m-%d %H:%M}" if s.revoked_at else "-",
            s.ip or "-",
            (s.user_agent or "-")[:40],
        )
    console.print(t)


@audit_app.callback()
def audit_search(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only this user")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. sign-in, export, acknowledge")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target contains this text")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (e.g. 2026-12-01)")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows, newest first")] = 50,
) -> None:
    """Search the audit log, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from . import auth

    try:
        df = auth.search_audit(actor, action, target, since, until, limit)
    except KpiError as exc:
        _fail(exc)
    t = Table("#", "at", "actor", "action", "target", "details")
    for r in df.itertuples(index=False):
        t.add_row(
            str(r.seq),
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            r.actor,
            r.action,
            r.target or "",
            json.dumps(r.details)[:80],
        )
    console.print(t)


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain: any edited, removed or inserted row breaks it."""
    from . import auth

    verdict = auth.verify_audit()
    if verdict.ok:
        console.print(f"[green]audit log intact[/]: {verdict.rows:,} rows; head {verdict.head}")
        return
    err.print(
        f"[bold red]audit log tampered with[/]: row #{verdict.broken_at} breaks the chain ({verdict.reason}); "
        f"the {verdict.rows:,} rows before it are intact."
    )
    raise typer.Exit(1)


@app.command()
def inject(
    kind: Annotated[str, typer.Argument(help="region_outage | payment_outage | traffic_spike | price_bug")],
    minutes: Annotated[float, typer.Option(help="How long it lasts")] = 10.0,
) -> None:
    """Inject a labelled incident into the running simulator (the one `kpi serve --simulate` runs)."""
    from .demo import LIVE_ANOMALIES
    from .demo import inject as do_inject

    if kind not in LIVE_ANOMALIES:
        _fail(KpiError(f"Unknown anomaly {kind!r}. Kinds: {', '.join(LIVE_ANOMALIES)}."))
    a = do_inject(kind, minutes)
    console.print(
        f"{a.description}: from {a.starts_at:%H:%M:%S} to {a.ends_at:%H:%M:%S} UTC (label {a.label_id}). "
        "Any running simulator applies it. The live alert listener reports it once it shows: within "
        "seconds on a busy stream (the minute rules need a few orders a minute), otherwise when the "
        "hour closes, if it moved that hour."
    )


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL (nothing to do with DATABASE_URL)."""
    from . import warehouse

    console.print("stopped" if warehouse.stop() else "nothing to stop")


@app.command()
def detect(
    file: Annotated[Path, typer.Argument(help="CSV with a time column and a value column")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the scored rows")],
    time_column: Annotated[str, typer.Option(help="Time column")] = "timestamp",
    value_column: Annotated[str, typer.Option(help="Value column")] = "value",
    rules: Annotated[str, typer.Option(help="Built-in rule set name or a YAML/JSON rules file")] = "default",
) -> None:
    """Run anomaly rules over a series; writes is_anomaly, score, severity, explanation per row."""
    from .anomaly import detect_file

    try:
        detect_file(file, output, time_column=time_column, value_column=value_column, rules=rules)
    except KpiError as exc:
        _fail(exc)


# --- jobs -----------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list() -> None:
    """The jobs in schedules.yml, when each runs next, and the latest runs."""
    from . import jobs

    try:
        t = Table("job", "cron", "next run", "notebook", "recipients")
        for j in jobs.list_jobs():
            nxt = j.next_runs(1)
            t.add_row(j.name, j.cron, str(nxt[0]) if nxt else "-", str(j.notebook), ", ".join(j.recipients))
        console.print(t)
        hist = jobs.history(limit=10)
        if len(hist):
            console.print(hist.to_string(index=False) if hasattr(hist, "to_string") else hist)
    except KpiError as exc:
        _fail(exc)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="Job name from schedules.yml")],
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="key=value (YAML values: -p kpis=[revenue,orders])"),
    ] = None,
) -> None:
    """Run a job now: execute its notebook, keep it under $KPI_HOME/runs, e-mail what it reports."""
    import yaml

    from . import jobs

    params = {}
    for item in param or []:
        if "=" not in item:
            _fail(KpiError(f"-p {item!r} should look like key=value."))
        k, v = item.split("=", 1)
        params[k.strip()] = yaml.safe_load(v)
    try:
        r = jobs.run_job(name, params, progress=True)
    except KpiError as exc:
        _fail(exc)
    console.print(f"{name}: {r.status} in {r.duration_s:.1f}s · report {r.html_path}")
    if not r.ok:
        err.print(f"[bold red]failed:[/] {r.error}")
        raise typer.Exit(1)


@jobs_app.command("schedule")
def jobs_schedule(
    poll: Annotated[float, typer.Option(help="Seconds between schedule checks")] = 30.0,
    no_mail: Annotated[
        bool, typer.Option("--no-mail", help="Do not deliver the outbox from this process")
    ] = False,
) -> None:
    """Run jobs on their cron schedules until Ctrl-C (never two runs of one job at once)."""
    from . import jobs

    err.print("scheduler running (Ctrl-C to stop)")
    try:
        jobs.schedule_loop(poll_s=poll, deliver_mail=not no_mail)
    except KeyboardInterrupt:
        return
    except KpiError as exc:
        _fail(exc)


# --- alerts ---------------------------------------------------------------------------------------


@alerts_app.command("list")
def alerts_list(
    status: Annotated[str, typer.Option(help="Comma-separated statuses")] = "open,acknowledged",
) -> None:
    """Incidents with their explanation."""
    from . import alerts

    df = alerts.incidents(status=[s.strip() for s in status.split(",") if s.strip()])
    if df is None or len(df) == 0:
        console.print("no incidents")
        return
    t = Table("id", "status", "severity", "kpi", "started", "explanation")
    for r in df.itertuples():
        t.add_row(str(r.id), r.status, r.severity, r.kpi, str(r.started_at), r.explanation)
    console.print(t)


@alerts_app.command("notify")
def alerts_notify(
    routes: Annotated[Path | None, typer.Option(help="Routing file (default schedules/alerts.yml)")] = None,
    kpi: Annotated[list[str] | None, typer.Option(help="Only these KPIs")] = None,
) -> None:
    """E-mail incidents nobody has been told about yet (each incident once per recipient)."""
    from . import alerts

    try:
        res = alerts.notify_new_incidents(routes, kpis=kpi or None, deliver=True)
    except KpiError as exc:
        _fail(exc)
    console.print(
        f"{res.emails} e-mails for new incidents · {res.suppressed} held back (already told, or below the route's severity)"
    )


@alerts_app.command("listen")
def alerts_listen(
    grain: Annotated[list[str] | None, typer.Option(help="Grains to scan on each change")] = None,
) -> None:
    """Scan touched KPIs on every data change and e-mail new incidents at once (runs with `kpi serve`)."""
    from . import alerts

    err.print("listening for data changes (Ctrl-C to stop)")
    try:
        alerts.listen(grains=tuple(grain or ("minute", "hour")))
    except KeyboardInterrupt:
        return
    except KpiError as exc:
        _fail(exc)


@alerts_app.command("ack")
def alerts_ack(
    incident: Annotated[int, typer.Argument()],
    user: Annotated[str, typer.Option()],
    comment: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Acknowledge an incident (recorded with who and when)."""
    from . import alerts

    try:
        alerts.acknowledge(incident, user, comment)
    except KpiError as exc:
        _fail(exc)
    console.print(f"incident {incident} acknowledged by {user}")


@alerts_app.command("resolve")
def alerts_resolve(
    incident: Annotated[int, typer.Argument()],
    user: Annotated[str, typer.Option()],
    comment: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Resolve an incident (a new one on the same series will alert again)."""
    from . import alerts

    try:
        alerts.resolve(incident, user, comment)
    except KpiError as exc:
        _fail(exc)
    console.print(f"incident {incident} resolved by {user}")


# --- mail -----------------------------------------------------------------------------------------


@mail_app.command("sink")
def mail_sink(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Default SMTP_PORT")] = None,
    maildir: Annotated[Path | None, typer.Option(help="Default $KPI_HOME/mail")] = None,
) -> None:
    """A local SMTP server that keeps every message it receives (the demo's inbox)."""
    from . import mail

    port = port or settings().smtp_port
    err.print(
        f"SMTP sink on {host}:{port}, storing mail in {maildir or settings().mail_dir} (Ctrl-C to stop)"
    )
    try:
        mail.run_sink(host, port, maildir)
    except KeyboardInterrupt:
        return


@mail_app.command("deliver")
def mail_deliver(watch: Annotated[bool, typer.Option(help="Keep delivering until Ctrl-C")] = False) -> None:
    """Send due messages from the outbox (retrying failed ones with backoff)."""
    import time

    from . import mail

    if not watch:
        rep = mail.deliver_pending()
        console.print(rep)
        return
    err.print("delivering the outbox (Ctrl-C to stop)")
    try:
        with mail.OutboxWorker():
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return


@mail_app.command("outbox")
def mail_outbox(status: Annotated[str | None, typer.Option(help="pending | sent | dead")] = None) -> None:
    """Messages in the outbox and their delivery state."""
    from . import mail

    df = mail.outbox(status)
    console.print(df.to_string(index=False) if len(df) else "outbox empty")


@mail_app.command("retry")
def mail_retry(message: Annotated[int, typer.Argument(help="Outbox id")]) -> None:
    """Send a dead or pending message again at the next delivery."""
    from . import mail

    mail.retry(message)
    console.print(f"message {message} queued again")


@mail_app.command("inbox")
def mail_inbox() -> None:
    """Messages the demo SMTP sink received, newest first."""
    from . import mail

    t = Table("id", "received", "to", "subject")
    for m in mail.list_inbox(limit=50):
        t.add_row(m.id, str(m.date), ", ".join(m.to), m.subject)
    console.print(t)


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
