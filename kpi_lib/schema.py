"""The silver model's columns, in COPY order: one list that the loader, the stream and the demo share."""

from __future__ import annotations

ORDER_COLUMNS = ["order_id", "ordered_at", "customer_id", "region", "channel", "status", "has_sale", "source"]
LINE_COLUMNS = [
    "order_id",
    "line_no",
    "product_id",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "discount",
    "unit_cost",
]
PRODUCT_COLUMNS = ["product_id", "product_name", "category", "list_price", "unit_cost"]
