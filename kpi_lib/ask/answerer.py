"""A :class:`~kpi_lib.ask.parser.Reading` -> an :class:`Answer`. Every number comes from
``kpis.query``; masking and visibility apply exactly as on the dashboards."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from .. import auth, kpis
from ..kpis import Question
from . import regex as re
from .answer import Answer
from .lexicon import Lexicon
from .parser import Reading

PAGE = "/panel/executive"


def plural(label: str) -> str:
    label = label.lower()
    return label[:-1] + "ies" if label.endswith("y") else label + "s"


def _was(k: kpis.Kpi) -> str:
    return "were" if k.label.endswith("s") else "was"


def _fmt(k: kpis.Kpi, v: float | None) -> str:
    return k.format_value(v)


def _scope(q: Question, lex: Lexicon) -> str:
    """' in Europe or Asia Pacific, excluding Books' for a sentence; a product is 'for' ('Units for
    Vertex Tablet', not 'in')."""
    places = [" or ".join(vs) for d, vs in q.where if d != "product"]
    products = [" or ".join(vs) for d, vs in q.where if d == "product"]
    text = f" in {', '.join(places)}" if places else ""
    text += f" for {', '.join(products)}" if products else ""
    excl = [v for _, vs in q.exclude for v in vs]
    if excl:
        text += f" excluding {', '.join(excl)}"
    return text


def link(q: Question) -> str | None:
    """The same view in the executive dashboard (its URL parameters; end is an inclusive day)."""
    if q.start is None or q.end is None or q.exclude or any(len(vs) != 1 for _, vs in q.where):
        return None  # the page filters one value per dimension: no link rather than a wider view
    params: dict[str, str] = {"kpi": q.kpi, "start": f"{q.start:%Y-%m-%d}"}
    last = q.end - timedelta(days=1) if q.end == kpis.floor_period(q.end, "day") else q.end
    params["end"] = f"{max(last, q.start):%Y-%m-%d}"
    drill = []
    for d, vs in q.where:
        if d in ("region", "channel", "category"):
            params[d] = vs[0]
        elif d == "product":
            drill.append(f"product:{vs[0]}")
    if drill:
        params["drill"] = "|".join(drill)
    return f"{PAGE}?{urlencode(params)}"


def _coverage(lex: Lexicon, start: datetime, end: datetime) -> tuple[str | None, str | None]:
    """(a reason to decline: the period is outside the data; a note: it is only partly covered)."""
    first, latest = lex.first, kpis.latest_data()  # memoised per data version: batches move it
    if first is None or latest is None:
        return "The warehouse holds no data yet.", None
    span = f"The data covers {first:%-d %b %Y} to {latest:%-d %b %Y %H:%M}"
    if start > latest or end <= first:
        return (
            f"{span}; the period asked about ({start:%-d %b %Y} – {(end - timedelta(seconds=1)):%-d %b %Y}) "
            "is outside it."
        ), None
    notes = []
    if end > latest + timedelta(seconds=1):
        notes.append(f"data ends at {latest:%H:%M} on {latest:%-d %b %Y}")
    if start < first.replace(hour=0, minute=0, second=0, microsecond=0):
        notes.append(f"data starts on {first:%-d %b %Y}")
    return None, ("The period is only partly covered: " + " and ".join(notes) + ".") if notes else None


def _before_the_data(lex: Lexicon, k: kpis.Kpi, reading: Reading) -> str | None:
    """The caveat when a total is compared with a period the data only begins inside: "YTD vs the same
    period last year" on data from 1 March sets eight months against six (+35% on a user's export,
    where like for like was +1.9%), and the like-for-like question. A rate or an average keeps the
    plain coverage note."""
    if not k.additive or lex.first is None:
        return None
    first = lex.first.replace(hour=0, minute=0, second=0, microsecond=0)
    if first.tzinfo is not None:
        first = first.replace(tzinfo=None)
    b, q = reading.compare_to, reading.question
    if not (b.start < first < b.end):
        return None
    text = (
        f"The data starts on {first:%-d %b %Y}, so {reading.period_b.describe()} holds only part of its days "
        f"and a change in percent would compare unequal stretches."
    )
    years = q.start.year - b.start.year
    if (q.start.month, q.start.day, q.end.month, q.end.day) == (
        b.start.month,
        b.start.day,
        b.end.month,
        b.end.day,
    ):
        try:  # a year (or years) apart: the same dates then
            start_a = first.replace(year=first.year + years)
        except ValueError:  # 29 February
            start_a = None
    elif (q.end - q.start) == (b.end - b.start):
        start_a = q.start + (first - b.start)
    else:
        start_a = None
    if start_a is not None and start_a < q.end:
        last = timedelta(days=1)
        text += (
            f" Like for like: '{k.label.lower()} from {start_a:%-d %b %Y} to {q.end - last:%-d %b %Y} vs "
            f"from {first:%-d %b %Y} to {b.end - last:%-d %b %Y}'."
        )
    return text


def _rows(df: pd.DataFrame, grain: str | None = None) -> list[dict[str, Any]]:
    out = df.copy()
    if "period" in out:
        out["period"] = [kpis.period_label(p, grain or "day") for p in out["period"]]
    return out.to_dict(orient="records")


def answer(reading: Reading, as_of: kpis.AsOf, lex: Lexicon, user: auth.User) -> Answer:
    a = Answer(
        question=reading.text, status=reading.status, text="", as_of=as_of.at.isoformat(timespec="seconds")
    )
    a.as_of_text = as_of.describe()
    a.reading = [{"words": w, "meaning": m} for w, m in reading.understood]
    a.shape = reading.shape
    if reading.status != "answer":
        a.reason, a.choices = reading.reason, reading.choices
        a.text = reading.reason or "I cannot answer that."
        return a
    q = reading.question
    if reading.shape == "incidents":
        from .why import list_incidents

        if not reading.any_kpi and not user.can_see(q.kpi):
            return _refuse(a, "decline", f"Your role does not include {lex.kpis[q.kpi].label}.")
        return list_incidents(a, reading, lex, user, _coverage(lex, q.start, q.end)[1])
    k = lex.kpis[q.kpi]
    a.kpi, a.spec = k.name, q.to_dict()
    if not user.can_see(k.name):
        return _refuse(a, "decline", f"Your role does not include {k.label}.")
    why_out, note = _coverage(lex, q.start, q.end)
    if why_out:
        return _refuse(a, "decline", why_out)
    masked = user.is_masked(k.name)
    a.masked = masked
    a.link = link(q)
    scope = _scope(q, lex)
    when = (
        reading.period.phrase()
        if not reading.whole_data
        else f"across all the data ({reading.period.describe()})"
    )
    if reading.shape == "why":
        from .why import explain

        return explain(a, reading, as_of, lex, user, note)
    if reading.shape == "compare":
        out_b, note_b = _coverage(lex, reading.compare_to.start, reading.compare_to.end)
        if out_b:
            return _refuse(a, "decline", out_b)
        uneven = _before_the_data(lex, k, reading)
        if uneven:
            # answered as asked (the change of the two totals), with the caveat in place of the coverage
            # note and the like-for-like question one click away
            a.choices = re.findall(r"Like for like: '([^']+)'", uneven)
            note, note_b = " ".join(x for x in (note, f"Careful: {uneven[0].lower()}{uneven[1:]}") if x), None
        if note_b:
            note = " ".join(
                x
                for x in (note, f"For {reading.period_b.describe()}: " + note_b[0].lower() + note_b[1:])
                if x
            )
        ra = kpis.query(q, as_of=as_of)
        rb = kpis.query(reading.compare_to, as_of=as_of)
        a.compare_spec = reading.compare_to.to_dict()
        va, vb = ra.value, rb.value
        _provenance(a, ra, rb)
        if va is None or vb is None:
            return _refuse(
                a, "decline", f"{k.label} has no value for one of the periods (nothing to divide by)."
            )
        a.value = va
        a.change_pct = (va / vb - 1) * 100 if vb else None
        a.rows = [
            {"period": reading.period.describe(), "value": va},
            {"period": reading.period_b.describe(), "value": vb},
        ]
        if masked:
            return _masked(a, k, f"{k.label}{scope} {when} compared with {reading.period_b.describe()}")
        if a.change_pct is None:
            a.text = f"{k.label}{scope} {_was(k)} {_fmt(k, va)} {when}, against {_fmt(k, vb)} {reading.period_b.describe()} (no change in percent: the earlier value is zero)."
        else:
            direction = "up" if va >= vb else "down"
            # a rate's move in points first: "down 9.3%" of a 5.2% return rate reads as 9.3 points
            moved = (
                f"{abs(va - vb) * 100:.1f} points ({abs(a.change_pct):.1f}%)"
                if k.is_percent
                else f"{abs(a.change_pct):.1f}%"
            )
            a.text = (
                f"{k.label}{scope} {_was(k)} {_fmt(k, va)} {when}, {direction} {moved} "
                f"from {_fmt(k, vb)} {reading.period_b.phrase()}."
            )
        # the card's headline: a rate's move in points ("-16.0%" of a 5.5% return rate reads as its value)
        a.formatted = (
            _fmt(k, va)
            if a.change_pct is None
            else f"{(va - vb) * 100:+.1f} pts"
            if k.is_percent
            else f"{a.change_pct:+.1f}%"
        )
        return _finish(a, note, as_of)
    if reading.shape == "share":
        part = kpis.query(q, as_of=as_of)
        whole = kpis.query(reading.compare_to, as_of=as_of)
        a.compare_spec = reading.compare_to.to_dict()
        _provenance(a, part, whole)
        a.rows = [
            {"slice": scope.strip() or "all", "value": part.value},
            {"slice": "all", "value": whole.value},
        ]
        if masked:
            return _masked(a, k, f"The share of {k.label.lower()}{scope} {when}")
        if not whole.value or part.value is None:
            return _refuse(a, "decline", f"{k.label} is zero {when}: there is no whole to take a share of.")
        a.value = part.value / whole.value
        a.formatted = f"{a.value:.1%}"
        slice_ = ", ".join(" or ".join(vs) for vs in q.where_dict.values())
        a.text = (
            f"{a.formatted} of {k.label.lower()}{_scope(reading.compare_to, lex)} {when} came from {slice_}: "
            f"{_fmt(k, part.value)} of {_fmt(k, whole.value)}."
        )
        return _finish(a, note, as_of)
    if reading.shape == "value":
        r = kpis.query(q, as_of=as_of)
        _provenance(a, r)
        a.value = r.value
        a.rows = [{"value": r.value}]
        if masked:
            return _masked(a, k, f"{k.label}{scope} {when}")
        a.formatted = k.format_compact(r.value)
        a.text = (
            f"{k.label}{scope} {_was(k)} {_fmt(k, r.value)} {when}."
            if r.value is not None
            else f"{k.label}{scope} has no value {when} (nothing to divide by)."
        )
        if reading.threshold is not None and r.value is not None:
            side, figure, _ = reading.threshold
            above = r.value > figure if side == "above" else r.value < figure
            a.text = f"{'Yes' if above else 'No'}: {a.text[0].lower()}{a.text[1:]}"
            a.text = (
                a.text[:-1]
                + f", {'above' if r.value > figure else 'below' if r.value < figure else 'exactly'} {_fmt(k, figure)}."
            )
        return _finish(a, note, as_of)
    if reading.shape in ("top", "breakdown"):
        dim = q.by[0]
        # "Revenue by channel", not "Revenue in Mobile App or Web by channel": the rows name them
        scope = _scope(q.replace(where=tuple((d, vs) for d, vs in q.where if d != dim)), lex)
        full = kpis.query(q.replace(top=None, order="desc"), as_of=as_of)
        _provenance(a, full)
        pairs = [
            (str(x), float(v)) for x, v in zip(full.df[dim], full.df["value"], strict=True) if pd.notna(v)
        ]
        desc = q.order != "asc"
        pairs = full_pairs = sorted(pairs, key=lambda p: p[1], reverse=desc)
        if reading.shape == "top":
            pairs = pairs[: q.top]
        a.rows = [{dim: lab, "value": v} for lab, v in pairs]
        whole = None
        if reading.shares:
            # the whole is its own query: a customer who bought on two channels is one customer
            total = kpis.query(q.replace(by=(), top=None), as_of=as_of)
            _provenance(a, full, total)
            whole = total.value or None
            for row in a.rows:
                row["share"] = row["value"] / whole if whole else None
        label = lex.dim_labels.get(dim, dim).lower()
        if masked:
            a.labels = None if reading.shape == "top" else sorted(lab for lab, _ in pairs)
            for row in a.rows:
                row["value"] = auth.MASK
                if "share" in row:
                    row["share"] = auth.MASK  # a share tells a slice's size as plainly as its value
            a.rows = sorted(a.rows, key=lambda row: row[dim])
            return _masked(a, k, f"{k.label}{scope} by {label} {when}", keep_rows=True)
        a.labels = [lab for lab, _ in pairs]

        def told(v: float) -> str:
            return f"{_fmt(k, v)}, {v / whole:.1%}" if whole else _fmt(k, v)

        if not pairs:
            a.text = f"No {label} has a {k.label.lower()} value{scope} {when}."
        elif reading.shape == "top":
            word = "highest" if desc else "lowest"
            listed = ", ".join(f"{lab} ({told(v)})" for lab, v in pairs)
            head = (
                f"The {label} with the {word} {k.label.lower()}"
                if len(pairs) == 1
                else f"The {len(pairs)} {plural(label)} with the {word} {k.label.lower()}"
            )
            named = dict(q.where).get(dim, ())
            if len(named) > len(pairs):  # "which of web and app": the ranking is among those named
                head = f"Of {', '.join(named[:-1])} and {named[-1]}, t{head[1:]}"
            a.text = f"{head}{scope} {when}: {listed}."
            if len(pairs) == 1:
                a.value, a.formatted = pairs[0][1], f"{pairs[0][0]}"
        else:
            listed = ", ".join(
                f"{lab} {_fmt(k, v)}" + (f" ({v / whole:.1%})" if whole else "") for lab, v in pairs[:8]
            )
            more = f" and {len(pairs) - 8} more" if len(pairs) > 8 else ""
            a.text = f"{k.label}{scope} by {label} {when}: {listed}{more}."
        if reading.difference and len(pairs) == 2 and reading.shape == "breakdown":
            (hi_lab, hi), (lo_lab, lo) = sorted(pairs, key=lambda p: p[1], reverse=True)
            gap = f"{(hi - lo) * 100:.1f} points" if k.is_percent else _fmt(k, hi - lo)
            a.value, a.formatted = hi - lo, gap
            a.text += f" The difference is {gap}: {hi_lab} is higher" + (
                f" by {(hi / lo - 1):.1%}." if lo > 0 and not k.is_percent else "."
            )
        if whole:
            a.text += f" Shares are of the total, {_fmt(k, whole)}."
            if sum(v for _, v in full_pairs) > whole * 1.005:  # a distinct count: customers on two channels
                a.text += f" Some {k.label.lower()} count in several {plural(label)}, so the shares add up to more than 100%."
        return _finish(a, note, as_of)
    if reading.shape in ("rank_time", "trend"):
        grain = reading.rank_grain or q.grain  # a trend by quarter or year has no query grain of its own
        pairs, results = _over_time(q, grain, as_of)
        _provenance(a, *results[:1])
        if len(results) > 1:
            a.sql = "\n-- next period:\n".join(dict.fromkeys(r.sql for r in results))
        a.rows = [{"period": lab, "value": v} for lab, v in pairs]
        if masked:
            a.labels = None
            for row in a.rows:
                row["value"] = auth.MASK
            return _masked(a, k, f"{k.label}{scope} by {grain} {when}", keep_rows=True)
        if grain in ("week", "month", "quarter", "year"):
            first = kpis.floor_period(q.start, grain)
            last_end = kpis.next_period(kpis.floor_period(q.end - timedelta(seconds=1), grain), grain)
            if first < q.start or last_end > q.end:
                edge = f"{grain}s at the edges of the period count only their days inside it"
                note = f"{note} Note: {edge}." if note else f"Note: {edge}."
        if reading.shape == "trend":
            a.labels = [lab for lab, _ in pairs]
            # a period wholly before the data's first day or after its last order has no data, not
            # a zero ("2019-09 CHF0" on an export that ends in August); the note says where it ends
            shown = [(lab, v) for lab, v in pairs if v is not None and _holds_data(lab, grain, lex)]
            listed = ", ".join(f"{lab} {_fmt(k, v)}" for lab, v in shown[-12:])
            a.text = f"{k.label}{scope} by {grain} {when}: {listed}."
            return _finish(a, note, as_of)
        valid = [(lab, v) for lab, v in pairs if v is not None and not math.isnan(v)]
        ranked = sorted(valid, key=lambda p: p[1], reverse=reading.order != "asc")[: reading.top_n]
        a.labels = [lab for lab, _ in ranked]
        word = "highest" if reading.order != "asc" else "lowest"
        if not ranked:
            a.text = f"No {grain} has a {k.label.lower()} value{scope} {when}."
        else:
            listed = ", ".join(f"{lab} ({_fmt(k, v)})" for lab, v in ranked)
            a.text = f"The {grain}{'s' if len(ranked) > 1 else ''} with the {word} {k.label.lower()}{scope} {when}: {listed}."
            if len(ranked) == 1:
                a.value, a.formatted = ranked[0][1], ranked[0][0]
            if reading.order == "asc":
                a.text += _whole_periods_note(valid, ranked, q, grain, lex, k)
        return _finish(a, note, as_of)
    return _refuse(a, "decline", "I cannot answer questions of that shape yet.")


def _period_start(label: str, grain: str) -> datetime:
    if grain == "quarter":
        year, q = label.split("-Q")
        return datetime(int(year), 3 * int(q) - 2, 1)
    if grain == "year":
        return datetime(int(label), 1, 1)
    return pd.Timestamp(label).to_pydatetime()


def _holds_data(label: str, grain: str, lex: Lexicon) -> bool:
    """Whether the period ``label`` overlaps the data's span."""
    latest = kpis.latest_data()
    if latest is None or lex.first is None:
        return True
    start = _period_start(label, grain)
    first_day = lex.first.replace(hour=0, minute=0, second=0, microsecond=0)
    return start <= latest and kpis.next_period(start, grain) > first_day


def _whole_periods_note(valid, ranked, q: Question, grain: str, lex: Lexicon, k: kpis.Kpi) -> str:
    """For a lowest-first ranking whose first place is a period the data covers only in part (today
    so far, the month the data starts in): the lowest of the whole periods too, so "today" is not
    mistaken for a bad day."""
    latest = kpis.latest_data()
    if latest is None or lex.first is None:
        return ""
    first_day = lex.first.replace(hour=0, minute=0, second=0, microsecond=0)

    def partial(label: str) -> bool:
        start = _period_start(label, grain)
        end = kpis.next_period(start, grain)
        return max(start, q.start) < first_day or min(end, q.end) > latest + timedelta(seconds=1)

    if not partial(ranked[0][0]):
        return ""
    whole = [p for p in valid if not partial(p[0])]
    if not whole:
        return ""
    lab, v = min(whole, key=lambda p: p[1])
    return (
        f" {ranked[0][0]} is only partly covered by the data; of the whole {grain}s, the lowest is "
        f"{lab} ({_fmt(k, v)})."
    )


def _over_time(q: Question, grain: str, as_of: kpis.AsOf) -> tuple[list[tuple[str, float | None]], list]:
    """(label, value) per period of ``grain`` in the question's range; quarters and years are one
    total per period (ratios do not add up across months)."""
    if grain in ("hour", "day", "week", "month"):
        r = kpis.query(q.replace(grain=grain), as_of=as_of)
        return [
            (kpis.period_label(p, grain), None if pd.isna(v) else float(v))
            for p, v in zip(r.df["period"], r.df["value"], strict=True)
        ], [r]
    pairs, results = [], []
    start = kpis.floor_period(q.start, grain)
    while start < q.end:
        nxt = kpis.next_period(start, grain)
        r = kpis.query(q.replace(grain="total", start=max(start, q.start), end=min(nxt, q.end)), as_of=as_of)
        pairs.append((kpis.period_label(start, grain), r.value))
        results.append(r)
        start = nxt
    return pairs, results


def _provenance(a: Answer, *results: kpis.QueryResult) -> None:
    a.sql = "\n-- compared with:\n".join(r.sql for r in results)
    a.catalog_entries = list(dict.fromkeys(e for r in results for e in r.catalog_entries))
    a.data_version = max(r.version for r in results)


def _refuse(a: Answer, status: str, reason: str) -> Answer:
    a.status, a.reason, a.text = status, reason, reason
    a.value = a.change_pct = None
    a.labels, a.rows = None, []
    return a


def _masked(a: Answer, k: kpis.Kpi, what: str, keep_rows: bool = False) -> Answer:
    a.value = a.change_pct = None
    a.formatted = auth.MASK
    if not keep_rows:
        a.rows = [{key: auth.MASK if key == "value" else v for key, v in row.items()} for row in a.rows]
    a.text = f"{what}: {auth.MASK} ({k.label} is masked for your role)."
    return a


def _finish(a: Answer, note: str | None, as_of: kpis.AsOf) -> Answer:
    typos = []
    for r in a.reading:
        m = re.search(r"\(read as '([^']+)'\)", r["words"] + " " + r["meaning"])
        if m:
            typos.append(f"'{r['words'].split(' (')[0]}' as '{m.group(1)}'")
    if typos:
        a.text += " (I read " + "; ".join(typos) + ".)"
    if note:
        a.text += " " + note
    if (
        a.status == "answer"
        and re.search(r"\bfiscal\b|\bfy ?'?\d|\bfytd\b", a.question.lower())
        and not kpis.fiscal_year_set()
    ):
        # said, but never defined: the calendar year is a reading, and the answer says so
        a.text += (
            " The fiscal year is read as the calendar year: catalog.yml sets no business.fiscal_year_start."
        )
    return a
