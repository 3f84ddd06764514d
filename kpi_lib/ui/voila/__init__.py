"""The Voila dashboards' components (``dashboards/*.ipynb``). The notebooks stay thin: parameters,
the signed-in user, one constructor.

* :mod:`.runtime`: the page's pulse (:class:`Heartbeat`: when the tab dies, refresh loops stop so
  Voila's culler can reclaim the kernel), :class:`Throttle` (change notifications coalesced into
  paced refreshes), URL parameters (``?kpi=orders&grain=week``), warm-up, the shared look.
* :mod:`.revenue_explorer` and :mod:`.anomaly_review`: the two dashboards.
* :mod:`.template`: the ``kpi`` Voila template (no CDN links) for ``JUPYTER_PATH``.

    >>> from kpi_lib.auth import current_user
    >>> from kpi_lib.ui import voila as ui
    >>> ui.RevenueExplorer(current_user(), kpi="revenue", grain="day")   # doctest: +SKIP
"""

from .anomaly_review import AnomalyReview, incident_png
from .revenue_explorer import RevenueExplorer
from .runtime import Heartbeat, Status, Throttle, url_parameters, warm_up
from .template import TEMPLATE_NAME, voila_template

__all__ = [
    "TEMPLATE_NAME",
    "AnomalyReview",
    "Heartbeat",
    "RevenueExplorer",
    "Status",
    "Throttle",
    "incident_png",
    "url_parameters",
    "voila_template",
    "warm_up",
]
