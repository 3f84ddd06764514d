"""The business's currency and locale: recorded in catalog.yml by `kpi load lines`, and every
number formatted through babel in them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from kpi_lib import catalog, kpis
from kpi_lib.kpis.definitions import business

KPI = [str(Path(sys.executable).with_name("kpi"))]
ROOT = Path(__file__).resolve().parent.parent
NBSP, NNBSP = "\xa0", "\u202f"


def test_money_in_the_business_currency_and_locale(demo):
    revenue, aov = kpis.get("revenue"), kpis.get("aov")
    assert business() == {"currency": "USD", "locale": "en_US"}  # the repository's catalog.yml
    assert revenue.format_value(1461756.25) == "$1,461,756" and aov.format_value(-12.5) == "-$12.50"
    gbp = replace(revenue, currency="GBP", prefix="£")
    assert gbp.format_compact(1461756.25) == "£1.46M" and gbp.format_compact(12400) == "£12.4K"
    eur = replace(aov, currency="EUR", locale="fr_FR")
    assert eur.format_value(1461756.25) == f"1{NNBSP}461{NNBSP}756,25{NBSP}€"
    rate = replace(kpis.get("return_rate"), locale="fr_FR").format_value(0.1234)
    assert rate.startswith("12,3") and rate.endswith("%") and rate != "12,3%"  # French: a space before %
    assert kpis.get("orders").format_compact(1461756) == "1.46M"


def write_lines(path: Path, currency_column: list[str] | None = None) -> None:
    rows = ["order_id,ordered_at,quantity,unit_price,country" + (",currency" if currency_column else "")]
    for i in range(3):
        extra = f",{currency_column[i % len(currency_column)]}" if currency_column else ""
        rows.append(f"CUR-{path.stem}-{i},2011-03-0{i + 1} 10:00,2,9.95,Spain{extra}")
    path.write_text("\n".join(rows) + "\n")


def load(tmp_path: Path, catalog: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KPI_CATALOG": str(catalog)}  # a copy: the repository's file stays as it is
    return subprocess.run(
        [*KPI, "load", "lines", *args], capture_output=True, text=True, env=env, timeout=300
    )


def recorded(catalog: Path) -> dict:
    return yaml.safe_load(catalog.read_text())["metadata"]["business"]


def test_kpi_load_records_the_currency_in_the_catalog(demo, tmp_path):
    catalog = tmp_path / "catalog.yml"
    shutil.copy(ROOT / "catalog.yml", catalog)
    plain = tmp_path / "plain.csv"
    write_lines(plain)
    out = load(tmp_path, catalog, str(plain), "--currency", "gbp")
    assert out.returncode == 0, out.stderr
    assert recorded(catalog) == {"currency": "GBP", "locale": "en_US"} and "currency: GBP" in out.stdout
    assert "written the en_US way (1,234.56)" in out.stdout and "--locale en_GB" in out.stdout
    assert catalog.read_text().count("\n") == (ROOT / "catalog.yml").read_text().count("\n")  # one line

    with_column = tmp_path / "euros.csv"
    write_lines(with_column, ["EUR"])
    assert load(tmp_path, catalog, str(with_column)).returncode == 0
    assert recorded(catalog)["currency"] == "EUR"

    mixed = tmp_path / "mixed.csv"
    write_lines(mixed, ["EUR", "USD"])
    out = load(tmp_path, catalog, str(mixed))
    assert out.returncode != 0 and "several currencies (EUR, USD)" in out.stdout + out.stderr
    assert recorded(catalog)["currency"] == "EUR"

    out = load(tmp_path, catalog, str(plain), "--currency", "POUNDS")
    assert out.returncode != 0 and "ISO 4217" in out.stdout + out.stderr


def test_kpi_init_sets_currency_and_locale(demo, tmp_path):
    catalog = tmp_path / "catalog.yml"
    shutil.copy(ROOT / "catalog.yml", catalog)
    env = {**os.environ, "KPI_CATALOG": str(catalog)}
    out = subprocess.run(
        [*KPI, "init", "--currency", "EUR", "--locale", "fr_FR"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert recorded(catalog) == {"currency": "EUR", "locale": "fr_FR"}
    shown = subprocess.run(
        [*KPI, "query", "aov", "--grain", "total"],  # the 30 days to the data's as-of
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    ).stdout
    assert "€" in shown and "$" not in shown  # the table `kpi query` prints, in euros the French way
    bad = subprocess.run(
        [*KPI, "init", "--locale", "xx_NOPE"], capture_output=True, text=True, env=env, timeout=300
    )
    assert bad.returncode != 0 and "en_GB" in bad.stdout + bad.stderr


def test_a_currency_alone_says_how_numbers_will_be_written(tmp_path):
    """A Brazilian export loaded with --currency BRL keeps en_US digits unless the person is told."""
    assert catalog.locale_hint({"currency": "BRL", "locale": "en_US"}) == (
        "numbers are written the en_US way (1,234.56); to write them as where BRL is used, "
        "run `kpi init --locale pt_BR`"
    )
    assert "--locale en_IE" in catalog.locale_hint(
        {"currency": "EUR", "locale": "en_US"}
    )  # same language first
    assert "--locale fr_CH" in catalog.locale_hint({"currency": "CHF", "locale": "fr_FR"})
    assert catalog.locale_hint({"currency": "EUR", "locale": "fr_FR"}) is None  # they agree: nothing to say
    assert catalog.locale_hint({"currency": "USD", "locale": "en_US"}) is None


def test_a_value_that_rounds_to_zero_is_zero_never_minus_zero(demo):
    """The low end of an anomaly band around 3 orders a day is -0.3: e-mails and explanations read
    'expected 3 (0–6)', not '(-0–6)'."""
    orders, revenue, aov = kpis.get("orders"), kpis.get("revenue"), kpis.get("aov")
    assert orders.format_compact(-0.3) == "0" and revenue.format_compact(-0.4) == "$0"
    assert aov.format_value(-0.004) == "$0.00" and aov.format_value(-0.006) == "-$0.01"
    assert orders.format_compact(-0.6) == "-1" and kpis.get("return_rate").format_value(-0.00001) == "0.0%"


def test_swiss_amounts_of_a_million_keep_their_thousands_separator(demo):
    """Babel 2.19 writes 'CHF 2237314.00' in de_CH beside 'CHF 756'494.00' (seen on a Swiss export)."""
    revenue, aov = kpis.get("revenue"), kpis.get("aov")
    chf = replace(aov, currency="CHF", locale="de_CH")
    assert (
        chf.format_value(2237314) == f"CHF{NBSP}2'237'314.00"
        and chf.format_value(756494) == f"CHF{NBSP}756'494.00"
    )
    assert replace(revenue, currency="CHF", locale="fr_CH").format_value(5020257.4).startswith("5'020'257")
    assert replace(kpis.get("orders"), locale="de_CH").format_value(1234567) == "1'234'567"
    assert replace(aov, currency="CHF", locale="de_CH").format_value(0.25) == f"CHF{NBSP}0.25"


def test_yen_have_no_minor_units(demo):
    """A Japanese shop: the average order value is ¥2,055, not ¥2,055.06 (the catalog's 2 digits are
    for currencies with cents), on tiles too (not '¥2.06K', nor '￥2055.06' in Japanese)."""
    aov, revenue = kpis.get("aov"), kpis.get("revenue")
    yen = replace(aov, currency="JPY")
    assert yen.format_value(2055.06) == "¥2,055" and yen.format_compact(2055.06) == "¥2,055"
    assert yen.format_compact(20550.6) == "¥20.6K"
    assert replace(yen, locale="ja_JP").format_compact(2055.06) == "￥2,055"  # was '￥2055.06'
    assert yen.format_value(-0.3) == "¥0"
    assert replace(revenue, currency="JPY").format_value(1461756.25) == "¥1,461,756"
    assert replace(aov, currency="BRL", locale="pt_BR").format_value(2055.06) == f"R${NBSP}2.055,06"


def test_money_rounds_half_up_as_people_do(demo):
    """Babel rounds half to even ($2.50 -> $2): a table and its CSV then disagreed by a dollar."""
    revenue, aov = kpis.get("revenue"), kpis.get("aov")
    assert revenue.format_value(331532.5) == "$331,533" and revenue.format_value(2.5) == "$3"
    assert aov.format_value(2.675) == "$2.68"  # as written, though the float is a hair under
    assert aov.format_value(-2.675) == "-$2.68"
    assert replace(aov, currency="BRL", locale="pt_BR").format_value(2055.065) == f"R${NBSP}2.055,07"


def test_a_warehouse_of_its_own_keeps_its_currency_beside_it_not_in_the_checkout(tmp_path, monkeypatch):
    """`KPI_HOME=~/my-shop kpi load lines ... --currency CHF` (the README's own-data steps) wrote CHF
    into the checkout's catalog.yml: the demo warehouse beside it showed francs from then on."""
    from kpi_lib import config

    shipped = (ROOT / "catalog.yml").read_text()
    monkeypatch.setenv("KPI_HOME", str(tmp_path / "my-shop"))
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    config.reset()
    try:
        assert catalog.set_business(currency="chf")["currency"] == "CHF"
        assert (ROOT / "catalog.yml").read_text() == shipped
        assert yaml.safe_load((tmp_path / "my-shop" / "business.yml").read_text()) == {
            "currency": "CHF",
            "locale": "en_US",
        }
        assert business() == {"currency": "CHF", "locale": "en_US"}
        assert kpis.get("revenue").format_compact(1_500_000).startswith("CHF")
    finally:
        monkeypatch.undo()
        config.reset()
    assert business() == {"currency": "USD", "locale": "en_US"}  # the default warehouse: still dollars
