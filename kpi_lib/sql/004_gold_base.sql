-- Gold base tables: hourly rollups of silver, kept current incrementally.
-- Every ingest batch and file load calls gold.refresh_range() for the hours it touched, so these
-- tables are never stale (they are the cache's L4). Money and units are float8 here: rollups are
-- for reading, silver keeps the exact numerics.

create table if not exists gold.sales_hourly (
    hour            timestamptz not null,
    region          text not null,
    channel         text not null,
    revenue         float8 not null,   -- net: quantity * unit_price * (1 - discount), returns negative
    gross_sales     float8 not null,   -- positive lines only
    returns_value   float8 not null,   -- value of returned lines, as a positive number
    units           float8 not null,   -- net units
    units_sold      float8 not null,
    units_returned  float8 not null,
    orders          integer not null,  -- distinct orders with a positive line
    customers       integer not null,  -- distinct customers within this row
    new_customers   integer not null,  -- customers whose first order is in this row
    costed_revenue  float8 not null,   -- revenue of lines whose unit_cost is known
    cost            float8 not null,
    lines           integer not null,
    primary key (hour, region, channel)
);

create table if not exists gold.category_hourly (
    hour            timestamptz not null,
    region          text not null,
    channel         text not null,
    category        text not null,
    revenue         float8 not null,
    gross_sales     float8 not null,
    returns_value   float8 not null,
    units           float8 not null,
    units_sold      float8 not null,
    units_returned  float8 not null,
    orders          integer not null,  -- distinct orders with a positive line in this category
    costed_revenue  float8 not null,
    cost            float8 not null,
    lines           integer not null,
    primary key (hour, region, channel, category)
);

-- Who was active when: the exact source for distinct-customer counts at any grain.
create table if not exists gold.customer_hourly (
    hour        timestamptz not null,
    region      text not null,
    channel     text not null,
    customer_id text not null,
    primary key (hour, region, channel, customer_id)
);

-- Minute rollup of the last few days, for live charts.
create table if not exists gold.sales_minute (
    minute   timestamptz not null,
    region   text not null,
    channel  text not null,
    revenue  float8 not null,
    orders   integer not null,
    units    float8 not null,
    lines    integer not null,
    primary key (minute, region, channel)
);

-- Recompute every hourly rollup for the hours holding event times p_first .. p_last (inclusive).
-- One pass over lines builds category_hourly; sales_hourly then sums it and takes the per-order
-- counts from silver.orders alone (orders.has_sale says whether an order sold anything), so the
-- expensive join of orders and lines happens once. Money is summed in float8: numeric aggregates
-- are several times slower. Returns the number of lines read.
create or replace function gold.refresh_range(p_first timestamptz, p_last timestamptz)
returns bigint
language plpgsql
set work_mem = '512MB'
as
$$
declare
    h_from  timestamptz := date_trunc('hour', p_first, ops.business_tz());
    h_to    timestamptz := date_trunc('hour', p_last, ops.business_tz()) + interval '1 hour';
    m_keep  timestamptz := date_trunc('minute', now()) - interval '3 days';
    n       bigint;
begin
    delete from gold.category_hourly where hour >= h_from and hour < h_to;
    delete from gold.sales_hourly    where hour >= h_from and hour < h_to;
    delete from gold.customer_hourly where hour >= h_from and hour < h_to;
    delete from gold.sales_minute    where minute >= greatest(h_from, m_keep) and minute < h_to;
    delete from gold.sales_minute    where minute < m_keep;

    insert into gold.category_hourly
    select hour, region, channel, category,
           sum(v), coalesce(sum(v) filter (where q > 0), 0), coalesce(-sum(v) filter (where q < 0), 0),
           sum(q), coalesce(sum(q) filter (where q > 0), 0), coalesce(-sum(q) filter (where q < 0), 0),
           count(distinct order_id) filter (where q > 0),
           coalesce(sum(v) filter (where c is not null), 0), coalesce(sum(c), 0),
           count(*)
      from (select date_trunc('hour', o.ordered_at, ops.business_tz()) as hour, o.region, o.channel, l.category, o.order_id,
                   l.quantity::float8 as q,
                   l.quantity::float8 * l.unit_price::float8 * (1 - l.discount::float8) as v,
                   l.quantity::float8 * l.unit_cost::float8 as c
              from silver.orders o
              join silver.order_lines l on l.order_id = o.order_id
             where o.ordered_at >= h_from and o.ordered_at < h_to) x
     group by hour, region, channel, category;
    get diagnostics n = row_count;

    insert into gold.sales_hourly
    select s.hour, s.region, s.channel, s.revenue, s.gross_sales, s.returns_value,
           s.units, s.units_sold, s.units_returned,
           coalesce(o.orders, 0), coalesce(o.customers, 0), coalesce(o.new_customers, 0),
           s.costed_revenue, s.cost, s.lines
      from (select hour, region, channel, sum(revenue) as revenue, sum(gross_sales) as gross_sales,
                   sum(returns_value) as returns_value, sum(units) as units, sum(units_sold) as units_sold,
                   sum(units_returned) as units_returned, sum(costed_revenue) as costed_revenue,
                   sum(cost) as cost, sum(lines)::integer as lines
              from gold.category_hourly
             where hour >= h_from and hour < h_to
             group by hour, region, channel) s
      left join (
            select date_trunc('hour', o.ordered_at, ops.business_tz()) as hour, o.region, o.channel,
                   count(*) filter (where o.has_sale) as orders,
                   count(distinct o.customer_id) filter (where o.has_sale) as customers,
                   count(distinct o.customer_id) filter (where o.has_sale and o.ordered_at = cu.first_order_at) as new_customers
              from silver.orders o
              left join silver.customers cu on cu.customer_id = o.customer_id
             where o.ordered_at >= h_from and o.ordered_at < h_to
             group by 1, 2, 3) o
        on o.hour = s.hour and o.region = s.region and o.channel = s.channel;

    insert into gold.customer_hourly
    select date_trunc('hour', ordered_at, ops.business_tz()), region, channel, customer_id
      from silver.orders
     where ordered_at >= h_from and ordered_at < h_to and has_sale and customer_id is not null
     group by 1, 2, 3, 4;

    insert into gold.sales_minute
    select date_trunc('minute', o.ordered_at, ops.business_tz()), o.region, o.channel,
           sum(l.quantity::float8 * l.unit_price::float8 * (1 - l.discount::float8)),
           count(distinct o.order_id) filter (where o.has_sale), sum(l.quantity::float8), count(*)
      from silver.orders o
      join silver.order_lines l on l.order_id = o.order_id
     where o.ordered_at >= greatest(h_from, m_keep) and o.ordered_at < h_to
     group by 1, 2, 3;

    select coalesce(sum(lines), 0) into n from gold.sales_hourly where hour >= h_from and hour < h_to;
    return n;
end
$$;
