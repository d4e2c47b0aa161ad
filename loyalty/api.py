"""/api/v1/loyalty/ endpoints: a customer's status, redeeming rewards for codes, codes used
by orders, membership payments and referrals.

Doors only: each parses its body (schemas.py) and calls one service.
"""

from django.http import HttpRequest
from django.utils import translation
from ninja import Router, Status
from ninja.errors import HttpError

from customers.api import customer_or_404
from customers.mail import customer_language
from customers.models import Order
from customers.schemas import ErrorOut
from customers.services import customer_upsert
from customers.services.data import problems_raise, text_problem
from loyalty import selectors
from loyalty.models import Membership, Redemption
from loyalty.schemas import (
    CodeOut,
    CodeUseIn,
    LoyaltyStatusOut,
    MembershipOut,
    MembershipPaymentIn,
    MembershipStartIn,
    RedeemIn,
    RedemptionOut,
    ReferralIn,
    ReferralOut,
)
from loyalty.services import memberships, referrals, rewards
from loyalty.services.ledger import account_for
from merchants.api import api_merchant, idempotent
from merchants.content import content_override

router = Router(tags=["loyalty"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


@router.get(
    "/loyalty/customers/{external_id}",
    response={200: LoyaltyStatusOut, **ERRORS},
    summary="A customer's points, tier and membership",
)
def loyalty_status(request: HttpRequest, external_id: str):
    """The names and perks come in the customer's language (`language` says which)."""
    merchant = api_merchant(request, "read")
    customer = customer_or_404(merchant, external_id)
    account = account_for(customer=customer)
    program = selectors.program_get(merchant=merchant)
    membership = memberships.membership_live(customer=customer)
    value = account.available * (program.point_value if program else 0)
    language = customer_language(customer)
    with translation.override(language), content_override(merchant):
        tier = account.tier if account.tier_id else None
        plan = membership.plan if membership else None
        return {
            "customer_external_id": customer.external_id,
            "language": language,
            "available_points": account.available,
            "pending_points": account.pending,
            "points_value": f"{value:.2f}",
            "tier": tier.name if tier else None,
            "tier_perks": tier.perks if tier else None,
            "membership": plan.name if plan else None,
            "membership_perks": plan.perks if plan else None,
            "membership_state": membership.state if membership else None,
            "referral_code": account.referral_code,
        }


def _redemption_out(redemption: Redemption, created: bool) -> dict:
    return {
        "code": redemption.code,
        "reward_id": redemption.reward_id,
        "reward": redemption.reward.name,
        "points": redemption.points,
        "amount": str(redemption.amount),
        "currency": redemption.currency,
        "state": redemption.state,
        "created": created,
        "available_points": redemption.account.available,
    }


@router.post(
    "/loyalty/redemptions",
    response={200: RedemptionOut, 201: RedemptionOut, **ERRORS},
    summary="Spend points on a reward",
)
@idempotent
def redemption_create(request: HttpRequest, payload: RedeemIn):
    """Spends the customer's points and answers the single-use code. The same
    `redemption_key` again answers 200 with the same code and spends nothing."""
    merchant = api_merchant(request, "redeem")
    customer = customer_or_404(merchant, payload.customer.external_id)
    reward = selectors.reward_list(merchant=merchant).filter(pk=payload.reward_id).first()
    if reward is None:
        raise HttpError(404, "No reward with that id.")
    redemption, created = rewards.reward_redeem(
        account=account_for(customer=customer),
        reward=reward,
        key=payload.redemption_key,
        units=payload.units,
    )
    redemption.account.refresh_from_db()
    return Status(201 if created else 200, _redemption_out(redemption, created))


@router.post(
    "/loyalty/codes/{code}/use",
    response={200: CodeOut, **ERRORS},
    summary="Mark a reward code used by an order",
)
@idempotent
def code_use(request: HttpRequest, code: str, payload: CodeUseIn):
    """A code is used once; a second use answers 400 naming the code."""
    merchant = api_merchant(request, "redeem")
    problems_raise({"source": text_problem(payload.source), "code": text_problem(code),
                    "order_external_id": text_problem(payload.order_external_id)})  # fmt: skip
    order = None
    if payload.order_external_id:
        order = Order.objects.filter(
            merchant=merchant, source=payload.source, external_id=payload.order_external_id
        ).first()
        if order is None:
            raise HttpError(404, "No order with that external_id.")
    redemption = rewards.redemption_use(merchant_id=merchant.pk, code=code, order=order)
    return {"code": redemption.code, "state": redemption.state,
            "used_order_id": redemption.used_order_id}  # fmt: skip


def _plan_and_customer(request: HttpRequest, payload):
    """The merchant's plan named by the body (404 otherwise) and the customer it sends."""
    merchant = api_merchant(request, "ingest")
    plan = selectors.plan_list(merchant=merchant).filter(pk=payload.plan_id).first()
    if plan is None:
        raise HttpError(404, "No membership plan with that id.")
    customer, _created = customer_upsert(
        merchant=merchant, data=payload.customer.to_data(), source="api"
    )
    return plan, customer


def _membership_out(membership: Membership, created: bool) -> dict:
    return {
        "plan_id": membership.plan_id,
        "plan": membership.plan.name,
        "state": membership.state,
        "current_period_end": membership.current_period_end.isoformat(),
        "created": created,
    }


@router.post(
    "/loyalty/memberships/payments",
    response={200: MembershipOut, 201: MembershipOut, **ERRORS},
    summary="Record a membership payment",
)
@idempotent
def membership_payment_create(request: HttpRequest, payload: MembershipPaymentIn):
    """One paid period of a plan: starts or extends the customer's membership. The same
    payment `external_id` again answers 200 and changes nothing."""
    plan, customer = _plan_and_customer(request, payload)
    payment, created = memberships.membership_payment_record(
        customer=customer,
        plan=plan,
        external_id=payload.external_id,
        amount=payload.amount,
        currency=payload.currency,
        paid_at=payload.paid_at,
    )
    return Status(201 if created else 200, _membership_out(payment.membership, created))


@router.post(
    "/loyalty/memberships",
    response={201: MembershipOut, **ERRORS},
    summary="Start a membership trial",
)
@idempotent
def membership_create(request: HttpRequest, payload: MembershipStartIn):
    plan, customer = _plan_and_customer(request, payload)
    membership = memberships.membership_start(customer=customer, plan=plan)
    return Status(201, _membership_out(membership, True))


@router.post(
    "/loyalty/memberships/{external_id}/cancel",
    response={200: MembershipOut, **ERRORS},
    summary="Cancel a customer's membership at the end of its period",
)
@idempotent
def membership_cancel(request: HttpRequest, external_id: str):
    merchant = api_merchant(request, "ingest")
    membership = memberships.membership_live(customer=customer_or_404(merchant, external_id))
    if membership is None:
        raise HttpError(404, "This customer has no membership.")
    return _membership_out(memberships.membership_cancel(membership=membership), False)


@router.post(
    "/loyalty/referrals",
    response={201: ReferralOut, **ERRORS},
    summary="A friend arrived with a referral code",
)
@idempotent
def referral_create(request: HttpRequest, payload: ReferralIn):
    merchant = api_merchant(request, "ingest")
    referral = referrals.referral_record(
        merchant=merchant,
        code=payload.code,
        friend=payload.friend.to_data(),
        ip_address=payload.ip_address,
    )
    welcome = referral.welcome.code if referral.welcome_id else None
    return Status(201, {"state": referral.state, "flags": referral.flags, "welcome_code": welcome})
