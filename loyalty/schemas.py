"""The JSON shapes of the loyalty part of /api/v1/."""

from __future__ import annotations

from ninja import Field, Schema

from customers.schemas import AwareDatetime, CustomerIn, Incoming, Money


class CustomerRef(Incoming):
    external_id: str = Field(..., min_length=1, max_length=128)


class RedeemIn(Incoming):
    customer: CustomerRef
    reward_id: int
    units: int | None = Field(None, ge=1)
    redemption_key: str = Field(
        ...,
        min_length=1,
        max_length=80,
        description="Your id for this redemption: sending it again returns the same code "
        "and spends nothing.",
    )


class RedemptionOut(Schema):
    code: str
    reward_id: int
    reward: str
    points: int
    amount: str
    currency: str
    state: str
    created: bool
    available_points: int


class CodeUseIn(Incoming):
    order_external_id: str | None = Field(None, max_length=128)
    source: str = Field("api", max_length=20)


class CodeOut(Schema):
    code: str
    state: str
    used_order_id: int | None


class LoyaltyStatusOut(Schema):
    customer_external_id: str
    language: str = Field(
        ..., description="The customer's language: `tier`, `tier_perks`, `membership` and "
        "`membership_perks` are in it where the merchant wrote them in it, otherwise in the "
        "merchant's default language."
    )  # fmt: skip
    available_points: int
    pending_points: int
    points_value: str
    tier: str | None
    tier_perks: str | None
    membership: str | None
    membership_perks: str | None
    membership_state: str | None
    referral_code: str


class MembershipPaymentIn(Incoming):
    customer: CustomerIn
    plan_id: int
    external_id: str = Field(..., min_length=1, max_length=128)
    amount: Money
    currency: str = Field(..., min_length=3, max_length=3)
    paid_at: AwareDatetime


class MembershipStartIn(Incoming):
    customer: CustomerIn
    plan_id: int


class MembershipOut(Schema):
    plan_id: int
    plan: str
    state: str
    current_period_end: str
    created: bool


class ReferralIn(Incoming):
    code: str = Field(..., min_length=1, max_length=16)
    friend: CustomerIn
    ip_address: str | None = Field(None, max_length=45)


class ReferralOut(Schema):
    state: str
    flags: list[str]
    welcome_code: str | None
