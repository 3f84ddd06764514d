-- Schemas, settings and the data version every cache key and notification is built on.
create schema if not exists bronze;
create schema if not exists silver;
create schema if not exists gold;
create schema if not exists ops;

-- Warehouse-wide settings written by `kpi init` (e.g. the business time zone).
create table if not exists ops.settings (
    key   text primary key,
    value text not null
);

-- The business time zone decides hour and day boundaries in gold. kpi_lib.warehouse re-creates
-- this function with the configured zone as a literal (KPI_TIMEZONE), so the planner folds it
-- into a constant: a per-row time zone lookup made gold rebuilds twice as slow.
do $$
begin
    if to_regprocedure('ops.business_tz()') is null then
        create function ops.business_tz() returns text language sql immutable parallel safe
        as 'select ''UTC''::text';
    end if;
end
$$;

-- One row per committed change to the data (ingest micro-batch, file load, demo load, rebuild).
-- `version` is the data version; touched_from/touched_to bound the event times it changed, so
-- cached answers about periods it did not touch stay valid.
create table if not exists ops.batches (
    version      bigserial primary key,
    kind         text not null,
    source       text,
    touched_from timestamptz,
    touched_to   timestamptz,
    events       integer not null default 0,
    rejected     integer not null default 0,
    committed_at timestamptz not null default clock_timestamp()
);

-- Record a change and tell every listener. Call it last in the transaction that changed the data:
-- the advisory lock serialises writers so versions become visible in order.
create or replace function ops.bump_version(
    p_kind text, p_source text, p_from timestamptz, p_to timestamptz,
    p_events integer default 0, p_rejected integer default 0
) returns bigint
language plpgsql as
$$
declare
    v bigint;
    wm timestamptz;
begin
    perform pg_advisory_xact_lock(hashtext('kpi_lib.data_version'));
    insert into ops.batches (kind, source, touched_from, touched_to, events, rejected)
    values (p_kind, p_source, p_from, p_to, p_events, p_rejected)
    returning version into v;
    select max(ordered_at) into wm from silver.orders
     where ordered_at >= coalesce(p_to, 'infinity'::timestamptz) - interval '1 hour';
    perform pg_notify('kpi_changed', json_build_object(
        'version', v, 'kind', p_kind, 'source', p_source,
        'touched_from', p_from, 'touched_to', p_to, 'watermark', coalesce(wm, p_to),
        'events', p_events, 'rejected', p_rejected)::text);
    return v;
end
$$;

-- Which data version each materialized view reflects (the cache's L3 freshness).
create table if not exists ops.mv_state (
    mv_name           text primary key,
    refreshed_version bigint not null,
    refreshed_at      timestamptz not null default now(),
    duration_ms       integer
);

-- Cache hit/miss counters, flushed every few seconds by each process that answers queries,
-- so `kpi status` can show them for dashboards and jobs running elsewhere.
create table if not exists ops.cache_stats (
    process    text primary key,          -- host:pid
    started_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    hits       jsonb not null,
    misses     jsonb not null
);
