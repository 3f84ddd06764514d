"""The suite watching itself (issue 16): Prometheus metrics from every process (:mod:`.metrics`),
readiness checks (:mod:`.ready`) and the health score from named service levels (:mod:`.health`)."""
