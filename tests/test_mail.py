"""Email: composition, the outbox against a real aiosmtpd server, retries, workers, the inbox helpers.

Every test sends real SMTP to a real sink on 127.0.0.1 and reads the stored .eml files back, the way
the Inbox page will. No mocks.
"""

from __future__ import annotations

import smtplib
import threading
import time
import uuid
from email import policy
from email.parser import BytesParser

import pandas as pd
import pytest
from matplotlib.figure import Figure
from pgnode import wait_for

from kpi_lib import mail
from kpi_lib.errors import AlertError


def inbox_subjects(maildir) -> list[str]:
    return [m.subject for m in mail.list_inbox(maildir)]


def chart_email(subject: str, to=("ops@test.local",)) -> mail.Email:
    fig = Figure(figsize=(4, 2))
    fig.add_subplot().plot([1, 3, 2])
    chart = mail.figure_part(fig, "trend")
    rows = pd.DataFrame({"id": [1, 2], "value": [3.5, 4.0]})
    return mail.Email(
        subject,
        list(to),
        "See the chart.",
        html=f'<p>Chart:</p><img src="cid:{chart.content_id}">',
        inline=[chart],
        attachments=[mail.csv_part(rows, "rows.csv")],
        provenance={"source": "test"},
    )


def row(db, outbox_id: int) -> dict:
    cur = db.execute("select * from ops.outbox where id = %s", [outbox_id])
    return dict(zip([d.name for d in cur.description], cur.fetchone(), strict=True))


def test_compose_builds_html_with_inline_image_text_and_csv():
    msg = mail.compose(chart_email("Weekly numbers"))
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["Subject"] == "Weekly numbers"
    assert parsed.get_body(("plain",)).get_content().strip() == "See the chart."
    html = parsed.get_body(("html",)).get_content()
    images = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    cid = images[0]["Content-ID"].strip("<>")
    assert f"cid:{cid}" in html
    assert images[0].get_payload(decode=True).startswith(b"\x89PNG")
    csv = [p for p in parsed.iter_attachments() if p.get_filename() == "rows.csv"]
    assert csv and csv[0].get_content().splitlines()[0] == "id,value"


def test_bad_recipients_and_subjects_are_refused_with_a_hint():
    with pytest.raises(AlertError, match="not an email address"):
        mail.Email("Hi", ["ops"], "text")
    with pytest.raises(AlertError, match="at least one recipient"):
        mail.Email("Hi", [], "text")
    with pytest.raises(AlertError, match="one non-empty line"):
        mail.Email("Hi\nBcc: victim@example.com", ["ops@test.local"], "text")


def test_enqueue_is_idempotent_and_the_message_arrives_with_its_parts(db, sink):
    subject = f"Outbox test {uuid.uuid4().hex[:6]}"
    key = f"test:{uuid.uuid4()}"
    first = mail.enqueue(chart_email(subject), key)
    again = mail.enqueue(chart_email(subject), key)
    assert first == again
    assert db.execute("select count(*) from ops.outbox where dedup_key = %s", [key]).fetchone()[0] == 1

    report = mail.deliver_pending()
    assert first in report.sent
    assert row(db, first)["status"] == "sent" and row(db, first)["sent_at"] is not None

    [received] = [m for m in mail.list_inbox(sink.maildir) if m.subject == subject]
    assert received.to == ["ops@test.local"]
    view = mail.read_message(received.id, sink.maildir)
    assert "data:image/png;base64," in view.html and "cid:" not in view.html
    assert view.text.strip() == "See the chart."
    assert [a.filename for a in view.attachments] == ["rows.csv"]
    content_type, data = mail.attachment(received.id, "rows.csv", sink.maildir)
    assert content_type == "text/csv" and data.decode().startswith("id,value")

    assert first not in mail.deliver_pending().sent  # sent once; nothing due any more
    assert inbox_subjects(sink.maildir).count(subject) == 1


def test_smtp_down_keeps_the_message_then_it_arrives_exactly_once(db, smtp_port, tmp_path):
    subject = f"Retry test {uuid.uuid4().hex[:6]}"
    outbox_id = mail.enqueue(chart_email(subject), f"test:{uuid.uuid4()}")

    report = mail.deliver_pending(base_delay=0.5)  # nothing listens on the port
    assert outbox_id in report.retrying
    r = row(db, outbox_id)
    assert r["status"] == "pending" and r["attempts"] == 1
    assert "unreachable" in r["last_error"] and str(smtp_port) in r["last_error"]
    assert r["next_attempt_at"] > r["created_at"]

    # two workers keep retrying with backoff; then the server comes up on that port
    workers = [
        mail.OutboxWorker(poll_s=0.2, base_delay=0.5, max_delay=1.0, name=f"w{i}").start() for i in range(2)
    ]
    try:
        time.sleep(1.2)
        with mail.start_sink("127.0.0.1", smtp_port, tmp_path / "mail") as sink:
            assert wait_for(lambda: row(db, outbox_id)["status"] == "sent"), row(db, outbox_id)
            time.sleep(1.0)  # more worker passes: nothing may be sent again
            assert inbox_subjects(sink.maildir).count(subject) == 1
    finally:
        for w in workers:
            w.stop()
    r = row(db, outbox_id)
    assert r["attempts"] >= 2 and r["sent_at"] is not None


def test_concurrent_workers_never_send_the_same_message(db, sink):
    tag = uuid.uuid4().hex[:6]
    ids = [
        mail.enqueue(mail.Email(f"Batch {tag} #{i}", ["ops@test.local"], f"message {i}"), f"test:{tag}:{i}")
        for i in range(30)
    ]
    reports: list[mail.DeliveryReport] = []
    start = threading.Barrier(3)

    def work():
        start.wait()
        reports.append(mail.deliver_pending(limit=7))
        reports.append(mail.deliver_pending(limit=50))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [i for r in reports for i in r.sent if i in ids]
    assert sorted(sent) == sorted(ids)  # every message once, none twice
    subjects = [s for s in inbox_subjects(sink.maildir) if s.startswith(f"Batch {tag} ")]
    assert len(subjects) == 30 and len(set(subjects)) == 30


def test_a_message_is_dead_after_its_last_attempt(db, smtp_port):
    outbox_id = mail.enqueue(
        mail.Email("Never arrives", ["ops@test.local"], "x"), f"test:{uuid.uuid4()}", max_attempts=1
    )
    report = mail.deliver_pending()
    assert outbox_id in report.dead
    assert row(db, outbox_id)["status"] == "dead"
    mail.retry(outbox_id)  # after fixing SMTP, an operator can requeue it
    assert row(db, outbox_id)["status"] == "pending"
    db.execute("update ops.outbox set status = 'dead' where id = %s", [outbox_id])


def test_sink_keeps_envelope_and_the_inbox_lists_newest_first(sink):
    with smtplib.SMTP("127.0.0.1", sink.port) as client:
        for n in (1, 2):
            client.sendmail(
                "me@test.local",
                ["to@test.local", "hidden@test.local"],
                f"Subject: plain {n}\r\nTo: to@test.local\r\n\r\nbody {n}\r\n",
            )
    listed = mail.list_inbox(sink.maildir)
    assert [m.subject for m in listed[:2]] == ["plain 2", "plain 1"]
    raw = listed[0].path.read_text()
    assert "X-Envelope-To: to@test.local, hidden@test.local" in raw  # Bcc recipients are on record
    view = mail.read_message(listed[0].id, sink.maildir)
    assert view.text.strip() == "body 2" and view.html.startswith("<pre")
    with pytest.raises(AlertError, match="not an inbox message id"):
        mail.read_message("../../etc/passwd", sink.maildir)
    assert mail.clear_inbox(sink.maildir) >= 2 and mail.list_inbox(sink.maildir) == []
