"""The mover: landed batches (``bronze.landings`` and their pending orders and lines) to silver and
gold, set-based, as many waiting landings per transaction as ``MOVE_MAX_EVENTS`` allows, then NOTIFY.

Exactly once across the split: one transaction takes the landings (marks them moved), deletes their
pending rows, writes silver and gold and bumps the data version. A crash (``kill -9``) anywhere before
its commit leaves every landing waiting, untouched; after it, nothing is left to move twice. Event and
order ids make a landing that holds events seen before (a redelivery) a no-op, as before the split.

Movers may run in any number of processes (``kpi serve``, ``kpi move``, a fast-path lander's own
thread, a caller waiting for its events): an advisory lock lets one move at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from .. import warehouse
from ..errors import WarehouseError

log = logging.getLogger(__name__)

LANDED = "kpi_landed"  # a lander NOTIFYs this after its commit: movers wake up
MOVE_MAX_EVENTS = 100_000  # one move takes waiting landings up to about this many events
POLL_S = 5.0  # a background mover looks for waiting landings this often even without a NOTIFY

_STAGE_DDL = """
create temp table if not exists _claimed (land_id bigint, source text, events int, rejected int,
    duplicates int) on commit delete rows;
create temp table if not exists _move_orders (like bronze.pending_orders) on commit delete rows;
create temp table if not exists _move_lines (like bronze.pending_lines) on commit delete rows;
create temp table if not exists _new_orders (order_id text, ordered_at timestamptz, customer_id text,
    region text, channel text, has_sale boolean) on commit delete rows;
create temp table if not exists _new_lines (like silver.order_lines) on commit delete rows;
create temp table if not exists _conflicts (land_id bigint, reason text) on commit delete rows;
"""

_CLAIM = """
with waiting as (
    select land_id, source, events, rejected, duplicates,
           sum(events) over (order by land_id) - events as before
      from bronze.landings where moved_at is null
)
insert into _claimed select land_id, source, events, rejected, duplicates from waiting where before < %s
"""

_TAKE_PENDING = """
with o as (delete from bronze.pending_orders p using _claimed c where p.land_id = c.land_id returning p.*),
     l as (delete from bronze.pending_lines p using _claimed c where p.land_id = c.land_id returning p.*),
     ml as (insert into _move_lines select * from l)
insert into _move_orders select * from o
"""

# The first landing of an order wins (a later copy is a redelivery, or a conflict); anything seen
# before is skipped by the keys. New orders and their lines in one statement.
_TO_SILVER = """
with w as (select distinct on (order_id) * from _move_orders order by order_id, land_id),
     new as (insert into silver.orders
                 (order_id, ordered_at, customer_id, region, channel, status, has_sale, event_id, source)
             select order_id, ordered_at, customer_id, region, channel, status, has_sale, event_id, source
               from w on conflict do nothing
             returning order_id, ordered_at, customer_id, region, channel, has_sale),
     l as (insert into silver.order_lines
           select m.order_id, m.line_no, m.product_id, m.product_name, m.category, m.quantity,
                  m.unit_price, m.discount, m.unit_cost
             from _move_lines m join w using (land_id, order_id) join new using (order_id)
           on conflict do nothing returning *),
     nl as (insert into _new_lines select * from l)
insert into _new_orders select * from new
"""

# The same order id under another event id is refused with the reason, its payload kept.
_CONFLICTS = """
with c as (
    select m.land_id, m.source, m.event_id,
           'order ' || m.order_id || ' already exists (from ' || coalesce('event ' || o.event_id, o.source) || ')'
               as reason
      from _move_orders m join silver.orders o on o.order_id = m.order_id
     where o.event_id is distinct from m.event_id
), r as (
    insert into bronze.rejects (source, event_id, row_data, reason)
    select c.source, c.event_id,
           coalesce((select e.payload::text from bronze.events e
                      where e.event_id = c.event_id and e.source = c.source order by e.id desc limit 1), ''),
           c.reason
      from c
)
insert into _conflicts select land_id, reason from c
"""

_MARK_MOVED = """
update bronze.landings l
   set moved_at = clock_timestamp(), version = %s, loaded = coalesce(a.n, 0), conflicts = coalesce(c.n, 0),
       reasons = c.reasons
  from _claimed k
  left join (select f.land_id, count(*) as n
               from _new_orders n
               join (select order_id, min(land_id) as land_id from _move_orders group by order_id) f using (order_id)
              group by f.land_id) a using (land_id)
  left join (select land_id, count(*) as n, (array_agg(reason))[1:20] as reasons
               from _conflicts group by land_id) c using (land_id)
 where l.land_id = k.land_id
"""


@dataclass
class MoveResult:
    """What one move did."""

    landings: int = 0
    events: int = 0  # valid orders taken from the landings
    loaded: int = 0  # new orders in silver
    conflicts: int = 0
    version: int | None = None
    seconds: float = 0.0


def move_once(conn: psycopg.Connection, max_events: int = MOVE_MAX_EVENTS) -> MoveResult:
    """Move the oldest waiting landings (up to about ``max_events`` events, at least one landing) in
    one transaction on ``conn`` (not autocommit). Waits while another mover moves."""
    t0 = time.perf_counter()
    res = MoveResult()
    conn.execute("select pg_advisory_xact_lock(hashtext('kpi_lib.mover'))")
    conn.execute(_STAGE_DDL)
    conn.execute(_CLAIM, [max_events])
    res.landings, res.events, rejected, sources = conn.execute(
        "select count(*), coalesce(sum(events), 0), coalesce(sum(rejected), 0), "
        "string_agg(distinct source, ',' order by source) from _claimed"
    ).fetchone()
    if not res.landings:
        conn.rollback()
        return res
    if res.events:
        conn.execute(_TAKE_PENDING)
        # temp tables have no statistics and the plans need them; only the join keys matter
        conn.execute("analyze _move_orders (order_id, land_id), _move_lines (order_id, land_id)")
        conn.execute(_TO_SILVER)
        conn.execute("analyze _new_orders (order_id, customer_id, ordered_at), _new_lines (order_id)")
        res.loaded, first, last = conn.execute(
            "select count(*), min(ordered_at), max(ordered_at) from _new_orders"
        ).fetchone()
        if res.loaded < res.events:
            conn.execute(_CONFLICTS)
            res.conflicts = conn.execute("select count(*) from _conflicts").fetchone()[0]
        if res.loaded:
            conn.execute("select gold.apply_new_orders()")
            conn.execute(
                "insert into silver.products (product_id, product_name, category, unit_cost) "
                "select distinct on (product_id) product_id, product_name, category, unit_cost from _move_lines "
                "order by product_id on conflict (product_id) do nothing"
            )
    rejected += res.conflicts
    if res.loaded:
        res.version = conn.execute(
            "select ops.bump_version('ingest', %s, %s, %s, %s, %s)",
            [sources, first, last, res.loaded, rejected],
        ).fetchone()[0]
    elif rejected:
        res.version = conn.execute(
            "select ops.bump_version('rejects', %s, null, null, 0, %s)", [sources, rejected]
        ).fetchone()[0]
    conn.execute(_MARK_MOVED, [res.version])
    conn.commit()
    res.seconds = time.perf_counter() - t0
    return res


def waiting(conn: psycopg.Connection) -> tuple[int, int]:
    """(landings, events) landed and not moved yet."""
    row = conn.execute(
        "select count(*), coalesce(sum(events), 0) from bronze.landings where moved_at is null"
    ).fetchone()
    conn.commit()
    return row[0], row[1]


def drain(conn: psycopg.Connection | None = None, max_events: int = MOVE_MAX_EVENTS) -> MoveResult:
    """Move until nothing is waiting; the totals of every move."""
    own = conn is None
    conn = conn or warehouse.connect_raw()
    total = MoveResult()
    try:
        while (r := move_once(conn, max_events)).landings:
            total.landings += r.landings
            total.events += r.events
            total.loaded += r.loaded
            total.conflicts += r.conflicts
            total.version = r.version or total.version
            total.seconds += r.seconds
    finally:
        if own:
            conn.close()
    return total


def wait_moved(conn: psycopg.Connection, land_ids: Iterable[int]) -> list[tuple]:
    """Move until every landing in ``land_ids`` is moved (here or by another mover); their rows
    ``(land_id, events, rejected, duplicates, version, loaded, conflicts, reasons)``."""
    ids = sorted(set(land_ids))
    while True:
        rows = conn.execute(
            "select land_id, events, rejected, duplicates, version, loaded, conflicts, reasons "
            "from bronze.landings where land_id = any(%s) and moved_at is not null",
            [ids],
        ).fetchall()
        conn.commit()
        if len(rows) == len(ids):
            return rows
        move_once(conn)


class Mover:
    """A mover on a thread of its own: it moves whatever is waiting when it starts, whenever a lander
    NOTIFYs ``kpi_landed``, and every ``POLL_S`` seconds; it reconnects after any error."""

    def __init__(self, max_events: int = MOVE_MAX_EVENTS, poll_s: float = POLL_S) -> None:
        self.max_events, self.poll_s = max_events, poll_s
        self.moves = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Mover:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="kpi-mover", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def run(self, stop: threading.Event | None = None) -> None:
        """The loop itself, in the calling thread (``kpi move``), until ``stop`` is set."""
        if stop is not None:
            self._stop = stop
        self._run()

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with (
                    warehouse.connect_raw(autocommit=True, start=False) as listen,
                    warehouse.connect_raw(start=False) as conn,
                ):
                    listen.execute(f"listen {LANDED}")
                    backoff = 0.2
                    while not self._stop.is_set():
                        while (r := move_once(conn, self.max_events)).landings:
                            self.moves += 1
                            log.debug(
                                "moved %d landings, %d events in %.3fs", r.landings, r.events, r.seconds
                            )
                        # wait for the next landing (several NOTIFYs fold into one move)
                        deadline = time.monotonic() + self.poll_s
                        while not self._stop.is_set() and time.monotonic() < deadline:
                            if any(True for _ in listen.notifies(timeout=0.5, stop_after=1)):
                                break
            except Exception as exc:  # noqa: BLE001 - whatever broke, the mover must live: events wait for it
                level = logging.WARNING if isinstance(exc, (psycopg.Error, WarehouseError)) else logging.ERROR
                log.log(level, "mover: %r; reconnecting in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


_mover = Mover()


def start_mover() -> Mover:
    """This process's background mover (started once; fast-path landers start it)."""
    return _mover.start()
