"""Sending e-mail: compose, the outbox (queue + SMTP delivery with retries), the demo SMTP sink and
its inbox. What the e-mails say is written in :mod:`kpi_lib.reports`.

    from kpi_lib import mail
    email = mail.Email("Subject", ["ops@example.com"], "text", html="<p>html</p>")
    mail.enqueue(email, dedup_key="once-per-key")      # idempotent; commits to ops.outbox
    mail.deliver_pending()                              # or: with mail.OutboxWorker(): ...
    with mail.start_sink(port=8025): ...                # demo SMTP server -> $KPI_HOME/mail/*.eml
    mail.list_inbox(), mail.read_message(id).html       # what the Inbox page shows

Modules: ``compose`` (Email, Part, MIME), ``outbox`` (enqueue, deliver_pending, OutboxWorker),
``sink`` (aiosmtpd server), ``inbox`` (read .eml files).
"""

from __future__ import annotations

from .compose import Email, Part, compose, csv_part, figure_part, normalise_recipients
from .inbox import attachment, clear_inbox, list_inbox, read_message
from .outbox import (
    DeliveryReport,
    OutboxWorker,
    counts,
    deliver_pending,
    enqueue,
    outbox,
    retry,
    send_now,
    smtp_client,
)
from .sink import Sink, run_sink, start_sink

__all__ = [
    "DeliveryReport",
    "Email",
    "OutboxWorker",
    "Part",
    "Sink",
    "attachment",
    "clear_inbox",
    "compose",
    "counts",
    "csv_part",
    "deliver_pending",
    "enqueue",
    "figure_part",
    "list_inbox",
    "normalise_recipients",
    "outbox",
    "read_message",
    "retry",
    "run_sink",
    "send_now",
    "smtp_client",
    "start_sink",
]
