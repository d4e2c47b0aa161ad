"""The JSON shapes of the customers part of /api/v1/."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from ninja import Field, Schema
from pydantic import AfterValidator, BaseModel, BeforeValidator

from customers.models import Order
from customers.services import CustomerData, OrderData, OrderLineData, RefundData
from customers.services.data import MOST_MONEY

Money = Annotated[Decimal, Field(ge=0, le=MOST_MONEY, max_digits=12, decimal_places=2)]
# What the schema can't say by itself, said where it applies; each is a 400 naming the field.
MOMENT = (
    "A moment with its time zone, like 2026-05-01T10:00:00Z: on or after 1990-01-01 and no "
    "more than a day ahead of now. No text field may hold a NUL character."
)


def _written(value: Any) -> Any:
    # JSON numbers would be read as seconds since 1970: a moment or a day is written out.
    if not isinstance(value, str | datetime | date):
        raise ValueError("must be written like 2026-05-01T10:00:00Z, not as a number")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone, like 2026-05-01T10:00:00Z")
    return value


AwareDatetime = Annotated[datetime, BeforeValidator(_written), AfterValidator(_aware)]
Day = Annotated[date, BeforeValidator(_written)]


def _email(value: str) -> str:
    try:
        validate_email(value.strip())
    except ValidationError as error:
        raise ValueError("is not a valid email address") from error
    return value.strip()


Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]


class Incoming(BaseModel):
    """A request body: plain pydantic, since ninja's Schema wraps every value in a getter
    for reading ORM objects, which a thousand-order batch pays for forty thousand times."""


class CustomerIn(Incoming):
    """A customer of the shop, found by `external_id`, else by `email`: at least one of the
    two must be given (an empty `external_id` with an email is found by the email).
    `birth_date` is a day from 1900-01-01 to today; `country` an ISO 3166 code (SA, IR)."""

    external_id: str | None = Field(None, max_length=128)
    email: Email | None = None
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)
    birth_date: Day | None = None
    gender: str | None = Field(None, pattern="^(female|male|other|)$")
    city: str | None = Field(None, max_length=100)
    country: str | None = Field(None, min_length=2, max_length=2)
    language: str | None = Field(None, max_length=8)
    timezone: str | None = Field(
        None, max_length=64,
        description="Her IANA time zone (Asia/Riyadh), for quiet hours; the shop's when empty.",
    )  # fmt: skip
    acquisition_channel: str | None = Field(None, max_length=60)
    tags: list[str] | None = None
    marketing_consent: bool | None = None

    def to_data(self) -> CustomerData:
        return CustomerData(**self.model_dump())


class OrderLineIn(Incoming):
    sku: str = Field("", max_length=100)
    name: str = Field("", max_length=255)
    category: str = Field("", max_length=100)
    quantity: int = Field(1, ge=1, le=100_000)
    price: Money

    def to_data(self) -> OrderLineData:
        return OrderLineData(**self.model_dump())


class OrderIn(Incoming):
    external_id: str = Field(..., min_length=1, max_length=128)
    placed_at: AwareDatetime = Field(..., description=MOMENT)
    status: Order.Status = Order.Status.PAID
    currency: str = Field(
        ...,
        min_length=3,
        max_length=3,
        description="The shop's base currency (ISO 4217, like USD); an order in another is "
        "refused.",
    )
    subtotal: Money = Decimal("0")
    discount: Money = Decimal("0")
    shipping: Money = Decimal("0")
    tax: Money = Decimal("0")
    total: Money
    channel: str = Field("", max_length=30)
    shipping_method: str = Field("", max_length=60)
    discount_codes: list[str] = []
    customer: CustomerIn
    lines: list[OrderLineIn] = []

    def to_data(self, *, source: str) -> OrderData:
        values = self.model_dump(exclude={"customer", "lines"})
        return OrderData(
            source=source,
            customer=self.customer.to_data(),
            lines=tuple(line.to_data() for line in self.lines),
            **values,
        )


class OrdersBulkIn(Incoming):
    orders: list[OrderIn] = Field(..., min_length=1, max_length=1000)


class CustomersBulkIn(Incoming):
    customers: list[CustomerIn] = Field(..., min_length=1, max_length=1000)


class RefundLineIn(Incoming):
    sku: str = Field("", max_length=100)
    quantity: int = Field(1, ge=1, le=100_000)
    amount: Money = Decimal("0")


class RefundIn(Incoming):
    external_id: str = Field(..., min_length=1, max_length=128)
    order_external_id: str = Field(
        ...,
        min_length=1,
        max_length=128,
        description="An order this shop has sent already; otherwise a 400 naming this field.",
    )
    amount: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
    refunded_at: AwareDatetime = Field(..., description=MOMENT)
    reason: str = Field("", max_length=255)
    lines: list[RefundLineIn] = []

    def to_data(self, *, source: str) -> RefundData:
        values = self.model_dump(exclude={"lines"})
        lines = [line.model_dump(mode="json") for line in self.lines]
        return RefundData(source=source, lines=lines, **values)


class EventIn(Incoming):
    key: str = Field(..., min_length=1, max_length=60, pattern=r"^[a-z0-9_.:-]+$")
    customer: CustomerIn
    occurred_at: AwareDatetime | None = Field(None, description=MOMENT)
    data: dict[str, Any] = {}


class OrderOut(Schema):
    id: int
    external_id: str
    source: str
    status: str
    total: str
    customer_id: int
    customer_external_id: str
    created: bool


class CustomerOut(Schema):
    id: int
    external_id: str
    email: str
    first_name: str
    last_name: str
    orders_count: int
    total_spent: str
    average_order_value: str
    first_order_at: datetime | None
    last_order_at: datetime | None
    marketing_consent: bool
    created: bool | None = None


class RefundOut(Schema):
    id: int
    external_id: str
    order_external_id: str
    amount: str
    order_status: str
    created: bool


class EventOut(Schema):
    id: int
    customer_id: int
    key: str


class ErrorOut(Schema):
    detail: str
    errors: dict[str, list[str]] = {}
