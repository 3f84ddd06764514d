"""What the executive page exports: the breakdown as CSV, everything as XLSX, the charts as PNG.
Each export is audited; money comes to the cent and text cells are spreadsheet-safe."""

from __future__ import annotations

import io
import logging

import pandas as pd

from ... import auth, kpis
from ...formats import cents, money_columns, spreadsheet_safe

log = logging.getLogger(__name__)


def audit_export(dash, what: str) -> None:
    auth.audit(
        dash.user.login,
        "export",
        "executive dashboard",
        format=what,
        kpi=dash.kpi,
        where=dash._where(),
        start=str(dash.start),
        end=str(dash.end),
    )


def exported(dash) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The breakdown and the trend as exported: money to the cent, ratios as they are."""
    k = kpis.get(dash.kpi)
    return (
        cents(dash.breakdown_df, money_columns(k, [k.label])),
        cents(dash.trend_df, money_columns(k)),
    )


def csv(dash) -> io.BytesIO:
    audit_export(dash, "csv")
    return io.BytesIO(spreadsheet_safe(exported(dash)[0]).to_csv(index=False).encode())


def xlsx(dash) -> io.BytesIO:
    audit_export(dash, "xlsx")
    breakdown, trend = exported(dash)
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        spreadsheet_safe(breakdown).to_excel(xl, sheet_name="Breakdown", index=False)
        trend.to_excel(xl, sheet_name="Trend", index=False)
        filters = pd.DataFrame({"filter": list(dash._where()), "value": list(dash._where().values())})
        spreadsheet_safe(filters).to_excel(xl, sheet_name="Filters", index=False)
    buf.seek(0)
    return buf


def png(dash) -> io.BytesIO:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    audit_export(dash, "png")
    k = kpis.get(dash.kpi)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), dpi=110)
    if not dash.trend_df.empty:
        ax1.plot(
            dash.trend_df["period"],
            dash.trend_df["previous"],
            color="#9aa7b4",
            ls="--",
            label="Previous period",
        )
        ax1.plot(dash.trend_df["period"], dash.trend_df["value"], color="#4c78a8", lw=2, label="This period")
        ax1.legend(loc="upper left")
    ax1.set_title(f"{k.label} · {dash.start} → {dash.end}")
    ax1.grid(alpha=0.3)
    if not dash.bars_df.empty:
        ax2.bar(dash.bars_df["label"].astype(str), dash.bars_df["value"], color="#4c78a8")
        ax2.tick_params(axis="x", rotation=30)
    ax2.set_title(f"{k.label} by {dash.bars_level or '-'}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return buf
