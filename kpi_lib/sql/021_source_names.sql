-- The file column names `kpi load --map region=Country` (or the automatic mapping) used for a
-- dimension, so Ask understands "by country" on that data.
create table if not exists ops.source_names (
    source_name text primary key,      -- lower-case, as in the file header
    dimension   text not null,
    source      text,                  -- the load that recorded it, e.g. file:online_retail.csv
    recorded_at timestamptz not null default now()
);
