-- Email outbox, alert notifications and job history (kpi_lib.mail, kpi_lib.alerts, kpi_lib.jobs).

-- Every email kpi_lib sends goes through this table first: a job or alert commits its message here
-- in the same transaction as its other writes, and a worker delivers it (kpi_lib.mail.deliver_pending).
-- SMTP down: the row stays pending with last_error and a later next_attempt_at (exponential backoff).
create table if not exists ops.outbox (
    id              bigserial primary key,
    dedup_key       text not null unique,          -- enqueueing the same key twice is a no-op
    kind            text not null default 'message', -- alert | report | job_failure | message
    sender          text,                          -- null: SMTP_FROM
    recipients      text[] not null check (cardinality(recipients) > 0),
    subject         text not null,
    body_text       text not null,
    body_html       text,
    provenance      jsonb not null default '{}'::jsonb,
    status          text not null default 'pending'
                    check (status in ('pending', 'sending', 'sent', 'dead')),
    attempts        integer not null default 0,
    max_attempts    integer not null default 10,
    next_attempt_at timestamptz not null default now(),
    last_error      text,
    claimed_by      text,                          -- host:pid of the worker sending it
    claimed_at      timestamptz,
    message_id      text not null,                 -- the Message-ID header, stable across retries
    created_at      timestamptz not null default now(),
    sent_at         timestamptz
);
create index if not exists outbox_due on ops.outbox (next_attempt_at) where status in ('pending', 'sending');
create index if not exists outbox_created on ops.outbox (created_at desc);

-- Inline images (referenced from the HTML as cid:<content_id>) and attachments of an outbox message.
-- The bytes live here, or in a file under $KPI_HOME named by `path` (relative to $KPI_HOME).
create table if not exists ops.outbox_parts (
    id           bigserial primary key,
    outbox_id    bigint not null references ops.outbox (id) on delete cascade,
    position     integer not null,
    disposition  text not null check (disposition in ('inline', 'attachment')),
    filename     text not null,
    content_type text not null,
    content_id   text,                             -- inline parts only
    data         bytea,
    path         text,
    check (data is not null or path is not null),
    check (disposition = 'attachment' or content_id is not null),
    unique (outbox_id, position)
);

-- Which incident was emailed to whom. An incident is emailed to a recipient at most once; a newer
-- incident on the same series waits until the notified one is resolved or the route's cooldown
-- has passed (re-arm).
create table if not exists ops.alert_notifications (
    id          bigserial primary key,
    anomaly_id  bigint not null references ops.anomalies (id) on delete cascade,
    series_key  text not null,
    recipient   text not null,
    outbox_id   bigint references ops.outbox (id) on delete set null,
    notified_at timestamptz not null default now(),
    unique (anomaly_id, recipient)
);
create index if not exists alert_notifications_series
    on ops.alert_notifications (series_key, recipient, notified_at desc);

-- One row per papermill job run (kpi_lib.jobs.run_job), scheduled or manual.
create table if not exists ops.job_runs (
    id             bigserial primary key,
    job            text not null,
    status         text not null default 'running'
                   check (status in ('running', 'succeeded', 'failed', 'skipped')),
    trigger        text not null default 'manual' check (trigger in ('scheduled', 'manual')),
    scheduled_for  timestamptz,                    -- the cron tick a scheduled run belongs to
    started_at     timestamptz not null default clock_timestamp(),
    finished_at    timestamptz,
    duration_s     float8,
    parameters     jsonb not null default '{}'::jsonb,
    error          text,
    traceback      text,
    notebook_path  text,                           -- the executed notebook (partial on failure)
    html_path      text,                           -- its HTML rendering without code cells
    host           text not null,
    pid            integer not null
);
create index if not exists job_runs_job on ops.job_runs (job, started_at desc);
-- Several schedulers may run: the first one to claim a tick runs it, the others leave it.
create unique index if not exists job_runs_tick on ops.job_runs (job, scheduled_for)
    where scheduled_for is not null;
