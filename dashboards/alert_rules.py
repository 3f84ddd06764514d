"""Alert rules: write, preview and save the rules that alert you (admins and analysts).

Served by `kpi serve` (behind login) at /panel/alert_rules; the front door answers 403 to other
roles. The page is built in kpi_lib.ui.alert_rules.
"""

from kpi_lib.ui.alert_rules import app

app().servable(title="Alert rules")
