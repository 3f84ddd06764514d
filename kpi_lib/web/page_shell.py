"""A Panel page's scripts start before its session is built (issue 18).

A Panel worker writes a page's HTML only once it has built the page's session (~0.15 s alone, over
a second when five people open pages at once), and only then could the browser start on Bokeh's and
Panel's scripts (~0.45 s even from its cache). The executive page's template therefore begins with
what is the same for every session (the head, the list of those scripts and the two small scripts
that load them and open the session's websocket) and marks
where that ends with ``<!--kpi-shell-->``. The front door keeps the part before the mark from the
last page it forwarded (its *shell*), and sends it the moment the next page is asked for; the rest
follows when the worker has built the session.

The shell cannot carry the session's token (the session does not exist yet), so it carries a
one-time key in ``data-early``: the page's script opens its websocket with that key at once, and the
front door holds that socket until the page's token is known, then connects it to the session as if
the page had used the token (:class:`EarlySockets`), and asks for the document itself the moment
the session answers, while the browser still runs its scripts.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field

MARK = b"<!--kpi-shell-->"
EARLY_ATTR = b'data-early=""'
EARLY_PROTOCOL = "kpi-early."  # the page's websocket offers "bokeh", "kpi-early.<key>"
# the front door asks for such a page's document itself (proxy.ProxyHandler._pull_document)
PULL_REQUEST = json.dumps({"msgid": "kpi-early-pull", "msgtype": "PULL-DOC-REQ"})
TOKEN = re.compile(rb'"token":"([A-Za-z0-9_.\-]+)"')  # Bokeh's render items in the page
# what a shell loads or styles (see missing())
RESOURCE = re.compile(
    rb"<script\b[^>]*\bsrc=[^>]*>\s*</script>|<link\b[^>]*>|<style\b[^>]*>.*?</style>", re.S
)
# after a shell, when the worker's page is not the rest of it: the browser asks again (the shell is
# forgotten, so it then gets the page as the worker wrote it, an error page with its own status)
RETRY = (
    b'<p style="font-family: system-ui, sans-serif; margin: 2em">This page is being loaded again. '
    b'<a href="">Reload it</a> if nothing happens.</p><script>location.reload()</script>'
)
EARLY_WAIT_S = 120.0  # as long as the front door waits for a worker's page
MAX_SHELLS = 64


def split(body: bytes) -> tuple[bytes, bytes] | None:
    """A page's shell and the rest, or None for a page without the mark."""
    at = body.find(MARK)
    if at < 0:
        return None
    end = at + len(MARK)
    return body[:end], body[end:]


def with_key(shell: bytes, key: str) -> bytes:
    return shell.replace(EARLY_ATTR, b'data-early="' + key.encode() + b'"', 1)


def token(rest: bytes) -> str | None:
    """The session token of a page's HTML."""
    m = TOKEN.search(rest)
    return m.group(1).decode() if m else None


def missing(sent: bytes, wanted: bytes) -> bytes | None:
    """The stylesheets and styles of the shell ``wanted`` that the shell ``sent`` lacks (it was
    learned from an earlier page), to send before the rest; None when ``wanted`` has a script that
    ``sent`` lacks: scripts run in their order, so it cannot come later (the page is loaded again)."""
    have = set(RESOURCE.findall(sent))
    extra = [tag for tag in RESOURCE.findall(wanted) if tag not in have]
    if any(tag.startswith(b"<script") for tag in extra):
        return None
    return b"".join(extra)


class Shells:
    """The newest shell seen for each page (path and theme), from the pages the workers wrote."""

    def __init__(self) -> None:
        self._shells: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._shells.get(key)

    def learn(self, key: str, shell: bytes) -> None:
        if key not in self._shells and len(self._shells) >= MAX_SHELLS:
            self._shells.pop(next(iter(self._shells)))
        self._shells[key] = shell

    def forget(self, key: str) -> None:
        self._shells.pop(key, None)


@dataclass
class _Early:
    login: str
    since: float
    claimed: bool = False
    session: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class EarlySockets:
    """One-time keys handed to pages before their sessions exist (the front door's event loop only).

    A key belongs to the user whose page it went out in, is used once, and is forgotten after
    ``EARLY_WAIT_S``. It leads to the page's session token, which the front door checks like any
    token (the socket is then forwarded as the page's own)."""

    def __init__(self) -> None:
        self._keys: dict[str, _Early] = {}

    def expect(self, login: str) -> str:
        """A key for a page of ``login`` that is about to be built."""
        now = time.monotonic()
        for k in [k for k, e in self._keys.items() if now - e.since > EARLY_WAIT_S]:
            self._drop(k)
        key = secrets.token_urlsafe(18)
        self._keys[key] = _Early(login, now)
        return key

    def built(self, key: str, session_token: str, upstream: str) -> None:
        """The page's worker wrote it: its socket may go to ``upstream`` with ``session_token``."""
        e = self._keys.get(key)
        if e is not None and not e.session.done():
            e.session.set_result((session_token, upstream))

    def failed(self, key: str) -> None:
        """No session came of it: a socket waiting with the key is closed (the page falls back)."""
        self._drop(key)

    def knows(self, key: str, login: str) -> bool:
        e = self._keys.get(key)
        return e is not None and e.login == login and not e.claimed

    async def claim(self, key: str, login: str) -> tuple[str, str] | None:
        """The session token and worker for a socket opened with ``key``, once the page is built;
        None when the key is unknown, someone else's, used, or its page failed."""
        e = self._keys.get(key)
        if e is None or e.login != login or e.claimed:
            return None
        e.claimed = True
        try:
            return await asyncio.wait_for(asyncio.shield(e.session), EARLY_WAIT_S)
        except TimeoutError:
            return None
        finally:
            self._drop(key)

    def _drop(self, key: str) -> None:
        e = self._keys.pop(key, None)
        if e is not None and not e.session.done():
            e.session.set_result(None)

    def __len__(self) -> int:
        return len(self._keys)


SHELLS = Shells()
EARLY = EarlySockets()
