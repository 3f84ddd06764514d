"""Live updates for every open executive page in this process: one LISTEN, one computation per
distinct view per data version (the hub), and a share of the process's time they may take (the budget)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ... import stream
from ..tiles import TileData

if TYPE_CHECKING:
    from .dashboard import ExecutiveDashboard

log = logging.getLogger(__name__)

MIN_REFRESH_S = 0.25  # live tiles: at most one round of computing per this many seconds ...
CHART_REFRESH_S = 2.0  # live chart redraws at most this often (tiles follow every refresh) ...
CHART_SHARE = 0.25  # ... and, across sessions, take at most this share of the server's loop
LIVE_SHARE = 0.5  # ... and those rounds take at most this share of the process's time


class LiveBudget:
    """Live chart redraws share the server's one event loop: the more live sessions, the less
    often each redraws, so new numbers for everyone never queue behind the charts."""

    def __init__(self) -> None:
        self.sessions = 0
        self.chart_cost = 0.3  # seconds per chart redraw, a moving average
        self._lock = threading.Lock()

    def join(self, n: int) -> None:
        with self._lock:
            self.sessions = max(0, self.sessions + n)

    def add(self, seconds: float) -> None:
        """Record what a chart redraw cost."""
        with self._lock:
            self.chart_cost = 0.7 * self.chart_cost + 0.3 * seconds

    def chart_interval(self) -> float:
        """Chart redraws run on the server's one event loop: with 11 live sessions at 10 M lines
        they held it 38% of the time, and new numbers for everyone waited behind them."""
        return max(CHART_REFRESH_S, self.sessions * self.chart_cost / CHART_SHARE)


BUDGET = LiveBudget()

FIRST_PAINT_MAX_AGE_S = 60.0


class NewestTiles:
    """The newest tiles this process computed for each view (filters, dates, what the user may see).

    A page opened while the stream is busy paints these at once instead of recomputing every
    number first (each batch is a new data version, so the cache rarely has the answer); the page
    refreshes as soon as it is on screen (``catch_up``), so the numbers are at most one refresh
    old, and never older than FIRST_PAINT_MAX_AGE_S."""

    def __init__(self, keep: int = 64) -> None:
        self._items: dict[tuple, tuple[float, int, list[TileData]]] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[int, list[TileData]] | None:
        with self._lock:
            hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > FIRST_PAINT_MAX_AGE_S:
            return None
        return hit[1], hit[2]

    def put(self, key: tuple, version: int, tiles: list[TileData]) -> None:
        with self._lock:
            old = self._items.get(key)
            if old is not None and old[1] > version:
                return  # a slower refresh must not replace newer numbers
            self._items[key] = (time.monotonic(), version, tiles)
            while len(self._items) > self._keep:
                self._items.pop(min(self._items, key=lambda k: self._items[k][0]))


NEWEST = NewestTiles()


class LiveHub:
    """One per process: on new data, compute the tiles once per view in use and hand them to every
    live session showing that view.

    Each session used to refresh on its own: eleven sessions on the same view ran the same sixteen
    queries eleven times, and with a new data version every ~200 ms they never met at the same
    version to share. Rounds now run on one worker thread, at most every MIN_REFRESH_S and within
    LIVE_SHARE of the time; only putting the numbers on each page runs on the event loop."""

    def __init__(self) -> None:
        self._dashboards: set[ExecutiveDashboard] = set()
        self._lock = threading.Lock()
        self._worker = stream.Paced(
            self.round, name="live-tiles", min_interval_s=MIN_REFRESH_S, share=LIVE_SHARE
        )

    def join(self, dash: ExecutiveDashboard) -> None:
        with self._lock:
            self._dashboards.add(dash)
        self._worker.start()  # the first page starts the hub; later calls change nothing

    def leave(self, dash: ExecutiveDashboard) -> None:
        with self._lock:
            self._dashboards.discard(dash)

    def round(self) -> int:
        """Compute each view's tiles once, hand them to its sessions; returns the views computed."""
        with self._lock:
            dashboards = list(self._dashboards)
        views: dict[tuple, list[ExecutiveDashboard]] = {}
        for dash in dashboards:
            views.setdefault(dash._tiles_key(), []).append(dash)
        for key, group in views.items():
            try:
                tiles = group[0]._compute_tiles(key)  # the key holds all that differs between users
            except Exception:  # these pages keep their numbers; the next change tries again
                log.exception("live tiles failed for %s", key)
                continue
            for dash in group:
                try:
                    dash.push_live(key, tiles)
                except Exception:  # a session that went away meanwhile
                    log.debug("live tiles not delivered", exc_info=True)
                    self.leave(dash)
        return len(views)


HUB = LiveHub()
