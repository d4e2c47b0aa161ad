"""The JSON shapes of the promotion codes part of /api/v1/."""

from __future__ import annotations

from decimal import Decimal

from ninja import Field, Schema

from customers.schemas import Incoming, Money
from loyalty.schemas import CustomerRef


class CartLineIn(Incoming):
    sku: str = Field(..., min_length=1, max_length=100)
    price: Money = Field(..., description="The price of one unit.")
    quantity: int = Field(1, ge=1, le=10_000)


class CartIn(Incoming):
    subtotal: Money = Field(..., description="What the goods cost before any code.")
    shipping: Money = Decimal("0")
    lines: list[CartLineIn] = Field(default_factory=list, max_length=500)
    other_codes: list[str] = Field(
        default_factory=list, max_length=20,
        description="The other codes already in the cart: a promotion that can't be combined "
        "with one of them is refused as `not_combinable`, naming it.",
    )  # fmt: skip


class CodeCheckIn(Incoming):
    customer: CustomerRef
    cart: CartIn


class CodeRedeemIn(CodeCheckIn):
    order_external_id: str = Field(
        ..., min_length=1, max_length=100,
        description="Your order's id: redeeming again for the same order answers the first "
        "redemption; cancelling or fully refunding that order gives the code back.",
    )  # fmt: skip


class CodeReleaseIn(Incoming):
    customer: CustomerRef


class CodeAnswerOut(Schema):
    accepted: bool
    reason: str = Field(
        ..., description="Empty when accepted, else one of: unknown_code, inactive, "
        "not_started, expired, not_yours, not_eligible, min_spend, product_missing, "
        "not_combinable, limit_reached, budget_spent, code_used, already_used, "
        "no_reservation.",
    )  # fmt: skip
    message: str = Field(
        ..., description="The reason in words, in the request's language (Accept-Language)."
    )
    detail: str = Field(..., description="The other code for not_combinable; the minimum "
                        "for min_spend; the product SKU for product_missing.")  # fmt: skip
    code: str
    discount: str = Field(..., description="The money off this cart in `currency`, like 5.00.")
    currency: str
    bonus_points: int
    promotion_id: int | None
    reserved_until: str | None = None


class RollbackOut(Schema):
    rolled_back: int
