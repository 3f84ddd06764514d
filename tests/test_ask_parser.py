"""The parser alone: phrasings -> the exact reading (a kpis.Question), or a decline/clarify.

No warehouse: the lexicon is built from catalog.yml and a fixed set of member values, and the as-of
is pinned, so these run in milliseconds and never depend on the clock."""

from __future__ import annotations

from datetime import datetime

import pytest

from kpi_lib.ask.lexicon import from_parts
from kpi_lib.ask.parser import parse

T = datetime(2026, 3, 18, 14, 30)  # a Wednesday
MEMBERS = {
    "region": ["Europe", "North America", "Latin America", "Asia Pacific", "United Kingdom", "France"],
    "channel": ["Web", "Mobile App", "Retail Store", "Marketplace"],
    "category": ["Books", "Toys & Games", "Electronics", "Home & Kitchen", "Apparel"],
    "product": ["Vertex Tablet", "Helix Action Camera"],
}
LEX = from_parts(MEMBERS, {"country": "region"}, first=datetime(2024, 1, 1), latest=T)


def read(text):
    return parse(text, T, LEX)


@pytest.mark.parametrize(
    "text, kpi, start, end, where",
    [
        ("What was revenue yesterday?", "revenue", "2026-03-17", "2026-03-18", {}),
        ("turnover in Q3 2025", "revenue", "2025-07-01", "2025-10-01", {}),
        ("takings for the first quarter of 2025", "revenue", "2025-01-01", "2025-04-01", {}),
        ("orders last week", "orders", "2026-03-09", "2026-03-16", {}),
        ("aov this month so far", "aov", "2026-03-01", "2026-03-19", {}),
        ("average ticket year to date", "aov", "2026-01-01", "2026-03-19", {}),
        ("first-time buyers in February", "new_customers", "2026-02-01", "2026-03-01", {}),
        ("revenue the last 7 days", "revenue", "2026-03-12", "2026-03-19", {}),
        ("orders in the week starting 2 March 2026", "orders", "2026-03-02", "2026-03-09", {}),
        ("revenue on March 3rd, 2026", "revenue", "2026-03-03", "2026-03-04", {}),
        ("revenue on 2026-03-03", "revenue", "2026-03-03", "2026-03-04", {}),
        ("sales in April", "revenue", "2025-04-01", "2025-05-01", {}),
        ("orders since January", "orders", "2026-01-01", "2026-03-19", {}),
        ("revenue over the past year", "revenue", "2025-03-19", "2026-03-19", {}),
        ("revenue last year", "revenue", "2025-01-01", "2026-01-01", {}),
        ("Revenue in Eurpoe last month", "revenue", "2026-02-01", "2026-03-01", {"region": ["Europe"]}),
        ("sales in the UK in 2025", "revenue", "2025-01-01", "2026-01-01", {"region": ["United Kingdom"]}),
        (
            "revenue from books and toys in 2025",
            "revenue",
            "2025-01-01",
            "2026-01-01",
            {"category": ["Books", "Toys & Games"]},
        ),
        ("units on the web channel last month", "units", "2026-02-01", "2026-03-01", {"channel": ["Web"]}),
    ],
)
def test_value_readings(text, kpi, start, end, where):
    r = read(text)
    assert r.status == "answer" and r.shape == "value", r.reason
    q = r.question
    assert (q.kpi, f"{q.start:%Y-%m-%d}", f"{q.end:%Y-%m-%d}", q.where_dict) == (
        kpi,
        start,
        end,
        {d: tuple(v) for d, v in where.items()},
    )


def test_exclusions_top_and_bottom():
    r = read("top 2 regions by revenue last month excluding North America")
    assert r.shape == "top" and r.question.by == ("region",) and r.question.top == 2
    assert r.question.exclude_dict == {"region": ("North America",)}
    r = read("bottom 3 categories by average order value other than Books in 2025")
    assert (
        r.question.order == "asc"
        and r.question.top == 3
        and r.question.exclude_dict == {"category": ("Books",)}
    )
    r = read("which channel had the fewest orders last week")
    assert (r.shape, r.question.by, r.question.top, r.question.order) == ("top", ("channel",), 1, "asc")


def test_by_a_source_column_name_and_over_time():
    r = read("revenue by country last month")
    assert r.shape == "breakdown" and r.question.by == ("region",)
    r = read("what are the sales per region last month")
    assert r.shape == "breakdown" and r.question.by == ("region",)
    r = read("which region had the most orders last month")
    assert (r.shape, r.question.top, r.question.order) == ("top", 1, "desc")
    r = read("which month had the highest revenue in 2025")
    assert r.shape == "rank_time" and r.rank_grain == "month" and r.question.grain == "month"
    r = read("monthly orders in 2025")
    assert r.shape == "trend" and r.question.grain == "month"


@pytest.mark.parametrize(
    "text, a, b",
    [
        (
            "revenue last month vs the month before",
            ("2026-02-01", "2026-03-01"),
            ("2026-01-01", "2026-02-01"),
        ),
        ("orders in 2025 vs 2024", ("2025-01-01", "2026-01-01"), ("2024-01-01", "2025-01-01")),
        ("revenue growth from 2024 to 2025", ("2025-01-01", "2026-01-01"), ("2024-01-01", "2025-01-01")),
        (
            "year over year revenue growth in February",
            ("2026-02-01", "2026-03-01"),
            ("2025-02-01", "2025-03-01"),
        ),
        (
            "orders yesterday vs the same day last week",
            ("2026-03-17", "2026-03-18"),
            ("2026-03-10", "2026-03-11"),
        ),
    ],
)
def test_comparisons(text, a, b):
    r = read(text)
    assert r.shape == "compare", r.reason
    got_a = (f"{r.question.start:%Y-%m-%d}", f"{r.question.end:%Y-%m-%d}")
    got_b = (f"{r.compare_to.start:%Y-%m-%d}", f"{r.compare_to.end:%Y-%m-%d}")
    assert (got_a, got_b) == (a, b)


@pytest.mark.parametrize(
    "text, status",
    [
        ("What is our conversion rate?", "decline"),
        ("How many visitors did the website have yesterday?", "decline"),
        ("What's the weather in Paris?", "decline"),
        ("Net promoter score by region", "decline"),
        ("revenue in Antarctica last month", "decline"),
        ("revenue in America last month", "decline"),  # North or Latin: not guessed
        ("How did Europe do last month?", "clarify"),
        ("revenue and orders last month", "clarify"),
        ("revenue on 03/04/2025", "clarify"),  # 3 April or 4 March
        ("revenue this month vs last month", "clarify"),  # 18 days against a whole month
        ("revenue last week on monday", "clarify"),
        ("What day of the week has the most orders?", "decline"),
        ("active customers in Electronics last month", "decline"),
        ("revenue where 1=1", "decline"),
        ("What was the average revenue last month?", "decline"),  # per day? per order? not guessed
        ("What was the last order?", "decline"),
        ("How many sales did we make last month?", "clarify"),  # orders or money?
        ("What percentage of revenue came from Europe last month?", "decline"),
    ],
)
def test_declines_and_clarifications(text, status):
    r = read(text)
    assert r.status == status and r.question is None and r.reason
