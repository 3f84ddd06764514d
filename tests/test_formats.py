"""Values written out: strict JSON, money to the cent, ratios as they are."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from kpi_lib import kpis
from kpi_lib.formats import cents, money_columns, to_json


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_has_no_nan_or_infinity_and_numpy_numbers_are_numbers():
    doc = {"a": float("nan"), "b": [np.float64("inf"), np.int64(3)], "c": pd.NaT, "d": date(2011, 12, 9)}
    assert _strict(to_json(doc)) == {"a": None, "b": [None, 3], "c": None, "d": "2011-12-09"}


def test_money_is_rounded_to_the_cent_ratios_keep_their_precision(demo):
    df = pd.DataFrame({"value": [58635.55999999998, 0.1 + 0.2], "change": [0.123456789, None]})
    revenue, rate = kpis.get("revenue"), kpis.get("return_rate")
    out = cents(df, money_columns(revenue))
    assert out["value"].tolist() == [58635.56, 0.3] and out["change"][0] == 0.123456789
    assert to_json(out["value"].tolist()) == "[58635.56, 0.3]"
    assert cents(df, money_columns(rate))["value"][0] == 58635.55999999998  # a ratio: untouched
