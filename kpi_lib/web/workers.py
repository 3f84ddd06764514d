"""Several dashboard worker processes behind the one front door, sticky per session.

A Panel page and its websocket must reach the process that made its session, so the front door picks
a worker per sign-in session with rendezvous hashing (highest score of ``sha256(session, worker)``):
sessions spread evenly, the same session always lands on the same worker, and when a worker stops
answering only its sessions move (to the live worker that scores next); new sessions go to the live
ones. A failed worker is tried again after ``RETRY_S``. With several front doors the same hashing
gives the same answer, so they need no shared table.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

log = logging.getLogger(__name__)

RETRY_S = 5.0


class Workers:
    """The upstream URLs of one kind of back end (e.g. the Panel processes)."""

    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise ValueError("Workers needs at least one upstream URL")
        self.urls = list(urls)
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def _live(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            live = [u for u in self.urls if self._down_until.get(u, 0.0) <= now]
        return live or list(self.urls)  # all failed: keep trying them rather than refuse everyone

    def pick(self, session: str) -> str:
        """The worker for this session (any stable string: the sign-in session's id)."""
        live = self._live()
        if len(live) == 1:
            return live[0]
        return max(live, key=lambda u: hashlib.sha256(f"{session}\0{u}".encode()).digest())

    def index(self, url: str) -> int:
        return self.urls.index(url)

    def failed(self, url: str) -> None:
        """``url`` did not answer: send its sessions elsewhere for a while."""
        with self._lock:
            first = self._down_until.get(url, 0.0) <= time.monotonic()
            self._down_until[url] = time.monotonic() + RETRY_S
        if first and len(self.urls) > 1:
            log.warning("dashboard worker %s is not answering; its sessions move to the others", url)
