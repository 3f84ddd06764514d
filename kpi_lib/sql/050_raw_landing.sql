-- Ingest in two steps, the fast path of issue 17 (stream.land, stream.move): a lander acknowledges
-- each batch once its raw events are COPY'd here, in one transaction, unvalidated; the mover later
-- validates them set-based, writes silver and gold and marks the landings moved, in one transaction.
--
-- One row per landed batch. The mover sets moved_at (and what it found) in the same transaction that
-- writes silver, gold and the rejects: that transaction is the claim, so a crash anywhere either
-- moved a landing once or left it waiting.
create table if not exists bronze.landings (
    land_id    bigserial primary key,
    source     text not null,
    landed_at  timestamptz not null default now(),  -- "now" of the validation (ordered_at in the future?)
    events     integer not null,
    moved_at   timestamptz,
    version    bigint,         -- the data version of the move (null: nothing changed)
    loaded     integer,        -- new orders in silver
    duplicates integer,        -- events seen before (same event id): no effect
    rejected   integer         -- in bronze.rejects with the reason
);
create index if not exists landings_waiting on bronze.landings (land_id) where moved_at is null;

-- The raw events, exactly as received (text: a malformed one must not fail its batch). Append-only:
-- this is the bronze record of the fast path, as bronze.events is of the one-transaction path.
create table if not exists bronze.landed_events (
    land_id bigint not null,
    seq     integer not null,  -- order within the landing: the first of two copies of an order wins
    payload text not null
);
create unique index if not exists landed_events_key on bronze.landed_events (land_id, seq);

-- Validation helpers (validate.py's rules, in SQL). Inlined by the planner: no per-row call cost.

-- A JSON value as text the way validate._text reads it: trimmed, "12.0" -> "12", empty -> default.
create or replace function bronze.t_text(t text, dflt text) returns text
language sql immutable parallel safe as
$$
select case when t is null or t = '' then dflt
            when t like '%.0' and t ~ '^-?[0-9]+\.0$' then left(t, -2)
            else t end
$$;

create or replace function bronze.j_text(v jsonb, dflt text) returns text
language sql immutable parallel safe as
$$
select case when v is null or jsonb_typeof(v) = 'null' then dflt
            else bronze.t_text(btrim(v #>> '{}', E' \t\n\r\f\v'), dflt) end
$$;

-- Whether text is valid input for a type, and why not: pg_input_is_valid / pg_input_error_info
-- on PostgreSQL 16 and later; on older servers (a bring-your-own one) the same, row by row.
do $do$
begin
    if current_setting('server_version_num')::int >= 160000 then
        execute $f$
            create or replace function bronze.is_valid(t text, typ text) returns boolean
            language sql stable parallel safe as
            'select pg_input_is_valid(t, typ)'
        $f$;
        execute $f$
            create or replace function bronze.input_error(t text, typ text) returns text
            language sql stable parallel safe as
            'select message || coalesce('' ('' || detail || '')'', '''') from pg_input_error_info(t, typ)'
        $f$;
    else
        execute $f$
            create or replace function bronze.input_error(t text, typ text) returns text
            language plpgsql stable as $b$
            begin
                execute format('select %L::%s', t, typ);
                return null;
            exception when others then
                return sqlerrm;
            end $b$
        $f$;
        execute $f$
            create or replace function bronze.is_valid(t text, typ text) returns boolean
            language sql stable as 'select bronze.input_error(t, typ) is null'
        $f$;
    end if;
end
$do$;

-- Number text (validate._NUM's grammar, trimmed) as a float8, or null when beyond float8 (not finite).
-- Below float8's smallest it is 0, as Python's float() reads it (1e-400).
create or replace function bronze.num_text(t text) returns float8
language sql stable parallel safe as
$$
select case when bronze.is_valid(t, 'float8') then t::float8
            when bronze.is_valid(t, 'numeric') then case when abs(t::numeric) < 1 then 0::float8 end
            when t ~ '[eE]-' then 0::float8  -- an exponent beyond even numeric's range: its sign says
       end
$$;

-- A JSON value as a finite float8, or null when it is not one (booleans, NaN, words, objects, 1e400).
-- Strings must look like numbers in ASCII (no "1_000"), as validate._num requires.
create or replace function bronze.j_num(v jsonb) returns float8
language sql stable parallel safe as
$$
select case jsonb_typeof(v)
         when 'number' then bronze.num_text(v #>> '{}')
         when 'string' then
              case when btrim(v #>> '{}', E' \t\n\r\f\v') ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$'
                   then bronze.num_text(btrim(v #>> '{}', E' \t\n\r\f\v')) end
       end
$$;

-- A JSON value written like Python's repr() in the reasons validate.py gives ('soon', None, True).
create or replace function bronze.j_repr(v jsonb) returns text
language sql stable parallel safe as
$$
select case jsonb_typeof(v)
         when 'string' then '''' || (v #>> '{}') || ''''
         when 'null' then 'None'
         when 'boolean' then initcap(v::text)
         when 'number' then case when bronze.num_text(v #>> '{}') is null  -- beyond float8: Python reads inf
                                      then case when v::text like '-%' then '-inf' else 'inf' end
                                 when bronze.num_text(v #>> '{}') = 0 and (v #>> '{}')::numeric <> 0
                                      then case when v::text like '-%' then '-0.0' else '0.0' end
                                 else v::text end
         else v::text
       end
$$;


-- Why a value is not a number, worded as validate._num words it.
create or replace function bronze.j_num_reason(v jsonb) returns text
language sql stable parallel safe as
$$
select bronze.j_repr(v) ||
       case when jsonb_typeof(v) = 'number'
                 or (jsonb_typeof(v) = 'string' and (lower(btrim(v #>> '{}', E' \t\n\r\f\v')) in
                     ('nan', '+nan', '-nan', 'inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity')
                     or btrim(v #>> '{}', E' \t\n\r\f\v') ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$'))
            then ' is not a finite number' else ' is not a number' end
$$;
