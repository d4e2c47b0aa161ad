"""Referrals: a friend who comes with a customer's code gets a welcome reward; the referrer
earns points on the friend's first order, pending for the return window like any order's.
Suspicious referrals wait for a member of staff."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.models import Activity, Order, PortalSignIn
from customers.services import CustomerData, customer_upsert
from customers.services.data import problems_raise, text_problem
from loyalty import reactions
from loyalty.models import PointsAccount, PointsEntry, Redemption, Referral
from loyalty.services.ledger import (
    account_for,
    account_locked,
    code_make,
    entry_write,
    lot_expiry,
    program_of,
)
from merchants.models import Merchant, email_mailbox

# More referrals than this from one address in a week wait for review.
IP_WEEKLY_LIMIT = 3
# A friend arriving from an address the referrer signed in from this recently waits too.
SAME_ADDRESS_WINDOW = timedelta(days=90)


class Flag:
    SAME_EMAIL = "same_email"
    SAME_PHONE = "same_phone"
    SAME_ADDRESS = "same_address"
    BUSY_ADDRESS = "busy_address"
    ORDERED_BEFORE = "ordered_before"


@transaction.atomic
def referral_record(
    *,
    merchant: Merchant,
    code: str,
    friend: CustomerData,
    ip_address: str | None = None,
    at: datetime | None = None,
) -> Referral:
    """A friend arrived with a referral code. Checks for fraud (the referrer's own email or
    phone, many referrals from one address in a week, a friend who already ordered);
    a clean one gives the friend their welcome reward at once, a flagged one waits."""
    problems_raise({"code": text_problem(code)})
    at = at or now()
    referrer_account = (
        PointsAccount.objects.filter(merchant=merchant, referral_code=code.strip().upper())
        .select_related("customer")
        .first()
    )
    if referrer_account is None:
        raise ValidationError({"code": _("No such referral code.")})
    referrer = referrer_account.customer
    person, _created = customer_upsert(merchant=merchant, data=friend, source="referral", at=at)
    if person.pk == referrer.pk:
        raise ValidationError({"code": _("A customer can't refer themselves.")})
    if Referral.objects.filter(friend=person).exists():
        raise ValidationError({"friend": _("This customer was already referred.")})
    flags = []
    if referrer.email and email_mailbox(referrer.email) == email_mailbox(person.email or ""):
        flags.append(Flag.SAME_EMAIL)
    if (
        ip_address
        and PortalSignIn.objects.filter(
            customer=referrer, ip_address=ip_address, created_at__gte=at - SAME_ADDRESS_WINDOW
        ).exists()
    ):
        # The friend arrives from an address the referrer signed in to the rewards page from.
        flags.append(Flag.SAME_ADDRESS)
    if referrer.phone and referrer.phone == person.phone:
        flags.append(Flag.SAME_PHONE)
    if ip_address and (
        Referral.objects.filter(
            merchant=merchant, ip_address=ip_address, created_at__gte=at - timedelta(days=7)
        ).count()
        >= IP_WEEKLY_LIMIT
    ):
        flags.append(Flag.BUSY_ADDRESS)
    if Order.objects.filter(customer=person).exists():
        flags.append(Flag.ORDERED_BEFORE)
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                merchant=merchant,
                referrer=referrer,
                friend=person,
                state=Referral.State.FLAGGED if flags else Referral.State.INVITED,
                flags=flags,
                ip_address=ip_address,
                created_at=at,
            )
    except IntegrityError as error:
        raise ValidationError({"friend": _("This customer was already referred.")}) from error
    if not flags:
        _welcome(referral)
    return referral


def _welcome(referral: Referral) -> None:
    """The friend's welcome reward: a code that cost them no points."""
    program = program_of(merchant_id=referral.merchant_id)
    reward = program.friend_reward if program else None
    if reward is None or referral.welcome_id:
        return
    account = account_for(customer=referral.friend)
    referral.welcome = Redemption.objects.create(
        merchant_id=referral.merchant_id,
        account=account,
        reward=reward,
        entry=None,
        points=0,
        amount=reward.value,
        currency=referral.merchant.base_currency,
        code=code_make(10),
    )
    reactions.code_issued(redemption=referral.welcome)
    referral.save(update_fields=["welcome"])


def _reward_referrer(referral: Referral, order: Order) -> None:
    program = program_of(merchant_id=referral.merchant_id)
    if program is None or not program.referrer_points:
        return
    account = account_locked(account=account_for(customer=referral.referrer))
    # Like the friend's order: pending until its return window has passed, and expiring
    # as a lot available then does.
    available_at = order.placed_at + timedelta(days=program.pending_days)
    entry_write(
        account=account,
        kind=PointsEntry.Kind.EARN,
        points=program.referrer_points,
        key=f"referral:{referral.pk}",
        available_at=available_at,
        expires_at=lot_expiry(
            program=program, available_at=available_at, zone=referral.merchant.zone
        ),
        order=order,
        note=_("Referred %(name)s") % {"name": str(referral.friend)[:150]},
        activity=Activity.Kind.REFERRAL_REWARDED,
    )
    referral.state = Referral.State.REWARDED
    referral.order = order
    referral.save(update_fields=["state", "order"])


def referrals_on_orders(*, orders) -> None:
    """A referred friend's first order rewards the referrer (unless the referral waits for
    review, or was rejected)."""
    friends = {o.customer_id: o for o in sorted(orders, key=lambda o: o.placed_at, reverse=True)}
    # Most orders find none: the referral row alone is locked, and what it names is read
    # only for the ones found.
    invited = list(
        Referral.objects.select_for_update(of=("self",))
        .filter(friend_id__in=friends, state=Referral.State.INVITED)
        .values_list("pk", flat=True)
    )
    if not invited:
        return
    for referral in Referral.objects.filter(pk__in=invited).select_related(
        "merchant", "friend", "referrer"
    ):
        _reward_referrer(referral, friends[referral.friend_id])


@transaction.atomic
def referral_review(*, referral: Referral, approve: bool, by, note: str = "") -> Referral:
    """Staff decide on a flagged referral: approved ones get the welcome reward, and the
    referrer's points if the friend has ordered; rejected ones get nothing."""
    from merchants.services import audit_record

    referral = (
        Referral.objects.select_for_update()
        .select_related("merchant", "friend", "referrer")
        .get(pk=referral.pk)
    )
    if referral.state != Referral.State.FLAGGED:
        raise ValidationError({"referral": _("This referral is not waiting for review.")})
    referral.reviewed_by = by
    referral.reviewed_at = now()
    referral.state = Referral.State.INVITED if approve else Referral.State.REJECTED
    referral.save(update_fields=["state", "reviewed_by", "reviewed_at"])
    audit_record(
        action="loyalty.referral_reviewed",
        merchant=referral.merchant,
        actor=by,
        target=referral.friend,
        after={"approved": approve, "flags": referral.flags, "note": note[:200]},
    )
    if approve:
        _welcome(referral)
        first = (
            Order.objects.filter(customer=referral.friend)
            .exclude(status=Order.Status.CANCELLED)
            .order_by("placed_at")
            .first()
        )
        if first is not None:
            _reward_referrer(referral, first)
    return referral
