"""Paid memberships: the storefront takes the money; Regulars records each payment, keeps
the state (trialing → active → past_due → cancelled → expired) and grants the plan's
points each paid period. Periods are counted from an anchor date, never chained."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.models import Activity, Customer
from loyalty.models import Membership, MembershipPayment, MembershipPlan, PointsEntry
from loyalty.services.dates import months_after
from loyalty.services.ledger import (
    account_for,
    account_locked,
    entry_write,
    lot_expiry,
    program_of,
)

PERIOD_MONTHS = {
    MembershipPlan.Period.MONTH: 1,
    MembershipPlan.Period.QUARTER: 3,
    MembershipPlan.Period.YEAR: 12,
}
LIVE = [
    Membership.State.TRIALING,
    Membership.State.ACTIVE,
    Membership.State.PAST_DUE,
    Membership.State.CANCELLED,
]


def membership_live(*, customer: Customer) -> Membership | None:
    return (
        Membership.objects.filter(customer=customer, state__in=LIVE).select_related("plan").first()
    )


def _moved(membership: Membership, state: str, at: datetime, note: str = "") -> None:
    before = membership.state
    membership.state = state
    Activity.objects.create(
        merchant_id=membership.merchant_id,
        customer_id=membership.customer_id,
        kind=Activity.Kind.MEMBERSHIP_CHANGED,
        occurred_at=at,
        data={"plan": membership.plan.name, "from": before, "to": state, "note": note},
    )


@transaction.atomic
def membership_start(*, customer: Customer, plan: MembershipPlan, at: datetime | None = None):
    """Starts a trial of the plan (only plans with trial days have one)."""
    at = at or now()
    if plan.merchant_id != customer.merchant_id:
        raise ValidationError({"plan": _("No such plan.")})
    if not plan.is_active:
        raise ValidationError({"plan": _("This plan is closed to new members.")})
    if not plan.trial_days:
        raise ValidationError({"plan": _("This plan has no trial: it starts with a payment.")})
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    if membership_live(customer=customer) is not None:
        raise ValidationError({"plan": _("The customer already has a membership.")})
    membership = Membership(
        merchant_id=customer.merchant_id,
        customer=customer,
        plan=plan,
        state="",  # none yet: the history's first line reads "→ trialing"
        started_at=at,
        anchor=at,
        current_period_end=at + timedelta(days=plan.trial_days),
    )
    _moved(membership, Membership.State.TRIALING, at)
    membership.save()
    return membership


@transaction.atomic
def membership_payment_record(
    *,
    customer: Customer,
    plan: MembershipPlan,
    external_id: str,
    amount: Decimal,
    currency: str,
    paid_at: datetime,
) -> tuple[MembershipPayment, bool]:
    """One paid period: starts the membership or extends it by one period from its anchor,
    makes it active, and grants the plan's points for the period. The same payment id again
    returns the first and changes nothing."""
    if plan.merchant_id != customer.merchant_id:
        raise ValidationError({"plan": _("No such plan.")})
    if amount < 0:
        raise ValidationError({"amount": _("Must not be negative.")})
    # Payments for one customer one at a time.
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    earlier = MembershipPayment.objects.filter(
        merchant_id=customer.merchant_id, external_id=external_id
    ).first()
    if earlier is not None:
        return earlier, False
    membership = membership_live(customer=customer)
    if membership is not None and membership.plan_id != plan.pk:
        # A change of plan: the old one ends, the new one starts with this payment.
        _moved(membership, Membership.State.EXPIRED, paid_at, note="plan changed")
        membership.ended_at = paid_at
        membership.save()
        membership = None
    if membership is None or membership.periods_paid == 0:
        if membership is None:
            membership = Membership(
                merchant_id=customer.merchant_id, customer=customer, plan=plan, started_at=paid_at,
                current_period_end=paid_at, state="",
            )  # fmt: skip
        membership.anchor = paid_at
    membership.periods_paid += 1
    membership.current_period_end = months_after(
        membership.anchor, PERIOD_MONTHS[plan.period] * membership.periods_paid
    )
    if membership.state != Membership.State.ACTIVE or membership.pk is None:
        _moved(membership, Membership.State.ACTIVE, paid_at)
    else:
        # Paid again while active: a renewal, on her timeline like any change.
        _moved(membership, Membership.State.ACTIVE, paid_at, note="renewed")
    membership.save()
    payment = MembershipPayment.objects.create(
        merchant_id=customer.merchant_id,
        membership=membership,
        external_id=external_id,
        amount=amount,
        currency=currency.upper(),
        paid_at=paid_at,
        period_end=membership.current_period_end,
    )
    program = program_of(merchant_id=customer.merchant_id) if plan.recurring_points else None
    if program is not None:
        at = now()
        entry_write(
            account=account_locked(account=account_for(customer=customer)),
            kind=PointsEntry.Kind.EARN,
            points=plan.recurring_points,
            key=f"membership:{membership.pk}:period:{membership.periods_paid}",
            at=at,
            expires_at=lot_expiry(program=program, available_at=at, zone=customer.merchant.zone),
            note=plan.name[:200],
            activity=Activity.Kind.POINTS_EARNED,
        )
    return payment, True


@transaction.atomic
def membership_cancel(*, membership: Membership, at: datetime | None = None) -> Membership:
    """Cancelled: the benefits last to the end of the paid period, then it ends."""
    at = at or now()
    membership = Membership.objects.select_for_update().select_related("plan").get(pk=membership.pk)
    if membership.state not in (Membership.State.ACTIVE, Membership.State.TRIALING,
                                Membership.State.PAST_DUE):  # fmt: skip
        return membership
    membership.cancelled_at = at
    _moved(membership, Membership.State.CANCELLED, at)
    membership.save()
    return membership


def memberships_run(*, merchant_id: int, at: datetime | None = None) -> dict[str, int]:
    """The daily pass: unpaid periods go past due, and past the grace days end; trials
    that were not paid end; cancelled ones end with their period. Running it twice changes
    nothing the second time."""
    at = at or now()
    counts = {"past_due": 0, "expired": 0}
    due = Membership.objects.filter(
        merchant_id=merchant_id, state__in=LIVE, current_period_end__lte=at
    ).select_related("plan")
    for membership_id in due.values_list("pk", flat=True).order_by("pk").iterator():
        with transaction.atomic():
            membership = (
                Membership.objects.select_for_update().select_related("plan").get(pk=membership_id)
            )
            grace_end = membership.current_period_end + timedelta(days=membership.plan.grace_days)
            if membership.state == Membership.State.ACTIVE and at < grace_end:
                _moved(membership, Membership.State.PAST_DUE, at)
                counts["past_due"] += 1
            elif membership.state != Membership.State.EXPIRED and (
                membership.state in (Membership.State.CANCELLED, Membership.State.TRIALING)
                or at >= grace_end
            ):
                membership.ended_at = at
                _moved(membership, Membership.State.EXPIRED, at)
                counts["expired"] += 1
            else:
                continue
            membership.save()
    return counts
