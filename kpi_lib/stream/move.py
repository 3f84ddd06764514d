"""The mover of the fast path: landed raw events (``bronze.landings`` and ``bronze.landed_events``,
written by :class:`~kpi_lib.stream.land.Lander`) validated set-based in SQL, then moved to silver and
gold, as many waiting landings per transaction as ``MOVE_MAX_EVENTS`` allows, then NOTIFY.

Validation follows ``validate.py``'s rules and reasons; a malformed event goes to ``bronze.rejects``
with its reason, as on the one-transaction path. Exactly once across the split: one transaction
validates the landings, writes the rejects, silver and gold, bumps the data version (NOTIFY) and marks
the landings moved. A crash (``kill -9``) anywhere before its commit leaves every landing waiting;
after it, nothing is left to move twice. Event and order ids make events seen before (a redelivery,
a producer sending again what was not acknowledged) a no-op.

Movers may run in any number of processes (``kpi move``, a lander's own thread): an advisory lock
lets one move at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import psycopg

from .. import warehouse
from ..errors import WarehouseError

log = logging.getLogger(__name__)

LANDED = "kpi_landed"  # a lander NOTIFYs this with its commit: movers wake up
MOVE_MAX_EVENTS = 100_000  # one move takes waiting landings up to about this many events
POLL_S = 5.0  # a background mover looks for waiting landings this often even without a NOTIFY

_STAGE_DDL = """
create temp table if not exists _claimed (land_id bigint, source text, landed_at timestamptz, events int)
    on commit delete rows;
create temp table if not exists _ev (land_id bigint, seq int, source text, landed_at timestamptz,
    j jsonb, jerr text) on commit delete rows;
create temp table if not exists _ord (land_id bigint, seq int, source text, event_id text, order_id text,
    ordered_at timestamptz, customer_id text, region text, channel text, status text, lines jsonb,
    reason text) on commit delete rows;
create temp table if not exists _lv (land_id bigint, seq int, i int, order_id text, line_no int,
    product_id text, product_name text, category text, q float8, p float8, d float8, c float8,
    reason text) on commit delete rows;
create temp table if not exists _first (land_id bigint, seq int, source text, event_id text, order_id text,
    ordered_at timestamptz, customer_id text, region text, channel text, status text, has_sale boolean)
    on commit delete rows;
create temp table if not exists _rej (land_id bigint, seq int, source text, event_id text, reason text)
    on commit delete rows;
create temp table if not exists _new_orders (order_id text, ordered_at timestamptz, customer_id text,
    region text, channel text, has_sale boolean) on commit delete rows;
create temp table if not exists _new_lines (like silver.order_lines) on commit delete rows;
"""

_CLAIM = """
with waiting as (
    select land_id, source, landed_at, events, sum(events) over (order by land_id) - events as before
      from bronze.landings where moved_at is null
)
insert into _claimed select land_id, source, landed_at, events from waiting where before < %s
"""

# Parsing: all at once (the common case: every payload is JSON); when one is not, each on its own.
_PARSE_FAST = """
insert into _ev select e.land_id, e.seq, c.source, c.landed_at, e.payload::jsonb, null
  from bronze.landed_events e join _claimed c using (land_id)
"""
_PARSE_SAFE = """
insert into _ev
select land_id, seq, source, landed_at, case when ok then payload::jsonb end,
       case when not ok then bronze.input_error(payload, 'jsonb') end
  from (select e.land_id, e.seq, c.source, c.landed_at, e.payload, bronze.is_valid(e.payload, 'jsonb') as ok
          from bronze.landed_events e join _claimed c using (land_id) offset 0) p
"""

# Order-level fields and reasons, in validate.Validator's order of checks. ("offset 0" keeps each
# level a level of its own, so every expression is computed once per event.)
_ORDERS = r"""
insert into _ord
select land_id, seq, source, event_id, order_id, at, customer_id, region, channel, status, lines,
       case
         when j is null then 'not valid JSON: ' || jerr
         when not is_obj then 'an event must be a JSON object with order fields and lines'
         when order_id is null then 'missing field ''order_id'''
         when not j ? 'ordered_at' then 'missing field ''ordered_at'''
         when at is null then 'ordered_at ' || bronze.j_repr(j -> 'ordered_at') || ' is not an ISO-8601 time'
         when at > landed_at + interval '1 day' then 'ordered_at ' || ts || ' is more than a day in the future'
         when case when jsonb_typeof(lines) = 'array' then jsonb_array_length(lines) = 0 else true end
              then 'missing field ''lines'' (a non-empty list of order lines)'
       end
  from (
    select *,
           case when ts ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' and bronze.is_valid(ts, 'timestamptz') then
                case when ts ~ '[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$'
                     then ts::timestamptz else ts::timestamp at time zone ops.business_tz() end
           end as at
      from (
        select land_id, seq, source, landed_at, j, jerr, is_obj, order_id,
               coalesce(bronze.j_text(j -> 'event_id', null), order_id) as event_id,
               case when jsonb_typeof(j -> 'ordered_at') = 'string' then j ->> 'ordered_at' end as ts,
               bronze.j_text(j -> 'customer_id', null) as customer_id,
               bronze.j_text(j -> 'region', 'Unknown') as region,
               bronze.j_text(j -> 'channel', 'Unknown') as channel,
               bronze.j_text(j -> 'status', null) as status,
               j -> 'lines' as lines
          from (select land_id, seq, source, landed_at, jerr, j,
                       coalesce(jsonb_typeof(j) = 'object', false) as is_obj,
                       case when jsonb_typeof(j) = 'object' then bronze.j_text(j -> 'order_id', null) end as order_id
                  from _ev offset 0) a
        offset 0
      ) b
    offset 0
  ) c
"""

# Lines of the orders that passed so far, each with the reason it is refused (or null).
_LINES = r"""
insert into _lv
select land_id, seq, i, order_id, case when ln_falsy then i + 1 else ln_val end, product_id,
       coalesce(product_name, product_id), category, q, p, d, c,
       case
         when not is_obj then format('lines[%s] is not an object', i)
         when not ln ? 'quantity' then format('lines[%s] is missing field ''quantity''', i)
         when not ln ? 'unit_price' then format('lines[%s] is missing field ''unit_price''', i)
         when q is null then format('lines[%s].quantity %s', i, bronze.j_num_reason(ln -> 'quantity'))
         when abs(q) >= 1e11 then format('lines[%s].quantity %s is out of range', i, q)
         when p is null then format('lines[%s].unit_price %s', i, bronze.j_num_reason(ln -> 'unit_price'))
         when p < 0 then format('lines[%s].unit_price is negative (%s)', i, p)
         when p >= 1e10 then format('lines[%s].unit_price %s is out of range', i, p)
         when d is null then format('lines[%s].discount %s', i, bronze.j_num_reason(ln -> 'discount'))
         when not (d between 0 and 1) then format('lines[%s].discount %s is not a fraction between 0 and 1', i, d)
         when c is null and not c_empty
              then format('lines[%s].unit_cost %s', i, bronze.j_num_reason(ln -> 'unit_cost'))
         when abs(c) >= 1e10 then format('lines[%s].unit_cost %s is out of range', i, c)
         when not ln_falsy and ln_val is null
              then format('lines[%s].line_no %s is not a whole number', i, bronze.j_repr(ln -> 'line_no'))
       end
  from (
    select o.land_id, o.seq, x.i - 1 as i, o.order_id, x.ln, jsonb_typeof(x.ln) = 'object' as is_obj,
           bronze.j_num(x.ln -> 'quantity') as q,
           bronze.j_num(x.ln -> 'unit_price') as p,
           case when x.ln -> 'discount' is null or x.ln -> 'discount' in ('null', 'false', '0', '""', '[]', '{}')
                then 0::float8 else bronze.j_num(x.ln -> 'discount') end as d,
           bronze.j_num(x.ln -> 'unit_cost') as c,
           x.ln -> 'unit_cost' is null or x.ln -> 'unit_cost' in ('null', '""') as c_empty,
           x.ln -> 'line_no' is null or x.ln -> 'line_no' in ('null', 'false', '0', '""', '[]', '{}') as ln_falsy,
           case when jsonb_typeof(x.ln -> 'line_no') = 'number' and abs((x.ln ->> 'line_no')::numeric) < 2e9
                    then trunc((x.ln ->> 'line_no')::numeric)::int
                when jsonb_typeof(x.ln -> 'line_no') = 'string' and x.ln ->> 'line_no' ~ '^\s*[+-]?[0-9]{1,9}\s*$'
                    then btrim(x.ln ->> 'line_no', E' \t\n\r\f\v')::int end as ln_val,
           bronze.j_text(x.ln -> 'product_id', 'Unknown') as product_id,
           bronze.j_text(x.ln -> 'product_name', null) as product_name,
           bronze.j_text(x.ln -> 'category', 'Unknown') as category
      from _ord o
      cross join lateral jsonb_array_elements(o.lines) with ordinality x(ln, i)
     where o.reason is null
    offset 0
  ) z
"""

# An order with a bad line is refused with its first bad line's reason.
_LINE_REASONS = """
update _ord o set reason = f.reason
  from (select distinct on (land_id, seq) land_id, seq, reason from _lv where reason is not null
         order by land_id, seq, i) f
 where o.land_id = f.land_id and o.seq = f.seq
"""

# The first valid copy of each order wins (by landing, then position); the rest are repeats of the
# same event (no effect) or the same order under another event id (refused, as validate.py does).
_FIRST = """
insert into _first
select distinct on (o.order_id) o.land_id, o.seq, o.source, o.event_id, o.order_id, o.ordered_at,
       o.customer_id, o.region, o.channel,
       coalesce(o.status, case when s.has_sale then 'completed' else 'returned' end), s.has_sale
  from _ord o
  join (select land_id, seq, bool_or(q > 0) as has_sale from _lv group by land_id, seq) s using (land_id, seq)
 where o.reason is null
 order by o.order_id, o.land_id, o.seq
"""

_REJECTS = """
insert into _rej
select land_id, seq, source, event_id, reason from _ord where reason is not null
union all
select o.land_id, o.seq, o.source, o.event_id,
       'order ' || o.order_id || ' already exists (from event ' || f.event_id || ')'
  from _ord o join _first f using (order_id)
 where o.reason is null and (o.land_id, o.seq) <> (f.land_id, f.seq) and o.event_id is distinct from f.event_id
"""

_TO_SILVER = """
with new as (insert into silver.orders
                 (order_id, ordered_at, customer_id, region, channel, status, has_sale, event_id, source)
             select order_id, ordered_at, customer_id, region, channel, status, has_sale, event_id, source
               from _first on conflict do nothing
             returning order_id, ordered_at, customer_id, region, channel, has_sale),
     l as (insert into silver.order_lines
           select l.order_id, l.line_no, l.product_id, l.product_name, l.category, l.q, l.p, l.d, l.c
             from _lv l join _first f using (land_id, seq) join new n on n.order_id = f.order_id
           on conflict do nothing returning *),
     nl as (insert into _new_lines select * from l)
insert into _new_orders select * from new
"""

# An order in silver before this move, under another event id: refused with the reason.
_SILVER_CONFLICTS = """
insert into _rej
select f.land_id, f.seq, f.source, f.event_id,
       'order ' || f.order_id || ' already exists (from ' || coalesce('event ' || o.event_id, o.source) || ')'
  from _first f
  join silver.orders o on o.order_id = f.order_id
 where o.event_id is distinct from f.event_id
   and not exists (select 1 from _new_orders n where n.order_id = f.order_id)
"""

_BRONZE_REJECTS = """
insert into bronze.rejects (source, event_id, row_data, reason)
select r.source, r.event_id, left(e.payload, 10000), r.reason
  from _rej r join bronze.landed_events e on e.land_id = r.land_id and e.seq = r.seq
 order by r.land_id, r.seq
"""

_MARK_MOVED = """
update bronze.landings l
   set moved_at = now(), version = %s, loaded = coalesce(a.n, 0), rejected = coalesce(r.n, 0),
       duplicates = l.events - coalesce(a.n, 0) - coalesce(r.n, 0)
  from _claimed k
  left join (select f.land_id, count(*) as n from _first f join _new_orders n using (order_id)
              group by f.land_id) a using (land_id)
  left join (select land_id, count(*) as n from _rej group by land_id) r using (land_id)
 where l.land_id = k.land_id
"""


@dataclass
class MoveResult:
    """What one move (or several) did."""

    landings: int = 0
    events: int = 0  # raw events taken from the landings
    loaded: int = 0  # new orders in silver
    duplicates: int = 0  # seen before: no effect
    rejected: int = 0  # malformed, or an order id seen before under another event id
    version: int | None = None
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)  # the first few
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    def add(self, other: MoveResult) -> None:
        self.landings += other.landings
        self.events += other.events
        self.loaded += other.loaded
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.version = other.version or self.version
        self.seconds += other.seconds
        for k, v in other.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v
        self.reasons.extend(other.reasons[: max(0, 20 - len(self.reasons))])


def _validate_in_python(conn: psycopg.Connection) -> None:
    """The claimed events through validate.py's :class:`Validator` (in landing order, so the first
    copy of an order wins), its rows COPY'd into the temp tables the SQL validation would fill."""
    from .validate import Validator

    v = Validator("mover")
    b = v.batch
    first: list[tuple] = []
    lines: list[tuple] = []
    rejects: list[tuple] = []
    rows = conn.execute(
        "select e.land_id, e.seq, c.source, e.payload from bronze.landed_events e "
        "join _claimed c using (land_id) order by e.land_id, e.seq"
    ).fetchall()
    for land_id, seq, source, payload in rows:
        n_rej, n_ord, n_lines = len(b.rejects), len(b.orders), len(b.lines)
        v.add(payload)
        if len(b.rejects) > n_rej:
            event_id, _raw, reason = b.rejects[-1]
            rejects.append((land_id, seq, source, event_id, reason))
        elif len(b.orders) > n_ord:
            o = b.orders[-1]  # order_id, ordered_at, customer, region, channel, status, has_sale, event_id
            first.append((land_id, seq, source, o[7], o[0], o[1], o[2], o[3], o[4], o[5], o[6]))
            for i, ln in enumerate(b.lines[n_lines:]):
                lines.append((land_id, seq, i, *ln, None))
    cur = conn.cursor()
    for table, cols, data in (
        (
            "_first",
            "land_id, seq, source, event_id, order_id, ordered_at, customer_id, region, channel, "
            "status, has_sale",
            first,
        ),
        (
            "_lv",
            "land_id, seq, i, order_id, line_no, product_id, product_name, category, q, p, d, c, reason",
            lines,
        ),
        ("_rej", "land_id, seq, source, event_id, reason", rejects),
    ):
        if data:
            with cur.copy(f"copy {table} ({cols}) from stdin") as cp:
                for row in data:
                    cp.write_row(row)


def move_once(
    conn: psycopg.Connection, max_events: int = MOVE_MAX_EVENTS, validate: str | None = None
) -> MoveResult:
    """Validate and move the oldest waiting landings (up to about ``max_events`` events, at least one
    landing) in one transaction on ``conn`` (not autocommit). Waits while another mover moves.
    ``validate``: ``"sql"`` (set-based, on the server) or ``"python"`` (validate.py in this process);
    default ``KPI_MOVE_VALIDATE``, else ``"sql"``."""
    import os

    validate = validate or os.environ.get("KPI_MOVE_VALIDATE", "sql")
    t0 = time.perf_counter()
    res = MoveResult()
    timings = res.timings
    mark = t0

    def step(name: str, sql: str, params: list | None = None) -> None:
        nonlocal mark
        conn.execute(sql, params)
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - mark
        mark = now

    conn.execute("select pg_advisory_xact_lock(hashtext('kpi_lib.mover'))")
    conn.execute(_STAGE_DDL)
    conn.execute(_CLAIM, [max_events])
    res.landings, res.events, sources = conn.execute(
        "select count(*), coalesce(sum(events), 0), string_agg(distinct source, ',' order by source) from _claimed"
    ).fetchone()
    if not res.landings:
        conn.rollback()
        return res
    mark = time.perf_counter()
    if validate == "python":
        _validate_in_python(conn)
        timings["validate_python"] = time.perf_counter() - mark
        mark = time.perf_counter()
        step("analyze_first", "analyze _first (land_id, seq, order_id), _lv (land_id, seq)")
    else:
        try:
            with conn.transaction():  # a savepoint: one malformed payload fails the bulk parse
                step("parse", _PARSE_FAST)
        except psycopg.DataError:
            step("parse_each", _PARSE_SAFE)
        step("orders", _ORDERS)
        step("analyze", "analyze _ord (land_id, seq, order_id, reason)")
        step("lines", _LINES)
        step("line_reasons", _LINE_REASONS)
        step("first", _FIRST)
        step("analyze_first", "analyze _first (land_id, seq, order_id), _lv (land_id, seq)")
        step("rejects", _REJECTS)
    step("silver", _TO_SILVER)
    step("analyze_new", "analyze _new_orders (order_id, customer_id, ordered_at), _new_lines (order_id)")
    res.loaded, first, last = conn.execute(
        "select count(*), min(ordered_at), max(ordered_at) from _new_orders"
    ).fetchone()
    if res.loaded < conn.execute("select count(*) from _first").fetchone()[0]:
        step("silver_conflicts", _SILVER_CONFLICTS)
    step("bronze_rejects", _BRONZE_REJECTS)
    rows = conn.execute("select reason from _rej order by land_id, seq limit 20").fetchall()
    res.reasons = [r[0] for r in rows]
    res.rejected = conn.execute("select count(*) from _rej").fetchone()[0]
    res.duplicates = res.events - res.loaded - res.rejected
    if res.loaded:
        step("gold", "select gold.apply_new_orders()")
        step(
            "products",
            "insert into silver.products (product_id, product_name, category, unit_cost) "
            "select distinct on (product_id) product_id, product_name, category, unit_cost from _new_lines "
            "order by product_id on conflict (product_id) do nothing",
        )
        res.version = conn.execute(
            "select ops.bump_version('ingest', %s, %s, %s, %s, %s)",
            [sources, first, last, res.loaded, res.rejected],
        ).fetchone()[0]
    elif res.rejected:
        res.version = conn.execute(
            "select ops.bump_version('rejects', %s, null, null, 0, %s)", [sources, res.rejected]
        ).fetchone()[0]
    step("mark", _MARK_MOVED, [res.version])
    conn.commit()
    res.seconds = time.perf_counter() - t0
    timings["commit"] = time.perf_counter() - mark
    return res


def waiting(conn: psycopg.Connection) -> tuple[int, int]:
    """(landings, events) landed and not moved yet."""
    row = conn.execute(
        "select count(*), coalesce(sum(events), 0) from bronze.landings where moved_at is null"
    ).fetchone()
    conn.commit()
    return row[0], row[1]


def drain(
    conn: psycopg.Connection | None = None, max_events: int = MOVE_MAX_EVENTS, validate: str | None = None
) -> MoveResult:
    """Move until nothing is waiting; the totals of every move."""
    own = conn is None
    conn = conn or warehouse.connect_raw()
    total = MoveResult()
    try:
        while (r := move_once(conn, max_events, validate)).landings:
            total.add(r)
    finally:
        if own:
            conn.close()
    return total


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
                self._stop = threading.Event()
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
        stop = self._stop
        backoff = 0.2
        while not stop.is_set():
            try:
                with (
                    warehouse.connect_raw(autocommit=True, start=False) as listen,
                    warehouse.connect_raw(start=False) as conn,
                ):
                    listen.execute(f"listen {LANDED}")
                    backoff = 0.2
                    while not stop.is_set():
                        while (r := move_once(conn, self.max_events)).landings:
                            self.moves += 1
                            log.debug(
                                "moved %d landings, %d events in %.3fs", r.landings, r.events, r.seconds
                            )
                        # wait for the next landing (several NOTIFYs fold into one move)
                        deadline = time.monotonic() + self.poll_s
                        while not stop.is_set() and time.monotonic() < deadline:
                            if any(True for _ in listen.notifies(timeout=0.5, stop_after=1)):
                                break
            except Exception as exc:  # noqa: BLE001 - whatever broke, the mover must live: events wait for it
                level = logging.WARNING if isinstance(exc, (psycopg.Error, WarehouseError)) else logging.ERROR
                log.log(level, "mover: %r; reconnecting in %.1fs", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


_mover = Mover()


def start_mover() -> Mover:
    """This process's background mover (started once; landers start it)."""
    return _mover.start()
