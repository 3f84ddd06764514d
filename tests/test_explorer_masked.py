"""The Voila revenue explorer for a viewer whose role masks the KPI on screen (kpi_lib.ui.voila)."""

from __future__ import annotations

from kpi_lib.auth.users import User
from kpi_lib.ui import voila as ui


def test_a_masked_kpis_chart_is_hidden_and_the_note_says_why(demo):
    """No empty axes that read as a flat line at $0: the chart goes, the note says the KPI is masked;
    an unmasked KPI brings the chart back with its values."""
    viewer = User("explorer-viewer", "Explorer Viewer", ("viewer",), masked=frozenset({"revenue"}))
    explorer = ui.RevenueExplorer(viewer, kpi="revenue", grain="day", live=False)
    try:
        assert explorer.fig.layout.display == "none"
        assert "Revenue is masked for your role" in explorer.note.value
        assert len(explorer.lines.y) == 0
        explorer.kpi_w.value = "orders"
        explorer.refresh()
        assert explorer.fig.layout.display is None and explorer.note.value == ""
        assert len(explorer.lines.y) > 0
    finally:
        explorer.close()
