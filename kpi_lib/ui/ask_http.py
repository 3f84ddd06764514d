"""The landing page's Ask box: its HTML and the JSON endpoints behind it (mounted by kpi_lib.serve).

``POST /ask`` {"q": "..."} answers for the signed-in user (their masking applies) and returns the
Answer's JSON plus its card as HTML (escaped by :mod:`kpi_lib.ask.render`); ``GET /ask/suggest?q=``
lists completions while typing. After an answer the page's address asks the same question
(``/?q=...``; ``GET /ask?q=`` leads there too), so a question's link can be shared: each reader
gets the answer for their own role and rows. Both need a signed-in user; the POST also needs a same-origin
request (and the page's XSRF token where the server checks them), so another site cannot ask in
someone's name. The box's script is a file (``GET /ask/box.js``), never inline.
"""

from __future__ import annotations

import asyncio
import html
import json
from urllib.parse import urlencode, urlparse

import tornado.web

BOX_CSS = """
.kpi-ask {background: #fff; border: 1px solid #e3e6ea; border-radius: 10px; padding: 14px 16px; margin-bottom: 18px;}
.kpi-ask form {display: flex; gap: 8px;} .kpi-ask input {flex: 1; padding: 9px; font-size: 15px; border: 1px solid #c9d1d9; border-radius: 6px;}
.kpi-ask button {padding: 9px 16px; background: #4c78a8; color: #fff; border: 0; border-radius: 6px; font-size: 15px;}
.kpi-ask .kpi-ask-out {margin-top: 12px;} .kpi-ask .kpi-ask-busy {color: #6e7781; font-size: 13px;}
"""

BOX_HTML = """
<section class='kpi-ask' aria-label='Ask a question'>
  <form id='kpi-ask-form' autocomplete='off'>
    <input id='kpi-ask-input' name='q' list='kpi-ask-suggestions' placeholder='Ask: revenue in Europe last month, top 5 products by units this year, why did orders drop yesterday?' aria-label='Question'>
    <datalist id='kpi-ask-suggestions'></datalist>
    <input type='hidden' id='kpi-ask-xsrf' value='{xsrf}'>
    <button type='submit'>Ask</button>
  </form>
  <div id='kpi-ask-out' class='kpi-ask-out' aria-live='polite'></div>
</section>
<script src='/ask/box.js'></script>
"""

# A file of its own, not inline: the front door's Content-Security-Policy allows only our scripts.
BOX_JS = """
(function () {
  var form = document.getElementById('kpi-ask-form'), input = document.getElementById('kpi-ask-input');
  var out = document.getElementById('kpi-ask-out'), list = document.getElementById('kpi-ask-suggestions');
  var xsrf = document.getElementById('kpi-ask-xsrf').value;
  var timer = null;
  input.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch('/ask/suggest?q=' + encodeURIComponent(input.value), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {suggestions: []}; })
        .then(function (d) {
          list.replaceChildren.apply(list, d.suggestions.map(function (s) {
            var o = document.createElement('option'); o.value = s; return o;
          }));
        });
    }, 150);
  });
  function askNow() {
    var q = input.value.trim();
    if (!q) return;
    out.innerHTML = "<div class='kpi-ask-busy'>Answering…</div>";
    fetch('/ask', {method: 'POST', credentials: 'same-origin',
                   headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf},
                   body: JSON.stringify({q: q})})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        out.innerHTML = d.card || '';  // server-rendered, every value escaped
        // the address now asks this question: copy it to share the answer (each reader's own rows)
        history.replaceState(null, '', location.pathname + '?q=' + encodeURIComponent(q));
      })
      .catch(function (err) { out.textContent = 'Ask failed: ' + err; });
  }
  form.addEventListener('submit', function (e) { e.preventDefault(); askNow(); });
  var given = new URLSearchParams(location.search).get('q');
  if (given) { input.value = given.slice(0, 500); askNow(); }
})();
"""


def box_html(xsrf_token: str = "") -> str:
    """The box for a page; ``xsrf_token`` is the page handler's (sent back with each question)."""
    return f"<style>{BOX_CSS}</style>" + BOX_HTML.replace("{xsrf}", html.escape(xsrf_token, quote=True))


class ScriptHandler(tornado.web.RequestHandler):
    """GET /ask/box.js: the box's script."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=utf-8")
        self.set_header("Cache-Control", "max-age=3600")
        self.finish(BOX_JS)


class AskHandler(tornado.web.RequestHandler):
    """POST /ask: the answer for the signed-in user as JSON, with its card. GET /ask?q=...: the
    landing page asking it (a question's link, as the box's address bar shows it after an answer)."""

    def get(self) -> None:
        self.redirect("/?" + urlencode({"q": self.get_argument("q", "")[:500]}))

    async def post(self) -> None:
        user = self.current_user
        if user is None:
            self.set_status(401)
            self.finish({"error": "sign in first"})
            return
        origin = self.request.headers.get("Origin") or self.request.headers.get("Referer")
        if origin and urlparse(origin).netloc != self.request.host:
            self.set_status(403)
            self.finish({"error": "cross-site request refused"})
            return
        try:
            question = str(json.loads(self.request.body or b"{}").get("q", ""))[:500]
        except (ValueError, AttributeError):
            question = self.get_argument("q", "")[:500]
        from ..ask import ask
        from ..ask.render import card_html

        # off the event loop: the front door keeps proxying the dashboards while a why question runs
        answer = await asyncio.get_running_loop().run_in_executor(
            None, lambda: ask(question, user=user, surface="landing")
        )
        doc = answer.to_dict()
        doc["card"] = card_html(answer)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(doc, allow_nan=False, default=str))


class SuggestHandler(tornado.web.RequestHandler):
    """GET /ask/suggest?q=...: completions while typing."""

    def get(self) -> None:
        if self.current_user is None:
            self.set_status(401)
            self.finish({"suggestions": []})
            return
        from ..ask.suggest import suggest

        self.finish({"suggestions": suggest(self.get_argument("q", "")[:300])})
