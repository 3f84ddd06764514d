"""KPI, fact and dimension definitions, read from catalog.yml ``metadata`` (and nowhere else)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
from babel import Locale, numbers

from .. import cache, catalog, replicas
from .. import scope as row_scope
from ..errors import QueryError

GRAINS = ("minute", "hour", "day", "week", "month", "total")
COMPARES = ("previous_period", "previous_year")


@dataclass(frozen=True)
class Kpi:
    """One KPI definition, as written in catalog.yml ``metadata.kpis``."""

    name: str
    label: str
    description: str
    unit: str
    format: str
    expression: str
    facts: tuple[str, ...]
    dimensions: tuple[str, ...]
    up_is_good: bool = True
    prefix: str = ""
    rules: Mapping[str, Any] = field(default_factory=dict)
    sensitive: bool = False
    synonyms: tuple[str, ...] = ()  # other names people use for it ("sales", "turnover")
    currency: str | None = None  # ISO code for money KPIs (unit: currency), from metadata.business
    locale: str = "en_US"

    @property
    def additive(self) -> bool:
        """Sums and counts add up across periods (missing periods are zero); ratios do not."""
        return "/" not in self.expression

    @property
    def is_percent(self) -> bool:
        """Shown as a percentage (a margin, a rate): its changes are told in points."""
        return self.format.endswith("%")

    def _digits(self) -> int:
        """Fraction digits the catalog's ``format`` asks for (',.0f' -> 0, '.1%' -> 1)."""
        m = re.search(r"\.(\d+)", self.format)
        return int(m.group(1)) if m else 0

    def _pattern(self) -> str:
        digits = self._digits()
        return "#,##0" + ("." + "0" * digits if digits else "") + ("%" if self.format.endswith("%") else "")

    def format_value(self, value: float | None) -> str:
        """Full precision for tables, in the business's currency and locale (through babel):
        '$12,345', '£12,345.60', '1 461 756,25 €', '34.5%'."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        digits = self._digits()
        if self.currency and not self.format.endswith("%"):
            # never finer than the currency's minor unit: ¥2,055 (yen have none), not ¥2,055.06
            digits = min(digits, numbers.get_currency_precision(self.currency))
        if value < 0 and round(value, digits + (2 if self.format.endswith("%") else 0)) == 0:
            value = 0.0  # -0.3 orders (the low end of a band) is '0', never '-0'
        # rounded half up, as people round money ($2.50 -> $3); babel would round half to even
        value = _half_up(value, digits + (2 if self.format.endswith("%") else 0))
        if self.format.endswith("%"):
            # the locale's own pattern ('#,##0 %' in French) with the catalog's fraction digits
            pattern = Locale.parse(self.locale).percent_formats[None].pattern
            digits = self._digits()
            pattern = re.sub(r"0(?=\s*%)", "0" + ("." + "0" * digits if digits else ""), pattern, count=1)
            return numbers.format_percent(value, pattern, locale=self.locale)
        if self.currency:
            return _regroup(_money(value, self.currency, self.locale, digits), self.locale)
        return _regroup(numbers.format_decimal(value, self._pattern(), locale=self.locale), self.locale)

    def format_compact(self, value: float | None) -> str:
        """Short form for tiles, axes and sentences: '$12.4K', '£1.46M', '1,2 M', '34.5%'."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if self.format.endswith("%") or abs(value) < 1000:
            return self.format_value(value)
        if self.currency and abs(value) < 10_000 and numbers.get_currency_precision(self.currency) == 0:
            # '¥2,055' in full: '¥2.06K' reads like yen with cents, and Japanese compacts from 万 only
            return self.format_value(value)
        # three significant digits, as people say them: 1.46M, 12.4K, 123K
        whole = len(str(int(abs(value))))
        digits = max(0, 3 - ((whole - 1) % 3 + 1))
        if self.currency:
            return numbers.format_compact_currency(
                value, self.currency, locale=self.locale, fraction_digits=digits
            )
        return numbers.format_compact_decimal(value, locale=self.locale, fraction_digits=digits)


def _half_up(value: float, digits: int) -> Decimal:
    """``value`` to ``digits`` places, halves away from zero, read as written (2.675 -> 2.68, though
    the float is a hair under 2.675)."""
    if not math.isfinite(value):
        return Decimal(value)
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def _regroup(text: str, locale: str) -> str:
    """Babel 2.19 leaves amounts of a million and more ungrouped in the Swiss locales ('CHF 2237314'
    beside 'CHF 756'494'): a run of seven or more whole digits gets the locale's group symbol back."""
    decimal = numbers.get_decimal_symbol(locale)
    group = numbers.get_group_symbol(locale)

    def grouped(m: re.Match) -> str:
        digits = m.group(0)
        head = len(digits) % 3 or 3
        return group.join([digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)])

    return re.sub(rf"(?<![\d{re.escape(decimal)}])\d{{7,}}", grouped, text)


def _money(value: float | Decimal, currency: str, locale: str, digits: int) -> str:
    """The locale's currency pattern ('¤#,##0.00', '#,##0.00 ¤') with the KPI's fraction digits."""
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    if digits != 2:
        pattern = pattern.replace(".00", "." + "0" * digits if digits else "")
    return numbers.format_currency(value, currency, pattern, locale=locale, currency_digits=False)


DEFAULT_BUSINESS = {"currency": "USD", "locale": "en_US"}


def business() -> dict[str, str]:
    """catalog.yml ``metadata.business``: the currency (ISO 4217) and locale (e.g. en_GB, fr_FR)
    every number is shown in. `kpi load lines --currency GBP` sets the currency."""
    b = {**DEFAULT_BUSINESS, **(_meta().get("business") or {})}
    return {"currency": str(b["currency"]).upper(), "locale": str(b["locale"])}


_MONTH_ABBR = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def fiscal_year_set() -> bool:
    """Whether catalog.yml says when the fiscal year starts (unset, it is the calendar year)."""
    return "fiscal_year_start" in (_meta().get("business") or {})


def fiscal_year_start() -> int:
    """The month (1-12) the business's fiscal year starts in: catalog.yml
    ``metadata.business.fiscal_year_start`` (a number or a month name), January when unset. A
    fiscal year is named by the calendar year it ends in (FY2025 from April: Apr 2024 - Mar 2025)."""
    raw = (_meta().get("business") or {}).get("fiscal_year_start", 1)
    text = str(raw).strip().lower()[:3]
    month = int(text) if text.isdigit() else _MONTH_ABBR.index(text) + 1 if text in _MONTH_ABBR else 0
    if not 1 <= month <= 12:
        raise QueryError(
            f"catalog.yml business.fiscal_year_start is {raw!r}; give the month the fiscal year starts in "
            "(1-12 or a month name, e.g. April)."
        )
    return month


@dataclass(frozen=True)
class Fact:
    name: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    base: str | None  # catalog entry of the base table kept current by ingest (L4)
    daily: str | None  # catalog entry of the daily materialized view (L3)
    live: str | None  # set-returning function: daily rows from silver since a time (L4 for `daily`)
    grains: tuple[str, ...] = ("hour", "day", "week", "month", "total")
    returns: str | None = None  # catalog entry: distinct counts over whole days as sums (L3)


def _meta() -> dict[str, Any]:
    return catalog.metadata().get("metadata", {})


_built: tuple[dict, dict[str, Kpi]] | None = None  # (the catalog metadata read, the KPIs built from it)


def definitions() -> dict[str, Kpi]:
    """Every KPI in catalog.yml, by name (built again only when the catalog file changed)."""
    global _built
    meta = _meta()
    built = _built
    if built is None or built[0] is not meta:  # catalog.metadata() returns the same dict until then
        built = _built = (meta, _build())
    return dict(built[1])


def _build() -> dict[str, Kpi]:
    out = {}
    biz = business()
    for name, d in (_meta().get("kpis") or {}).items():
        money = d.get("unit") == "currency"
        out[name] = Kpi(
            name=name,
            label=d.get("label", name),
            description=d.get("description", ""),
            unit=d.get("unit", ""),
            format=d.get("format", ",.2f"),
            expression=d["expression"],
            facts=tuple(d["facts"]),
            dimensions=tuple(d.get("dimensions", ())),
            up_is_good=bool(d.get("up_is_good", True)),
            # the currency's symbol in the business's locale ('£'), for code that writes its own
            prefix=numbers.get_currency_symbol(biz["currency"], biz["locale"])
            if money
            else d.get("prefix", ""),
            rules=d.get("rules") or {},
            sensitive=bool(d.get("sensitive", False)),
            synonyms=tuple(d.get("synonyms") or ()),
            currency=biz["currency"] if money else None,
            locale=biz["locale"],
        )
    return out


def get(name: str) -> Kpi:
    """A KPI by name; ``<ratio>.numerator`` / ``.denominator`` are the parts of a ratio KPI."""
    kpis = definitions()
    if name not in kpis:
        base, _, part = name.rpartition(".")
        parts = components(kpis[base]) if base in kpis and part in ("numerator", "denominator") else None
        if parts:
            return parts[0] if part == "numerator" else parts[1]
        raise QueryError(f"Unknown KPI {name!r}. KPIs: {', '.join(kpis)}.")
    return kpis[name]


def facts() -> dict[str, Fact]:
    return {
        n: Fact(
            n,
            tuple(f.get("dimensions", ())),
            tuple(f.get("measures", ())),
            f.get("base"),
            f.get("daily"),
            f.get("live"),
            tuple(f.get("grains", ("hour", "day", "week", "month", "total"))),
            f.get("returns"),
        )
        for n, f in (_meta().get("facts") or {}).items()
    }


def dimensions() -> dict[str, dict[str, Any]]:
    return _meta().get("dimensions") or {}


def vocabulary() -> dict[str, Any]:
    """catalog.yml ``metadata.vocabulary``: words Ask knows that are not KPI or dimension names
    (measures the catalog does not define, member aliases such as "the UK")."""
    return _meta().get("vocabulary") or {}


_RATIO = re.compile(r"^\s*(.+?)\s*/\s*nullif\(\s*(.+?)\s*,\s*0\s*\)\s*$", re.IGNORECASE | re.DOTALL)


def components(k: Kpi) -> tuple[Kpi, Kpi] | None:
    """A ratio KPI ``A / nullif(B, 0)`` as its additive numerator and denominator (same facts and
    dimensions), so a change in the ratio can be split exactly by segment; None for other KPIs."""
    m = _RATIO.match(k.expression)
    if m is None:
        return None
    num, den = m.group(1).strip(), m.group(2).strip()
    if num.startswith("(") and num.endswith(")"):
        num = num[1:-1]
    plain = dict(format=",.2f", prefix="", rules={}, synonyms=())
    return (
        replace(k, name=f"{k.name}.numerator", label=f"{k.label} numerator", expression=num, **plain),
        replace(k, name=f"{k.name}.denominator", label=f"{k.label} denominator", expression=den, **plain),
    )


def dimension_values(dim: str) -> list[str]:
    """Known values of a dimension (for filter widgets)."""
    from .planner import sync_versions

    dims = dimensions()
    if dim not in dims:
        raise QueryError(f"Unknown dimension {dim!r}. Dimensions: {', '.join(dims)}.")
    table = {
        "region": "silver.orders",
        "channel": "silver.orders",
        "category": "silver.order_lines",
        "product": "silver.order_lines",
    }[dim]
    col = dims[dim].get("column", dim)
    key = cache.make_key({"dimension_values": dim, "scope": row_scope.current().key()})
    version = sync_versions()
    # Read from the daily views, so they change when a view is refreshed, not with every batch;
    # before the views hold anything, from silver (and then again with every batch).
    views_key = f"{key}:views{cache.versions.views_version()}"
    for k in (views_key, f"{key}:{version}"):
        hit = cache.get(k)
        if hit is not None:
            return hit[0]["value"].tolist()
    view = {"product": "product_daily", "category": "category_daily"}.get(dim, "sales_daily")
    with replicas.read() as conn:  # the reader's rows only (on a replica when configured)
        values = [r[0] for r in conn.exec_driver_sql(f"select distinct {col} from gold.{view} order by 1")]
        if values:
            cache.put(views_key, pd.DataFrame({"value": values}), {})
            return values
        values = [r[0] for r in conn.exec_driver_sql(f"select distinct {col} from {table} order by 1")]
    cache.put(f"{key}:{version}", pd.DataFrame({"value": values}), {})
    return values
