"""A Panel worker that fails after the front door already sent the page's shell (web/page_shell.py).

The front door sends a page's first part before the worker has answered, as a 200. When the worker
then fails, the browser must not be left with a half page: it is told to ask again, and that
request gets the worker's answer as it is, with its real status. The worker here is a real HTTP
server that answers like a Panel worker once, then fails."""

from __future__ import annotations

import re

import requests
import tornado.httpserver
import tornado.web
from bokeh.util.token import generate_jwt_token, generate_session_id
from conftest import free_port, serving

from kpi_lib import auth

LOGIN, PASSWORD = "shell-fault", "shell-fault-password-1"


class _Worker(tornado.web.RequestHandler):
    """The executive page as a Panel worker writes it (shell, mark, rest), then a failure."""

    answers: list[int] = []

    def get(self) -> None:
        if self.answers:
            self.answers.append(500)
            raise tornado.web.HTTPError(500, "the session could not be built")
        self.answers.append(200)
        token = generate_jwt_token(
            generate_session_id(), signed=False, extra_payload={"headers": {auth.HEADER: LOGIN}}
        )
        self.write(
            '<html><head></head><body><script data-early="">/* early */</script>'
            '<template id="kpi-scripts"><script src="static/js/bokeh.min.js"></script></template>'
            "<!--kpi-shell-->"
            f'<div data-kpi-value="revenue">$1.2M</div><script>[{{"token":"{token}"}}]</script></body></html>'
        )


def test_a_worker_failing_after_the_shell_gets_the_page_asked_for_again(demo):
    from kpi_lib import serve
    from kpi_lib.web import page_shell

    auth.set_user(LOGIN, PASSWORD, ["executive"])
    page_shell.SHELLS.forget("/panel/executive?theme=")  # this process's front doors share what they learned
    _Worker.answers.clear()
    worker_port, port = free_port(), free_port()

    def start() -> None:
        tornado.web.Application([(r"/panel/executive", _Worker)]).listen(worker_port, "127.0.0.1")
        app = serve.make_app(f"http://127.0.0.1:{worker_port}", "http://127.0.0.1:9", "secret", port)
        tornado.httpserver.HTTPServer(app).listen(port, "127.0.0.1")

    with serving(start):
        base = f"http://127.0.0.1:{port}"
        browser = requests.Session()
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', browser.get(base + "/login").text).group(1)
        signed_in = browser.post(
            base + "/login",
            data={"user": LOGIN, "password": PASSWORD, "next": "/", "_xsrf": xsrf},
            allow_redirects=False,
        )
        assert signed_in.status_code == 302

        first = browser.get(base + "/panel/executive")  # whole, as the worker wrote it: teaches the shell
        assert first.status_code == 200 and "$1.2M" in first.text
        assert re.search(r'data-early="[^"]+"', first.text)

        second = browser.get(base + "/panel/executive")  # the shell went out; then the worker failed
        shell, _, after = second.text.partition("<!--kpi-shell-->")
        assert second.status_code == 200 and "bokeh.min.js" in shell
        assert "location.reload()" in after and "Reload it" in after and "$1.2M" not in after

        third = browser.get(base + "/panel/executive")  # asked again: the worker's answer, as it is
        assert third.status_code == 500 and "<!--kpi-shell-->" not in third.text
        assert _Worker.answers == [200, 500, 500]
