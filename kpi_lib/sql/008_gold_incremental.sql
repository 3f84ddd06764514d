-- Incremental gold for streamed orders: add the new orders' contribution to the hourly rollups
-- instead of recomputing whole hours (an hour at 200 events/s holds 720 k orders; recomputing it
-- every 200 ms batch would not keep up). Exactly once: only orders that silver.orders just
-- accepted contribute. The caller lists them in two temp tables shaped like silver: _new_orders
-- (order_id, ordered_at, customer_id, region, channel, has_sale) and _new_lines (silver.order_lines
-- columns), so nothing here scans the big silver tables.
create or replace function gold.apply_new_orders() returns integer
language plpgsql as
$$
declare
    n integer;
begin
    drop table if exists pg_temp._nl;
    create temp table _nl on commit drop as
    select date_trunc('hour', o.ordered_at, ops.business_tz())   as hour,
           date_trunc('minute', o.ordered_at, ops.business_tz()) as minute,
           o.order_id, o.ordered_at, o.customer_id, o.region, o.channel, o.has_sale, l.category,
           l.quantity::float8 as q,
           l.quantity::float8 * l.unit_price::float8 * (1 - l.discount::float8) as v,
           l.quantity::float8 * l.unit_cost::float8 as c
      from _new_orders o
      join _new_lines l on l.order_id = o.order_id;
    get diagnostics n = row_count;

    -- customers: whose first order is now in this batch (new customers, or a late earlier event)
    drop table if exists pg_temp._first_moves;
    create temp table _first_moves on commit drop as
    select a.customer_id, c.first_order_at as old_first, a.f as new_first, a.l as last_at, a.r as region
      from (select customer_id, min(ordered_at) as f, max(ordered_at) as l, min(region) as r
              from _new_orders where customer_id is not null group by customer_id) a
      left join silver.customers c on c.customer_id = a.customer_id;
    insert into silver.customers (customer_id, first_order_at, last_order_at, region)
    select customer_id, new_first, last_at, region from _first_moves
    on conflict (customer_id) do update
       set first_order_at = least(silver.customers.first_order_at, excluded.first_order_at),
           last_order_at = greatest(silver.customers.last_order_at, excluded.last_order_at);
    delete from _first_moves where old_first is not null and new_first >= old_first;
    analyze _first_moves;

    insert into gold.category_hourly as t
    select hour, region, channel, category,
           sum(v), coalesce(sum(v) filter (where q > 0), 0), coalesce(-sum(v) filter (where q < 0), 0),
           sum(q), coalesce(sum(q) filter (where q > 0), 0), coalesce(-sum(q) filter (where q < 0), 0),
           count(distinct order_id) filter (where q > 0),
           coalesce(sum(v) filter (where c is not null), 0), coalesce(sum(c), 0), count(*)
      from _nl group by hour, region, channel, category
    on conflict (hour, region, channel, category) do update set
        revenue = t.revenue + excluded.revenue, gross_sales = t.gross_sales + excluded.gross_sales,
        returns_value = t.returns_value + excluded.returns_value, units = t.units + excluded.units,
        units_sold = t.units_sold + excluded.units_sold, units_returned = t.units_returned + excluded.units_returned,
        orders = t.orders + excluded.orders, costed_revenue = t.costed_revenue + excluded.costed_revenue,
        cost = t.cost + excluded.cost, lines = t.lines + excluded.lines;

    with active as (   -- customers active in an hour cell for the first time
        insert into gold.customer_hourly
        select distinct hour, region, channel, customer_id from _nl where has_sale and customer_id is not null
        on conflict do nothing
        returning hour, region, channel
    ), active_n as (
        select hour, region, channel, count(*) as n from active group by 1, 2, 3
    ), firsts as (     -- orders that are now their customer's first
        select date_trunc('hour', o.ordered_at, ops.business_tz()) as hour, o.region, o.channel,
               count(distinct o.customer_id) as n
          from _first_moves m join _new_orders o on o.customer_id = m.customer_id and o.ordered_at = m.new_first
         where o.has_sale group by 1, 2, 3
    ), orders_n as (
        select hour, region, channel, count(*) filter (where has_sale) as n
          from (select distinct order_id, hour, region, channel, has_sale from _nl) x group by 1, 2, 3
    ), sums as (
        select hour, region, channel,
               sum(v) as revenue, coalesce(sum(v) filter (where q > 0), 0) as gross_sales,
               coalesce(-sum(v) filter (where q < 0), 0) as returns_value,
               sum(q) as units, coalesce(sum(q) filter (where q > 0), 0) as units_sold,
               coalesce(-sum(q) filter (where q < 0), 0) as units_returned,
               coalesce(sum(v) filter (where c is not null), 0) as costed_revenue, coalesce(sum(c), 0) as cost,
               count(*) as lines
          from _nl group by hour, region, channel
    )
    insert into gold.sales_hourly as t
    select s.hour, s.region, s.channel, s.revenue, s.gross_sales, s.returns_value, s.units, s.units_sold,
           s.units_returned, coalesce(o.n, 0), coalesce(a.n, 0), coalesce(f.n, 0), s.costed_revenue, s.cost, s.lines
      from sums s
      left join orders_n o using (hour, region, channel)
      left join active_n a using (hour, region, channel)
      left join firsts f using (hour, region, channel)
    on conflict (hour, region, channel) do update set
        revenue = t.revenue + excluded.revenue, gross_sales = t.gross_sales + excluded.gross_sales,
        returns_value = t.returns_value + excluded.returns_value, units = t.units + excluded.units,
        units_sold = t.units_sold + excluded.units_sold, units_returned = t.units_returned + excluded.units_returned,
        orders = t.orders + excluded.orders, customers = t.customers + excluded.customers,
        new_customers = t.new_customers + excluded.new_customers,
        costed_revenue = t.costed_revenue + excluded.costed_revenue, cost = t.cost + excluded.cost,
        lines = t.lines + excluded.lines;

    -- a late event became a customer's first order: their old first order no longer counts as new
    update gold.sales_hourly t set new_customers = t.new_customers - x.n
      from (select date_trunc('hour', o.ordered_at, ops.business_tz()) as hour, o.region, o.channel,
                   count(distinct o.customer_id) as n
              from _first_moves m join silver.orders o on o.ordered_at = m.old_first and o.customer_id = m.customer_id
             where m.old_first is not null and o.has_sale group by 1, 2, 3) x
     where t.hour = x.hour and t.region = x.region and t.channel = x.channel;

    insert into gold.sales_minute as t
    select minute, region, channel, sum(v), count(distinct order_id) filter (where has_sale), sum(q), count(*)
      from _nl where minute >= date_trunc('minute', now()) - interval '3 days'
     group by minute, region, channel
    on conflict (minute, region, channel) do update set
        revenue = t.revenue + excluded.revenue, orders = t.orders + excluded.orders,
        units = t.units + excluded.units, lines = t.lines + excluded.lines;

    drop table pg_temp._nl;
    drop table pg_temp._first_moves;
    return n;
end
$$;
