"""The Ask box on the executive page (Panel): a question in, the answer card out.

Typing suggests KPIs, dimension values and date phrases for the last word; the card (number,
chart, disclosure with SQL and source, link to the same view) is the same escaped HTML as in
JupyterLab and on the landing page. The user's masking applies (kpi_lib.ask does it).
"""

from __future__ import annotations

import html
import logging

import panel as pn

from .. import auth

log = logging.getLogger(__name__)


class AskBox:
    def __init__(self, user: auth.User) -> None:
        self.user = user
        self.input = pn.widgets.TextInput(
            label="",
            placeholder="Ask: revenue in Europe last month · top 5 products by units this year · why did orders drop yesterday?",
            sizing_mode="stretch_width",
            css_classes=["kpi-ask-input"],
        )
        self.button = pn.widgets.Button(label="Ask", color="primary", width=90)
        self.hints = pn.pane.HTML(
            "", sizing_mode="stretch_width", styles={"font-size": "12px", "color": "#6e7781"}
        )
        self.card = pn.pane.HTML("", sizing_mode="stretch_width", name="ask-card")
        self.input.param.watch(self._on_enter, "enter_pressed")
        self.input.param.watch(self._on_typing, "value_input")
        self.button.on_click(lambda _e: self.answer(self.input.value_input or self.input.value))

    def _on_enter(self, _event) -> None:
        self.answer(self.input.value_input or self.input.value)

    def _on_typing(self, event) -> None:
        from ..ask.suggest import suggest

        try:
            options = suggest(event.new or "", limit=5)
        except Exception:  # noqa: BLE001 - hints are a help; never break typing
            log.debug("no suggestions", exc_info=True)
            options = []
        self.hints.object = "Try: " + " · ".join(html.escape(o) for o in options) if options else ""

    def answer(self, question: str) -> None:
        from ..ask import ask
        from ..ask.render import card_html

        if not (question or "").strip():
            return
        self.card.object = card_html(ask(question, user=self.user, surface="executive"))

    def view(self) -> pn.viewable.Viewable:
        return pn.Card(
            pn.Row(self.input, self.button, sizing_mode="stretch_width"),
            self.hints,
            self.card,
            title="Ask a question",
            sizing_mode="stretch_width",
            collapsible=False,
            name="ask",
        )
