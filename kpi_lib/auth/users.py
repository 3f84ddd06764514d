"""Users and roles: who may see which KPIs, which are masked, which rows, and who may act.

Users live in ``$KPI_HOME/users.yml`` with bcrypt-hashed passwords::

    users:
      ceo:    {name: Chief Executive, roles: [executive], password_hash: "$2b$10$..."}
      emea:   {name: EMEA Manager, roles: [viewer], scope: {region: [Europe]}, email: emea@example.com}
    roles:                      # optional; these are the defaults
      admin:     {kpis: "*", masked: [], admin: true, act: true, rules: true}
      executive: {kpis: "*", masked: [], act: true}
      analyst:   {kpis: "*", masked: [], act: true, rules: true}
      viewer:    {kpis: "*", masked: sensitive}    # "sensitive" = every KPI marked sensitive in catalog.yml

A role or a user may carry a ``scope`` (rows: region/channel/category in a list). The user's own
scope wins; otherwise a role without a scope means every row, and scoped roles add up per
dimension. ``act`` lets a role acknowledge and resolve incidents; ``rules`` lets it write alert rules.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from ..config import settings
from ..errors import AuthError
from ..scope import EVERYTHING, SCOPE_DIMENSIONS, RowScope

log = logging.getLogger(__name__)

DEFAULT_ROLES: dict[str, dict[str, Any]] = {
    "admin": {"kpis": "*", "masked": [], "admin": True, "act": True, "rules": True},
    "executive": {"kpis": "*", "masked": [], "act": True},
    "analyst": {"kpis": "*", "masked": [], "act": True, "rules": True},
    "viewer": {"kpis": "*", "masked": "sensitive"},
}
MASK = "•••"
BCRYPT_ROUNDS = 10
_lock = threading.Lock()


@dataclass(frozen=True)
class User:
    """Someone signed in, with what their roles let them see and do."""

    login: str
    name: str
    roles: tuple[str, ...]
    visible: frozenset[str] | None = None  # None: every KPI
    masked: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False
    scope: RowScope = EVERYTHING
    can_act: bool = False  # acknowledge and resolve incidents
    email: str | None = None
    can_edit_rules: bool = False  # the "Alert rules" page (admins and analysts by default)

    def can_see(self, kpi: str) -> bool:
        return self.visible is None or kpi in self.visible

    def is_masked(self, kpi: str) -> bool:
        return kpi in self.masked

    def show(self, kpi: str, text: str) -> str:
        """The formatted value, or the mask if this user may not read it."""
        return MASK if self.is_masked(kpi) else text

    def may_read(self, kpis: list[str] | tuple[str, ...] | None, rows: RowScope | None = None) -> bool:
        """May this user read a page, e-mail or report that shows ``kpis`` over ``rows``?

        ``kpis=None`` means "every KPI" (a report that does not say what it holds)."""
        if self.admin:
            return True
        names = list(kpis) if kpis is not None else None
        if names is None:
            if self.visible is not None or self.masked:
                return False
        elif any(not self.can_see(k) or self.is_masked(k) for k in names):
            return False
        return within(rows or EVERYTHING, self.scope)


def within(rows: RowScope, scope: RowScope) -> bool:
    """True when every row of ``rows`` is inside ``scope``."""
    if scope.everything:
        return True
    if rows.nothing:
        return True
    for dim, allowed in scope.limits:
        have = rows.values(dim)
        if have is None or not set(have) <= set(allowed):
            return False
    return True


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


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


def _check_scope(scope: dict | None) -> dict[str, list[str]] | None:
    if not scope:
        return None
    try:
        return RowScope.of(scope).as_dict()
    except ValueError as exc:
        raise AuthError(str(exc)) from exc


def set_user(
    login: str,
    password: str | None,
    roles: list[str] | tuple[str, ...] = ("executive",),
    name: str | None = None,
    scope: dict[str, list[str]] | None = None,
    email: str | None = None,
) -> bool:
    """Create or update a user (the password is stored as a bcrypt hash only).

    ``password=None`` keeps an existing user's password. Returns True when the password changed,
    so the caller ends that user's sessions."""
    if not login or not login.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise AuthError(f"User name {login!r} should be letters, digits, '.', '-' or '_'.")
    if password is not None and len(password) < 8:
        raise AuthError("Passwords need at least 8 characters.")
    with _lock:
        doc = _load()
        known = {**DEFAULT_ROLES, **doc["roles"]}
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise AuthError(f"Unknown role(s) {', '.join(unknown)}. Roles: {', '.join(known)}.")
        old = doc["users"].get(login, {})
        if password is None and not old.get("password_hash"):
            raise AuthError(f"New user {login!r} needs a password.")
        entry = {
            "name": name or old.get("name") or login,
            "roles": list(roles),
            "password_hash": hash_password(password) if password is not None else old["password_hash"],
        }
        scope_doc = _check_scope(scope) if scope is not None else old.get("scope")
        if scope_doc:
            entry["scope"] = scope_doc
        if email or old.get("email"):
            entry["email"] = email or old.get("email")
        doc["users"][login] = entry
        _save(doc)
        return password is not None and bool(old)


def remove_user(login: str) -> bool:
    with _lock:
        doc = _load()
        existed = doc["users"].pop(login, None) is not None
        _save(doc)
        return existed


def list_users() -> list[User]:
    doc = _load()
    return [user(login) for login in doc["users"]]


def exists(login: str) -> bool:
    return login in _load()["users"]


def _sensitive_kpis() -> set[str]:
    from .. import kpis

    try:
        return {k.name for k in kpis.definitions().values() if k.sensitive}
    except Exception:  # no catalog: nothing is sensitive
        return set()


def _role_scopes(specs: list[dict[str, Any]]) -> RowScope:
    """Roles' scopes combined: any unscoped role means every row; scoped roles add up per dimension."""
    if not specs or any(not s.get("scope") for s in specs):
        return EVERYTHING
    merged: dict[str, set[str]] = {}
    dims = None
    for s in specs:
        sc = RowScope.of(s["scope"])
        if dims is not None and set(dict(sc.limits)) != dims:
            raise AuthError(
                "Roles with row scopes on different dimensions cannot be combined; give the user "
                "their own scope in users.yml."
            )
        dims = set(dict(sc.limits))
        for d, v in sc.limits:
            merged.setdefault(d, set()).update(v)
    return RowScope.of({d: sorted(v) for d, v in merged.items()})


def user(login: str) -> User:
    """The user's resolved permissions (unknown logins raise AuthError)."""
    doc = _load()
    entry = doc["users"].get(login)
    if entry is None:
        raise AuthError(f"No user {login!r}. Create one with `kpi users add {login}`.")
    roles = {**DEFAULT_ROLES, **doc["roles"]}
    visible: set[str] | None = set()
    masked: set[str] | None = None  # the most permissive role wins: mask only what every role masks
    admin = act = rules = False
    specs = []
    for r in entry.get("roles", []):
        spec = roles.get(r, {})
        specs.append(spec)
        kp = spec.get("kpis", "*")
        if kp == "*":
            visible = None
        elif visible is not None:
            visible |= set(kp)
        m = spec.get("masked", [])
        m = _sensitive_kpis() if m == "sensitive" else set(m)
        masked = m if masked is None else masked & m
        admin = admin or bool(spec.get("admin"))
        act = act or bool(spec.get("act")) or bool(spec.get("admin"))
        rules = rules or bool(spec.get("rules")) or bool(spec.get("admin"))
    try:
        scope = RowScope.of(entry["scope"]) if entry.get("scope") else _role_scopes(specs)
    except ValueError as exc:
        raise AuthError(f"User {login!r}: {exc}") from exc
    return User(
        login,
        entry.get("name", login),
        tuple(entry.get("roles", [])),
        None if visible is None else frozenset(visible),
        frozenset(masked or set()),
        admin,
        scope,
        act,
        entry.get("email"),
        rules,
    )


def user_by_email(address: str) -> User | None:
    """The user whose ``email`` is this address (alert routing applies their roles), else None."""
    address = address.strip().lower()
    for login, entry in _load()["users"].items():
        if (entry.get("email") or "").strip().lower() == address:
            return user(login)
    return None


# a real hash of a random password: unknown users cost the same bcrypt time as wrong passwords
_DUMMY_HASH = bcrypt.hashpw(b"not-a-password-anyone-has", bcrypt.gensalt(rounds=BCRYPT_ROUNDS))


def verify(login: str, password: str) -> User | None:
    """The user when the password matches its hash; None otherwise, in the same time either way."""
    entry = _load()["users"].get(login)
    stored = (entry or {}).get("password_hash")
    try:
        ok = bcrypt.checkpw(password.encode(), stored.encode() if stored else _DUMMY_HASH)
    except ValueError:
        ok = False
    return user(login) if ok and entry and stored else None


SCOPE_HELP = f"DIM=VALUE row limit (repeatable; DIM one of {', '.join(SCOPE_DIMENSIONS)})"
