"""Open ``catalog.yml`` (an intake 2 catalog) with the warehouse reachable and its URL set.

intake 2 gives an unhelpful ``AttributeError`` when ``DATABASE_URL`` is unset, and
``intake.open_catalog`` silently returns an empty catalog for a version-2 file, so everything goes
through here. The parsed YAML is also the semantic layer's source: :func:`metadata` returns it.

    >>> from kpi_lib import catalog
    >>> cat = catalog.open_catalog()                          # doctest: +SKIP
    >>> catalog.read("sales_daily", region="Europe").head()   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from . import scope as row_scope
from . import warehouse
from .config import PROJECT_ROOT, settings
from .errors import CatalogError, KpiError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_yaml_cache: dict[tuple[Path, Path | None], tuple[tuple, dict]] = {}


def catalog_path() -> Path:
    path = settings().catalog_path
    if not path.is_file():
        raise CatalogError(f"No catalog at {path}. Set KPI_CATALOG to the path of catalog.yml.")
    return path


def own_business_path() -> Path | None:
    """Where a warehouse of its own records its currency and locale, or None where catalog.yml does.

    ``KPI_HOME=~/my-shop kpi load lines ... --currency CHF`` wrote CHF into the checkout's catalog.yml,
    so the demo warehouse beside it showed francs too. A home other than the default one, on the
    shipped catalog, keeps them in ``$KPI_HOME/business.yml`` instead; with ``KPI_CATALOG`` set, that
    catalog is the user's own and holds them as before."""
    s = settings()
    if "catalog_path" in s.model_fields_set or s.home == (PROJECT_ROOT / "var").resolve():
        return None
    return s.home / "business.yml"


def _own_business() -> tuple[float, dict[str, Any]] | None:
    path = own_business_path()
    if path is None or not path.is_file():
        return None
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(
            f"{path} is not valid YAML: {exc}; delete it and load with --currency again."
        ) from exc
    return path.stat().st_mtime, dict(doc)


def metadata(path: Path | None = None) -> dict[str, Any]:
    """The parsed catalog.yml (cached until the file changes), with a warehouse's own currency and
    locale (:func:`own_business_path`) in ``metadata.business``. Needs no database."""
    own = _own_business() if path is None else None
    path = path or catalog_path()
    mtime = (path.stat().st_mtime, own[0] if own else None)
    key = (path, own_business_path() if own else None)  # each warehouse's own, in one process
    with _lock:
        hit = _yaml_cache.get(key)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("version") != 2 or "entries" not in doc:
            raise CatalogError(f"{path} is not an intake 2 catalog (expected 'version: 2' and 'entries:').")
        if own:
            business = {**((doc.get("metadata") or {}).get("business") or {}), **own[1]}
            doc["metadata"] = {**(doc.get("metadata") or {}), "business": business}
        _yaml_cache[key] = (mtime, doc)
        return doc


def entry_names() -> list[str]:
    return list(metadata()["entries"])


def entry_metadata(name: str) -> dict[str, Any]:
    entries = metadata()["entries"]
    if name not in entries:
        raise CatalogError(f"No catalog entry named {name!r}. Entries: {', '.join(entries)}.")
    return entries[name].get("metadata", {})


def entry_sql(name: str) -> str:
    """The SQL text behind an entry (for showing provenance)."""
    doc = metadata()
    entry_metadata(name)
    ref = doc["entries"][name]["kwargs"]["args"][0]
    data_name = ref.removeprefix("{data(").removesuffix(")}")
    return doc["data"][data_name]["kwargs"]["query"]


def _export_url() -> None:
    """Make ``{env(KPI_CATALOG_URL)}`` in the catalog resolve to the running warehouse.

    The catalog has its own variable, so this never changes what ``DATABASE_URL`` means to the
    settings. A reader with a row scope (``KPI_USER`` naming a scoped user) reads as the reader
    role with that scope: the catalog then shows them their rows only, as every page does."""
    current = row_scope.current()
    if current.everything:
        url = warehouse.database_url().render_as_string(hide_password=False)
    else:
        url = warehouse.reader_libpq_url(current).replace("postgresql://", "postgresql+psycopg://", 1)
    os.environ["KPI_CATALOG_URL"] = url


def open_catalog(path: Path | None = None):
    """The intake catalog, with the warehouse up and ``KPI_CATALOG_URL`` pointing at it."""
    import intake

    path = path or catalog_path()
    metadata(path)  # validates the file with a clear message
    try:
        _export_url()
        warehouse.engine()
    except KpiError:
        raise
    except Exception as exc:
        raise CatalogError(
            f"The warehouse is not reachable ({exc}). Run `kpi init`, or set DATABASE_URL to your server."
        ) from exc
    try:
        return intake.from_yaml_file(str(path))
    except Exception as exc:
        raise CatalogError(f"intake could not load {path}: {exc}") from exc


def parameters(name: str) -> dict[str, Any]:
    """An entry's user parameters and their defaults."""
    entry = metadata()["entries"].get(name)
    if entry is None:
        raise CatalogError(f"No catalog entry named {name!r}. Entries: {', '.join(entry_names())}.")
    return {k: v.get("default") for k, v in (entry.get("user_parameters") or {}).items()}


def read(name: str, **params: Any) -> pd.DataFrame:
    """Read an entry with its defaults for any parameter not given. Values are bound, not formatted."""
    defaults = parameters(name)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise CatalogError(
            f"Entry {name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(defaults) or 'none'}."
        )
    values = {**defaults, **{k: (None if v is None else str(v)) for k, v in params.items()}}
    cat = open_catalog()
    reader = cat[name]
    return reader.read(params=values) if values else reader.read()


def locale_hint(business: dict) -> str | None:
    """A line for the person who set a currency whose countries write numbers otherwise than the
    recorded locale (BRL with en_US), naming locales to pass; None when they already agree."""
    from babel import Locale, UnknownLocaleError, numbers
    from babel.core import get_global

    currency, locale = business["currency"], Locale.parse(business.get("locale") or "en_US")
    if locale.territory and numbers.get_territory_currencies(locale.territory)[:1] == [currency]:
        return None
    places = [
        t for t in get_global("territory_currencies") if numbers.get_territory_currencies(t)[:1] == [currency]
    ]
    spoken = get_global("territory_languages")
    same_language, others = [], []
    for t in places:
        for tag in (f"{locale.language}_{t}", f"und_{t}"):
            try:
                found = Locale.parse(tag)
            except (ValueError, UnknownLocaleError):
                continue
            if found.language == locale.language:  # the currency's home (GB for GBP), then where the
                how = spoken.get(t, {}).get(found.language, {})  # language is official and most spoken
                rank = (
                    t == currency[:2],
                    how.get("official_status") is not None,
                    how.get("population_percent", 0),
                )
                same_language.append((rank, str(found)))
            else:
                others.append(str(found))
            break
    same_language.sort(key=lambda r: r[0], reverse=True)
    picks = list(dict.fromkeys([tag for _, tag in same_language] + others))[:3]
    if not picks:
        return None
    sample = numbers.format_decimal(1234.56, locale=locale)
    return (
        f"numbers are written the {locale} way ({sample}); to write them as where {currency} is used, "
        f"run `kpi init --locale {picks[0]}`" + (f" (or {', '.join(picks[1:])})" if picks[1:] else "")
    )


_BUSINESS_LINE = re.compile(r"^(?P<indent>[ \t]+)business:[^\n]*$", re.MULTILINE)


def set_business(currency: str | None = None, locale: str | None = None, path: Path | None = None) -> dict:
    """Record the business's currency and/or locale in catalog.yml ``metadata.business``.

    The file is written by hand (comments and anchors matter), so only that one line is rewritten.
    Returns the business settings now in force."""
    from babel import Locale, UnknownLocaleError, numbers

    own = own_business_path() if path is None else None
    doc = metadata(path)
    path = path or catalog_path()
    now = dict((doc.get("metadata") or {}).get("business") or {"currency": "USD", "locale": "en_US"})
    if currency:
        currency = currency.strip().upper()
        if not numbers.is_currency(currency):
            raise CatalogError(
                f"{currency!r} is not a currency code; use an ISO 4217 code such as GBP or EUR."
            )
        now["currency"] = currency
    if locale:
        try:
            Locale.parse(locale)
        except (ValueError, UnknownLocaleError) as exc:
            raise CatalogError(f"{locale!r} is not a locale; use one such as en_GB, fr_FR or de_DE.") from exc
        now["locale"] = locale
    if own is not None:  # a warehouse of its own: its file, never the checkout's catalog
        own.parent.mkdir(parents=True, exist_ok=True)
        own.write_text(yaml.safe_dump(now, sort_keys=False, allow_unicode=True))
        with _lock:
            _yaml_cache.clear()
        return now
    text = path.read_text()
    others = "".join(f", {k}: {v}" for k, v in now.items() if k not in ("currency", "locale"))
    line = f"business: {{currency: {now['currency']}, locale: {now.get('locale', 'en_US')}{others}}}"
    if _BUSINESS_LINE.search(text):
        text = _BUSINESS_LINE.sub(lambda m: m.group("indent") + line, text, count=1)
    elif re.search(r"^metadata:[ \t]*$", text, re.MULTILINE):
        text = re.sub(r"^metadata:[ \t]*$", "metadata:\n  " + line, text, count=1, flags=re.MULTILINE)
    else:
        raise CatalogError(f"{path} has no top-level 'metadata:' section to record the currency in.")
    path.write_text(text)
    with _lock:
        _yaml_cache.clear()
    return now
