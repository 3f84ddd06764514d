"""What the Ask box offers while a question is typed (kpi_lib.ask.suggest): whole questions that read
right, from catalog.yml and fixed member values (no warehouse)."""

from __future__ import annotations

from datetime import datetime

from kpi_lib.ask.lexicon import from_parts
from kpi_lib.ask.suggest import suggest

LEX = from_parts(
    {"region": ["Europe", "North America"], "channel": ["Web"], "category": ["Books"], "product": []},
    {},
    first=datetime(2024, 1, 1),
    latest=datetime(2026, 3, 18),
)


def test_a_date_phrase_completes_the_words_typed_not_repeats_them():
    # seen in the executive page's Ask box: "revenue last month" offered "revenue last last month"
    # and "revenue last this month so far"
    offered = suggest("revenue last month", limit=20, lex=LEX)
    assert not [s for s in offered if "last last" in s or "last this" in s or "last vs" in s], offered
    assert "revenue last mo" not in offered
    assert "revenue last month" in suggest("revenue last mo", limit=20, lex=LEX)
    assert "revenue vs the month before" in suggest("revenue vs the mon", limit=20, lex=LEX)


def test_a_name_still_matches_on_an_inner_word_and_a_space_offers_what_may_follow():
    assert "Average order value" in suggest("ord", limit=20, lex=LEX)
    assert "revenue in North America" in suggest("revenue in ame", limit=20, lex=LEX)
    assert "revenue last month" in suggest("revenue ", limit=100, lex=LEX)
