"""Build email messages: an HTML part with inline images (``cid:``), a plain-text part, attachments.

An :class:`Email` is the plain data a job or alert hands to the outbox; :func:`compose` turns it into
a stdlib :class:`email.message.EmailMessage` at send time, so the outbox stores parts, not MIME text.

    >>> from kpi_lib.mail import Email, figure_part, csv_part, compose
    >>> chart = figure_part(fig, "revenue")                       # doctest: +SKIP
    >>> e = Email("Revenue", ["cfo@example.com"], "see chart",
    ...           html=f'<img src="cid:{chart.content_id}">', inline=[chart])   # doctest: +SKIP
    >>> compose(e).as_bytes()                                     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from ..config import settings
from ..errors import AlertError
from ..formats import spreadsheet_safe

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Part:
    """An inline image (``content_id`` set) or an attachment; bytes in ``data`` or a file at ``path``.

    ``path`` is relative to ``$KPI_HOME`` (or absolute inside it), so an outbox row written on one
    machine still resolves on another that shares the folder.
    """

    filename: str
    content_type: str
    data: bytes | None = None
    path: str | None = None
    content_id: str | None = None

    def __post_init__(self) -> None:
        if self.data is None and self.path is None:
            raise AlertError(f"Email part {self.filename!r} has neither data nor a path; give one of them.")
        if "/" not in self.content_type:
            raise AlertError(
                f"Email part {self.filename!r}: content type {self.content_type!r} is not 'type/subtype'."
            )

    @property
    def inline(self) -> bool:
        return self.content_id is not None

    def read(self) -> bytes:
        """The part's bytes (from ``data`` or from the file under $KPI_HOME)."""
        if self.data is not None:
            return bytes(self.data)
        return resolve_path(self.path).read_bytes()


def resolve_path(path: str | Path | None) -> Path:
    """A part's file, refusing anything outside $KPI_HOME (outbox rows must not read arbitrary files)."""
    home = settings().home.resolve()
    p = Path(path or "")
    full = (p if p.is_absolute() else home / p).resolve()
    if full != home and home not in full.parents:
        raise AlertError(
            f"Attachment path {path} is outside KPI_HOME ({home}); copy the file under it first."
        )
    if not full.is_file():
        raise AlertError(
            f"Attachment file {full} does not exist (was it cleaned up before the email was sent?)."
        )
    return full


@dataclass
class Email:
    """What to send. ``html`` may reference inline parts as ``cid:<content_id>``."""

    subject: str
    recipients: list[str]
    text: str
    html: str | None = None
    inline: list[Part] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)
    sender: str | None = None
    kind: str = "message"
    provenance: dict[str, Any] = field(default_factory=dict)
    kpis: list[str] | None = None  # the KPIs it shows (None: undeclared, readable only by full access)
    rows: dict[str, list[str]] | None = None  # the rows it covers, e.g. {"region": ["Europe"]}; None: all

    def __post_init__(self) -> None:
        self.recipients = normalise_recipients(self.recipients)
        if not self.subject or "\n" in self.subject or "\r" in self.subject:
            raise AlertError(f"Email subject {self.subject!r} must be one non-empty line.")
        for p in self.inline:
            if not p.inline:
                raise AlertError(
                    f"Inline part {p.filename!r} needs a content_id (referenced as cid:... in the HTML)."
                )

    @property
    def parts(self) -> list[Part]:
        return [*self.inline, *self.attachments]


def normalise_recipients(recipients: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"a@x, B <b@y>"`` or a list of them -> ``["a@x", "B <b@y>"]``; refuses anything without an @."""
    if isinstance(recipients, str):
        recipients = [recipients]
    out: list[str] = []
    for name, addr in getaddresses(list(recipients)):
        if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
            raise AlertError(
                f"{addr or name!r} is not an email address; recipients look like 'ops@example.com' "
                "or 'Ops <ops@example.com>'."
            )
        entry = f"{name} <{addr}>" if name else addr
        if entry not in out:
            out.append(entry)
    if not out:
        raise AlertError("An email needs at least one recipient; add some to the route or job in schedules/.")
    return out


def slug(text: str) -> str:
    return _SLUG.sub("-", text).strip("-").lower() or "part"


def figure_part(fig, name: str, dpi: int = 100) -> Part:
    """A matplotlib Figure as an inline PNG. Reference it in HTML as ``cid:{part.content_id}``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    cid = f"{slug(name)}.{hashlib.sha1(data).hexdigest()[:10]}@kpi"
    return Part(filename=f"{slug(name)}.png", content_type="image/png", data=data, content_id=cid)


def csv_part(df, filename: str) -> Part:
    """A pandas DataFrame as a CSV attachment (UTF-8, no index)."""
    name = filename if filename.endswith(".csv") else f"{filename}.csv"
    data = spreadsheet_safe(df).to_csv(index=False).encode("utf-8")
    return Part(filename=name, content_type="text/csv", data=data)


def envelope_address(sender: str) -> str:
    return parseaddr(sender)[1]


def new_message_id(sender: str | None = None) -> str:
    domain = envelope_address(sender or settings().smtp_from).rpartition("@")[2] or "kpi.local"
    return make_msgid("kpi", domain=domain)


def compose(email: Email, message_id: str | None = None) -> EmailMessage:
    """The MIME message: mixed[ alternative[ text, related[ html, images... ] ], attachments... ]."""
    sender = email.sender or settings().smtp_from
    msg = EmailMessage()
    msg["Subject"] = email.subject
    msg["From"] = sender
    msg["To"] = ", ".join(email.recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id or new_message_id(sender)
    msg["X-KPI-Kind"] = email.kind
    if email.kpis is not None:  # the inbox and report pages show a message only to who may read these
        msg["X-KPI-Kpis"] = ",".join(email.kpis)
    if email.rows:
        msg["X-KPI-Rows"] = json.dumps(email.rows, sort_keys=True)
    msg.set_content(email.text)
    if email.html is not None:
        msg.add_alternative(email.html, subtype="html")
        html_part = msg.get_payload()[-1]
        for p in email.inline:
            maintype, _, subtype = p.content_type.partition("/")
            html_part.add_related(
                p.read(),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{p.content_id}>",
                filename=p.filename,
                disposition="inline",
            )
    elif email.inline:
        raise AlertError("Inline images need an HTML body that references them (cid:...).")
    for p in email.attachments:
        maintype, _, subtype = p.content_type.partition("/")
        data = p.read()
        if maintype == "text":
            msg.add_attachment(data.decode("utf-8"), subtype=subtype, filename=p.filename)
        else:
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=p.filename)
    # Headers are folded when the message is written. At 78 columns Python folds a subject between
    # plain and encoded words and leaves two spaces ("Orders  −100%") in every reader; headers may be
    # 998 long (RFC 5322), and bodies were encoded above, so only header folding changes.
    msg.policy = msg.policy.clone(max_line_length=998)
    return msg


__all__ = [
    "Email",
    "Part",
    "compose",
    "csv_part",
    "figure_part",
    "new_message_id",
    "normalise_recipients",
    "resolve_path",
]
