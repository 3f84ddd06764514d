"""Why not an alarm: a quiet series says how close it came, with the numbers of that row."""

from __future__ import annotations

import math

import pytest

from kpi_lib.anomaly import compact, detect, near_miss
from kpi_lib.errors import DetectError

from .conftest import hourly_revenue


def test_a_quiet_series_says_how_close_it_came(revenue):
    out = detect(revenue, label="Revenue in EMEA")
    assert out["is_anomaly"].sum() == 0
    nm = near_miss(out, since="2024-02-01", label="Revenue in EMEA")
    window = out.loc["2024-02-01":]
    assert nm.incidents == 0 and 0 < nm.score < 1
    assert nm.score == pytest.approx(window["score"].max())
    assert nm.at == window["score"].idxmax() and nm.step == window.loc[nm.at, "step"]
    assert nm.sentence.startswith("Revenue in EMEA raised no alarm from 2024-02-01 to 2024-02-11 23:00.")
    assert f"at {nm.score:.0%} of its alarm threshold" in nm.sentence
    assert f"{compact(nm.value)} against the expected {compact(nm.expected)}" in nm.sentence


def test_rows_that_alarmed_are_left_out_and_counted(revenue):
    s = revenue.copy()
    s.iloc[24 * 35 + 9 : 24 * 35 + 20] *= 0.5
    out = detect(s, label="Revenue")
    nm = near_miss(out, label="Revenue")
    assert nm.incidents == 1 and nm.score <= 1.0
    assert out.loc[nm.at, "incident"] == 0
    assert (
        nm.sentence.startswith("Revenue raised 1 alarm from")
        and "Outside its incidents it came closest" in nm.sentence
    )


def test_too_little_history_is_said_plainly():
    nm = near_miss(detect(hourly_revenue(days=2)), label="Orders")
    assert nm.at is None and math.isnan(nm.score)
    assert "not enough history yet" in nm.sentence


def test_wrong_input_is_a_clear_error():
    with pytest.raises(DetectError, match="missing column"):
        near_miss(hourly_revenue(days=2).to_frame("value"))
