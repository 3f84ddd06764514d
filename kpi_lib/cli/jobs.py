"""kpi jobs: the scheduled papermill jobs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..errors import KpiError
from .base import console, err

jobs_app = typer.Typer(help="Scheduled papermill jobs (schedules/schedules.yml).", no_args_is_help=True)


@jobs_app.command("list")
def jobs_list() -> None:
    """The jobs in schedules.yml, when each runs next, and the latest runs."""
    from .. import jobs

    t = Table("job", "cron", "next run", "notebook", "recipients")
    for j in jobs.list_jobs():
        nxt = j.next_runs(1)
        t.add_row(j.name, j.cron, str(nxt[0]) if nxt else "-", str(j.notebook), ", ".join(j.recipients))
    console.print(t)
    hist = jobs.history(limit=10)
    if len(hist):
        console.print(hist.to_string(index=False) if hasattr(hist, "to_string") else hist)


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

    from .. import jobs

    params = {}
    for item in param or []:
        if "=" not in item:
            raise KpiError(f"-p {item!r} should look like key=value.")
        k, v = item.split("=", 1)
        params[k.strip()] = yaml.safe_load(v)
    r = jobs.run_job(name, params, progress=True)
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
    from .. import jobs

    err.print("scheduler running (Ctrl-C to stop)")
    try:
        jobs.schedule_loop(poll_s=poll, deliver_mail=not no_mail)
    except KeyboardInterrupt:
        return
