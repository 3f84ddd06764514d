-- The audit log is append-only and tamper-evident.
--
-- Rows can only be inserted: updates, deletes and truncation raise, for every role; readers and the
-- public have no rights on it at all. Each row carries the hash of the row before it (in `seq`
-- order, assigned under a lock) and its own: sha256(prev_hash | its fields). `kpi audit verify`
-- recomputes the chain, so an edited, removed or inserted row shows as a broken link. (A database
-- superuser can switch triggers off; the chain still shows what they changed unless they rewrite
-- every later row, and `kpi audit verify` prints the head hash to keep elsewhere.)
alter table ops.audit_log add column if not exists seq bigint;
alter table ops.audit_log add column if not exists prev_hash text;
alter table ops.audit_log add column if not exists hash text;
create unique index if not exists audit_log_seq on ops.audit_log (seq);
create index if not exists audit_log_actor on ops.audit_log (actor, at desc);

create or replace function ops.audit_row_text(p_seq bigint, p_at timestamptz, p_actor text, p_action text,
                                              p_target text, p_details jsonb) returns text
language sql immutable as
$$
select concat_ws('|', p_seq::text, to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                 p_actor, p_action, coalesce(p_target, ''), coalesce(p_details, '{}'::jsonb)::text)
$$;

create or replace function ops.audit_link(p_prev text, p_row text) returns text
language sql immutable as
$$
select encode(sha256(convert_to(p_prev || '|' || p_row, 'UTF8')), 'hex')
$$;

-- rows written before the chain existed: chain them once, in id order
do $$
declare r record; prev text := ''; n bigint := 0;
begin
    if exists (select 1 from ops.audit_log where hash is null) then
        for r in select * from ops.audit_log order by id loop
            n := n + 1;
            update ops.audit_log set seq = n, prev_hash = prev,
                   hash = ops.audit_link(prev, ops.audit_row_text(n, r.at, r.actor, r.action, r.target, r.details))
             where id = r.id
            returning hash into prev;
        end loop;
    end if;
end
$$;

create or replace function ops.audit_log_chain() returns trigger
language plpgsql as
$$
declare last record;
begin
    perform pg_advisory_xact_lock(hashtext('kpi_lib.audit_log'));  -- one link at a time
    select seq, hash into last from ops.audit_log order by seq desc limit 1;
    new.seq := coalesce(last.seq, 0) + 1;
    new.prev_hash := coalesce(last.hash, '');
    new.hash := ops.audit_link(new.prev_hash,
                               ops.audit_row_text(new.seq, new.at, new.actor, new.action, new.target, new.details));
    return new;
end
$$;

create or replace function ops.audit_log_append_only() returns trigger
language plpgsql as
$$
begin
    raise exception 'ops.audit_log is append-only: % is not allowed', tg_op;
end
$$;

drop trigger if exists audit_log_chain on ops.audit_log;
create trigger audit_log_chain before insert on ops.audit_log for each row execute function ops.audit_log_chain();
drop trigger if exists audit_log_no_change on ops.audit_log;
create trigger audit_log_no_change before update or delete on ops.audit_log
    for each row execute function ops.audit_log_append_only();
drop trigger if exists audit_log_no_truncate on ops.audit_log;
create trigger audit_log_no_truncate before truncate on ops.audit_log
    for each statement execute function ops.audit_log_append_only();
revoke all on ops.audit_log from public;
