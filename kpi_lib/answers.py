"""Answers already serialized: ``/api/query``'s JSON bytes, kept per reader, question and data version.

A program (a status page, a bot) asks the same few questions many times a second. Building the
answer costs ~1.5 ms of CPU (the query through the L1 cache, then typed models and JSON); sending
bytes made earlier costs almost nothing. Two places keep them: the API process (``kpi_lib.api``),
and the front door (``kpi_lib.web.api_proxy``), which then answers without the hop to the API.
A kept answer is used only when all of these match:

- the reader as the API takes them (:class:`kpi_lib.auth.User`: login, roles, visible and masked
  KPIs, row scope), so masking and row scopes hold exactly as on a fresh answer;
- the normalised question (every parameter after validation);
- the data version, read from the warehouse *after* the request arrived (:class:`VersionGate`:
  requests waiting at the same moment share one probe, none skips it);
- for a question whose "now" is not given (``as_of``), the wall-clock second: a live answer is
  reused within the second it was made, never after.

Every call is still audited (the caller does it, hit or not), and concurrent askers of the same
missing answer wait for one computation instead of each running it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import psycopg
from cachetools import LRUCache

from . import cache, warehouse

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024 * 1024  # what all kept answers may take together


class VersionGate:
    """The warehouse's data version as of a moment after each caller arrived.

    One probe (two index lookups, :data:`kpi_lib.cache.VERSION_PROBE`) answers every caller that
    arrived before it started; a caller arriving during a probe waits for the next one, because
    the running one may have read the version before a commit the caller already saw.
    """

    def __init__(self) -> None:
        self._next: asyncio.Future | None = None
        self._running = False
        self._conn: psycopg.AsyncConnection | None = None

    async def current(self) -> tuple:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if not self._running:
                self._running = True
                asyncio.ensure_future(self._probe_while_asked())
        return await asyncio.shield(self._next)

    async def _probe_while_asked(self) -> None:
        try:
            while self._next is not None:
                waiting, self._next = self._next, None
                try:
                    waiting.set_result(await self._probe())
                except Exception as exc:  # noqa: BLE001 - every waiter gets the error, not a hang
                    waiting.set_exception(exc)
        finally:
            self._running = False

    async def _probe(self) -> tuple:
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    url = warehouse.libpq_url(warehouse.database_url(start=False))
                    self._conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
                cur = await self._conn.execute(cache.VERSION_PROBE)
                return tuple(await cur.fetchone())
            except psycopg.OperationalError:
                self._conn = None  # the server restarted: one new connection, then give up
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Answers:
    """Serialized answers by (key, version), with one computation per missing answer."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.kept: LRUCache = LRUCache(max_bytes, getsizeof=lambda v: len(v[0]) + 200)
        self.pending: dict[Hashable, asyncio.Future] = {}
        self.gate = VersionGate()
        self.hits = 0
        self._flushed = time.monotonic()

    def clear(self) -> None:
        self.kept.clear()

    async def get(
        self, key: Hashable, compute: Callable[[], Awaitable[tuple[bytes, dict[str, Any]]]]
    ) -> tuple[bytes, dict[str, Any], bool]:
        """(body, audit details, whether it was kept) for ``key`` at the current data version."""
        try:
            full = (key, await self.gate.current())
        except psycopg.Error:  # the warehouse is not answering: nothing kept; the query says why
            body, details = await compute()
            return body, details, False
        kept = self.kept.get(full)
        if kept is not None:
            self._count_hit()
            return kept[0], kept[1], True
        running = self.pending.get(full)
        if running is not None:  # someone is computing this very answer: wait for theirs
            body, details = await asyncio.shield(running)
            return body, details, True
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending[full] = fut
        try:
            body, details = await compute()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            fut.set_result((body, details))
            self.kept[full] = (body, details)
        finally:
            self.pending.pop(full, None)
        return body, details, False

    def _count_hit(self) -> None:
        """A kept answer is an in-process cache hit: the health score's hit rate counts it."""
        cache.count_hit("L1")
        now = time.monotonic()
        if now - self._flushed >= 10.0:  # publish the counters off the event loop
            self._flushed = now
            asyncio.ensure_future(asyncio.to_thread(cache.flush_stats))
