"""Single orders behind a period's number: the largest ones, and reversals (an order cancelled by
a negative order of the same customer and amount). Used to say when one order dominates."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from .planner import Where, _filters, _run

_LINE_DIMS = {"category", "product"}


def largest_orders(
    start: datetime, end: datetime, where: Where | None = None, exclude: Where | None = None, limit: int = 5
) -> pd.DataFrame:
    """order_id, customer_id, ordered_at (business time), value (net revenue), lines: the orders with
    the largest absolute net revenue in [start, end), within the filters."""
    params: dict = {"o_from": start, "o_to": end, "o_limit": int(limit)}
    flt = _filters(dict(where or {}), params, dict(exclude or {}))
    # the semantic layer's dimension columns: order-level ones on o, line-level on l
    flt = flt.replace(" and region", " and o.region").replace(" and channel", " and o.channel")
    flt = flt.replace(" and category", " and l.category").replace(" and product_name", " and l.product_name")
    sql = (
        "select o.order_id, o.customer_id, o.ordered_at at time zone ops.business_tz() as ordered_at,"
        " sum(l.quantity * l.unit_price * (1 - l.discount))::float8 as value, count(*) as lines\n"
        "from silver.orders o join silver.order_lines l using (order_id)\n"
        "where o.ordered_at >= (cast(:o_from as timestamp) at time zone ops.business_tz())"
        f" and o.ordered_at < (cast(:o_to as timestamp) at time zone ops.business_tz()){flt}\n"
        "group by o.order_id, o.customer_id, o.ordered_at order by abs(sum(l.quantity * l.unit_price * (1 - l.discount))) desc"
        " limit :o_limit"
    )
    return _run(sql, params)
