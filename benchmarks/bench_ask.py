"""Ask latency: ``kpi_lib.ask`` (parse + answer) warm and cold vs the same question answered by hand
with ``kpi_lib.query`` in the same run, at 10 M order lines.

    .venv/bin/python benchmarks/bench_ask.py --reuse            # 10 M lines (loads first if needed)
    .venv/bin/python benchmarks/bench_ask.py --quick --reuse    # 1 M lines, fewer repeats

The warehouse is ``benchmarks/results/warehouse-N`` (``bench_query.py``'s; ``--reuse`` keeps it).
Questions are anchored at the data's as-of (its latest order), passed explicitly. For each question:

* ``ask_warm``: ``kpi_lib.ask(question, as_of=..., record=False)`` with the answer in the L1 cache
  (the lexicon is built once per process and data version, as in a running server);
* ``ask_cold``: the same after ``kpi_lib.cache.clear()`` (empty L1, forgotten data versions);
* ``by_hand_warm`` / ``by_hand_cold``: the reading written by hand as ``kpi_lib.query`` calls
  (what an analyst types instead of the question), timed the same way; the answers are checked
  to be the same number or labels;
* ``parse_only``: the parser alone (question -> Question), in ms.

Also: ``lexicon_build_ms`` (the first question in a process pays it), ``record_ms`` (writing
ops.questions and the audit log) and one why question (``why``, not part of the bars).
Bars (issue 12): p50 <= 50 ms warm and <= 300 ms cold, every question, at 10 M lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import common  # noqa: E402
from bench_query import ensure_warehouse  # noqa: E402
from common import log  # noqa: E402

BAR_WARM_MS, BAR_COLD_MS = 50.0, 300.0


def questions(as_of):
    """(name, question, by-hand call returning the comparable answer)."""
    from kpi_lib import kpis
    from kpi_lib import query as q

    day = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    m0 = day.replace(day=1)
    m1 = kpis.add_months(m0, -1)
    m2 = kpis.add_months(m0, -2)
    w0 = day - timedelta(days=day.weekday())
    y0 = day.replace(month=1, day=1)

    def top(kpi, dim, start, end, n, asc=False, where=None):
        df = q(kpi, "total", start=start, end=end, by=[dim], where=where).df.dropna()
        return df.sort_values("value", ascending=asc, kind="stable")[dim].head(n).tolist()

    def best_period(kpi, grain, start, end, asc=False):
        df = q(kpi, grain, start=start, end=end).df.dropna()
        p = df.sort_values("value", ascending=asc, kind="stable")["period"].iloc[0]
        return [kpis.period_label(p, grain)]

    def change(kpi, a, b):
        va = q(kpi, "total", start=a[0], end=a[1]).value
        vb = q(kpi, "total", start=b[0], end=b[1]).value
        return (va / vb - 1) * 100

    return [
        (
            "value:revenue_yesterday",
            "What was revenue yesterday?",
            lambda: q("revenue", "total", start=day - timedelta(days=1), end=day).value,
        ),
        (
            "value:orders_europe_last_month",
            "How many orders came from Europe last month?",
            lambda: q("orders", "total", start=m1, end=m0, where={"region": "Europe"}).value,
        ),
        (
            "value:aov_web_ytd",
            "average order value on the web channel year to date",
            lambda: q("aov", "total", start=y0, end=day + timedelta(days=1), where={"channel": "Web"}).value,
        ),
        (
            "value:customers_last_week",
            "How many customers bought something last week?",
            lambda: q("customers", "total", start=w0 - timedelta(days=7), end=w0).value,
        ),
        (
            "top:products_last_month",
            "What are our 5 best-selling products by revenue last month?",
            lambda: top("revenue", "product", m1, m0, 5),
        ),
        (
            "top:channel_fewest_orders",
            "Which channel brought the fewest orders last week?",
            lambda: top("orders", "channel", w0 - timedelta(days=7), w0, 1, asc=True),
        ),
        (
            "rank_time:best_month_last_year",
            f"Which month had the highest revenue in {y0.year - 1}?",
            lambda: best_period("revenue", "month", y0.replace(year=y0.year - 1), y0),
        ),
        (
            "compare:revenue_month_over_month",
            "How did revenue last month compare with the month before, in percent?",
            lambda: change("revenue", (m1, m0), (m2, m1)),
        ),
    ]


def comparable(answer) -> object:
    if answer.change_pct is not None:
        return round(answer.change_pct, 6)
    if answer.labels and answer.shape in ("top", "rank_time"):
        return list(answer.labels)
    return None if answer.value is None else round(answer.value, 6)


def normal(x) -> object:
    return round(x, 6) if isinstance(x, float) else x


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="1 M lines and fewer repeats")
    ap.add_argument("--reuse", action="store_true", help="use an already-loaded warehouse of this size")
    ap.add_argument("--home", type=Path)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--cold", type=int, default=15)
    args = ap.parse_args()
    if args.quick:
        args.lines = 1_000_000 if args.lines == 10_000_000 else args.lines
        args.warm, args.cold = 30, 5
    home = args.home or common.RESULTS / f"warehouse-{args.lines}"

    with common.json_stdout() as emit:
        doc: dict = {
            "benchmark": "ask",
            "machine": common.machine(),
            "params": {
                "lines": args.lines,
                "warm_calls": args.warm,
                "cold_calls": args.cold,
                "home": str(home),
            },
        }
        try:
            from kpi_lib import auth, cache, kpis
            from kpi_lib.ask import ask, lexicon
            from kpi_lib.ask.parser import parse
            from kpi_lib.ask.record import record

            doc["warehouse"] = ensure_warehouse(args.lines, home, args.reuse)
            as_of = kpis.as_of(kpis.latest_data())
            doc["params"]["as_of"] = as_of.at.isoformat()
            user = auth.User("bench", "Bench", ("analyst",))
            t_lex, lex = timed(lambda: lexicon.build())
            doc["lexicon_build_ms"] = round(t_lex * 1000, 1)
            lexicon.lexicon()
            results = {}
            for name, text, by_hand in questions(as_of.at):
                log(name)
                cache.clear()
                a = ask(text, as_of=as_of, user=user, record=False)
                want = by_hand()
                same = a.status == "answer" and normal(comparable(a)) == normal(
                    round(want, 6) if isinstance(want, float) else want
                )
                ask_cold, hand_cold, parse_ms = [], [], []
                for _ in range(args.cold):
                    cache.clear()
                    ask_cold.append(
                        timed(lambda text=text: ask(text, as_of=as_of, user=user, record=False))[0]
                    )
                    cache.clear()
                    hand_cold.append(timed(by_hand)[0])
                ask_warm, hand_warm = [], []
                for _ in range(args.warm):
                    ask_warm.append(
                        timed(lambda text=text: ask(text, as_of=as_of, user=user, record=False))[0]
                    )
                    hand_warm.append(timed(by_hand)[0])
                    parse_ms.append(timed(lambda text=text: parse(text, as_of.at, lex))[0])
                res = {
                    "question": text,
                    "status": a.status,
                    "same_answer_as_by_hand": bool(same),
                    "ask_warm": common.pct(ask_warm),
                    "ask_cold": common.pct(ask_cold),
                    "by_hand_warm": common.pct(hand_warm),
                    "by_hand_cold": common.pct(hand_cold),
                    "parse_only": common.pct(parse_ms),
                }
                res["ask_overhead_warm_p50_ms"] = round(
                    res["ask_warm"]["p50_ms"] - res["by_hand_warm"]["p50_ms"], 3
                )
                res["ask_overhead_cold_p50_ms"] = round(
                    res["ask_cold"]["p50_ms"] - res["by_hand_cold"]["p50_ms"], 3
                )
                results[name] = res
                log(
                    f"  ask warm {res['ask_warm']['p50_ms']} / cold {res['ask_cold']['p50_ms']} ms; by hand warm "
                    f"{res['by_hand_warm']['p50_ms']} / cold {res['by_hand_cold']['p50_ms']} ms; same={same}"
                )
            a = ask("How many orders came from Europe last month?", as_of=as_of, user=user, record=False)
            rec = [timed(lambda: record(a, "bench", "bench"))[0] for _ in range(20)]
            doc["record_ms"] = common.pct(rec)
            day = as_of.at.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
            why_q = f"Why did orders drop on {day:%d %B %Y}?"
            cache.clear()
            t_cold, w = timed(lambda: ask(why_q, as_of=as_of, user=user, record=False))
            t_warm, _ = timed(lambda: ask(why_q, as_of=as_of, user=user, record=False))
            doc["why"] = {
                "question": why_q,
                "cold_ms": round(t_cold * 1000, 1),
                "warm_ms": round(t_warm * 1000, 1),
                "text": w.text,
            }
            warm = [r["ask_warm"]["p50_ms"] for r in results.values()]
            cold = [r["ask_cold"]["p50_ms"] for r in results.values()]
            doc["questions"] = results
            doc["summary"] = {
                "ask_warm_p50_ms_worst": max(warm),
                "ask_warm_p50_ms_median": float(np.median(warm)),
                "ask_cold_p50_ms_worst": max(cold),
                "ask_cold_p50_ms_median": float(np.median(cold)),
                "by_hand_warm_p50_ms_median": float(
                    np.median([r["by_hand_warm"]["p50_ms"] for r in results.values()])
                ),
                "by_hand_cold_p50_ms_median": float(
                    np.median([r["by_hand_cold"]["p50_ms"] for r in results.values()])
                ),
                "all_same_as_by_hand": all(r["same_answer_as_by_hand"] for r in results.values()),
            }
            at_scale = args.lines >= 10_000_000
            doc["bars"] = {
                "ask warm p50 <= 50 ms (every question)": {
                    "measured_worst": max(warm),
                    "met": max(warm) <= BAR_WARM_MS,
                    "at_10M_lines": at_scale,
                },
                "ask cold p50 <= 300 ms (every question)": {
                    "measured_worst": max(cold),
                    "met": max(cold) <= BAR_COLD_MS,
                    "at_10M_lines": at_scale,
                },
            }
        finally:
            common.stop_server()
        emit(common.finish(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
