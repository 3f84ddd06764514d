"""Bring your own data: a messy export loads its good rows, rejects the rest with reasons, loses nothing."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from kpi_lib import kpis, loader
from kpi_lib.errors import LoadError

MESSY = textwrap.dedent("""\
    InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
    536365.0,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
    536365.0,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom
    536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,,United Kingdom
    C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527.0,United Kingdom
    536367,84879,,32,12/1/2010 8:34,1.69,13047,France
    536368,22960,JAM MAKING SET,3,not a date,4.25,13047,France
    536369,22913,RED COAT RACK,2,12/1/2010 8:35,abc,13047,France
    536370,22086,PAPER CHAIN KIT,1,12/1/2010 8:45,-11062.06,,United Kingdom
    ,22900,SET 2 TEA TOWELS,4,12/1/2010 8:45,2.95,12583,France
    536371,22914,BLUE COAT RACK,2,2010-12-01T09:00:00+01:00,4.95,12583,France
""")


@pytest.fixture()
def messy_csv(tmp_path):
    path = tmp_path / "online_retail.csv"
    path.write_text(MESSY)
    return path


def test_messy_export_loads_good_rows_and_rejects_bad_ones(demo, db, messy_csv):
    summary = loader.load_lines_file(messy_csv)
    assert summary.rows == 10
    assert summary.loaded + summary.rejected == summary.rows
    assert (summary.loaded, summary.rejected) == (6, 4)
    assert summary.mapping["order_id"] == "InvoiceNo" and summary.mapping["region"] == "Country"

    rejects = db.execute(
        "select row_number, reason from bronze.rejects where source = %s order by row_number",
        [f"file:{messy_csv.name}"],
    ).fetchall()
    assert [r[0] for r in rejects] == [7, 8, 9, 10]
    reasons = " | ".join(r[1] for r in rejects)
    assert "ordered_at 'not a date' is not a date/time" in reasons
    assert "unit_price 'abc' is not a number" in reasons
    assert "unit_price -11062.06 is negative" in reasons
    assert "order_id is empty" in reasons

    # float ids lost their '.0'; the guest order has no customer; blanks got defaults
    orders = dict(
        db.execute(
            "select order_id, customer_id from silver.orders where source = %s", [f"file:{messy_csv.name}"]
        ).fetchall()
    )
    assert orders == {
        "536365": "17850",
        "536366": None,
        "C536379": "14527",
        "536367": "13047",
        "536371": "12583",
    }
    name = db.execute("select product_name from silver.order_lines where order_id = '536367'").fetchone()[0]
    assert name == "84879"
    # the cancellation is a return: negative quantity, an order without a sale
    assert db.execute("select has_sale, status from silver.orders where order_id = 'C536379'").fetchone() == (
        False,
        "returned",
    )
    # an explicit offset is honoured (09:00+01:00 is 08:00 UTC)
    at = db.execute("select ordered_at from silver.orders where order_id = '536371'").fetchone()[0]
    assert at.isoformat() == "2010-12-01T08:00:00+00:00"


def test_gold_reflects_the_loaded_file(demo, messy_csv):
    loader.load_lines_file(messy_csv)
    r = kpis.query("revenue", "total", start="2010-12-01", end="2010-12-02", by=["region"])
    got = dict(zip(r.df["region"], r.df["value"], strict=True))
    uk = 6 * 2.55 + 6 * 3.39 + 6 * 1.85 - 27.50
    fr = 32 * 1.69 + 2 * 4.95
    assert got == pytest.approx({"United Kingdom": uk, "France": fr})
    orders = kpis.query("orders", "total", start="2010-12-01", end="2010-12-02").value
    assert orders == 4  # the cancellation is not an order


def test_reloading_a_file_replaces_its_orders(demo, db, messy_csv):
    loader.load_lines_file(messy_csv)
    again = loader.load_lines_file(messy_csv)
    assert again.replaced_orders == 5
    n = db.execute(
        "select count(*) from silver.order_lines where order_id in ('536365', '536366')"
    ).fetchone()[0]
    assert n == 3


def test_explicit_mapping_and_parquet(demo, tmp_path):
    df = pd.DataFrame(
        {
            "id": [918273.0, 918273.0, 918274.0],  # ids and a day no other test's file uses
            "when": ["2003-02-11 10:00"] * 3,
            "n": [1, 2, 3],
            "p": [10.0, 20.0, 5.0],
            "cat": ["Tools", "Tools", ""],
        }
    )
    path = tmp_path / "export.parquet"
    df.to_parquet(path)
    summary = loader.load_lines_file(
        path, {"order_id": "id", "ordered_at": "when", "quantity": "n", "unit_price": "p", "category": "cat"}
    )
    assert (summary.loaded, summary.rejected) == (3, 0)
    r = kpis.query("revenue", "total", start="2003-02-11", end="2003-02-12", by=["category"])
    assert dict(zip(r.df["category"], r.df["value"], strict=True)) == {"Tools": 50.0, "Unknown": 15.0}


def test_missing_required_column_names_the_columns(demo, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(
        LoadError, match=r"Cannot find column\(s\) for order_id, ordered_at, quantity, unit_price.*a, b"
    ):
        loader.load_lines_file(path)
    with pytest.raises(LoadError, match="not in the file"):
        loader.load_lines_file(path, {"order_id": "zzz"})


def test_decimal_commas_are_decimals_never_thousands(tmp_path):
    """A Brazilian/European export: ';' between fields, '29,90' is R$29.90 (not 2990), '1.234,56' is
    1234.56; a '1.5' among decimal commas is ambiguous, so it is rejected rather than read as 15."""
    path = tmp_path / "vendas.csv"
    path.write_text(
        "Pedido;Data;Qtde;Preço\n"
        "A1;01/03/2017 10:00;2;29,90\n"
        "A2;01/03/2017 11:00;1;1.234,56\n"
        "A3;01/03/2017 12:00;-1;R$ 9,90\n"
        "A4;01/03/2017 13:00;1;1.5\n"
    )
    raw = loader.read_table(path)
    assert list(raw.columns) == ["Pedido", "Data", "Qtde", "Preço"]
    mapping = {"order_id": "Pedido", "ordered_at": "Data", "quantity": "Qtde", "unit_price": "Preço"}
    good, rejects = loader.validate_lines(raw, mapping, "UTC", dayfirst=True)
    assert list(good["unit_price"]) == [29.9, 1234.56, 9.9]
    assert list(good["quantity"]) == [2, 1, -1]
    assert list(rejects["_reason"]) == ["unit_price '1.5' is not a number"]


def test_point_decimals_with_thousands_commas_still_read_as_before():
    raw = pd.DataFrame(
        {"o": ["1", "2", "3", "4"], "t": ["2010-12-01 08:26"] * 4, "q": ["1", "1", "1", "1"]}
        | {"p": ["1,234.50", "$12", "2.95", "29,90"]}
    )
    mapping = {"order_id": "o", "ordered_at": "t", "quantity": "q", "unit_price": "p"}
    good, rejects = loader.validate_lines(raw, mapping, "UTC")
    # '29,90' in a column of point decimals is not 2990: it is rejected
    assert list(good["unit_price"]) == [1234.5, 12.0, 2.95]
    assert list(rejects["_reason"]) == ["unit_price '29,90' is not a number"]


def test_the_hour_that_happens_twice_is_a_time_not_a_reject():
    """São Paulo's clocks went back at midnight on 19 Feb 2017: 18 Feb 23:30 happened twice. The
    first (summer time, UTC-2) is taken, as for every other wall time that day."""
    raw = pd.DataFrame({"o": ["1", "2"], "t": ["18/02/2017 22:30", "18/02/2017 23:30"], "q": ["1", "1"]})
    raw["p"] = ["10", "10"]
    mapping = {"order_id": "o", "ordered_at": "t", "quantity": "q", "unit_price": "p"}
    good, rejects = loader.validate_lines(raw, mapping, "America/Sao_Paulo", dayfirst=True)
    assert rejects.empty
    assert [t.strftime("%Y-%m-%d %H:%M") for t in good["ordered_at"]] == [
        "2017-02-19 00:30",
        "2017-02-19 01:30",
    ]


def test_the_hour_that_never_happens_is_kept_on_its_day_not_rejected():
    """Zurich's clocks went forward at 02:00 on 31 Mar 2019: a till set by hand still wrote 02:30.
    It is kept, at 03:00 summer time (01:00 UTC, the first minute after the gap), on its own day."""
    raw = pd.DataFrame(
        {
            "o": ["1", "2", "3"],
            "t": ["31.03.2019 01:30", "31.03.2019 02:30", "31.03.2019 03:30"],
            "q": ["1"] * 3,
        }
    )
    raw["p"] = ["10"] * 3
    mapping = {"order_id": "o", "ordered_at": "t", "quantity": "q", "unit_price": "p"}
    good, rejects = loader.validate_lines(raw, mapping, "Europe/Zurich", dayfirst=True)
    assert rejects.empty
    assert [t.strftime("%Y-%m-%d %H:%M") for t in good["ordered_at"]] == [
        "2019-03-31 00:30",
        "2019-03-31 01:00",
        "2019-03-31 01:30",
    ]


def test_day_first_dates_load_on_their_own_day_without_the_option():
    """A British export without --dayfirst: 02/01/2011 is 2 January (13/01/2011 says so), not
    1 February; naming the wrong order is an error rather than a silent swap."""
    raw = pd.DataFrame({"o": ["1", "2"], "t": ["02/01/2011 08:26", "13/01/2011 09:00"], "q": ["1", "1"]})
    raw["p"] = ["10", "10"]
    mapping = {"order_id": "o", "ordered_at": "t", "quantity": "q", "unit_price": "p"}
    good, rejects = loader.validate_lines(raw, mapping, "UTC")
    assert rejects.empty
    assert [t.strftime("%Y-%m-%d %H:%M") for t in good["ordered_at"]] == [
        "2011-01-02 08:26",
        "2011-01-13 09:00",
    ]
    with pytest.raises(LoadError, match=r"'t' was said to be written month first, but '13/01/2011 09:00'"):
        loader.validate_lines(raw, mapping, "UTC", dayfirst=False)


def test_the_simulators_orders_are_the_demos_and_a_file_is_not(db):
    """`make demo` serves with the live simulator; a second `make demo` must start over, while
    a user's own orders stop it (they would be destroyed)."""
    before = loader.foreign_orders(db)
    with db.transaction(force_rollback=True):
        for oid, source in (("sim-1", "simulator"), ("sim-2", "simulator")):
            db.execute(
                "insert into silver.orders (order_id, ordered_at, source) values (%s, now(), %s)",
                [oid, source],
            )
        assert loader.foreign_orders(db) == before
        db.execute(
            "insert into silver.orders (order_id, ordered_at, source) values ('f-1', now(), 'file:shop.csv')"
        )
        assert loader.foreign_orders(db) == before + 1


def test_an_excel_export_loads_like_its_csv(tmp_path):
    """The first sheet of an .xlsx: typed dates and prices come out unambiguous (no day order or
    decimal mark to guess), and ids keep their form."""
    sheet = pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536365", "C536379"],
            "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 08:26", "2010-12-02 09:41"]),
            "Quantity": [6, 2, -1],
            "UnitPrice": [2.55, 3.39, 27.5],
            "StockCode": ["85123A", "71053", "D"],
        }
    )
    sheet.to_excel(book := tmp_path / "retail.xlsx", index=False)
    raw = loader.read_table(book)
    mapping = loader.resolve_mapping(list(raw.columns))
    good, rejects = loader.validate_lines(raw, mapping, "UTC")
    assert rejects.empty and list(good["order_id"]) == ["536365", "536365", "C536379"]
    assert list(good["unit_price"]) == [2.55, 3.39, 27.5] and list(good["quantity"]) == [6, 2, -1]
    assert [t.strftime("%Y-%m-%d %H:%M") for t in good["ordered_at"]] == [
        "2010-12-01 08:26",
        "2010-12-01 08:26",
        "2010-12-02 09:41",
    ]


def test_a_discount_written_with_a_percent_sign_is_that_fraction():
    """A Swiss export's "10%" was rejected as "not a number", and its file loaded nothing."""
    raw = pd.DataFrame(
        {
            "order_id": ["1", "2", "3", "4"],
            "ordered_at": ["2019-05-02 10:00"] * 4,
            "quantity": ["1"] * 4,
            "unit_price": ["100"] * 4,
            "discount": ["10%", "0.25", "", "15"],
        }
    )
    good, rejects = loader.validate_lines(raw, loader.resolve_mapping(list(raw.columns), {}), "UTC", None)
    assert list(good["discount"]) == pytest.approx([0.10, 0.25, 0.0])
    assert rejects["_reason"].tolist() == [
        "discount 15 is not a fraction between 0 and 1 (write 15% as 0.15)"
    ]


def test_a_discount_column_of_percentages_without_the_sign_is_read_as_such():
    """An export's discount column said "10", "25", "12.5": every one was rejected as "not a fraction"
    and the file loaded without its discounts. A column no value of which reads as a fraction, and
    that runs above 1, is percentages; the load says it read it so."""
    raw = pd.DataFrame(
        {
            "order_id": ["1", "2", "3", "4", "5"],
            "ordered_at": ["2019-05-02 10:00"] * 5,
            "quantity": ["1"] * 5,
            "unit_price": ["100"] * 5,
            "discount": ["10", "0", "", "25", "12.5"],
        }
    )
    mapping = loader.resolve_mapping(list(raw.columns), {})
    good, rejects = loader.validate_lines(raw, mapping, "UTC", None)
    assert rejects.empty and list(good["discount"]) == pytest.approx([0.10, 0.0, 0.0, 0.25, 0.125])
    assert good.attrs["notes"] == ["discount read as percentages without their sign: 25 is 25% (0.25)"]
    fractions = raw.assign(discount=["0.1", "0", "", "0.25", "1"])  # fractions stay fractions
    good, rejects = loader.validate_lines(fractions, mapping, "UTC", None)
    assert rejects.empty and list(good["discount"]) == pytest.approx([0.1, 0.0, 0.0, 0.25, 1.0])
    assert good.attrs["notes"] == []
