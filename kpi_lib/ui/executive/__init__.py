"""The executive dashboard (Panel): KPI tiles, a trend with incidents, a drill-down breakdown.

``dashboards/executive.py`` only serves :func:`app`. Everything on the page comes from
``kpi_lib.kpis.query`` (so from the cache when it can) and updates when the warehouse announces a
new data version (``kpi_lib.stream``): nothing polls.

* :mod:`.dashboard`: one session's state and rendering (:class:`ExecutiveDashboard`);
* :mod:`.live`: the process's live hub and time budget;
* :mod:`.exports`: CSV, XLSX and PNG downloads;
* :mod:`.page`: the page layout and its first paint.
"""

from .dashboard import ExecutiveDashboard
from .live import CHART_REFRESH_S, HUB, LiveBudget, LiveHub
from .page import app

__all__ = ["CHART_REFRESH_S", "HUB", "ExecutiveDashboard", "LiveBudget", "LiveHub", "app"]
