"""Sign-in sessions kept in the warehouse (``ops.sessions``), so they can be ended.

The browser's cookie holds a random token (signed by tornado); the warehouse keeps its SHA-256,
who it belongs to and until when. Signing out, changing a password, removing a user or
``kpi users sessions --revoke`` ends sessions at once, everywhere. Each sign-in gets a new token.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import warehouse
from ..config import settings

SESSION_DAYS = 7
CHECK_EVERY_S = 1.0  # a front door re-reads a session at most this often (revocation shows within it)
TOUCH_EVERY_S = 60.0  # last-seen time written at most this often per session


@dataclass(frozen=True)
class Session:
    login: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    ip: str | None
    user_agent: str | None
    token_hash: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at.timestamp() > time.time()


def cookie_secret() -> str:
    """The key that signs session cookies: made once, kept (0600) so sessions survive restarts."""
    path = settings().home / "cookie_secret"
    with _secret_lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()


_secret_lock = threading.Lock()


def _db():
    """A pooled connection in a transaction (a session check runs on most front-door requests)."""
    return warehouse.engine().begin()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    login: str, ip: str | None = None, user_agent: str | None = None, days: float = SESSION_DAYS
) -> str:
    """A new session for ``login``; returns the token for the cookie (never stored in clear)."""
    token = secrets.token_urlsafe(32)
    with _db() as conn:
        conn.exec_driver_sql(
            "insert into ops.sessions (token_hash, login, expires_at, ip, user_agent)"
            " values (%s, %s, now() + make_interval(secs => %s), %s, %s)",
            (_hash(token), login, days * 86400, ip, (user_agent or "")[:300]),
        )
    return token


class _Memo:
    """Recent lookups, so a page's dozens of resource requests cost one query, not dozens."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[float, str | None]] = {}
        self.touched: dict[str, float] = {}
        self.lock = threading.Lock()

    def forget(self, token_hash: str | None = None) -> None:
        with self.lock:
            if token_hash is None:
                self.items.clear()
            else:
                self.items.pop(token_hash, None)


_memo = _Memo()


def login_for(token: str | None) -> str | None:
    """The login of a live session token; None for unknown, expired or ended sessions."""
    if not token:
        return None
    h = _hash(token)
    now = time.monotonic()
    with _memo.lock:
        hit = _memo.items.get(h)
    if hit is not None and now - hit[0] < CHECK_EVERY_S:
        return hit[1]
    touch = now - _memo.touched.get(h, 0.0) >= TOUCH_EVERY_S
    with _db() as conn:
        row = conn.exec_driver_sql(
            "select login from ops.sessions where token_hash = %s and revoked_at is null and expires_at > now()",
            (h,),
        ).fetchone()
        if row and touch:
            conn.exec_driver_sql("update ops.sessions set last_seen_at = now() where token_hash = %s", (h,))
    login = row[0] if row else None
    with _memo.lock:
        if len(_memo.items) > 10_000:
            _memo.items.clear()
        _memo.items[h] = (now, login)
        if row and touch:
            _memo.touched[h] = now
    return login


def end(token: str | None, why: str = "signed out") -> None:
    """End one session (sign-out)."""
    if not token:
        return
    h = _hash(token)
    with _db() as conn:
        conn.exec_driver_sql(
            "update ops.sessions set revoked_at = now(), revoked_why = %s where token_hash = %s and revoked_at is null",
            (why, h),
        )
    _memo.forget(h)


def end_all(login: str, why: str) -> int:
    """End every live session of ``login`` (password changed, user removed, admin's order)."""
    with _db() as conn:
        n = conn.exec_driver_sql(
            "update ops.sessions set revoked_at = now(), revoked_why = %s"
            " where login = %s and revoked_at is null and expires_at > now()",
            (why, login),
        ).rowcount
    _memo.forget()
    return n


def listing(login: str | None = None, include_ended: bool = False, limit: int = 200) -> list[Session]:
    """Sessions, newest first (live ones only unless ``include_ended``)."""
    with _db() as conn:
        rows = conn.exec_driver_sql(
            "select login, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent, token_hash"
            " from ops.sessions where (%(l)s::text is null or login = %(l)s)"
            " and (%(all)s or (revoked_at is null and expires_at > now()))"
            " order by created_at desc limit %(n)s",
            {"l": login, "all": include_ended, "n": limit},
        ).fetchall()
    return [Session(*r) for r in rows]


def purge(older_than: timedelta = timedelta(days=30)) -> int:
    """Delete sessions that ended or expired long ago."""
    with _db() as conn:
        return conn.exec_driver_sql(
            "delete from ops.sessions where coalesce(revoked_at, expires_at) < now() - make_interval(secs => %s)",
            (older_than.total_seconds(),),
        ).rowcount
