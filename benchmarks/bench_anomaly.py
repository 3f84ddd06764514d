"""Anomaly detection: speed on a 20,000-point series, quality on the NAB development split, false
alarms on synthetic families unlike it, and event F1 on the demo business's labelled incidents.

    .venv/bin/python benchmarks/bench_anomaly.py [--runs 5] [--skip-nab] [--nab-root ../shared/nab-dev]
        [--skip-families] [--families-seeds 96]
        [--skip-demo] [--demo-seeds 1,2] [--demo-lines 1000000] [--demo-days 730] [--demo-compare]
    .venv/bin/python benchmarks/bench_anomaly.py --candidate RULES.yml[,RULES2.yml...] [--families-seeds 96]
    .venv/bin/python benchmarks/bench_anomaly.py --fresh default,RULES.yml [--fresh-seeds 100-199]

Prints one JSON object:
* ``timing``: p50 seconds of ``detect(series, "default")`` on 20,000 points (5-minute data, daily
  cycle, noise, a few incidents) against, in the same run, the naive ADTK trio
  (InterQuartileRangeAD c=3 + PersistAD c=3 + LevelShiftAD c=6, OrAggregator; ``fit_detect`` on the
  whole series, i.e. not even causal), the same trio made causal (built-in ``classic`` rules) and
  the default before issue 15 (``legacy``).
* ``nab``: ``shared/tools/nab_eval.py`` run on the dev split with ``--check-causal 3``, for the
  ``default`` rules and, as the baseline, the ``legacy`` rules: NAB standard, low-FP and low-FN
  profiles, false alarms per series, event F1, overall and per category, causal violations.
  ``budget_curve``: the same scoring in-process (nab_eval's own functions) for the default rules
  with budgets of 0.25-4 false alarms a week. ``leave_one_category_out``: for each category, the
  budget that scores best on the *other* categories, and what it then scores on this one (the
  budget is the only knob; an honest estimate of how a choice made on dev generalises).
* ``families``: :mod:`kpi_lib.anomaly.families` (bursty counts, heavy tails, regime change, weekly
  business with holidays, seven kinds of series with no anomaly), ``--families-seeds`` each, for
  ``default`` and ``legacy``: windows found, false alarms per series and per week.
* ``demo``: ``kpi_lib.demo.Business(lines, days, seed)`` per seed (ending 2026-11-22 00:00 UTC, so
  labels and holidays fall on the same days every run); every series a scan looks at (revenue,
  orders, aov, return_rate x overall/region/category x hour grain over the last 30 days, reaching
  back to cover the hour labels, and day grain over the full history) detected with the business
  rule sets (``kpi_lib.anomaly.evaluate.business_rules``: retail holidays + the demo's summer sale
  as known days) and scored by ``event_scores`` (found = an alarm on the label's own series within
  [start, end + 2 periods]; a false alarm = an alarm onset no label explains). ``--demo-compare``
  adds the same scan with the retail holidays only, with no calendar, and with the ``default``
  rules.

``--candidate RULES[,RULES2...]`` instead judges changes to the default by the keep/reject protocol
(:mod:`kpi_lib.anomaly.protocol`): ``default`` and each candidate (reported under its file's stem,
with its own ``verdict``), each on the NAB dev split
in-process (whole, half A, half B), the synthetic families (no-anomaly false alarms) and the causal
check, then ``verdict``: windows gained net of false alarms (NAB's 0.11 a false alarm) on every
measurement, positive in sum, none losing more than one window, no-anomaly false alarms up at most
5%, and nothing looking ahead.

``--fresh RULES,...`` scores rule sets on the synthetic families at seeds the protocol never sees
(``--fresh-seeds``, default 100-199: 100 per family), every rule set on the same generated series:
windows found over the anomaly families, false alarms over the no-anomaly families, on
``regime_change`` (a permanent step, then the new normal) and on the other anomaly families, the
same for the short series at those seeds, and each rule set's windows gained over the first (net
of false alarms at NAB's rate: the protocol's confirmation on unread seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
# ../shared beside the checkout (or beside the folder of worktrees, for a checkout in wt/<name>)
SHARED = next(
    (p / "shared" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()),
    ROOT.parent / "shared",
)
DEMO_END = "2026-11-22T00:00:00+00:00"


def series(n: int = 20_000, seed: int = 0) -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=n, freq="5min")
    rng = np.random.default_rng(seed)
    day = np.sin(2 * np.pi * (idx.hour * 60 + idx.minute).to_numpy() / 1440)
    v = 50 + 20 * day + rng.normal(0, 2, n)
    for at in (6_000, 11_000, 17_000):
        v[at : at + 24] -= 35
    v[14_000] += 60
    return pd.Series(v, index=idx, name="value")


def p50(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 4)


def naive(s: pd.Series) -> pd.Series:
    from adtk.aggregator import OrAggregator
    from adtk.detector import InterQuartileRangeAD, LevelShiftAD, PersistAD

    flags = pd.DataFrame(
        {
            "iqr": InterQuartileRangeAD(c=3.0).fit_detect(s),
            "persist": PersistAD(c=3.0).fit_detect(s),
            "shift": LevelShiftAD(c=6.0, window=5).fit_detect(s),
        }
    )
    return OrAggregator().aggregate(flags)


def timing(runs: int) -> dict:
    from kpi_lib.anomaly import detect

    s = series()
    detect(s.iloc[:2000])  # warm caches/imports outside the timed runs
    default = p50(lambda: detect(s, rules="default"), runs)
    legacy = p50(lambda: detect(s, rules="legacy"), runs)
    baseline = p50(lambda: naive(s), runs)
    classic = p50(lambda: detect(s, rules="classic"), max(1, runs // 2))
    alarms = int(detect(s)["is_anomaly"].sum())
    return {
        "points": len(s),
        "runs": runs,
        "default_p50_s": default,
        "legacy_p50_s": legacy,
        "naive_adtk_fit_detect_p50_s": baseline,
        "classic_causal_p50_s": classic,
        "default_vs_naive": round(default / baseline, 2),
        "default_alarms_on_4_planted_incidents": alarms,
        "bar_20k_under_0_5_s": default < 0.5,
    }


def _nab_cli(root: Path, jobs: int, rules: str) -> dict:
    tool = SHARED / "tools" / "nab_eval.py"
    cmd = f"{sys.executable} -m kpi_lib.anomaly {{input}} {{output}} --rules {rules}"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "nab.json"
        t = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                str(tool),
                "--root",
                str(root),
                "--cmd",
                cmd,
                "--check-causal",
                "3",
                "--jobs",
                str(jobs),
                "--json",
                str(report),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip()[-1000:]}
        summary = json.loads(report.read_text())["summary"]
    std = summary["profiles"]["standard"]
    return {
        "nab_standard": std["nab"],
        "low_fp": summary["profiles"]["reward_low_FP_rate"]["nab"],
        "low_fn": summary["profiles"]["reward_low_FN_rate"]["nab"],
        "by_category": {
            k: {
                "nab": None if math.isnan(v["nab"]) else v["nab"],
                "found": f"{v['found']}/{v['windows']}",
                "false_alarms": v["false_alarms"],
                "false_alarms_per_series": v["false_alarms_per_series"],
            }
            for k, v in summary["by_category"].items()
        },
        "windows_found": f"{std['found']}/{std['windows']}",
        "false_alarms": std["false_alarms"],
        "false_alarms_per_series": std["false_alarms_per_series"],
        "event_f1": std["event_f1"],
        "causal_violations": len(summary["causal_violations"]),
        "line": proc.stdout.strip().splitlines()[-1],
        "seconds": round(time.perf_counter() - t, 1),
    }


def _nab_one(args) -> tuple[str, dict]:
    """Score one dev series in-process with nab_eval's own functions (for the budget curve)."""
    root, key, rules = args
    sys.path.insert(0, str(SHARED / "tools"))
    import nab_eval

    from kpi_lib.anomaly import detect

    wins = json.loads((root / "windows.json").read_text())[key]
    df = pd.read_csv(root / "data" / key)
    s = pd.Series(df["value"].to_numpy(), index=pd.DatetimeIndex(pd.to_datetime(df["timestamp"])))
    alarms = [int(i) for i in np.flatnonzero(detect(s, rules)["is_anomaly"].to_numpy())]
    ts, _ = nab_eval.read_series(str(root / "data" / key))
    rows = nab_eval.windows_as_rows(ts, wins)
    return key, {p: nab_eval.score_series(len(ts), rows, alarms, p) for p in nab_eval.PROFILES}


def _nab_summary(per: dict[str, dict], keys: list[str]) -> dict:
    sys.path.insert(0, str(SHARED / "tools"))
    import nab_eval

    std = nab_eval.summarize({k: per[k]["standard"] for k in keys}, "standard")
    low_fp = nab_eval.summarize({k: per[k]["reward_low_FP_rate"] for k in keys}, "reward_low_FP_rate")["nab"]
    return {  # NaN (a category without windows) is not JSON: None
        "nab_standard": None if math.isnan(std["nab"]) else std["nab"],
        "low_fp": None if math.isnan(low_fp) else low_fp,
        "found": f"{std['found']}/{std['windows']}",
        "false_alarms_per_series": std["false_alarms_per_series"],
        "event_f1": std["event_f1"],
    }


#: criterion (b) of the protocol counts the no-anomaly families at seeds 0..FAMILY_SEEDS-1 (672
#: series; 42 until the twelfth pass, where a difference of 3 false alarms was noise)
FAMILY_SEEDS = 96
#: seeds of the short, coarse series (``--short``; the twentieth pass)
SHORT_SEEDS = 100
#: seeds the protocol never sees, for ``--fresh``
FRESH_SEEDS = "100-199"

BUDGETS = (0.25, 0.5, 1, 2, 4)  # false alarms a week (at most one per 2,016 rows)


def nab(root: Path, jobs: int) -> dict:
    from concurrent.futures import ProcessPoolExecutor

    out = {"default": _nab_cli(root, jobs, "default"), "legacy": _nab_cli(root, jobs, "legacy")}
    keys = sorted(json.loads((root / "windows.json").read_text()))
    cats = sorted({k.split("/")[0] for k in keys})
    per_budget: dict[float, dict[str, dict]] = {}
    with ProcessPoolExecutor(max(1, jobs)) as ex:
        for b in BUDGETS:
            rules = {"extends": "default", "budget": {"alarms": b, "per": "7D"}}
            per_budget[b] = dict(ex.map(_nab_one, [(root, k, rules) for k in keys]))
    out["budget_curve"] = {str(b): _nab_summary(per, keys) for b, per in per_budget.items()}
    loco = {}
    for cat in cats:
        held = [k for k in keys if k.startswith(cat + "/")]
        rest = [k for k in keys if not k.startswith(cat + "/")]
        best = max(BUDGETS, key=lambda b: _nab_summary(per_budget[b], rest)["nab_standard"] or 0.0)
        loco[cat] = {"budget_chosen_on_the_rest": best, **_nab_summary(per_budget[best], held)}
    out["leave_one_category_out"] = loco
    from kpi_lib.anomaly.protocol import halves

    a, b = halves(keys)  # the held-out halves of the keep/reject protocol, for the default budget
    out["halves"] = {"A": _nab_summary(per_budget[1], a), "B": _nab_summary(per_budget[1], b)}
    return out


def _family_case(args) -> tuple[str, object]:
    """One family case at one seed, scored (a process-pool task)."""
    from kpi_lib.anomaly import detect
    from kpi_lib.anomaly.families import generate, score

    fam, seed, rules = args
    c = generate(fam, seed)
    return fam, score(c, detect(c.series, c.rules(rules)))


def _family_scores(rules, seeds: range, jobs: int, which: str = "families") -> dict[str, list]:
    """Every family's scores at ``seeds``, in family and seed order, over ``jobs`` processes
    (``which``: "families", or "short" for the short, coarse series)."""
    from concurrent.futures import ProcessPoolExecutor

    from kpi_lib.anomaly.families import FAMILIES, SHORT_FAMILIES

    names = SHORT_FAMILIES if which == "short" else FAMILIES
    per: dict[str, list] = {fam: [] for fam in names}
    tasks = [(fam, s, rules) for fam in names for s in seeds]
    with ProcessPoolExecutor(max(1, jobs)) as ex:
        for fam, sc in ex.map(_family_case, tasks, chunksize=8):
            per[fam].append(sc)
    return per


def _families_of(rules, seeds: int, jobs: int = 1) -> dict:
    """Windows found and false alarms of one rule set over every family, seeds 0..``seeds``-1."""
    per, tot = {}, {"found": 0, "windows": 0, "false_alarms": 0, "series": 0, "weeks": 0.0}
    no_anomaly = {"false_alarms": 0, "series": 0}
    for fam, scores in _family_scores(rules, range(seeds), jobs).items():
        fa, weeks = sum(x.false_alarms for x in scores), sum(x.weeks for x in scores)
        per[fam] = {
            "found": f"{sum(x.found for x in scores)}/{sum(x.windows for x in scores)}",
            "false_alarms_per_series": round(fa / len(scores), 2),
            "false_alarms_per_week": round(fa / weeks, 3),
        }
        tot["found"] += sum(x.found for x in scores)
        tot["windows"] += sum(x.windows for x in scores)
        tot["false_alarms"] += fa
        tot["series"] += len(scores)
        tot["weeks"] += weeks
        if fam.startswith("no_anomaly_"):
            no_anomaly["false_alarms"] += fa
            no_anomaly["series"] += len(scores)
    return {
        "found": f"{tot['found']}/{tot['windows']}",
        "false_alarms_per_series": round(tot["false_alarms"] / tot["series"], 2),
        "false_alarms_per_week": round(tot["false_alarms"] / tot["weeks"], 3),
        "no_anomaly_false_alarms": no_anomaly["false_alarms"],
        "no_anomaly_false_alarms_per_series": round(no_anomaly["false_alarms"] / no_anomaly["series"], 2),
        "by_family": per,
    }


def fresh(rule_sets: list[str], first: int, last: int, jobs: int = 1) -> dict:
    """Found / false alarms on the families and the short series at seeds ``first..last``, for each
    rule set, and each one's windows gained over the first (net of false alarms at NAB's rate)."""
    from kpi_lib.anomaly.rules import load_rules

    specs = {r: (r if r in ("default", "legacy") else load_rules(r).to_dict()) for r in rule_sets}
    out, value = {}, {}
    for r, spec in specs.items():
        seeds = range(first, last + 1)
        per, fam, quiet = _counts(spec, seeds, jobs)
        short_per, short_counts, short_quiet = _counts(spec, seeds, jobs, "short")
        regime = per["regime_change"]["false_alarms"]
        out[r] = {
            "found": fam.found,
            "no_anomaly_fa": quiet,
            "regime_change_fa": regime,
            "other_fa": fam.false_alarms - quiet - regime,
            "short_found": short_counts.found,
            "short_no_anomaly_fa": short_quiet,
            "short_other_fa": short_counts.false_alarms - short_quiet,
            "by_family": {**per, **short_per},
        }
        value[r] = fam.value() + short_counts.value()
    for r in rule_sets[1:]:
        out[r]["windows_gained"] = round(value[r] - value[rule_sets[0]], 2)
    return {"seeds": f"{first}-{last}", **out}


def short(rule_sets: list[str], seeds: int, jobs: int = 1) -> dict:
    """The warm-up, measured: windows found and false alarms on the short, coarse series (a year of
    days, three years of weeks; scored from row 28) for each rule set, seeds 0..``seeds``-1."""
    from kpi_lib.anomaly.rules import load_rules

    out: dict[str, object] = {"seeds": seeds}
    for r in rule_sets:
        spec = r if r in ("default", "legacy") else load_rules(r).to_dict()
        out[r] = {
            fam: {
                "found": f"{sum(x.found for x in sc)}/{sum(x.windows for x in sc)}",
                "false_alarms": sum(x.false_alarms for x in sc),
            }
            for fam, sc in _family_scores(spec, range(seeds), jobs, "short").items()
        }
    return out


def families(seeds: int, jobs: int) -> dict:
    out: dict[str, dict] = {rules: _families_of(rules, seeds, jobs) for rules in ("default", "legacy")}
    out["seeds"] = seeds
    return out


def _counts(rules, seeds: range, jobs: int, which: str = "families") -> tuple[dict, object, int]:
    """(per-family found/false alarms, pooled :class:`protocol.Counts`, no-anomaly false alarms)."""
    from kpi_lib.anomaly.protocol import Counts

    per, found, fa, quiet = {}, 0, 0, 0
    for fam, scores in _family_scores(rules, seeds, jobs, which).items():
        f, w, a = (
            sum(x.found for x in scores),
            sum(x.windows for x in scores),
            sum(x.false_alarms for x in scores),
        )
        per[fam] = {"found": f"{f}/{w}", "false_alarms": a}
        found, fa = found + f, fa + a
        quiet += a if fam.startswith("no_anomaly_") else 0
    return per, Counts(found, fa), quiet


def compare(root: Path, candidates: list[str], jobs: int, seeds: int, base: str = "default") -> dict:
    """The keep/reject protocol (:mod:`kpi_lib.anomaly.protocol`): ``default`` against each candidate
    rule set, in one run: NAB dev in-process (whole split and halves A/B), the synthetic families,
    the short series and the causal check (3 dev series cut at 30/60/90%). Each candidate is
    reported under its file's stem, with its own verdict against ``default`` (or ``base``)."""
    import random
    from concurrent.futures import ProcessPoolExecutor

    from kpi_lib.anomaly import detect
    from kpi_lib.anomaly.protocol import Figures, causal_violations, gains, halves, verdict
    from kpi_lib.anomaly.rules import load_rules

    wins = json.loads((root / "windows.json").read_text())
    keys = sorted(wins)
    a, b = halves(keys)
    out: dict[str, dict] = {}
    figures = {}
    # plain dicts: picklable, and families can add a calendar
    specs = [(Path(base).stem, load_rules(base).to_dict())]
    specs += [(Path(c).stem, load_rules(c).to_dict()) for c in candidates]
    for name, rules in specs:
        with ProcessPoolExecutor(max(1, jobs)) as ex:
            per = dict(ex.map(_nab_one, [(root, k, rules) for k in keys]))
        fam_per, fam, quiet = _counts(rules, range(seeds), jobs)
        short_per, short_counts, short_quiet = _counts(rules, range(SHORT_SEEDS), jobs, "short")
        violations = []
        for key in random.Random(7).sample(keys, 3):
            df = pd.read_csv(root / "data" / key)
            s = pd.Series(df["value"].to_numpy(), index=pd.DatetimeIndex(pd.to_datetime(df["timestamp"])))
            if causal_violations(s, lambda x, r=rules: detect(x, r)["is_anomaly"].to_numpy()):
                violations.append(key)
        whole, half_a, half_b = _nab_summary(per, keys), _nab_summary(per, a), _nab_summary(per, b)
        out[name] = {
            **whole,
            "half_a": half_a,
            "half_b": half_b,
            "families": {
                "found": fam.found,
                "false_alarms": fam.false_alarms,
                "no_anomaly_false_alarms": quiet,
            },
            "short": {
                "found": short_counts.found,
                "false_alarms": short_counts.false_alarms,
                "no_anomaly_false_alarms": short_quiet,
                **short_per,
            },
            "causal_violations": violations,
        }
        figures[name] = Figures(
            nab=whole["nab_standard"],
            half_a=half_a["nab_standard"],
            half_b=half_b["nab_standard"],
            windows_a=sum(len(wins[k]) for k in a),
            windows_b=sum(len(wins[k]) for k in b),
            families=fam,
            short=short_counts,
            no_anomaly_false_alarms=quiet,
            causal_violations=len(violations),
            short_no_anomaly_false_alarms=short_quiet,
        )
        if name != specs[0][0]:
            keep, why = verdict(figures[specs[0][0]], figures[name])
            g = {k: round(v, 2) for k, v in gains(figures[specs[0][0]], figures[name]).items()}
            out[name]["verdict"] = {"keep": keep, "reasons": why, "gains": g, "families_seeds": seeds}
    return out


def _scan(biz, series, rules) -> tuple[dict, float]:
    from kpi_lib.anomaly.evaluate import SeriesKey, detect_all, event_scores, scan_windows

    t = time.perf_counter()
    results = detect_all(series, rules)
    seconds = time.perf_counter() - t
    sc = event_scores(results, biz.labels(), grace=2, windows=scan_windows(biz))
    out = sc.as_dict()
    out["events"] = {
        r["label_id"]: {
            "kind": r["kind"],
            "found": bool(r["found"]),
            "lag_periods": None
            if r["lag_periods"] is None or r["lag_periods"] != r["lag_periods"]
            else int(r["lag_periods"]),
            "before_end": bool(r["before_end"]),
        }
        for r in sc.events.to_dict("records")
    }
    out["false_alarm_list"] = [
        {
            "series": SeriesKey(f.kpi, f.grain, f.dimension, f.dim_value).label(),
            "at": str(f.at),
            "rule": str(results[SeriesKey(f.kpi, f.grain, f.dimension, f.dim_value)].loc[f.at, "rule"]),
        }
        for f in sc.false.itertuples()
    ][:20]
    out["detect_seconds"] = round(seconds, 1)
    return out, seconds


def demo(seeds: list[int], lines: int, days: int, compare: bool) -> dict:
    from kpi_lib.anomaly.evaluate import business_frames, business_rules, demo_series
    from kpi_lib.demo import Business

    variants = {"business": business_rules()}
    if compare:
        variants.update(
            {
                "business_retail_calendar_only": business_rules(calendar=None),
                "business_no_calendar": business_rules(calendar=()),
                "default": "default",
            }
        )
    per_seed, totals = {}, {v: {"found": 0, "labels": 0, "false_alarms": 0} for v in variants}
    kinds: dict[str, list[bool]] = {}
    for seed in seeds:
        t = time.perf_counter()
        biz = Business(lines=lines, days=days, seed=seed, end=pd.Timestamp(DEMO_END).to_pydatetime())
        frames = business_frames(biz)
        t_gen = time.perf_counter() - t
        t = time.perf_counter()
        series = demo_series(biz, frames=frames)
        t_agg = time.perf_counter() - t
        entry = {
            "series": len(series),
            "generate_seconds": round(t_gen, 1),
            "aggregate_seconds": round(t_agg, 1),
        }
        for name, rules in variants.items():
            scores, _ = _scan(biz, series, rules)
            entry[name] = scores
            for k in ("found", "labels", "false_alarms"):
                totals[name][k] += scores[k]
            if name == "business":
                for ev in scores["events"].values():
                    kinds.setdefault(ev["kind"], []).append(ev["found"])
        per_seed[str(seed)] = entry
    for t in totals.values():
        tp, fp, fn = t["found"], t["false_alarms"], t["labels"] - t["found"]
        t["f1"] = round(2 * tp / (2 * tp + fp + fn), 3) if tp + fp + fn else 1.0
    return {
        "lines": lines,
        "days": days,
        "seeds": seeds,
        "end": DEMO_END,
        "event_f1": totals["business"]["f1"],
        "totals": totals,
        "found_by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in kinds.items()},
        "per_seed": per_seed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-nab", action="store_true")
    ap.add_argument("--nab-root", type=Path, default=SHARED / "nab-dev")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-families", action="store_true")
    ap.add_argument("--families-seeds", type=int, default=FAMILY_SEEDS)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--demo-seeds", default="1,2")
    ap.add_argument("--demo-lines", type=int, default=1_000_000)
    ap.add_argument("--demo-days", type=int, default=730)
    ap.add_argument("--demo-compare", action="store_true")
    ap.add_argument(
        "--candidate",
        default="",
        help="comma-separated rules files (or built-in names) to judge against default",
    )
    ap.add_argument("--base", default="default", help="the rule set --candidate is judged against")
    ap.add_argument("--fresh", default="", help="comma-separated rule sets to score on fresh family seeds")
    ap.add_argument("--fresh-seeds", default=FRESH_SEEDS, help="first-last seed (inclusive) for --fresh")
    ap.add_argument(
        "--short", default="", help="comma-separated rule sets to score on the short, coarse series"
    )
    a = ap.parse_args()
    if a.short:
        print(json.dumps(short(a.short.split(","), SHORT_SEEDS, a.jobs), indent=1))
        return 0
    if a.fresh:
        first, last = (int(v) for v in a.fresh_seeds.split("-"))
        print(json.dumps(fresh(a.fresh.split(","), first, last, a.jobs), indent=1))
        return 0
    if a.candidate:
        print(
            json.dumps(
                compare(a.nab_root, a.candidate.split(","), a.jobs, a.families_seeds, a.base), indent=1
            )
        )
        return 0
    out = {"timing": timing(a.runs)}
    if not a.skip_families:
        out["families"] = families(a.families_seeds, a.jobs)
    if not a.skip_demo:
        out["demo"] = demo(
            [int(x) for x in a.demo_seeds.split(",")], a.demo_lines, a.demo_days, a.demo_compare
        )
    if not a.skip_nab:
        out["nab"] = nab(a.nab_root, a.jobs) if a.nab_root.is_dir() else {"error": f"{a.nab_root} not found"}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
