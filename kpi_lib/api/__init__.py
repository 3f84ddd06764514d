"""The typed HTTP API under ``/api/`` (issue 16), served by uvicorn behind the front door.

- :mod:`.app`: the FastAPI application (KPIs, query, ask, incidents, version, status);
- :mod:`.models`: the pydantic models its OpenAPI document is generated from;
- :mod:`.problems`: errors as RFC 9457 problem details;
- :mod:`.live`: the ``/api/live`` WebSocket (``kpi_update``, ``anomaly_alert``).

Tokens are made with ``kpi users token add|list|revoke`` (:mod:`kpi_lib.cli.tokens`).
"""
