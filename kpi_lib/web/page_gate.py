"""Pages opened at the same moment become usable one after the other, not all at the end.

A Panel worker builds a page's session when its HTML is asked for: ~0.3 s of CPU in one block on
its one event loop. Asked for five pages at once it queued all five builds first; the websockets of
the pages already sent (their handshake and their document, a few short steps) each took their turn
behind every build queued before them. So no page got its document until all five were built
(issue 18's profile: five websockets opened within 13 ms, after the fifth build), and five pages
at once were usable only when the slowest was.

The front door therefore sends a worker one page request at a time, and holds the next while
the worker answers a page's websocket handshake or its request for its document (at most
``HOLD_S``). Both are the worker's own short work: the hold never waits for a browser, which may be
slow to ask (an earlier version held the next build until a page had its document, and on a busy
machine the worker sat idle for a second per page while browsers parsed their scripts).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

HOLD_S = 0.5  # the longest a page build waits for other pages' handshakes and documents
STALE_S = 30.0  # an opening websocket not heard of for this long is forgotten (a safety net)


class PageGate:
    """One Panel worker's page builds and opening websockets (the front door's event loop only)."""

    def __init__(self) -> None:
        self._build = asyncio.Lock()
        self._opening: dict[int, float] = {}  # websocket id -> when it started opening
        self._changed = asyncio.Event()
        self._next = 0

    @contextlib.asynccontextmanager
    async def build(self):
        """Around the request for a page (its session is built while it is held)."""
        async with self._build:
            now = time.monotonic()
            for ticket in [t for t, since in self._opening.items() if now - since > STALE_S]:
                del self._opening[ticket]
            deadline = now + HOLD_S
            while self._opening and (left := deadline - time.monotonic()) > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
            yield

    def opening(self) -> int:
        """The worker has a page's websocket handshake or document to answer; returns a ticket
        for :meth:`opened`."""
        self._next += 1
        self._opening[self._next] = time.monotonic()
        return self._next

    def opened(self, ticket: int | None) -> None:
        """That answer went out (or the websocket closed, or failed)."""
        if ticket is not None and self._opening.pop(ticket, None) is not None:
            self._changed.set()

    def busy(self) -> int:
        return len(self._opening)


_GATES: dict[str, PageGate] = {}


def gate(upstream: str) -> PageGate:
    """The gate of the worker at ``upstream``."""
    g = _GATES.get(upstream)
    if g is None:
        g = _GATES[upstream] = PageGate()
    return g
