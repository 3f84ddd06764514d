-- Silver: a plain retail model that real exports map onto.
create table if not exists silver.orders (
    order_id    text primary key,
    ordered_at  timestamptz not null,
    customer_id text,                       -- null for guest checkouts
    region      text not null default 'Unknown',
    channel     text not null default 'Unknown',
    status      text not null default 'completed',
    has_sale    boolean not null default true,  -- at least one positive line (set by every writer)
    event_id    text unique,                -- set for streamed orders: exactly-once ingest
    source      text not null default 'unknown'
);
create index if not exists orders_ordered_at on silver.orders (ordered_at);
drop index if exists silver.orders_customer;  -- every index costs ingest throughput; lookups use ordered_at

-- Returns and cancellations are lines with a negative quantity.
create table if not exists silver.order_lines (
    order_id     text not null,
    line_no      integer not null,
    product_id   text not null default 'Unknown',
    product_name text not null default 'Unknown',
    category     text not null default 'Unknown',
    quantity     numeric(14, 3) not null,
    unit_price   numeric(14, 4) not null check (unit_price >= 0),
    discount     numeric(7, 6) not null default 0 check (discount >= 0 and discount <= 1),
    unit_cost    numeric(14, 4),            -- null when unknown: excluded from gross margin
    primary key (order_id, line_no)
);

create table if not exists silver.customers (
    customer_id    text primary key,
    first_order_at timestamptz not null,
    last_order_at  timestamptz not null,
    region         text not null default 'Unknown'
);

create table if not exists silver.products (
    product_id   text primary key,
    product_name text not null default 'Unknown',
    category     text not null default 'Unknown',
    list_price   numeric(14, 4),
    unit_cost    numeric(14, 4)
);
