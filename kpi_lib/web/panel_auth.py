"""Panel's auth module (`panel serve --auth-module`): a request counts only if the front door sent it.

Bokeh loads this file by path, so it imports kpi_lib absolutely. Without the front door's secret
there is no user, and Bokeh answers with a redirect to the front door's sign-in instead of a page.
"""

from kpi_lib.auth.identity import verified_login

login_url = "/login"


def get_user(request_handler):
    return verified_login(request_handler.request.headers)
