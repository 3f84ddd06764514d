-- Every question asked of Ask (kpi_lib.ask): who asked, how it was read, and what came back.
-- A masked answer keeps no value here either.
create table if not exists ops.questions (
    id          bigserial primary key,
    asked_at    timestamptz not null default now(),
    actor       text not null,
    question    text not null,
    status      text not null check (status in ('answer', 'decline', 'clarify')),
    kpi         text,
    spec        jsonb,                 -- the reading that ran (kpi, grain, start, end, by, where, ...)
    reason      text,                  -- why it was declined, or what to clarify
    value       float8,                -- the number given (null when masked or none)
    as_of       timestamp,             -- business time the relative dates counted from
    data_version bigint,
    surface     text                   -- cli, notebook, executive, landing
);
create index if not exists questions_asked_at on ops.questions (asked_at desc);
