-- Incidents found by the anomaly rules (kpi_lib.anomaly.scan), one row per incident per series.
-- A re-scan updates the row it found before (same series, same start); it never duplicates it.
create table if not exists ops.anomalies (
    id              bigserial primary key,
    series_key      text not null,               -- kpi|grain|dimension=value, e.g. revenue|hour|region=Europe
    kpi             text not null,
    grain           text not null,
    dimension       text,                        -- null: the KPI overall
    dim_value       text,
    started_at      timestamptz not null,        -- where it began (a window step alarms a period or more later)
    peak_at         timestamptz,
    ended_at        timestamptz,                 -- null while ongoing
    value           float8,                      -- at the peak
    expected        float8,
    lower_bound     float8,
    upper_bound     float8,
    deviation_pct   float8,
    score           float8,
    severity        text not null,               -- low | medium | high
    rule            text,                        -- the rule step that fired
    explanation     text not null,               -- a plain-English sentence
    drivers         text,                        -- which dimension values explain it
    status          text not null default 'open' check (status in ('open', 'acknowledged', 'resolved')),
    detected_at     timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    acknowledged_by text,
    acknowledged_at timestamptz,
    resolved_by     text,
    resolved_at     timestamptz,
    comment         text,
    unique (series_key, started_at)
);
create index if not exists anomalies_open on ops.anomalies (status, started_at desc);
create index if not exists anomalies_kpi on ops.anomalies (kpi, started_at desc);

-- Who did what to an incident, and when (acknowledge, resolve, comment, reopen).
create table if not exists ops.anomaly_events (
    id          bigserial primary key,
    anomaly_id  bigint not null references ops.anomalies (id) on delete cascade,
    at          timestamptz not null default now(),
    actor       text not null,
    action      text not null,
    comment     text
);
create index if not exists anomaly_events_anomaly on ops.anomaly_events (anomaly_id, at);
