"""kpi_lib.exports: the day order of an export's dates, read from its own values."""

from __future__ import annotations

import pandas as pd
import pytest

from kpi_lib.exports import day_first, resolve_day_first


def test_the_order_is_read_from_a_value_only_one_order_explains():
    assert day_first(pd.Series(["02.01.2016", "13.01.2016"])) is True
    assert day_first(pd.Series(["01/02/2016 10:00", "01/13/2016 10:00"])) is False
    assert day_first(pd.Series(["31-01-25", "01-02-25"])) is True  # two-digit years


def test_iso_and_ambiguous_columns_do_not_tell():
    assert day_first(pd.Series(["2016-01-13", "2016-01-02 10:00:00+01:00"])) is None
    assert day_first(pd.Series(["01.02.2016", "12.11.2016", ""])) is None
    assert resolve_day_first(pd.Series(["01.02.2016"])) is False  # pandas' default
    assert resolve_day_first(pd.Series(["01.02.2016"]), given=True) is True


def test_a_column_written_both_ways_is_an_error_with_examples():
    with pytest.raises(
        ValueError,
        match=r"mixes day-first dates \(2, e\.g\. '13/01/2016'\) and month-first dates \(1, e\.g\. '01/31/2016'\)",
    ):
        day_first(pd.Series(["13/01/2016", "01/31/2016", "14/01/2016", "01/01/2016"]))


def test_a_choice_the_values_contradict_is_an_error():
    with pytest.raises(
        ValueError, match=r"said to be written day first, but '01/31/2016' can only be month first"
    ):
        resolve_day_first(pd.Series(["01/01/2016", "01/31/2016"]), given=True)
    assert resolve_day_first(pd.Series(["01/01/2016", "01/31/2016"]), given=False) is False
