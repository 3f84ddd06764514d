-- Who did what, when: sign-ins, acknowledgements, exports, user changes.
create table if not exists ops.audit_log (
    id      bigserial primary key,
    at      timestamptz not null default now(),
    actor   text not null,
    action  text not null,
    target  text,
    details jsonb not null default '{}'
);
create index if not exists audit_log_at on ops.audit_log (at desc);
