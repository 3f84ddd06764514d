-- Sign-in sessions, kept server-side so signing out, a password change or an admin ends them at once.
-- The browser holds a random token (in a signed cookie); only its SHA-256 is stored here.
create table if not exists ops.sessions (
    token_hash   text primary key,
    login        text not null,
    created_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at   timestamptz not null,
    revoked_at   timestamptz,
    revoked_why  text,
    ip           text,
    user_agent   text
);
create index if not exists sessions_login on ops.sessions (login) where revoked_at is null;
