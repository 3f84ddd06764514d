"""Bulk loading into silver with COPY: the demo business and users' own order-line files.

Both paths end the same way: the hourly gold rollups are recomputed for the loaded time range, the
materialized views are refreshed and the data version is bumped, all in one transaction. A load
either lands completely or not at all.

Files (``kpi load lines FILE``) are one row per order line, the most common export. Columns are
matched to our fields by ``--map FIELD=COLUMN`` or by common names (InvoiceNo, Quantity, ...).
Rows that cannot be used go to ``bronze.rejects`` with the reason; loaded + rejected = rows read.
Loading a file again replaces the orders it contains, so re-running a load is safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from . import catalog, gold, warehouse
from .config import settings
from .errors import LoadError
from .exports import read_table, resolve_day_first, to_number
from .schema import LINE_COLUMNS, ORDER_COLUMNS, PRODUCT_COLUMNS

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]  # (done, total, what)


def _ts_text(values: pd.Series) -> np.ndarray:
    """ISO-8601 UTC text with microseconds (numpy formats ~20x faster than strftime)."""
    utc = pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = np.char.add(np.datetime_as_string(utc, unit="us"), "Z").astype(object)
    text[pd.isna(values).to_numpy()] = None
    return text


def copy_frame(conn: psycopg.Connection, table: str, df: pd.DataFrame, columns: list[str]) -> int:
    """COPY a DataFrame into ``table`` as CSV (written by Arrow). None/NaN arrive as NULL."""
    if df.empty:
        return 0
    data = {}
    for col in columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or s.dtype.kind == "M":
            data[col] = pa.array(_ts_text(s), type=pa.string())
        else:
            arr = pa.array(s.to_numpy(), from_pandas=True)
            data[col] = arr.cast(pa.string()) if pa.types.is_null(arr.type) else arr
    sink = pa.BufferOutputStream()
    pacsv.write_csv(pa.table(data), sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    cols = ", ".join(columns)
    with conn.cursor().copy(f"copy {table} ({cols}) from stdin with (format csv)") as cp:
        cp.write(sink.getvalue().to_pybytes())
    return len(df)


def has_sale(orders: pd.DataFrame, lines: pd.DataFrame) -> np.ndarray:
    """For each order: does it have at least one positive line? (silver.orders.has_sale)"""
    positive = lines.loc[lines["quantity"] > 0, "order_id"].unique()
    return orders["order_id"].isin(positive).to_numpy()


# The keys and indexes of silver.orders and silver.order_lines (as in sql/003_silver.sql).
BARE_SILVER = (
    "alter table silver.order_lines drop constraint if exists order_lines_pkey",
    "alter table silver.orders drop constraint if exists orders_pkey",
    "alter table silver.orders drop constraint if exists orders_event_id_key",
    "drop index if exists silver.orders_ordered_at",
)
INDEXED_SILVER = (
    "alter table silver.order_lines add primary key (order_id, line_no)",
    "alter table silver.orders add primary key (order_id)",
    "alter table silver.orders add constraint orders_event_id_key unique (event_id)",
    "create index orders_ordered_at on silver.orders (ordered_at)",
)


# --- the demo business --------------------------------------------------------------------------


@dataclass
class DemoSummary:
    """What loading a generated business did: counts, its time span and seconds per step."""

    orders: int = 0
    lines: int = 0
    customers: int = 0
    products: int = 0
    anomalies: int = 0
    start: datetime | None = None
    end: datetime | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def lines_per_second(self) -> float:
        s = self.seconds.get("copy", 0.0)
        return self.lines / s if s else float("nan")


#: who writes the demo business: its generator, and the live simulator that continues it
DEMO_SOURCES = ("demo", "simulator")


def foreign_orders(conn: psycopg.Connection) -> int:
    """Orders a demo reload would destroy that are not the demo's: a user's file, ingested events.
    The simulator's are the demo's (``make demo`` serves with it), so a second ``make demo`` just
    starts over."""
    return conn.execute(
        "select count(*) from silver.orders where source <> all(%s)", [list(DEMO_SOURCES)]
    ).fetchone()[0]


def load_business(biz, progress: ProgressFn | None = None, force: bool = False) -> DemoSummary:
    """Replace all silver data with a generated business ``biz`` (anything with ``history()``,
    ``products``, ``labels()`` and its span, as :class:`kpi_lib.demo.Business` has)."""
    gold.init()
    summary = DemoSummary(start=biz.start, end=biz.end)
    timings = summary.seconds
    t_all = time.perf_counter()
    with warehouse.connect_raw() as conn:
        foreign = foreign_orders(conn)
        if foreign and not force:
            raise LoadError(
                f"The warehouse holds {foreign:,} orders that did not come from the demo. "
                "`kpi demo` replaces everything; run it with --force if that is what you want, "
                "or point KPI_HOME / DATABASE_URL at another warehouse."
            )
        conn.execute(
            "truncate silver.orders, silver.order_lines, silver.customers, silver.products, "
            "gold.sales_hourly, gold.category_hourly, gold.customer_hourly, gold.sales_minute"
        )
        conn.execute("delete from ops.anomaly_labels where source = any(%s)", [list(DEMO_SOURCES)])
        # incidents describe the data just replaced (their acks and e-mails go with them)
        conn.execute("delete from ops.anomalies")
        conn.execute(
            "insert into ops.settings (key, value) values ('demo', %s) on conflict (key) do update set value = excluded.value",
            [json.dumps({"lines": biz.lines, "days": biz.days, "seed": biz.seed})],
        )
        # Bulk COPY is 2-3x faster into bare tables: drop the keys and indexes, rebuild them after.
        for stmt in BARE_SILVER:
            conn.execute(stmt)
        copy_s = 0.0
        done = 0
        gen_t = time.perf_counter()
        for orders, lines in biz.history():
            t0 = time.perf_counter()
            orders = orders.assign(source="demo", has_sale=has_sale(orders, lines))
            copy_frame(conn, "silver.orders", orders, ORDER_COLUMNS)
            copy_frame(conn, "silver.order_lines", lines, LINE_COLUMNS)
            copy_s += time.perf_counter() - t0
            done += len(lines)
            summary.orders += len(orders)
            summary.lines += len(lines)
            if progress:
                progress(min(done, biz.lines), biz.lines, "order lines")
        timings["generate"] = time.perf_counter() - gen_t - copy_s
        t0 = time.perf_counter()
        for stmt in INDEXED_SILVER:
            conn.execute(stmt)
        copy_s += time.perf_counter() - t0
        timings["copy"] = copy_s
        t0 = time.perf_counter()
        copy_frame(conn, "silver.products", biz.products, PRODUCT_COLUMNS)
        _derive_customers(conn)
        timings["silver"] = time.perf_counter() - t0
        labels = biz.labels().assign(source="demo")
        copy_frame(conn, "ops.anomaly_labels", labels, list(labels.columns))
        if progress:
            progress(biz.lines, biz.lines, "building gold")
        t0 = time.perf_counter()
        gold.refresh_range(conn, biz.start, biz.end)
        conn.execute(
            "select ops.bump_version('demo', 'kpi demo', %s, %s, %s, 0)", [biz.start, biz.end, summary.lines]
        )
        timings["gold"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        gold.refresh_views(concurrently=False, conn=conn)
        timings["views"] = time.perf_counter() - t0
        conn.commit()
        summary.customers = conn.execute("select count(*) from silver.customers").fetchone()[0]
        summary.products = len(biz.products)
        summary.anomalies = len(labels)
    _analyze()
    timings["total"] = time.perf_counter() - t_all
    return summary


def _derive_customers(conn: psycopg.Connection, scope_table: str | None = None) -> None:
    """(Re)build silver.customers from orders: first/last order and the most common region.

    With ``scope_table`` (a table with a customer_id column) only those customers are recomputed.
    """
    if scope_table is None:
        conn.execute("truncate silver.customers")
        scope = ""
    else:
        scope = f"and customer_id in (select customer_id from {scope_table} where customer_id is not null)"
    conn.execute(
        f"""
        insert into silver.customers (customer_id, first_order_at, last_order_at, region)
        select customer_id, min(ordered_at), max(ordered_at), mode() within group (order by region)
          from silver.orders
         where customer_id is not null {scope}
         group by customer_id
        on conflict (customer_id) do update set
            first_order_at = excluded.first_order_at,
            last_order_at = excluded.last_order_at,
            region = excluded.region
        """
    )


def _analyze() -> None:
    with warehouse.connect_raw(autocommit=True) as conn:
        conn.execute(
            "analyze silver.orders, silver.order_lines, gold.sales_hourly, gold.category_hourly, "
            "gold.customer_hourly, gold_store.sales_daily, gold_store.category_daily, gold_store.product_daily"
        )


# --- users' own files -----------------------------------------------------------------------------

REQUIRED = ("order_id", "ordered_at", "quantity", "unit_price")
OPTIONAL = (
    "line_no",
    "customer_id",
    "region",
    "channel",
    "product_id",
    "product_name",
    "category",
    "discount",
    "unit_cost",
    "status",
)
FIELDS = REQUIRED + OPTIONAL
# Common column names in real exports (lower-cased, without spaces, dashes or underscores).
SYNONYMS = {
    "order_id": [
        "orderid",
        "order",
        "ordernumber",
        "orderno",
        "invoiceno",
        "invoice",
        "invoiceid",
        "transactionid",
        "salesorderid",
    ],
    "ordered_at": [
        "orderedat",
        "orderdate",
        "invoicedate",
        "date",
        "datetime",
        "timestamp",
        "createdat",
        "orderdatetime",
        "transactiondate",
    ],
    "quantity": ["quantity", "qty", "units", "orderquantity"],
    "unit_price": ["unitprice", "price", "itemprice", "priceeach", "sellingprice"],
    "line_no": ["lineno", "linenumber", "line", "orderline"],
    "customer_id": ["customerid", "customer", "clientid", "userid", "customerno", "customernumber"],
    "region": ["region", "country", "market", "territory", "state"],
    "channel": ["channel", "saleschannel", "source", "platform"],
    "product_id": ["productid", "sku", "stockcode", "itemid", "productcode", "asin"],
    "product_name": ["productname", "description", "product", "itemname", "itemdescription", "name"],
    "category": ["category", "productcategory", "department", "productline"],
    "discount": ["discount", "discountrate", "discountpct"],
    "unit_cost": ["unitcost", "cost", "costprice", "cogs"],
    "status": ["status", "orderstatus"],
}
DEFAULTS = {"region": "Unknown", "channel": "Unknown", "category": "Unknown"}


@dataclass
class LoadSummary:
    """What ``kpi load`` prints: rows read, loaded and rejected (with the commonest reasons)."""

    path: str
    rows: int = 0
    loaded: int = 0
    rejected: int = 0
    orders: int = 0
    replaced_orders: int = 0
    mapping: dict[str, str] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None
    version: int | None = None
    seconds: float = 0.0
    currency: str | None = None  # recorded in catalog.yml metadata.business
    notes: list[str] = field(default_factory=list)  # how a column was read ("discount read as percentages")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-\.]+", "", str(name).strip().lower())


def resolve_mapping(columns: list[str], explicit: dict[str, str] | None = None) -> dict[str, str]:
    """Map our field names to the file's columns: explicit ``--map`` entries first, then synonyms."""
    explicit = dict(explicit or {})
    unknown = sorted(set(explicit) - set(FIELDS))
    if unknown:
        raise LoadError(f"Unknown field(s) in --map: {', '.join(unknown)}. Fields are: {', '.join(FIELDS)}.")
    missing_cols = [c for c in explicit.values() if c not in columns]
    if missing_cols:
        raise LoadError(
            f"--map names column(s) not in the file: {', '.join(missing_cols)}. "
            f"The file's columns are: {', '.join(map(str, columns))}."
        )
    mapping = dict(explicit)
    by_key = {_key(c): c for c in columns}
    used = set(mapping.values())
    for fld in FIELDS:
        if fld in mapping:
            continue
        for cand in [_key(fld), *SYNONYMS.get(fld, [])]:
            col = by_key.get(cand)
            if col is not None and col not in used:
                mapping[fld] = col
                used.add(col)
                break
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        raise LoadError(
            f"Cannot find column(s) for {', '.join(missing)}. The file's columns are: "
            f"{', '.join(map(str, columns))}. Map them with --map FIELD=COLUMN, e.g. "
            f"--map {missing[0]}={columns[0] if columns else 'COLUMN'}."
        )
    return mapping


_FLOAT_ID = re.compile(r"^(-?\d+)\.0+$")
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


def _clean_id(s: pd.Series) -> pd.Series:
    """'536365.0' -> '536365' (ids that went through a spreadsheet); blanks -> None."""
    s = s.astype(str).str.strip()
    s = s.str.replace(_FLOAT_ID, r"\1", regex=True)
    return s.where(~s.str.lower().isin(["", "nan", "none", "null", "na"]), None)


def _to_time(s: pd.Series, tz: str, dayfirst: bool | None) -> pd.Series:
    """Parse timestamps; naive ones are read in the business time zone, numeric dates in the
    column's own day order unless ``dayfirst`` says which."""
    text = s.astype(str).str.strip()
    try:
        dayfirst = resolve_day_first(text[text != ""], dayfirst, f"the time column {s.name!r}")
    except ValueError as exc:
        raise LoadError(str(exc)) from exc
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    aware = text.str.contains(_HAS_OFFSET) & (text != "")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], errors="coerce", utc=True, format="mixed", dayfirst=dayfirst)
    naive = ~aware & (text != "")
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="mixed", dayfirst=dayfirst)
        # a wall time that happened twice (the hour clocks go back) is read as the first of the two
        first = np.ones(len(parsed), dtype=bool)
        local = parsed.dt.tz_localize(tz, ambiguous=first, nonexistent="shift_forward")
        out[naive] = local.dt.tz_convert("UTC")
    return out


def validate_lines(
    raw: pd.DataFrame, mapping: dict[str, str], tz: str, dayfirst: bool | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a raw export into clean silver-shaped lines and rejected rows with a reason each."""
    n = len(raw)
    col = {f: raw[c] if c else None for f, c in mapping.items()}
    reason = pd.Series([None] * n, index=raw.index, dtype=object)
    kind = pd.Series([None] * n, index=raw.index, dtype=object)

    def reject(mask: pd.Series, why: pd.Series | str, short: str) -> None:
        """Mark rows not yet rejected; `short` groups reasons in the summary."""
        mask = mask & reason.isna()
        if mask.any():
            reason[mask] = why[mask] if isinstance(why, pd.Series) else why
            kind[mask] = short

    out = pd.DataFrame(index=raw.index)
    notes: list[str] = []  # how a column was read, where it could have been read otherwise
    out["order_id"] = _clean_id(col["order_id"])
    reject(out["order_id"].isna(), "order_id is empty", "order_id is empty")

    out["ordered_at"] = _to_time(col["ordered_at"], tz, dayfirst)
    reject(
        out["ordered_at"].isna(),
        "ordered_at '" + col["ordered_at"].astype(str) + "' is not a date/time",
        "ordered_at is not a date/time",
    )

    for fld in ("quantity", "unit_price"):
        out[fld] = to_number(col[fld])
        reject(
            out[fld].isna(), f"{fld} '" + col[fld].astype(str) + "' is not a number", f"{fld} is not a number"
        )
    reject(
        out["unit_price"] < 0,
        "unit_price " + col["unit_price"].astype(str) + " is negative: record refunds as negative quantities",
        "unit_price is negative",
    )
    reject(out["quantity"].abs() >= 1e11, "quantity is too large", "quantity is too large")
    reject(out["unit_price"] >= 1e10, "unit_price is too large", "unit_price is too large")

    if "discount" in col:
        text = col["discount"].astype(str).str.strip()
        pct = text.str.endswith("%")  # "10%" is 0.10, as the sign says
        disc = to_number(col["discount"].where(~pct, text.str[:-1]))
        plain = disc[~pct].dropna()
        if (
            len(plain)
            and plain.between(0, 100).all()
            and (plain > 1).any()
            and not plain.between(0, 1, "neither").any()
        ):
            # a column of percentages without the sign ("10", "25", "0"): no fraction exceeds 1, and
            # none of its values reads as a fraction (a column with 0.15 and 15 is rejected as before)
            pct = pct | disc.notna()
            top = float(plain.max())
            notes.append(
                f"discount read as percentages without their sign: {top:g} is {top:g}% ({top / 100:g})"
            )
        disc = disc.where(~pct, disc / 100)
        blank = text == ""
        reject(
            disc.isna() & ~blank,
            "discount '" + col["discount"].astype(str) + "' is not a number",
            "discount is not a number",
        )
        reject(
            (disc > 1) | (disc < 0),
            "discount "
            + col["discount"].astype(str)
            + " is not a fraction between 0 and 1 (write 15% as 0.15)",
            "discount is out of range",
        )
        out["discount"] = disc.fillna(0.0)
    else:
        out["discount"] = 0.0

    if "unit_cost" in col:
        cost = to_number(col["unit_cost"])
        blank = col["unit_cost"].astype(str).str.strip() == ""
        reject(
            cost.isna() & ~blank,
            "unit_cost '" + col["unit_cost"].astype(str) + "' is not a number",
            "unit_cost is not a number",
        )
        reject(cost < 0, "unit_cost is negative", "unit_cost is negative")
        out["unit_cost"] = cost
    else:
        out["unit_cost"] = np.nan

    out["customer_id"] = _clean_id(col["customer_id"]) if "customer_id" in col else None
    for fld in ("region", "channel", "category"):
        v = col[fld].astype(str).str.strip() if fld in col else pd.Series("", index=raw.index)
        out[fld] = v.where(v != "", DEFAULTS[fld])
    pid = (
        _clean_id(col["product_id"])
        if "product_id" in col
        else pd.Series(None, index=raw.index, dtype=object)
    )
    name = (
        col["product_name"].astype(str).str.strip()
        if "product_name" in col
        else pd.Series("", index=raw.index)
    )
    out["product_id"] = pid.fillna("Unknown")
    out["product_name"] = name.where(name != "", out["product_id"])
    if "status" in col:
        st = col["status"].astype(str).str.strip().str.lower()
        out["status"] = st.where(st != "", None)
    else:
        out["status"] = None
    if "line_no" in col:
        ln = to_number(col["line_no"])
        out["line_no"] = ln
    else:
        out["line_no"] = np.nan

    bad = reason.notna()
    rejects = raw[bad].copy()
    rejects["_reason"] = reason[bad]
    rejects["_kind"] = kind[bad]
    good = out[~bad].copy()
    # Line numbers: the file's own when given and unique, else the row order within the order.
    auto = good.groupby("order_id", sort=False).cumcount() + 1
    ln = good["line_no"]
    dup = ln.isna() | good.assign(_ln=ln).duplicated(["order_id", "_ln"], keep=False)
    per_order_dup = dup.groupby(good["order_id"]).transform("any")
    good["line_no"] = np.where(per_order_dup, auto, ln.fillna(0)).astype(int)
    good.attrs["notes"] = notes
    return good, rejects


def load_lines_file(
    path: str | Path,
    mapping: dict[str, str] | None = None,
    dayfirst: bool | None = None,
    progress: ProgressFn | None = None,
    currency: str | None = None,
) -> LoadSummary:
    """Load a flat order-lines export (CSV, Parquet or Excel) into silver and bring gold up to date.

    ``currency`` (e.g. GBP), or the file's currency column when it has one, is recorded in
    catalog.yml ``metadata.business``: every number is then shown in it."""
    path = Path(path)
    t0 = time.perf_counter()
    raw = read_table(path)
    summary = LoadSummary(path=str(path), rows=len(raw))
    summary.mapping = resolve_mapping(list(raw.columns), mapping)
    summary.currency = currency or file_currency(raw)
    if summary.currency:  # before loading: a bad code stops here, with nothing half done
        summary.currency = catalog.set_business(currency=summary.currency)["currency"]
    if raw.empty:
        return summary
    tz = settings().timezone
    good, rejects = validate_lines(raw, summary.mapping, tz, dayfirst)
    if progress:
        progress(1, 4, "validated")
    source = f"file:{path.name}"
    gold.init()
    with warehouse.connect_raw() as conn:
        _write_rejects(conn, source, rejects)
        if not good.empty:
            summary.replaced_orders, replaced_range = _replace_orders(conn, good, source)
            if progress:
                progress(2, 4, "copied")
            first, last = good["ordered_at"].min(), good["ordered_at"].max()
            if replaced_range[0] is not None:
                first, last = min(first, replaced_range[0]), max(last, replaced_range[1])
            gold.refresh_range(conn, first, last)
            summary.version = conn.execute(
                "select ops.bump_version('load', %s, %s, %s, %s, %s)",
                [source, first, last, len(good), len(rejects)],
            ).fetchone()[0]
            summary.first, summary.last = first.to_pydatetime(), last.to_pydatetime()
            if progress:
                progress(3, 4, "gold rebuilt")
            gold.refresh_views(concurrently=False, conn=conn)
        summary.loaded = len(good)
        summary.rejected = len(rejects)
        summary.orders = good["order_id"].nunique()
        summary.reasons = Counter(rejects["_kind"])
        summary.notes = list(good.attrs.get("notes", []))
        _record_source_names(conn, summary.mapping, source)
        conn.execute(
            "insert into bronze.file_loads (path, sha256, kind, mapping, rows_in, loaded, rejected, version) "
            "values (%s, %s, 'lines', %s, %s, %s, %s, %s)",
            [
                str(path.resolve()),
                _sha256(path),
                json.dumps(summary.mapping),
                summary.rows,
                summary.loaded,
                summary.rejected,
                summary.version,
            ],
        )
        conn.commit()
    if progress:
        progress(4, 4, "done")
    _analyze()
    summary.seconds = time.perf_counter() - t0
    return summary


CURRENCY_COLUMNS = ("currency", "currencycode", "curr", "ccy")


def file_currency(raw: pd.DataFrame) -> str | None:
    """The one currency a file's currency column names (None without such a column)."""
    col = next((c for c in raw.columns if _key(c) in CURRENCY_COLUMNS), None)
    if col is None:
        return None
    codes = sorted({str(v).strip().upper() for v in raw[col].dropna() if str(v).strip()})
    if len(codes) > 1:
        raise LoadError(
            f"The file's {col!r} column has several currencies ({', '.join(codes[:5])}). Amounts in "
            "different currencies cannot be added up: convert them to one first, or load one "
            "currency's rows (then pass --currency)."
        )
    return codes[0] if codes else None


#: silver fields that are dimensions of the semantic layer, and the dimension each one is
DIMENSION_FIELDS = {
    "region": "region",
    "channel": "channel",
    "category": "category",
    "product_name": "product",
}


def _record_source_names(conn: psycopg.Connection, mapping: dict[str, str], source: str) -> None:
    """Keep the file's own names for the dimensions (``Country`` for region) in ops.source_names, so
    people can ask "by country" about data that calls its regions countries."""
    for fld, dim in DIMENSION_FIELDS.items():
        col = mapping.get(fld)
        if not col or _key(col) in (_key(fld), _key(dim)):
            continue
        name = re.sub(r"[_\-.]+", " ", str(col)).strip().lower()
        conn.execute(
            "insert into ops.source_names (source_name, dimension, source) values (%s, %s, %s) "
            "on conflict (source_name) do update set dimension = excluded.dimension, "
            "source = excluded.source, recorded_at = now()",
            [name, dim, source],
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_rejects(conn: psycopg.Connection, source: str, rejects: pd.DataFrame) -> None:
    if rejects.empty:
        return
    data = rejects.drop(columns=["_reason", "_kind"])
    rows = pd.DataFrame(
        {
            "source": source,
            "row_number": rejects.index.values + 2,  # 1-based, after the header line
            "row_data": [json.dumps(r, ensure_ascii=False) for r in data.to_dict(orient="records")],
            "reason": rejects["_reason"].values,
        }
    )
    copy_frame(conn, "bronze.rejects", rows, ["source", "row_number", "row_data", "reason"])


def _replace_orders(conn: psycopg.Connection, good: pd.DataFrame, source: str):
    """Write the file's orders and lines, replacing any orders with the same ids."""
    orders = (
        good.groupby("order_id", sort=False)
        .agg(
            ordered_at=("ordered_at", "min"),
            customer_id=("customer_id", "first"),
            region=("region", "first"),
            channel=("channel", "first"),
            status=("status", "first"),
            positive=("quantity", lambda q: (q > 0).any()),
        )
        .reset_index()
    )
    orders["status"] = orders["status"].where(
        orders["status"].notna(), np.where(orders["positive"], "completed", "returned")
    )
    orders["has_sale"] = orders["positive"]
    orders["source"] = source
    conn.execute("create temp table _load_orders (like silver.orders including defaults) on commit drop")
    conn.execute("create temp table _load_lines (like silver.order_lines including defaults) on commit drop")
    copy_frame(conn, "_load_orders", orders, ORDER_COLUMNS)
    copy_frame(conn, "_load_lines", good, LINE_COLUMNS)
    old_first, old_last, replaced = conn.execute(
        "select min(o.ordered_at), max(o.ordered_at), count(*) from silver.orders o "
        "join _load_orders t on t.order_id = o.order_id"
    ).fetchone()
    if replaced:
        conn.execute("delete from silver.order_lines l using _load_orders t where l.order_id = t.order_id")
        conn.execute("delete from silver.orders o using _load_orders t where o.order_id = t.order_id")
    conn.execute("insert into silver.orders select * from _load_orders")
    conn.execute("insert into silver.order_lines select * from _load_lines")
    conn.execute(
        "insert into silver.products (product_id, product_name, category, unit_cost) "
        "select distinct on (product_id) product_id, product_name, category, unit_cost from _load_lines "
        "order by product_id, line_no desc "
        "on conflict (product_id) do update set product_name = excluded.product_name, "
        "category = excluded.category, unit_cost = coalesce(excluded.unit_cost, silver.products.unit_cost)"
    )
    _derive_customers(conn, "_load_orders")
    return replaced, (old_first, old_last)
