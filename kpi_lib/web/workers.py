"""Several dashboard worker processes behind the one front door, sticky per session.

A Panel page and its websocket must reach the process that made its session, so the front door picks
a worker per sign-in session with rendezvous hashing (highest score of ``sha256(session, worker)``):
sessions spread evenly, the same session always lands on the same worker, and when a worker stops
answering only its sessions move (to the live worker that scores next); new sessions go to the live
ones. With several front doors the same hashing gives the same answer, so they need no shared table.

A worker that failed is given sessions again only once a probe connects to it (every ``PROBE_S``).
Retrying it on users' requests instead sent a new page to the dead worker once its retry time was up:
the page's shell and its ``X-KPI-Worker`` header were already on their way when the connection was
refused (tests/ui/test_workers.py, seen in CI).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PROBE_S = 1.0


class Workers:
    """The upstream URLs of one kind of back end (e.g. the Panel processes)."""

    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise ValueError("Workers needs at least one upstream URL")
        self.urls = list(urls)
        self._down: set[str] = set()
        self._lock = threading.Lock()

    def _live(self) -> list[str]:
        with self._lock:
            live = [u for u in self.urls if u not in self._down]
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
        """``url`` did not answer: send its sessions elsewhere until it accepts connections again."""
        if len(self.urls) == 1:
            return  # nowhere else to send them
        with self._lock:
            if url in self._down:
                return
            self._down.add(url)
        log.warning("dashboard worker %s is not answering; its sessions move to the others", url)
        threading.Thread(target=self._probe, args=(url,), name=f"probe {url}", daemon=True).start()

    def _probe(self, url: str) -> None:
        parts = urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80))
        while True:
            time.sleep(PROBE_S)
            try:
                socket.create_connection(address, timeout=PROBE_S).close()
            except OSError:
                continue
            with self._lock:
                self._down.discard(url)
            log.warning("dashboard worker %s answers again", url)
            return
