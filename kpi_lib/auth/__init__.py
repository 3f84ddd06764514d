"""Users, roles, sessions, row scopes and the audit log.

- :mod:`.users`: ``users.yml``, roles, what a :class:`User` may see (KPIs, masking, rows) and do;
- :mod:`.sessions`: sign-in sessions kept in the warehouse, so they can be ended;
- :mod:`.identity`: who is asking (the front door's verified user, or the local user);
- :mod:`.audit`: the append-only audit log (now, or batched with :func:`audit_later`).
"""

from __future__ import annotations

from . import sessions
from .audit import audit, audit_later, flush_audit
from .audit import search as search_audit
from .audit import verify as verify_audit
from .identity import (
    HEADER,
    PROXY_HEADER,
    acting_as,
    current_user,
    local_user,
    proxy_secret,
    verified_login,
)
from .users import (
    DEFAULT_ROLES,
    MASK,
    User,
    exists,
    list_users,
    remove_user,
    set_user,
    user,
    user_by_email,
    users_path,
    verify,
    within,
)

COOKIE = "kpi_session"

__all__ = [
    "COOKIE",
    "DEFAULT_ROLES",
    "HEADER",
    "MASK",
    "PROXY_HEADER",
    "User",
    "acting_as",
    "audit",
    "audit_later",
    "flush_audit",
    "current_user",
    "exists",
    "list_users",
    "local_user",
    "proxy_secret",
    "remove_user",
    "search_audit",
    "verify_audit",
    "sessions",
    "set_user",
    "user",
    "user_by_email",
    "users_path",
    "verified_login",
    "verify",
    "within",
]
