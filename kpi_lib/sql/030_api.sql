-- Personal API tokens (issue 16): programs sign in with a bearer token made by
-- `kpi users token add LOGIN --name NAME`. Only the token's SHA-256 is kept; revoking sets revoked_at.
create table if not exists ops.api_tokens (
    id           bigserial primary key,
    login        text not null,
    name         text not null,
    token_hash   text not null unique,
    prefix       text not null,                 -- the token's first characters, to tell tokens apart
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
create unique index if not exists api_tokens_live_name on ops.api_tokens (login, name) where revoked_at is null;

-- Live push: a new incident is announced at once, so /api/live can send `anomaly_alert`
-- without polling (one LISTEN per API process).
create or replace function ops.announce_incident() returns trigger language plpgsql as $$
begin
    perform pg_notify('kpi_incident', json_build_object('id', new.id, 'kpi', new.kpi)::text);
    return new;
end $$;
drop trigger if exists announce_incident on ops.anomalies;
create trigger announce_incident after insert on ops.anomalies
    for each row execute function ops.announce_incident();
