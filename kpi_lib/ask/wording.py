"""How people word a question, rewritten to the words the parser reads.

Greetings and preambles ("hey, quick one", "could you check"), chat and speech ("rev lm", "uh"),
English as a second language ("the precedent week", "the month passed", "until today"), and the
forms dates take in spreadsheets ("Nov-26", "10/2026", "Oct '26"). Each rewrite keeps the meaning:
a word that would drop a condition ("orders paid by check") is left for the parser to refuse.
"""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache

from . import regex as re
from .timephrases import _DAYNUM, _HOLIDAY, _MON, MONTHS, holiday

# Words of a remark in brackets that only restates the period or the KPI already said: "two weeks
# ago (the full Monday-to-Sunday week)", "YTD (1 January through today)", "return rate (units
# returned / units sold)". Such a remark is dropped; one that adds a condition ("(excluding today)",
# "(before noon)") is kept, and read or refused.
#: dimension words when no lexicon is given (the parser passes its own)
DIMENSION_WORDS = ("region", "channel", "category", "product")
_RESTATING = set(
    """
    the a an full whole complete entire calendar inclusive included
    current this one that it to through thru till until - / from mon monday tue tuesday wed wednesday
    thu thursday fri friday sat saturday sun sunday today yesterday now day days week weeks wk wks
    month months quarter quarters year years ending starting beginning
    same period so far of on and is divided by over units unit returned sold revenue orders cost
    rolling trailing incl including q h fy py ly cy each both ranges counted
    jan january feb february mar march apr april may jun june jul july aug august sep sept september
    oct october nov november dec december st nd rd th
    """.split()
)
_KPI_WORDS = {"units", "unit", "returned", "sold", "revenue", "orders", "cost"}
_RELATIVE = {"ago", "earlier", "before", "after", "later"}
_TIME_SAID = re.compile(
    r"\b(?:day|days|week|weeks|month|months|quarter|quarters|year|years|yesterday|today|ytd|mtd|qtd|wtd"
    r"|q[1-4]|h[12]|(?:19|20)\d\d|to date|so far|ago|py|ly|cy|lw|lm|lq)\b"
)


def _drop_restating(t: str) -> str:
    """``t`` without bracketed remarks that only restate what is said outside them ("(i.e. ...)"
    says so itself)."""
    # "last 4 complete weeks (Mon-Sun, excl. current wk)": complete weeks leave the current one out
    if re.search(r"\b(?:complete|completed|full|whole|last|previous|prior)\b", t):
        t = re.sub(r",? ?\bexcl(?:\.|uding)? (?:the )?current (?:wk|week|month|quarter|year)\b", "", t)
    t = re.sub(r"\bone (year|quarter|month|week) before the current one\b", r"a \1 ago", t)
    for m in reversed(list(re.finditer(r"\(([^()]*)\)", t))):
        words = re.findall(r"[a-z]+|\d+|[-/]", m.group(1))
        outside = t[: m.start()] + t[m.end() :]
        # "(one year before the current one)" after "a year ago": a relative word said outside too
        said = _RELATIVE & set(re.findall(r"[a-z]+", outside))
        if re.search(r"\b(?:prior|previous|preceding|before)\b", outside):
            said |= {
                "before",
                "prior",
                "previous",
                "preceding",
            }  # "vs prior period (the 30 days before that)"
        only_kpi = set(words) <= _KPI_WORDS  # "(units)" may be the only place the KPI is named
        restates = (
            all(w in _RESTATING or w in said or w.isdigit() for w in words) and not only_kpi
        ) or re.match(r"\s*i\.? ?e\.?\s", m.group(1))
        if words and restates and _TIME_SAID.search(outside):
            t = (t[: m.start()] + " " + t[m.end() :]).strip()
    return t


def _dims(phrases: Iterable[str]) -> str:
    """An alternation of the dimension words, each with its plural ("regions", "states")."""
    return _dims_cached(tuple(sorted(set(phrases), key=len, reverse=True)))


@lru_cache(maxsize=8)
def _dims_cached(phrases: tuple[str, ...]) -> str:
    words = {p for p in phrases} | {p + "s" for p in phrases if not p.endswith("s")}
    words |= {p[:-1] + "ies" for p in phrases if p.endswith("y")}
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + ")"


def _from_sql(t: str, dims: str) -> str:
    """Query-speak in plain words: "units, category != Grocery", "region in ('Web','App')",
    "sum(units)", "group by channel", "order by revenue desc limit 3", "delta %"."""
    t = re.sub(r"(?<![a-z0-9])'([^']+)'(?![a-z0-9])", r"\1", t)  # quoted values
    t = re.sub(r"\s*(?:!=|<>|≠)\s*", " excluding ", t)
    t = re.sub(
        r"\b(?:is )?not in \(([^()]*)\)",
        lambda m: "excluding " + " and ".join(v.strip() for v in m.group(1).split(",")),
        t,
    )
    t = re.sub(rf"\b{dims} (?=(?:not )?in \()", "", t)  # "region in (...)": the values
    t = re.sub(
        r"\bin \(([^()]*,[^()]*)\)",
        lambda m: "in " + " and ".join(v.strip() for v in m.group(1).split(",")),
        t,
    )
    t = re.sub(r"(?<=[a-z]) ?== ?|(?<=[a-z]) ?= ?(?=[a-z])", " ", t)  # "region = Europe"
    t = re.sub(
        r"\b(sum|count|total|avg|average|mean)\(([^()]*)\)",
        lambda m: ("average " if m.group(1) in ("avg", "average", "mean") else "") + m.group(2),
        t,
    )
    # "select region with max(...)"; "select * from customers" (rows, its "*" gone with markdown) stays unread
    t = re.sub(r"^select\b(?!\s*(?:\*\s*)?from\b)", "", t)
    t = re.sub(r"\s--\s*", " ", t)  # a SQL comment: "... limit 1 -- last week"
    t = re.sub(r"\bmax\(([^()]*)\)", r"highest \1", t)
    t = re.sub(r"\bmin\(([^()]*)\)", r"lowest \1", t)
    t = re.sub(r"\b(?:year|yr) ?= ?((?:19|20)\d\d)\b", r"in \1", t)  # "year = 2025"
    t = re.sub(
        r"\b(?:month|period|date|day) ?= ?(?=last|this|yesterday|today)", "", t
    )  # "month = last month"
    t = re.sub(r"\b(?:group|order)(?:ed)? by \d\b", " ", t)  # by a column's position: the one named
    t = re.sub(r"\b(?:order(?:ed)? by )\d (desc|asc)(?:ending)?\b", r"\1", t)
    t = _sql_days(t)
    t = re.sub(r"\bgroup(?:ed)? by\b", "by", t)
    t = re.sub(r"\border(?:ed)? by ([a-z_ ]+?) (desc|asc)(?:ending)?\b", r"\1 \2", t)
    t = re.sub(r"\blimit (\d+)\b", r"top \1", t)
    t = re.sub(r"\b(?:sorted |sort )?desc\b", "descending", t)
    t = re.sub(r"\b(?:sorted |sort )?asc\b", "ascending", t)
    t = re.sub(r"\bfilter(?:ed)?(?: (?:on|by|to|where))?\b", " ", t)
    t = re.sub(r"\b(?:delta|Δ)\b", "change", t)
    return t


#: month names in German, French, Spanish, Italian and Portuguese (accents folded), except the
#: ones that are also English words or names (see "mars", "marco" below)
_MONTHS = {
    "january": ("januar", "janvier", "enero", "gennaio", "janeiro"),
    "february": ("februar", "fevrier", "febrero", "febbraio", "fevereiro"),
    "march": ("marz", "marzo"),
    "april": ("avril", "abril", "aprile"),
    "may": ("mai", "mayo", "maggio", "maio"),
    "june": ("juni", "juin", "junio", "giugno", "junho"),
    "july": ("juli", "juillet", "julio", "luglio", "julho"),
    "august": ("aout", "agosto"),
    "september": ("septembre", "septiembre", "settembre", "setembro"),
    "october": ("oktober", "octobre", "octubre", "ottobre", "outubro"),
    "november": ("novembre", "noviembre", "novembro"),
    "december": ("dezember", "decembre", "diciembre", "dicembre", "dezembro"),
}

#: words of other languages said inside an English question ("Umsatz in Europe last month", "ventas
#: del Web", "wie viele Bestellungen today"), where each can mean one thing only; accents are
#: folded before this ("facturación" is "facturacion", "für" "fur")
_FOREIGN = (
    (r"\b(?:umsatz|umsatze|ventas|vendas|facturacion|fatturato|chiffre d'affaires)\b", "revenue"),
    (r"\b(?:pedidos|bestellungen|bestellung|commandes|ordini)\b", "orders"),
    (r"\b(?:clientes|kunden)\b", "customers"),
    (r"\b(?:unidades|unites|einheiten)\b", "units"),
    (r"\bstuck\b(?= (?:sold|of|verkauft)\b)", "units"),  # Stück
    (r"\b(?:vendidas|vendidos|verkauft|vendus|vendues)\b", "sold"),
    (r"\b(?:productos|produtos|produkte|produits)\b", "products"),
    (r"\b(?:categorias|kategorien)\b", "categories"),
    (r"\b(?:in der|in den|in dem|in die)\b(?= [a-z0-9])", "in"),  # "Umsatz in der Schweiz"
    (r"\bim\b(?= [a-z0-9])", "in"),  # "im Mai 2019"
    *((rf"\b(?:{'|'.join(names)})\b", month) for month, names in _MONTHS.items()),
    (r"\b(?:mars|marco)\b(?= (?:19|20)\d\d\b)", "march"),  # a planet and a name without the year
    (r"\bmonat\b", "month"),
    (r"\bwoche\b", "week"),
    (r"\bjahr\b", "year"),
    (r"\b(?:welche|welcher|welches|cual|qual|quel|quelle)\b", "which"),
    (r"\b(?:wie viele|cuantos|cuantas|quantos|quantas|combien de)\b", "how many"),
    (r"\bcambio\b", "change"),
    (r"\b(?:totais|totales)\b", "total"),
    (r",? ?\b(?:por favor|bitte|s'il vous plait|per favore)\b,?", " "),
    (r"\bsans\b(?= [a-z])", "without"),
    (r"\bfur\b", "for"),
    (r"\b(?:de|del|da|des|du)\b(?= [a-z0-9])", "of"),
    (r"\ben\b(?= [a-z0-9])", "in"),
    (r"\b(?:le|el)\b(?= [a-z])", ""),
)


def _foreign_words(t: str, names: Iterable[str] = ()) -> str:
    # a value of the data that holds such a word keeps it: "Rio de Janeiro", "El Salvador", "Ventas Online"
    kept = [n for n in _holding_foreign(tuple(sorted(set(names)))) if n in t]
    for i, name in enumerate(sorted(kept, key=len, reverse=True)):
        t = re.sub(rf"\b{re.escape(name)}\b", f"qqkept{i}qq", t)
    for pattern, english in _FOREIGN:
        t = re.sub(pattern, english, t)
    for i, name in enumerate(sorted(kept, key=len, reverse=True)):
        t = t.replace(f"qqkept{i}qq", name)
    return re.sub(r"\s+", " ", t).strip()


@lru_cache(maxsize=8)
def _holding_foreign(names: tuple[str, ...]) -> tuple[str, ...]:
    """The values whose own words a rule of :data:`_FOREIGN` would rewrite."""
    return tuple(n for n in names if any(re.search(pattern, n) for pattern, _ in _FOREIGN))


def _sql_days(t: str) -> str:
    """ "day >= '2026-11-28' and day < '2026-12-05'": those days, the end left out as SQL says."""
    col = r"(?:day|date|order_date|ordered_at|ts|created_at)"
    iso = r"((?:19|20)\d\d-\d\d-\d\d)"

    def days(m: re.Match) -> str:
        first, last = m.group(1), m.group(3)
        if m.group(2) == "<":
            try:
                last = (datetime.fromisoformat(last) - timedelta(days=1)).date().isoformat()
            except ValueError:
                return m.group(0)
        return f"from {first} to {last}"

    t = re.sub(rf"\b{col} ?>= ?{iso} and {col} ?(<=?) ?{iso}", days, t)
    return re.sub(rf"\b{col} between {iso} and {iso}", r"from \1 to \2", t)


def plain(
    t: str, as_of: datetime, dim_words: Iterable[str] = DIMENSION_WORDS, names: Iterable[str] = ()
) -> tuple[str, str | None]:
    """``t`` (lower-case, normalised) in plain words, and a question to ask back when a date has two
    readings ("Nov-26": November 2026, or the 26th?), else None. ``dim_words`` are the words that name
    a dimension (the lexicon's: "region", "state", "market" ...); ``names`` the data's own values
    (normalised), which keep their words ("Rio de Janeiro" is not "Rio of Janeiro")."""
    dims = _dims(dim_words)
    t = _from_sql(t, dims)
    t = _drop_restating(t)
    # "Morning all - ...", "good afternoon team,": a greeting, not the morning's hours
    t = re.sub(
        r"^(?:good )?(?:morning|afternoon|evening)(?:,? (?:all|everyone|team|folks|guys|there))?\s*(?:[-,!:;.]+\s*|\s+-\s*)",
        "",
        t,
    )
    t = re.sub(r"\bquick (?:one|q|question)\b", " ", t)  # "hey, quick one: ..."
    # "the most recent full month", "the latest complete week": the last whole one
    t = re.sub(
        r"\b(?:the )?(?:most recent|latest|last|previous) (?:full|complete|completed|whole|closed) "
        r"(week|month|quarter|year)\b",
        r"last \1",
        t,
    )
    t = re.sub(r"\bw/o\b", "without", t)  # "revenue mtd w/o marketplace"
    t = re.sub(r"\bw/(?= )", "with", t)  # "3 categories w/ the highest return rate"
    t = re.sub(r"\s*(?:→|->|=>)\s*", " to ", t)  # "October → November"
    t = re.sub(r"\b(?:thx|thanks|thank you|ty|cheers|tia)\b", " ", t)
    t = re.sub(r"\bprev\b", "previous", t)
    # dictation: spoken punctuation, "last mouth", "a OV", "the passed week", "revenue buy channel"
    t = re.sub(r"\s*\b(?:question mark|comma|full stop|exclamation (?:mark|point))\b\s*", " ", t)
    t = re.sub(
        r"(?<!same )(?<!the )(?<!that )(?<!this )(?<!a )(?<!prior )(?<!previous )\bperiod\s*[?.!]*\s*$", "", t
    )
    t = re.sub(r"\b(last|this|next|the|per|a|by|each) mouth\b", r"\1 month", t)
    t = re.sub(r"\ba ov\b", "aov", t)
    t = re.sub(r"\b(?:the )?passed (week|month|quarter|year)\b", r"last \1", t)
    t = re.sub(rf"\bbuy (?=(?:{dims}|day|week|month|quarter|year)\b)", "by ", t)
    t = re.sub(r"\bthru\b|\bup to and including\b", "through", t)
    t = re.sub(r"\b([a-z]+)[- ]wise\b", r"\1", t)  # "what did Europe bring in revenue-wise"
    # words that only say how sure or how exact: "what was it really", "the actual figure, not a
    # rounded one", "genuinely new customers", "as everyone assumes", "to double-check the deck"
    t = re.sub(
        r",? ?\b(?:not a rounded (?:one|figure|number)|(?:as|like) (?:everyone|everybody|we all|people) (?:assumes?|thinks?|says?)"
        r"|as i was told|i was told|just to double[- ]check(?: the (?:deck|numbers|slides|board pack))?|double[- ]check(?:ing)?"
        r"|the actual (?:figure|number)|(?:whilst|while) i (?:organi[sz]e|prepare|finish|update) the (?:board pack|deck|slides|report))\b",
        " ",
        t,
    )
    t = re.sub(r"\b(?:actually|really|genuinely|truly|honestly|exactly|precisely)\b", " ", t)
    t = re.sub(
        r"\b(?:for|in) the (?:deck|board pack|slides|board meeting|board)\b", " ", t
    )  # "quick one for the deck"
    t = re.sub(
        r"[.,;-]?\s*\b(?:i )?(?:need|want) (?:the|this|a) (?:number|figure) for (?:my|our|the) (?:board |exec )?"
        r"(?:slides?|deck|report|meeting|update)\b\.?",
        " ",
        t,
    )
    t = re.sub(r",? side by side\b", " ", t)
    t = re.sub(r"(?<=\s)v\.?(?=\s)", "vs", t)  # "November v. October"
    # "how much revenue did we book", "we booked": taken (not the Books category)
    t = re.sub(r"\b(did|do|does|we|you|they|to|have|has) book\b", r"\1 take", t)
    t = re.sub(r"\b(?:kindly )?revert(?: back)? with\b", "give", t)  # "kindly revert with the turnover"
    t = re.sub(r",? (?:ta|cheers)\s*[.!]?\s*$", "", t)  # British thanks at the end
    t = re.sub(r"\bthe (week|month|quarter|year) gone\b", r"last \1", t)  # "the month gone"
    t = re.sub(r"\bhow (?:are|is) (?:we|it|things) tracking(?: on| for| with)?\b", "what is", t)
    t = re.sub(r"\bhow did (.+?) fare\b", r"how did \1 do", t)
    t = re.sub(r"\bfare\b(?= (?:in|on|over|during|last|this|for|vs|versus|against|compared))", "do", t)
    # "what did Electronics turn over": its turnover (revenue)
    t = re.sub(r"\bturn(?:ed)? over\b", "bring in", t)
    t = re.sub(
        r"\bwhat (did|does|do|has|have) (.+?) (?:taken?|took)\b(?! (?:in|out|off|back|up|place)\b)",
        r"what \1 \2 take in",
        t,
    )
    t = re.sub(r"\bshift(?:s|ed)? the most\b", "sold the most", t)  # retail's "which channel shifts the most"
    if re.search(r"\b(?:all|every|any)\b.*\bbar\b", t):  # "all regions bar Europe"
        t = re.sub(r"\bbar\b(?= (?:the )?[a-z])", "except", t)
    t = re.sub(r"\bstrip(?:ping)? out\b|\btake out\b|\bleav(?:e|ing) out\b", "excluding", t)
    t = re.sub(r"\bleaving (?=.+\baside\b)", "", t)  # "leaving North America aside"
    t = re.sub(r"\bif (?:you|we) (?:exclude|remove|ignore|excluding)\b", "excluding", t)
    t = re.sub(r"\b(?:gone|went) out (?:of )?the door\b", "sold", t)  # "units gone out the door"
    t = re.sub(r"\bcopies\b(?= (?:sold|of|did|were|have|we))|\bcopies$", "units", t)  # books: copies sold
    # "which was bigger, Books or Grocery": the larger of the values named
    t = re.sub(
        r"\bwhich (?:was|is|were|are|one was|one is) (?:the )?(?:bigger|larger|higher|greater)\b",
        "which had the highest",
        t,
    )
    t = re.sub(
        r"\bwhich (?:was|is|were|are|one was|one is) (?:the )?(?:smaller|lower)\b", "which had the lowest", t
    )
    t = re.sub(r"\b(?:ahead of|behind)\b(?= (?:the )?(?:previous|prior|last|same|\d|[a-z]+ \d))", "vs", t)
    t = re.sub(
        r"\b(?:getting|got|get|gotten) (?:worse|better)\b|\bimprove[ds]?\b|\bgo(?:ne)? up or (?:not|down)\b",
        "change",
        t,
    )
    t = re.sub(  # "did Q3 2026 beat Q2 2026" (two slices, "did the web beat the app", stay unread)
        r"\bdid (.+?) beat (?=(?:q[1-4]|h[12]|\d|last|previous|prior|the (?:previous|prior|same|week|month|quarter|year)|"
        + _MON
        + r"))",
        r"\1 vs ",
        t,
    )
    t = re.sub(r"\b(?:add|added|adding) (?=(?:more |fewer |less )?(?:new|first[- ]time)\b)", "get ", t)
    # "customers who placed an order": the customers, not the Orders KPI
    t = re.sub(
        r"\b(customers?|shoppers?|buyers?|clients?)(?: who| that)? (?:placed|made|put in) (?:an |a |any |at least one )?(?:orders?|purchases?)\b",
        r"\1",
        t,
    )
    t = re.sub(r"\bdid we sell any\b", "how many units of", t)
    # customers acquired: "how many customers did we acquire / win / add", "newly acquired customers"
    t = re.sub(
        r"\bnewly (?:acquired |won |signed(?: up)? )?(?=(?:customers?|clients?|buyers?|shoppers?)\b)",
        "new ",
        t,
    )
    t = re.sub(
        r"\bhow many (customers?|clients?|buyers?|shoppers?) (?:did|have|has) (?:we|you|they|[a-z &]+?) "
        r"(?:acquire|acquired|win|won|gain|gained|add|added|get|got|sign up|signed up|pick up|picked up|bring in|brought in)\b",
        r"how many new \1",
        t,
    )
    t = re.sub(
        r"\b(new (?:customers?|clients?|buyers?|shoppers?) (?:did|has|have) [a-z &]+?) (?:add|added|win|won|gain|gained)\b",
        r"\1 get",
        t,
    )
    t = re.sub(  # "how many people bought from us": customers
        r"\bhow many (?:different |unique |distinct )?(?:people|persons|individuals)(?= (?:bought|ordered|purchased|shopped|made|placed|have|did|who))",
        "how many customers",
        t,
    )
    t = re.sub(
        rf"\b(most|least) active (?={dims}\b)",
        lambda m: "highest " if m.group(1) == "most" else "lowest ",
        t,
    )
    t = re.sub(r"\b(customers|clients|shoppers|buyers) active\b", r"active \1", t)  # "clients active in ..."
    # "what did Web shoppers in Europe spend with us": their revenue
    t = re.sub(
        r"\bwhat (did|do|does|have|has) ((?:[a-z&]+ ){0,4}?(?:customers?|shoppers?|buyers?|clients?)(?: [a-z&]+){0,3}?) spen[dt](?: with us)?\b",
        r"how much revenue \1 \2 bring",
        t,
    )
    t = re.sub(r",? i\.? ?e\.?,? ", " ", t)  # "last month, i.e. net revenue"
    # everything but / anywhere except / neither A nor B / all channels but X
    t = re.sub(
        r"\b(?:anywhere|everywhere|every ?where)(?: else)? (?:but|except|other than|apart from|outside(?: of)?)\b",
        "excluding",
        t,
    )
    t = re.sub(
        rf"\b((?:all|every) (?:the )?{dims}) (?:but|bar|save)\b",
        r"\1 except",
        t,
    )
    t = re.sub(
        r"\b(?:everything |anything )?(?:that'?s |that is |which is )?neither (.+?) nor\b",
        r"excluding \1 and",
        t,
    )
    t = re.sub(r"\bsequentially\b", "vs the period before", t)
    t = re.sub(
        r"\bthe (?:previous|prior|preceding) fortnight\b|\bthe fortnight (?:before|prior to|preceding)(?: that| it| then)?\b",
        "the previous 14 days",
        t,
    )  # finance: against the period just before
    t = re.sub(r"\bwhere did (.+?) land\b", r"what was \1", t)

    t = _foreign_words(t, names)
    # second-language English: "since the begin of the year", "the actual month", "the same month
    # of the last year", "the quantity of orders", "with more revenue", "how much varied"
    t = re.sub(r"\bthe begin(?:ning)? of\b", "the start of", t)
    t = re.sub(r"\bsince begin(?:ning)? of\b", "since the start of", t)  # "since begin of year"
    # "Of our five regions, which ...": which of them (not a top 5); "put them in order of revenue"
    t = re.sub(
        rf"^of (?:our|the|all(?: the| our)?)(?: (?:\d+|two|three|four|five|six|seven|eight|nine|ten|all))? ({dims}),? (which|what)\b",
        lambda m: (
            f"{m.group(2)} {re.sub(r'ies$', 'y', m.group(1)) if m.group(1).endswith('ies') else m.group(1).rstrip('s')}"
        ),
        t,
    )
    t = re.sub(r"\bput (?:them|these|those|the [a-z ]+?) in order of\b", "rank them by", t)
    # "the AOV for orders placed in the app": the orders only say what AOV is over
    t = re.sub(
        r"\b(aov|average order value) (?:for|of|on|across) (?:the |all )?orders(?: (?:placed|made|taken))?\b",
        r"\1",
        t,
    )
    t = re.sub(r"^(?:please )?say me\b", "tell me", t)  # "say me the top 3 categories"
    t = re.sub(r"\bmargin gross\b", "gross margin", t)
    t = re.sub(r"\b(customers|clients) new\b", r"new \1", t)  # "how many customers new we got"
    t = re.sub(r"\baverage value (?:of|per) (?:the |an? |each )?orders?\b", "average order value", t)
    # "which channel had less orders", "the 2 categories that sold the less units": the fewest
    if not re.search(r"\bthan\b", t):
        t = re.sub(
            r"\b(had|has|have|sold|sells|got|made|brought in|brought|with) (?:the )?less\b(?= (?:[a-z&]+ ){0,2}?"
            r"(?:revenue|orders|units|sales|customers|clients|turnover)\b)",
            r"\1 the fewest",
            t,
        )
    t = re.sub(r"\bhow (?:has |have |did )?(?:evolved|evolve|evolves)\b", "how did change", t)
    # "against the complete last month": the last whole one, as "last month" is
    t = re.sub(
        r"\bthe (?:complete|full|whole|entire) (?:last|previous|prior) (week|month|quarter|year)\b",
        r"last \1",
        t,
    )
    t = re.sub(
        r"\bfrom the (best|worst) one\b", r"\1 first", t
    )  # "the 3 regions with best margin, from the best one"
    t = re.sub(
        r"\bfrom the (highest|biggest|largest|lowest|smallest) one\b",
        lambda m: "descending" if m.group(1) in ("highest", "biggest", "largest") else "ascending",
        t,
    )
    t = re.sub(r",? but (?=(?:without|excluding|except|not)\b)", " ", t)  # "highest first, but without X"
    t = re.sub(r",? i mean\b", " ", t)  # "in money I mean"
    # "yesterday against the same weekday of the week before": the same day last week
    t = re.sub(
        r"\bthe same (?:week)?day (?:of|in) the (?:week before|previous week|last week|prior week|week prior)\b",
        "the same day last week",
        t,
    )
    t = re.sub(r"\bthe actual (day|week|month|quarter|year)\b", r"this \1", t)
    t = re.sub(r"\bin the actual\b", "this", t)
    t = re.sub(
        r"\b(same (?:day|week|month|quarter|period)) of the (last|previous|prior) (week|month|year)\b",
        r"\1 \2 \3",
        t,
    )
    t = re.sub(
        r"\b(?:quantity|amount) of (orders|customers|clients|new customers|new clients)\b", r"number of \1", t
    )
    t = re.sub(
        r"\bwith (?:more|most) (?=(?:[a-z&]+ ){0,2}?(?:revenue|orders|units|billing|facturation|sales|customers|clients|margin|turnover)\b)",
        "with the most ",
        t,
    )
    t = re.sub(
        r"\bwith (?:less|fewer) (?=(?:[a-z&]+ ){0,2}?(?:revenue|orders|units|billing|facturation|sales|customers|clients|margin|turnover)\b)",
        "with the fewest ",
        t,
    )
    t = re.sub(r"\b(?:had|have|did) we (more|most)\b", "had the most", t)
    t = re.sub(r"\bhow much (?:varied|varies|vary|variated)\b", "how much changed", t)
    t = re.sub(
        rf"^(?:please )?(?:order|sort|rank)(?: me| for me)? (?:the |our |all )?({dims}) (?:per|by)\b",
        r"rank the \1 by",
        t,
    )
    # "revenue by month, biggest month first": the list largest first ("worst first" is the parser's:
    # the worst return rate is the highest)
    t = re.sub(rf"\b(best|worst)(?: (?:days?|weeks?|months?|{dims}))? first\b(?![- ]?time)", r"\1 first", t)
    t = re.sub(
        rf"\b(biggest|largest|highest|most|smallest|lowest|least)(?: (?:days?|weeks?|months?|{dims}))? first\b(?![- ]?time)",
        lambda m: "ascending" if m.group(1) in ("smallest", "lowest", "least") else "descending",
        t,
    )
    if re.search(
        r"\b(?:vs|versus|compare[ds]?|than|wow|mom|qoq|yoy|over (?:the )?(?:week|month|quarter|year)|on a)\b",
        t,
    ):
        t = re.sub(
            r"\b(?:is|are) (.+?) (?:growing|shrinking|declining)\b", r"\1 change", t
        )  # "are web orders growing wow"
        t = re.sub(
            r"\b(?:gone|went|go|going) (?:up|down)\b", "changed", t
        )  # "has the return rate gone up vs ..."
    if re.match(
        r"(?:which|what)\b", t
    ):  # "which category ... - is it Apparel, as we think?": a guess, not a filter
        t = re.sub(
            r"\s*[-,;?]+\s*(?:is|was) it (?:the )?[^?]*\??\s*$", "", t
        )  # "did we sell any Yoga Mats yesterday"
    t = re.sub(r"\bsell[- ]?through in units\b", "units", t)  # units sold; a sell-through rate is not kept
    # "which 2 categories ran the highest return rate": had
    t = re.sub(
        r"\b(?:ran|runs|posted|recorded|delivered|drove|drives|drive|gives us|give us|gave us|pulled in|pulls in|pull in|racked up|raked in)(?= (?:the )?(?:highest|lowest|most|least|best|worst|top|biggest|smallest)\b)",
        "had",
        t,
    )
    # "order / sort the categories from highest to lowest return rate": a ranking, not the Orders KPI
    t = re.sub(
        rf"\b(?:order|sort|rank)(?:ed)? (?:the |our |all )?({dims}|days|weeks|months)"
        r" (?:from )?(highest|largest|biggest|best|most|lowest|smallest|worst|least) (?:to|through) \w+\b",
        lambda m: (
            f"rank the {m.group(1)} by "
            + ("" if m.group(2) in ("highest", "largest", "biggest", "best", "most") else "ascending ")
        ),
        t,
    )
    t = re.sub(r"\bcalendar (?=(?:19|20)\d\d\b|q[1-4]\b|h[12]\b)", "", t)  # "calendar 2025", "calendar Q2"
    t = re.sub(r"\bnew[- ]to[- ]file\b", "new", t)  # retail's "new-to-file customers"
    t = re.sub(r"\bup to and including\b", "to", t)
    # "to today inclusive": today is the end, the rest says it is in; "(today included)" alone says nothing
    t = re.sub(
        r"\b(to|through|thru|until|till|and) today,? \(?(?:included|including|inclusive|counted|counts)\b\)?",
        r"\1 today",
        t,
    )
    t = re.sub(r",? ?\(?\btoday (?:included|including|inclusive|counted|counts)\)?", "", t)
    # an end day said again: "from the 1st to the 15th, inclusive of the 15th", "1-14 Sep 2026 vs 1-14 Sep
    # 2025, both ranges inclusive of the 14th", "(both the 3rd and the 9th included)"; ranges here
    # include their last day anyway
    day = r"(?:the )?\d{1,2}(?:st|nd|rd|th)?"
    t = re.sub(
        rf",? ?\(?\b(?:both (?:ranges|periods|dates|days|ends) )?(?:inclusive of|including|incl\.?) {day}"
        rf"(?: and {day})?\)?(?= *(?:[,.;:?!)]|$))",
        "",
        t,
    )
    t = re.sub(rf",? ?\(?\bboth {day} and {day} (?:included|inclusive)\)?", "", t)
    t = re.sub(r",? ?\(?\bboth end (?:dates|days)(?: are)? (?:included|inclusive)\)?", "", t)
    # "year to date, up to and including today": to date says it
    t = re.sub(
        r"\b(ytd|mtd|qtd|wtd|(?:year|month|quarter|week) to date|so far),? (?:up to and including|through|to|until|till) today\b",
        r"\1",
        t,
    )
    # "November 2026, whole calendar month from the 1st to the last day": the month said again
    if re.search(rf"\b(?:{_MON}|month)\b", t):
        t = re.sub(
            r",? ?\(?\b(?:(?:the )?(?:whole |full |entire |complete )?(?:calendar )?month,? )?(?:from )?(?:the )?(?:1st|first) "
            r"(?:to|through|thru|until|till|-) (?:the )?last(?: day)?(?: of (?:the|that) month)?\)?",
            "",
            t,
        )
    t = re.sub(
        r",? ?\(?\b(?:our|the) first (?:full )?(?:day|week|month|year) of data\)?(?= *[,.;:?!)]|$| \d)", "", t
    )
    # "as of now": now is when the question is asked anyway ("as of today" is read as today)
    t = re.sub(r",? ?\bas (?:of|at) (?:right )?(?:now|this moment)\b", " ", t)
    # "For the audit file: ...": who it is for, not a condition
    t = re.sub(
        r"^(?:for|re|regarding) (?:the |my |our |an? )?(?:audit|audit file|file|report|deck|memo|meeting|board|slides|review"
        r"|reconciliation|ledger|minutes|working papers?|records?)\s*[:,-]\s*",
        "",
        t,
    )
    t = re.sub(r"\b(?:with )?returns netted(?: off| out)?\b", "net of returns", t)  # "returns netted off"
    # "- I want to verify the figure I was given": why it is asked
    t = re.sub(
        r"\s*[-,;.]?\s*\bi (?:want|need|would like|wish|am trying|'m trying) to (?:verify|check|confirm|reconcile|validate|double[- ]check)"
        r" (?:the |a |this |that |our )?(?:figure|number|value|total|amount)s?"
        r"(?: (?:i|we) (?:was|were|got|have|had|'ve) (?:been )?(?:given|sent|told|shown|quoted))?\b",
        " ",
        t,
    )
    # "total co.", "company-wide": the whole business, as a total is anyway
    t = re.sub(r"\b(?:total )?(?:co\.|company)(?:[- ]wide)?(?= |$|[,?.!)])", " ", t)
    # "on a rolling 90 days basis", "rolling 12 months": the last N of them
    t = re.sub(
        r"\b(?:on )?(?:a |the )?rolling (\d+|[a-z]+)[- ](days?|weeks?|months?)(?: basis)?\b",
        lambda m: f"the last {m.group(1)} {m.group(2) if m.group(2).endswith('s') else m.group(2) + 's'}",
        t,
    )
    # "break down orders by channel", "give me a breakdown of orders by channel": orders by channel
    t = re.sub(r"\b(?:break(?:ing)? down|a breakdown of|breakdown of|split out|split up)\b", " ", t)
    # "which region led on revenue", "who came out on top in orders": the highest
    t = re.sub(
        r"\b(?:led|leads|was leading|came out on top|comes out on top|topped the table|comes out ahead|came out ahead)"
        r"(?: (?:on|in|for|by))?\b",
        "had the highest",
        t,
    )
    # words that are filler only where they are said so: "could you check" (not "paid by check"),
    # "the single best day" (not "orders of a single item"), "the full year" (not "paid in full"),
    # "which day gave us" (not "orders that gave a discount")
    t = re.sub(
        r"^(?:please |kindly )?(?:check|pull|fetch|grab)\b|\b(?:can|could|would) you (?:please )?(?:check|pull(?: up)?|fetch|grab)\b",
        " ",
        t,
    )
    t = re.sub(r"\bsingle (?=(?:best|top|worst|biggest|highest|lowest|most|least|day|week|month)\b)", "", t)
    t = re.sub(
        r"\b(?:full |whole |entire )?(?:full|calendar) (?=(?:year|yr|month|quarter|qtr|week)\b)", "", t
    )
    t = re.sub(r"\bgave us\b", " ", t)
    t = re.sub(
        r"(?<!fiscal )\b(?:the )?year (?=(?:19|20)\d\d\b)", "", t
    )  # "the year 2025": 2025 (not a ranking of years)
    t = re.sub(r"\byou know\b", " ", t)  # spoken filler
    t = re.sub(r"\bin (?:thousands|millions|billions)\b", " ", t)  # a display unit: the number is the same
    t = re.sub(r"\bnot (?:placed|made|sold|bought|ordered|shipped) (through|via|on|in|from)\b", r"not \1", t)
    # English as a second language: "the precedent week", "the month passed", "the year in course",
    # "until today", "kindly share the ...", "percentual change", "both days included"
    t = re.sub(r"\b(?:the )?precedent\b", "last", t)
    t = re.sub(r"\bthe (week|month|quarter|year) passed\b", r"last \1", t)
    t = re.sub(r"\b(?:the )?(week|month|quarter|year) in course\b", r"this \1 so far", t)
    if re.search(r"\bsince\b", t):  # "since 1 Nov until now": since says it
        t = re.sub(r"\b(?:until|till|up to|up till) (?:today|now)\b", "", t)
    elif re.search(r"\b(?:from|between)\b", t):  # "from 1 Nov until now": to today
        t = re.sub(r"\b(until|till|up to|up till) now\b", r"\1 today", t)
    else:
        t = re.sub(r"\b(?:until|till|up to|up till) (?:today|now)\b", "so far", t)
    t = re.sub(r"\bdo the needful\b", " ", t)
    t = re.sub(r"\bhow many (?:%|percent)", "what percent", t)
    t = re.sub(r",? ?\(?\b(?:both (?:days |dates |ends )?(?:included|inclusive)|inclusive)\b\)?", "", t)
    # "the week just gone", "the quarter just ended": the last whole one
    t = re.sub(
        r"\bthe (week|month|quarter|year) just (?:gone|ended|finished|closed|completed)\b", r"last \1", t
    )
    t = re.sub(r"\b(?:as a whole|in full)\b", " ", t)  # "2025 in full", "last quarter as a whole"
    t = re.sub(r"\bweek commencing\b|\bw/c\b", "week starting", t)
    # "the week commencing Monday 16 November": the weekday says nothing more
    t = re.sub(r"\b(week (?:starting|beginning)) (?:on )?(?:monday|mon),? ", r"\1 ", t)
    t = re.sub(r"\b(weekend),? \(?(?:saturday|sat)(?: and| &| to| -|-) ?(?:sunday|sun)\)?", r"\1", t)
    # "which region gained the most new customers": acquired them, not a change between periods
    t = re.sub(
        r"\b(?:gained|gain|won|win|acquired|added)\b(?= (?:the )?(?:most |fewest |least )?(?:new|first[- ]time)\b)",
        "had",
        t,
    )
    t = re.sub(r",? i (?:want|need|would like|wish) to \w+(?: (?:it|them|this|that))?\b", "", t)
    t = re.sub(
        r"\bevolution\b", "change" if re.search(r"\b(?:vs|versus|against|compared|than)\b", t) else "trend", t
    )
    t = re.sub(r"\bhows\b", "how is", t)
    t = re.sub(r"\bpercent(?:age)?[- ]?wise\b", "percent", t)
    t = re.sub(r"\b(?:% )?chg\b", "change", t)  # "% chg"
    t = re.sub(r"\b(?:uplift|(?:% )?swing)\b", "change", t)  # "the uplift in web orders wow", "the % swing"
    t = re.sub(r"\bgrow(?:n)? (?:the|our) (?:customer |client )?base\b", "grow", t)
    t = re.sub(r"\s*[-,;]\s*who'?s carrying (?:us|the business|the team|the quarter)\s*\??\s*$", "", t)
    t = re.sub(r"\b% diff\b|\bdiff\b", "change", t)  # "% diff" of two periods
    t = re.sub(r"\bcusts?\b", "customers", t)  # "active custs"
    t = re.sub(r",? including today\b", "", t)  # "the last 7 days, including today": as the last 7 days are
    if re.search(r"\b(?:customers?|shoppers?|buyers?|clients?)\b", t):  # "new customers we picked up"
        t = re.sub(r"\b(?:picked|picking|pick|signed|signing|sign) up\b", "", t)
    t = re.sub(r"\bsent back\b", "returned", t)  # "orders sent back to us"
    if re.search(r"\bnew customers?\b|\bfirst[- ]time\b", t):  # "new customers who placed their first order"
        t = re.sub(r"\b(?:placed|made) (?:their|a) first (?:order|purchase)\b", "", t)
    # "the same day one week earlier", "one year ago": a
    t = re.sub(r"\bone (day|week|month|quarter|year) (earlier|before|ago|prior)\b", r"a \1 \2", t)
    # "last quarter vs the one before it"
    t = re.sub(r"\bthe one before(?: it| that)?\b", "the period before", t)
    # "the 7 days before that": the 7 days before the period just named
    t = re.sub(
        r"\bthe (\d+|[a-z]+) ((?:full |complete |whole )?)(days|weeks|wks|(?<=full )months|(?<=complete )months) (?:immediately |just )?(?:before|prior to|preceding|prior(?= *(?:[,?.!;)]|$)))"
        r"(?: that| it| those| them| then)?\b(?! (?:yesterday|today|last|this))",
        r"the previous \1 \2\3",
        t,
    )
    t = re.sub(rf"\b(\d{{1,2}})-({_MON})-((?:19|20)\d\d)\b", r"\1 \2 \3", t)  # "02-Dec-2026"
    t = re.sub(rf"\b({_MON})-((?:19|20)\d\d)\b", r"\1 \2", t)  # "December-2025"
    t = re.sub(
        r"\b((?:19|20)\d\d)/(\d{1,2})/(\d{1,2})\b", r"\1-\2-\3", t
    )  # "2026/12/02": year first is ISO order
    t = re.sub(r"\b((?:19|20)\d\d)-(\d)(?=-)", r"\1-0\2", t)
    t = re.sub(r"\b((?:19|20)\d\d-\d\d)-(\d)\b", r"\1-0\2", t)
    t = re.sub(r"\b(q[1-4]|h[12]) ?'(\d\d)\b", r"\1 20\2", t)  # "Q3'26"
    # "Nov-26": a spreadsheet's November 2026, or the 26th? Asked back ("Nov-98" can only be a year)
    m_yy = re.search(rf"\b({_MON})-(\d\d)\b", t)
    if m_yy:
        month = MONTHS[m_yy.group(1)]
        yy = int(m_yy.group(2))
        year = f"{20 if yy <= as_of.year % 100 + 1 else 19}{yy:02d}"
        if yy > 31:
            t = t.replace(m_yy.group(0), f"{m_yy.group(1)} {year}")
        else:
            return t, (
                f"'{m_yy.group(0)}' could be {calendar.month_name[month]} {year} or {yy} "
                f"{calendar.month_name[month]}; write e.g. '{calendar.month_name[month]} {year}'."
            )
    # "10/2026", "10-2026": a month and its year
    t = re.sub(
        r"(?<![\d/.-])(0?[1-9]|1[0-2])[/-]((?:19|20)\d\d)(?![\d/.-])",
        lambda m: f"{calendar.month_name[int(m.group(1))].lower()} {m.group(2)}",
        t,
    )
    # "the 30 Nov week": the week of that day
    t = re.sub(
        rf"\b(?:the )?((?:{_DAYNUM}) (?:{_MON})|(?:{_MON}) (?:{_DAYNUM})) week\b",
        r"week of \1",
        t,
    )
    # "how much did customers in EMEA spend (with us)": their revenue ("how much did we spend" is not
    # a KPI, and stays unknown)
    t = re.sub(
        r"\bhow much (?:money )?(did|do|does|have|has) (?!we\b|i\b|you\b|the company\b|our company\b)"
        r"(?:(?:our|the) )?(?:customers?|shoppers?|buyers?|clients?|people)?(?: (?:in|from))? ?(.*?) spen[dt]"
        r"(?: (?:with|at) us)?\b",
        r"how much revenue \1 \2 bring",
        t,
    )
    # "Oct '26", "Q3 '25": a year in two digits (the next year at most; older ones in the 1900s)
    t = re.sub(
        r"(?<![a-z0-9])'(\d\d)\b",
        lambda m: f"{20 if int(m.group(1)) <= as_of.year % 100 + 1 else 19}{m.group(1)}",
        t,
    )
    t = re.sub(r"(?<=[a-z]) \+ (?=[a-z])", " and ", t)  # "Electronics + Books": both ("C+ Serum" is a name)
    t = _holiday_spans(_dated_restatements(t), as_of)
    # "from September 2026 through (the end of) last month": that month by name, a span of months
    last = (as_of.replace(day=1) - timedelta(days=1)).strftime("%B %Y").lower()
    t = re.sub(
        rf"\b((?:from|between) (?:{_MON})(?: (?:19|20)\d\d)? (?:through|thru|to|until|till|and)) (?:(?:the )?end of )?"
        r"(?:last|the previous|the prior|previous|prior) month\b",
        rf"\1 {last}",
        t,
    )
    return _orders_and_spans(_which_one(_presentation(t), dims)), None


_NUM_WORD = r"(?:one|two|three|four|\d)"
_DATE = rf"(\d{{1,2}})(?:st|nd|rd|th)? ({_MON}) ((?:19|20)\d\d)"


def _date(day: str, month: str, year: str) -> datetime | None:
    try:
        return datetime(int(year), MONTHS[month], int(day))
    except ValueError:
        return None


def _holiday_spans(t: str, as_of: datetime) -> str:
    """Named days as the dates they fall on, where they make a span: "BFCM 2026" (Black Friday to
    Cyber Monday), "from Black Friday to Cyber Monday 2025" (not "how did revenue change from Black
    Friday to Cyber Monday": one day against the other), "Cyber Monday 1 Dec 2025" (said twice).
    Without a year, the latest that has begun."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)

    def latest(name: str, year: str | None) -> int:
        if year:
            return int(year)
        return today.year if holiday(name, today.year) <= today else today.year - 1

    def bfcm(m: re.Match) -> str:
        year = latest("black friday", m.group(1))
        return f"from {holiday('black friday', year):%d %B %Y} to {holiday('cyber monday', year):%d %B %Y}".lower()

    t = re.sub(
        r"\b(?:over |across |during )?(?:the )?bfcm(?: stretch| weekend| period| week)?(?: ((?:19|20)\d\d))?\b",
        bfcm,
        t,
    )

    def said_twice(m: re.Match) -> str:
        years = re.findall(r"\b(?:19|20)\d\d\b", t)
        year = m.group(4) or (years[0] if len(set(years)) == 1 else None)
        if year is None:
            return m.group(0)
        day = holiday(m.group(1), int(year))
        if (day.day, day.month) != (int(m.group(2)), MONTHS[m.group(3)]):
            return m.group(0)
        return f"{m.group(2)} {m.group(3)} {year}"

    t = re.sub(rf"\b({_HOLIDAY}),? (\d{{1,2}}) ({_MON})(?: ((?:19|20)\d\d))?\b", said_twice, t)
    if re.search(
        r"\b(?:chang\w*|grow\w*|grew|increas\w*|decreas\w*|mov\w*|compar\w*|vs|versus|against|differ\w*|ris\w*|"
        r"rose|fell|fall\w*|drop\w*|jump\w*|went|gone|evolv\w*|swing|uplift|delta)\b",
        t,
    ):
        return t

    def span(m: re.Match) -> str:
        first, y1, second, y2 = m.group(2), m.group(3), m.group(5), m.group(6)
        year = latest(first, y1 or y2)
        a = holiday(first, year)
        b = holiday(second, int(y2) if y2 else year)
        if b < a and not y2:
            b = holiday(second, year + 1)  # "from Christmas Eve to New Year's Day"
        if b < a:
            return m.group(0)
        return f"{m.group(1)} {a:%d %B %Y} {m.group(4)} {b:%d %B %Y}".lower()

    return re.sub(
        rf"\b(from|between) (?:the )?({_HOLIDAY})(?: ((?:19|20)\d\d))? (to|through|thru|until|till|and) (?:the )?"
        rf"({_HOLIDAY})(?: ((?:19|20)\d\d))?\b",
        span,
        t,
    )


def _weekday_before_day(t: str) -> str:
    """ "Mon 9 to Sun 15 February", "Thu 26 - Mon 30 Nov": a weekday before a day number in a range
    says nothing more (a weekday before a whole date is read, and checked, elsewhere)."""
    wd = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)"
    day = r"\d{1,2}(?:st|nd|rd|th)?"
    return re.sub(
        rf"\b{wd},? ({day}) ?(to|through|thru|until|till|-|and) ?{wd},? ({day}) ({_MON})\b",
        r"\1 \2 \3 \4",
        t,
    )


def _dated_restatements(t: str) -> str:
    """A period said by the date it starts on: "the full quarter starting 01 Jul 2026" (Q3 2026),
    "the month beginning 1 Nov 2026", "Monday 30 Nov 2026 through the following Sunday" (that week),
    and "01 Dec 2026 up to and including today" (from that day). A start that is not the first day of
    its quarter or month (or not a Monday) is left as said, for the parser to read or refuse."""

    def starting(m: re.Match) -> str:
        d = _date(m.group(2), m.group(3), m.group(4))
        if d is None or d.day != 1 or (m.group(1) == "quarter" and d.month % 3 != 1):
            return m.group(0)
        if m.group(1) == "quarter":
            return f"q{(d.month - 1) // 3 + 1} {d.year}"
        return f"{calendar.month_name[d.month].lower()} {d.year}"

    t = re.sub(
        rf"\b(?:the )?(?:full |whole |entire |complete )?(month|quarter) (?:starting|beginning|commencing) (?:on )?{_DATE}",
        starting,
        t,
    )

    def week(m: re.Match) -> str:
        d = _date(m.group(1), m.group(2), m.group(3))
        if d is None or d.weekday() != 0:
            return m.group(0)
        return f"the week of {m.group(1)} {m.group(2)} {m.group(3)}"

    t = re.sub(
        rf"\b(?:mon(?:day)?,? )?{_DATE} (?:through|to|until|till|-) (?:the )?(?:following|next) sun(?:day)?\b",
        week,
        t,
    )
    t = _weekday_before_day(t)
    # "the weekend of 14-15 November 2026": those two days
    t = re.sub(rf"\b(?:the )?weekend of (\d{{1,2}} ?(?:-|to|and) ?\d{{1,2}} (?:{_MON}))", r"\1", t)
    t = re.sub(r"\bthe golden quarter\b|\bgolden quarter\b", "q4", t)  # UK retail's October to December
    return re.sub(
        rf"(?<!from )(?<!between )(?<!since )\b({_DATE}|(?:19|20)\d\d-\d\d-\d\d) (through|to|until|till) (today|yesterday)\b",
        r"from \1 \5 \6",
        t,
    )


def _presentation(t: str) -> str:
    """``t`` without how the answer should look, which does not change the number: "to 2 decimal
    places", "rounded to the nearest million", "in $k", "as a table", "a bar chart would be great",
    "just the number, no commentary", "with comma separators"."""
    t = re.sub(
        rf",? ?\b(?:to |with |at )?{_NUM_WORD} ?(?:decimal places?|decimals?|dp|d\.p\.)(?= |$|[.,?!])", " ", t
    )
    t = re.sub(
        r",? ?\brounded(?: off| up| down)?(?: to (?:the nearest |a |the |one |an? )?(?:\$ ?)?(?:\d+ ?[km]?|dollar|cent|"
        r"thousand|million|billion|hundred|whole number|integer|percent(?:age point)?))?\b",
        " ",
        t,
    )
    t = re.sub(r",? ?\bin \$ ?[km]\b(?: please)?|,? ?\bin k\b", " ", t)
    t = re.sub(r",? ?\b(?:just|only) (?:a|the) (?:number|figure|value)(?: please)?\b", " ", t)
    t = re.sub(r"[,.;-]? ?\b(?:just|only) the (?:winner|top one|leader)(?: please)?\b", " ", t)
    t = re.sub(r",? ?\b(?:one|a single|single) (?:number|figure|value)(?: please)?\b", " ", t)
    t = re.sub(r"^just the total\s*:\s*", "", t)
    t = re.sub(r",? ?\bno (?:commentary|explanation|text|fluff|chat)(?: please)?\b", " ", t)
    t = re.sub(r"[,.;-]? ?\b(?:no rounding|unrounded|(?:do not|don't) round(?: it)?)(?: please)?\b", " ", t)
    t = re.sub(
        r",? ?\b(?:a )?(?:whole|plain|round) (?:number|integer|figure)(?: is fine| please| only)?\b", " ", t
    )
    t = re.sub(r",? ?\bwith (?:comma |thousands? )?separators?(?: please)?\b", " ", t)
    t = re.sub(r",? ?\bin dollars and cents\b", " ", t)
    shown = r"(?:table|list|numbered list|bullet(?:ed)? (?:list|points)|bullets|chart|graph|(?:horizontal |vertical )?(?:bar|pie|line|column) (?:chart|graph))"
    t = re.sub(rf"[,.;-]? ?\b(?:as|in) (?:a )?{shown}(?: please)?\b", " ", t)
    t = re.sub(
        rf"[,.;-]? ?\b(?:a |an )?{shown} (?:would be|is|'d be|will be) (?:great|nice|good|ideal|perfect|helpful|lovely)\b",
        " ",
        t,
    )
    t = re.sub(rf"[,.;?-]? ?\b{shown} please\b", " ", t)
    t = re.sub(r"\b(?:as )?percentages\b", "", t)
    t = re.sub(r"[,.;?-]? ?\b(?:give me |show )?(?:the )?dates? in [a-z/ -]+? format\b", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def _which_one(t: str, dims: str) -> str:
    """A yes/no about which value leads, asked as the ranking it is: "did Web beat Mobile App on
    orders", "is North America ahead of Asia Pacific on new customers", "was Europe our top region by
    revenue", "did Marketplace have the highest return rate of any channel"."""
    ranked = r"(?:top|biggest|largest|best|highest|lowest|worst|smallest|weakest|strongest|most|fewest|least)"
    t = re.sub(
        r"^(?:did|does|do|has|have) ((?:[a-z&]+ ){0,3}?[a-z&]+) (?:beat|outsell|outsold|outperform|outperformed|edge out|top)"
        r" ((?:[a-z&]+ ){0,3}?[a-z&]+) (on|in|for|by)\b",
        r"which of \1 or \2 had more \3",
        t,
    )
    t = re.sub(
        r"^(?:is|was|are|were) ((?:[a-z&]+ ){0,3}?[a-z&]+) ahead of ((?:[a-z&]+ ){0,3}?[a-z&]+) (on|in|for|by)\b",
        r"which of \1 or \2 had more \3",
        t,
    )
    t = re.sub(
        rf"(?:^|(?<=, ))(?:was|is|were|are) (?:[a-z&]+ ){{1,3}}?(?:our|the) ({ranked})(?:[- ]([a-z]+))? ({dims})\b",
        lambda m: f"which {m.group(3)} had the {m.group(1)}{' ' + m.group(2) if m.group(2) else ''}",
        t,
    )
    t = re.sub(
        rf"^(?:did|does|do|has|have) (?:[a-z&]+ ){{1,3}}?(?:have|get|bring in|bring|take|make|sell|see|post) the ({ranked})"
        rf" (.+?) of (?:any|all)(?: (?:the|our))? ({dims})\b",
        r"which \3 had the \1 \2",
        t,
    )
    # "top 3 categories by revenue last month. is Apparel in there?": the ranking is the answer
    t = re.sub(
        r"[.?!,;-]*\s*(?:is|was|are|were) (?:[a-z&]+ ){1,3}?(?:in there|among them|on (?:the|that) list|in it)\s*\??\s*$",
        "",
        t,
    )
    return t


def _orders_and_spans(t: str) -> str:
    """Sort orders, rolling windows and relative periods said in other words."""
    # "highest to lowest": the whole breakdown in that order, not the top one ("best to worst" is the
    # parser's, which knows whether lower is better)
    t = re.sub(
        r"\b(?:from )?(?:highest|largest|biggest|most|high|big) (?:to|->) (?:lowest|smallest|least|low|small)\b",
        "largest first",
        t,
    )
    t = re.sub(
        r"\b(?:from )?(?:lowest|smallest|least|low|small) (?:to|->) (?:highest|largest|biggest|most|high|big)\b",
        "lowest first",
        t,
    )
    # "T7", "T30D": trailing days, as "L7D" is last days
    t = re.sub(r"(?<![\w-])t(\d{1,3})d?(?![\w-])", r"last \1 days", t)
    # "three weeks back", "2 months back": ago
    t = re.sub(
        r"\b(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve) (days?|weeks?|months?|quarters?|years?) back\b",
        r"\1 \2 ago",
        t,
    )
    # "last month but one": the one before it
    t = re.sub(r"\b(?:the )?last (week|month|quarter|year) but one\b", r"the \1 before last", t)
    # "through (the) end of last month": through last month
    t = re.sub(
        r"\b(through|to|until|till) (?:the )?end of (?=(?:last|the previous|the prior|previous|prior) )",
        r"\1 ",
        t,
    )
    # "the (last full) week ending Sunday": last week (a week here runs Monday to Sunday)
    t = re.sub(
        r"\b(?:the )?(?:last |past |previous |most recent )?(?:full |complete |whole )?(?:week ending|w/e) (?:on )?sun(?:day)?\b(?! ?\d)",
        "last week",
        t,
    )
    # "as a relative % change", "relative change": the change in percent
    t = re.sub(r"\b(?:as )?(?:a )?relative (?=%|(?:percent|pct|change|difference|growth)\b)", "", t)
    # "leave Electronics out (of it)": excluding it
    t = re.sub(
        r"\bleav(?:e|ing) ((?:[a-z&]+ ){0,3}?[a-z&]+) out(?: of (?:it|this|that|the ranking))?\b",
        r"excluding \1",
        t,
    )
    # "YoY orders for Q3: Q3 2026 vs Q3 2025": the quarter said once more with its years
    t = re.sub(r"\b(?:for )?(q[1-4]|h[12])\s*:\s*(?=\1 (?:19|20)\d\d\b)", "", t)
    # "net $ sales", "net of returns": every money and unit KPI here is net of returns already
    t = re.sub(r"\bnet (?=\$)", "", t)
    if not re.search(r"\b(?:orders?|customers?|buyers?|shoppers?|clients?)\b", t):
        t = re.sub(r",? ?\(?\bnet of (?:returns|refunds)\)?", " ", t)
    # accountants' and analysts' words: "full-year 2025", "the preceding 30 days", "% movement", "n of
    # new customers", "aggregate units", "pooled together", "argmax region by revenue", "partitioned by"
    t = re.sub(r"\bfull[- ](?:year )?(?=(?:19|20)\d\d\b|py\b|ly\b|(?:last|prior|previous) year\b)", "", t)
    t = re.sub(r"\b(?:the )?preceding\b", "the previous", t)
    t = re.sub(r"\bmovement\b", "change", t)
    t = re.sub(r"\bn of\b", "number of", t)
    t = re.sub(r"\baggregated?\b", "total", t)
    t = re.sub(r"\bpooled(?: together)?\b", "combined", t)
    t = re.sub(r"\bargmax\b", "top", t)
    t = re.sub(r"\bargmin\b", "bottom", t)
    t = re.sub(r"\bpartitioned by\b", "by", t)
    # "count of orders containing the Vertex Tablet": orders by product are the orders holding it
    t = re.sub(r"\borders (?:containing|that contain(?:ed)?|which contain(?:ed)?)\b", "orders of", t)
    # "last week, Monday to Sunday": a week here runs Monday to Sunday already
    t = re.sub(
        r"(\bweek\b[^,?]{0,20}),? (?:from )?mon(?:day)? ?(?:to|-|through|thru|till|until) ?sun(?:day)?\b",
        r"\1",
        t,
    )
    # a manager's own patch said first: "EU team here - AOV last month?", "on the app side", "I run MEA."
    t = re.sub(
        r"^(?:hi,? |hey,? )?(?:the )?((?:[a-z&']+ ){0,3}?[a-z&']+) (?:channel |region |regional )?"
        r"(?:team|lead|desk|side|manager|owner|head)(?: here)?(?: checking in)?\s*(?:[:,.]|-)\s*",
        r"\1: ",
        t,
    )
    t = re.sub(r"\b(?:on|from) the ((?:[a-z&]+ ){0,2}?[a-z&]+) side\b", r"in \1", t)
    t = re.sub(r"^((?:[a-z&]+ ){0,2}?[a-z&]+) side\b", r"\1", t)
    t = re.sub(r"^i (?:run|cover|manage|look after|own|head(?: up)?|lead|am responsible for) ", "", t)
    t = re.sub(r"\b(?:both |all )?rolls? up to me(?: now)?\b", "", t)
    t = re.sub(r"\bhow's\b", "how is", t)
    # head to head: "Europe or North America - who had more orders", "did Web or the app have more
    # customers", "which of the three had the weakest AOV": which of the named ones
    t = re.sub(r"\bwho (had|has|got|took|brought in|brought|made|sold|did|saw|drove|won)\b", r"which \1", t)
    t = re.sub(
        r"^(?:did|does|do|has|have) ((?:[a-z&]+ ){1,4}?or (?:[a-z&]+ ){0,3}?[a-z&]+) (?:have|had|get|got|take|took|bring in|make|sell) "
        r"(more|fewer|less|higher|lower|bigger|smaller)\b",
        r"which of \1 had \2",
        t,
    )
    t = re.sub(r"\bwhich of the (?:two|three|four|five|\d)\b", "which", t)
    t = re.sub(
        r"\bbought the (most|least|fewest)\b", r"sold the \1", t
    )  # "which region bought the most Vertex Tablets"
    t = re.sub(r"\borders (?:that |which )?(?:included|include|includes)\b", "orders of", t)
    t = re.sub(
        r",? ?\(?\bnot (?:percentage )?points\)?", " ", t
    )  # "relative % change (not percentage points)"
    # a weekday before each date of a span says nothing more: "from Wednesday 25 November through Wednesday 2 December"
    wd = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun),? "
    dated = rf"(?=\d{{1,2}}(?:st|nd|rd|th)? (?:{_MON})\b)"
    if len(re.findall(wd + dated, t)) >= 2:
        t = re.sub(r"\b" + wd + dated, "", t)
    # a phone's autocorrect, where only one reading is possible
    t = re.sub(r"\b(last|this|next|the|a|per|that|previous|prior|each) weak\b", r"\1 week", t)
    t = re.sub(r"\b(last|this|next|the|a|per|that|previous|prior|each) moth\b", r"\1 month", t)
    t = re.sub(r"\b(last|this|next|the|a|per|that|previous|prior|each|whole) quartet\b", r"\1 quarter", t)
    t = re.sub(r"\blast ear\b", "last year", t)
    t = re.sub(r"\bcostumers\b", "customers", t)
    t = re.sub(r"\bcostumer\b", "customer", t)
    t = re.sub(r"\bhome (and|&) kitten\b", r"home \1 kitchen", t)
    t = re.sub(r"\b(top|bottom|the) tree\b", r"\1 three", t)
    t = re.sub(r"\b(top|bottom) too\b", r"\1 two", t)  # dictation's homophones
    t = re.sub(r"\bsails\b", "sales", t)
    t = re.sub(r"\b(?:the )?hole (business|company)\b", r"the whole \1", t)
    t = re.sub(r"\b(compared|compare|up|down) too\b", r"\1 to", t)
    # money and volume said as nouns: "our take last month", "the top line", "what did Marketplace book"
    t = re.sub(r"\b(our|the|total|today's|yesterday's) take\b(?! (?:on|of|away)\b)", r"\1 revenue", t)
    t = re.sub(r"\btop[- ]?line\b", "revenue", t)
    t = re.sub(r"\bwhat (did|does|do|has|have) (.+?) book\b", r"what \1 \2 take in", t)
    t = re.sub(r"\bcomps?\s*:\s*", "", t)
    t = re.sub(r"\b(?:running|trending|sitting|coming in) at\b", "", t)  # "what's our margin running at"
    t = re.sub(r"\baverage order (?:worth|size in dollars)\b", "average order value", t)
    t = re.sub(
        r"\b(?:items|units|pieces)(?: that)? (?:went |gone |going )?out (?:of )?the door\b", "units sold", t
    )
    t = re.sub(r"\bsold the (most|fewest|least) (?:items|pieces)\b", r"sold the \1 units", t)
    t = re.sub(r"\b(?:both|all) together\b", "combined", t)
    # people counted: "how many people placed an order", "bought from us for the very first time"
    t = re.sub(
        r"\bhow many (?:people|persons|individuals|shoppers|buyers|customers) (?:bought|ordered|purchased|shopped)"
        r"(?: (?:from|with) us)? for the (?:very )?first time\b",
        "how many new customers",
        t,
    )
    t = re.sub(
        r"\bhow many (?:different |unique |distinct )?(?:people|persons|individuals|customers) (?:placed|made|put in) (?:an |a |any |at least one )?(?:orders?|purchases?)\b",
        "how many customers",
        t,
    )
    t = re.sub(
        r"\b(customers?|buyers?|shoppers?|clients?) with (?:an|a|at least one) (?:order|purchase)\b", r"\1", t
    )
    t = re.sub(r"\bactive ((?:[a-z&]+ ){1,3}?)(customers|buyers|shoppers|clients)\b", r"\1active \2", t)
    # rankings said with numbers: "the No. 1 category", "first and second biggest", "full ranking"
    t = re.sub(r"(?:\bno\.?|\bnumber|#) ?1\b(?= [a-z])", "top", t)
    t = re.sub(r"\bfirst and second (biggest|largest|best|highest|most)\b", r"top 2 \1", t)
    t = re.sub(r"\bfull ((?:[a-z]+ )?(?:ranking|list|breakdown))\b", r"\1", t)
    t = re.sub(r"\bsequential (growth|change|increase|decline)\b", r"\1 vs the period before", t)
    t = re.sub(
        r"\bfrom the (?:start|beginning) of the year (?:to|until|till) (?:now|today|date)\b",
        "year to date",
        t,
    )
    # "last 7 days vs previous 7": the same unit
    t = re.sub(
        r"\b((?:last|past) (\d+) (days|weeks|months)\b.*?\b(?:vs|versus|against|compared (?:with|to)) (?:the )?"
        r"(?:previous|prior|preceding) \2)\b(?! (?:days|weeks|months)\b)",
        r"\1 \3",
        t,
    )
    t = re.sub(r"(\blast \d+ days?\b),? (?:counting|including|incl\.?) today\b", r"\1", t)  # they do
    # "meaning units returned divided by units sold": the return rate's own definition
    t = re.sub(
        r",? ?\b(?:meaning|i\.?e\.?|defined as|calculated as|as in) (?:the )?(?:units returned|returned units) "
        r"(?:divided by|over|/|per|as a share of) (?:the )?units sold\b",
        " ",
        t,
    )
    return t


_UNITS_WORDS = "one two three four five six seven eight nine".split()
_ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
).split()


def _ordinal_day(word: str) -> int | None:
    """1-31 for "third", "twenty-first", "thirtieth", "thirty first"; else None."""
    word = word.replace("-", " ")
    if word in _ORDINALS:
        return _ORDINALS.index(word) + 1
    if word == "thirtieth":
        return 30
    for tens, base in (("twenty ", 20), ("thirty ", 30)):
        if word.startswith(tens) and word[len(tens) :] in _ORDINALS[:9]:
            day = base + _ORDINALS.index(word[len(tens) :]) + 1
            return day if day <= 31 else None
    return None


def _spoken_days(t: str) -> str:
    """Days of the month said as words, where they can only be days: "the third of november", "from
    the first through the fifteenth of march" ("the first quarter", "second half" stay words)."""
    ords = "|".join(
        ["(?:twenty|thirty)[ -](?:" + "|".join(_ORDINALS[:9]) + ")", "thirtieth", *_ORDINALS[::-1]]
    )

    def day(m: re.Match) -> str:
        n = _ordinal_day(m.group(1))
        suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}.get(n or 0, "th")
        return m.group(0) if n is None else f"{n}{suffix}"

    t = re.sub(rf"\b({ords})(?= of (?:{_MON})\b)", day, t)
    return re.sub(
        rf"\b({ords})(?= (?:to|through|thru|until|till|and|-) (?:the )?\d{{1,2}}(?:st|nd|rd|th) of )", day, t
    )


_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


_TENS_RE = re.compile(rf"({'|'.join(_TENS)})(?:[- ]({'|'.join(_UNITS_WORDS)}))?")


def spoken_numbers(t: str, known: set[str]) -> str:
    """``t`` with spoken numbers from 11 up ("fourteen", "twenty-eight", "twenty twenty five") in
    digits, and a spoken digit after "q" or before "k" ("q three", "four k monitor"). One to ten
    stay words otherwise: "which one"."""
    if any(w in known for w in (*_TEENS[1:], *_TENS)):
        return t  # the data names something with them ("Fifty Fifty Lemonade"): left as said
    tens = "|".join(_TENS)
    units = "|".join(_UNITS_WORDS)

    def compound(m: re.Match) -> str:
        n = 20 + 10 * _TENS.index(m.group(1)) + (_UNITS_WORDS.index(m.group(2)) + 1 if m.group(2) else 0)
        return str(n)

    # a spoken year: "twenty twenty five" is 2025, "twenty seventeen" 2017, "twenty twenty" 2020
    t = re.sub(rf"\btwenty ({'|'.join(_TEENS)})\b", lambda m: f"20{10 + _TEENS.index(m.group(1))}", t)
    t = re.sub(
        rf"\btwenty ((?:{tens})(?:[- ](?:{units}))?)\b",
        lambda m: "20" + compound(_TENS_RE.match(m.group(1))),
        t,
    )
    t = re.sub(rf"\b({tens})(?:[- ]({units}))?\b", compound, t)
    t = _spoken_days(t)
    t = re.sub(rf"\b({'|'.join(_TEENS[1:])})\b", lambda m: str(11 + _TEENS[1:].index(m.group(1))), t)
    t = re.sub(
        r"\bq (one|two|three|four)\b", lambda m: f"q{_UNITS_WORDS.index(m.group(1)) + 1}", t
    )  # "q three"
    return re.sub(rf"\b({units}) k\b", lambda m: f"{_UNITS_WORDS.index(m.group(1)) + 1}k", t)


# --- a question pasted from chat or e-mail ---------------------------------------------------------
_HEADER = re.compile(r"^\s*(?:(?:re|fwd?|fw|aw|sv|subject)\s*:\s*)+", re.IGNORECASE)
_MARKER = re.compile(r"^\s*(?:>+|[-*•]\s|\d+[.)]\s)\s*")  # a quote or a list marker


def unwrap(text: str) -> list[str]:
    """The lines of a message pasted from chat or e-mail, without its wrapping: links, @mentions,
    #hashtags, emoji, markdown emphasis, quote and list markers, and "Re:"/"Fwd:" subject lines
    (while another line is there to read). Which of the lines say something is the parser's to judge
    (:func:`kpi_lib.ask.parser.without_asides`)."""
    t = re.sub(r"\b(?:https?://|www\.)\S+", " ", text)
    t = re.sub(r"(?<![\w.])@[\w.-]+", " ", t)  # "@ask-bot"
    t = re.sub(r"(?<![\w&])#(?=[a-zA-Z])[\w-]+", " ", t)  # "#finance" ("# of orders" is a word)
    # emoji and pictographs (a currency sign or an arrow is kept: "$", "→")
    t = "".join(" " if unicodedata.category(c) in ("So", "Cs", "Co") else c for c in t)
    t = re.sub(r"[\u200d\ufe0e\ufe0f]", "", t)
    t = re.sub(r"\*+|__|~~", " ", t)  # markdown emphasis
    lines = [_MARKER.sub("", line).strip() for line in t.splitlines()]
    lines = [line for line in lines if line]
    said = [line for line in lines if not _HEADER.match(line)]
    if said:  # the subject line of a reply is a title, not the question
        return said
    return [_HEADER.sub("", line) for line in lines]
