-- Real-user monitoring (issue 16): each dashboard page posts its own navigation timing to
-- POST /api/rum once it has loaded. The Operations page and the health score read it.
create table if not exists ops.page_loads (
    id         bigserial primary key,
    at         timestamptz not null default now(),
    login      text not null,
    page       text not null,       -- the path, e.g. /panel/executive
    ttfb_ms    float8,              -- navigation -> first byte of the page
    dom_ms     float8,              -- navigation -> DOMContentLoaded
    load_ms    float8 not null,     -- navigation -> load event end
    painted_ms float8               -- navigation -> first contentful paint (the tiles are in the HTML)
);
-- navigation -> the page a person can use (a Panel page's documents all drawn, a Voila page's
-- widgets drawn: static/rum.js); null on other pages and for a page left before it was usable
alter table ops.page_loads add column if not exists usable_ms float8;
create index if not exists page_loads_at on ops.page_loads (at desc);
