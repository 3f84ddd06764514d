"""The front door's copies of Panel's and Bokeh's static files (kpi_lib.web.static_copies)."""

from __future__ import annotations

import gzip

from kpi_lib.web.static_copies import StaticCopies

SCRIPT = b"/* bokeh */ " + b"console.log('a line of a big script');\n" * 200
HEADERS = [
    ("Content-Type", "application/javascript"),
    ("Etag", '"abc123"'),
    ("Cache-Control", "max-age=315360000"),
    ("Set-Cookie", "someone=else"),
    ("Server", "TornadoServer/6"),
]


def test_only_get_requests_for_panels_static_files_are_kept():
    assert StaticCopies.applies("GET", "/panel/static/js/bokeh.min.js")
    assert StaticCopies.applies("GET", "/panel/static/extensions/panel/panel.min.js")
    assert not StaticCopies.applies("GET", "/panel/executive")  # a page: a session each time
    assert not StaticCopies.applies("POST", "/panel/static/js/bokeh.min.js")
    assert not StaticCopies.applies("GET", "/voila/static/x.js")


def test_a_kept_file_answers_with_its_bytes_gzipped_and_only_its_own_headers():
    copies = StaticCopies()
    uri = "/panel/static/js/bokeh.min.js?v=1"
    copies.keep(uri, HEADERS, SCRIPT)
    copy = copies.get(uri)
    assert copy.body == SCRIPT and gzip.decompress(copy.gzipped) == SCRIPT
    names = {k.lower() for k, _ in copy.headers}
    assert names == {"content-type", "etag", "cache-control"}  # no cookie, no server banner
    assert copies.get("/panel/static/js/bokeh.min.js?v=2") is None  # another version: not this one


def test_a_browser_holding_the_same_version_is_told_so():
    copy = StaticCopies().keep("/panel/static/js/bokeh.min.js", HEADERS, SCRIPT)
    assert copy.not_modified('"abc123"')
    assert copy.not_modified('W/"abc123"')  # the tag of the gzipped answer
    assert copy.not_modified('"zzz", "abc123"')
    assert not copy.not_modified('"other"')
    assert not copy.not_modified(None)


def test_the_least_recently_used_copy_goes_when_the_budget_is_full():
    size = len(SCRIPT) + len(gzip.compress(SCRIPT))
    copies = StaticCopies(budget=int(2.5 * size))
    for name in ("a", "b"):
        copies.keep(f"/panel/static/{name}.js", HEADERS, SCRIPT)
    assert copies.get("/panel/static/a.js") is not None  # a is now the more recent
    copies.keep("/panel/static/c.js", HEADERS, SCRIPT)
    assert copies.get("/panel/static/b.js") is None
    assert copies.get("/panel/static/a.js") is not None and copies.get("/panel/static/c.js") is not None


def test_a_versioned_file_is_kept_by_browsers_for_good_and_an_unversioned_one_is_not():
    """``?v=<content hash>`` names one version: the browser may keep it (and the code it compiled
    from it) without asking again. Without a version the upstream's own headers stand."""
    copies = StaticCopies()
    versioned = copies.keep("/panel/static/js/bokeh.min.js?v=6acf7fa15d17d1f4", HEADERS, SCRIPT)
    cache = [v for k, v in versioned.headers if k.lower() == "cache-control"]
    assert cache == ["public, max-age=31536000, immutable"]
    plain = copies.keep("/panel/static/extensions/panel/css/loading.css", HEADERS, SCRIPT)
    assert [v for k, v in plain.headers if k.lower() == "cache-control"] == ["max-age=315360000"]
    assert not any(
        "immutable" in v for _, v in copies.keep("/panel/static/x.js?v=1", HEADERS, SCRIPT).headers
    )
