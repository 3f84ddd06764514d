-- Distinct customers over any run of whole days, as a sum (the L3 of the `customers` KPI).
--
-- A customer counts in a window [a, b) once: on their first active day in it, which is the active
-- day whose previous active day (in the same region/channel scope) falls before a. So for each
-- scope and day we keep how many customers came back after which previous active day
-- ('-infinity' for their first order), and
--     distinct customers in [a, b) = sum(customers) where a <= day < b and prev_day < a.
-- A 30-day tile at 10 M order lines then reads ~20 k small rows instead of hashing ~1 M customer
-- hours. '*' in region or channel is the scope "every value" (an unfiltered question).
create materialized view if not exists gold.customer_returns as
with active as (
    select distinct (hour at time zone ops.business_tz())::date as day, region, channel, customer_id
      from gold.customer_hourly
), scoped as (
    select day, region, channel, customer_id from active
    union all select distinct day, region, '*', customer_id from active
    union all select distinct day, '*', channel, customer_id from active
    union all select distinct day, '*', '*', customer_id from active
)
select region, channel, day, prev_day, count(*)::bigint as customers
  from (select region, channel, day,
               coalesce(lag(day) over (partition by region, channel, customer_id order by day),
                        '-infinity'::date) as prev_day
          from scoped) s
 group by region, channel, day, prev_day
with data;
-- unique (refresh concurrently needs it); the sum reads the index alone
create unique index if not exists customer_returns_key
    on gold.customer_returns (region, channel, day, prev_day) include (customers);

-- Built just now from the current data: record that, so queries use it before the next refresh.
insert into ops.mv_state (mv_name, refreshed_version, refreshed_at, duration_ms)
select 'gold.customer_returns', coalesce(max(version), 0), now(), 0 from ops.batches
on conflict (mv_name) do nothing;
