"""kpi mail: the e-mail outbox and the demo SMTP sink."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..config import settings
from .base import console, err

mail_app = typer.Typer(help="The e-mail outbox and the demo SMTP sink.", no_args_is_help=True)


@mail_app.command("sink")
def mail_sink(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Default SMTP_PORT")] = None,
    maildir: Annotated[Path | None, typer.Option(help="Default $KPI_HOME/mail")] = None,
) -> None:
    """A local SMTP server that keeps every message it receives (the demo's inbox)."""
    from .. import mail

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

    from .. import mail

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
    from .. import mail

    df = mail.outbox(status)
    console.print(df.to_string(index=False) if len(df) else "outbox empty")


@mail_app.command("retry")
def mail_retry(message: Annotated[int, typer.Argument(help="Outbox id")]) -> None:
    """Send a dead or pending message again at the next delivery."""
    from .. import mail

    mail.retry(message)
    console.print(f"message {message} queued again")


@mail_app.command("inbox")
def mail_inbox() -> None:
    """Messages the demo SMTP sink received, newest first."""
    from .. import mail

    t = Table("id", "received", "to", "subject")
    for m in mail.list_inbox(limit=50):
        t.add_row(m.id, str(m.date), ", ".join(m.to), m.subject)
    console.print(t)
