"""Users, roles, KPI visibility and masking, and the audit log.

Users live in ``$KPI_HOME/users.yml`` with bcrypt-hashed passwords; roles say which KPIs a user
may see and which are masked (shown as •••). The web front door (``kpi serve``) checks the
password, signs a cookie with a secret kept in ``$KPI_HOME/cookie_secret`` and forwards the user
name to the dashboards in the ``X-KPI-User`` header; :func:`current_user` reads it back in a Panel
app, a Voila notebook, or falls back to ``KPI_USER`` / the OS user in JupyterLab and jobs.

    users.yml
    ---------
    users:
      ceo: {name: Chief Executive, roles: [executive], password_hash: "$2b$12$..."}
    roles:                      # optional; these are the defaults
      admin:     {kpis: "*", masked: [], admin: true}
      executive: {kpis: "*", masked: []}
      analyst:   {kpis: "*", masked: []}
      viewer:    {kpis: "*", masked: sensitive}   # "sensitive" = every KPI marked sensitive in catalog.yml
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from .config import settings
from .errors import AuthError

log = logging.getLogger(__name__)

HEADER = "X-KPI-User"
COOKIE = "kpi_session"
SESSION_DAYS = 7
DEFAULT_ROLES: dict[str, dict[str, Any]] = {
    "admin": {"kpis": "*", "masked": [], "admin": True},
    "executive": {"kpis": "*", "masked": []},
    "analyst": {"kpis": "*", "masked": []},
    "viewer": {"kpis": "*", "masked": "sensitive"},
}
MASK = "•••"
_lock = threading.Lock()


@dataclass(frozen=True)
class User:
    """Someone signed in, with what their roles let them see."""

    login: str
    name: str
    roles: tuple[str, ...]
    visible: frozenset[str] | None = None  # None: every KPI
    masked: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    def can_see(self, kpi: str) -> bool:
        return self.visible is None or kpi in self.visible

    def is_masked(self, kpi: str) -> bool:
        return kpi in self.masked

    def show(self, kpi: str, text: str) -> str:
        """The formatted value, or the mask if this user may not read it."""
        return MASK if self.is_masked(kpi) else text


def users_path() -> Path:
    return settings().home / "users.yml"


def _load() -> dict[str, Any]:
    path = users_path()
    if not path.exists():
        return {"users": {}, "roles": {}}
    doc = yaml.safe_load(path.read_text()) or {}
    doc.setdefault("users", {})
    doc.setdefault("roles", {})
    return doc


def _save(doc: dict[str, Any]) -> None:
    path = users_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)


def set_user(
    login: str, password: str, roles: list[str] | tuple[str, ...] = ("executive",), name: str | None = None
) -> None:
    """Create or update a user (the password is stored as a bcrypt hash only)."""
    if not login or not login.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise AuthError(f"User name {login!r} should be letters, digits, '.', '-' or '_'.")
    if len(password) < 8:
        raise AuthError("Passwords need at least 8 characters.")
    with _lock:
        doc = _load()
        known = {**DEFAULT_ROLES, **doc["roles"]}
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise AuthError(f"Unknown role(s) {', '.join(unknown)}. Roles: {', '.join(known)}.")
        doc["users"][login] = {
            "name": name or doc["users"].get(login, {}).get("name") or login,
            "roles": list(roles),
            "password_hash": bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode(),
        }
        _save(doc)


def remove_user(login: str) -> bool:
    with _lock:
        doc = _load()
        existed = doc["users"].pop(login, None) is not None
        _save(doc)
        return existed


def list_users() -> list[User]:
    doc = _load()
    return [user(login) for login in doc["users"]]


def _sensitive_kpis() -> set[str]:
    from . import kpis

    try:
        return {k.name for k in kpis.definitions().values() if k.sensitive}
    except Exception:  # no catalog: nothing is sensitive
        return set()


def user(login: str) -> User:
    """The user's resolved permissions (unknown logins get nothing)."""
    doc = _load()
    entry = doc["users"].get(login)
    if entry is None:
        raise AuthError(f"No user {login!r}. Create one with `kpi users add {login}`.")
    roles = {**DEFAULT_ROLES, **doc["roles"]}
    visible: set[str] | None = set()
    masked: set[str] | None = None  # the most permissive role wins: mask only what every role masks
    admin = False
    for r in entry.get("roles", []):
        spec = roles.get(r, {})
        kp = spec.get("kpis", "*")
        if kp == "*":
            visible = None
        elif visible is not None:
            visible |= set(kp)
        m = spec.get("masked", [])
        m = _sensitive_kpis() if m == "sensitive" else set(m)
        masked = m if masked is None else masked & m
        admin = admin or bool(spec.get("admin"))
    masked = masked or set()
    return User(
        login,
        entry.get("name", login),
        tuple(entry.get("roles", [])),
        None if visible is None else frozenset(visible),
        frozenset(masked),
        admin,
    )


def verify(login: str, password: str) -> User | None:
    """The user when the password matches its hash; None otherwise (same time either way)."""
    entry = _load()["users"].get(login)
    stored = (entry or {}).get("password_hash", "$2b$10$" + "x" * 53).encode()
    try:
        ok = bcrypt.checkpw(password.encode(), stored)
    except ValueError:
        ok = False
    return user(login) if ok and entry else None


# --- sessions ----------------------------------------------------------------------------------


def cookie_secret() -> bytes:
    """Generated once and kept (0600) so sessions survive restarts of `kpi serve`."""
    path = settings().home / "cookie_secret"
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()


def sign_session(login: str, days: float = SESSION_DAYS) -> str:
    expires = int(time.time() + days * 86400)
    body = f"{login}|{expires}"
    mac = hmac.new(cookie_secret(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}|{mac}"


def read_session(token: str | None) -> str | None:
    """The login in a valid, unexpired session token; None otherwise."""
    if not token or token.count("|") != 2:
        return None
    login, expires, mac = token.split("|")
    good = hmac.new(cookie_secret(), f"{login}|{expires}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, good) or not expires.isdigit() or int(expires) < time.time():
        return None
    return login if login in _load()["users"] else None


def current_user() -> User:
    """Who is looking: the signed-in dashboard user, else KPI_USER or the OS user (as an analyst)."""
    login = None
    pn = sys.modules.get("panel")  # not imported: not a Panel session (importing it costs ~2 s)
    if pn is not None:  # a Panel session behind `kpi serve`
        if pn.state.curdoc is not None and pn.state.headers:
            login = next((v for k, v in pn.state.headers.items() if k.lower() == HEADER.lower()), None)
    if login is None and os.environ.get("VOILA_KERNEL_ID"):  # a Voila kernel: wait for its request
        from voila.utils import wait_for_request

        wait_for_request()
        login = os.environ.get("HTTP_" + HEADER.upper().replace("-", "_"))
    if login:
        try:
            return user(login)
        except AuthError:
            log.warning("signed-in user %r is not in users.yml any more", login)
    local = os.environ.get("KPI_USER") or getpass.getuser()
    return User(local, local, ("analyst",))


# --- audit log -----------------------------------------------------------------------------------


def audit(actor: str, action: str, target: str | None = None, **details: Any) -> None:
    """Append to ops.audit_log. Never raises: auditing must not break the action it records."""
    from . import warehouse

    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            conn.execute(
                "insert into ops.audit_log (actor, action, target, details) values (%s, %s, %s, %s)",
                [actor, action, target, json.dumps(details, default=str)],
            )
    except Exception as exc:  # noqa: BLE001
        log.error("could not write the audit log (%s %s %s): %s", actor, action, target, exc)
