"""The mover of the fast path: landed raw events (``bronze.landings`` and ``bronze.landed_events``,
written by :class:`~kpi_lib.stream.land.Lander`) validated set-based in SQL, then moved to silver and
gold, as many waiting landings per transaction as ``MOVE_MAX_EVENTS`` allows, then NOTIFY.

Validation follows ``validate.py``'s rules and reasons (the same number and ISO-8601 grammars, the
same reading of business-time wall clock; ``tests/test_move.py`` feeds both the same tricky events); a
malformed event goes to ``bronze.rejects`` with its reason, as on the one-transaction path. Exactly once across the split: one transaction
validates the landings, writes the rejects, silver and gold, bumps the data version (NOTIFY) and marks
the landings moved. A crash (``kill -9``) anywhere before its commit leaves every landing waiting;
after it, nothing is left to move twice. Event and order ids make events seen before (a redelivery,
a producer sending again what was not acknowledged) a no-op.

Movers may run in any number of processes (``kpi serve``, ``kpi move``, a lander's own thread): an
advisory lock lets one move at a time. The standing ones (``Mover(leader=True)``: ``kpi serve``'s and
``kpi move``'s) elect one per deployment with a session advisory lock; the others stand by.

Poison: a move that fails on a database error the data may have caused (not a lost connection) is
rolled back and counted against its landings (``attempts``, ``last_error``); a landing that failed
before is moved alone, so the others keep moving, and after ``max_attempts()`` failures its events
are moved apart (halves, down to single events, each in a savepoint) and the ones that still fail go
to ``bronze.rejects`` with the error as the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import psycopg

from .. import warehouse
from ..errors import WarehouseError
from .validate import ISO_TIME

log = logging.getLogger(__name__)

LANDED = "kpi_landed"  # a lander NOTIFYs this with its commit: movers wake up
MOVE_MAX_EVENTS = 100_000  # one move takes waiting landings up to about this many events
POLL_S = 5.0  # a background mover looks for waiting landings this often even without a NOTIFY

_STAGE_DDL = """
create temp table if not exists _claimed (land_id bigint, source text, landed_at timestamptz, events int,
    attempts int) on commit delete rows;
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

# The oldest waiting landings, up to about max_events events; a landing whose move failed before (a
# suspect) is moved alone, so the landings before it move without it and the ones after wait their turn.
_CLAIM = """
with waiting as (
    select land_id, source, landed_at, events, attempts, sum(events) over (order by land_id) - events as before,
           min(land_id) filter (where attempts > 0) over () as suspect
      from bronze.landings where moved_at is null
)
insert into _claimed select land_id, source, landed_at, events, attempts from waiting
 where before < %s and (before = 0 or land_id < coalesce(suspect, 9223372036854775807))
"""

# Parsing: all at once (the common case: every payload is JSON); when one is not, each on its own.
_PARSE_FAST = """
insert into _ev select e.land_id, e.seq, c.source, c.landed_at, e.payload::jsonb, null
  from bronze.landed_events e join _claimed c using (land_id)
 where e.seq >= %(lo)s and e.seq < %(hi)s
"""
_PARSE_SAFE = """
insert into _ev
select land_id, seq, source, landed_at, case when ok then payload::jsonb end,
       case when not ok then bronze.input_error(payload, 'jsonb') end
  from (select e.land_id, e.seq, c.source, c.landed_at, e.payload, bronze.is_valid(e.payload, 'jsonb') as ok
          from bronze.landed_events e join _claimed c using (land_id)
         where e.seq >= %(lo)s and e.seq < %(hi)s offset 0) p
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
           case when ts ~ %(iso)s and bronze.is_valid(tsn, 'timestamptz') then
                case when ts ~ ':[0-9]{2}([.,][0-9]+)? ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
                     then tsn::timestamptz else tsn::timestamp at time zone ops.business_tz() end
           end as at
      from (
        select land_id, seq, source, landed_at, j, jerr, is_obj, order_id,
               coalesce(bronze.j_text(j -> 'event_id', null), order_id) as event_id,
               case when jsonb_typeof(j -> 'ordered_at') = 'string' then j ->> 'ordered_at' end as ts,
               -- as Python reads it: a comma for the decimal point, microseconds truncated, not rounded
               case when jsonb_typeof(j -> 'ordered_at') = 'string' then
                    regexp_replace(replace(j ->> 'ordered_at', ',', '.'), '(\.[0-9]{6})[0-9]+', '\1') end as tsn,
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
           x.ln -> 'line_no' is null or x.ln -> 'line_no' in ('null', 'false', '0', '""', '[]', '{}')
               or (jsonb_typeof(x.ln -> 'line_no') = 'number' and bronze.j_num(x.ln -> 'line_no') = 0) as ln_falsy,
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
    failed: int = 0  # landings whose move failed on a database error (left waiting, attempts counted)
    errors: list[str] = field(default_factory=list)  # those errors, the first few

    def add(self, other: MoveResult) -> None:
        self.landings += other.landings
        self.events += other.events
        self.loaded += other.loaded
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.failed += other.failed
        self.version = other.version or self.version
        self.seconds += other.seconds
        for k, v in other.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v
        self.reasons.extend(other.reasons[: max(0, 20 - len(self.reasons))])
        self.errors.extend(other.errors[: max(0, 20 - len(self.errors))])


ALL = 2**31 - 1  # every seq of a landing


def _validate_in_python(conn: psycopg.Connection, lo: int = 0, hi: int = ALL) -> None:
    """The claimed events through validate.py's :class:`Validator` (in landing order, so the first
    copy of an order wins; "now" is each landing's time, as in the SQL validation), its rows COPY'd
    into the temp tables the SQL validation would fill."""
    from .validate import Validator

    v = Validator("mover")
    b = v.batch
    first: list[tuple] = []
    lines: list[tuple] = []
    rejects: list[tuple] = []
    rows = conn.execute(
        "select e.land_id, e.seq, c.source, c.landed_at, e.payload from bronze.landed_events e "
        "join _claimed c using (land_id) where e.seq >= %s and e.seq < %s order by e.land_id, e.seq",
        [lo, hi],
    ).fetchall()
    for land_id, seq, source, landed_at, payload in rows:
        v.now = landed_at
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


@dataclass
class _Moved:
    """What the move of some claimed events wrote (before the version bump and the landings' marks)."""

    loaded: int = 0
    rejected: int = 0
    first: object = None  # earliest and latest ordered_at of the new orders
    last: object = None
    reasons: list[str] = field(default_factory=list)

    def add(self, other: _Moved) -> None:
        self.loaded += other.loaded
        self.rejected += other.rejected
        if other.loaded:
            self.first = other.first if self.first is None else min(self.first, other.first)
            self.last = other.last if self.last is None else max(self.last, other.last)
        self.reasons.extend(other.reasons[: max(0, 20 - len(self.reasons))])


def _move_claimed(conn: psycopg.Connection, validate: str, step, lo: int = 0, hi: int = ALL) -> _Moved:
    """Validate the claimed events (seq in [lo, hi)), write rejects, silver, gold and products."""
    out = _Moved()
    if validate == "python":
        t = time.perf_counter()
        _validate_in_python(conn, lo, hi)
        step.timings["validate_python"] = step.timings.get("validate_python", 0.0) + time.perf_counter() - t
        step.mark = time.perf_counter()
        step("analyze_first", "analyze _first (land_id, seq, order_id), _lv (land_id, seq)")
    else:
        try:
            with conn.transaction():  # a savepoint: one malformed payload fails the bulk parse
                step("parse", _PARSE_FAST, {"lo": lo, "hi": hi})
        except psycopg.DataError:
            step("parse_each", _PARSE_SAFE, {"lo": lo, "hi": hi})
        step("orders", _ORDERS, {"iso": ISO_TIME})
        step("analyze", "analyze _ord (land_id, seq, order_id, reason)")
        step("lines", _LINES)
        step("line_reasons", _LINE_REASONS)
        step("first", _FIRST)
        step("analyze_first", "analyze _first (land_id, seq, order_id), _lv (land_id, seq)")
        step("rejects", _REJECTS)
    step("silver", _TO_SILVER)
    step("analyze_new", "analyze _new_orders (order_id, customer_id, ordered_at), _new_lines (order_id)")
    out.loaded, out.first, out.last = conn.execute(
        "select count(*), min(ordered_at), max(ordered_at) from _new_orders"
    ).fetchone()
    if out.loaded < conn.execute("select count(*) from _first").fetchone()[0]:
        step("silver_conflicts", _SILVER_CONFLICTS)
    step("bronze_rejects", _BRONZE_REJECTS)
    rows = conn.execute("select reason from _rej order by land_id, seq limit 20").fetchall()
    out.reasons = [r[0] for r in rows]
    out.rejected = conn.execute("select count(*) from _rej").fetchone()[0]
    if out.loaded:
        step("gold", "select gold.apply_new_orders()")
        step(
            "products",
            "insert into silver.products (product_id, product_name, category, unit_cost) "
            "select distinct on (product_id) product_id, product_name, category, unit_cost from _new_lines "
            "order by product_id on conflict (product_id) do nothing",
        )
    return out


class _Steps:
    """Runs the move's statements, timing each (``MoveResult.timings``)."""

    def __init__(self, conn: psycopg.Connection, timings: dict[str, float]) -> None:
        self.conn, self.timings, self.mark = conn, timings, time.perf_counter()

    def __call__(self, name: str, sql: str, params=None) -> None:
        self.conn.execute(sql, params)
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.mark
        self.mark = now


def _bump(conn: psycopg.Connection, sources: str, moved: _Moved) -> int | None:
    if moved.loaded:
        return conn.execute(
            "select ops.bump_version('ingest', %s, %s, %s, %s, %s)",
            [sources, moved.first, moved.last, moved.loaded, moved.rejected],
        ).fetchone()[0]
    if moved.rejected:
        return conn.execute(
            "select ops.bump_version('rejects', %s, null, null, 0, %s)", [sources, moved.rejected]
        ).fetchone()[0]
    return None


def max_attempts() -> int:
    """How often a landing's move may fail before its events are moved one by one
    (``KPI_MOVE_MAX_ATTEMPTS``, default 3)."""
    import os

    return max(1, int(os.environ.get("KPI_MOVE_MAX_ATTEMPTS", "3")))


# SQLSTATE classes of errors that are not the data's fault: the connection, a server shutting down or
# out of resources, a serialization failure or deadlock, a lock not available, an I/O error. A move
# that fails with one of these is simply tried again; any other error counts against its landings.
_NOT_THE_DATA = ("08", "40", "53", "55", "57", "58")


def _data_error(exc: BaseException, conn: psycopg.Connection) -> bool:
    """Whether a failed move's error may be caused by what it moved (a poison event)."""
    if conn.closed or conn.broken:
        return False
    if isinstance(exc, psycopg.Error):
        return bool(exc.sqlstate) and exc.sqlstate[:2] not in _NOT_THE_DATA
    return isinstance(exc, Exception)  # validate.py failing on a payload (KPI_MOVE_VALIDATE=python)


def _describe(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    state = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}{f' {state}' if state else ''}: {first}"[:500]


def move_once(
    conn: psycopg.Connection, max_events: int = MOVE_MAX_EVENTS, validate: str | None = None
) -> MoveResult:
    """Validate and move the oldest waiting landings (up to about ``max_events`` events, at least one
    landing) in one transaction on ``conn`` (not autocommit). Waits while another mover moves.
    ``validate``: ``"sql"`` (set-based, on the server) or ``"python"`` (validate.py in this process);
    default ``KPI_MOVE_VALIDATE``, else ``"sql"``.

    A move that fails on an error the data may have caused (not a lost connection) is rolled back, its
    landings' ``attempts`` counted and the result's ``failed`` set; it raises nothing. A landing that
    failed before is moved alone; one that failed ``max_attempts()`` times is moved event by event
    (:func:`_move_apart`): what still fails goes to ``bronze.rejects`` with the error as its reason."""
    import os

    validate = validate or os.environ.get("KPI_MOVE_VALIDATE", "sql")
    t0 = time.perf_counter()
    res = MoveResult()
    conn.execute("select pg_advisory_xact_lock(hashtext('kpi_lib.mover'))")
    conn.execute(_STAGE_DDL)
    conn.execute(_CLAIM, [max_events])
    claimed = conn.execute("select land_id, events, attempts from _claimed order by land_id").fetchall()
    if not claimed:
        conn.rollback()
        return res
    res.landings, res.events = len(claimed), sum(c[1] for c in claimed)
    sources = conn.execute(
        "select string_agg(distinct source, ',' order by source) from _claimed"
    ).fetchone()[0]
    steps = _Steps(conn, res.timings)
    try:
        apart = len(claimed) == 1 and claimed[0][2] >= max_attempts()
        if apart:
            moved = _move_apart(conn, validate, steps, claimed[0], res)
        else:
            moved = _move_claimed(conn, validate, steps)
        res.loaded, res.rejected, res.reasons = moved.loaded, moved.rejected, moved.reasons
        res.duplicates = res.events - res.loaded - res.rejected
        res.version = _bump(conn, sources, moved)
        if apart:
            n_ok, n_bad = moved.loaded, moved.rejected
            steps("mark", _MARK_APART, [res.version, n_ok, n_bad, n_ok, n_bad, claimed[0][0]])
        else:
            steps("mark", _MARK_MOVED, [res.version])
        conn.commit()
    except Exception as exc:
        if not _data_error(exc, conn):
            raise
        conn.rollback()
        error = _describe(exc)
        log.warning(
            "mover: moving landing(s) %s failed (%s); %s",
            ", ".join(str(c[0]) for c in claimed),
            error,
            "each will be moved alone, and its events one by one after "
            f"{max_attempts()} failures (the ones that still fail go to bronze.rejects)",
        )
        conn.execute(
            "update bronze.landings set attempts = attempts + 1, last_error = %s "
            "where land_id = any(%s) and moved_at is null",
            [error, [c[0] for c in claimed]],
        )
        conn.commit()
        res = MoveResult(landings=len(claimed), events=res.events, failed=len(claimed), errors=[error])
        return res
    res.seconds = time.perf_counter() - t0
    res.timings["commit"] = time.perf_counter() - steps.mark
    return res


_STAGING = "_ev, _ord, _lv, _first, _rej, _new_orders, _new_lines"


def _move_apart(
    conn: psycopg.Connection, validate: str, steps: _Steps, landing: tuple, res: MoveResult
) -> _Moved:
    """A landing whose move failed ``max_attempts()`` times: its events moved in halves, then quarters,
    each in a savepoint, down to single events; an event whose move still fails goes to
    ``bronze.rejects`` with the database's error as its reason. Same transaction as the mark."""
    land_id, events, attempts = landing
    total = _Moved()
    todo = [(0, events)]
    while todo:
        lo, hi = todo.pop(0)
        try:
            with conn.transaction():
                conn.execute(f"truncate {_STAGING}")
                total.add(_move_claimed(conn, validate, steps, lo, hi))
        except Exception as exc:
            if not _data_error(exc, conn):
                raise
            if hi - lo > 1:
                mid = (lo + hi) // 2
                todo[:0] = [(lo, mid), (mid, hi)]
                continue
            reason = (
                f"could not be moved to silver: {_describe(exc)} (its landing {land_id} failed "
                f"{attempts} times; the landing's other events moved)"
            )
            conn.execute(
                "insert into bronze.rejects (source, event_id, row_data, reason) "
                "select c.source, case when bronze.is_valid(e.payload, 'jsonb') then "
                "  (select coalesce(bronze.j_text(j -> 'event_id', null), bronze.j_text(j -> 'order_id', null)) "
                "     from (select e.payload::jsonb as j offset 0) x where jsonb_typeof(j) = 'object') end, "
                "  left(e.payload, 10000), %s "
                "from bronze.landed_events e join _claimed c using (land_id) where e.land_id = %s and e.seq = %s",
                [reason, land_id, lo],
            )
            total.rejected += 1
            if len(total.reasons) < 20:
                total.reasons.append(reason)
            res.errors.append(_describe(exc))
            log.warning("mover: event %d of landing %d refused: %s", lo, land_id, _describe(exc))
    conn.execute(f"truncate {_STAGING}")
    return total


_MARK_APART = """
update bronze.landings l
   set moved_at = now(), version = %s, loaded = %s, rejected = %s, duplicates = l.events - %s - %s
 where l.land_id = %s
"""


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
    """Move until nothing is waiting; the totals of every move (a failed move is tried again: its
    landings alone, then their events one by one, so this ends)."""
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


LEADER_LOCK = "kpi_lib.mover.leader"  # held by the one standing mover of a deployment
MIN_INTERVAL_S = 0.1  # landings within this long of a move fold into the next one
STANDBY_S = 5.0  # a standby mover tries to become the leader this often


class Mover:
    """A mover on threads of its own: one LISTENs for ``kpi_landed`` (a lander's NOTIFY) and pokes a
    :class:`~kpi_lib.stream.paced.Paced` worker that moves whatever waits, no more often than every
    ``min_interval_s`` (landings meanwhile fold into one move). It also moves every ``poll_s``
    seconds, and at start; it reconnects after any error.

    ``leader=True`` (``kpi serve``, ``kpi move``): it moves only while it holds the session advisory
    lock ``LEADER_LOCK`` on its LISTEN connection, so one such mover per deployment works and the
    others stand by; when the leader's process or connection dies, PostgreSQL releases the lock and a
    standby takes over within ``STANDBY_S``. Correctness never rests on this lock: each move takes the
    movers' transaction lock, so movers that do run at once (a lander's own) take turns.
    """

    def __init__(
        self,
        max_events: int = MOVE_MAX_EVENTS,
        poll_s: float = POLL_S,
        *,
        leader: bool = False,
        min_interval_s: float = MIN_INTERVAL_S,
        standby_s: float = STANDBY_S,
    ) -> None:
        self.max_events, self.poll_s, self.leader = max_events, poll_s, leader
        self.min_interval_s, self.standby_s = min_interval_s, standby_s
        self.moves = 0
        self.role = "starting"  # moving | standby | reconnecting
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

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

    def _move_all(self) -> None:
        """The paced work: move until nothing waits (on a connection kept between runs)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = warehouse.connect_raw(start=False)
            while not self._stop.is_set():
                r = move_once(self._conn, self.max_events)
                if not r.landings:
                    break
                self.moves += 1
                log.debug("moved %d landings, %d events in %.3fs", r.landings, r.events, r.seconds)
        except (psycopg.Error, WarehouseError) as exc:
            log.warning("mover: %r; trying again in %.0fs at most", exc, self.poll_s)
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _run(self) -> None:
        from .paced import Paced

        stop = self._stop
        worker = Paced(self._move_all, name="kpi-mover-moves", min_interval_s=self.min_interval_s, stop=stop)
        worker.start(on_changes=False)
        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    with warehouse.connect_raw(autocommit=True, start=False) as listen:
                        if self.leader:
                            while not listen.execute(
                                "select pg_try_advisory_lock(hashtext(%s))", [LEADER_LOCK]
                            ).fetchone()[0]:
                                self.role = "standby"
                                if stop.wait(self.standby_s):
                                    return
                        listen.execute(f"listen {LANDED}")
                        self.role = "moving"
                        backoff = 0.2
                        worker.poke()  # whatever landed while no mover listened
                        polled = time.monotonic()
                        while not stop.is_set():
                            # several NOTIFYs fold into one move (the worker's pace)
                            if any(True for _ in listen.notifies(timeout=0.5, stop_after=1)):
                                worker.poke()
                            elif time.monotonic() - polled >= self.poll_s:
                                polled = time.monotonic()
                                worker.poke()
                except Exception as exc:  # noqa: BLE001 - whatever broke, the mover must live: events wait for it
                    self.role = "reconnecting"
                    level = (
                        logging.WARNING if isinstance(exc, (psycopg.Error, WarehouseError)) else logging.ERROR
                    )
                    log.log(level, "mover: %r; reconnecting in %.1fs", exc, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            worker.stop()
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_mover = Mover()


def start_mover() -> Mover:
    """This process's background mover (started once; landers start it)."""
    return _mover.start()


def leader_status(conn: psycopg.Connection) -> dict | None:
    """The standing mover that leads (``kpi serve``'s or ``kpi move``'s): its backend's client
    address and since when; None when no process holds the leader lock."""
    row = conn.execute(
        "select a.pid, a.client_addr::text, a.backend_start from pg_locks l join pg_stat_activity a using (pid) "
        "where l.locktype = 'advisory' and l.objsubid = 1 and l.granted "
        "and ((l.classid::bigint << 32) | l.objid::bigint) = hashtext(%s)::bigint",
        [LEADER_LOCK],
    ).fetchone()
    return None if row is None else {"pid": row[0], "client": row[1] or "local socket", "since": row[2]}
