"""Executive dashboard: KPI tiles, trend with incidents, drill-down breakdown, exports; live.

Served by `kpi serve` (behind login) at /panel/executive. The page is built in kpi_lib.ui.executive;
this file only makes it servable, so the same dashboard can be embedded elsewhere.
"""

from kpi_lib.ui.executive import app

app().servable(title="Executive dashboard")
