"""Question text -> a :class:`Reading`: the typed spec ``kpis.query`` runs, or why not.

Deterministic: every word is read as a KPI, a dimension, a member value, a time phrase, a word
that shapes the question (top, which, vs, why, excluding...) or a filler word. A content word that
is none of those makes the reading a decline (or a clarify, when it is a near miss of several
known words): a number is only ever given for a question that was understood in full. The parser
never writes SQL; it produces :class:`kpi_lib.kpis.Question` objects.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rapidfuzz.distance import DamerauLevenshtein

from .. import scope as row_scope
from ..kpis import Question, fiscal_year_start
from ..kpis.definitions import business
from . import lexicon, timephrases, wording
from . import regex as re
from .lexicon import Lexicon, singular, words
from .timephrases import Period

# Words that carry no content of their own here (questions, fillers, verbs of selling and buying).
FILLER = set(
    """
    a an the what what's whats was is are were be been being do does did done how much many
    me us we our ours i you your my it its they their them there here this that these those
    show tell give get got let's lets please can could would will should shall may might
    of in on at for from to into over during within across through throughout with by per
    and or plus also as than then so just only overall total totals in total all altogether
    number amount value level figure figures count sum whole entire exact exactly approximately
    have has had having make made making bring brought came come coming generate generated
    sell sold selling sale buy bought buying purchase purchased place placed ship shipped shipping ordered
    hey hi hello thanks thank ok okay um uh er erm question gimme pls plz kindly
    i'd i'm i've we've we're we'd you've wondering wonder curious interested keen love
    whether meaning among amongst
    shift shifted shifting
    booked posted recorded logged registered clocked racked notched
    take taken took earn earned earning receive received see seen look looking like
    kpi metric metrics stat stats statistic statistics data report number's
    business company store's firm shop our's ever far date period time times
    something anything things thing stuff much
    happen happened going go went acquire acquired gain gained win won achieve achieved
    record recorded saw register registered log logged process processed handle handled
    deliver delivered via using through
    doing perform performed performing performance result results numbers
    which who where when whose
    some any each every
    distinct unique individual different separate & everywhere
    combined together jointly summarise summarize summary analyse analyze analysis overview
    while whilst name names display find know want need between
    move moved moving worldwide globally global everything
    """.split()
)
EXCLUDE_CUES = (
    "not counting",
    "not including",
    "outside of",
    "outside",
    "aside from",
    "ignoring",
    "ignore",
    "excl",
    "other than",
    "apart from",
    "leaving apart",
    "leaving aside",
    "setting aside",
    "putting aside",
    "leaving out",
    "but not",
    "everything but",
    "anything but",
    "all but",
    "excluding",
    "exclude",
    "excluded",
    "except",
    "without",
    "ex",
    "minus",
    "besides",
    "not from",
    "not in",
    "not on",
    "not via",
    "not through",
    "non",
)
#: said after the values they leave out: "Grocery revenue, Marketplace excluded"
POSTFIX_EXCLUDE_CUES = (
    "excluded",
    "not included",
    "not counted",
    "left out",
    "taken out",
    "set aside",
    "aside",
    "removed",
    "omitted",
)
ASC_WORDS = {
    "bottom",
    "fewer",
    "thinnest",
    "worst",
    "lowest",
    "least",
    "fewest",
    "smallest",
    "weakest",
    "min",
    "minimum",
    "slowest",
    "quietest",
    "poorest",
    "lower",
    "ascending",
}
DESC_WORDS = {
    "top",
    "best",
    "highest",
    "most",
    "largest",
    "biggest",
    "greatest",
    "strongest",
    "max",
    "maximum",
    "peak",
    "leading",
    "busiest",
    "higher",
    "more",
    "descending",
}
RANK_WORDS = (
    ASC_WORDS
    | DESC_WORDS
    | {"rank", "ranked", "ranking", "sort", "sorted", "selling", "performing", "seller", "sellers", "popular"}
)
# The words that join the values of a list ("except Grocery, Books and the Beauty category")
LIST_GLUE = {"and", "or", "nor", "&", "the", "a", "an", "both", "either", "plus"}
# "across / in / from all channels": one total over every value, not a breakdown ("list all
# regions" still lists them)
ACROSS = {"across", "in", "from", "over", "for", "on", "through", "throughout", "at", "of"}
# Words that make a named period one end of a span ("before November", "up to 3 May").
OPEN_CUES = {
    "before",
    "after",
    "until",
    "till",
    "til",
    "through",
    "thru",
    "up to",
    "prior to",
    "ending",
    "ended",
    "onwards",
    "later than",
    "earlier than",
    "up until",
}
# "higher than last month": with "than", these compare rather than rank
COMPARATIVES = {"higher", "lower", "more", "less", "fewer", "bigger", "smaller", "better", "worse", "greater"}
MAGNITUDE = COMPARATIVES - {"better", "worse"}  # (which of better or worse is higher depends on the KPI)
# Words for currencies -> the ISO codes they may mean ("dollars" is any dollar)
_DOLLARS = ("USD", "CAD", "AUD", "NZD", "SGD", "HKD")
CURRENCY_WORDS = {
    **{w: _DOLLARS for w in ("dollar", "dollars", "bucks", "$")},
    **{w: ("EUR",) for w in ("euro", "euros", "€")},
    **{w: ("GBP",) for w in ("pound", "pounds", "sterling", "£", "quid")},
    **{w: ("JPY",) for w in ("yen",)},
    **{w: ("CHF",) for w in ("franc", "francs")},
    **{w: ("CNY",) for w in ("yuan", "rmb", "renminbi")},
    **{w: ("INR",) for w in ("rupee", "rupees")},
    **{w: ("BRL",) for w in ("reais",)},
    **{w: ("MXN", "ARS", "CLP", "COP") for w in ("peso", "pesos")},
    **{w: ("SEK", "NOK", "DKK", "ISK") for w in ("krona", "kronor", "krone", "kroner")},
    **{
        c.lower(): (c,)
        for c in "USD EUR GBP JPY CHF CNY INR BRL MXN CAD AUD NZD SGD HKD SEK NOK DKK ZAR".split()
    },
}
SHARE_WORDS = re.compile(
    r"\b(?:what |which )?(?:(?:the )?(?:share|proportion|fraction|portion|percentage|percent)|%) of (?:the |our |all |total )*"
    r"|\bcontribut(?:e|ed|ion)s? to (?:the |our |all |total )*"
)
# A breakdown's slices as shares of the whole: "as a %", "% of total", "revenue mix by region"
BREAKDOWN_SHARE = re.compile(
    r"\b(?:as|in) an? (?:%|percent(?:age)?|share|proportion)(?: of (?:the )?(?:total|whole|all))?"
    r"|(?:\b(?:share|percent(?:age)?)|%) of (?:the )?total\b"
    r"|\b(?:share|mix)(?= (?:by|per|across)\b)"
)
SHARE_HOW = (
    "Shares are computed for a sum or count: one slice ('what share of revenue came from Europe last "
    "month') or a breakdown ('revenue share by region last month'); for anything else ask for the "
    "breakdown (e.g. 'revenue by region last month')."
)
# Words of how busy a time or place was: by orders when the question names no KPI
BUSY_WORDS = {"busiest", "quietest", "slowest"}
# Words that judge rather than measure: "worst" return rate is the highest one (a KPI whose
# catalog entry says up_is_good: false), while "lowest" is the lowest whatever the KPI.
QUALITY_WORDS = {"best", "worst", "strongest", "weakest", "poorest"}
# Words after which a period is the one compared against ("compared with October")
_BASE_CUE = r"\b(?:compared (?:with|to)|vs|versus|against|than|(?:relative|in comparison) to)"
# A unit said after a ratio KPI ("margin %", "return rate in percent") is not a comparison.
UNIT_WORDS = {"%", "percent", "percentage", "pct"}
# Words that name a change between two periods: both a cue to compare ("revenue growth last month")
# and, in a ranking or breakdown, a change that is not computed ("which region grew most").
_CHANGE = {
    "growth",
    "grow",
    "grew",
    "grown",
    "change",
    "changed",
    "increase",
    "increased",
    "decrease",
    "decreased",
    "difference",
    "yoy",
    "mom",
    "wow",
    "qoq",
    "rise",
    "rose",
    "fall",
    "fell",
    "drop",
    "dropped",
    "variation",
    "jump",
    "jumped",
    "climb",
    "climbed",
}
# Words that ask for a comparison: the change words, plus words that also set two slices side by
# side ("Apparel vs Books last month") and "% / up / down" ("up or down vs last week").
COMPARE_WORDS = _CHANGE | {
    "vs",
    "versus",
    "compared",
    "compares",
    "compare",
    "comparison",
    "against",
    "percent",
    "percentage",
    "pct",
    "%",
    "up",
    "down",
}
# The words that ask for a change over time, which a ranking or breakdown does not show. Beyond
# _CHANGE these are not comparison cues: "gain(ed)" is a filler and "declined" a why-state
# elsewhere, and "growing" / "improved" are not read at all (so a value question with them declines).
CHANGE_WORDS = _CHANGE | {"growing", "gain", "gained", "gains", "declined", "improved", "improvement"}
WHY_WORDS = {"why", "explain", "cause", "caused", "drove", "driver", "drivers", "reason", "reasons", "behind"}
WHY_STATES = {
    "drop",
    "dropped",
    "fall",
    "fell",
    "low",
    "high",
    "spike",
    "spiked",
    "jump",
    "jumped",
    "rise",
    "rose",
    "surge",
    "surged",
    "dip",
    "dipped",
    "decline",
    "declined",
    "increase",
    "increased",
    "decrease",
    "decreased",
    "weak",
    "strong",
    "poor",
    "bad",
    "good",
    "unusual",
    "odd",
    "strange",
    "so",
    "around",
    "big",
    "small",
    "change",
    "changed",
    "go",
    "happened",
    "happen",
    "to",
    "up",
    "down",
}
TIME_GRAINS = {
    "day": "day",
    "daily": "day",
    "days": "day",
    "date": "day",
    "week": "week",
    "weekly": "week",
    "weeks": "week",
    "month": "month",
    "monthly": "month",
    "months": "month",
    "quarter": "quarter",
    "quarterly": "quarter",
    "quarters": "quarter",
    "year": "year",
    "yearly": "year",
    "annual": "year",
    "annually": "year",
    "years": "year",
    "hour": "hour",
    "hourly": "hour",
    "hours": "hour",
    "weekday": "weekday",
}
# "per customer", "per head": a ratio to people, which no KPI here is ("per day" is a breakdown)
PER_HEAD = {
    "customer",
    "shopper",
    "buyer",
    "client",
    "head",
    "capita",
    "person",
    "people",
    "user",
    "visitor",
    "employee",
}
BREAKDOWN_CUES = {"by", "per", "each", "every", "across", "breakdown", "split", "broken"}
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twenty": 20,
}
YOY = (
    "year over year",
    "year on year",
    "yoy",
    "vs last year",
    "versus last year",
    "compared with last year",
    "compared to last year",
    "than last year",
)


@dataclass
class Reading:
    """How a question was read: a status, the question(s) to run and the words behind them."""

    text: str
    status: str = "answer"  # answer | decline | clarify
    shape: str = "value"  # value | breakdown | top | rank_time | trend | compare | why | incidents | share
    question: Question | None = None
    compare_to: Question | None = None
    rank_grain: str | None = None  # for a ranking over time
    top_n: int = 1  # how many periods a ranking over time names
    order: str = "desc"
    direction: int | None = None  # a why question's "drop" (-1) or "rise" (+1), when it says one
    period: Period | None = None
    period_b: Period | None = None
    whole_data: bool = False  # no time was named: all the data up to the as-of
    any_kpi: bool = False  # an incidents question that names no KPI: every KPI's
    open_only: bool = False  # an incidents question about the open ones only
    shares: bool = False  # a breakdown or ranking that also gives each slice's share of the whole
    difference: bool = False  # two values side by side, and the difference between them
    threshold: tuple[str, float, str] | None = None  # "did revenue pass $1M": (above|below, 1e6, as said)
    understood: list[tuple[str, str]] = field(default_factory=list)  # (words, what they were read as)
    reason: str | None = None
    choices: list[str] = field(default_factory=list)

    def refuse(self, status: str, reason: str, choices: list[str] | None = None) -> Reading:
        self.status, self.reason, self.choices = status, reason, list(choices or [])
        self.question = self.compare_to = None
        return self


@dataclass
class _Tok:
    word: str
    start: int
    end: int
    role: str | None = None  # what it was read as


def normalise(text: str) -> str:
    t = text.lower().replace("’", "'").replace("‘", "'").replace("–", "-").replace("—", "-")
    # accents folded as the lexicon folds them: "descrição" is "descricao", "são paulo" "sao paulo"
    t = "".join(c for c in unicodedata.normalize("NFKD", t) if not unicodedata.combining(c))
    t = re.sub(r"[\"“”`]", " ", t)
    t = re.sub(r"(?<![a-z])r\$", " reais ", t)  # Brazil's R$ is not the dollar
    return re.sub(r"\s+", " ", t).strip()


# Time words long enough that one slip of the keyboard ("yesterdy", "quater", "novmber") cannot
# be another word; each is read as what it was meant to be, and the reading says so.
TIME_WORDS = (
    "yesterday",
    "quarter",
    "quarters",
    "previous",
    "fortnight",
    *(m for m in timephrases.MONTHS if len(m) >= 5),
    *(d for d in timephrases.WEEKDAYS if len(d) >= 6),
)


def _known_words(lex: Lexicon) -> set[str]:
    """Every word that already means something here (a filler, a shape word, a word of a KPI,
    dimension, value, alias or undefined measure)."""
    known = (
        set(FILLER) | set(TIME_GRAINS) | set(COMPARE_WORDS) | set(WHY_WORDS) | set(WHY_STATES) | RANK_WORDS
    )
    for table in (lex.kpi_phrases, lex.dim_phrases, lex.member_phrases, lex.undefined, lex.aliases):
        for phrase in table:
            known.update(phrase.split())
    return known


# BI shorthand for units of time ("orders last wk", "rev last mo", "gm% last qtr"), and for the
# last N days/weeks/months ("l7d", "last 30d"); a word the data or catalog uses itself (a state
# "MO", a source column "yr") keeps its meaning there.
SHORT_UNITS = {
    "wk": "week",
    "wks": "weeks",
    "mo": "month",
    "mos": "months",
    "mth": "month",
    "mths": "months",
    "qtr": "quarter",
    "qtrs": "quarters",
    "yr": "year",
    "yrs": "years",
    "hr": "hour",
    "hrs": "hours",
    "mnth": "month",
    "mnths": "months",
    # chat shorthand for whole periods ("# orders yday vs dby", "aov lw", "gm% lm")
    "yday": "yesterday",
    "tdy": "today",
    "yest": "yesterday",
    "ystd": "yesterday",
    "dby": "the day before yesterday",
    "lw": "last week",
    "lm": "last month",
    "lq": "last quarter",
    "ly": "last year",
    "py": "last year",  # accounting's prior year and current year
    "cy": "this year",
}
_SPAN_UNITS = {"d": "days", "w": "weeks", "m": "months", "q": "quarters", "y": "years", "h": "hours"}


def _new_before_value(t: str, lex: Lexicon) -> str:
    """``t`` with "new <value> customers" as "<value> new customers" ("new Web customers"), so the
    value is a filter and "new customers" the KPI."""
    if not re.search(r"\b(?:new|first[- ]time)\b", t):
        return t
    alts = "|".join(
        re.escape(ph) for ph in sorted({*lex.member_phrases, *lex.aliases}, key=len, reverse=True)
    )
    return re.sub(
        rf"\b(new|first[- ]time) ((?:{alts})) (customers?|shoppers?|buyers?|clients?)\b", r"\2 \1 \3", t
    )


def _expand_shorthand(t: str, known: set[str]) -> tuple[str, list[tuple[str, str]]]:
    """``t`` with time shorthand written out, and the (typed, read as) pairs."""
    expanded: list[tuple[str, str]] = []

    def span(m: re.Match) -> str:
        if m.group(0) in known:
            return m.group(0)
        out = f"{m.group(1) or 'last'} {m.group(2)} {_SPAN_UNITS[m.group(3)]}"
        expanded.append((m.group(0), out))
        return out

    t = re.sub(r"\b(?:l|(last|past|previous|prior|trailing) )(\d+) ?([dwmqyh])\b", span, t)
    t = re.sub(
        r"\b(last|this|same|previous|prior|current) q\b", r"\1 quarter", t
    )  # "aov last q vs same q ly"
    t = re.sub(r"\bq before\b", "quarter before", t)  # "EU units lq vs q before"

    def whole(m: re.Match) -> str:
        # "the previous calendar month", "last full week": the calendar period, as "last month" is
        which = "this" if m.group(1) in ("this", "current") else "last"
        out = f"{which} {m.group(3)}"
        expanded.append((m.group(0), out))
        return out

    t = re.sub(
        r"\b(last|past|previous|prior|this|current) ((?:full|complete|whole|calendar|entire) )+(week|month|quarter|year)\b",
        whole,
        t,
    )

    def unit(m: re.Match) -> str:
        w = m.group(0)
        if w not in SHORT_UNITS or w in known:
            return w
        expanded.append((w, SHORT_UNITS[w]))
        return SHORT_UNITS[w]

    return re.sub(r"[a-z]+", unit, t), expanded


# Short time words, fixed only when two neighbouring letters were swapped ("yaer", "mohtn") or one
# letter was left out ("mnth").
SHORT_TIME_WORDS = ("year", "years", "week", "weeks", "month", "months", "today", "days")


def _fix_time_typos(t: str, known: set[str]) -> tuple[str, list[tuple[str, str]]]:
    """``t`` with each unknown word of 6+ letters that is one edit from exactly one time word
    (same first letter), or of 4+ letters that is a short time word with two neighbouring letters
    swapped or one letter left out, replaced by it, and the (typed, read as) pairs."""
    fixed: list[tuple[str, str]] = []

    def sub(m: re.Match) -> str:
        w = m.group(0)
        if len(w) < 4 or w in TIME_WORDS or w in known or singular(w) in known:
            return w
        swapped = [  # or with one letter left out ("mnth", "weks")
            x
            for x in SHORT_TIME_WORDS
            if x[0] == w[0]
            and (sorted(x) == sorted(w) or len(x) == len(w) + 1)
            and DamerauLevenshtein.distance(w, x) == 1
        ]
        if len(swapped) == 1:
            fixed.append((w, swapped[0]))
            return swapped[0]
        if len(w) < 6:
            return w
        near = {x for x in TIME_WORDS if x[0] == w[0] and DamerauLevenshtein.distance(w, x) == 1}
        if len(near) != 1:
            return w
        good = near.pop()
        fixed.append((w, good))
        return good

    return re.sub(r"[a-z]+", sub, t), fixed


def _present(lex: Lexicon, names) -> list[tuple[str, str]]:
    """(dimension, value) of each of an alias's or group's ``names`` that the data holds."""
    wanted = {a.lower() for a in names}
    return [(d, v) for d, vs in lex.members.items() for v in vs if v.lower() in wanted]


def _fix_word_typos(t: str, known: set[str], lex: Lexicon) -> tuple[str, list[tuple[str, str]]]:
    """``t`` with each unknown word of 5+ letters that is within a typo of exactly one word of a
    KPI, dimension, value or alias phrase replaced by it ("oders", "avrage order value", "midle
    east"), and the (typed, read as) pairs. The phrase must then still be read in full."""
    fixed: list[tuple[str, str]] = []

    def sub(m: re.Match) -> str:
        w = m.group(0)
        if len(w) < 5 or w in known or singular(w) in known or w in TIME_WORDS:
            return w
        near = lex.fuzzy_word(w)
        if len(near) != 1:
            return w
        if t[max(0, m.start() - 3) : m.start()] == "by " and not any(
            near[0] in p.split() for p in lex.dim_phrases
        ):
            return w  # "revenue by stare": a slip read as a value there would answer for one store
        good = near[0]
        if singular(w) != w:  # "categries": still plural ("which categories" names several)
            plural = good[:-1] + "ies" if good.endswith("y") else good + "s"
            good = plural if singular(plural) == good else good
        fixed.append((w, good))
        return good

    t = re.sub(r"[a-z]+", sub, t)
    return _fix_glued_and_names(t, known, lex, fixed), fixed


def _one_slip(typed: str, meant: str) -> bool:
    """Whether ``typed`` is one word of a name of several typed with a slip or two ("montor": monitor,
    "nothr": north): the same first letter ("phones" is not "honey"), at most two edits."""
    return typed[:1] == meant[:1] and DamerauLevenshtein.distance(typed, meant) <= 2


# Time words a glued word may hold ("lastyear", "lastweek"), with the known words
_GLUE_TIME = {"last", "this", "next", "past", "previous", "prior", "day", "week", "month", "quarter", "year"}
_GLUE_SHORT = {"by", "in", "of", "on", "to", "vs"}  # the two-letter words a glued pair may end or start with


def _fix_glued_and_names(t: str, known: set[str], lex: Lexicon, fixed: list[tuple[str, str]]) -> str:
    """``t`` with two words typed as one split ("lastyear", "revenuefrom", "ordersby"), and a slip in
    one word of a value of several words read as that value ("aurora 4k montor", "helix air fyer",
    "latin amrica"), when exactly one reading fits; ``fixed`` gets the (typed, read as) pairs."""

    def word(x: str) -> bool:
        return len(x) >= 2 and (x in known or singular(x) in known or x in _GLUE_TIME or x in TIME_WORDS)

    def unknown(x: str) -> bool:
        return x.isalpha() and not word(x) and x not in lex.member_phrases

    said = _says_words(lex)
    toks = t.split(" ")
    out: list[str] = []
    for w in toks:
        if len(w) >= 6 and unknown(w):
            splits = [
                (w[:i], w[i:])
                for i in range(2, len(w) - 1)
                if word(w[:i])
                and word(w[i:])
                and all(len(x) >= 3 or x in _GLUE_SHORT for x in (w[:i], w[i:]))
                # one of them names something ("overtaken" is not "over taken")
                and any(x in said or singular(x) in said for x in (w[:i], w[i:]))
            ]
            if len(splits) == 1:
                fixed.append((w, " ".join(splits[0])))
                w = " ".join(splits[0])
        out.append(w)
    toks = " ".join(out).split(" ")
    i = 0
    while i < len(toks):
        w = toks[i]
        if len(w) >= 4 and unknown(w):
            found = None
            for size in (2, 3, 4):
                for start in range(max(0, i - size + 1), min(i, len(toks) - size) + 1):
                    window = toks[start : start + size]
                    near = [
                        p
                        for p in lex.fuzzy(" ".join(window))
                        if p in lex.member_phrases
                        and len(p.split()) == size
                        and all(
                            a == b
                            for j, (a, b) in enumerate(zip(window, p.split(), strict=True))
                            if start + j != i
                        )
                        and _one_slip(w, p.split()[i - start])
                    ]
                    if len(set(near)) == 1:
                        found = (start, size, near[0])
                        break
                if found:
                    break
            if found:
                start, size, phrase = found
                fixed.append((" ".join(toks[start : start + size]), phrase))
                toks[start : start + size] = phrase.split()
        i += 1
    return " ".join(toks)


# "Anything unusual in orders last week?": the incidents the anomaly rules raised
INCIDENT_WORDS = re.compile(
    r"\b(?:anomal(?:y|ies|ous)|incidents?|unusual|outliers?|alerts?|abnormal|irregular(?:ity|ities)?)\b"
)
_INCIDENT_FILLER = re.compile(
    r"\b(?:(?:were|was|are|is) there|(?:have|has) there been|did (?:we|you) (?:have|see|get|spot)|any|anything"
    r"|detected|flagged|raised|fired|spotted|list|show me)\b"
)


def _incidents_reading(t: str, as_of: datetime, lex: Lexicon) -> Reading:
    """An incidents question read as the same question without its incident words (so periods,
    KPIs and filters mean what they mean everywhere); with no time said, the last 7 days."""
    open_only = re.search(r"\b(?:open|ongoing|unresolved|still open)\b", t) is not None
    rest = re.sub(r"\b(?:still )?(?:open|ongoing|unresolved)\b", " ", t) if open_only else t
    rest = re.sub(r"\s+", " ", _INCIDENT_FILLER.sub(" ", INCIDENT_WORDS.sub(" ", rest))).strip()
    sing = [singular(w) for w in words(rest)]
    grams = {" ".join(sing[i : i + n]) for n in range(1, lex.max_len() + 1) for i in range(len(sing))}
    any_kpi = not (grams & set(lex.kpi_phrases))
    # no KPI said: read the rest with the KPI kept by the most dimensions (any slice can be asked)
    broadest = max(
        (k for k in lex.kpis.values() if k.name not in lex.unavailable),
        key=lambda k: len(k.dimensions),
        default=next(iter(lex.kpis.values())),
    )
    r = parse(f"{rest} {broadest.name.replace('_', ' ')}" if any_kpi else rest, as_of, lex)
    r.text, r.any_kpi, r.open_only = t, any_kpi, open_only
    if r.status != "answer":
        return r
    q = r.question
    if r.whole_data and open_only:  # "open incidents": whenever they began
        r.understood.append(("open", "incidents not yet resolved, whenever they began"))
    elif r.whole_data:
        (week,), _ = timephrases.find("the last 7 days", as_of)
        r.period, r.whole_data = week.period, False
        q = q.replace(start=week.period.start, end=week.period.end)
        r.understood.append(("(no time said)", f"time: {week.period.describe()}"))
    r.shape, r.compare_to = "incidents", None
    r.question = q.replace(grain="total", by=(), top=None)
    if any_kpi:
        r.understood = [(w, m) for w, m in r.understood if not m.startswith("KPI:")]
    r.understood.append(("incident words", "the incidents the anomaly rules raised"))
    return r


# Words that say something in a part of a message on their own (with the lexicon's): a time, a
# comparison, a condition. A part without any ("need it for standup", "thx, J.", "(it's for the
# deck)") is an aside, dropped while another part asks the question.
_TIME_SAYS = {
    "yesterday", "today", "tonight", "tomorrow", "ytd", "mtd", "qtd", "wtd", "ago", "since", "until",
    "till", "fortnight", "weekend", "previous", "prior", "earlier", "later", "before", "after",
}  # fmt: skip
_CONDITION_SAYS = {
    "not", "no", "except", "excluding", "excl", "without", "but", "bar", "minus", "vs", "versus",
    "compared", "against", "%", "$", "percent", "pct", "share", "why", "than",
    # a currency is a condition on the answer ("sales (EUR)"), which the parser refuses unless it is the data's
    "eur", "euro", "euros", "usd", "dollar", "dollars", "gbp", "pound", "pounds", "sterling", "brl", "real",
    "reais", "jpy", "yen", "cad", "aud", "chf", "franc", "francs", "inr", "rupee", "rupees", "cny", "yuan",
    "rmb", "mxn", "peso", "pesos", "sek", "nok", "dkk", "krona", "kronor", "krone",
}  # fmt: skip


_SAYS_CACHE: dict[int, tuple[Lexicon, frozenset[str]]] = {}


def _says_words(lex: Lexicon) -> frozenset[str]:
    """The words that say something (see above), this lexicon's included; kept per lexicon."""
    hit = _SAYS_CACHE.get(id(lex))
    if hit is not None and hit[0] is lex:
        return hit[1]
    said = set(_TIME_SAYS) | _CONDITION_SAYS | set(TIME_GRAINS) | set(SHORT_UNITS) | RANK_WORDS
    said |= (
        set(timephrases.MONTHS)
        | set(timephrases.WEEKDAYS)
        | (set(COMPARE_WORDS) - FILLER - {"to", "up", "down"})
    )
    for table in (lex.kpi_phrases, lex.dim_phrases, lex.member_phrases, lex.undefined, lex.aliases):
        for phrase in table:
            said.update(w for w in phrase.split() if w not in FILLER)
    if len(_SAYS_CACHE) > 8:
        _SAYS_CACHE.clear()
    _SAYS_CACHE[id(lex)] = (lex, frozenset(said))
    return _SAYS_CACHE[id(lex)][1]


# An aside is never dropped if it might hold a condition in words the lexicon does not know: a
# restricting word ("(online only)") or a name after a preposition ("(in Brazil)", "for Amazon").
_RESTRICTIVE = re.compile(r"\b(?:only|just|exclusively|solely|purely|alone|where|whose)\b")
_NAMED = re.compile(
    r"\b(?:in|for|from|at|via|on|by|through|within|across|to|of|with)\s+(?:the\s+)?([A-Z][\w&'-]+)"
)


def _says_something(part: str, lex: Lexicon) -> bool:
    """Whether a part of a message names a KPI, a dimension or value, a time, a number or a
    condition, or might (else it is an aside: a greeting, a reason, a signature)."""
    if re.search(r"[a-z]", part) and any(len(m.group(1)) > 1 for m in _NAMED.finditer(part)):
        return True  # all capitals tell no name from a word
    if _RESTRICTIVE.search(part.lower()):
        return True
    t = re.sub(r"\b\d+\s*(?:min|mins|minutes|secs?|seconds)\b", " ", normalise(part))  # "in 5 min"
    t = re.sub(r"\b(?:we|they|you|i|who) share\b", " ", t)  # "(they share a team)": the verb
    if re.search(r"\d|[$%€£]", t):
        return True
    said = _says_words(lex)
    return any(w in said or singular(w) in said for w in re.findall(r"[a-z]+", t))


def without_asides(lines: list[str], lex: Lexicon) -> str:
    """The question in a message: its lines and sentences (and remarks in brackets) that say
    something, while at least one does ("Re: planning / which month had the most orders? / thx, J.",
    "orders on Friday??? need it for standup in 5 min", "bottom 3 products (candidates for
    delisting)")."""
    parts = [
        p for line in lines for p in re.split(r"(?<=[?!])\s+|(?<=[a-z0-9)]\.)\s+(?=\S)", line) if p.strip()
    ]
    kept = [p for p in parts if _says_something(p, lex)]
    text = " ".join(kept or parts)

    def bracket(m: re.Match) -> str:
        return m.group(0) if _says_something(m.group(1), lex) else " "

    return re.sub(r"\(([^()]*)\)", bracket, text) if kept else text


def _own_patch(t: str, lex: Lexicon) -> tuple[str, str | None]:
    """ "our region's orders", "my channel": the values the asker's row scope allows, or a question
    back when it allows them all (whose region is not something the data says)."""
    for m in re.finditer(r"\b(?:my|our) ([a-z ]+)", t):
        phrase = next(
            (
                p
                for p in sorted(lex.dim_phrases, key=len, reverse=True)
                if re.match(rf"{re.escape(p)}(?:'s)?\b", m.group(1))
            ),
            None,
        )
        if phrase is None or singular(phrase) != phrase:  # "our regions": all of them, as asked
            continue
        dim = lex.dim_phrases[phrase]
        allowed = row_scope.current().values(dim)  # whose rows this question reads (ask() sets it)
        if not allowed:
            return t, (
                f"'{m.group(0)[: 4 + len(phrase)].strip()}': you see every {lex.dim_labels.get(dim, dim).lower()}, "
                f"so I cannot tell which is yours; name it (e.g. '{next(iter(lex.members.get(dim) or ['…']))}')."
            )
        end = m.start(1) + len(phrase)
        end += 2 if t.startswith("'s", end) else 0
        return f"{t[: m.start()]}in {' and '.join(allowed).lower()}{t[end:]}", None
    return t, None


# "Did revenue pass $1M last month?", "were orders above 150 yesterday?", "is our return rate under
# 5%?": a yes/no about one total against a figure, answered with the total and the yes or no
_THRESHOLD = re.compile(
    r"\b(?P<cmp>pass(?:ed)?|get past|gone past|past|clear(?:ed)?|top(?:ped)?|break|broke|broken|exceed(?:ed)?"
    r"|cross(?:ed)?|beat|hit|reach(?:ed)?|go (?:over|above|below|under)|(?:be |come in |came in )?(?:above|over|under"
    r"|below)|north of|south of|more than|less than|fewer than|at least|at most)"
    r" (?P<num>(?:[$€£]|reais)? ?\d[\d,]*(?:\.\d+)? ?(?:k|m|bn|b|million|thousand|mn)?\b ?%?(?: reais\b)?)"
    r"(?! ?(?:days?|weeks?|months?|quarters?|hours?|hrs?|mins?)\b)(?! ?years?\b(?! to date))"  # "the past 7 days"
)
_BELOW = ("under", "below", "south of", "less than", "fewer than", "at most")


def _threshold(t: str) -> tuple[str, tuple[str, float, str] | None]:
    """A yes/no question's figure taken out of ``t``: (the rest, (above|below, the figure, as said))."""
    # "outside NA, was AOV ..." ("will we pass ..." asks for a forecast, which is declined)
    asked = re.search(r"(?:^|[,;:] |- )(?:did|has|have|is|was|were|are|does|do)\b", t)
    if asked is None:
        return t, None
    m = _THRESHOLD.search(t)
    if m is None:
        return t, None
    said = m.group("num").strip()
    digits = re.match(r"(?:[$€£]|reais)? ?([\d,]*\.?\d+)", said.replace(",", ""))
    if digits is None:
        return t, None
    number = float(digits.group(1))
    scale = re.search(r"(k|m|bn|b|million|thousand|mn)\b", said)
    number *= {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9}.get(
        scale.group(1) if scale else "", 1.0
    )
    if said.endswith("%"):
        number /= 100
    cmp = m.group("cmp")
    side = "below" if any(cmp.endswith(w) for w in _BELOW) else "above"
    # the figure's currency stays, for the currency check ("$100k" on data in reais is declined)
    currency = re.search(r"[$€£]|\breais\b", said)
    rest = (t[: m.start()] + f" {currency.group(0) if currency else ''} " + t[m.end() :]).replace(" yet", " ")
    rest = re.sub(r"\bfor the year\b", "this year", rest)  # "are we past 40,000 orders for the year"
    rest = re.sub(r"(^|[,;:] |- )(?:did|has|have|is|was|were|are|does|do) ", r"\1", rest, count=1)
    return re.sub(r"\s+", " ", rest).strip(), (side, number, said)


def _values_there(lex: Lexicon) -> str:
    """'country: Deutschland, Schweiz, Österreich; kategorie: Schmuck, Uhren' (a dimension with a
    single value, such as 'channel: Unknown' when a file had none, says nothing and is left out)."""
    return "; ".join(
        f"{lex.dim_labels[d].lower()}: {', '.join(vs[:8])}"
        for d, vs in lex.members.items()
        if len(vs) > 1 and d != "product"
    )


def parse(text: str, as_of: datetime, lex: Lexicon) -> Reading:
    """How ``text`` reads: a typed question to run, or a decline or a question back with the reason."""
    r = _parse(text, as_of, lex)
    if r.status != "answer" or r.threshold is None:
        return r
    side, number, said = r.threshold
    k = lex.kpis[r.question.kpi]
    money = bool(re.search(r"[$€£]|\breais\b", said))
    if r.shape != "value":
        return r.refuse(
            "clarify",
            f"A yes or no against {said} is about one total; ask e.g. 'did {k.label.lower()} pass {said} last month?'",
        )
    if money and k.unit != "currency":
        return r.refuse(
            "decline",
            f"'{said}' is an amount of money, and {k.label} is not; if it is a condition on each order (its value), "
            "I cannot apply it: the warehouse keeps totals. Ask for the total (e.g. 'orders last week').",
            lex.suggestions(),
        )
    if k.is_percent and not said.endswith("%") and number > 1:
        r.threshold = (side, number / 100, said)  # "margin above 30": 30%
    elif said.endswith("%") and not k.is_percent:
        return r.refuse(
            "clarify", f"{k.label} is not a percentage; give the figure to compare with in its own units."
        )
    r.understood.append((said, f"yes or no: {side} {said}"))
    return r


def _parse(text: str, as_of: datetime, lex: Lexicon) -> Reading:
    r = Reading(text=text)
    t = normalise(without_asides(wording.unwrap(text), lex))
    if not words(t):
        return r.refuse("decline", "The question is empty.", lex.suggestions())
    t, r.threshold = _threshold(t)
    # "how did last month's MoM growth compare with the MoM growth the month before": a change of a change
    changes = re.findall(
        r"\b(?:growth|grew|change[ds]?|increase[ds]?|decrease[ds]?|mom|wow|qoq|yoy|(?:month|week|quarter|year)[- ]over[- ](?:month|week|quarter|year))\b",
        t,
    )
    cue = re.search(r"\b(?:compare[ds]?|vs|versus|against|than)\b", t)
    if (
        cue
        and any(c in t[: cue.start()] for c in changes)
        and re.search(
            r"\b(?:growth|grew|change[ds]?|increase[ds]?|decrease[ds]?|mom|wow|qoq|yoy|(?:month|week|quarter|year)[- ]over[- ]"
            r"(?:month|week|quarter|year))\b",
            t[cue.end() :],
        )
    ):
        return r.refuse(
            "decline",
            "A change of a change (one period's growth against another's) is not something I compute; ask "
            "for each change on its own (e.g. 'revenue last month vs the month before').",
            lex.suggestions(),
        )
    # "Europe vs Europe on orders": one value against itself
    m_self = re.search(
        r"\b([a-z][a-z0-9 &'.-]{0,40}?) (?:vs\.?|versus|against|or|compared (?:with|to)) (?:the )?\1\b", t
    )
    if m_self and m_self.group(1) in lex.member_phrases:
        (_, value), *_ = sorted(lex.member_phrases[m_self.group(1)])
        return r.refuse("clarify", f"{value} is compared with itself: which two do you mean?")
    if INCIDENT_WORDS.search(t) and not re.search(r"\b(?:why|explain|cause|caused)\b", t):
        return _incidents_reading(t, as_of, lex)
    if re.search(
        r"(?<!first )(?<!last )(?<!1st )\b(day|hour|month|week)s? of (the )?(week|day|year|month)\b(?! (?:19|20)\d\d)"
        r"|(?<!same )\bweekdays?\b|\btime of day\b",
        t,
    ):
        return r.refuse(
            "decline",
            "Seasonal patterns (by weekday, hour of day or month of year) are not a KPI breakdown I keep; "
            "ask for a ranking over days, weeks or months in a period instead.",
        )
    # "orders with more than 3 items", "revenue from orders over $100": a condition on each order's size
    # or value, which totals per period cannot apply ("top 3 products" was read for the first)
    m_cond = re.search(
        r"(?:\b(?:more|fewer|less|greater|bigger|larger|smaller) than|\bover|\babove|\bunder|\bbelow|\bat least|\bat most"
        r"|\bexceeding|\bupwards of|[<>]=?)\s*(?:[$€£]\s*\d[\d,.]*\s*k?\b|\d[\d,.]*\s*k?\s*"
        r"(?:items?|units?|products?|pieces?|lines?|orders?|purchases?|dollars?|euros?|pounds?|reais|usd|eur|gbp)\b)",
        t,
    )
    if m_cond and not re.search(
        r"\d\s*(?:days?|weeks?|months?|quarters?|years?|hours?)\b", t[m_cond.start() : m_cond.end() + 8]
    ):
        return r.refuse(
            "decline",
            f"'{m_cond.group(0).strip()}' is a condition on each order (its size or value), which I cannot apply: "
            "the warehouse keeps totals per period, region, channel, category and product. Ask for the total "
            "(e.g. 'orders last week') or a breakdown.",
            lex.suggestions(),
        )
    # "is our return rate good?": a judgement the data cannot make (the number alone would read as a yes)
    judged = (
        r"(?:good|bad|healthy|unhealthy|ok|okay|fine|acceptable|reasonable|concerning|worrying|alarming|normal"
        r"|too (?:high|low)|high enough|low enough)"
    )
    if (
        re.search(
            r"^(?:is|are|was|were)\b(?!.*\b(?:than|vs|versus|compared|against|up|down)\b).*\b"
            + judged
            + r"\b"
            r"(?: (?:a |an )?(?:result|number|figure|outcome|sign|performance|level|one))?"
            r"(?: for (?:us|the business|the company|a business like ours))?[\s?.!]*$",
            t,
        )
        or re.search(
            r"(?:[-,;:]|^)\s*(?:is|was|are|were) (?:that|it|this|these|those|they) " + judged + r"\b", t
        )
        or re.search(r"[:,-]\s*(?:good|bad) or (?:bad|good)\s*\??\s*$", t)
    ):
        return r.refuse(
            "clarify",
            "Whether it is good is a judgement the data cannot make. I can give the number, or compare it "
            "with another period (e.g. 'return rate this year vs last year').",
            lex.suggestions(),
        )
    # "rank our stores", "which store sold most": one line per store, which the data does not keep
    # unless a dimension is called that ("stores" alone may be a channel's alias)
    m_store = re.search(
        r"\b(?:rank|ranking|rank order|top \d+|top|which|what|each|every|by|best|worst|bottom \d+)"
        r"(?: (?:of )?(?:our|the|all|my|all our|all the))? (stores?|shops?|outlets?|branch(?:es)?|locations?|sites?)\b",
        t,
    )
    if m_store and not {m_store.group(1), singular(m_store.group(1))} & set(lex.dim_phrases):
        word = m_store.group(1)
        kept = {v for vs in lex.members.values() for v in vs}
        one = [v for v in lex.aliases.get(word, lex.aliases.get(singular(word), [])) if v in kept]
        return r.refuse(
            "decline",
            f"The data keeps no '{word}' one by one"
            + (f" ('{word}' is the {one[0]} value, one slice)" if one else "")
            + f". Ask by {' or '.join(v.lower() for v in lex.dim_labels.values())}"
            + (f", or about {one[0]}." if one else "."),
            lex.suggestions(),
        )
    # "kindly share the return rate", "how much % of change": the verb, and a change's unit
    t = re.sub(r"\bshare (?=(?:the|our|me|us|with)\b)", "show ", t)
    t = re.sub(r"\bpercentual\b", "percent", t)
    t = re.sub(r"(?:(?<!\w)%|\bpercent(?:age)?) of (?:change|variation|growth)\b", "percent change", t)
    t = re.sub(r"\b(?:growth|change|variation) in (?:%|percent(?:age)?) of\b", "percent change in", t)
    # "what percentage of the Beauty units we sold last quarter got returned": the return rate
    t = re.sub(
        r"\b(?:what )?(?:share|proportion|fraction|percent(?:age)?|%) of (?:the |our )?((?:[a-z&]+ ){0,3}?)(?:units|items)"
        r"(?: (?:that )?we)? (?:sold|shipped|moved)\b(.*?) (?:got|were|was|have been|has been|came) (?:returned|refunded|sent back|back)(?: as returns)?\b",
        r"return rate \1\2",
        t,
    )
    # "what share of orders were returned": the return rate (not a share of a total)
    t = re.sub(
        r"(?:\b(?:share|proportion|fraction|percent(?:age)?)|%) of (?:the |our )?((?:[a-z&]+ ){0,3}?)(?:orders|units|items|sales|products|purchases)"
        r"(?: that)? (?:were |was |got |get |are |is |have been |has been )?(?:returned|refunded|sent back|came back|come back)\b",
        r"return rate \1",
        t,
    )
    # "how often did the Nimbus Air Fryer get sent back", "returned units as a share of units sold"
    t = re.sub(
        r"\bhow often (?:did|do|does|was|were|is|are) (?:the |our )?(.+?) (?:get |got |being )?(?:returned|sent back|refunded|brought back)\b",
        r"return rate of \1",
        t,
    )
    t = re.sub(
        r"\b(?:returned units|units returned) (?:as an? (?:share|percentage|percent|fraction|proportion|%) of|over|divided by|/|per) "
        r"(?:the )?(?:units sold|sold units)\b",
        "return rate",
        t,
    )
    # "what did Europe make up of revenue": its share of it
    t = re.sub(
        r"\bwhat (?:share |part |portion )?(?:did|does|do) (.+?) make up of (?:the |our |total )*([a-z_]+)\b",
        r"what share of \2 came from \1",
        t,
    )
    # "the percentage of devolutions" (Spanish, Portuguese): the return rate, said as a share ("what %
    # of returns came from Europe" is a share of returns, which is not defined)
    t = re.sub(r"\b(?:the )?(?:percentage|percent|share|proportion|%) of devolutions\b", "return rate", t)
    # "revenue by channel as a %", "revenue mix by region": each slice's share (a ratio's "%" is its unit)
    as_share = BREAKDOWN_SHARE.search(t)
    # "as a %" of a margin is its unit; a "share" or "mix" of one is not defined (checked below)
    share_of_ratio = (
        as_share is not None and re.search(r"share|mix|total|proportion", as_share.group(0)) is not None
    )
    if as_share:
        t = re.sub(r"\s+", " ", BREAKDOWN_SHARE.sub(" ", t)).strip()
    # "what share of revenue came from Europe": the slice's part of the whole (checked below)
    share = SHARE_WORDS.search(t) is not None
    if share:
        t = re.sub(r"\s+", " ", SHARE_WORDS.sub(" ", t)).strip()
        t = re.sub(r"\bcontribut(?:e|ed|es)\b", " ", t)  # "what % of revenue did each channel contribute"
    elif re.search(r"\b(share|proportion|fraction|portion|ratio of)\b|\bpercent(age)? of\b|%\s*of\b", t):
        return r.refuse("decline", SHARE_HOW)
    if re.search(
        r"\b(?:will|shall|going to|gonna)\b(?: [a-z0-9'&%]+){0,5}? (?:be|look|reach|hit|grow|end|finish|come in|land)\b"
        r"|\b(?:predict\w*|project(?:ed|ion|ions)|forecast\w*|outlook|estimated?|expected to)\b",
        t,
    ):
        return r.refuse(
            "decline",
            "That asks about the future; Ask answers from recorded data only (no forecasts). "
            "Ask about a period that has happened, e.g. 'revenue last month'.",
            lex.suggestions(),
        )
    # "in descending order": the order of a list, not the Orders KPI
    t = re.sub(r"\b(?:in )?(ascending|descending) order\b", r"\1", t)
    t = re.sub(r"\b(?:ttm|ltm)\b", "trailing 12 months", t)  # trailing / last twelve months
    # "how did X stack up against Y": a comparison ("stack" is not a typo of "stock")
    t = re.sub(r"\b(?:stack|measure|hold)(?:s|ed)? up (?:against|to|with|versus|vs)\b", "compared with", t)
    t = re.sub(r"\bheld up (?:against|to|with|versus|vs)\b", "compared with", t)
    # finance shorthand for the year before: "vs LY", "against PY"
    t = re.sub(r"\b(vs|versus|against|compared (?:with|to)) (?:ly|py)\b", r"\1 last year", t)
    t = re.sub(r"\bbrand[ -]new\b", "new", t)  # "brand new customers": new customers
    t = re.sub(r"\bavg\b", "average", t)  # "avg basket value": as the catalog's synonyms spell it
    # greetings, chat, speech, second-language English
    t, ask_back = wording.plain(t, as_of, lex.dim_phrases, lex.member_phrases)
    if ask_back:
        return r.refuse("clarify", ask_back)
    t, ask_back = _own_patch(t, lex)
    if ask_back:
        return r.refuse("clarify", ask_back)
    if re.search(
        r"\bby reasons?\b(?! (?:of|for)\b)|\b(?:returns?|refunds?|cancell?ation) reasons?\b|\btop \d* ?reasons\b",
        t,
    ):
        return r.refuse(
            "decline",
            "Reasons are not something the data breaks down by; ask for a breakdown by "
            f"{', '.join(lex.dim_labels.values()).lower()}, or ask why (e.g. 'why did revenue drop last month').",
            lex.suggestions(),
        )
    # "the Helix Cookware Set's units": a possessive on a name is the name
    if "'s" in t:
        named = {w for p in lex.member_phrases for w in p.split()}
        t = re.sub(r"\b([a-z0-9]+)'s\b", lambda m: m.group(1) if m.group(1) in named else m.group(0), t)
    # "lifetime revenue", "since launch": all the data ("since the start of the year" is a period;
    # "customer lifetime value" is a measure the catalog does not define)
    t = re.sub(
        r"\b(?:lifetime(?! value)|since (?:launch|inception|day one|the (?:very )?(?:beginning|start)(?! of)"
        r"|we (?:started|opened|launched)|records began))\b",
        "all time",
        t,
    )
    t = re.sub(r"\b(?:relative|in relation|in comparison) to\b", "compared with", t)
    # "top sellers", "bestsellers": the best-selling products (the only thing that sells here)
    t = re.sub(r"\b(top|best|worst|bottom|biggest|slowest)( \d+)?[ -]?sellers\b", r"\1\2 selling products", t)
    t = re.sub(r"\bw/e\b", "week ending", t)  # retail's "w/e 29 Nov"
    # "YTD vs last YTD": the same stretch of last year
    t = re.sub(
        r"\b(?:last|prior|previous|ly) (?:ytd|year to date)\b|\b(?:ytd|year to date) ly\b",
        "the same period last year",
        t,
    )
    t = re.sub(r"\b(\d{1,2}(?::\d\d)?) ?([ap])\.m\.?", r"\1\2m", t)  # "6 p.m.": 6pm
    # "how many dollars did we make": how much money, not a count
    t = re.sub(
        r"\bhow many (" + "|".join(w for w in CURRENCY_WORDS if w.isalpha()) + r")\b", r"how much \1", t
    )
    # "month over month": a change between periods, as "mom" is (not "month ... month" read as grains)
    t = re.sub(
        r"\b(week|month|quarter|year)[ -](?:over|on)[ -]\1\b",
        lambda m: {"week": "wow", "month": "mom", "quarter": "qoq", "year": "yoy"}[m.group(1)],
        t,
    )
    known = _known_words(lex)
    t = wording.spoken_numbers(t, known)  # "the last fourteen days", "the aurora four k monitor"
    t = _new_before_value(t, lex)  # "new Web customers": the Web's new customers
    t, short = _expand_shorthand(t, known)
    t, fixed = _fix_time_typos(t, known)
    t, typos = _fix_word_typos(t, known, lex)
    fixed = short + fixed + typos
    t, problems, spelt = timephrases.spell_days_of_month(t, as_of)  # "the 3rd": 3 december 2026
    fixed += spelt
    t, settled = timephrases.settle_day_order(t)  # "27/11/2026 to 03/12/2026": both day first
    fixed += settled
    found, more = timephrases.find(t, as_of, fiscal_year_start())
    problems += more
    if problems:
        return r.refuse("clarify", "; ".join(problems) + ".")
    toks = [_Tok(m.group(0), m.start(), m.end()) for m in re.finditer(r"[a-z0-9]+(?:'[a-z]+)?|[&%$£€]", t)]
    r.understood.extend((bad, f"read as '{good}'") for bad, good in fixed)
    for f in found:
        for tok in toks:
            # "Q3's revenue": the possessive belongs to the time phrase
            end = tok.end - 2 if tok.word.endswith("'s") else tok.end
            for a, b in (f.span, f.also or f.span):
                if tok.start >= a and end <= b:
                    tok.role = "time"
        r.understood.append(
            (f.period.text, f"time: {f.period.describe()}" if not f.period.relative else "time: relative")
        )
    for f in found:
        # "before November", "after 1 Nov", "through October": an open-ended span, not the period
        # named (which is all that would be read); asked back rather than answered for November
        before = [tok.word for tok in toks if tok.end <= f.span[0] and tok.role is None][-3:]
        while before and before[-1] in ("the", "of"):
            before.pop()
        cue = " ".join(before[-2:]) if " ".join(before[-2:]) in OPEN_CUES else (before[-1:] or [""])[0]
        if cue in OPEN_CUES:
            return r.refuse(
                "clarify",
                f"'{cue} {f.period.text}' is open-ended: from when, or until when? Say e.g. 'since "
                f"{f.period.describe()}', 'between 1 Jan and {f.period.describe()}' or "
                f"'in {f.period.describe()}'.",
            )
    sing = [singular(tok.word) for tok in toks]

    kpis_found: list[tuple[int, str]] = []
    dims_found: list[tuple[int, str]] = []
    members_found: list[
        tuple[int, int, set[tuple[str, str]], str]
    ] = []  # (first tok, last tok, options, words)
    undefined: list[str] = []
    absent: list[tuple[int, int, str, list[str]]] = []  # aliases of values the data does not hold
    grouped: dict[str, tuple[str, list[str]]] = {}  # dimension -> a group said for several values ("emea")
    n = len(toks)
    max_len = min(12, lex.max_len())

    # --- phrases, longest first, left to right ---------------------------------------------------
    i = 0
    while i < n:
        if toks[i].role is not None:
            i += 1
            continue
        hit = None
        for size in range(min(max_len, n - i), 0, -1):
            if any(toks[j].role is not None for j in range(i, i + size)):
                continue
            phrase = " ".join(sing[i : i + size])
            raw = " ".join(tok.word for tok in toks[i : i + size])
            for table, kind in (
                (lex.kpi_phrases, "kpi"),
                (lex.undefined, "undefined"),
                (lex.dim_phrases, "dim"),
                (lex.member_phrases, "member"),
                (lex.groups, "group"),
                (lex.aliases, "alias"),
            ):
                if phrase in table or raw in table:
                    hit = (size, kind, table.get(phrase, table.get(raw)), raw)
                    break
            if hit:
                break
        if hit is None:
            i += 1
            continue
        size, kind, what, raw = hit
        if kind == "member" and size == 1 and raw in FILLER:
            i += 1
            continue
        if kind == "group":  # "EMEA": Europe and Middle East & Africa together, each one a filter value
            present = _present(lex, what)
            if not present:
                absent.append((i, size, raw, what))
                i += 1
                continue
            for j in range(i, i + size):
                toks[j].role = "member"
            members_found.extend((i, i + size - 1, {dv}, raw) for dv in present)
            grouped.update({d: (raw, [v for _, v in present]) for d, _ in present})
            r.understood.append((raw, " + ".join(v for _, v in present)))
            i += size
            continue
        if kind == "alias":
            present = _present(lex, what)
            if not present:
                if size > 1 or raw not in FILLER:  # "us" alone may be the pronoun
                    absent.append((i, size, raw, what))
                i += 1
                continue
            kind, what = "member", set(present[:1]) if len({v for _, v in present}) == 1 else set(present)
        for j in range(i, i + size):
            toks[j].role = kind
        if kind == "kpi":
            kpis_found.append((i, what))
            r.understood.append((raw, f"KPI: {lex.kpis[what].label}"))
        elif kind == "undefined":
            undefined.append(what)
        elif kind == "dim":
            dims_found.append((i, what))
        else:
            members_found.append((i, i + size - 1, set(what), raw))
        i += size

    if undefined:
        return r.refuse(
            "decline",
            f"The catalog does not define {undefined[0]}, so I cannot answer with a number. "
            f"I can answer about: {', '.join(lex.suggestions())}.",
            lex.suggestions(),
        )

    # --- numbers, cues and fillers ------------------------------------------------------------------
    top_n = None
    joined = " ".join(tok.word for tok in toks)
    for idx, tok in enumerate(toks):
        if tok.role is not None:
            continue
        w = tok.word
        if (w.isdigit() or w in NUMBER_WORDS) and top_n is None:
            prev = toks[idx - 1].word if idx else ""
            nxt = toks[idx + 1] if idx + 1 < n else None
            if (
                prev in RANK_WORDS
                or prev in ("which", "what", "the")
                or (nxt is not None and nxt.role == "dim")
                or (nxt is not None and (nxt.word in RANK_WORDS or nxt.word in TIME_GRAINS))
            ):
                value = int(w) if w.isdigit() else NUMBER_WORDS[w]
                if 0 < value <= 1000:
                    top_n = value
                    tok.role = "number"
                    continue
    exclude_at: list[int] = []
    excluded_before: list[int] = []  # "Marketplace excluded": the values just before the cue
    for cue in POSTFIX_EXCLUDE_CUES:
        for m in re.finditer(rf"\b{re.escape(cue)}\b", joined):
            k = len(joined[: m.start()].split())
            span = len(cue.split())
            j = k - 1
            while j >= 0 and toks[j].word in (
                "being",
                "is",
                "are",
                "was",
                "were",
                "channel",
                "category",
                "region",
            ):
                j -= 1
            follows = k + span < n and toks[k + span].role == "member"
            if (
                j >= 0
                and toks[j].role == "member"
                and not follows
                and all(toks[k + i].role is None for i in range(span))
            ):
                for i in range(span):
                    toks[k + i].role = "exclude"
                excluded_before.append(k)
    for cue in EXCLUDE_CUES:
        for m in re.finditer(rf"\b{re.escape(cue)}\b", joined):
            k = len(joined[: m.start()].split())
            span = len(cue.split())
            if all(toks[k + j].role is None for j in range(span)):
                for j in range(span):
                    toks[k + j].role = "exclude"
                exclude_at.append(k + span)
    for idx, tok in enumerate(toks):
        # "margin %", "return rate (percent)": the unit a ratio is shown in, not "% change"
        back = idx - 1 if idx and toks[idx - 1].word not in ("in", "as", "a") else idx - 2
        if tok.role is None and tok.word in UNIT_WORDS and back >= 0 and toks[back].role == "kpi":
            name = max((k for k in kpis_found if k[0] <= back), key=lambda k: k[0])[1]
            if lex.kpis[name].unit == "ratio":
                tok.role = "filler"
    why = any(tok.word in WHY_WORDS and tok.role is None for tok in toks) or bool(
        re.search(r"\bwhat (?:happened|went on|went wrong|changed)\b|\bhow come\b", joined)
    )
    if why:  # "why did we get fewer orders": the direction of the move (no "than" to compare with)
        for tok in toks:
            if tok.role is None and tok.word in COMPARATIVES and "than" not in joined.split():
                tok.role = "filler"
    # "split between the web and the app": the values side by side, as "web vs app" (not one total)
    between_values = any(
        tok.word == "between"
        and tok.role is None
        and any(t_.role == "member" for t_ in toks[idx + 1 : idx + 3])
        for idx, tok in enumerate(toks)
    )
    compare_cue = (
        any(tok.word in COMPARE_WORDS and tok.role is None for tok in toks)
        or bool(re.search(r"\bhow did .* (?:compare|do|go)\b", joined))
        or between_values
    )
    yoy = any(p in joined for p in YOY)
    rank_dir = None
    rank_word = None
    busy_word = None  # "the busiest day": ranked by orders when no KPI is named
    than = False  # "higher than ...": a comparison
    than_pick = None  # "was Web bigger than the app": which of two named values, "asc" or "desc"
    ordering = False  # "lowest first", "in descending order": the order of a whole list, not a top
    for idx, tok in enumerate(toks):
        nxt_ = toks[idx + 1] if idx + 1 < n else None
        if (
            tok.role is None
            and tok.word in ("record", "all-time")
            and nxt_ is not None
            and (
                nxt_.word in TIME_GRAINS
                or nxt_.role == "dim"
                # "record revenue day": the grain after the KPI
                or (nxt_.role == "kpi" and idx + 2 < n and toks[idx + 2].word in TIME_GRAINS)
            )
        ):
            rank_dir, tok.role = "desc", "rank"  # "record day for orders": the highest day
            break
        than_at = next((j for j in range(idx + 1, min(n, idx + 12)) if toks[j].word == "than"), None)
        if tok.role is None and tok.word in COMPARATIVES and than_at is not None:
            # "higher than last month", "more orders than last year": a comparison, not a ranking
            after = [t_ for t_ in toks[than_at + 1 : than_at + 6] if t_.role == "member"]
            before_ = any(t_.role == "member" for t_ in toks[:idx])
            if after and not before_:
                # "which region had higher revenue than Europe": a filter on values, not computed
                # ("did Europe have more orders than North America" sets the two side by side)
                return r.refuse(
                    "decline",
                    f"'{tok.word} than {' '.join(t_.word for t_ in after)}' compares values with each other, "
                    "which I do not filter on; ask for the breakdown (e.g. 'revenue by region last month') "
                    "and compare.",
                )
            tok.role = toks[than_at].role = "filler"
            than = True
            if after and before_ and tok.word in MAGNITUDE:
                # "was Web bigger than Mobile App": the larger of the two (as "which was bigger")
                than_pick = "asc" if tok.word in ("lower", "less", "fewer", "smaller") else "desc"
            continue
        if (
            tok.role is None
            and tok.word in ASC_WORDS | DESC_WORDS
            # right after an exclusion ("excluding the top product"; not "excluding Books, highest first")
            and any(
                toks[j].role == "exclude"
                and all(u.word in ("the", "a", "an", "our", "my") for u in toks[j + 1 : idx])
                for j in range(max(0, idx - 3), idx)
            )
        ):
            # "revenue excluding the top product": leaving out a ranked item is not computed (it
            # was answered as the top product itself)
            return r.refuse(
                "decline",
                f"Leaving out the {tok.word} one is not something I compute; name what to leave out "
                "(e.g. 'revenue excluding Electronics') or ask for the ranking.",
            )
        if tok.role is None and tok.word in ASC_WORDS | DESC_WORDS:
            rank_dir = "asc" if tok.word in ASC_WORDS else "desc"
            busy_word = tok.word if tok.word in BUSY_WORDS else None
            nxt = toks[idx + 1].word if idx + 1 < n else ""
            if nxt == "first" and toks[idx + 1].role is None:
                toks[idx + 1].role = "filler"
                ordering = True
            ordering = ordering or tok.word in ("ascending", "descending")
            if tok.word in QUALITY_WORDS and not nxt.startswith("sell"):
                rank_word = tok.word  # judged by the KPI's up_is_good once the KPI is known
            tok.role = "rank"
            # "bottom 2 products by revenue, worst first", "the 3 regions with the best margin, best
            # first": the order said again; the other way round is a question back
            for j in range(idx + 1, n - 1):
                again = toks[j]
                if (
                    again.role is None
                    and again.word in ASC_WORDS | DESC_WORDS
                    and toks[j + 1].word == "first"
                ):
                    judged = again.word in QUALITY_WORDS or tok.word in QUALITY_WORDS  # by the KPI, later
                    if not judged and (again.word in ASC_WORDS) != (tok.word in ASC_WORDS):
                        return r.refuse(
                            "clarify",
                            f"'{tok.word}' and '{again.word} first' ask for opposite orders: which one do you want?",
                        )
                    again.role = toks[j + 1].role = "filler"
            break
    compare_cue = compare_cue or than
    which = any(tok.word in ("which", "what") for tok in toks)
    time_grain = None
    for idx, tok in enumerate(toks):
        if tok.role is None and tok.word in TIME_GRAINS:
            prev = toks[idx - 1].word if idx else ""
            if tok.word.endswith("ly") or prev in BREAKDOWN_CUES | {"which", "what", "the", "a"} or rank_dir:
                time_grain = TIME_GRAINS[tok.word]
                tok.role = "grain"

    # --- whatever is left must be a known filler or shape word --------------------------------------
    shape_words = (
        COMPARE_WORDS
        | WHY_WORDS
        | RANK_WORDS
        | BREAKDOWN_CUES
        | WHY_STATES
        | {
            "which",
            "what",
            "top",
            "bottom",
            "down",
            "broken",
            "out",
            "trend",
            "trends",
            "trending",
            "over",
            "time",
            "before",
            "after",
            "year",
            "month",
            "week",
            "day",
            "quarter",
            "so",
            "far",
            "around",
            "about",
            "went",
            "wrong",
            "come",
            "did",
            "compare",
            "versus",
            "per",
            "cent",
            "rate",
            "change",
            "ranking",
            "list",
            "order",
        }
    )
    unknown = []
    # "revenue in dollars / in USD": the business's own currency is only a unit; another one would
    # need a conversion, which is not made
    own = business()["currency"]
    said_currency = None
    for tok in toks:
        codes = CURRENCY_WORDS.get(tok.word)
        if tok.role is None and codes is not None:
            if own not in codes:
                return r.refuse(
                    "decline",
                    f"Amounts are kept in {own}; I do not convert them to '{tok.word}'. Ask without the "
                    f"currency to get {own}.",
                )
            tok.role = "filler"
            said_currency = tok.word
            r.understood.append((tok.word, f"the business's currency ({own})"))
    ratio_at = {i for i, name in kpis_found if not lex.kpis[name].additive}
    # "average gross margin per product": a mean of the slices' ratios, which is not the ratio of
    # their totals and is not computed ("the average return rate by category" is each one's rate)
    mean_of_slices = re.search(
        r"\b(?:average|mean)\b.*\b(?:per|for each|across|of all|over all)\b (?:the |all )?(?:"
        + "|".join(re.escape(w) for w in sorted(lex.dim_phrases, key=len, reverse=True))
        + r")\b",
        joined,
    )
    for i, tok in enumerate(toks[:-1]):
        if tok.role is None and tok.word in ("average", "mean") and i + 1 in ratio_at and not mean_of_slices:
            tok.role = "filler"  # "average revenue per order", "average gross margin": the ratio itself
    # "the sum of the return rates": ratios do not add up
    rate_words = sorted(
        {p for p, k in lex.kpi_phrases.items() if not lex.kpis[k].additive}, key=len, reverse=True
    )
    if ratio_at and re.search(
        r"\b(?:sum|add(?:ed)? up|adding up|total) (?:of )?(?:the |all )?(?:"
        + "|".join(re.escape(w) + "s?" for w in rate_words)
        + r"|rates|ratios|percentages)\b",
        joined,
    ):
        return r.refuse(
            "decline",
            "A rate does not add up across slices: the sum of return rates or margins means nothing. Ask for the "
            "rate of the whole (e.g. 'return rate last month') or for each slice ('return rate by category').",
            lex.suggestions(),
        )
    per_head = [
        toks[i + 1].word
        for i in range(n - 1)
        if toks[i].word == "per" and toks[i].role is None and sing[i + 1] in PER_HEAD
    ]
    if per_head:  # "revenue per customer": a ratio the catalog does not define (not revenue, not by customer)
        return r.refuse(
            "decline",
            f"'per {per_head[0]}' is a ratio the catalog does not define; I answer the KPIs as defined (average "
            "order value is revenue per order). Ask for each part on its own, e.g. 'revenue last month' and "
            "'active customers last month'.",
            lex.suggestions(),
        )
    averaged = [t_.word for t_ in toks if t_.role is None and t_.word in ("average", "avg", "mean", "median")]
    if averaged:
        return r.refuse(
            "decline",
            f"'{averaged[0]}' of what? I answer totals per period and the KPIs as defined (average order value "
            "is one); an average per day or per customer is not defined in the catalog. Try 'revenue by day "
            "last month' to see the days.",
            lex.suggestions(),
        )
    for idx, tok in enumerate(toks):
        if tok.role is not None:
            continue
        if tok.word in FILLER or tok.word in shape_words or tok.word in ("'s", "s", "$", "£", "€"):
            tok.role = "filler"
            continue
        if tok.word.isdigit() and top_n is None and len(tok.word) <= 3:
            unknown.append(tok.word)
            continue
        near = lex.fuzzy(sing[idx])
        if idx and toks[idx - 1].word == "by":  # "revenue by stare": a dimension there, or nothing
            near = [p for p in near if p in lex.dim_phrases or p in lex.kpi_phrases]
        if not near:
            # a slip inside a two-word value ("Latn America", "North Amerca"): the pair is read
            # as that value when it is within a typo of exactly one
            pair = None
            if idx + 1 < n and toks[idx + 1].role is None and toks[idx + 1].word not in FILLER:
                pair = (idx, idx + 1)
            elif idx and any(m[0] == m[1] == idx - 1 for m in members_found):
                pair = (idx - 1, idx)
            if pair is not None:
                a, b = pair
                near2 = [
                    x
                    for x in lex.fuzzy(f"{sing[a]} {sing[b]}")
                    if x in lex.member_phrases
                    and len(x.split()) == 2
                    # each word as typed or within a slip of it ("vertex phones" is not "vertex honey")
                    and all(
                        w == y or _one_slip(w, y) for w, y in zip((sing[a], sing[b]), x.split(), strict=True)
                    )
                ]
                if len(near2) == 1:
                    members_found[:] = [m for m in members_found if not (m[0] == m[1] == a)]
                    members_found.append(
                        (
                            a,
                            b,
                            set(lex.member_phrases[near2[0]]),
                            f"{toks[a].word} {toks[b].word} (read as '{near2[0]}')",
                        )
                    )
                    toks[a].role = toks[b].role = "member"
                    continue
        if len(near) == 1:
            phrase = near[0]
            if phrase in lex.kpi_phrases:
                kpis_found.append((idx, lex.kpi_phrases[phrase]))
                tok.role = "kpi"
                r.understood.append(
                    (tok.word, f"KPI: {lex.kpis[lex.kpi_phrases[phrase]].label} (read as '{phrase}')")
                )
            elif phrase in lex.dim_phrases:
                dims_found.append((idx, lex.dim_phrases[phrase]))
                tok.role = "dim"
            else:
                members_found.append(
                    (idx, idx, set(lex.member_phrases[phrase]), f"{tok.word} (read as '{phrase}')")
                )
                tok.role = "member"
            continue
        if len(near) > 1:
            return r.refuse("clarify", f"'{tok.word}' could mean {' or '.join(repr(x) for x in near)}.", near)
        unknown.append(tok.word)
    for at, size, raw, what in absent:
        if all(toks[j].role in (None, "filler") for j in range(at, at + size)):
            # "in the US" on data without it: a filter that cannot be applied is never dropped
            # (that would answer for everywhere)
            return r.refuse(
                "decline",
                f"'{raw}' ({' / '.join(what)}) is not in the data. Values there: {_values_there(lex)}.",
            )
    countries = [(w, c) for w in dict.fromkeys(unknown) if (c := lexicon.country(w))]
    if countries and lex.holds_countries():
        # "revenue in Canada" on a Swiss shop's data: a place it does not hold, said so, with what it holds
        word, name = countries[0]
        return r.refuse(
            "decline", f"'{word}' ({name}) is not in the data. Values there: {_values_there(lex)}."
        )
    if unknown:
        words_ = ", ".join(f"'{w}'" for w in dict.fromkeys(unknown))
        return r.refuse(
            "decline",
            f"I do not know {words_} here: not a KPI, dimension, value in the data or time I can read. "
            f"I answer about {', '.join(lex.suggestions())}, by {', '.join(lex.dim_labels.values()).lower()}.",
            lex.suggestions(),
        )

    # --- member values: filters and exclusions ----------------------------------------------------
    where: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    dim_at = dict(dims_found)
    used_dims_as_label: set[int] = set()
    ordered = sorted(members_found, key=lambda m: m[0])
    merged: list[tuple[int, int, set[tuple[str, str]], str]] = []
    for m in ordered:
        if merged and m[0] == merged[-1][1] + 1 and len(m[2]) == 1 and m[2] == merged[-1][2]:
            # "middle east": two words of one value side by side are that value
            merged[-1] = (merged[-1][0], m[1], m[2], f"{merged[-1][3]} {m[3]}")
        else:
            merged.append(m)
    members_found[:] = ordered = merged
    for m1, m2 in zip(ordered, ordered[1:], strict=False):
        d1, d2 = {d for d, _ in m1[2]}, {d for d, _ in m2[2]}
        listed = "," in t[toks[m1[1]].end : toks[m2[0]].start]  # "Electronics, Toys & Games and Books"
        if m2[0] == m1[1] + 1 and d1 & d2 and len(d1 | d2) == 1 and not listed:
            # "the app store": two values of one dimension side by side, with no "and"/"or"
            # between them, are one name that is neither, not both
            choices = sorted({v for _, v in m1[2] | m2[2]})
            return r.refuse(
                "clarify",
                f"'{m1[3]} {m2[3]}' names two {lex.dim_labels[next(iter(d1))].lower()} values "
                f"({' and '.join(choices)}): which one, or both ('{m1[3]} and {m2[3]}')?",
                choices,
            )
    # which dimensions each member token may be of: an exclusion's list runs over values of one
    # dimension ("except Grocery and Books"), and ends at another's ("... in North America")
    member_dims = {j: {d for d, _ in o} for f_, l_, o, _ in members_found for j in range(f_, l_ + 1)}

    def listed_after(e: int, first: int, d: str) -> bool:
        """Whether the value at ``first`` is in the list of values the exclusion cue at ``e`` names."""
        listing = False  # past the list's first value: only its glue and more values of ``d`` follow
        for j in range(e, first):
            tk = toks[j]
            if tk.role == "exclude":
                continue
            if tk.role == "member":
                if d not in member_dims.get(j, set()):
                    return False  # "outside North America for Electronics": Electronics is not excluded
                listing = True
            elif tk.role == "dim" and dim_at.get(j) == d and not listing:
                continue  # "excluding the channel Web" ("the non-store channels (Web, app)": the list ended)
            elif tk.role == "filler" and (not listing or tk.word in LIST_GLUE):
                continue
            else:
                return False  # "except Grocery and Books in North America": the list ended at "in"
        return True

    for first, last, options, raw in members_found:
        dims_here = {d for d, _ in options}
        if len(dims_here) > 1:
            near_dim = {dim_at.get(last + 1), dim_at.get(first - 1)} & dims_here
            if len(near_dim) == 1:
                options = {(d, v) for d, v in options if d in near_dim}
            else:
                choices = [f"{v} ({lex.dim_labels[d].lower()})" for d, v in sorted(options)]
                return r.refuse(
                    "clarify", f"'{raw}' is more than one thing in the data: {', '.join(choices)}.", choices
                )
        if len({v for _, v in options}) > 1:
            choices = sorted(v for _, v in options)
            return r.refuse("clarify", f"'{raw}' could be {' or '.join(choices)}.", choices)
        d, v = next(iter(options))
        if first and toks[first - 1].word == "per":
            # "revenue per store": a KPI divided by a count of stores, which no catalog entry defines;
            # read as a filter it would answer for the Retail Store channel alone
            return r.refuse(
                "decline",
                f"'per {raw}' divides by a count of {raw}s, which the catalog does not define. I can give "
                f"the value for {v} ('in {v}') or split it by {lex.dim_labels[d].lower()} ('by "
                f"{lex.dim_labels[d].lower()}').",
                lex.suggestions(),
            )
        for k in (last + 1, first - 1):  # "the web channel", "region Europe": the dimension word names it
            if dim_at.get(k) == d:
                used_dims_as_label.add(k)
        if first >= 2 and toks[first - 1].word == "of" and dim_at.get(first - 2) == d:
            used_dims_as_label.add(first - 2)  # "the state of SP", "the region of Europe"
        after = dim_at.get(last + 1)
        before = toks[first - 1].word if first else ""
        if (
            after not in (None, d)
            and rank_dir is None
            and top_n is None
            and before not in BREAKDOWN_CUES | {"which", "what"}
        ):
            # "beauty products", "home & kitchen items": the products of that category, not one
            # line per product (a breakdown is asked with "by", "each", "which" or "top")
            used_dims_as_label.add(last + 1)
        excluded = any(first >= e and listed_after(e, first, d) for e in exclude_at) or any(
            last < e
            and all(
                # "in North America, Marketplace excluded": the list before the cue is of one
                # dimension's values; North America is not excluded
                (toks[j].role == "member" and d in member_dims.get(j, set()))
                or toks[j].role == "filler"
                or toks[j].word in ("and", "or", "being", "is", "are", "was", "were")
                or (toks[j].role == "dim" and dim_at.get(j) == d)
                for j in range(last + 1, e)
            )
            for e in excluded_before
        )
        (exclude if excluded else where).setdefault(d, []).append(v)
        r.understood.append(
            (raw, f"{'excluding' if excluded else ''} {lex.dim_labels[d].lower()} = {v}".strip())
        )
    for d, vs in exclude.items():
        if lex.members.get(d) and set(lex.members[d]) <= set(
            vs
        ):  # "every channel except all four": nothing left
            return r.refuse(
                "clarify",
                f"Excluding {', '.join(sorted(vs))} leaves no {lex.dim_labels[d].lower()}: which did you mean to keep?",
            )
    both = [v for d, vs in exclude.items() for v in vs if v in where.get(d, [])]
    if both:  # "revenue in Europe excluding Europe": nothing is left to answer about
        return r.refuse("clarify", f"{both[0]} is both asked for and excluded: which do you mean?")
    # "Europe or web": either one, across two dimensions, is no filter I can apply (both at once is
    # "Europe and web"); asked back rather than answered for the web orders in Europe
    named = [(first, last, next(iter(o))[0]) for first, last, o, _ in members_found if len(o) == 1]
    for (_, l1, d1), (f2, _, d2) in zip(named, named[1:], strict=False):
        if d1 != d2 and any(toks[j].word == "or" for j in range(l1 + 1, f2)):
            return r.refuse(
                "clarify",
                f"'or' across {lex.dim_labels[d1].lower()} and {lex.dim_labels[d2].lower()} asks for either "
                "one, which I cannot filter on; ask for each, or for both at once with 'and'.",
            )
    for k, _ in dims_found:
        if k and toks[k - 1].word in ("all", "every") and k + 1 < n and toks[k + 1].role == "exclude":
            used_dims_as_label.add(k)  # "all regions except Europe": one total without Europe
        elif (
            k
            and toks[k - 1].word in ("all", "every", "both")
            and k + 1 < n
            and toks[k + 1].word in ("combined", "together", "altogether", "summed", "pooled")
        ):
            used_dims_as_label.add(k)  # "orders yesterday, all channels combined": one total
        elif (
            k + 1 < n
            and toks[k + 1].role == "exclude"
            and not (which or rank_dir or top_n)
            and not re.search(
                r"\b(?:rank|ranked|ranking|sort|sorted)\b", t
            )  # "rank the regions other than NA"
            and (not k or toks[k - 1].word not in BREAKDOWN_CUES)
        ):
            used_dims_as_label.add(k)  # "orders through channels other than Marketplace": one total
        elif (
            k > 1
            and toks[k - 1].word in ("all", "every")
            and toks[k - 2].word in ACROSS
            # "across all categories, which 3 had ...": the dimension ranked, not a total
            and not (
                (top_n or rank_dir or any(t_.word == "which" for t_ in toks))
                and len({d_ for _, d_ in dims_found}) == 1
                # "which month ... across all regions": the months are ranked, the regions added up
                and not any(t_.word in TIME_GRAINS and t_.role != "time" for t_ in toks)
            )
        ):
            used_dims_as_label.add(k)  # "revenue across all channels": one total of them all
        elif (
            k > 1
            and toks[k - 1].word == "all"
            and "," in t[toks[k - 2].end : toks[k - 1].start]
            and not (which or rank_dir or top_n)
            and (
                re.match(r"(?:how (?:many|much)|what (?:was|is|were|are)|total)\b", t)
                or not re.search(r"[a-z0-9]", t[toks[k].end :])
            )
        ):
            used_dims_as_label.add(k)  # "how many units did we move yesterday, all channels?": one total
    alls = [k for k, _ in dims_found if k and toks[k - 1].word == "all"]
    if len(alls) > 1:
        used_dims_as_label.update(alls)  # "(all regions, all channels)": the total, twice over
    for k in alls:  # "all regions and channels": both totals ("all regions" alone may still list them)
        said_as_scope = k < 2 or toks[k - 2].word in ACROSS or "," in t[toks[k - 2].end : toks[k - 1].start]
        if (
            said_as_scope
            and k + 2 < n
            and toks[k + 1].word == "and"
            and any(j == k + 2 for j, _ in dims_found)
        ):
            used_dims_as_label.update((k, k + 2))
    for k, _ in dims_found:
        if k > 1 and toks[k - 1].word == "and" and k - 2 in used_dims_as_label:
            used_dims_as_label.add(k)  # "across all regions and channels"
    # "top 5 SKUs (products)": one dimension, said twice
    by_dims = list(dict.fromkeys(d for k, d in dims_found if k not in used_dims_as_label))

    # --- the KPI ---------------------------------------------------------------------------------------
    names = list(dict.fromkeys(name for _, name in kpis_found))
    if not names and busy_word and "orders" in lex.kpis:
        names = ["orders"]  # how busy a day was is how many orders it had
        r.understood.append((busy_word, "KPI: Orders"))
    if not names:
        money_verb = r"\b(sell|sold|selling|sales|make|made|earn|earned|take|took|bring|brought)\b"
        if (
            re.search(r"\bhow much\b.*" + money_verb, joined)
            # "what did we sell in dollars": an amount of money sold is revenue
            or (said_currency and re.search(money_verb, joined))
            # "$ by region", "best day for $": money alone is revenue (an average or a rate per
            # something is not)
            or (
                said_currency
                and not re.search(
                    r"\b(?:average|avg|mean|per|each|typical|median|rate|ratio|share)\b", joined
                )
            )
            # "what did Europe bring in / make / earn last quarter": money earned ("what did we sell"
            # is goods, and stays unknown)
            or re.search(
                r"\bwhat (?:did|does|do|has|have|will)\b.*\b(?:bring|brought|take|took|rake|raked) in\b"
                r"|\bwhat (?:did|does|do|has|have)\b(?!.*\b(?:sell|sold|buy|bought|spend|spent)\b)"
                r".*\b(?:make|made|earn|earned|gross|grossed)\b(?! (?:of|up)\b)",
                joined,
            )
        ) or (
            rank_dir
            and re.search(r"\b(best|top|worst)\s*sell", joined) is None
            and re.search(r"\bsold\b|\bsell\b", joined)
            and re.search(r"\bhow much\b", joined)
        ):
            names = ["revenue"]
            r.understood.append(("how much ... sell", "KPI: Revenue"))
        elif (
            (
                m_most := re.search(
                    r"\b(?:sold|sell|sells|selling) (?:the )?(?:most|least|fewest|more|fewer)\b", joined
                )
            )
            and any(
                first > len(joined[: m_most.start()].split()) and any(o[0] == "product" for o in opts)
                for first, _, opts, _ in members_found
            )
            and "units" in lex.kpis
        ):
            names = ["units"]  # "which channel sold the most Orchid Leather Belts": pieces of a product
            r.understood.append((m_most.group(0), "KPI: Units"))
        elif (
            m_items := re.search(
                r"\b(?:how many|number of) (items?|products?|pieces?|articles?) .*\b(sell|sold|ship|shipped|buy|bought|move|moved)\b",
                joined,
            )
        ) and "units" in lex.kpis:
            names = ["units"]  # "how many items were sold": pieces, not a breakdown by product
            by_dims = [d for d in by_dims if d != "product"]
            r.understood.append((f"how many {m_items.group(1)} ... {m_items.group(2)}", "KPI: Units"))
        elif (
            re.search(r"\bhow many\b.*\b(sell|sold|ship|shipped|buy|bought|move|moved)\b", joined)
            and any(d in ("product", "category") for _, _, opts, _ in members_found for d, _ in opts)
            and "units" in lex.kpis
        ):
            names = ["units"]  # "how many Vertex Tablets did we sell": pieces of that product
            r.understood.append(("how many <product> ... sell", "KPI: Units"))
        else:
            what = "a KPI" if not re.search(r"\bhow many\b", joined) else "what to count"
            choices = [k.label for k in lex.kpis.values()]
            if re.search(r"\bhow many\b", joined) and re.search(r"\b(sell|sold|ship|shipped)\b", joined):
                choices = [lex.kpis[k].label for k in ("units", "orders") if k in lex.kpis]
            return r.refuse("clarify", f"Which KPI do you mean? The question does not name {what}.", choices)
    if len(names) > 1:
        # "AOV for marketplace orders", "units shipped to APAC customers", "margin on store sales":
        # orders, customers or sales right after a value name what the KPI before them is about, not
        # a second KPI ("Electronics returns" would be a different measure, so only these). "Web orders and revenue" asks
        # for both.
        def qualifies(i: int, name: str) -> bool:
            after = (  # "AOV for shoppers in North America", "units in orders from Europe"
                name in ("customers", "orders")
                and i + 2 < n
                and toks[i + 1].word in ("in", "from", "on", "via", "through")
                and toks[i + 2].role == "member"
            )
            whose = (
                name in ("orders", "customers")
                or (name == "revenue" and toks[i].word in ("sales", "sale"))
                # "the return rate of Apparel units sold": the units the rate is of
                or (name == "units" and any(lex.kpis[o].unit == "ratio" for _, o in kpis_found if o != name))
            )
            if not whose or not i or (toks[i - 1].role != "member" and not after):
                return False
            first_ = i - 1
            while first_ > 0 and toks[first_ - 1].role == "member":
                first_ -= 1
            if first_ and toks[first_ - 1].role == "exclude" and any(o != name for _, o in kpis_found):
                return True  # "return rate, excluding Marketplace sales": the sales left out, not a KPI
            if (
                first_
                and toks[first_ - 1].word in ("among", "amongst", "across", "of", "for")
                and any(
                    o != name
                    and j > i
                    and not any(
                        toks[k].word in ("and", "or", "plus", "&", "vs", "versus") for k in range(i + 1, j)
                    )
                    for j, o in kpis_found
                )
            ):
                return True  # "among Mobile App orders, what was the AOV": the orders the KPI after is about
            before = [j for j, o in kpis_found if o != name and j < i]
            return bool(before) and not any(
                # the "&" of "Middle East & Africa sales" is the value's own
                (
                    toks[k].word in ("and", "or", "plus", "&", "vs", "versus", "with")
                    and toks[k].role != "member"
                )
                or "," in t[toks[k].end : toks[k + 1].start]
                for k in range(before[-1], i)
            )

        qualifying = {name for i, name in kpis_found if qualifies(i, name)}
        if 0 < len(qualifying) < len(names):
            names = [n for n in names if n not in qualifying]
    if len(names) > 1:
        return r.refuse(
            "clarify",
            f"The question names several KPIs ({', '.join(lex.kpis[k].label for k in names)}); ask about one at a time.",
            [lex.kpis[k].label for k in names],
        )
    kpi = lex.kpis[names[0]]
    if said_currency and kpi.unit != "currency":
        # "gross margin in dollars": the margin as an amount, which the catalog does not define
        return r.refuse(
            "decline",
            f"{kpi.label} is not an amount of money, so it has no value in '{said_currency}'; the catalog "
            f"defines no {kpi.label.lower()} in {own}.",
            [kpi.label],
        )
    if kpi.unit == "currency" and re.search(r"\bhow many\b", joined) and kpi.additive:
        # "how many sales": a count of orders, or the money? not guessed
        choices = [lex.kpis[k].label for k in ("orders", "units") if k in lex.kpis] + [kpi.label]
        return r.refuse(
            "clarify", f"'How many' asks for a count, and {kpi.label} is money: which do you mean?", choices
        )
    if kpi.unit == "ratio" and re.search(r"\b(?:how many|number of|count of|amount of)\b", joined):
        # "the number of returns": a count, and Return rate is a ratio; not given as one
        return r.refuse(
            "decline",
            f"{kpi.label} is a ratio, and the question asks for a count; the catalog defines no count of "
            f"that. Ask for the {kpi.label.lower()} itself, or for {', '.join(lex.kpis[k].label for k in lex.kpis if lex.kpis[k].unit == 'count')}.",
            [kpi.label],
        )
    if kpi.name in lex.unavailable:
        return r.refuse(
            "decline",
            lex.unavailable[kpi.name] + ".",
            [k.label for k in lex.kpis.values() if k.name not in lex.unavailable],
        )
    if rank_word and not kpi.up_is_good:
        rank_dir = "desc" if rank_dir == "asc" else "asc"
        r.understood.append(
            (
                rank_word,
                f"{rank_word}: {'highest' if rank_dir == 'desc' else 'lowest'} {kpi.label.lower()} (lower is better)",
            )
        )
    for d in [*where, *exclude, *by_dims]:
        if d not in kpi.dimensions:
            return r.refuse(
                "decline",
                f"{kpi.label} is not kept by {lex.dim_labels[d].lower()} (it can be split by "
                f"{', '.join(lex.dim_labels[x].lower() for x in kpi.dimensions) or 'nothing'}).",
                [lex.kpis[k].label for k in lex.kpis if d in lex.kpis[k].dimensions],
            )

    # --- time ----------------------------------------------------------------------------------------
    absolute = [f.period for f in found if not f.period.relative]
    relative = [f.period for f in found if f.period.relative]
    if relative and not absolute:  # "the previous month" on its own: the one before the as-of's
        p = relative[0]
        unit = p.unit if p.unit in ("day", "week", "month", "quarter", "year") else "day"
        how = "before"
        if p.relative == "year":
            # "the same day / week / month last year" on its own: today's (this week's, this
            # month's) a year ago, the week 52 weeks back; "the same period last year" says no period
            said = re.search(r"\bsame (day|week|month|quarter)\b", p.text)
            if said is None:
                return r.refuse(
                    "clarify",
                    f"'{p.text}' compared with which period? e.g. 'last month vs the same month last year'.",
                )
            unit, how = said.group(1), "year"
        elif p.relative == "week":
            unit, how = "day", "week"
        cur = timephrases.floor_period(as_of.replace(hour=0, minute=0, second=0, microsecond=0), unit)
        absolute = [timephrases.shifted(Period(cur, timephrases.next_period(cur, unit), unit, p.text), how)]
        # "the previous quarter vs the same quarter a year before it": the first one is the period
        relative = relative[1:] if p.relative == "before" else []
    spans = [f.span for f in found if not f.period.relative]
    if len(absolute) > 2:
        # "yesterday, Sunday 06 December 2026", "YTD, from 1 Jan 2026 through today 07 Dec 2026": one
        # period, said again (a day right after "today" or "yesterday" is that day, said by its date)
        keep: list[int] = []
        for i, p in enumerate(absolute):
            twice = any((p.start, p.end) == (absolute[j].start, absolute[j].end) for j in keep)
            after = i and re.search(r"\b(?:today|yesterday)$", absolute[i - 1].text) is not None
            dated = (
                after
                and p.unit == "day"
                and absolute[i - 1].end - timedelta(days=1) <= p.start < absolute[i - 1].end
            )
            beside_ = i and re.fullmatch(r"[\s,(]*", t[spans[i - 1][1] : spans[i][0]]) is not None
            if not (twice or (dated and beside_)):
                keep.append(i)
        absolute, spans = [absolute[i] for i in keep], [spans[i] for i in keep]
    weekday = [p for p in absolute if timephrases.WEEKDAY_PHRASE.fullmatch(p.text)]
    beside = len(spans) == 2 and re.fullmatch(r"[\s,(]*(?:the\s*)?", t[spans[0][1] : spans[1][0]]) is not None
    if len(absolute) == 2 and len(weekday) == 1 and beside:
        # "on Monday, 30 November": the weekday confirms the date (or contradicts it: asked back)
        day = next(p for p in absolute if p is not weekday[0])
        if day.unit == "day":
            if day.start.weekday() != weekday[0].start.weekday():
                return r.refuse(
                    "clarify",
                    f"{day.describe()} is a {day.start:%A}, not a {weekday[0].start:%A}: which day do you mean?",
                )
            absolute = [day]
    if len(absolute) > 2 or (len(absolute) == 2 and relative):
        return r.refuse(
            "clarify", "The question names more than two periods; ask about one (or compare two)."
        )
    if than and len(absolute) == 1 and not relative:
        said = re.fullmatch(r"(?:the )?(?:last|previous|prior) (week|month|quarter|year)", absolute[0].text)
        before = t[: spans[0][0]].split()[-1:] if spans else []
        if said and before == ["than"]:
            # "is AOV higher than last month": this month so far against it
            (now,), _ = timephrases.find(f"this {said.group(1)}", as_of)
            absolute = [now.period, absolute[0]]
    if (
        len(absolute) == 2
        and not compare_cue
        and absolute[0].unit == absolute[1].unit == "day"
        and (absolute[0].start, absolute[0].end) == (absolute[1].start, absolute[1].end)
    ):
        absolute = absolute[:1]  # "on Friday (4 December)", "yesterday, 6 Dec": one day, said twice
    period_a = absolute[0] if absolute else None
    period_b = None
    if len(absolute) == 2:
        gap = t[spans[0][1] : spans[1][0]].strip(" ,") if len(spans) == 2 else ""
        if gap in ("over", "on"):  # "revenue Q3 over Q2": the first against the second
            compare_cue = True
        moved = gap == "to" and bool(re.search(r"\b(?:move[ds]?|moving|went|go|gone|shift(?:ed)?)\b", joined))
        if moved:
            compare_cue = True  # "how did the return rate move from May to June": from one to the other
        if (
            (re.search(r"\bfrom\b", joined) and re.search(r"\bto\b", joined))
            or (re.search(r"\bbetween\b", joined) and re.search(r"\band\b", joined))
            # "compare Q2 and Q3": no order said, so the later against the earlier, as "between"
            or (compare_cue and gap in ("and", "and the", "&"))
            or moved  # "October → November, how much did it move" ("compare A to B" is A against B)
        ) and absolute[0].start < absolute[1].start:
            # "from 2024 to 2025", "between October and November": the later against the earlier
            period_a, period_b = absolute[1], absolute[0]
        elif (
            len(spans) == 2
            and re.search(_BASE_CUE + r"$", t[: spans[0][0]].rstrip(" ,"))
            and not re.search(_BASE_CUE, t[spans[0][1] : spans[1][0]])
        ):
            # "compared with October, how did orders do in November": the period said first is the base
            period_a, period_b = absolute[1], absolute[0]
        else:
            period_a, period_b = absolute
        if (
            period_b.start > period_a.start
            and period_b.end - period_b.start == period_a.end - period_a.start
            and re.match(
                r"(?:the )?(?:previous|prior|preceding) \w+ (?:full |complete |whole )?(?:days|weeks)\b",
                period_b.text,
            )
        ):
            # "the 3 days before yesterday vs the 3 days before those": the stretch before the first
            period_b = timephrases.shifted(period_a, "before")
        if (period_a.start, period_a.end) == (period_b.start, period_b.end):
            # "the last 7 days vs the previous 7 days": the same words name the stretch before
            if re.match(r"(?:the )?(?:previous|prior|preceding)\b", period_b.text):
                period_b = timephrases.shifted(period_a, "before")
            elif not compare_cue and not re.match(r"(?:the )?(?:previous|prior|preceding)\b", period_a.text):
                # "units for last year, full year 2025", "last week - the Cyber Monday week": one period, said
                # twice ("the 30 days before the last 30 days" is not: it is asked back)
                period_b = None
            else:
                return r.refuse(
                    "clarify",
                    f"'{period_a.text}' and '{period_b.text}' are the same period: compare it with which?",
                )
        first_, second_ = sorted((period_a, period_b or period_a), key=lambda p: p.start)
        if period_b is None:
            pass
        elif (
            not compare_cue
            and first_.end == second_.start
            and re.search(r"\b(?:total|totals|combined|together|altogether|both|sum)\b", joined)
            and re.search(r"\band\b", joined)
        ):
            # "total revenue in 2024 and 2025": two periods back to back, added up, are one span
            period_a = Period(
                first_.start, second_.end, "span", f"{first_.text} and {second_.text}", second_.so_far
            )
            period_b = None
            r.understood.append((period_a.text, f"time: {period_a.describe()} (both periods together)"))
        elif not compare_cue:
            return r.refuse(
                "clarify",
                f"Two periods ({period_a.describe()} and {period_b.describe()}): compare them, or ask about each?",
                [f"{kpi.label} {period_a.describe()} vs {period_b.describe()}"],
            )
        if period_b is None:
            pass
        elif period_a.unit != period_b.unit and re.fullmatch(
            r"(last|previous|past|prior) year", period_b.text
        ):
            period_b = timephrases.shifted(period_a, "year")  # "this month vs last year": the same month
        elif (
            period_a.start < period_b.end
            and period_b.start < period_a.end
            and ((period_a.start, period_a.end) != (period_b.start, period_b.end))
        ):
            # "units last 7 days vs the last 30 days": one period inside the other is no comparison
            return r.refuse(
                "clarify",
                f"{period_a.describe()} and {period_b.describe()} overlap: compare {period_a.describe()} with "
                f"{timephrases.shifted(period_a, 'before').describe()}, or ask about each on its own?",
            )
        elif (
            (period_a.end - period_a.start) != (period_b.end - period_b.start)
            and (period_a.unit != period_b.unit or period_a.so_far != period_b.so_far)
            # a rate or an average does not grow with its period's length: compared as said ("margin
            # YTD vs the full 2025"); a total over a shorter period is asked back, whatever words say
            and kpi.additive
        ):
            same = timephrases.shifted(period_a, "before")
            return r.refuse(
                "clarify",
                f"{period_a.describe()} and {period_b.describe()} are not the same length: compare "
                f"{period_a.describe()} with {same.describe()}, or with all of {period_b.describe()}?",
                [
                    f"{kpi.label} {period_a.text} vs {same.describe()}",
                    f"{kpi.label} {period_a.text} vs {period_b.text}",
                ],
            )
    elif relative and period_a is not None:
        period_b = timephrases.shifted(period_a, relative[0].relative)
    elif period_a is not None and (
        yoy or (compare_cue and not why and not rank_dir and not by_dims and not time_grain)
    ):
        versus = re.search(r"\b(vs|versus|compared|compare|against|than)\b", joined) or between_values
        several = [d for d in where if len(where[d]) > 1]
        grew = [t_.word for t_ in toks if t_.role in (None, "filler") and t_.word in CHANGE_WORDS]
        # "the difference between web and app revenue": their values side by side, and the gap
        if grew == ["difference"] and between_values and len(several) == 1:
            grew = []
            r.difference = True
        if versus and not yoy and several and grew:
            # "Europe vs North America revenue growth": each one's change, side by side, is a
            # ranking of changes, which is not computed; the values alone would not answer it
            return r.refuse(
                "decline",
                f"'{grew[0]}' for {' vs '.join(where[several[0]])} would set their changes side by side, "
                "which I do not compute; ask for each one's change (e.g. 'Europe revenue last month vs the "
                "month before') or for their values ('Europe vs North America revenue last month').",
            )
        if versus and not yoy and several and several[0] in grouped:
            # "EMEA vs APAC": side by side would list Europe and Middle East & Africa one by one
            name, values = grouped[several[0]]
            return r.refuse(
                "clarify",
                f"'{name}' stands for several {lex.dim_labels[several[0]].lower()} values "
                f"({' and '.join(values)}), which a side-by-side lists one by one; ask for "
                f"'{kpi.label.lower()} in {name}' and for the other on its own.",
            )
        if versus and not yoy and several:
            # "Apparel vs Books last month": the values side by side, not a change over time; "was
            # Web bigger than the app": the larger of them
            r.period, r.shape = period_a, "top" if than_pick else "breakdown"
            r.question = Question(
                kpi=kpi.name,
                grain="total",
                start=period_a.start,
                end=period_a.end,
                by=(several[0],),
                where=where,
                exclude=exclude,
                **({"top": 1, "order": than_pick} if than_pick else {}),
            )
            return r
        if versus and not yoy:
            return r.refuse(
                "clarify",
                "Compared with what? e.g. 'last month vs the month before' or 'vs the same month last year'.",
            )
        period_b = timephrases.shifted(period_a, "year" if yoy else "before")
    if period_b is not None:
        # "Europe's revenue last month with North America's the month before": two slices and two
        # periods compared at once; not the two slices added up over each period
        for d, vs in where.items():
            at = sorted(m[0] for m in members_found if len(vs) > 1 and any(o[0] == d for o in m[2]))
            if any(
                toks[j].word in ("vs", "versus", "compared", "compare", "against", "with", "than", "to")
                for a_, b_ in zip(at, at[1:], strict=False)
                for j in range(a_ + 1, b_)
            ):
                return r.refuse(
                    "clarify",
                    f"That compares {' and '.join(vs)} and two periods at once; ask for one of them over "
                    f"both periods, or for both in one period ('{kpi.label.lower()} {' vs '.join(vs)} "
                    f"{period_a.text}').",
                )
    if period_a is None:
        if lex.latest is None:
            return r.refuse("decline", "The warehouse holds no data yet.")
        if why:
            return r.refuse(
                "clarify",
                f"Which day or period should I explain? e.g. 'why did {kpi.label.lower()} drop yesterday'.",
            )
        first = (lex.first or as_of).replace(hour=0, minute=0, second=0, microsecond=0)
        end = as_of.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        period_a = Period(first, end, "span", "all the data", so_far=True)
        r.whole_data = True
        if yoy or compare_cue and not rank_dir:
            return r.refuse("clarify", "Compare which periods? e.g. 'last month vs the month before'.")
    if period_a.start >= period_a.end:
        return r.refuse("decline", f"{period_a.text} is an empty period.")
    r.period, r.period_b = period_a, period_b

    changed = [
        tok.word
        for i_, tok in enumerate(toks)
        if tok.role in (None, "filler")
        and (
            tok.word in CHANGE_WORDS
            or tok.word in ("up", "down")
            and not (i_ and toks[i_ - 1].word in ("broken", "break", "breaking"))
        )
    ]
    if changed and not why and (by_dims or rank_dir or time_grain):
        # "which region grew most", "revenue growth by region": a ranking of changes between two
        # periods, which is not what a ranking or breakdown of one period's values would show
        return r.refuse(
            "decline",
            f"'{changed[0]}' {'by ' + by_dims[0] if by_dims else 'in a ranking'} would rank changes between two periods, "
            "which I do not compute; ask for one slice's change (e.g. 'Europe revenue last month vs the "
            "month before') or for the ranking of one period.",
        )
    if (
        period_b is not None
        and period_a.so_far
        and not period_b.so_far
        and period_a.unit == period_b.unit
        and period_a.unit in ("day", "hour")  # "this morning vs yesterday morning" too
        and period_a.end - period_a.start == period_b.end - period_b.start
        and period_a.start <= as_of < period_a.end
    ):
        # "orders today vs yesterday": today so far against yesterday up to the same hour, not
        # against all of it (which reads as a fall every morning). Whole hours only (the hour under
        # way would be part of one side and all of the other). Longer stretches keep whole days, as
        # they are named: a last partial day is a small share of them, and the answer says so
        cut = as_of.replace(minute=0, second=0, microsecond=0)
        if cut <= period_a.start:
            cut += timedelta(hours=1)  # in the first hour: that hour so far, against the same hour
        period_a = Period(period_a.start, cut, "hour", period_a.text, so_far=True)
        period_b = Period(period_b.start, period_b.start + (cut - period_a.start), "hour", period_b.text)
        r.period, r.period_b = period_a, period_b
        r.understood.append((period_b.text, f"time: {period_b.describe()} (up to the same hour)"))
    # --- shape -------------------------------------------------------------------------------------
    base = dict(
        kpi=kpi.name, grain="total", start=period_a.start, end=period_a.end, where=where, exclude=exclude
    )
    if why:
        r.shape = "why"
        if re.search(
            r"\b(drop|dropped|fall|fell|low|lower|dip|dipped|decline|declined|decrease|decreased|weak|poor|down|bad"
            r"|fewer|less|smaller|worse)\b",
            joined,
        ):
            r.direction = -1
        elif re.search(
            r"\b(rise|rose|high|higher|spike|spiked|jump|jumped|surge|surged|increase|increased|strong|up|peak"
            r"|more|bigger|greater|better)\b",
            joined,
        ):
            r.direction = 1
        r.question = Question(**base)
        return r
    if as_share and not share_of_ratio and period_b is not None:
        pass  # "2025 relative to 2024, as a percentage": the unit of the change
    elif as_share and kpi.additive:
        share = True
    elif share_of_ratio:
        return r.refuse("decline", SHARE_HOW)
    # "what share of revenue came from Europe by channel": Europe's part of each channel, or
    # Europe's revenue split by channel? Asked as a slice and a breakdown at once: declined below
    if share and len(by_dims) == 1 and period_b is None and not time_grain and (as_share or not where):
        if not kpi.additive:
            return r.refuse("decline", SHARE_HOW)
        r.shares = True  # each slice of the breakdown, and its share of the whole (below)
    elif share:
        if period_b is not None or by_dims or rank_dir or time_grain or not where or not kpi.additive:
            return r.refuse("decline", SHARE_HOW)
        r.shape = "share"  # the slice, and the whole it is a part of (no filter; exclusions kept)
        r.question = Question(**base)
        r.compare_to = Question(**{**base, "where": ()})
        return r
    if period_b is not None:
        if by_dims or rank_dir or time_grain:
            return r.refuse(
                "clarify",
                "I compare two periods as totals; ask for the comparison without a breakdown or ranking.",
            )
        r.shape = "compare"
        r.question = Question(**base)
        r.compare_to = Question(**{**base, "start": period_b.start, "end": period_b.end})
        return r
    if len(by_dims) > 1:
        return r.refuse("clarify", f"Break down by one dimension at a time ({', '.join(by_dims)}).", by_dims)
    # "rank the months of 2025 by revenue", "rank A, B and C by units": every one, largest first
    rank_verb = any(tok.word in ("rank", "ranked", "ranking", "sort", "sorted") for tok in toks)
    if rank_verb and not rank_dir:
        rank_dir = "desc"
    ordering = ordering or (rank_verb and top_n is None)  # "rank the regions": the whole list, in order
    rank_time = time_grain and (rank_dir or which) and not by_dims
    if rank_time and (rank_verb or ordering) and top_n is None:
        top_n = 1000  # all of them ("rank the months", "by month, biggest first")
    if rank_time:
        if time_grain == "weekday":
            return r.refuse("decline", "Rankings by weekday are not supported; ask by day, week or month.")
        r.shape = "rank_time"
        r.rank_grain = time_grain
        grain = time_grain if time_grain in ("hour", "day", "week", "month") else "total"
        r.question = Question(**{**base, "grain": grain})
        r.top_n, r.order = top_n or 1, rank_dir or "desc"
        return r
    several_of_one = [d for d, vs in where.items() if len(vs) > 1]
    if rank_dir and not by_dims and not time_grain and (which or rank_verb) and len(several_of_one) == 1:
        # "which of web and app had the most orders", "out of A, B and C, which one sold the most":
        # a ranking of the values named ("rank A, B and C": all of them)
        named = len(where[several_of_one[0]])
        r.shape = "top"
        r.question = Question(
            **{
                **base,
                "by": (several_of_one[0],),
                "top": top_n or (named if rank_verb else 1),
                "order": rank_dir,
            }
        )
        return r
    if by_dims and len(where.get(by_dims[0], ())) == 1:
        # "which category has the highest return rate - is it Apparel?": ranking the one value named
        # would name it whatever the data says
        one = where[by_dims[0]][0]
        label = lex.dim_labels[by_dims[0]].lower()
        return r.refuse(
            "clarify",
            f"You ask about every {label} and name {one}: rank all of them ('which {label} had the highest "
            f"{kpi.label.lower()}'), or give the {kpi.label.lower()} of {one}?",
        )
    if by_dims:
        dim = by_dims[0]
        at = next(k for k, d in dims_found if d == dim)
        before = toks[at - 1].word if at else ""
        asks_which = before in ("which", "what") or (
            at > 1 and toks[at - 2].word in ("which", "what") and before.isdigit()
        )
        ranking = (rank_dir is not None and not ordering) or top_n is not None or asks_which
        if ranking:
            last = at  # "which sales channel": the phrase's last word says one or several
            while last + 1 < n and toks[last + 1].role == "dim":
                last += 1
            plural = toks[last].word != sing[last]
            n_ = top_n or (5 if plural else 1)
            r.shape = "top"
            r.question = Question(**{**base, "by": (dim,), "top": n_, "order": rank_dir or "desc"})
        else:
            r.shape = "breakdown"
            r.question = Question(**{**base, "by": (dim,), "order": rank_dir or "desc"})
        return r
    if not time_grain and not rank_dir and re.search(r"\btrend(?:s|ing)?\b|\bover time\b", joined):
        # "the AOV trend over the last 6 months": a series at a grain that suits the span
        days = (period_a.end - period_a.start).days
        time_grain = "month" if days >= 90 else "week" if days >= 28 else "day" if days >= 2 else "hour"
        r.understood.append(("trend", f"by {time_grain}"))
    if time_grain and time_grain == period_a.unit and not period_a.so_far:
        time_grain = None  # "revenue for the week 2 weeks ago": one week by week is one value
    if time_grain and time_grain in ("hour", "day", "week", "month"):
        r.shape = "trend"
        r.question = Question(**{**base, "grain": time_grain})
        return r
    if time_grain in ("quarter", "year"):  # "revenue by quarter 2025": one total per quarter
        r.shape, r.rank_grain = "trend", time_grain
        r.question = Question(**{**base, "grain": "total"})
        return r
    if rank_dir and not by_dims:
        return r.refuse(
            "clarify",
            f"Top or bottom what? e.g. 'top 5 products by {kpi.label.lower()}'.",
            [f"{lex.dim_labels[d]}" for d in kpi.dimensions],
        )
    r.shape = "value"
    r.question = Question(**base)
    return r
