"""The demo SMTP sink: a real SMTP server (aiosmtpd) that keeps every message as a ``.eml`` file.

It stands in for a mail relay on a laptop, in the demo and in tests: jobs send real SMTP to it and the
Inbox page reads the files back (:mod:`kpi_lib.mail.inbox`). It accepts any sender and recipient
and relays nothing.

    >>> from kpi_lib.mail import start_sink
    >>> with start_sink(port=8025) as sink:        # doctest: +SKIP
    ...     ...                                    # messages land in sink.maildir/*.eml
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from email.utils import formatdate
from pathlib import Path

from ..config import settings
from ..errors import AlertError

log = logging.getLogger(__name__)


class MaildirHandler:
    """aiosmtpd handler: one ``<time_ns>-<uuid>.eml`` per message, written atomically (tmp + rename)
    so a reader never sees half a message. Envelope sender/recipients go in ``X-Envelope-*`` headers
    (the only record of Bcc recipients)."""

    def __init__(self, maildir: Path):
        self.maildir = Path(maildir)
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.maildir.chmod(0o700)  # alert e-mails hold KPI values
        self.received = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        trace = (
            f"X-Envelope-From: <{envelope.mail_from}>\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Received-At: {formatdate(usegmt=True)}\r\n"
        ).encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.maildir / f".{name}.tmp"
        tmp.touch(mode=0o600)
        tmp.write_bytes(trace + raw)
        os.replace(tmp, self.maildir / name)
        self.received += 1
        log.info("sink: stored %s from %s to %s", name, envelope.mail_from, envelope.rcpt_tos)
        return "250 Message accepted for delivery"


class Sink:
    """A running sink; ``stop()`` it (or use it as a context manager)."""

    def __init__(self, host: str, port: int, maildir: Path):
        from aiosmtpd.controller import Controller

        self.host, self.port, self.maildir = host, port, Path(maildir)
        self.handler = MaildirHandler(self.maildir)
        # a fixed EHLO name: aiosmtpd would otherwise look ours up (getfqdn) on every connection
        self._controller = Controller(
            self.handler, hostname=host, port=port, ready_timeout=10, server_hostname="kpi-sink.local"
        )

    def start(self) -> Sink:
        if self.running:
            return self
        try:
            self._controller.start()
        except (OSError, RuntimeError) as exc:
            raise AlertError(
                f"Cannot start the SMTP sink on {self.host}:{self.port}: {exc}. "
                "Is another server on that port? Pick another with --port (and set SMTP_PORT to match)."
            ) from exc
        log.info("SMTP sink listening on %s:%d, storing in %s", self.host, self.port, self.maildir)
        return self

    def stop(self) -> None:
        if self.running:
            self._controller.stop()

    @property
    def running(self) -> bool:
        return self._controller._thread is not None

    @property
    def received(self) -> int:
        return self.handler.received

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sink(host: str | None = None, port: int | None = None, maildir: str | Path | None = None) -> Sink:
    """Start the sink in a background thread (defaults: SMTP_HOST, SMTP_PORT, ``$KPI_HOME/mail``)."""
    cfg = settings()
    return Sink(host or cfg.smtp_host, port or cfg.smtp_port, Path(maildir or cfg.mail_dir)).start()


def run_sink(
    host: str | None = None,
    port: int | None = None,
    maildir: str | Path | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the sink until ``stop`` is set or Ctrl-C (what ``kpi mail sink`` runs)."""
    stop = stop or threading.Event()
    with start_sink(host, port, maildir):
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            log.info("SMTP sink stopped")
