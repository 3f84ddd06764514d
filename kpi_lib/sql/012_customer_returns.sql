-- Distinct customers over any run of whole days, as a sum (the L3 of the `customers` KPI).
--
-- A customer counts in a window [a, b) once: on their first active day in it, which is the active
-- day whose previous active day (in the same region/channel scope) falls before a. So for each
-- scope and day we keep how many customers came back after which previous active day
-- ('-infinity' for their first order), and
--     distinct customers in [a, b) = sum(customers) where a <= day < b and prev_day < a.
-- A 30-day tile at 10 M order lines then reads ~20 k small rows instead of hashing ~1 M customer
-- hours. '*' in region or channel is the scope "every value" (an unfiltered question).
-- One sort by customer then day serves all four scopes (incremental sorts within a customer); the
-- "C" collation sorts ids bytewise. Where a customer was active twice on a day within a wider
-- scope (two channels in one region), the later row's previous day is that same day: skipped.
create materialized view if not exists gold_store.customer_returns as
with active as (
    select customer_id collate "C" as customer_id, (hour at time zone ops.business_tz())::date as day,
           region collate "C" as region, channel collate "C" as channel
      from gold.customer_hourly
     group by 1, 2, 3, 4
), lags as (
    select day, region, channel,
           lag(day) over (partition by customer_id, region, channel order by day) as p_rc,
           lag(day) over (partition by customer_id, region order by day) as p_r,
           lag(day) over (partition by customer_id, channel order by day) as p_c,
           lag(day) over (partition by customer_id order by day) as p_all
      from active
)
select s.region::text as region, s.channel::text as channel, l.day,
       coalesce(s.prev, '-infinity'::date) as prev_day, count(*)::bigint as customers
  from lags l
 cross join lateral (values (l.region, l.channel, l.p_rc), (l.region, '*', l.p_r),
                            ('*', l.channel, l.p_c), ('*', '*', l.p_all)) s (region, channel, prev)
 where s.prev is null or s.prev < l.day
 group by 1, 2, 3, 4
with data;
-- unique (refresh concurrently needs it); the sum reads the index alone
create unique index if not exists customer_returns_key
    on gold_store.customer_returns (region, channel, day, prev_day) include (customers);
-- each reader sees its own scopes' rows (004a_row_scope.sql); '*' rows only when unscoped there
select ops.create_scoped_view('gold.customer_returns', 'gold_store.customer_returns', '{region,channel}');

-- Built just now from the current data: record that, so queries use it before the next refresh.
insert into ops.mv_state (mv_name, refreshed_version, refreshed_at, duration_ms)
select 'gold.customer_returns', coalesce(max(version), 0), now(), 0 from ops.batches
on conflict (mv_name) do nothing;
