-- Ingest in two steps (issue 17): a lander commits each batch here, acknowledged, in one COPY
-- transaction; the mover later takes every landing waiting, in one transaction, to silver and gold.
--
-- One row per landed batch. The mover marks it moved (moved_at, what it found) in the same
-- transaction that writes silver and gold and deletes the batch's pending rows: that transaction
-- is the claim, so a crash anywhere either moved a landing once or left it waiting.
create table if not exists bronze.landings (
    land_id    bigserial primary key,
    source     text not null,
    landed_at  timestamptz not null default clock_timestamp(),
    events     integer not null,          -- valid orders waiting in bronze.pending_*
    rejected   integer not null,          -- refused by validation (already in bronze.rejects)
    duplicates integer not null,          -- the same event twice within the batch
    moved_at   timestamptz,
    version    bigint,                    -- the data version of the move (null: nothing changed)
    loaded     integer,                   -- new orders in silver
    conflicts  integer,                   -- an order id seen before under another event id
    reasons    text[]                     -- the conflicts' reasons (the first few)
);
create index if not exists landings_waiting on bronze.landings (land_id) where moved_at is null;

-- The landed orders and lines, validated and shaped like silver, until the mover takes them.
create table if not exists bronze.pending_orders (
    land_id     bigint not null,
    order_id    text not null,
    ordered_at  timestamptz not null,
    customer_id text,
    region      text not null,
    channel     text not null,
    status      text not null,
    has_sale    boolean not null,
    event_id    text,
    source      text not null
);
create index if not exists pending_orders_land on bronze.pending_orders (land_id);

create table if not exists bronze.pending_lines (
    land_id      bigint not null,
    order_id     text not null,
    line_no      integer not null,
    product_id   text not null,
    product_name text not null,
    category     text not null,
    quantity     numeric(14, 3) not null,
    unit_price   numeric(14, 4) not null,
    discount     numeric(7, 6) not null,
    unit_cost    numeric(14, 4)
);
create index if not exists pending_lines_land on bronze.pending_lines (land_id);

-- Rows come and go all day: vacuum them often so the queue stays small on disk.
alter table bronze.pending_orders set (autovacuum_vacuum_scale_factor = 0.01,
                                       autovacuum_vacuum_insert_scale_factor = 0.01);
alter table bronze.pending_lines set (autovacuum_vacuum_scale_factor = 0.01,
                                      autovacuum_vacuum_insert_scale_factor = 0.01);
