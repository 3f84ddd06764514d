"""The seeded business: customers, orders and lines per hour, month by month, with labelled anomalies."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from ..schema import LINE_COLUMNS
from .anomalies import Anomaly, demand_multipliers
from .world import (
    AVG_LINES_PER_ORDER,
    BRANDS,
    CATEGORIES,
    CHANNEL_SHARE,
    CHANNELS,
    REGION_SHARE,
    REGION_UTC_OFFSET,
    REGIONS,
)


def _holiday_factor(days: pd.DatetimeIndex) -> np.ndarray:
    """Demand multiplier per calendar day: Black Friday, Cyber Monday, Christmas, New Year, a summer sale."""
    f = np.ones(len(days))
    month, day, dow = days.month.values, days.day.values, days.dayofweek.values
    # Black Friday: the Friday after the fourth Thursday of November (day 23..29, a Friday).
    black_friday = (month == 11) & (dow == 4) & (day >= 23) & (day <= 29)
    f[black_friday] = 2.3
    cyber_monday = np.zeros(len(days), bool)
    idx = np.flatnonzero(black_friday)
    cyber_monday[idx[idx + 3 < len(days)] + 3] = True
    f[cyber_monday] = 1.9
    f[(month == 12) & (day == 24)] = 1.3
    f[(month == 12) & (day == 25)] = 0.45
    f[(month == 12) & (day == 26)] = 1.4
    f[(month == 1) & (day == 1)] = 0.6
    f[(month == 7) & ((day == 15) | (day == 16))] = 1.5  # summer sale
    return f


def _promo_discount(days: pd.DatetimeIndex) -> np.ndarray:
    """Extra discount fraction on promotion days."""
    d = np.zeros(len(days))
    h = _holiday_factor(days)
    d[h >= 1.4] = 0.15
    d[(days.month.values == 1) & (days.day.values <= 7)] = 0.10  # January sale
    return d


class Business:
    """The seeded demo business. ``history()`` yields silver-shaped frames month by month."""

    def __init__(self, lines: int = 1_000_000, days: int = 730, seed: int = 42, end: datetime | None = None):
        if lines < 1000:
            raise ValueError("the demo needs at least 1,000 order lines")
        if days < 14:
            raise ValueError("the demo needs at least 14 days of history")
        self.lines = int(lines)
        self.days = int(days)
        self.seed = int(seed)
        self.end = (end or datetime.now(UTC)).replace(second=0, microsecond=0)
        self.start = (self.end - timedelta(days=self.days)).replace(minute=0)
        self.rng = np.random.default_rng(self.seed)
        self.products = self._make_products()
        self.customers = self._make_customers()
        self._signup_ns = pd.Timestamp(self.start).value + (self.customers["signup_s"].values * 1e9).astype(
            np.int64
        )
        self.anomalies = self._make_anomalies()
        self._cat_index = {c.name: i for i, c in enumerate(CATEGORIES)}
        # category mix per region (rows sum to 1), fixed by the seed
        self.category_mix = self.rng.dirichlet(np.full(len(CATEGORIES), 8.0), size=len(REGIONS))
        self.orders_per_hour_scale = 1.0
        self._calibrate()

    # --- reference data --------------------------------------------------------------------

    def _make_products(self) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed + 1)
        rows = []
        for ci, cat in enumerate(CATEGORIES):
            combos = [(b, n) for n in cat.nouns for b in BRANDS]
            pick = rng.choice(len(combos), size=62, replace=False)
            lo, hi = cat.price_range
            for rank, k in enumerate(pick):
                brand, noun = combos[k]
                price = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
                price = round(price) - 0.01 if price > 20 else round(price, 2)
                margin = float(np.clip(rng.normal(cat.margin, 0.06), 0.05, 0.8))
                cost = round(price * (1 - margin), 2) if rng.random() > 0.03 else None
                rows.append(
                    dict(
                        product_id=f"P{ci + 1}{rank + 1:03d}",
                        product_name=f"{brand} {noun}",
                        category=cat.name,
                        list_price=max(price, 0.99),
                        unit_cost=cost,
                        popularity=1.0 / (rank + 1) ** 0.9,
                        cat_index=ci,
                    )
                )
        return pd.DataFrame(rows)

    def _make_customers(self) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed + 2)
        n = max(2000, self.lines // 10)
        span = (self.end - self.start).total_seconds()
        # A third existed before the window; the rest join with growth (more later).
        joined_before = rng.random(n) < 0.33
        u = rng.random(n)
        signup = np.where(joined_before, -rng.random(n) * span * 0.5, span * np.sqrt(u))
        return pd.DataFrame(
            dict(
                customer_id=[f"C{i + 100001}" for i in range(n)],
                region=rng.choice(len(REGIONS), size=n, p=REGION_SHARE),
                channel_pref=rng.integers(0, len(CHANNELS), size=n),
                propensity=rng.lognormal(0.0, 1.0, size=n),
                signup_s=signup,
            )
        ).sort_values("signup_s", ignore_index=True)

    def _make_anomalies(self) -> list[Anomaly]:
        def at(days_ago: float, hour: int) -> datetime:
            d = (self.end - timedelta(days=days_ago)).replace(hour=hour, minute=0)
            return d

        spec = [
            Anomaly(
                "outage-europe",
                "region_outage",
                "Checkout outage in Europe: orders fell to a trickle",
                "orders",
                "hour",
                "region",
                "Europe",
                at(6, 10),
                at(6, 15),
                region="Europe",
                demand=0.06,
            ),
            Anomaly(
                "bot-surge-apac",
                "bot_surge",
                "Bot surge on the Mobile App in Asia Pacific: tiny orders x6",
                "orders",
                "hour",
                "region",
                "Asia Pacific",
                at(13, 2),
                at(13, 4),
                region="Asia Pacific",
                channel="Mobile App",
                demand=7.0,
            ),
            Anomaly(
                "pricing-bug-electronics",
                "pricing_bug",
                "Pricing bug: Electronics sold at 45% off list",
                "revenue",
                "hour",
                "category",
                "Electronics",
                at(28, 0),
                at(27, 0),
                category="Electronics",
                price=0.55,
            ),
            Anomaly(
                "return-spike-apparel",
                "return_spike",
                "A bad batch: Apparel returns five times the usual",
                "return_rate",
                "day",
                "category",
                "Apparel",
                at(45, 0),
                at(42, 0),
                category="Apparel",
                returns=5.0,
            ),
            Anomaly(
                "payment-outage",
                "payment_outage",
                "Payment provider outage: most orders failed",
                "orders",
                "hour",
                None,
                None,
                at(70, 14),
                at(70, 17),
                demand=0.15,
            ),
            Anomaly(
                "decline-latam",
                "slow_decline",
                "Slow decline in Latin America after a competitor launch",
                "revenue",
                "day",
                "region",
                "Latin America",
                at(110, 0),
                at(89, 0),
                region="Latin America",
                demand=0.55,
                ramp=True,
            ),
        ]
        return [a for a in spec if a.starts_at >= self.start + timedelta(days=7) and a.ends_at <= self.end]

    # --- demand model ----------------------------------------------------------------------

    def intensity(self, hours: pd.DatetimeIndex) -> np.ndarray:
        """Relative expected orders per (hour, region, channel), before calibration."""
        hours = hours.tz_convert("UTC") if hours.tz is not None else hours.tz_localize("UTC")
        t_years = (hours - pd.Timestamp(self.end)).total_seconds().values / (365.25 * 86400)
        growth = np.exp(0.22 * t_years)  # ~25 % a year
        doy = hours.dayofyear.values
        yearly = (
            1
            + 0.12 * np.cos(2 * np.pi * (doy - 355) / 365.25)
            - 0.05 * np.cos(2 * np.pi * (doy - 200) / 182.6)
        )
        base = growth * yearly  # (H,)
        out = np.empty((len(hours), len(REGIONS), len(CHANNELS)))
        for r in range(len(REGIONS)):
            local = hours + pd.Timedelta(hours=int(REGION_UTC_OFFSET[r]))
            lh = local.hour.values + local.minute.values / 60
            dow = local.dayofweek.values
            days = local.normalize().tz_localize(None)
            holiday = _holiday_factor(days)
            # two peaks: lunch and evening; quiet nights
            daily = (
                0.15
                + 0.9 * np.exp(-((lh - 12.5) ** 2) / 8)
                + 1.25 * np.exp(-((lh - 20) ** 2) / 6)
                + 0.25 * np.exp(-((lh - 9) ** 2) / 4)
            )
            store_open = ((lh >= 9) & (lh < 21)).astype(float)
            weekend = dow >= 5
            for c in range(len(CHANNELS)):
                if CHANNELS[c] == "Retail Store":
                    shape = store_open * (1.0 + 0.6 * np.exp(-((lh - 15) ** 2) / 10))
                    week = np.where(dow == 5, 1.35, np.where(dow == 6, 0.8, 1.0))
                else:
                    shape = daily
                    week = np.where(weekend, 1.15, 1.0)
                out[:, r, c] = base * holiday * shape * week * REGION_SHARE[r] * CHANNEL_SHARE[r, c]
        return out

    def _calibrate(self) -> None:
        """Scale intensity so the history holds about ``self.lines`` order lines (returns included)."""
        hours = pd.date_range(self.start, self.end, freq="h", inclusive="left")
        total = self.intensity(hours).sum()
        avg_return = float(np.dot(self.category_mix.mean(axis=0), [c.return_rate for c in CATEGORIES]))
        lines_per_order = AVG_LINES_PER_ORDER * (1 + avg_return * 0.8)
        self.orders_per_hour_scale = self.lines / lines_per_order / total

    # --- drawing orders --------------------------------------------------------------------

    def draw(
        self,
        hours: pd.DatetimeIndex,
        rng: np.random.Generator,
        scale: float = 1.0,
        first_order_no: int = 0,
        until: datetime | None = None,
        extra_anomalies: list[Anomaly] = (),
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Orders and lines for whole hours (times spread uniformly in each hour).

        Returns frames shaped like ``silver.orders`` and ``silver.order_lines``.
        """
        anomalies = [*self.anomalies, *extra_anomalies]
        lam = (
            self.intensity(hours) * demand_multipliers(anomalies, hours) * self.orders_per_hour_scale * scale
        )
        counts = rng.poisson(lam)
        h_idx, r_idx, c_idx = np.nonzero(counts)
        reps = counts[h_idx, r_idx, c_idx]
        h_idx, r_idx, c_idx = np.repeat(h_idx, reps), np.repeat(r_idx, reps), np.repeat(c_idx, reps)
        n = len(h_idx)
        hour_ns = hours.asi8[h_idx]
        ts = hour_ns + (rng.random(n) * 3600e6).astype(np.int64) * 1000  # whole microseconds
        order = np.argsort(ts, kind="stable")
        ts, r_idx, c_idx = ts[order], r_idx[order], c_idx[order]
        ordered_at = pd.to_datetime(ts, utc=True)
        if until is not None:
            keep = ordered_at < pd.Timestamp(until)
            ordered_at, r_idx, c_idx = ordered_at[keep], r_idx[keep], c_idx[keep]
            n = len(ordered_at)
        order_no = first_order_no + np.arange(n)
        customer = self._pick_customers(ordered_at, r_idx, c_idx, rng)
        orders = pd.DataFrame(
            dict(
                order_id=_ids("SO", order_no),
                ordered_at=ordered_at,
                customer_id=customer,
                region=np.array(REGIONS, dtype=object)[r_idx],
                channel=np.array(CHANNELS, dtype=object)[c_idx],
                status="completed",
            )
        )
        lines = self._draw_lines(orders, r_idx, c_idx, rng, extra_anomalies)
        return orders, lines

    def _pick_customers(self, ordered_at, r_idx, c_idx, rng) -> np.ndarray:
        """Repeat behaviour: customers who joined before the order, weighted by propensity."""
        cust = self.customers
        signup = self._signup_ns
        out = np.empty(len(ordered_at), dtype=object)
        if len(ordered_at) == 0:
            return out
        # Block by week: eligible customers change slowly.
        at_ns = ordered_at.asi8
        week = (at_ns - pd.Timestamp(self.start).value) // (7 * 86400 * 10**9)
        cust_region = cust["region"].values
        prop = cust["propensity"].values
        for w in np.unique(week):
            sel_w = np.flatnonzero(week == w)
            cutoff = at_ns[sel_w].max()
            eligible = signup <= cutoff
            for r in np.unique(r_idx[sel_w]):
                sel = sel_w[r_idx[sel_w] == r]
                home = np.flatnonzero(eligible & (cust_region == r))
                pool = home if len(home) else np.flatnonzero(eligible)
                if len(pool) == 0:
                    pool = np.arange(len(cust))
                p = prop[pool] / prop[pool].sum()
                out[sel] = cust["customer_id"].values[rng.choice(pool, size=len(sel), p=p)]
        guest = rng.random(len(out)) < 0.03  # guest checkouts have no customer id
        out[guest] = None
        return out

    def _draw_lines(self, orders: pd.DataFrame, r_idx, c_idx, rng, extra_anomalies=()) -> pd.DataFrame:
        n = len(orders)
        if n == 0:
            return _empty_lines()
        per_order = np.minimum(1 + rng.poisson(1.4, n), 8)
        # bot orders are single cheap lines
        bots = np.zeros(n, bool)
        for a in [*self.anomalies, *extra_anomalies]:
            if a.kind == "bot_surge":
                inside = (orders["ordered_at"] >= pd.Timestamp(a.starts_at)) & (
                    orders["ordered_at"] < pd.Timestamp(a.ends_at)
                )
                if a.region:
                    inside &= orders["region"] == a.region
                if a.channel:
                    inside &= orders["channel"] == a.channel
                bots |= inside.values & (rng.random(n) < 1 - 1 / max(a.demand, 1.0001))
        per_order[bots] = 1
        o_idx = np.repeat(np.arange(n), per_order)
        m = len(o_idx)
        line_no = np.arange(m) - np.repeat(np.cumsum(per_order) - per_order, per_order) + 1
        # category by region mix, product by popularity within category
        mix = self.category_mix[r_idx[o_idx]]
        cum = mix.cumsum(axis=1)
        cat = (rng.random(m)[:, None] > cum).sum(axis=1).clip(0, len(CATEGORIES) - 1)
        prods = self.products
        prod_idx = np.empty(m, dtype=int)
        for ci in range(len(CATEGORIES)):
            sel = np.flatnonzero(cat == ci)
            if len(sel) == 0:
                continue
            pool = np.flatnonzero(prods["cat_index"].values == ci)
            p = prods["popularity"].values[pool]
            prod_idx[sel] = rng.choice(pool, size=len(sel), p=p / p.sum())
        cheap = np.flatnonzero(bots[o_idx])
        if len(cheap):
            cheapest = prods.nsmallest(20, "list_price").index.values
            prod_idx[cheap] = rng.choice(cheapest, size=len(cheap))
            cat[cheap] = prods["cat_index"].values[prod_idx[cheap]]
        q_extra = np.array([c.quantity_extra for c in CATEGORIES])[cat]
        quantity = 1 + rng.poisson(q_extra)
        price = prods["list_price"].values[prod_idx].astype(float)
        ts_ns = pd.DatetimeIndex(orders["ordered_at"]).asi8[o_idx]
        days = pd.to_datetime(ts_ns).normalize()
        promo = _promo_discount(days)
        base_disc = np.where(rng.random(m) < 0.15, rng.choice([0.05, 0.1, 0.15, 0.2], size=m), 0.0)
        discount = np.minimum(base_disc + promo, 0.5)
        for a in [*self.anomalies, *extra_anomalies]:
            if a.price != 1.0:
                inside = (ts_ns >= pd.Timestamp(a.starts_at).value) & (ts_ns < pd.Timestamp(a.ends_at).value)
                if a.category:
                    inside &= cat == self._cat_index[a.category]
                price = np.where(inside, np.round(price * a.price, 2), price)
        return pd.DataFrame(
            dict(
                order_id=orders["order_id"].values[o_idx],
                line_no=line_no,
                product_id=prods["product_id"].values[prod_idx],
                product_name=prods["product_name"].values[prod_idx],
                category=prods["category"].values[prod_idx],
                quantity=quantity.astype(float),
                unit_price=price,
                discount=np.round(discount, 4),
                unit_cost=prods["unit_cost"].values[prod_idx],
            )
        )

    def returns_for(
        self, orders: pd.DataFrame, lines: pd.DataFrame, rng: np.random.Generator, until: datetime
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Some lines come back days later as return orders with negative quantities."""
        rate = lines["category"].map({c.name: c.return_rate for c in CATEGORIES}).values.astype(float)
        o = orders.set_index("order_id").loc[lines["order_id"].values]
        back_at = o["ordered_at"].values + (
            np.timedelta64(1, "D") + (rng.exponential(6, len(lines)) * 86400e9).astype("timedelta64[ns]")
        )
        back_at = pd.to_datetime(back_at, utc=True)
        for a in self.anomalies:
            if a.returns != 1.0:
                inside = (back_at >= pd.Timestamp(a.starts_at)) & (back_at < pd.Timestamp(a.ends_at))
                if a.category:
                    inside &= lines["category"].values == a.category
                rate = np.where(inside, np.minimum(rate * a.returns, 0.9), rate)
        ret = (rng.random(len(lines)) < rate) & (back_at < pd.Timestamp(until))
        if not ret.any():
            return _empty_orders(), _empty_lines()
        rl = lines[ret].copy()
        rl["quantity"] = -rl["quantity"]
        ro = o[ret].reset_index()
        ro["ordered_at"] = back_at[ret]
        ro["order_id"] = "RT" + rl["order_id"].str[2:].values
        rl["order_id"] = ro["order_id"].values
        ro = ro.drop_duplicates("order_id")[["order_id", "ordered_at", "customer_id", "region", "channel"]]
        ro["status"] = "returned"
        rl["line_no"] = rl.groupby("order_id").cumcount() + 1
        return ro.reset_index(drop=True), rl.reset_index(drop=True)

    def history(self, chunk_days: int = 30) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """Silver-shaped (orders, lines) frames covering start..end, in time order, chunk by chunk."""
        rng = np.random.default_rng(self.seed + 3)
        next_no = 1
        t = pd.Timestamp(self.start)
        end = pd.Timestamp(self.end)
        while t < end:
            t_next = min(t + pd.Timedelta(days=chunk_days), end.ceil("h"))
            hours = pd.date_range(t, t_next, freq="h", inclusive="left")
            orders, lines = self.draw(hours, rng, first_order_no=next_no, until=self.end)
            next_no += len(orders)
            r_orders, r_lines = self.returns_for(orders, lines, rng, until=self.end)
            yield (
                pd.concat([orders, r_orders], ignore_index=True),
                pd.concat([lines, r_lines], ignore_index=True),
            )
            t = t_next

    def live_orders(
        self,
        t0: datetime,
        seconds: float,
        rate: float,
        rng: np.random.Generator,
        extra_anomalies: list[Anomaly] = (),
        prefix: str = "LV",
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Orders placed in [t0, t0 + seconds) at about ``rate`` orders/s on average, shaped by the same
        seasonality as the history (busier evenings, quieter nights) and by any live anomalies."""
        at = pd.DatetimeIndex([pd.Timestamp(t0)])
        lam = (self.intensity(at) * demand_multipliers(list(extra_anomalies), at))[0]
        n = rng.poisson(rate * seconds * lam.sum() / self._typical_intensity())
        if n == 0:
            return _empty_orders(), _empty_lines()
        cells = rng.choice(lam.size, size=n, p=(lam / lam.sum()).ravel())
        r_idx, c_idx = np.divmod(cells, len(CHANNELS))
        start_ns = pd.Timestamp(t0).value
        ts = np.sort(start_ns + (rng.random(n) * seconds * 1e6).astype(np.int64) * 1000)
        ordered_at = pd.to_datetime(ts, utc=True)
        customers = self._pick_customers(ordered_at, r_idx, c_idx, rng)
        newcomers = rng.random(n) < 0.04  # a few first-time buyers
        customers[newcomers] = [f"CL{t}{k}" for k, t in enumerate(ts[newcomers])]
        orders = pd.DataFrame(
            dict(
                order_id=[f"{prefix}{t}{k:03d}" for k, t in enumerate(ts)],
                ordered_at=ordered_at,
                customer_id=customers,
                region=np.array(REGIONS, dtype=object)[r_idx],
                channel=np.array(CHANNELS, dtype=object)[c_idx],
                status="completed",
            )
        )
        return orders, self._draw_lines(orders, r_idx, c_idx, rng, list(extra_anomalies))

    def _typical_intensity(self) -> float:
        """Mean total intensity per hour over the last week of history: rate 1 = 1 order/s on average."""
        if not hasattr(self, "_typical"):
            week = pd.date_range(pd.Timestamp(self.end) - pd.Timedelta(days=7), periods=7 * 24, freq="h")
            self._typical = float(self.intensity(week).sum(axis=(1, 2)).mean())
        return self._typical

    def labels(self) -> pd.DataFrame:
        """The injected anomalies as rows of ``ops.anomaly_labels``."""
        return pd.DataFrame(
            [
                dict(
                    label_id=a.label_id,
                    kind=a.kind,
                    description=a.description,
                    kpi=a.kpi,
                    grain=a.grain,
                    dimension=a.dimension,
                    dim_value=a.dim_value,
                    starts_at=a.starts_at,
                    ends_at=a.ends_at,
                )
                for a in self.anomalies
            ],
            columns=[
                "label_id",
                "kind",
                "description",
                "kpi",
                "grain",
                "dimension",
                "dim_value",
                "starts_at",
                "ends_at",
            ],
        )


def to_events(orders: pd.DataFrame, lines: pd.DataFrame, prefix: str = "ev") -> list[dict]:
    """Silver-shaped frames → one JSON-ready event per order (what `kpi_lib.stream.ingest` takes)."""
    if orders.empty:
        return []
    by_order: dict[str, list[dict]] = {}
    cols = ["product_id", "product_name", "category", "quantity", "unit_price", "discount", "unit_cost"]
    for row in lines[["order_id", *cols]].itertuples(index=False):
        line = {c: getattr(row, c) for c in cols}
        if line["unit_cost"] is None or line["unit_cost"] != line["unit_cost"]:
            line["unit_cost"] = None
        by_order.setdefault(row.order_id, []).append(line)
    out = []
    for o in orders.itertuples(index=False):
        out.append(
            {
                "event_id": f"{prefix}-{o.order_id}",
                "order_id": o.order_id,
                "ordered_at": o.ordered_at.isoformat(),
                "customer_id": o.customer_id,
                "region": o.region,
                "channel": o.channel,
                "lines": by_order.get(o.order_id, []),
            }
        )
    return out


def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return (prefix + pd.Series(numbers, dtype="int64").astype(str).str.zfill(9)).to_numpy(dtype=object)


def _empty_orders() -> pd.DataFrame:
    return pd.DataFrame(columns=["order_id", "ordered_at", "customer_id", "region", "channel", "status"])


def _empty_lines() -> pd.DataFrame:
    return pd.DataFrame(columns=LINE_COLUMNS)
