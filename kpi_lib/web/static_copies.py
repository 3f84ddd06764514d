"""The dashboards' static files (Bokeh's and Panel's ~3 MB of JavaScript and their stylesheets),
answered by the front door from a copy it keeps, not forwarded to a Panel worker each time.

A Panel worker runs one event loop. While it builds sessions (~0.3 s of CPU each) a request for
``bokeh.min.js`` waits its turn: with five pages opened at once, the first page's scripts came only
after all five sessions were built (issue 18's profile: requested at 1.5 s, first byte at 5.9 s), so
no browser could parse its scripts while the server worked. The files are the installed Bokeh and
Panel's, the same in every worker, so the first answer is kept (by path and query: Bokeh and Panel
put a content hash in the query) with its gzipped body, and the front door answers every later
request itself, conditional requests included. Only a logged-in user's requests reach this (the
proxy checks the login first).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from . import compression

#: Panel's and Bokeh's static routes under the front door's /panel/ prefix (files of the install)
STATIC_PATH = re.compile(r"^/panel/static/")
KEEP_BYTES = 16 * 2**20  # plain + gzipped; the executive page's set is ~3.8 MB
KEPT_HEADERS = {"content-type", "cache-control", "etag", "last-modified", "expires"}
#: a versioned file (``?v=<content hash>``, as Bokeh and Panel write their script URLs) never changes
#: under its URL: a returning browser uses its copy without asking, and keeps the compiled code it
#: made from it (V8's code cache lives beside the HTTP cache entry), so a repeat visit compiles less
IMMUTABLE = "public, max-age=31536000, immutable"
VERSIONED = re.compile(r"[?&]v=[0-9A-Za-z]{8,}")


def versioned(uri: str) -> bool:
    """``uri`` names one version of a file (a content hash in its ``v`` query)."""
    return VERSIONED.search(uri) is not None


@dataclass(frozen=True)
class Copy:
    headers: tuple[tuple[str, str], ...]
    body: bytes
    gzipped: bytes | None
    etag: str | None

    def not_modified(self, if_none_match: str | None) -> bool:
        """The browser's copy is this one (``If-None-Match``, weak or strong)."""
        if not if_none_match or not self.etag:
            return False
        mine = self.etag.removeprefix("W/")
        return if_none_match.strip() == "*" or any(
            tag.strip().removeprefix("W/") == mine for tag in if_none_match.split(",")
        )


class StaticCopies:
    """Kept answers by URI, least recently used dropped first."""

    def __init__(self, budget: int = KEEP_BYTES) -> None:
        self._items: OrderedDict[str, Copy] = OrderedDict()
        self._size = 0
        self._budget = budget
        self._lock = threading.Lock()

    @staticmethod
    def applies(method: str, path: str) -> bool:
        return method == "GET" and STATIC_PATH.match(path) is not None

    def get(self, uri: str) -> Copy | None:
        with self._lock:
            hit = self._items.get(uri)
            if hit is not None:
                self._items.move_to_end(uri)
            return hit

    def keep(self, uri: str, headers: list[tuple[str, str]], body: bytes) -> Copy:
        """Keep an upstream 200 answer (not already encoded) for ``uri``."""
        kept = tuple((k, v) for k, v in headers if k.lower() in KEPT_HEADERS)
        if versioned(uri):  # tornado's 10-year max-age, said so that every browser keeps it untouched
            kept = (*((k, v) for k, v in kept if k.lower() not in ("cache-control", "expires")),
                    ("Cache-Control", IMMUTABLE))  # fmt: skip
        content_type = next((v for k, v in kept if k.lower() == "content-type"), "")
        packed = compression.gzipped(body, content_type, "gzip", static=True)
        etag = next((v for k, v in kept if k.lower() == "etag"), None)
        copy = Copy(kept, body, packed, etag)
        size = len(body) + len(packed or b"")
        if size > self._budget:
            return copy
        with self._lock:
            old = self._items.pop(uri, None)
            if old is not None:
                self._size -= len(old.body) + len(old.gzipped or b"")
            self._items[uri] = copy
            self._size += size
            while self._size > self._budget and self._items:
                _, gone = self._items.popitem(last=False)
                self._size -= len(gone.body) + len(gone.gzipped or b"")
        return copy

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


COPIES = StaticCopies()
