"""Change notifications: one LISTEN connection per process fans ``kpi_changed`` out to every
subscriber, reconnects by itself and catches up on bumps it missed."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import psycopg

from .. import warehouse
from ..errors import WarehouseError

log = logging.getLogger(__name__)

CHANNEL = "kpi_changed"


# --- notifications ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One ``kpi_changed`` notification: a new data version."""

    version: int
    kind: str = "ingest"
    source: str | None = None
    touched_from: str | None = None
    touched_to: str | None = None
    watermark: str | None = None
    events: int = 0
    rejected: int = 0
    received_at: float = field(default_factory=time.time)

    @classmethod
    def from_payload(cls, payload: str) -> Change:
        d = json.loads(payload)
        return cls(
            version=int(d["version"]),
            kind=d.get("kind", "ingest"),
            source=d.get("source"),
            touched_from=d.get("touched_from"),
            touched_to=d.get("touched_to"),
            watermark=d.get("watermark"),
            events=int(d.get("events") or 0),
            rejected=int(d.get("rejected") or 0),
        )


class Subscription:
    """Handle returned by :func:`subscribe`; ``close()`` stops delivery to this listener."""

    def __init__(self, hub: _Hub, callback: Callable[[Change], None]) -> None:
        self._hub, self.callback = hub, callback

    def close(self) -> None:
        self._hub.remove(self)


class _Hub:
    """The process's single LISTEN connection, fanning out to every subscriber."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.version = 0
        self.connected = threading.Event()
        self.reconnects = 0

    def add(self, callback: Callable[[Change], None]) -> Subscription:
        sub = Subscription(self, callback)
        with self._lock:
            self._subs.append(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="kpi-listen", daemon=True)
                self._thread.start()
        return sub

    def remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self._thread = None

    def _emit(self, change: Change) -> None:
        if change.version <= self.version and change.kind != "reconnect":
            return
        self.version = max(self.version, change.version)
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.callback(change)
            except Exception:  # one broken listener must not silence the others
                log.exception("change listener failed")

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with warehouse.connect_raw(autocommit=True, start=False) as conn:
                    conn.execute(f"listen {CHANNEL}")
                    latest = conn.execute("select coalesce(max(version), 0) from ops.batches").fetchone()[0]
                    if latest > self.version:  # bumps missed while we were away (or before we started)
                        if self.version:
                            self._emit(Change(version=latest, kind="catch-up"))
                        else:
                            self.version = latest
                    self.connected.set()
                    backoff = 0.2
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            try:
                                self._emit(Change.from_payload(note.payload))
                            except (ValueError, KeyError):
                                log.warning("ignoring malformed %s payload: %r", CHANNEL, note.payload)
            except Exception as exc:  # noqa: BLE001 - whatever broke, this thread must live: pages go stale without it
                self.connected.clear()
                self.reconnects += 1
                level = logging.WARNING if isinstance(exc, (psycopg.Error, WarehouseError)) else logging.ERROR
                log.log(
                    level,
                    "lost the %s listener connection (%r); reconnecting in %.1fs",
                    CHANNEL,
                    exc,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


_hub = _Hub()


def subscribe(callback: Callable[[Change], None]) -> Subscription:
    """Call ``callback(change)`` (in the listener thread) for every new data version."""
    return _hub.add(callback)


async def changes() -> AsyncIterator[Change]:
    """``async for change in changes():`` the same notifications, for asyncio code (Panel, Voila)."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Change] = asyncio.Queue()
    sub = _hub.add(lambda c: loop.call_soon_threadsafe(q.put_nowait, c))
    try:
        while True:
            yield await q.get()
    finally:
        sub.close()


def listener_version() -> int:
    """The newest version this process's listener has seen (0 before it connects)."""
    return _hub.version


def wait_connected(timeout: float = 10) -> bool:
    """Block until the LISTEN connection is up (tests and benchmarks use this)."""
    return _hub.connected.wait(timeout)


def current_version() -> int:
    with warehouse.connect_raw(autocommit=True) as conn:
        return conn.execute("select coalesce(max(version), 0) from ops.batches").fetchone()[0]
