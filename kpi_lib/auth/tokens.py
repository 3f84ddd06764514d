"""Personal API tokens: how programs (a Slack bot, a spreadsheet, a status page) sign in.

``kpi users token add LOGIN --name slack-bot`` makes one and shows it once; the warehouse keeps
only its SHA-256 (``ops.api_tokens``, ``sql/030_api.sql``), who it acts as, its name and when it
was last used. A token acts as its user: the same roles, masking and row scope. Revoking works at
once everywhere (lookups are re-read at most every :data:`CHECK_EVERY_S`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from .. import warehouse
from ..errors import AuthError
from .users import exists

PREFIX = "kpi_"  # tells a token from a password or a session at a glance (and to secret scanners)
CHECK_EVERY_S = 1.0
TOUCH_EVERY_S = 60.0  # last-used time written at most this often per token


@dataclass(frozen=True)
class Token:
    """One token as listed (never the secret itself)."""

    id: int
    login: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Bearer:
    """Who a presented token acts as."""

    token_id: int
    login: str
    name: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add(login: str, name: str) -> str:
    """A new token for ``login`` named ``name``; returns the secret (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise AuthError("Give the token a short name saying what uses it, e.g. --name slack-bot.")
    if not exists(login):
        raise AuthError(f"No user {login!r}. Create one with `kpi users add {login}` first.")
    token = PREFIX + secrets.token_urlsafe(32)
    with warehouse.engine().begin() as conn:
        taken = conn.exec_driver_sql(
            "select 1 from ops.api_tokens where login = %s and name = %s and revoked_at is null",
            (login, name),
        ).fetchone()
        if taken:
            raise AuthError(
                f"{login} already has a token named {name!r}. Revoke it first "
                f"(`kpi users token revoke {login} --name {name}`) or pick another name."
            )
        conn.exec_driver_sql(
            "insert into ops.api_tokens (login, name, token_hash, prefix) values (%s, %s, %s, %s)",
            (login, name, _hash(token), token[: len(PREFIX) + 6]),
        )
    return token


def listing(login: str | None = None, include_revoked: bool = False) -> list[Token]:
    with warehouse.engine().begin() as conn:
        rows = conn.exec_driver_sql(
            "select id, login, name, prefix, created_at, last_used_at, revoked_at from ops.api_tokens"
            " where (%(l)s::text is null or login = %(l)s) and (%(all)s or revoked_at is null)"
            " order by login, created_at",
            {"l": login, "all": include_revoked},
        ).fetchall()
    return [Token(*r) for r in rows]


def revoke(login: str, name: str) -> int:
    """Revoke ``login``'s live token named ``name``; returns how many were revoked (0 or 1)."""
    with warehouse.engine().begin() as conn:
        n = conn.exec_driver_sql(
            "update ops.api_tokens set revoked_at = now() where login = %s and name = %s and revoked_at is null",
            (login, name),
        ).rowcount
    _memo.clear()
    return n


def revoke_all(login: str) -> int:
    with warehouse.engine().begin() as conn:
        n = conn.exec_driver_sql(
            "update ops.api_tokens set revoked_at = now() where login = %s and revoked_at is null", (login,)
        ).rowcount
    _memo.clear()
    return n


class _Memo(dict):
    lock = threading.Lock()
    touched: dict[str, float] = {}


_memo = _Memo()


def check(token: str | None) -> Bearer | None:
    """Who a live token acts as; None for unknown or revoked tokens (and anything not a token)."""
    if not token or not token.startswith(PREFIX) or len(token) > 200:
        return None
    h = _hash(token)
    now = time.monotonic()
    with _memo.lock:
        hit = _memo.get(h)
    if hit is not None and now - hit[0] < CHECK_EVERY_S:
        return hit[1]
    touch = now - _memo.touched.get(h, 0.0) >= TOUCH_EVERY_S
    with warehouse.engine().begin() as conn:
        row = conn.exec_driver_sql(
            "select id, login, name from ops.api_tokens where token_hash = %s and revoked_at is null", (h,)
        ).fetchone()
        if row and touch:
            conn.exec_driver_sql("update ops.api_tokens set last_used_at = now() where id = %s", (row[0],))
    found = Bearer(*row) if row else None
    with _memo.lock:
        if len(_memo) > 10_000:
            _memo.clear()
        _memo[h] = (now, found)
        if row and touch:
            _memo.touched[h] = now
    return found
