-- Row scopes (kpi_lib.scope): a reader sees only the rows its scope allows, enforced here.
--
-- Readers are the login roles in kpi_reader (kpi_lib's dashboards, Ask, API and scoped notebooks
-- connect as one). Each read transaction carries the reader's scope in the setting `kpi.scope`:
-- hex(JSON) + '.' + HMAC-SHA256 with a key only the owner can read, so a reader cannot widen it.
-- No valid scope: no rows. The owner (ingest, gold, jobs) is not a reader and reads every row.
-- The functions are parallel safe (the scope setting reaches parallel workers): a scoped query
-- keeps the parallel plans the owner gets (distinct customers ran 2.3x slower without them).

create table if not exists ops.scope_key (
    id        integer primary key default 1 check (id = 1),
    inner_pad bytea not null,  -- HMAC key xor ipad / opad: sha256 is built in, hmac() needs pgcrypto
    outer_pad bytea not null
);
revoke all on ops.scope_key from public;

create or replace function ops.is_reader() returns boolean
language sql stable parallel safe security definer set search_path = pg_catalog as
$$
select exists (select 1 from pg_auth_members  -- regrole lookups use the role cache: no joins
                where roleid = to_regrole('kpi_reader') and member = to_regrole(session_user))
$$;

-- The values of p_dim the current reader may see; null: not limited (or not a reader); '{}': none.
create or replace function ops.scope_list(p_dim text) returns text[]
language plpgsql stable parallel safe security definer set search_path = pg_catalog as
$$
declare
    tok  text := current_setting('kpi.scope', true);
    body text;
    k    record;
    doc  jsonb;
begin
    if not ops.is_reader() then
        return null;
    end if;
    if tok is null or strpos(tok, '.') = 0 then
        return '{}';
    end if;
    body := split_part(tok, '.', 1);
    select inner_pad, outer_pad into k from ops.scope_key where id = 1;
    if k is null or encode(sha256(k.outer_pad || sha256(k.inner_pad || convert_to(body, 'UTF8'))), 'hex')
                    <> split_part(tok, '.', 2) then
        return '{}';
    end if;
    doc := convert_from(decode(body, 'hex'), 'UTF8')::jsonb;
    if doc ? '*none' then
        return '{}';
    end if;
    if not doc ? p_dim then
        return null;
    end if;
    return array(select jsonb_array_elements_text(doc -> p_dim));
end
$$;

-- The row test for a relation whose columns include p_dims (as alias t); a scope on a dimension the
-- relation lacks hides every row (fail closed: it cannot tell which rows are inside).
create or replace function ops.scope_predicate(p_dims text[]) returns text
language sql immutable as
$$
select string_agg(
    case when d = any(p_dims)
         then format('((select ops.scope_list(%1$L)) is null or t.%1$I = any((select ops.scope_list(%1$L))::text[]))', d)
         else format('(select ops.scope_list(%L)) is null', d) end,
    ' and ' order by o)
  from unnest(array['region', 'channel', 'category']) with ordinality u(d, o)
$$;

-- A security-barrier view named p_view over p_source, showing each reader only its rows.
create or replace function ops.create_scoped_view(p_view text, p_source text, p_dims text[]) returns void
language plpgsql as
$$
begin
    execute format('create or replace view %s with (security_barrier = true) as select * from %s t where %s',
                   p_view, p_source, ops.scope_predicate(p_dims));
end
$$;
