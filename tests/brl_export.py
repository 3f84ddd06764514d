"""A Brazilian shop's order-lines export, as its back office writes it (generated, no downloads).

Unlike the 2019 GBP export of tests/ui/test_byod.py it has: Portuguese column names (mapped with
--map), semicolons between fields and decimal commas ("1.234,56"), day-first local times in São
Paulo (UTC-3, with the 2016-17 summer time: clocks went back at midnight on 19 Feb 2017, so
18 Feb 23:30 happened twice), prices in reais, a state (UF) dimension with all 27 values, returns
as negative quantities, a shop closed for four weeks over Christmas and New Year, and a few
malformed rows.

``python tests/brl_export.py out.csv`` writes the file. :func:`write_export` writes it and returns
the good rows as a DataFrame (``at`` in local time, ``revenue`` in reais) to compute the expected
numbers from with pandas.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

UFS = ("SP RJ MG RS PR SC BA PE CE GO DF ES PA AM MA MT MS PB RN AL PI SE RO TO AC AP RR").split()
CATEGORIES = ["Eletrônicos", "Casa", "Moda", "Esporte", "Livros"]
PRICES = [9.9, 29.9, 49.9, 89.9, 149.0, 1299.0, 2349.9]
FIRST = datetime(2016, 3, 1, 9, 0)
LAST = datetime(2017, 6, 30, 18, 45)  # the export's last order (local time)
CLOSED = (datetime(2016, 12, 19), datetime(2017, 1, 16))  # no orders: closed for the holidays
AMBIGUOUS = datetime(2017, 2, 18, 23, 30)  # the hour that happened twice (end of summer time)
MAP = [
    "order_id=Nº Pedido",
    "ordered_at=Data/Hora",
    "customer_id=Cód. Cliente",
    "region=UF",
    "channel=Canal",
    "product_id=SKU",
    "product_name=Descrição",
    "category=Categoria",
    "quantity=Qtde",
    "unit_price=Preço Unit. (R$)",
]
COLUMNS = [m.split("=", 1)[1] for m in MAP]
MALFORMED = [  # (row as written, why it must be rejected)
    ["BR-X1", "31/02/2017 10:00", "C100", "SP", "Site", "SKU-1", "Item 1", "Casa", "1", "29,90"],
    ["BR-X2", "01/03/2017 10:00", "C100", "SP", "Site", "SKU-1", "Item 1", "Casa", "1", "R$ abc"],
    ["", "01/03/2017 10:05", "C101", "RJ", "Site", "SKU-2", "Item 2", "Casa", "2", "9,90"],
]


def _money(v: float) -> str:
    """29.9 -> '29,90', 2349.9 -> '2.349,90' (Brazilian style)."""
    return f"{v:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def write_export(path: Path) -> pd.DataFrame:
    """~3,000 order lines from March 2016 to June 2017; returns the good ones (local ``at``)."""
    rng = random.Random(2016)
    rows, t, n = [], FIRST, 0
    while t <= LAST:
        if CLOSED[0] <= t < CLOSED[1]:
            t = CLOSED[1] + timedelta(hours=9)
        n += 1
        uf = rng.choices(UFS, weights=[40, 15, 12, 6, 6, 5, 4] + [1] * 20)[0]
        channel = rng.choice(["Site", "App", "Marketplace"])
        customer = f"C{rng.randint(100, 900)}"
        returned = rng.random() < 0.04
        for _ in range(rng.randint(1, 3)):
            sku = rng.randint(1, 60)
            qty = rng.randint(1, 4)
            rows.append(
                [
                    f"BR-{n:05d}",
                    f"{t:%d/%m/%Y %H:%M}",
                    customer,
                    uf,
                    channel,
                    f"SKU-{sku}",
                    f"Item {sku}",
                    CATEGORIES[sku % len(CATEGORIES)],
                    str(-qty if returned else qty),
                    _money(PRICES[sku % len(PRICES)]),
                ]
            )
        t += timedelta(minutes=rng.randint(240, 600))
    # the hour that happened twice, and the last order
    rows.append(f"BR-AMB;{AMBIGUOUS:%d/%m/%Y %H:%M};C100;SP;Site;SKU-6;Item 6;Casa;1;1.299,00".split(";"))
    rows.append(f"BR-LAST;{LAST:%d/%m/%Y %H:%M};C100;SP;Site;SKU-5;Item 5;Casa;2;2.349,90".split(";"))
    good = pd.DataFrame(rows, columns=COLUMNS)
    every = rows[:100] + MALFORMED + rows[100:]
    with path.open("w", encoding="utf-8") as f:
        f.write(";".join(COLUMNS) + "\n")
        for r in every:
            f.write(";".join(r) + "\n")
    good["at"] = pd.to_datetime(good["Data/Hora"], format="%d/%m/%Y %H:%M")
    good["qty"] = good["Qtde"].astype(int)
    good["price"] = (
        good["Preço Unit. (R$)"].str.replace(".", "", regex=False).str.replace(",", ".").astype(float)
    )
    good["revenue"] = good["qty"] * good["price"]
    return good


if __name__ == "__main__":
    df = write_export(Path(sys.argv[1]))
    print(f"{len(df) + len(MALFORMED)} rows ({len(MALFORMED)} malformed), {df['Nº Pedido'].nunique()} orders")
