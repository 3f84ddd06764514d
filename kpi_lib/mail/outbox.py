"""The outbox: every email is a row in ``ops.outbox`` first, then a worker delivers it over SMTP.

Why a table and not ``smtplib`` in the job: the email commits with the job's other writes (an alert is
either recorded *and* queued, or neither), a dead SMTP relay costs a retry later instead of a lost
alert, and several workers can drain one queue. A worker claims due rows with
``FOR UPDATE SKIP LOCKED`` and marks them ``sending``, so two workers never send the same message;
a worker that dies mid-send leaves its rows ``sending`` until their lease runs out, then they are
retried (at-least-once after a crash; the Message-ID is stable so mail clients can fold a repeat).

    >>> from kpi_lib import mail
    >>> mail.enqueue(mail.Email("Hi", ["ops@example.com"], "hello"), dedup_key="hello-1")  # doctest: +SKIP
    >>> mail.deliver_pending()                                                           # doctest: +SKIP
    >>> with mail.OutboxWorker(poll_s=5):  ...                                           # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import os
import smtplib
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .. import warehouse
from ..config import settings
from ..errors import AlertError
from .compose import Email, Part, compose, envelope_address, new_message_id

log = logging.getLogger(__name__)

RETRY_BASE_S = 30.0  # first retry after 30 s, then 60, 120, ... capped at RETRY_MAX_S
RETRY_MAX_S = 3600.0
LEASE_S = 300.0  # a row left 'sending' this long by a dead worker is claimed again
MAX_ATTEMPTS = 10
NOTIFY_CHANNEL = "kpi_outbox"


@contextmanager
def _db():
    """A pooled warehouse connection (psycopg, not autocommit): connecting costs ~25 ms, a pooled one ~2."""
    raw = warehouse.engine().raw_connection()
    try:
        yield raw.driver_connection
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()  # back to the pool


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


# --- enqueue ------------------------------------------------------------------------------------


def enqueue(
    email: Email, dedup_key: str, *, conn: psycopg.Connection | None = None, max_attempts: int = MAX_ATTEMPTS
) -> int:
    """Put ``email`` in the outbox and return its id. The same ``dedup_key`` again returns the first
    message's id and queues nothing.

    With ``conn``, the row is written in the caller's transaction (and sent only once it commits).
    """
    if not dedup_key:
        raise AlertError("enqueue() needs a dedup_key, e.g. 'alert:<incident ids>' or 'report:<job>:<date>'.")
    if conn is None:
        with _db() as own:
            outbox_id = enqueue(email, dedup_key, conn=own, max_attempts=max_attempts)
            own.commit()
        return outbox_id
    c = conn
    row = c.execute(
        "insert into ops.outbox (dedup_key, kind, sender, recipients, subject, body_text, body_html,"
        " provenance, max_attempts, message_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (dedup_key) do nothing returning id",
        [
            dedup_key,
            email.kind,
            email.sender,
            email.recipients,
            email.subject,
            email.text,
            email.html,
            Jsonb(_jsonable(_with_access(email))),
            max_attempts,
            new_message_id(email.sender),
        ],
    ).fetchone()
    if row is None:
        outbox_id = c.execute("select id from ops.outbox where dedup_key = %s", [dedup_key]).fetchone()[0]
        log.info("outbox: %r already queued as #%d", dedup_key, outbox_id)
    else:
        outbox_id = row[0]
        parts = email.parts
        if parts:
            with c.cursor() as cur:
                cur.executemany(
                    "insert into ops.outbox_parts (outbox_id, position, disposition, filename,"
                    " content_type, content_id, data, path) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            outbox_id,
                            i,
                            "inline" if p.inline else "attachment",
                            p.filename,
                            p.content_type,
                            p.content_id,
                            p.data,
                            p.path,
                        )
                        for i, p in enumerate(parts)
                    ],
                )
        c.execute("select pg_notify(%s, %s)", [NOTIFY_CHANNEL, str(outbox_id)])
        log.info("outbox: queued #%d %r to %s", outbox_id, email.subject, ", ".join(email.recipients))
    return outbox_id


def _with_access(email: Email) -> dict[str, Any]:
    """Provenance plus who may read the message (its KPIs and rows), kept until it is sent."""
    prov = dict(email.provenance)
    if email.kpis is not None or email.rows:
        prov["access"] = {"kpis": email.kpis, "rows": email.rows}
    return prov


def _jsonable(value: Any) -> Any:
    """Provenance often holds timestamps, paths and numpy numbers: make them JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


# --- SMTP ---------------------------------------------------------------------------------------


@functools.cache
def _local_hostname() -> str:
    """What we say in EHLO; smtplib would look it up (getfqdn, a DNS query) on every connection."""
    return socket.getfqdn()


@functools.cache
def _tls() -> ssl.SSLContext:
    """Verified TLS, built once: loading the system's CA store takes ~90 ms here."""
    return ssl.create_default_context()


def smtp_client(timeout: float = 30.0) -> smtplib.SMTP:
    """An SMTP connection configured from settings (SMTP_HOST/PORT/TLS/USER/PASSWORD), logged in."""
    cfg = settings()
    if cfg.smtp_tls not in ("none", "starttls", "ssl"):
        raise AlertError(f"SMTP_TLS={cfg.smtp_tls!r} is not one of none, starttls, ssl.")
    if cfg.smtp_tls == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            cfg.smtp_host, cfg.smtp_port, local_hostname=_local_hostname(), timeout=timeout, context=_tls()
        )
    else:
        client = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, local_hostname=_local_hostname(), timeout=timeout)
        if cfg.smtp_tls == "starttls":
            client.starttls(context=_tls())
    if cfg.smtp_user:
        client.login(cfg.smtp_user, cfg.smtp_password or "")
    return client


def _envelope(email: Email) -> tuple[str, list[str]]:
    sender = email.sender or settings().smtp_from
    return envelope_address(sender), [parseaddr(r)[1] for r in email.recipients]


def send_now(email: Email, client: smtplib.SMTP | None = None, message_id: str | None = None) -> None:
    """Send without the outbox (no retry, no record): tests of the SMTP settings and benchmarks."""
    own = client is None
    c = client or smtp_client()
    try:
        frm, to = _envelope(email)
        c.send_message(compose(email, message_id), from_addr=frm, to_addrs=to)
    finally:
        if own:
            c.quit()


# --- delivery -----------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What one :func:`deliver_pending` pass did (outbox ids)."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def claimed(self) -> int:
        return len(self.sent) + len(self.retrying) + len(self.dead)


_CLAIM = """
with due as (
    select id from ops.outbox
     where (status = 'pending' and next_attempt_at <= now())
        or (status = 'sending' and claimed_at < now() - make_interval(secs => %(lease)s))
     order by next_attempt_at, id
     limit %(limit)s
       for update skip locked
)
update ops.outbox o
   set status = 'sending', attempts = o.attempts + 1, claimed_by = %(worker)s, claimed_at = now()
  from due
 where o.id = due.id
returning o.id, o.kind, o.sender, o.recipients, o.subject, o.body_text, o.body_html, o.provenance,
          o.attempts, o.max_attempts, o.message_id
"""


def _load(conn: psycopg.Connection, rows: list[tuple]) -> list[tuple[int, int, int, str, Email | Exception]]:
    """Claimed rows -> (id, attempts, max_attempts, message_id, Email or the error building it)."""
    ids = [r[0] for r in rows]
    parts: dict[int, list[Part]] = {i: [] for i in ids}
    for oid, disp, fname, ctype, cid, data, path in conn.execute(
        "select outbox_id, disposition, filename, content_type, content_id, data, path from ops.outbox_parts"
        " where outbox_id = any(%s) order by outbox_id, position",
        [ids],
    ):
        parts[oid].append(
            Part(
                fname,
                ctype,
                data=None if data is None else bytes(data),
                path=path,
                content_id=cid if disp == "inline" else None,
            )
        )
    out = []
    for oid, kind, sender, recipients, subject, text, html, prov, attempts, max_attempts, msg_id in rows:
        prov = dict(prov or {})
        access = prov.pop("access", None) or {}
        try:
            email: Email | Exception = Email(
                subject=subject,
                recipients=list(recipients),
                text=text,
                html=html,
                inline=[p for p in parts[oid] if p.inline],
                attachments=[p for p in parts[oid] if not p.inline],
                sender=sender,
                kind=kind,
                provenance=prov,
                kpis=access.get("kpis"),
                rows=access.get("rows"),
            )
        except AlertError as exc:
            email = exc
        out.append((oid, attempts, max_attempts, msg_id, email))
    return out


def _permanent(exc: Exception) -> bool:
    """5xx answers and broken messages will fail the same way next time: no point retrying."""
    if isinstance(exc, AlertError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


def _describe(exc: Exception) -> str:
    cfg = settings()
    where = f"{cfg.smtp_host}:{cfg.smtp_port}"
    if isinstance(exc, ConnectionRefusedError | socket.timeout | TimeoutError | smtplib.SMTPConnectError):
        return f"SMTP server {where} unreachable: {exc}. Start it (demo: `kpi mail sink`) or fix SMTP_HOST/SMTP_PORT."
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP login to {where} refused: {exc}. Check SMTP_USER/SMTP_PASSWORD."
    return f"{type(exc).__name__} from {where}: {exc}"


def deliver_pending(
    limit: int = 50,
    *,
    base_delay: float = RETRY_BASE_S,
    max_delay: float = RETRY_MAX_S,
    lease_s: float = LEASE_S,
    timeout: float = 30.0,
) -> DeliveryReport:
    """Send every due message (up to ``limit``) over one SMTP connection; return what happened.

    A failure leaves the message ``pending`` with ``last_error`` and ``next_attempt_at`` pushed back
    by ``base_delay * 2**(attempts-1)`` (at most ``max_delay``); after ``max_attempts`` attempts, or
    on a permanent (5xx) refusal, it is ``dead``. Never raises for SMTP trouble: that is recorded.
    """
    report = DeliveryReport()
    me = worker_name()
    with _db() as conn:
        rows = conn.execute(_CLAIM, {"lease": lease_s, "limit": limit, "worker": me}).fetchall()
        conn.commit()
        if not rows:
            return report
        claimed_at = time.monotonic()
        client: smtplib.SMTP | None = None
        down: Exception | None = None  # the connection failed: do not hammer it for every message
        try:
            for oid, attempts, max_attempts, msg_id, email in _load(conn, rows):
                # still ours? (a very slow batch may outlive its lease and be claimed again)
                if time.monotonic() - claimed_at > lease_s / 2 and (
                    conn.execute(
                        "update ops.outbox set claimed_at = now() where id = %s and claimed_by = %s"
                        " and status = 'sending' returning id",
                        [oid, me],
                    ).fetchone()
                    is None
                ):
                    conn.commit()
                    continue
                error: Exception | None = email if isinstance(email, Exception) else down
                if error is None:
                    try:
                        if client is None:
                            client = smtp_client(timeout)
                        frm, to = _envelope(email)
                        refused = client.send_message(compose(email, msg_id), from_addr=frm, to_addrs=to)
                    except (OSError, smtplib.SMTPException, AlertError) as exc:
                        error = exc
                        if not _permanent(exc):
                            _close(client)
                            client = None
                            if isinstance(
                                exc, OSError | smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected
                            ):
                                down = exc
                if error is None:
                    note = f"refused recipients: {refused}" if refused else None
                    conn.execute(
                        "update ops.outbox set status = 'sent', sent_at = now(), last_error = %s"
                        " where id = %s",
                        [note, oid],
                    )
                    conn.commit()
                    report.sent.append(oid)
                    log.info("outbox: sent #%d", oid)
                    continue
                text = _describe(error)
                report.errors[oid] = text
                if _permanent(error) or attempts >= max_attempts:
                    conn.execute(
                        "update ops.outbox set status = 'dead', last_error = %s where id = %s", [text, oid]
                    )
                    conn.commit()
                    report.dead.append(oid)
                    log.error("outbox: #%d is dead after %d attempt(s): %s", oid, attempts, text)
                else:
                    delay = min(max_delay, base_delay * 2 ** (attempts - 1))
                    conn.execute(
                        "update ops.outbox set status = 'pending', last_error = %s,"
                        " next_attempt_at = now() + make_interval(secs => %s) where id = %s",
                        [text, delay, oid],
                    )
                    conn.commit()
                    report.retrying.append(oid)
                    log.warning(
                        "outbox: #%d attempt %d failed, retry in %.3g s: %s", oid, attempts, delay, text
                    )
        finally:
            _close(client)
    return report


def _close(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def retry(outbox_id: int) -> None:
    """Make a pending or dead message due now (after fixing SMTP settings, say)."""
    with _db() as conn:
        row = conn.execute(
            "update ops.outbox set status = 'pending', next_attempt_at = now(),"
            " max_attempts = greatest(max_attempts, attempts + 1)"
            " where id = %s and status in ('pending', 'dead') returning id",
            [outbox_id],
        ).fetchone()
        conn.commit()
    if row is None:
        raise AlertError(f"Outbox message #{outbox_id} does not exist or is already sent/sending.")


def outbox(status: str | None = None, limit: int = 100):
    """Recent outbox rows as a DataFrame (newest first), without bodies: for status pages and the CLI."""
    import pandas as pd

    with _db() as conn:
        cur = conn.execute(
            "select id, kind, status, subject, recipients, attempts, next_attempt_at, last_error,"
            " created_at, sent_at, dedup_key from ops.outbox where (%(s)s::text is null or status = %(s)s)"
            " order by id desc limit %(n)s",
            {"s": status, "n": limit},
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def counts() -> dict[str, int]:
    """Messages per status, e.g. ``{'pending': 2, 'sent': 40}``."""
    with _db() as conn:
        return dict(conn.execute("select status, count(*) from ops.outbox group by status").fetchall())


# --- worker -------------------------------------------------------------------------------------


class OutboxWorker:
    """A background thread that delivers the outbox: at once when a message is queued (LISTEN), and
    every ``poll_s`` seconds for retries.

        with OutboxWorker():   # or w = OutboxWorker(); w.start(); ...; w.stop()
            ...
    """

    def __init__(self, poll_s: float = 5.0, batch: int = 50, name: str = "kpi-outbox", **deliver_kwargs: Any):
        self.poll_s = poll_s
        self.batch = batch
        self.deliver_kwargs = deliver_kwargs
        self.passes = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> OutboxWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> OutboxWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        listener: psycopg.Connection | None = None
        while not self._stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = warehouse.connect_raw(autocommit=True)
                    listener.execute(f"listen {NOTIFY_CHANNEL}")
                report = deliver_pending(self.batch, **self.deliver_kwargs)
                self.passes += 1
                if report.claimed >= self.batch:
                    continue  # more are due: no pause
                self._wait(listener)
            except Exception as exc:  # a worker must outlive database restarts
                self.last_error = str(exc)
                log.exception("outbox worker: %s", exc)
                if listener is not None:
                    listener.close()
                listener = None
                self._stop.wait(self.poll_s)
        if listener is not None:
            listener.close()

    def _wait(self, listener: psycopg.Connection) -> None:
        """Until a message is queued, ``poll_s`` passes, or stop() is called."""
        deadline = time.monotonic() + self.poll_s
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for _ in listener.notifies(timeout=min(left, 0.25), stop_after=1):
                return
