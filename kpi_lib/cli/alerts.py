"""kpi alerts: incidents and alert e-mails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .base import console, err

alerts_app = typer.Typer(help="Incidents and alert e-mails.", no_args_is_help=True)


@alerts_app.command("list")
def alerts_list(
    status: Annotated[str, typer.Option(help="Comma-separated statuses")] = "open,acknowledged",
) -> None:
    """Incidents with their explanation."""
    from .. import alerts

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
    from .. import alerts

    res = alerts.notify_new_incidents(routes, kpis=kpi or None, deliver=True)
    console.print(
        f"{len(res.emails)} e-mails for new incidents · {len(res.suppressed)} held back "
        "(already told, in a cooldown, or not the recipient's to read)"
    )
    for held in res.suppressed:
        console.print(f"  #{held['anomaly_id']} not sent to {held['recipient']}: {held['reason']}")


@alerts_app.command("scan")
def alerts_scan(
    since: Annotated[
        str | None,
        typer.Option(
            help="Scan for incidents from this day (business time zone); default: the last few days"
        ),
    ] = None,
    kpi: Annotated[list[str] | None, typer.Option(help="Only these KPIs (default: all)")] = None,
    grain: Annotated[list[str] | None, typer.Option(help="Grains (default: hour and day)")] = None,
) -> None:
    """Scan the KPIs for incidents and keep them (ops.anomalies); after `kpi load`, `--since` the
    file's first day scans its whole history. Nothing is e-mailed: `kpi alerts notify` does that."""
    from .. import alerts
    from ..anomaly import scan

    with console.status("scanning ..."):
        res = scan(kpis=kpi or None, since=since, grains=tuple(grain or ("hour", "day")))
    console.print(
        f"scanned {res.series:,} series in {res.seconds:.1f} s: {res.incidents:,} incidents, {res.new:,} new"
        + (f" · {sum(res.immaterial.values()):,} not material" if res.immaterial else "")
    )
    for problem in res.errors:
        err.print(f"[yellow]scan:[/] {problem}")
    if res.new_ids:
        df = alerts.incidents(status=["open", "acknowledged", "resolved"], limit=len(res.new_ids) + 1000)
        df = df[df["id"].isin(res.new_ids)].sort_values("started_at")
        t = Table("id", "severity", "kpi", "started", "explanation")
        for r in df.itertuples():
            t.add_row(str(r.id), r.severity, r.kpi, str(r.started_at), r.explanation)
        console.print(t)


@alerts_app.command("listen")
def alerts_listen(
    grain: Annotated[list[str] | None, typer.Option(help="Grains to scan on each change")] = None,
) -> None:
    """Scan touched KPIs on every data change and e-mail new incidents at once (runs with `kpi serve`)."""
    from .. import alerts

    err.print("listening for data changes (Ctrl-C to stop)")
    try:
        alerts.listen(grains=tuple(grain or ("minute", "hour")))
    except KeyboardInterrupt:
        return


def _login() -> str:
    import getpass

    return getpass.getuser()


_IDS = Annotated[
    list[int], typer.Argument(help="One or more incident ids (an e-mail's event lists them all)")
]
_USER = Annotated[str | None, typer.Option(help="Who, for the audit trail (default: your login name)")]


@alerts_app.command("ack")
def alerts_ack(
    incidents: _IDS,
    user: _USER = None,
    comment: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Acknowledge incidents (recorded with who and when)."""
    from .. import alerts

    user = user or _login()
    for incident in incidents:
        alerts.acknowledge(incident, user, comment)
        console.print(f"incident {incident} acknowledged by {user}")


@alerts_app.command("resolve")
def alerts_resolve(
    incidents: _IDS,
    user: _USER = None,
    comment: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Resolve incidents (a new one on the same series will alert again)."""
    from .. import alerts

    user = user or _login()
    for incident in incidents:
        alerts.resolve(incident, user, comment)
        console.print(f"incident {incident} resolved by {user}")
