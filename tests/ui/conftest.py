"""Browser tests: a real `kpi serve` (front door + Panel + Voila) and a real headless Chromium.

The fixtures live in tests/conftest.py (tests/security uses the same server); this module keeps the
names the browser tests import."""

from conftest import PASSWORD, USER, chromium_path, login  # noqa: F401
