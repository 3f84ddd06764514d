"""Read the SMTP sink's ``.eml`` files back: the list for an Inbox page, one message ready to render.

:func:`read_message` returns the HTML body with its inline images turned into ``data:`` URIs, so a
web page can show it as-is (put it in a sandboxed ``<iframe srcdoc=...>``: it is email HTML, not ours).

    >>> from kpi_lib.mail import inbox
    >>> [m.subject for m in inbox.list_inbox()]          # doctest: +SKIP
    >>> inbox.read_message(inbox.list_inbox()[0].id).html  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from ..config import settings
from ..errors import AlertError

_ID = re.compile(r"^[0-9]+-[0-9a-f]+$")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    content_id: str | None = None


@dataclass
class InboxMessage:
    """One received message: headers for the list view; ``html``/``text`` filled by :func:`read_message`."""

    id: str
    path: Path
    subject: str
    sender: str
    to: list[str]
    date: datetime | None
    size: int
    message_id: str | None
    attachments: list[Attachment] = field(default_factory=list)
    inline: list[Attachment] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    kpis: list[str] | None = None  # the KPIs it shows (X-KPI-Kpis); None: not declared, so any
    rows: dict[str, list[str]] | None = None  # the rows it covers (X-KPI-Rows); None: every row

    @property
    def has_attachments(self) -> bool:
        return bool(self.attachments)


def _maildir(maildir: str | Path | None) -> Path:
    return Path(maildir) if maildir is not None else settings().mail_dir


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        return BytesParser(policy=policy.default).parse(fh)


def _summary(path: Path, msg: EmailMessage) -> InboxMessage:
    date = None
    if msg["Date"]:
        try:
            date = parsedate_to_datetime(str(msg["Date"]))
        except (TypeError, ValueError):
            date = None
    attachments, inline = [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        disp = part.get_content_disposition()
        cid = part.get("Content-ID")
        if disp == "attachment" or (disp is None and part.get_filename() and not cid):
            attachments.append(
                Attachment(
                    part.get_filename() or "attachment",
                    part.get_content_type(),
                    len(part.get_payload(decode=True) or b""),
                )
            )
        elif cid:
            inline.append(
                Attachment(
                    part.get_filename() or "image",
                    part.get_content_type(),
                    len(part.get_payload(decode=True) or b""),
                    cid.strip("<>"),
                )
            )
    return InboxMessage(
        id=path.stem,
        path=path,
        subject=str(msg["Subject"] or "(no subject)"),
        sender=str(msg["From"] or ""),
        to=[a for _, a in getaddresses([str(v) for v in msg.get_all("To", [])])],
        date=date,
        size=path.stat().st_size,
        message_id=msg["Message-ID"],
        attachments=attachments,
        inline=inline,
        kpis=_kpis_header(msg),
        rows=_rows_header(msg),
    )


def _kpis_header(msg: EmailMessage) -> list[str] | None:
    value = msg.get("X-KPI-Kpis")
    if value is None:
        return None
    return [k.strip() for k in str(value).split(",") if k.strip()]


def _rows_header(msg: EmailMessage) -> dict[str, list[str]] | None:
    value = msg.get("X-KPI-Rows")
    if not value:
        return None
    try:
        doc = json.loads(str(value))
    except ValueError:
        return {"?": []}  # unreadable: covers rows nobody scoped may read
    return doc if isinstance(doc, dict) else {"?": []}


def list_inbox(maildir: str | Path | None = None, limit: int | None = None) -> list[InboxMessage]:
    """Received messages, newest first (headers and attachment names; bodies via :func:`read_message`)."""
    folder = _maildir(maildir)
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.eml"), reverse=True)[:limit]
    return [_summary(p, _parse(p)) for p in paths]


def _path(message_id: str, maildir: str | Path | None) -> Path:
    if not _ID.match(message_id):
        raise AlertError(
            f"{message_id!r} is not an inbox message id (ids look like 1712345678901234567-1a2b3c4d)."
        )
    path = _maildir(maildir) / f"{message_id}.eml"
    if not path.is_file():
        raise AlertError(f"No message {message_id} in {path.parent}; it may have been cleared.")
    return path


def read_message(message_id: str, maildir: str | Path | None = None) -> InboxMessage:
    """One message with ``text`` and ``html`` bodies; ``cid:`` images in the HTML become data: URIs.

    A text-only message gets an HTML rendering too (escaped, in a ``<pre>``), so a page can always
    show ``.html``.
    """
    path = _path(message_id, maildir)
    msg = _parse(path)
    out = _summary(path, msg)
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    out.text = text_part.get_content() if text_part is not None else None
    if html_part is not None:
        images = {}
        for part in msg.walk():
            cid = part.get("Content-ID")
            if cid and not part.is_multipart():
                data = base64.b64encode(part.get_payload(decode=True) or b"").decode("ascii")
                images[cid.strip().strip("<>")] = f"data:{part.get_content_type()};base64,{data}"
        body = html_part.get_content()

        def swap(m: re.Match) -> str:
            return images.get(m.group(1), m.group(0))

        out.html = re.sub(r"cid:([^\"'\s)>]+)", swap, body)
    else:
        out.html = f"<pre style='white-space:pre-wrap'>{html_lib.escape(out.text or '')}</pre>"
    return out


def attachment(message_id: str, filename: str, maildir: str | Path | None = None) -> tuple[str, bytes]:
    """``(content_type, bytes)`` of a message's attachment (or inline image) by file name."""
    msg = _parse(_path(message_id, maildir))
    for part in msg.walk():
        if not part.is_multipart() and part.get_filename() == filename:
            return part.get_content_type(), part.get_payload(decode=True) or b""
    raise AlertError(f"Message {message_id} has no attachment named {filename!r}.")


def raw_message(message_id: str, maildir: str | Path | None = None) -> EmailMessage:
    """The parsed message, for anything the helpers above do not cover."""
    return _parse(_path(message_id, maildir))


def clear_inbox(maildir: str | Path | None = None) -> int:
    """Delete every stored message; returns how many."""
    folder = _maildir(maildir)
    n = 0
    for p in folder.glob("*.eml"):
        p.unlink(missing_ok=True)
        n += 1
    return n
