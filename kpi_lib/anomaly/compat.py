"""Make ADTK 0.6.2 (last released 2020) run on the pinned pandas 2.3 / numpy 2 / matplotlib 3.11.

Every patch ADTK needs lives here and nowhere else, so it can be deleted in one go the day ADTK is
replaced. :func:`apply` is idempotent and runs when ``kpi_lib.anomaly`` is imported. Each patch is
added only when the attribute is missing, so on an older stack nothing changes.

What breaks without it (measured on the pinned stack, see tests/anomaly/test_compat.py):

* ``DataFrame.append`` / ``Series.append`` were removed in pandas 2.0; ADTK calls them in
  ``Pipenet.summary`` and in ``DoubleRollingAggregate`` with time-string windows and ``center=False``.
* ``Series.iteritems`` was removed in pandas 2.0; ``adtk.visualization.plot`` and
  ``adtk.data.validate_events`` call it.
* ``Axes.plot_date`` was removed in matplotlib 3.9; ``adtk.visualization.plot`` draws with it.
* The matplotlib style ``seaborn-whitegrid`` was renamed ``seaborn-v0_8-whitegrid``;
  ``adtk.visualization.plot`` asks for the old name.
* ADTK writes NaN into boolean Series (detectors and aggregators), which pandas 2.3 allows with a
  ``FutureWarning`` per call ("Setting an item of incompatible dtype"). The result is right on
  pandas 2.x, so the warning is silenced for ADTK's own modules only. pandas 3 turns it into an
  error, which is why pandas is pinned below 3.
"""

from __future__ import annotations

import logging
import warnings

import pandas as pd

log = logging.getLogger(__name__)

_applied = False


def _frame_append(
    self: pd.DataFrame, other, ignore_index: bool = False, verify_integrity: bool = False, sort: bool = False
) -> pd.DataFrame:
    """pandas<2 ``DataFrame.append``, rebuilt on ``pd.concat``."""
    if isinstance(other, dict):
        other = pd.DataFrame([other])
    elif isinstance(other, pd.Series):
        other = other.to_frame().T
    elif isinstance(other, list) and other and not isinstance(other[0], (pd.DataFrame, pd.Series)):
        other = pd.DataFrame(other)
    parts = [self, *other] if isinstance(other, list) else [self, other]
    return pd.concat(parts, ignore_index=ignore_index, verify_integrity=verify_integrity, sort=sort)


def _series_append(
    self: pd.Series, to_append, ignore_index: bool = False, verify_integrity: bool = False
) -> pd.Series:
    """pandas<2 ``Series.append``, rebuilt on ``pd.concat``."""
    parts = [self, *to_append] if isinstance(to_append, (list, tuple)) else [self, to_append]
    return pd.concat(parts, ignore_index=ignore_index, verify_integrity=verify_integrity)


def _style_alias() -> None:
    import matplotlib.style as mstyle

    library = mstyle.library
    for old, new in (("seaborn-whitegrid", "seaborn-v0_8-whitegrid"), ("seaborn", "seaborn-v0_8")):
        if old not in library and new in library:
            library[old] = library[new]


def _plot_date(self, x, y, fmt: str = "o", tz=None, xdate: bool = True, ydate: bool = False, **kwargs):
    """matplotlib<3.9 ``Axes.plot_date``: a plain ``plot`` with date axes."""
    if xdate:
        self.xaxis_date(tz)
    if ydate:
        self.yaxis_date(tz)
    return self.plot(x, y, fmt, **kwargs)


def _matplotlib_shims() -> None:
    import matplotlib.axes

    _style_alias()
    if not hasattr(matplotlib.axes.Axes, "plot_date"):
        matplotlib.axes.Axes.plot_date = _plot_date


def apply() -> None:
    """Install the shims (idempotent)."""
    global _applied
    if _applied:
        return
    if not hasattr(pd.DataFrame, "append"):
        pd.DataFrame.append = _frame_append
    if not hasattr(pd.Series, "append"):
        pd.Series.append = _series_append
    if not hasattr(pd.Series, "iteritems"):
        pd.Series.iteritems = pd.Series.items
    if not hasattr(pd.DataFrame, "iteritems"):
        pd.DataFrame.iteritems = pd.DataFrame.items
    try:
        _matplotlib_shims()
    except ImportError:  # matplotlib is optional for detection itself
        log.debug("matplotlib not importable; skipped the ADTK style alias")
    warnings.filterwarnings(
        "ignore", message=".*incompatible dtype.*", category=FutureWarning, module=r"adtk(\.|$)"
    )
    _applied = True
