-- Alert rules that business users write on the "Alert rules" page (kpi_lib.thresholds).
-- ops.alert_rules holds each rule's current version; ops.alert_rule_versions keeps every saved
-- version (append-only), so an edit never loses what the rule said before. Who changed what is
-- also in ops.audit_log, with the before and after.
create table if not exists ops.alert_rules (
    id          bigserial primary key,
    name        text not null unique,
    kpi         text not null,
    version     integer not null default 1,
    spec        jsonb not null,                 -- the rule as kpi_lib.thresholds.Rule.to_dict() says it
    deleted     boolean not null default false,
    created_by  text not null,
    created_at  timestamptz not null default now(),
    updated_by  text not null,
    updated_at  timestamptz not null default now()
);

create table if not exists ops.alert_rule_versions (
    id        bigserial primary key,
    rule_id   bigint not null references ops.alert_rules (id),
    version   integer not null,
    spec      jsonb not null,
    deleted   boolean not null default false,
    saved_by  text not null,
    saved_at  timestamptz not null default now(),
    change    text not null,                    -- created | edited | snoozed | deleted
    unique (rule_id, version)
);

-- Snooze one incident (or hold a rule's incident through its quiet hours): no e-mail before this time.
alter table ops.anomalies add column if not exists snoozed_until timestamptz;
