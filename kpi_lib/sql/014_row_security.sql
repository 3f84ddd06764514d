-- Least privilege and row scopes for readers (see 004a_row_scope.sql).
--
-- kpi_reader is the group of login roles that read for people (dashboards, Ask, the API and scoped
-- notebooks); kpi_lib creates one login role per database and keeps its password in
-- ops.reader_credentials, which only the owner can read. Readers may SELECT gold and silver, and
-- the incidents; nothing else, and never the gold_store behind the scoped views.
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'kpi_reader') then
        create role kpi_reader nologin;
    end if;
exception when insufficient_privilege then
    raise exception 'kpi_lib needs to create the role kpi_reader (row scopes): run as a user with CREATEROLE, or have an administrator run `create role kpi_reader nologin;` once';
end
$$;

create table if not exists ops.reader_credentials (
    role_name text primary key,
    password  text not null
);
revoke all on ops.reader_credentials from public;

-- Row-level security on the tables readers query; the owner bypasses it (it is not forced).
create or replace function ops.secure_table(p_table regclass, p_dims text[], p_extra text default null)
returns void language plpgsql as
$$
begin
    execute format('alter table %s enable row level security', p_table);
    execute format('drop policy if exists reader_scope on %s', p_table);
    execute format('create policy reader_scope on %s as permissive for select to kpi_reader using (%s%s)',
                   p_table,
                   replace(ops.scope_predicate(p_dims), 't.', ''),
                   coalesce(' and ' || p_extra, ''));
end
$$;

select ops.secure_table('gold.sales_hourly', '{region,channel}');
select ops.secure_table('gold.category_hourly', '{region,channel,category}');
select ops.secure_table('gold.customer_hourly', '{region,channel}');
select ops.secure_table('gold.sales_minute', '{region,channel}');
select ops.secure_table('silver.orders', '{region,channel}');
select ops.secure_table('silver.customers', '{region}');
-- a line carries its category; its region and channel are its order's (RLS applies there too)
select ops.secure_table('silver.order_lines', '{category}');
drop policy if exists reader_scope on silver.order_lines;
create policy reader_scope on silver.order_lines as permissive for select to kpi_reader using (
    ((select ops.scope_list('category')) is null or category = any((select ops.scope_list('category'))::text[]))
    and (((select ops.scope_list('region')) is null and (select ops.scope_list('channel')) is null)
         or exists (select 1 from silver.orders o where o.order_id = order_lines.order_id)));

-- An incident on one dimension's value belongs to that value's rows; one on a KPI as a whole, or on
-- a dimension the scope does not cover, shows everyone's numbers: for unscoped readers only.
alter table ops.anomalies enable row level security;
drop policy if exists reader_scope on ops.anomalies;
create policy reader_scope on ops.anomalies as permissive for select to kpi_reader using (
    ((select ops.scope_list('region')) is null
        or (dimension = 'region' and dim_value = any((select ops.scope_list('region'))::text[])))
    and ((select ops.scope_list('channel')) is null
        or (dimension = 'channel' and dim_value = any((select ops.scope_list('channel'))::text[])))
    and ((select ops.scope_list('category')) is null
        or (dimension = 'category' and dim_value = any((select ops.scope_list('category'))::text[]))));

grant usage on schema gold, silver, ops to kpi_reader;
grant select on all tables in schema gold to kpi_reader;
grant select on silver.orders, silver.order_lines, silver.customers, silver.products to kpi_reader;
grant select on ops.anomalies, ops.anomaly_labels, ops.batches, ops.mv_state, ops.settings to kpi_reader;
