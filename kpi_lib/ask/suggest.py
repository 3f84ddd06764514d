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
)
SHAPES = (
    "top 5 products by revenue",
    "by region",
    "by channel",
    "by category",
    "which month had the highest",
)


def suggest(text: str, limit: int = 8, lex: Lexicon | None = None) -> list[str]:
    """Completions for the end of ``text``: each is the whole question with its last word(s) completed."""
    lex = lex or lexicon()
    words = text.rstrip().split(" ") if text.strip() else []
    head_words = words[:-1] if words and not text.endswith(" ") else words
    tail = "" if text.endswith(" ") or not words else words[-1].lower()
    pool = [k.label for k in lex.kpis.values() if k.name not in lex.unavailable]
    pool += [s for k in lex.kpis.values() for s in k.synonyms[:2]]
    for d in ("region", "channel", "category"):
        pool += lex.members.get(d, [])
    pool += list(DATE_PHRASES) + list(SHAPES)
    pool += lex.members.get("product", [])[:200]
    out: list[str] = []
    for item in pool:
        if (
            not tail
            or item.lower().startswith(tail)
            or any(w.startswith(tail) for w in item.lower().split()[1:])
        ):
            full = " ".join([*head_words, item]) if tail else " ".join([*words, item]).strip()
            if full.lower() != text.strip().lower() and full not in out:
                out.append(full)
        if len(out) >= limit:
            break
    return out
