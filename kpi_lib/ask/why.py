"""Why questions: what changed, where, and what else was going on. Facts from the data only.

For the period asked about (a day, a week, a month, any span):

- its value, against the comparable period before it (the same weekday a week earlier for a day,
  else the period of the same length just before) and, for a day, against the expected range of
  the KPI's own anomaly rules (``kpi_lib.anomaly.detect`` over the weeks before);
- the change split over every dimension of the KPI, down to product, against a baseline (the same
  weekday over the previous four weeks for a day, else the period before), with signed amounts and
  each value's share from :func:`kpi_lib.anomaly.attribute` (ratios are split exactly through their
  numerator and denominator);
- incidents in ``ops.anomalies`` that overlap the period;
- whether the data covers the whole period, and whether one order (or an order and its reversal)
  dominates the number.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pandas as pd

from .. import auth, incidents, kpis
from ..anomaly.attribution import attribute
from . import timephrases
from .answer import Answer
from .lexicon import Lexicon
from .parser import Reading

log = logging.getLogger(__name__)
BASELINE_WEEKS = 4


def explain(
    a: Answer, reading: Reading, as_of: kpis.AsOf, lex: Lexicon, user: auth.User, note: str | None
) -> Answer:
    q = reading.question
    masked = user.is_masked(q.kpi)
    k = lex.kpis[q.kpi]
    p = reading.period
    single_day = p.end - p.start == timedelta(days=1) and p.start.hour == 0
    cur = kpis.query(q, as_of=as_of)
    if single_day:
        prev_q = q.replace(start=p.start - timedelta(days=7), end=p.end - timedelta(days=7))
        prev_label = f"{prev_q.start:%a %-d %b %Y} (the same weekday a week before)"
        bases = [
            q.replace(start=p.start - timedelta(days=7 * i), end=p.end - timedelta(days=7 * i))
            for i in range(1, BASELINE_WEEKS + 1)
        ]
        base_label = f"the same weekday over the previous {BASELINE_WEEKS} weeks"
    else:
        before = timephrases.shifted(p, "before")
        prev_q = q.replace(start=before.start, end=before.end)
        prev_label = f"{before.describe()} (the period before)"
        bases = [prev_q]
        base_label = "the period before"
    prev = kpis.query(prev_q, as_of=as_of)
    a.value = cur.value
    a.spec = q.to_dict()
    a.compare_spec = prev_q.to_dict()
    sqls = [cur.sql, prev.sql]
    entries = [*cur.catalog_entries, *prev.catalog_entries]
    v, pv = cur.value, prev.value
    when = p.phrase() if not single_day else f"on {p.start:%a %-d %b %Y}"
    scope = "".join(f" in {' or '.join(vs)}" for _, vs in q.where)
    if masked:
        a.text = (
            f"{k.label}{scope} {when}: the figure is masked for your role, so I cannot explain its change."
        )
        a.formatted = "•••"
        a.value = None
        return _incidents(a, q, note, user)
    sentences = []
    if v is None:
        sentences.append(f"{k.label}{scope} has no value {when}.")
    elif pv is None or pv == 0:
        sentences.append(
            f"{k.label}{scope} was {k.format_value(v)} {when}; {prev_label} had none to compare with."
        )
    else:
        change = (v / pv - 1) * 100
        a.change_pct = change
        word = "up" if v >= pv else "down"
        sentences.append(
            f"{k.label}{scope} {'were' if k.label.endswith('s') else 'was'} {k.format_value(v)} {when}, {word} {abs(change):.1f}% "
            f"({_signed(k, v - pv, ratio=not k.additive)}) from {k.format_value(pv)} {'on ' if single_day else 'in '}{prev_label}."
        )
    if single_day and v is not None:
        band = _band(k, q, as_of)
        if band is not None:
            exp, lo, hi = band
            where_ = "below" if v < lo else "above" if v > hi else "within"
            sentences.append(
                f"That is {where_} the expected range of {k.format_value(lo)}–{k.format_value(hi)} "
                f"(expected {k.format_value(exp)}, from the KPI's anomaly rules)."
            )
    # --- where in the day it happened ------------------------------------------------------------
    window = _hours(k, q, as_of, reading.direction) if single_day else None
    if window is not None:
        h0, h1, actual, expected, _ = window
        sentences.append(
            f"The change is concentrated between {h0:%H:%M} and {h1:%H:%M}: {k.format_value(actual)} against "
            f"{k.format_value(expected)} in the same hours on the previous {BASELINE_WEEKS} {p.start:%A}s."
        )
    fixed = {d for d, vs in q.where if len(vs) == 1}
    # a dimension with one value in the data ("channel: Unknown" when a file had none) explains nothing
    fixed |= {d for d in k.dimensions if d in lex.members and len(lex.members[d]) < 2}
    hourly_dims = [d for d in k.dimensions if d not in fixed and d != "product"]
    sliced = _slice_hours(k, q, as_of, reading.direction, hourly_dims, lex) if single_day else None
    if sliced is not None and (window is None or sliced[2][:2] != window[:2]):
        dim, value, (h0, h1, actual, expected, _), slice_sqls = sliced
        sqls.extend(slice_sqls)
        sentences.append(
            f"In {value} ({lex.dim_labels.get(dim, dim).lower()}), {k.label.lower()} between {h0:%H:%M} and "
            f"{h1:%H:%M} {'were' if k.label.endswith('s') else 'was'} {k.format_value(actual)} against "
            f"{k.format_value(expected)} in the same hours on the previous {BASELINE_WEEKS} {p.start:%A}s."
        )
    # --- the change by dimension -------------------------------------------------------------------
    lines, top_share = [], []
    for dim in k.dimensions:
        if dim in fixed:
            continue
        q_dim, bases_dim = q, bases
        if window is not None and dim != "product":  # products are kept per day only
            q_dim = q.replace(start=window[0], end=window[1])
            bases_dim = [
                q_dim.replace(start=window[0] - timedelta(days=7 * i), end=window[1] - timedelta(days=7 * i))
                for i in range(1, BASELINE_WEEKS + 1)
            ]
        try:
            contrib, sql = _contributions(k, q_dim, bases_dim, dim, as_of)
        except kpis.QueryError as exc:
            log.debug("no breakdown by %s: %s", dim, exc)
            continue
        sqls.append(sql)
        if contrib.empty or not contrib["deviation"].abs().sum():
            continue
        frames = {
            name: pd.DataFrame({"value": [row.actual], "expected": [row.expected]}, index=[0])
            for name, row in contrib.iterrows()
        }
        att = attribute(frames, (0, None), dimension=dim, top=3)
        if not att.direction:
            continue
        biggest = contrib.reindex(contrib["deviation"].abs().sort_values(ascending=False).index).head(3)
        amounts = ", ".join(
            f"{name} {_signed(k, d, ratio=not k.additive)}" for name, d in biggest["deviation"].items()
        )
        label = lex.dim_labels.get(dim, dim).lower()
        lines.append(f"By {label}, {att.text} ({amounts}).")
        share = float(att.shares["share"].iloc[0]) if len(att.shares) else 0.0
        top_share.append((share, dim, att.top))
    if lines:
        sentences.append(f"Against {base_label}: " + " ".join(lines))
    if k.unit == "currency" and k.additive and v is not None:
        sentences.extend(_orders(k, q, v))
    a.text = " ".join(sentences)
    a.sql = "\n-- next:\n".join(dict.fromkeys(sqls))
    a.catalog_entries = list(dict.fromkeys(entries))
    a.data_version = cur.version
    a.formatted = k.format_compact(v)
    a.rows = [{"period": p.describe(), "value": v}, {"period": prev_label.split(" (")[0], "value": pv}]
    return _incidents(a, q, note, user)


def _hourly(k: kpis.Kpi, q: kpis.Question, as_of: kpis.AsOf, dim: str | None = None) -> pd.DataFrame | None:
    """Hourly values (``period``, ``hour``, ``day``, ``value``, and ``dim`` when given) of the day
    asked about and of the same weekday in the previous weeks, or None when the KPI is not kept by
    the hour. ``attrs["sql"]`` is the query, shown with the answer."""
    if not k.additive:
        return None
    try:
        r = kpis.query(
            q.replace(
                grain="hour", start=q.start - timedelta(days=7 * BASELINE_WEEKS), by=(dim,) if dim else ()
            ),
            as_of=as_of,
        )
    except kpis.QueryError:
        return None
    df = r.df.assign(hour=lambda d: d["period"].dt.hour, day=lambda d: d["period"].dt.normalize())
    df.attrs["sql"] = r.sql
    return df


def _grid(df: pd.DataFrame, q: kpis.Question) -> tuple[pd.Series, pd.DataFrame]:
    """The day's 24 hourly values, and the same weekday's in each baseline week (rows)."""
    weeks = [q.start - timedelta(days=7 * i) for i in range(1, BASELINE_WEEKS + 1)]
    # an hour with no row had nothing in it: a zero, for the baseline weeks as for the day itself
    grid = (
        df[df["day"].isin([q.start, *weeks])]
        .pivot_table(index="day", columns="hour", values="value", aggfunc="sum")
        .reindex(index=[q.start, *weeks], columns=range(24))
        .fillna(0.0)
    )
    return grid.iloc[0], grid.iloc[1:]


def _hours(k: kpis.Kpi, q: kpis.Question, as_of: kpis.AsOf, direction: int | None = None, df=None):
    """The run of hours of the day that holds the change against the same hours of the previous
    weeks' same weekday: (start, end, actual, expected, significance), or None when no run stands
    out. ``df``: the hours of one slice (from :func:`_hourly`) instead of the question's total."""
    import numpy as np

    df = _hourly(k, q, as_of) if df is None else df
    if df is None:
        return None
    cur, base = _grid(df, q)
    mean = base.mean()
    var = base.var().fillna(0.0)
    if k.unit == "count":
        var = np.maximum(var, mean)  # counts vary at least like a Poisson count
    dev = (cur - mean).to_numpy()
    best = (0.0, 0, 0)
    for sign in (direction,) if direction else (1, -1):  # the run of hours with the largest change one way
        run, start = 0.0, 0
        for h in range(24):
            if run <= 0:
                run, start = 0.0, h
            run += sign * dev[h]
            if run > best[0]:
                best = (run, start, h + 1)
    total, h0, h1 = best
    noise = float(np.sqrt(var.iloc[h0:h1].sum())) if h1 > h0 else 0.0
    if h1 - h0 >= 24 or h1 == h0 or total < 3 * max(noise, 1e-9) or total < 0.5 * abs(dev).sum() * 0.5:
        return None
    actual, expected = float(cur.iloc[h0:h1].sum()), float(mean.iloc[h0:h1].sum())
    significance = total / max(noise, 1e-9)
    if k.unit == "count":
        # a count's tail is Poisson's (overdispersion, when the past weeks show it, scales it down):
        # 0 orders where 13.5 were usual is a 1-in-700,000 event, not the 3.7 sigma a normal tail says
        from scipy import stats

        phi = max(1.0, float(var.iloc[h0:h1].sum()) / max(expected, 1e-9))
        a_, e_ = actual / phi, expected / phi
        p = (
            stats.poisson.cdf(np.floor(a_), e_)
            if actual < expected
            else stats.poisson.sf(np.ceil(a_) - 1, e_)
        )
        significance = float(stats.norm.isf(max(p, 1e-300)))
    return (q.start + timedelta(hours=h0), q.start + timedelta(hours=h1), actual, expected, significance)


#: how far a slice's run of hours must stand out (in normal-tail sigmas) to be named although the
#: day's total did not show it. The best run of 24 hours in a few dozen slices is thousands of tries:
#: 4.5 sigma (3 in a million) keeps a chance finding to about one day in thirty
SLICE_SIGNIFICANCE = 4.5


def _slice_hours(k, q, as_of, direction, dims, lex):
    """The slice (one value of one dimension) whose run of hours changed most, when it stands out:
    (dim, value, window, the SQL it was read with), or None. A five-hour outage in one region can
    leave the day's total, even the region's day, looking normal when its orders come back later in
    the day. Judged on a count (the KPI itself, or orders for money), whose tail is known; told in
    the KPI's own values."""
    count = k if k.unit == "count" else lex.kpis.get("orders") if k.unit == "currency" else None
    if count is None or not count.additive:
        return None
    best = None
    for dim in dims:
        df = _hourly(count, q.replace(kpi=count.name), as_of, dim)
        if df is None or dim not in df:
            continue
        for value, part in df.groupby(dim):
            window = _hours(count, q, as_of, direction, df=part)
            if window and window[4] >= SLICE_SIGNIFICANCE and (best is None or window[4] > best[2][4]):
                best = (dim, str(value), window, [df.attrs["sql"]])
    if best is None or count is k:
        return best
    dim, value, (t0, t1, *_, significance), sqls = best  # the same slice and hours, in the KPI's values
    own = _hourly(k, q, as_of, dim)
    if own is None:
        return None
    cur, base = _grid(own[own[dim].astype(str) == value], q)
    h0, h1 = t0.hour, t0.hour + int((t1 - t0).total_seconds() // 3600)
    window = (t0, t1, float(cur.iloc[h0:h1].sum()), float(base.mean().iloc[h0:h1].sum()), significance)
    return dim, value, window, [*sqls, own.attrs["sql"]]


def _signed(k: kpis.Kpi, d: float, ratio: bool = False) -> str:
    if ratio and k.format.endswith("%"):
        return f"{d * 100:+.1f} pts"
    if ratio and k.unit != "currency":  # an amount of money is said in money ("−$3.13"), as below
        return f"{d:+,.2f}"
    s = k.format_value(abs(d))
    return ("+" if d >= 0 else "−") + s


def _band(k: kpis.Kpi, q: kpis.Question, as_of: kpis.AsOf) -> tuple[float, float, float] | None:
    """The anomaly rules' expected value and range for the day (causal: from the weeks before)."""
    from ..anomaly.detect import detect
    from ..anomaly.scan import rules_for

    try:
        hist = kpis.query(q.replace(grain="day", start=q.start - timedelta(days=70)), as_of=as_of).df
        series = hist.set_index("period")["value"].astype(float)
        rules = rules_for(k, "day") or "business_daily"
        out = detect(series, rules=rules)
        row = out.iloc[-1]
        if pd.isna(row["lower"]) or pd.isna(row["upper"]):
            return None
        return float(row["expected"]), float(row["lower"]), float(row["upper"])
    except Exception as exc:  # noqa: BLE001 - the band is a help, not the answer
        log.debug("no anomaly band: %s", exc)
        return None


def _totals(name: str, q: kpis.Question, dim: str, as_of: kpis.AsOf) -> tuple[pd.Series, str]:
    r = kpis.query(q.replace(kpi=name, by=(dim,), grain="total"), as_of=as_of)
    return r.df.set_index(dim)["value"].astype(float), r.sql


def _contributions(k: kpis.Kpi, q: kpis.Question, bases: list[kpis.Question], dim: str, as_of: kpis.AsOf):
    """Per value of ``dim``: actual, expected (baseline) and deviation, summing to the total change
    against the baseline (exactly, ratios included)."""
    parts = kpis.components(k)
    if parts is None:
        cur, sql = _totals(k.name, q, dim, as_of)
        base = pd.concat([_totals(k.name, b, dim, as_of)[0] for b in bases], axis=1).fillna(0.0).mean(axis=1)
        frame = pd.DataFrame({"actual": cur, "expected": base}).fillna(0.0)
        frame["deviation"] = frame["actual"] - frame["expected"]
        return frame, sql
    num, den = parts
    n1, sql = _totals(num.name, q, dim, as_of)
    d1, _ = _totals(den.name, q, dim, as_of)
    n0 = pd.concat([_totals(num.name, b, dim, as_of)[0] for b in bases], axis=1).fillna(0.0).mean(axis=1)
    d0 = pd.concat([_totals(den.name, b, dim, as_of)[0] for b in bases], axis=1).fillna(0.0).mean(axis=1)
    frame = pd.DataFrame({"n1": n1, "d1": d1, "n0": n0, "d0": d0}).fillna(0.0)
    D1, D0 = frame["d1"].sum(), frame["d0"].sum()
    if not D1 or not D0:
        return pd.DataFrame(columns=["actual", "expected", "deviation"]), sql
    r0 = frame["n0"].sum() / D0
    # R1 - R0 = sum_i [(n1_i - R0 d1_i)/D1 - (n0_i - R0 d0_i)/D0]: each segment's exact share
    frame["actual"] = (frame["n1"] - r0 * frame["d1"]) / D1
    frame["expected"] = (frame["n0"] - r0 * frame["d0"]) / D0
    frame["deviation"] = frame["actual"] - frame["expected"]
    return frame[["actual", "expected", "deviation"]], sql


def _orders(k: kpis.Kpi, q: kpis.Question, total: float) -> list[str]:
    """Say when one order, or an order and its reversal, dominates the period's number."""
    try:
        top = kpis.orders.largest_orders(q.start, q.end, q.where_dict, q.exclude_dict, limit=20)
    except Exception as exc:  # noqa: BLE001
        log.debug("no order detail: %s", exc)
        return []
    if top.empty:
        return []
    out = []
    pos = top[top["value"] > 0]
    for row in top[top["value"] < 0].itertuples():
        twin = pos[(pos["customer_id"] == row.customer_id) & ((pos["value"] + row.value).abs() < 0.005)]
        if row.customer_id is not None and not twin.empty:
            o = twin.iloc[0]
            out.append(
                f"Order {o['order_id']} ({k.format_value(o['value'])}) and its reversal {row.order_id} "
                f"({k.format_value(row.value)}) by customer {row.customer_id} cancel each other out."
            )
            break
    biggest = top.iloc[0]
    gross = float(top["value"].abs().sum())
    if total and abs(biggest["value"]) >= 0.25 * max(abs(total), 1e-9) and len(top) > 1:
        out.append(
            f"One order dominates: {biggest['order_id']} at {biggest['ordered_at']:%H:%M} is "
            f"{k.format_value(biggest['value'])}, {abs(biggest['value']) / abs(total):.0%} of the total."
        )
    del gross
    return out


def _overlapping(start, end) -> tuple[pd.DataFrame, str, list]:
    """Incidents overlapping [start, end), with naive business-time ``started``/``ended``, and the
    SQL read (the reader's row scope applies: kpi_lib.scope)."""
    since = pd.Timestamp(start) - pd.Timedelta(days=1)
    sql, params = incidents.recent_sql(since=since, limit=500)
    try:
        inc = incidents.recent(since=since, limit=500)
    except Exception as exc:  # noqa: BLE001 - a warehouse without incidents yet
        log.debug("no incidents: %s", exc)
        return pd.DataFrame(), sql, params
    if inc.empty:
        return inc, sql, params
    tz = kpis.settings().timezone
    started = pd.to_datetime(inc["started_at"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    ended = pd.to_datetime(inc["ended_at"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    inc = inc.assign(started=started, ended=ended)
    overlap = (started < pd.Timestamp(end)) & (ended.isna() | (ended >= pd.Timestamp(start)))
    return inc[overlap], sql, params


SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


def list_incidents(a: Answer, reading: Reading, lex: Lexicon, user: auth.User, note: str | None) -> Answer:
    """'Anything unusual in orders last week?': the incidents the anomaly rules raised in the
    period, for the KPI and slice asked about (any KPI the user may see when none is named),
    most severe first; a masked KPI's without their sentences (they quote values)."""
    q = reading.question
    kpi = None if reading.any_kpi else q.kpi
    inc, sql, params = _overlapping(q.start, q.end)
    if not inc.empty:
        if kpi:
            inc = inc[inc["kpi"] == kpi]
        if reading.open_only:
            inc = inc[inc["status"] != "resolved"]
        for d, values in q.where_dict.items():
            inc = inc[(inc["dimension"] == d) & inc["dim_value"].isin(values)]
        inc = inc.loc[inc["kpi"].map(user.can_see).astype(bool)]
        inc = inc.assign(rank=inc["severity"].map(SEVERITY_RANK).fillna(3)).sort_values(
            ["rank", "started_at"], ascending=[True, False]
        )
    what = ("open incidents" if reading.open_only else "incidents") + " in "
    what += (lex.kpis[kpi].label if kpi else "any KPI") + _slice(q)
    when = reading.period.phrase()
    a.kpi = kpi
    a.spec = q.to_dict() if kpi else {**q.to_dict(), "kpi": None}
    a.sql = sql + "\n-- parameters: " + ", ".join(map(str, params))
    a.catalog_entries = ["ops.anomalies"]
    a.rows = []
    for row in inc.itertuples():
        said = _told(row.kpi, row.explanation, user)
        a.rows.append(
            {
                "incident": int(row.id),
                "kpi": row.kpi,
                "slice": f"{row.dimension} = {row.dim_value}" if row.dimension else "all",
                "started": f"{row.started:%Y-%m-%d %H:%M}",
                "severity": row.severity,
                "status": row.status,
                "explanation": said,
            }
        )
    a.value = float(len(a.rows))
    a.formatted = str(len(a.rows))
    if not a.rows:
        a.text = f"No {what} {when}: the anomaly rules raised none."
    else:
        # one event (an outage drops every KPI in every slice at once) is told once, by its lead;
        # the most severe event in full, the others by name (the table explains each incident)
        groups = incidents.weightiest_first(_events(inc, kpi, user))
        lead_of = incidents.lead_of(groups)
        for r in a.rows:
            r["event"] = lead_of[r["incident"]]
        by_id = {r["incident"]: r for r in a.rows}
        top = by_id[int(groups[0][0]["id"])]
        listed = f"#{top['incident']} ({top['kpi']}, {top['severity']}, {top['status']}): {str(top['explanation']).rstrip('.')}"
        listed += _with_others(groups[0])
        others = ", ".join(
            f"#{int(g[0]['id'])} ({g[0]['kpi']}, {g[0]['severity']}"
            + (f", with {len(g) - 1} more" if len(g) > 1 else "")
            + ")"
            for g in groups[1:6]
        )
        more = f" and {len(groups) - 6} more" if len(groups) > 6 else ""
        n = len(a.rows)
        what = what.replace("incidents", "incident", 1) if n == 1 else what
        events = f" in {len(groups)} event{'s' if len(groups) != 1 else ''}" if len(groups) < n else ""
        a.text = f"{n} {what} {when}{events}, most severe first: {listed}."
        if others:
            a.text += f" Then {others}{more}; the table explains each one."
    if note:
        a.text += " " + note
    return a


def _events(inc: pd.DataFrame, kpi: str | None, user: auth.User) -> list[list[dict]]:
    """The rows as events (:func:`kpi_lib.incidents.events`), in the order of their leads, each
    led by the ``kpi`` asked about where it has an incident; a masked KPI's incident joins none."""
    return incidents.events(inc.to_dict("records"), kpi, masked=user.is_masked)


def _with_others(group: list[dict]) -> str:
    """' (one event with 9 more incidents at the same time: #13, #18, ...)'."""
    if len(group) < 2:
        return ""
    ids = ", ".join(f"#{int(i['id'])}" for i in group[1:9]) + (", ..." if len(group) > 9 else "")
    n = len(group) - 1
    return f" (one event with {n} more incident{'s' if n != 1 else ''} at the same time: {ids})"


def _told(kpi: str, explanation: str, user: auth.User) -> str:
    """An incident's sentence as ``user`` may read it (a masked KPI's quotes values)."""
    return "values are masked for your role" if user.is_masked(kpi) else explanation


def _slice(q: kpis.Question) -> str:
    parts = [" or ".join(vs) for vs in q.where_dict.values()]
    return f" in {', '.join(parts)}" if parts else ""


def _incidents(a: Answer, q: kpis.Question, note: str | None, user: auth.User) -> Answer:
    """Incidents overlapping the period, as the user may see them: none of a KPI outside their
    role, and a masked KPI's without its sentence (it quotes values)."""
    inc, _, _ = _overlapping(q.start, q.end)
    named = []
    if not inc.empty:
        started = inc["started"]
        # what can explain this period first: incidents that began in it (or the day before) before
        # those open since long ago, then those of the slice asked about (an incident in another
        # region says little about Europe's orders), then this KPI's, then the newest
        asked = q.where_dict  # dimension -> the values asked about
        off_slice = [
            d in asked and str(v) not in asked[d]
            for d, v in zip(inc["dimension"], inc["dim_value"], strict=True)
        ]
        inc = inc.assign(
            stale=started < pd.Timestamp(q.start) - pd.Timedelta(days=1),
            off_slice=off_slice,
            other=inc["kpi"] != q.kpi,
        )
        inc = inc.sort_values(
            ["stale", "off_slice", "other", "started_at"], ascending=[True, True, True, False]
        )
        inc = inc.loc[inc["kpi"].map(user.can_see).astype(bool)]
        for group in _events(inc, q.kpi, user)[:3]:  # an event once, by its lead, with the others counted
            row = group[0]
            said = _told(row["kpi"], row["explanation"], user)
            named.append(
                f"#{int(row['id'])} ({row['kpi']}, {row['severity']}, {row['status']}): {str(said).rstrip('.')}"
                + _with_others(group)
            )
    if named:
        a.text += " Incidents overlapping this period: " + "; ".join(named) + "."
    if note:
        a.text += " " + note
    return a
