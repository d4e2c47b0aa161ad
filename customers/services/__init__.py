"""Everything that writes customers, orders, refunds and the timeline.

Every door (the API, shop webhooks, CSV imports) parses its input into the dataclasses of
`data` and calls these services, so the rules are the same whichever way data arrives.
"""

from __future__ import annotations

from customers.services.batches import customers_upsert_many, orders_ingest_many
from customers.services.data import (
    CustomerData,
    Ingested,
    OrderData,
    OrderLineData,
    RefundData,
    customer_check,
)
from customers.services.orders import (
    order_cancel,
    order_fulfilment_record,
    order_get_by_source,
    order_ingest,
    orders_check,
    refund_record,
)
from customers.services.profiles import (
    consent_set,
    customer_stats_refresh,
    customer_upsert,
    event_record,
)

__all__ = [
    "CustomerData",
    "Ingested",
    "OrderData",
    "OrderLineData",
    "RefundData",
    "consent_set",
    "customer_check",
    "customer_stats_refresh",
    "customer_upsert",
    "customers_upsert_many",
    "event_record",
    "order_cancel",
    "order_fulfilment_record",
    "order_get_by_source",
    "order_ingest",
    "orders_check",
    "orders_ingest_many",
    "refund_record",
]
