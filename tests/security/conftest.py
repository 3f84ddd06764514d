"""Helpers for the security suite: signed-in HTTP clients and users of every role, against the
session's real `kpi serve` (tests/conftest.py starts it)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from pathlib import Path

import pytest
import requests

from kpi_lib import auth

PASSWORD = "security-password-1"
ROLES = {
    "sec-admin": (["admin"], None),
    "sec-exec": (["executive"], None),
    "sec-analyst": (["analyst"], None),
    "sec-viewer": (["viewer"], None),
    "sec-europe": (["executive"], {"region": ["Europe"]}),
}


@pytest.fixture(scope="session")
def users(server):
    for login, (roles, scope) in ROLES.items():
        auth.set_user(login, PASSWORD, roles, name=login.replace("sec-", "Security ").title(), scope=scope)
    return list(ROLES)


class Client(requests.Session):
    """A browser-like HTTP client of the front door (cookies kept, redirects not followed)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, **kw):  # type: ignore[override]
        kw.setdefault("allow_redirects", False)
        return super().get(self.url(path), **kw)

    def post(self, path: str, **kw):  # type: ignore[override]
        kw.setdefault("allow_redirects", False)
        return super().post(self.url(path), **kw)

    def xsrf(self) -> str:
        page = self.get("/login").text
        return re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)

    def sign_in(self, login: str, password: str = PASSWORD, next_path: str = "/", **headers):
        return self.post(
            "/login",
            data={"user": login, "password": password, "next": next_path, "_xsrf": self.xsrf()},
            headers=headers,
        )

    @property
    def session_cookie(self) -> str:
        return self.cookies.get(auth.COOKIE)


@pytest.fixture()
def client(server, users):
    def make(login: str | None = None) -> Client:
        c = Client(server)
        if login:
            r = c.sign_in(login)
            assert r.status_code == 302, r.text[:300]
        return c

    return make


def serve_state() -> dict:
    return json.loads((Path(os.environ["KPI_HOME"]) / "serve.json").read_text())


def ws_connect(url: str, headers: dict | None = None, subprotocols: list[str] | None = None, messages=()):
    """Open a websocket, send ``messages``, and return (status, [received...]) or (HTTP code, None)."""
    import tornado.httpclient
    import tornado.websocket

    async def go():
        req = tornado.httpclient.HTTPRequest(url, headers=headers or {}, request_timeout=30)
        try:
            conn = await tornado.websocket.websocket_connect(req, subprotocols=subprotocols)
        except tornado.httpclient.HTTPClientError as exc:
            return exc.code, None
        got = []
        for m in messages:
            await conn.write_message(m, binary=isinstance(m, bytes))
        while True:
            try:
                msg = await asyncio.wait_for(conn.read_message(), timeout=5)
            except TimeoutError:
                break
            if msg is None:
                got.append(("closed", conn.close_code))
                break
            got.append(msg)
        conn.close()
        return 101, got

    # in a thread of its own: Playwright's sync API keeps an event loop running in this one
    out: list = []
    worker = threading.Thread(target=lambda: out.append(asyncio.run(go())))
    worker.start()
    worker.join()
    return out[0]
