"""Writing reports: the HTML-and-text e-mail layout (:mod:`.report`), the daily executive digest
(:mod:`.digest`) and the alert e-mail with its charts (:mod:`.alert_email`). Sending them is
:mod:`kpi_lib.mail`'s job; deciding who hears about what is :mod:`kpi_lib.alerts`'."""
