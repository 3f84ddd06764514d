"""What every command shares: the root app, its one error handler, the consoles and the progress bar."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from ..errors import KpiError

#: ``--dayfirst/--monthfirst``: a user's export's day order (kpi load, kpi detect); None reads it from the file
DayFirst = Annotated[
    bool | None,
    typer.Option(
        "--dayfirst/--monthfirst",
        help="Dates are day-first (31/01/2025) or month-first (01/31/2025); read from the file when left out",
    ),
]

console = Console(soft_wrap=True)  # no hard wraps: URLs and paths stay copyable
err = Console(stderr=True, soft_wrap=True)


class _Commands(TyperGroup):
    """The root group: a KpiError from any command (or sub-command) is told to the user, exit code 2.

    KpiErrors already say what happened and what to do next; a traceback would only bury that."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KpiError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Commands,
    help="Jupyter-native BI: warehouse, KPIs, live dashboards and alert jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("·"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def actor() -> str:
    """Who runs this command, for the audit log."""
    return os.environ.get("KPI_USER") or os.environ.get("USER") or "cli"
