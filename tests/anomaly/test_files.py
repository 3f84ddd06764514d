"""detect_file and `python -m kpi_lib.anomaly`: the file contract and its errors."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from kpi_lib.anomaly import detect_file
from kpi_lib.errors import DetectError

from .conftest import hourly_revenue


@pytest.fixture
def csv(tmp_path):
    s = hourly_revenue(days=30)
    s.iloc[24 * 25 + 10 : 24 * 25 + 14] = 0.0
    df = pd.DataFrame(
        {"hour": s.index.strftime("%Y-%m-%d %H:%M:%S"), "region": "EMEA", "revenue": s.to_numpy()}
    )
    df = pd.concat([df.iloc[:100], df.iloc[[99]], df.iloc[100:]])  # a duplicated row stays
    df.iloc[[200, 201]] = df.iloc[[201, 200]].to_numpy()  # and rows out of order stay out of order
    path = tmp_path / "revenue.csv"
    df.to_csv(path, index=False)
    return path, df


def test_detect_file_writes_every_row_in_order_with_the_columns(csv, tmp_path):
    path, df = csv
    out_path = tmp_path / "out" / "flagged.csv"
    detect_file(path, out_path, time_column="hour", value_column="revenue")
    out = pd.read_csv(out_path, keep_default_na=False)
    assert list(out.columns) == [
        "hour",
        "region",
        "revenue",
        "is_anomaly",
        "score",
        "severity",
        "explanation",
        "rule",
    ]
    assert out["hour"].tolist() == df["hour"].tolist()
    assert out["revenue"].round(6).tolist() == df["revenue"].round(6).tolist()
    assert set(out["is_anomaly"].unique()) <= {0, 1} and out["is_anomaly"].sum() == 1
    onset = out[out["is_anomaly"] == 1].iloc[0]
    assert onset["hour"] == "2024-01-26 10:00:00"
    # the column a person chose is the subject of the sentence
    assert onset["explanation"].startswith("Revenue was 100% below the expected")
    assert onset["severity"] in ("medium", "high")
    assert (out.loc[out["is_anomaly"] == 0, "explanation"] == "").all()
    assert (
        onset["rule"] in ("spike", "shift", "level_shift", "outage")
        and (out.loc[out["is_anomaly"] == 0, "rule"] == "").all()
    )


def test_wrong_column_lists_the_available_ones(csv, tmp_path):
    path, _ = csv
    with pytest.raises(DetectError, match=r"no column 'value'\. Available columns: hour, region, revenue"):
        detect_file(path, tmp_path / "o.csv", time_column="hour")
    with pytest.raises(DetectError, match="no parseable timestamps"):
        detect_file(path, tmp_path / "o.csv", time_column="region", value_column="revenue")
    with pytest.raises(DetectError, match="has no numbers"):
        detect_file(path, tmp_path / "o.csv", time_column="hour", value_column="region")


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(DetectError, match="no such file"):
        detect_file(tmp_path / "nope.csv", tmp_path / "o.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DetectError, match="cannot read it as CSV"):
        detect_file(empty, tmp_path / "o.csv")


def test_module_entry_point(csv, tmp_path):
    path, _ = csv
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "kpi_lib.anomaly",
            str(path),
            str(tmp_path / "o.csv"),
            "--time-column",
            "hour",
            "--value-column",
            "revenue",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert pd.read_csv(tmp_path / "o.csv")["is_anomaly"].sum() == 1
    bad = subprocess.run(
        [sys.executable, "-m", "kpi_lib.anomaly", str(path), str(tmp_path / "o.csv")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Available columns: hour, region, revenue" in bad.stderr


def test_a_day_first_export_is_read_in_its_own_day_order(csv, tmp_path):
    """A German export (31.01.2024 10:00) scores exactly like the same rows with ISO times: its
    dates are not read month first where the day is at most 12 (2 January as 1 February)."""
    path, df = csv
    detect_file(path, tmp_path / "iso.csv", time_column="hour", value_column="revenue")
    german = df.assign(hour=pd.to_datetime(df["hour"]).dt.strftime("%d.%m.%Y %H:%M"))
    german.to_csv(tmp_path / "umsatz.csv", index=False)
    detect_file(tmp_path / "umsatz.csv", tmp_path / "de.csv", time_column="hour", value_column="revenue")
    iso, de = pd.read_csv(tmp_path / "iso.csv"), pd.read_csv(tmp_path / "de.csv")
    assert de["score"].tolist() == iso["score"].tolist()
    assert de.loc[de["is_anomaly"] == 1, "hour"].tolist() == ["26.01.2024 10:00"]
    # a contradiction is named, with the value that shows it
    with pytest.raises(DetectError, match=r"said to be written month first, but '13\.01\.2024 00:00'"):
        detect_file(
            tmp_path / "umsatz.csv",
            tmp_path / "x.csv",
            time_column="hour",
            value_column="revenue",
            dayfirst=False,
        )
