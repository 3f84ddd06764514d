"""What Ask understands, built from catalog.yml and the warehouse (never from a list of questions).

- KPIs by name, label and ``synonyms``;
- dimensions by name, label, ``synonyms`` and the source column names ``kpi load --map`` recorded
  in ``ops.source_names`` (a user who mapped ``region=Country`` may say "by country"), and the
  words ``vocabulary.columns`` gives such a name (a column "UF" holds states: "by state");
- member values read from the warehouse, matched case-insensitively, by a word only they contain
  ("toys" -> Toys & Games), by alias ("the UK") and fuzzily ("Eurpoe");
- measures the catalog does not define (``vocabulary.undefined``), declined with a reason;
- KPIs whose inputs were never loaded (gross margin without unit costs).

One lexicon per data version of the views (member values change with data, not with every batch).
"""

from __future__ import annotations

import functools
import logging
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from .. import cache, kpis, warehouse
from .. import scope as row_scope
from ..errors import KpiError
from . import regex as re

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[&%$£€]")
# words too common to name a member on their own ("north" in North America is fine, "and" is not)
_WEAK = {"and", "the", "of", "for", "in", "on", "at", "to", "a", "an", "by", "with", "de", "la", "le", "&"}


def words(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes and dashes normalised, accents folded: "Descrição" is
    "descricao", and "sao paulo" finds "São Paulo")."""
    text = unicodedata.normalize("NFKD", text.lower().replace("’", "'").replace("-", " ").replace("_", " "))
    return _WORD.findall("".join(c for c in text if not unicodedata.combining(c)))


def norm(text: str) -> str:
    return " ".join(singular(w) for w in words(text))


def singular(w: str) -> str:
    """A crude singular for matching only ("categories" ~ "category", "books" ~ "book")."""
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


@dataclass
class Lexicon:
    kpis: dict[str, kpis.Kpi]
    kpi_phrases: dict[str, str]  # normalised phrase -> KPI name
    dim_phrases: dict[str, str]  # normalised phrase -> dimension
    dim_labels: dict[str, str]  # dimension -> label
    members: dict[str, list[str]]  # dimension -> values
    member_phrases: dict[str, set[tuple[str, str]]]  # normalised phrase -> {(dimension, value)}
    aliases: dict[str, list[str]]  # normalised alias -> candidate values
    undefined: dict[str, str]  # normalised phrase -> what it is
    unavailable: dict[str, str]  # KPI -> why it cannot be answered on this data
    first: datetime | None = None  # the first and last order (business time)
    latest: datetime | None = None
    source_names: dict[str, str] = field(default_factory=dict)  # column name -> dimension
    groups: dict[str, list[str]] = field(default_factory=dict)  # normalised name -> all its values
    _fuzzy: list[str] = field(default_factory=list)
    _words: list[str] = field(default_factory=list)  # words of known phrases, for word typos
    _longest: int = 0

    def max_len(self) -> int:
        """Words in the longest known phrase (computed once)."""
        if not self._longest:
            phrases = (
                *self.kpi_phrases,
                *self.member_phrases,
                *self.dim_phrases,
                *self.undefined,
                *self.aliases,
                *self.groups,
            )
            self._longest = max((len(p.split()) for p in phrases), default=1)
        return self._longest

    def fuzzy(self, phrase: str) -> list[str]:
        """Known phrases within a typo of ``phrase`` (one edit for short words, two for long ones);
        several when it is ambiguous."""
        # short words are too close to other real words (Iran/Iraq): only 5+ letters, same first letter
        return _closest(phrase, self._fuzzy)

    def fuzzy_word(self, word: str) -> list[str]:
        """Words of known phrases (5+ letters, same first letter) within a typo of ``word``: one
        edit, two for words of 9+ letters; several when it is ambiguous."""
        one = singular(word)  # the words are kept in the singular, as phrases are
        # a typed plural of 5+ letters is a noun even when its singular is shorter ("oders": order)
        if one == word and re.search(r"(.)\1$", word):  # a key held down: "orderss" is "orders"
            one = singular(word[:-1])
        near = _closest(one, [w for w in self._words if len(w) >= 5], shortest=4 if len(word) >= 5 else 5)
        if near or len(one) != 4:
            return near
        # a 4-letter word only by two letters swapped ("gmaes": games; "boots" is not books)
        return [
            w for w in self._words if len(w) == 4 and sorted(w) == sorted(one) and w[0] == one[0] and w != one
        ]

    def holds_countries(self) -> bool:
        """Whether a dimension's values are countries (a shop's countries, not the demo's regions)."""
        code_of, _ = _territories()
        return any(norm(v) in code_of for d, vs in self.members.items() if d != "product" for v in vs)

    def suggestions(self) -> list[str]:
        return [k.label for k in self.kpis.values()]


_lock = threading.Lock()
_memo: dict[str, Lexicon] = {}


def lexicon() -> Lexicon:
    """The lexicon for the warehouse as it is now (rebuilt when the views or source names change)."""
    kpis.sync_versions()
    # per refresh of the views, not per batch: on a live stream every batch is a new version
    key = f"{cache.versions.views_version()}"
    with _lock:
        lex = _memo.get(key)
    if lex is None:
        lex = build()
        with _lock:
            _memo.clear()
            _memo[key] = lex
    return lex


def _source_names() -> dict[str, str]:
    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            rows = conn.execute("select source_name, dimension from ops.source_names").fetchall()
    except Exception as exc:  # noqa: BLE001 - an older warehouse without the table: no names yet
        log.debug("no ops.source_names: %s", exc)
        return {}
    return {str(n): str(d) for n, d in rows}


def _first_data() -> datetime | None:
    with warehouse.connect_raw(autocommit=True) as conn:
        return conn.execute(
            "select min(ordered_at) at time zone ops.business_tz() from silver.orders"
        ).fetchone()[0]


def build() -> Lexicon:
    """The lexicon of the warehouse as it is: member values, recorded source names, data span.

    One lexicon for every reader, built over every row: it holds names, not numbers, and it is
    shared by whoever asks next (a scoped reader asking about another region is told so)."""
    with row_scope.using(row_scope.EVERYTHING):
        return _build()


def _build() -> Lexicon:
    members: dict[str, list[str]] = {}
    for d in kpis.dimensions():
        try:
            members[d] = [str(v) for v in kpis.dimension_values(d) if v is not None]
        except KpiError:
            members[d] = []
    latest = kpis.latest_data()
    first = _first_data() if latest is not None else None
    defs = kpis.definitions()
    return from_parts(members, _source_names(), first, latest, _unavailable(defs, first, latest))


def from_parts(
    members: dict[str, list[str]],
    source_names: dict[str, str] | None = None,
    first: datetime | None = None,
    latest: datetime | None = None,
    unavailable: dict[str, str] | None = None,
) -> Lexicon:
    """A lexicon from catalog.yml plus the given warehouse facts (tests build one without data)."""
    defs = kpis.definitions()
    kpi_phrases: dict[str, str] = {}
    for k in defs.values():
        for phrase in (k.name.replace("_", " "), k.label, *k.synonyms):
            kpi_phrases.setdefault(norm(phrase), k.name)
    dims = kpis.dimensions()
    dim_phrases: dict[str, str] = {}
    for d, meta in dims.items():
        for phrase in (d, meta.get("label", d), *(meta.get("synonyms") or ())):
            dim_phrases.setdefault(norm(phrase), d)
    source = dict(source_names or {})
    vocab = kpis.vocabulary()
    column_words = {norm(c): list(ws) for c, ws in (vocab.get("columns") or {}).items()}
    for name, d in source.items():
        if d in dims:
            for phrase in _source_phrases(name, column_words):
                dim_phrases.setdefault(phrase, d)
    member_phrases: dict[str, set[tuple[str, str]]] = {}
    token_owner: dict[str, set[tuple[str, str]]] = {}
    for d, values in members.items():
        for v in values:
            member_phrases.setdefault(norm(v), set()).add((d, v))
            if d != "product":  # a word of a product name is rarely meant as that product
                for w in set(norm(v).split()):
                    if len(w) >= 3 and w not in _WEAK:
                        token_owner.setdefault(w, set()).add((d, v))
    for w, owners in token_owner.items():
        if len(owners) == 1 and w not in member_phrases and w not in kpi_phrases and w not in dim_phrases:
            member_phrases[w] = set(owners)
    aliases = _aliases(vocab.get("aliases") or {})
    taken = {*kpi_phrases, *dim_phrases, *member_phrases}
    for phrase, values in _country_names(members).items():
        if phrase not in taken:
            aliases.setdefault(phrase, values)  # the catalog's own aliases come first
    lex = Lexicon(
        kpis=defs,
        kpi_phrases=kpi_phrases,
        dim_phrases=dim_phrases,
        dim_labels={d: _own_label(d, source, column_words) or m.get("label", d) for d, m in dims.items()},
        members={d: list(members.get(d, [])) for d in dims},
        member_phrases=member_phrases,
        aliases=aliases,
        # as written only: "the Americas" is two regions, "America" is not
        groups={" ".join(words(g)): list(vs) for g, vs in (vocab.get("groups") or {}).items()},
        undefined={norm(p): str(what) for p, what in (vocab.get("undefined") or {}).items()},
        unavailable=dict(unavailable or {}),
        first=first,
        latest=latest,
        source_names=source,
    )
    lex._fuzzy = sorted({p for p in (*kpi_phrases, *member_phrases, *dim_phrases) if len(p) >= 4})
    # product names are left out: a word of one is rarely meant on its own
    named = [p for p, owners in member_phrases.items() if any(d != "product" for d, _ in owners)]
    lex._words = sorted(
        {
            w
            for p in (*kpi_phrases, *dim_phrases, *named, *lex.aliases, *lex.groups, *lex.undefined)
            for w in p.split()
            if len(w) >= 4 and w.isalpha()
        }
    )
    return lex


# Words a column name adds to what it names: "State Code", "country_name", "UF id" are the state,
# the country, the UF.
_COLUMN_NOISE = {
    "code",
    "codes",
    "name",
    "names",
    "id",
    "ids",
    "abbr",
    "abbreviation",
    "key",
    "cd",
    "nm",
    "iso",
}


def _core(name: str) -> str:
    """A column name without its noise words ("State Code" -> "state"), or the whole name."""
    return " ".join(w for w in norm(name).split() if w not in _COLUMN_NOISE) or norm(name)


def _source_phrases(name: str, column_words: dict[str, list[str]]) -> list[str]:
    """The phrases a recorded source column name gives its dimension: the name itself, the name
    without words such as "code" or "name" ("state code" -> "state"), and the words the catalog's
    ``vocabulary.columns`` gives either ("uf" -> "state", "states")."""
    phrases = [norm(name)]
    core = _core(name)
    if core != phrases[0]:
        phrases.append(core)
    for p in list(phrases):
        phrases.extend(norm(w) for w in column_words.get(p, ()))
    return list(dict.fromkeys(phrases))


def _own_label(dim: str, source: dict[str, str], column_words: dict[str, list[str]]) -> str | None:
    """The data's own name for ``dim`` when its loads agree on one ("UF" -> "State", "Country"
    -> "Country"), so answers say "by state" on a Brazilian export; None when no load named it,
    or loads named it differently."""
    names = set()
    for name, d in source.items():
        if d != dim:
            continue
        core = _core(name)
        words = column_words.get(norm(name)) or column_words.get(core)
        names.add(norm(words[0]) if words else core)
    if len(names) != 1:
        return None
    (own,) = names
    return own.capitalize() if own != norm(dim) and len(own.split()) <= 2 else None


def _aliases(aliases: dict[str, list[str]]) -> dict[str, list[str]]:
    """Alias phrase -> values. A one-word alias is matched in the singular too ("shop"/"shops");
    a longer one only as written ("the states" is the US, "the state of SP" is not)."""
    out: dict[str, list[str]] = {}
    for a, values in aliases.items():
        key = " ".join(words(a))
        out.setdefault(key, list(values))
        if " " not in key:
            out.setdefault(singular(key), list(values))
    return out


#: the languages a country's name is known in, beside the data's own: a Swiss shop's export says
#: "Schweiz" and its analysts ask about "Switzerland" (or "Suisse")
COUNTRY_LANGUAGES = ("en", "de", "fr", "it", "es", "pt", "nl")


@functools.cache
def _territories() -> tuple[dict[str, str], dict[str, list[str]]]:
    """(normalised country name -> ISO code, ISO code -> its names), from babel's CLDR data."""
    from babel import Locale

    code_of: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    for lang in COUNTRY_LANGUAGES:
        for code, name in Locale.parse(lang).territories.items():
            if len(code) == 2 and code.isalpha():  # countries, not "150" (Europe) or "419"
                code_of.setdefault(norm(name), code)
                names.setdefault(code, [])
                if name not in names[code]:
                    names[code].append(name)
    return code_of, names


def country(word: str) -> str | None:
    """The English name of the country ``word`` names in one of :data:`COUNTRY_LANGUAGES`, or None."""
    code_of, names = _territories()
    code = code_of.get(norm(word))
    return names[code][0] if code and len(norm(word)) >= 4 else None


def _country_names(members: dict[str, list[str]]) -> dict[str, list[str]]:
    """Alias -> value for each value of the data that is a country's name in one of
    :data:`COUNTRY_LANGUAGES`: its names in the others ("switzerland", "suisse" -> "Schweiz"). The
    same country, so an exact answer, not a guess; a name two values share is left out."""
    code_of, names = _territories()
    out: dict[str, set[str]] = {}
    for d, values in members.items():
        if d == "product":
            continue
        for v in values:
            code = code_of.get(norm(v))
            for name in names.get(code, ()) if code else ():
                phrase = norm(name)
                if len(phrase) >= 4 and phrase != norm(v):
                    out.setdefault(phrase, set()).add(v)
    return {p: sorted(vs) for p, vs in out.items() if len(vs) == 1}


def _unavailable(
    defs: dict[str, kpis.Kpi], first: datetime | None, latest: datetime | None
) -> dict[str, str]:
    """KPIs that read nothing on this data: a ratio whose denominator, or a count whose inputs,
    were never loaded (no unit costs: no gross margin; no customer ids: no customers)."""
    if first is None or latest is None:
        return {k: "the warehouse holds no orders yet (load some with `kpi load lines FILE`)" for k in defs}
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    end = latest.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    out = {}
    for k in defs.values():
        parts = kpis.components(k)
        probe = parts[1] if parts else k
        # distinct counts over years are the dearest query there is: the last 30 days tell as much
        frm = max(start, end - timedelta(days=30)) if kpis._DISTINCT.search(probe.expression) else start
        try:
            value = kpis.query(probe.name if parts else k.name, "total", start=frm, end=end).value
        except KpiError as exc:
            log.debug("probe of %s failed: %s", k.name, exc)
            continue
        if not value:
            out[k.name] = (
                f"{k.label} is computed from {probe.expression}, and the loaded data has none of it "
                "(load files with those columns, e.g. unit_cost, to answer it)"
            )
    return out


def _closest(text: str, choices, shortest: int = 5) -> list[str]:
    """The ``choices`` (same first letter) within one edit of ``text``, two for 9+ letters; all the
    closest when several tie. Nothing for under ``shortest`` letters: too close to other real words."""
    if len(text) < shortest or not choices:
        return []
    limit = 1 if len(text) < 9 else 2
    hits = process.extract(text, choices, scorer=DamerauLevenshtein.distance, score_cutoff=limit, limit=5)
    hits = [h for h in hits if h[0][:1] == text[:1]]
    if not hits:
        return []
    best = min(h[1] for h in hits)
    return [h[0] for h in hits if h[1] == best]
