"""kpi ingest, simulate, inject and serve: live data and the dashboards that show it."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import settings
from ..errors import KpiError
from .base import app, console, err


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
    fast: Annotated[
        bool,
        typer.Option(
            help="Fast path for bursts: acknowledge each batch once its raw events are in bronze; "
            "a mover validates them and moves them to silver and gold (waited for before exiting)"
        ),
    ] = False,
) -> None:
    """Ingest order events (one order with its lines each) in micro-batches; bad ones go to bronze.rejects."""
    from .. import stream

    if not (from_ or file):
        raise KpiError("Give a FILE (or '-' for stdin), or --from amqp://... to consume a queue.")
    if from_:
        err.print(f"consuming {from_} queue {queue} (Ctrl-C to stop)")
    try:
        res = stream.ingest_from(
            from_ or file, queue=queue, idle_timeout=idle_timeout, source_name=source, fast=fast
        )
    except KeyboardInterrupt:
        return
    if fast:
        console.print(
            f"received {res.received:,} events: landed {res.landed:,} in bronze, refused {res.rejected:,} "
            f"unreadable · {res.batches} batches; moving them to silver and gold"
        )
        _print_move(stream.drain())
        return
    console.print(
        f"received {res.received:,} events: loaded {res.loaded:,} new orders, {res.duplicates:,} seen before "
        f"(no effect), rejected {res.rejected:,} · {res.batches} batches · data version {res.version}"
    )
    for reason in res.reasons[:10]:
        console.print(f"  rejected: {reason}")
    if res.rejected:
        console.print("all rejects are in bronze.rejects with the event and the reason")


def _print_move(r) -> None:
    console.print(
        f"moved {r.events:,} landed events: loaded {r.loaded:,} new orders, {r.duplicates:,} seen before "
        f"(no effect), rejected {r.rejected:,} · data version {r.version}"
    )
    for reason in r.reasons[:10]:
        console.print(f"  rejected: {reason}")
    for error in r.errors[:5]:
        console.print(
            f"  [yellow]a move failed and was tried again:[/] {error} (after KPI_MOVE_MAX_ATTEMPTS failures "
            "a landing's events are moved one by one; the ones that still fail go to bronze.rejects)"
        )


@app.command()
def move(
    drain: Annotated[bool, typer.Option(help="Move what is waiting now, then exit")] = False,
) -> None:
    """Validate landed events (`kpi ingest --fast`) and move them to silver and gold, as they land."""
    import threading

    from .. import stream

    if drain:
        _print_move(stream.drain())
        return
    err.print(
        "moving landed events to silver and gold (Ctrl-C to stop); while another standing mover "
        "(`kpi serve`, `kpi move`) leads, this one stands by"
    )
    try:
        stream.Mover(leader=True).run(threading.Event())
    except KeyboardInterrupt:
        return


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
    from ..demo import LIVE_ANOMALIES, natural_rate
    from ..demo import simulate as run

    if anomaly and anomaly not in LIVE_ANOMALIES:
        raise KpiError(f"Unknown anomaly {anomaly!r}. Kinds: {', '.join(LIVE_ANOMALIES)}.")
    per_s = _rate(rate, natural_rate)
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
def inject(
    kind: Annotated[str, typer.Argument(help="region_outage | payment_outage | traffic_spike | price_bug")],
    minutes: Annotated[float, typer.Option(help="How long it lasts")] = 10.0,
) -> None:
    """Inject a labelled incident into the running simulator (the one `kpi serve --simulate` runs)."""
    from ..demo import LIVE_ANOMALIES
    from ..demo import inject as do_inject

    if kind not in LIVE_ANOMALIES:
        raise KpiError(f"Unknown anomaly {kind!r}. Kinds: {', '.join(LIVE_ANOMALIES)}.")
    a = do_inject(kind, minutes)
    console.print(
        f"{a.description}: from {a.starts_at:%H:%M:%S} to {a.ends_at:%H:%M:%S} UTC (label {a.label_id}). "
        "Any running simulator applies it. The live alert listener reports it once it shows: within "
        "seconds on a busy stream (the minute rules need a few orders a minute), otherwise when the "
        "hour closes, if it moved that hour."
    )


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
    panel_procs: Annotated[
        int,
        typer.Option(
            envvar="KPI_PANEL_PROCS",
            help="Panel worker processes behind the front door, each sign-in sticks to one "
            "(0: one per CPU core, at most 4)",
        ),
    ] = 0,
    voila_pool: Annotated[int, typer.Option(help="Pre-heated Voila kernels per notebook")] = 2,
    alerts: Annotated[bool, typer.Option(help="Run the live alert listener")] = True,
    mover: Annotated[
        bool,
        typer.Option(
            help="Move fast-path landings (`kpi ingest --fast`) to silver and gold as they land; "
            "of several kpi serve processes, one moves and the others stand by"
        ),
    ] = True,
    mail_sink: Annotated[bool, typer.Option(help="Run the demo SMTP sink when SMTP_HOST is local")] = True,
) -> None:
    """Serve every dashboard behind one login: Panel apps, Voila notebooks, landing page and inbox."""
    from .. import auth
    from .. import serve as srv

    if not auth.list_users():
        raise KpiError(
            "No dashboard users yet. Create one: `kpi users add NAME --role executive` (or run `kpi demo`)."
        )
    server = srv.Server(
        host=host,
        port=port,
        simulate_rate=simulate_rate,
        panel_procs=panel_procs,
        voila_pool=voila_pool,
        with_alerts=alerts,
        with_mover=mover,
        with_mail_sink=mail_sink,
    )

    def ready(s: srv.Server) -> None:
        url = f"http://{s.public_origin()}"
        console.print(f"[bold green]serving[/] {url}  (Ctrl-C stops everything)")
        from ..web.gate import RESTRICTED

        for d in srv.discover():
            who = f" ({RESTRICTED[d.name][1].rstrip('.')})" if d.name in RESTRICTED else ""
            console.print(f"  {d.title:<28} {url}{d.url}{who}")
        console.print(f"  {'Inbox':<28} {url}/inbox")
        creds = settings().home / "demo_credentials.txt"
        if creds.exists():  # the password itself was printed once, by `kpi demo`
            console.print(f"  sign in as demo (password in {creds})")
        if simulate_rate:
            from ..demo import natural_rate

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
    except RuntimeError as exc:  # a dashboard process that would not start
        raise KpiError(str(exc)) from None
