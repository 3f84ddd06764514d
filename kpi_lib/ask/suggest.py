"""What to suggest while someone types a question: KPIs, dimension values and date phrases that
continue the last word(s) typed."""

from __future__ import annotations

from .lexicon import Lexicon, lexicon

DATE_PHRASES = (
    "yesterday",
    "today",
    "last week",
    "last month",
    "last quarter",
    "last year",
    "this month so far",
    "this year so far",
    "year to date",
    "the last 7 days",
    "the last 30 days",
    "vs the month before",
    "vs the same month last year",
    "this morning",
)
SHAPES = (
    "top 5 products by revenue",
    "by region",
    "by channel",
    "by category",
    "which month had the highest",
)


def _completion(head: list[str], tail: str, item: str, is_name: bool) -> str | None:
    """The question with its last word ``tail`` completed by ``item``, or None if ``item`` does not
    continue it. A phrase ("last month") continues only where the words typed before the tail are
    its own first words ("revenue last mo" -> "revenue last month", never "revenue last last month");
    a name (a KPI, a region, a product) also matches on an inner word ("ord" -> "Average order value")."""
    words = item.lower().split()
    if words[0].startswith(tail):
        return " ".join([*head, item])
    for j in range(1, len(words)):
        if not words[j].startswith(tail):
            continue
        if len(head) >= j and [w.lower() for w in head[len(head) - j :]] == words[:j]:
            return " ".join([*head[: len(head) - j], item])
        if is_name:
            return " ".join([*head, item])
    return None


def suggest(text: str, limit: int = 8, lex: Lexicon | None = None) -> list[str]:
    """Completions for the end of ``text``: each is the whole question with its last word(s) completed."""
    lex = lex or lexicon()
    words = text.rstrip().split(" ") if text.strip() else []
    head_words = words[:-1] if words and not text.endswith(" ") else words
    tail = "" if text.endswith(" ") or not words else words[-1].lower()
    names = [k.label for k in lex.kpis.values() if k.name not in lex.unavailable]
    names += [s for k in lex.kpis.values() for s in k.synonyms[:2]]
    for d in ("region", "channel", "category"):
        names += lex.members.get(d, [])
    pool = [(n, True) for n in names]
    pool += [(p, False) for p in (*DATE_PHRASES, *SHAPES)]
    pool += [(n, True) for n in lex.members.get("product", [])[:200]]
    out: list[str] = []
    for item, is_name in pool:
        full = " ".join([*words, item]).strip() if not tail else _completion(head_words, tail, item, is_name)
        if full is not None and full.lower() != text.strip().lower() and full not in out:
            out.append(full)
        if len(out) >= limit:
            break
    return out
