-- Bronze: what we received, as we received it. Append-only.
create table if not exists bronze.events (
    id          bigserial primary key,
    event_id    text not null,
    source      text not null,
    received_at timestamptz not null default now(),
    payload     json not null             -- exactly the text received (json validates, keeps it as is)
);
create index if not exists events_event_id on bronze.events (event_id);

-- Everything refused, with the reason. Nothing is dropped silently.
create table if not exists bronze.rejects (
    id          bigserial primary key,
    rejected_at timestamptz not null default now(),
    source      text not null,
    event_id    text,
    row_number  bigint,
    row_data    text not null,
    reason      text not null
);
create index if not exists rejects_source on bronze.rejects (source, rejected_at);

-- One row per file brought in with `kpi load`.
create table if not exists bronze.file_loads (
    id         bigserial primary key,
    loaded_at  timestamptz not null default now(),
    path       text not null,
    sha256     text not null,
    kind       text not null,
    mapping    jsonb not null,
    rows_in    bigint not null,
    loaded     bigint not null,
    rejected   bigint not null,
    version    bigint
);
