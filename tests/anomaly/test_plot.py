"""plot_incidents draws the series, the expected band and the incidents, headless."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from kpi_lib.anomaly import detect, incidents, plot_incidents  # noqa: E402

from .conftest import hourly_revenue  # noqa: E402


def test_plot_incidents_returns_a_figure_with_band_and_incidents(tmp_path):
    s = hourly_revenue(days=30)
    s.iloc[24 * 25 + 10 : 24 * 25 + 14] = 0.0
    result = detect(s)
    found = incidents(result)
    fig = plot_incidents(result, found, title="Revenue in EMEA")
    ax = fig.axes[0]
    assert ax.get_title() == "Revenue in EMEA"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "expected range" in labels and f"incidents ({len(found)})" in labels
    assert "warm-up (not judged)" in labels  # the first week, where no alarm could fire
    fig.savefig(tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 5000
    plain = plot_incidents(s, found)  # a bare series works too
    assert len(plain.axes[0].lines) >= 2
