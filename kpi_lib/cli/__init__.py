"""The ``kpi`` command: a thin front on kpi_lib, one module per command group. Library code never
prints; these modules do. Errors are told once, by the root group (``base._Commands``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from ..config import reset as reset_settings
from ..config import settings
from . import alerts, data, jobs, live, mail, query, rules, users
from .base import app

app.add_typer(data.load_app, name="load")
app.add_typer(users.users_app, name="users")
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(mail.mail_app, name="mail")
app.add_typer(users.audit_app, name="audit")
app.add_typer(rules.rules_app, name="rules")

__all__ = ["app", "main", "query", "live"]


@app.callback()
def _main(
    home: Annotated[
        Path | None, typer.Option("--home", help="Warehouse folder ($KPI_HOME, default ./var)")
    ] = None,
):
    if home is not None:
        os.environ["KPI_HOME"] = str(home)
        reset_settings()
    logging.basicConfig(level=settings().log_level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:  # pragma: no cover - console-script entry
    app()
