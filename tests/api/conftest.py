"""The API suite: users of each role with personal tokens, against the session's real `kpi serve`."""

from __future__ import annotations

import pytest
import requests

from kpi_lib import auth
from kpi_lib.auth import tokens

PASSWORD = "api-password-123"
ROLES = {
    "api-exec": ["executive"],
    "api-viewer": ["viewer"],
    "api-europe": ["executive"],
    "api-admin": ["admin"],
}


@pytest.fixture(scope="session")
def api_tokens(server) -> dict[str, str]:
    """A live token per user (made the way `kpi users token add` makes them)."""
    out = {}
    for login, roles in ROLES.items():
        scope = {"region": ["Europe"]} if login == "api-europe" else None
        auth.set_user(login, PASSWORD, roles, scope=scope)
        tokens.revoke_all(login)
        out[login] = tokens.add(login, "tests")
    return out


class Api(requests.Session):
    """An HTTP client of the front door's /api/ with a bearer token."""

    def __init__(self, base: str, token: str | None) -> None:
        super().__init__()
        self.base = base
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, path, *args, **kw):  # type: ignore[override]
        kw.setdefault("timeout", 60)
        return super().request(method, self.base + path, *args, **kw)


@pytest.fixture()
def api(server, api_tokens):
    def make(login: str | None = "api-exec", token: str | None = None) -> Api:
        return Api(server, token or (api_tokens[login] if login else None))

    return make
