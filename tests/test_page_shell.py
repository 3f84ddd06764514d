"""The front door's page shells and one-time keys (kpi_lib.web.page_shell)."""

from __future__ import annotations

import asyncio

from conftest import run_coroutine

from kpi_lib.web import page_shell

PAGE = (
    b'<html><head><link rel="icon" href="f.ico"></head><body><script data-early="">early()</script>'
    b'<script type="text/javascript" src="static/js/bokeh.min.js?v=1"></script>'
    b"<!--kpi-shell-->"
    b'<div>tiles</div><script>render([{"token":"abc.DEF-1_2","roots":{}}])</script></body></html>'
)


def test_a_page_splits_at_its_mark_and_its_rest_holds_the_token():
    shell, rest = page_shell.split(PAGE)
    assert shell.endswith(page_shell.MARK) and b"bokeh.min.js" in shell and b"tiles" not in shell
    assert shell + rest == PAGE
    assert page_shell.token(rest) == "abc.DEF-1_2"
    assert page_shell.split(b"<html>no mark</html>") is None
    assert b'data-early="k1"' in page_shell.with_key(shell, "k1")


def test_a_shell_that_lacked_a_pages_styles_is_followed_by_them_but_not_by_scripts():
    """A shell learned from an earlier page may lack a style this page needs (the dark theme's
    background): it is sent before the rest, once. A script cannot follow the others (they run in
    their order): the page is then loaded again (None)."""
    sent, _ = page_shell.split(PAGE)
    style = b"<style>html { background: #121212 }</style>"
    wanted = sent.replace(b"<!--kpi-shell-->", style + b"<!--kpi-shell-->")
    assert page_shell.missing(sent, wanted) == style
    assert page_shell.missing(wanted, wanted) == b""
    gl = b'<script type="text/javascript" src="static/js/bokeh-gl.min.js?v=1"></script>'
    assert page_shell.missing(sent, sent.replace(b"<!--kpi-shell-->", gl + b"<!--kpi-shell-->")) is None


def test_a_key_leads_its_own_user_to_the_built_session_once():
    async def run():
        keys = page_shell.EarlySockets()
        key = keys.expect("ann")
        assert keys.knows(key, "ann") and not keys.knows(key, "bob")
        waiting = asyncio.create_task(keys.claim(key, "ann"))  # the socket opened before the build
        await asyncio.sleep(0)
        assert not waiting.done()
        assert not keys.knows(key, "ann") and await keys.claim(key, "ann") is None  # once, even while waiting
        keys.built(key, "the-token", "http://worker-1")
        got = await waiting
        again = await keys.claim(key, "ann")
        other = keys.expect("ann")
        stolen = await keys.claim(other, "bob")
        return got, again, stolen, keys.knows(other, "ann")

    got, again, stolen, other_still = run_coroutine(run)
    assert got == ("the-token", "http://worker-1")
    assert again is None  # used
    assert stolen is None and other_still  # someone else's key leads nowhere and is not used up


def test_a_key_whose_page_failed_closes_its_socket():
    async def run():
        keys = page_shell.EarlySockets()
        key = keys.expect("ann")
        waiting = asyncio.create_task(keys.claim(key, "ann"))
        await asyncio.sleep(0)
        keys.failed(key)
        return await waiting, len(keys)

    assert run_coroutine(run) == (None, 0)
