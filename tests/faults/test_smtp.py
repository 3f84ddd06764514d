"""The SMTP relay down for a while: the outbox holds every message, then delivers each exactly once."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from conftest import free_port
from pgnode import wait_for

from kpi_lib import config, mail

pytestmark = pytest.mark.slow


def statuses(db, tag: str) -> Counter:
    rows = db.execute("select status from ops.outbox where subject like %s", [f"%{tag}%"]).fetchall()
    return Counter(r[0] for r in rows)


def subjects(maildir, tag: str) -> Counter:
    return Counter(m.subject for m in mail.list_inbox(maildir) if tag in m.subject)


def test_smtp_down_then_up_delivers_every_message_exactly_once(db, monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_TLS", "none")
    config.reset()
    tag = uuid.uuid4().hex[:8]
    maildir = tmp_path / "mail"

    def send(n: int, start: int) -> None:
        for i in range(start, start + n):
            mail.enqueue(mail.Email(f"Fault {tag} #{i}", ["ops@test.local"], "body"), f"fault:{tag}:{i}")

    workers = [mail.OutboxWorker(poll_s=0.2, base_delay=0.3, max_delay=1.0, name=f"f{i}") for i in range(2)]
    try:
        for w in workers:
            w.start()
        with mail.start_sink("127.0.0.1", port, maildir):
            send(5, 0)
            assert wait_for(lambda: sum(subjects(maildir, tag).values()) == 5), subjects(maildir, tag)
        # the relay is down: new messages wait in the outbox, retried with backoff, none lost
        send(5, 5)
        assert wait_for(lambda: statuses(db, tag) == Counter(sent=5, pending=5), timeout=10), statuses(
            db, tag
        )
        time.sleep(2.0)  # several failed passes
        attempts = db.execute(
            "select min(attempts) from ops.outbox where subject like %s and status = 'pending'", [f"%{tag}%"]
        ).fetchone()[0]
        assert attempts >= 2
        assert sum(subjects(maildir, tag).values()) == 5
        with mail.start_sink("127.0.0.1", port, maildir):  # back on the same address
            assert wait_for(lambda: statuses(db, tag) == Counter(sent=10), timeout=15), statuses(db, tag)
            time.sleep(1.0)  # more worker passes: nothing may be sent again
        got = subjects(maildir, tag)
        assert got == Counter({f"Fault {tag} #{i}": 1 for i in range(10)}), got
    finally:
        for w in workers:
            w.stop()
        monkeypatch.undo()
        config.reset()
