"""/api/v1/ endpoints of customers/: customers, orders, refunds and events.

Doors only: each parses its body (schemas.py) and calls one service.
"""

from django.http import HttpRequest
from ninja import Router, Status
from ninja.errors import HttpError

from customers import selectors, services
from customers.models import Customer, Order, Refund
from customers.schemas import (
    CustomerIn,
    CustomerOut,
    CustomersBulkIn,
    ErrorOut,
    EventIn,
    EventOut,
    OrderIn,
    OrderOut,
    OrdersBulkIn,
    RefundIn,
    RefundOut,
)
from customers.services.data import problems_raise, text_problem
from merchants.api import api_merchant, idempotent

router = Router(tags=["customers"])


def customer_or_404(merchant, external_id: str) -> Customer:
    """The merchant's customer a body names by `external_id`, for every app's endpoints: a
    400 naming the field for what no column holds, a 404 when there is none."""
    problems_raise({"customer.external_id": text_problem(external_id)})
    customer = selectors.customer_get_by_external_id(merchant=merchant, external_id=external_id)
    if customer is None:
        raise HttpError(404, "No customer with that external_id.")
    return customer


SOURCE = Order.Source.API
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 409: ErrorOut}


def _order_out(order: Order, created: bool) -> dict:
    return {
        "id": order.pk,
        "external_id": order.external_id,
        "source": order.source,
        "status": order.status,
        "total": str(order.total),
        "customer_id": order.customer_id,
        "customer_external_id": order.customer.external_id,
        "created": created,
    }


def _customer_out(customer: Customer, created: bool | None = None) -> dict:
    customer.refresh_from_db()
    return {
        "id": customer.pk,
        "external_id": customer.external_id,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "orders_count": customer.orders_count,
        "total_spent": str(customer.total_spent),
        "average_order_value": str(customer.average_order_value),
        "first_order_at": customer.first_order_at.isoformat() if customer.first_order_at else None,
        "last_order_at": customer.last_order_at.isoformat() if customer.last_order_at else None,
        "marketing_consent": customer.marketing_consent,
        "created": created,
    }


@router.post("/orders", response={200: OrderOut, 201: OrderOut, **ERRORS}, summary="Send one order")
@idempotent
def order_create(request: HttpRequest, payload: OrderIn):
    """Stores an order and its customer. Sending the same `external_id` again answers 200
    with the order first stored, and changes nothing."""
    merchant = api_merchant(request, "ingest")
    result = services.order_ingest(merchant=merchant, data=payload.to_data(source=SOURCE))
    return Status(201 if result.created else 200, _order_out(result.order, result.created))


@router.post("/orders/bulk", response={200: dict, **ERRORS}, summary="Send up to 1,000 orders")
@idempotent
def orders_create_bulk(request: HttpRequest, payload: OrdersBulkIn):
    """All or nothing: a bad order is named by its position and nothing is stored."""
    merchant = api_merchant(request, "ingest")
    results = services.orders_ingest_many(
        merchant=merchant, orders=[order.to_data(source=SOURCE) for order in payload.orders]
    )
    return Status(200, {"results": [_order_out(r.order, r.created) for r in results]})


@router.post(
    "/customers",
    response={200: CustomerOut, 201: CustomerOut, **ERRORS},
    summary="Create or update a customer",
)
@idempotent
def customer_upsert(request: HttpRequest, payload: CustomerIn):
    merchant = api_merchant(request, "ingest")
    customer, created = services.customer_upsert(
        merchant=merchant, data=payload.to_data(), source=SOURCE
    )
    return Status(201 if created else 200, _customer_out(customer, created))


@router.post(
    "/customers/bulk",
    response={200: dict, **ERRORS},
    summary="Create or update up to 1,000 customers",
)
@idempotent
def customers_upsert_bulk(request: HttpRequest, payload: CustomersBulkIn):
    merchant = api_merchant(request, "ingest")
    results = services.customers_upsert_many(
        merchant=merchant, customers=[c.to_data() for c in payload.customers], source=SOURCE
    )
    return Status(
        200, {"results": [_customer_out(customer, created) for customer, created in results]}
    )


@router.get(
    "/customers/{external_id}",
    response={200: CustomerOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Read a customer",
)
def customer_detail(request: HttpRequest, external_id: str):
    merchant = api_merchant(request, "read")
    customer = selectors.customer_get_by_external_id(merchant=merchant, external_id=external_id)
    if customer is None:
        raise HttpError(404, "No customer with that external_id.")
    return Status(200, _customer_out(customer))


@router.post(
    "/refunds", response={200: RefundOut, 201: RefundOut, **ERRORS}, summary="Record a refund"
)
@idempotent
def refund_create(request: HttpRequest, payload: RefundIn):
    merchant = api_merchant(request, "ingest")
    refund, created = services.refund_record(merchant=merchant, data=payload.to_data(source=SOURCE))
    return Status(201 if created else 200, _refund_out(refund, created))


def _refund_out(refund: Refund, created: bool) -> dict:
    return {
        "id": refund.pk,
        "external_id": refund.external_id,
        "order_external_id": refund.order.external_id,
        "amount": str(refund.amount),
        "order_status": refund.order.status,
        "created": created,
    }


@router.post("/events", response={201: EventOut, **ERRORS}, summary="Record a custom event")
@idempotent
def event_create(request: HttpRequest, payload: EventIn):
    """Review posted, social follow, newsletter signup, or any key of the merchant's."""
    merchant = api_merchant(request, "ingest")
    activity = services.event_record(
        merchant=merchant,
        customer=payload.customer.to_data(),
        key=payload.key,
        source=SOURCE,
        occurred_at=payload.occurred_at,
        data=payload.data,
    )
    return Status(201, {"id": activity.pk, "customer_id": activity.customer_id, "key": payload.key})
