-- Gold materialized views (the cache's L3): daily rollups, products and customer RFM segments.
-- `kpi_lib.cache` refreshes them CONCURRENTLY after data changes (readers never block) and records
-- the data version each reflects in ops.mv_state; queries read them only for days they cover.
--
-- They live in gold_store; gold.<name> is a view over each that shows a reader only the rows of its
-- row scope (004a_row_scope.sql): PostgreSQL has no row-level security on materialized views.
create schema if not exists gold_store;
revoke all on schema gold_store from public;
do $$
declare r record;
begin  -- warehouses built before row scopes kept them in gold: move them (indexes and data follow)
    for r in select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'gold' and c.relkind = 'm' loop
        execute format('alter materialized view gold.%I set schema gold_store', r.relname);
    end loop;
end
$$;

create materialized view if not exists gold_store.sales_daily as
select (h.hour at time zone ops.business_tz())::date as day, h.region, h.channel,
       sum(h.revenue) as revenue, sum(h.gross_sales) as gross_sales, sum(h.returns_value) as returns_value,
       sum(h.units) as units, sum(h.units_sold) as units_sold, sum(h.units_returned) as units_returned,
       sum(h.orders)::bigint as orders, sum(h.new_customers)::bigint as new_customers,
       sum(h.costed_revenue) as costed_revenue, sum(h.cost) as cost, sum(h.lines)::bigint as lines
  from gold.sales_hourly h
 group by 1, 2, 3
with data;
create unique index if not exists sales_daily_key on gold_store.sales_daily (day, region, channel);

create materialized view if not exists gold_store.category_daily as
select (h.hour at time zone ops.business_tz())::date as day, h.region, h.channel, h.category,
       sum(h.revenue) as revenue, sum(h.gross_sales) as gross_sales, sum(h.returns_value) as returns_value,
       sum(h.units) as units, sum(h.units_sold) as units_sold, sum(h.units_returned) as units_returned,
       sum(h.orders)::bigint as orders,
       sum(h.costed_revenue) as costed_revenue, sum(h.cost) as cost, sum(h.lines)::bigint as lines
  from gold.category_hourly h
 group by 1, 2, 3, 4
with data;
create unique index if not exists category_daily_key on gold_store.category_daily (day, region, channel, category);
create index if not exists category_daily_category on gold_store.category_daily (category, day);

create materialized view if not exists gold_store.product_daily as
select day, region, channel, category, product_id, max(product_name) as product_name,
       sum(v) as revenue, coalesce(sum(v) filter (where q > 0), 0) as gross_sales,
       coalesce(-sum(v) filter (where q < 0), 0) as returns_value,
       sum(q) as units, coalesce(sum(q) filter (where q > 0), 0) as units_sold,
       coalesce(-sum(q) filter (where q < 0), 0) as units_returned,
       count(distinct order_id) filter (where q > 0) as orders,
       coalesce(sum(v) filter (where c is not null), 0) as costed_revenue, coalesce(sum(c), 0) as cost,
       count(*) as lines
  from (select (o.ordered_at at time zone ops.business_tz())::date as day, o.region, o.channel, l.category, l.product_id,
               l.product_name, o.order_id, l.quantity::float8 as q,
               l.quantity::float8 * l.unit_price::float8 * (1 - l.discount::float8) as v,
               l.quantity::float8 * l.unit_cost::float8 as c
          from silver.orders o
          join silver.order_lines l on l.order_id = o.order_id
       ) x
 group by day, region, channel, category, product_id
with data;
create unique index if not exists product_daily_key on gold_store.product_daily (day, region, channel, category, product_id);
create index if not exists product_daily_category on gold_store.product_daily (category, day);

-- RFM: recency (days since last order, measured from the latest order in the warehouse),
-- frequency (orders) and monetary (net revenue), each scored 1..5, and a named segment.
create materialized view if not exists gold_store.customer_rfm as
with per_customer as (
    select o.customer_id, mode() within group (order by o.region) as region,
           max(o.ordered_at) as last_order_at, min(o.ordered_at) as first_order_at,
           count(*) filter (where o.has_sale) as frequency, coalesce(sum(r.revenue), 0) as monetary
      from silver.orders o
      left join (select order_id, sum(quantity::float8 * unit_price::float8 * (1 - discount::float8)) as revenue
                   from silver.order_lines group by order_id) r on r.order_id = o.order_id
     where o.customer_id is not null
     group by o.customer_id
), scored as (
    select p.*,
           extract(epoch from ((select max(ordered_at) from silver.orders) - p.last_order_at)) / 86400.0 as recency_days,
           ntile(5) over (order by p.last_order_at) as r_score,
           ntile(5) over (order by p.frequency, p.monetary) as f_score,
           ntile(5) over (order by p.monetary) as m_score
      from per_customer p
)
select customer_id, region, first_order_at, last_order_at, round(recency_days::numeric, 1)::float8 as recency_days,
       frequency, monetary, r_score, f_score, m_score,
       case
           when r_score >= 4 and f_score >= 4 and m_score >= 4 then 'Champions'
           when r_score >= 3 and f_score >= 3 then 'Loyal'
           when r_score >= 4 and f_score <= 2 then 'New & promising'
           when r_score <= 2 and f_score >= 3 then 'At risk'
           when r_score <= 2 and f_score <= 2 and m_score <= 2 then 'Hibernating'
           else 'Needs attention'
       end as segment
  from scored
with data;
create unique index if not exists customer_rfm_key on gold_store.customer_rfm (customer_id);

select ops.create_scoped_view('gold.sales_daily', 'gold_store.sales_daily', '{region,channel}');
select ops.create_scoped_view('gold.category_daily', 'gold_store.category_daily', '{region,channel,category}');
select ops.create_scoped_view('gold.product_daily', 'gold_store.product_daily', '{region,channel,category}');
select ops.create_scoped_view('gold.customer_rfm', 'gold_store.customer_rfm', '{region}');

-- Analyst-facing KPI views (one catalog entry each). Ratios are computed from summed parts.
create or replace view gold.kpi_hourly as
select (h.hour at time zone ops.business_tz()) as period, h.hour, h.region, h.channel,
       h.revenue, h.orders, h.units, h.revenue / nullif(h.orders, 0) as aov,
       h.customers, h.new_customers,
       (h.costed_revenue - h.cost) / nullif(h.costed_revenue, 0) as gross_margin,
       h.units_returned / nullif(h.units_sold, 0) as return_rate,
       h.gross_sales, h.returns_value, h.units_sold, h.units_returned, h.lines
  from gold.sales_hourly h;

create or replace view gold.kpi_daily as
select d.day as period, d.region, d.channel,
       d.revenue, d.orders, d.units, d.revenue / nullif(d.orders, 0) as aov, d.new_customers,
       (d.costed_revenue - d.cost) / nullif(d.costed_revenue, 0) as gross_margin,
       d.units_returned / nullif(d.units_sold, 0) as return_rate,
       d.gross_sales, d.returns_value, d.units_sold, d.units_returned, d.lines
  from gold.sales_daily d;

create or replace view gold.kpi_weekly as
select date_trunc('week', d.day)::date as period, d.region, d.channel,
       sum(d.revenue) as revenue, sum(d.orders) as orders, sum(d.units) as units,
       sum(d.revenue) / nullif(sum(d.orders), 0) as aov, sum(d.new_customers) as new_customers,
       (sum(d.costed_revenue) - sum(d.cost)) / nullif(sum(d.costed_revenue), 0) as gross_margin,
       sum(d.units_returned) / nullif(sum(d.units_sold), 0) as return_rate
  from gold.sales_daily d
 group by 1, 2, 3;

create or replace view gold.kpi_monthly as
select date_trunc('month', d.day)::date as period, d.region, d.channel,
       sum(d.revenue) as revenue, sum(d.orders) as orders, sum(d.units) as units,
       sum(d.revenue) / nullif(sum(d.orders), 0) as aov, sum(d.new_customers) as new_customers,
       (sum(d.costed_revenue) - sum(d.cost)) / nullif(sum(d.costed_revenue), 0) as gross_margin,
       sum(d.units_returned) / nullif(sum(d.units_sold), 0) as return_rate
  from gold.sales_daily d
 group by 1, 2, 3;

create or replace view gold.category_kpi_daily as
select c.day as period, c.region, c.channel, c.category,
       c.revenue, c.orders, c.units, c.revenue / nullif(c.orders, 0) as aov,
       (c.costed_revenue - c.cost) / nullif(c.costed_revenue, 0) as gross_margin,
       c.units_returned / nullif(c.units_sold, 0) as return_rate
  from gold.category_daily c;

create or replace view gold.rfm_segments as
select segment, count(*) as customers, sum(monetary) as revenue,
       avg(frequency)::float8 as avg_orders, avg(recency_days)::float8 as avg_recency_days
  from gold.customer_rfm
 group by segment;

-- Labelled anomalies injected by the demo generator and the simulator (ground truth for detection).
create table if not exists ops.anomaly_labels (
    label_id    text primary key,
    kind        text not null,
    description text not null,
    kpi         text not null,
    grain       text not null,
    dimension   text,
    dim_value   text,
    starts_at   timestamptz not null,
    ends_at     timestamptz not null,
    source      text not null default 'demo'
);

-- The same rows as gold.product_daily, computed live from silver for orders at or after p_from:
-- the query planner reads this for the days after the materialized view was last refreshed.
create or replace function gold.product_daily_since(p_from timestamptz)
returns setof gold_store.product_daily
language sql stable as
$$
select day, region, channel, category, product_id, max(product_name) as product_name,
       sum(v) as revenue, coalesce(sum(v) filter (where q > 0), 0) as gross_sales,
       coalesce(-sum(v) filter (where q < 0), 0) as returns_value,
       sum(q) as units, coalesce(sum(q) filter (where q > 0), 0) as units_sold,
       coalesce(-sum(q) filter (where q < 0), 0) as units_returned,
       count(distinct order_id) filter (where q > 0) as orders,
       coalesce(sum(v) filter (where c is not null), 0) as costed_revenue, coalesce(sum(c), 0) as cost,
       count(*) as lines
  from (select (o.ordered_at at time zone ops.business_tz())::date as day, o.region, o.channel, l.category,
               l.product_id, l.product_name, o.order_id, l.quantity::float8 as q,
               l.quantity::float8 * l.unit_price::float8 * (1 - l.discount::float8) as v,
               l.quantity::float8 * l.unit_cost::float8 as c
          from silver.orders o
          join silver.order_lines l on l.order_id = o.order_id
         where o.ordered_at >= p_from) x
 group by day, region, channel, category, product_id
$$;
