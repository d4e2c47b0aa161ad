"""The parsed input every door hands to the services, and the checks that name what
can't be stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.models import ZERO, Customer, Order
from merchants.models import normalise_email


@dataclass(frozen=True)
class CustomerData:
    """A customer as a door received it. None means "not sent": the stored value stays."""

    external_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    city: str | None = None
    country: str | None = None
    language: str | None = None
    timezone: str | None = None
    acquisition_channel: str | None = None
    tags: list[str] | None = None
    marketing_consent: bool | None = None


PROFILE_FIELDS = tuple(
    f.name for f in fields(CustomerData) if f.name not in ("external_id", "marketing_consent")
)


@dataclass(frozen=True)
class OrderLineData:
    price: Decimal
    quantity: int = 1
    sku: str = ""
    name: str = ""
    category: str = ""


@dataclass(frozen=True)
class OrderData:
    source: str
    external_id: str
    placed_at: datetime
    total: Decimal
    currency: str
    customer: CustomerData
    status: str = Order.Status.PAID
    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    shipping: Decimal = ZERO
    tax: Decimal = ZERO
    channel: str = ""
    shipping_method: str = ""
    discount_codes: Sequence[str] = ()
    lines: Sequence[OrderLineData] = field(default_factory=tuple)


@dataclass(frozen=True)
class RefundData:
    source: str
    external_id: str
    order_external_id: str
    amount: Decimal
    refunded_at: datetime
    reason: str = ""
    lines: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class Ingested:
    """What a door answers: the stored row, and whether this call created it."""

    order: Order
    created: bool


def profile_values(data: CustomerData) -> dict[str, Any]:
    values = {name: getattr(data, name) for name in PROFILE_FIELDS}
    values = {name: value for name, value in values.items() if value is not None}
    if "email" in values:
        values["email"] = normalise_email(values["email"])
    if "country" in values:
        values["country"] = values["country"].upper()
    return values


def identity(data: CustomerData) -> str:
    return data.external_id or normalise_email(data.email or "")


def prefixed(error: ValidationError, prefix: str) -> ValidationError:
    if hasattr(error, "error_dict"):
        return ValidationError(
            {f"{prefix}.{field}": msgs for field, msgs in error.message_dict.items()}
        )
    return ValidationError({prefix: error.messages})


# --- Bounds every door's input is held to ---------------------------------------------
# What the database can't store (a NUL character, a number past the column) or no shop
# means (an order placed in year 1 or 9999) is refused with the field named, before any
# row is written: the API, CSV imports and webhooks share these checks.

EARLIEST_MOMENT = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)  # shops' clocks run a little ahead
EARLIEST_BIRTH = date(1900, 1, 1)
MOST_UNITS = 100_000  # of one line
MOST_MONEY = Decimal("9999999999.99")  # the amount columns' 12 digits, 2 after the point


def text_problem(value: object) -> str | None:
    """Why a text can't be stored, or None. Lists (tags, codes) are checked item by item."""
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(item, str) and "\x00" in item for item in items):
        return _("Must not contain a NUL character.")
    return None


def json_problem(value: object) -> str | None:
    """text_problem through a JSON value's keys and strings, however deep."""
    if isinstance(value, dict):
        return next(
            (p for k, v in value.items() if (p := text_problem(k) or json_problem(v))), None
        )
    if isinstance(value, list | tuple):
        return next((p for item in value if (p := json_problem(item))), None)
    return text_problem(value)


def moment_problem(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value < EARLIEST_MOMENT:
        return _("Must be on or after 1990-01-01.")
    if value > now() + FUTURE_SLACK:
        return _("Must not be in the future.")
    return None


def money_problem(value: Decimal) -> str | None:
    if value > MOST_MONEY:
        return _("Must be at most 9,999,999,999.99.")
    return None


def problems_raise(problems: dict[str, str | None]) -> None:
    errors = {name: [problem] for name, problem in problems.items() if problem}
    if errors:
        raise ValidationError(errors)


def customer_check(data: CustomerData) -> None:
    """Raises a ValidationError naming each field of the customer that can't be stored."""
    if not data.external_id and not data.email:
        raise ValidationError({"customer": _("A customer needs an external_id or an email.")})
    values = profile_values(data)
    if data.external_id:
        values["external_id"] = data.external_id
    errors = {}
    for name, value in values.items():
        problem = text_problem(value)
        if problem:
            errors[name] = [problem]
            continue
        try:
            Customer._meta.get_field(name).clean(value, None)
        except ValidationError as error:
            errors[name] = error.messages
    born = data.birth_date
    if born is not None and not EARLIEST_BIRTH <= born <= now().date():
        errors["birth_date"] = [_("Must be a day between 1900-01-01 and today.")]
    if errors:
        raise ValidationError(errors)
