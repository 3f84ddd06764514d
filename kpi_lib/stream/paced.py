"""The paced background worker: whatever must follow the data (view refreshes, live alert scans,
live tiles, a Voila page's refresh) runs on a thread of its own after a change, and no faster than
its pace allows. Changes that arrive meanwhile fold into one more run, so a busy stream costs a
bounded share of the machine however many versions it lands."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from .changes import Change, Subscription, subscribe

log = logging.getLogger(__name__)

POLL_S = 1.0  # how soon a stop set from outside (a caller's Event) is noticed


class Paced:
    """Run ``work()`` after each :meth:`poke` (or data change, once :meth:`start` subscribed it).

    - The first run starts at once; pokes during a run or its pause fold into one more run.
    - The next run starts no sooner than ``min_interval_s`` after the previous one started, nor
      sooner than its duration / ``share`` (so it takes at most that share of one core), and no later
      than ``max_interval_s`` (a slow run must not starve what the runs are for).
    - ``idle_s``: run anyway after that long without a poke (a quiet minute must be looked at too).
    - ``loop``: run ``work`` on that asyncio loop (a kernel's: widget updates must not race) while
      this thread waits for it, so its duration still paces the next run.
    - A failing run is logged and the worker carries on: the next poke retries.
    """

    def __init__(
        self,
        work: Callable[[], Any],
        *,
        name: str,
        min_interval_s: float = 0.0,
        share: float = 1.0,
        max_interval_s: float = math.inf,
        idle_s: float | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.work, self.name, self.loop = work, name, loop
        self.min_interval_s, self.share, self.max_interval_s = min_interval_s, share, max_interval_s
        self.idle_s = idle_s
        self.runs = 0
        self._wake = threading.Event()
        self._stop = stop or threading.Event()
        self._next_at = -math.inf
        self._thread: threading.Thread | None = None
        self._sub: Subscription | None = None
        self._lock = threading.Lock()

    # --- control, from any thread ---------------------------------------------------------------

    def poke(self, *_args: Any) -> None:
        """Something changed: run again (now, or when the pace allows). Starts the thread if needed."""
        self._wake.set()
        self._ensure_thread()

    def cancel(self) -> None:
        """Forget a run that is waiting for its turn (one already running finishes)."""
        self._wake.clear()

    def start(self, *, on_changes: bool = True, run_now: bool = False, thread: bool = True) -> Paced:
        """Start the thread (``thread=False``: the caller will call :meth:`run` itself);
        ``on_changes`` pokes on every data version (rejects alone are not data)."""
        with self._lock:
            if on_changes and self._sub is None:
                self._sub = subscribe(self._on_change)
        if run_now:
            self._wake.set()
        if thread:
            self._ensure_thread()
        else:
            self._claim_thread()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run(self) -> None:
        """The loop itself, in the calling thread, until :meth:`stop` (or the ``stop`` event)."""
        self._claim_thread()
        while self._wait_for_poke():
            if self._stop.wait(max(0.0, self._next_at - time.monotonic())):
                return
            if not self._wake.is_set() and self.idle_s is None:
                continue  # cancelled while waiting for its turn
            self._wake.clear()  # a change from now on needs another run
            t0 = time.monotonic()
            try:
                t0 = self._call()
            except Exception:  # keep going: the next change retries
                log.exception("%s failed; retrying on the next change", self.name)
            took = time.monotonic() - t0
            self.runs += 1
            self._next_at = t0 + min(max(self.min_interval_s, took / self.share), self.max_interval_s)

    # --- inside --------------------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind != "rejects":
            self.poke()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
                self._thread.start()

    def _claim_thread(self) -> None:
        """The calling thread runs the loop: pokes must not start another."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.current_thread()

    def _wait_for_poke(self) -> bool:
        """Wait for a poke, or ``idle_s``; False once stopped. Polls so an outside stop is seen."""
        deadline = time.monotonic() + self.idle_s if self.idle_s is not None else math.inf
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._wake.wait(min(POLL_S, left)):
                return not self._stop.is_set()
        return False

    def _call(self) -> float:
        """Run the work once; returns when it started (on a loop, that is when the loop got to it)."""
        if self.loop is None:
            started = time.monotonic()
            self.work()
            return started
        done: concurrent.futures.Future = concurrent.futures.Future()

        def on_loop() -> None:
            started = time.monotonic()
            try:
                self.work()
            except BaseException as exc:  # handed back to the worker thread, which logs it
                done.set_exception(exc)
            else:
                done.set_result(started)

        self.loop.call_soon_threadsafe(on_loop)
        while True:
            try:
                return done.result(timeout=POLL_S)
            except concurrent.futures.TimeoutError:
                if self._stop.is_set() or self.loop.is_closed():
                    return time.monotonic()
