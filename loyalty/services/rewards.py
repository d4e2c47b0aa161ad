"""Spending points: a reward redeemed for a single-use code, and the code used by an order."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.models import Activity, Order
from loyalty import reactions
from loyalty.models import Membership, PointsAccount, PointsEntry, Redemption, Reward
from loyalty.services.ledger import account_locked, code_make, entry_get, entry_write

CODE_LENGTH = 10
# A cancelled membership lasts to the end of its paid period.
LIVE_STATES = (
    Membership.State.TRIALING,
    Membership.State.ACTIVE,
    Membership.State.PAST_DUE,
    Membership.State.CANCELLED,
)


def reward_open_to(
    *, tier_ids: set[int], plan_ids: set[int], tier_id: int | None, plan_id: int | None
) -> bool:
    """Whether a reward limited to these tiers or plans (none: open to all) is open to a
    customer with this tier and this live membership plan."""
    return (not tier_ids or tier_id in tier_ids) and (not plan_ids or plan_id in plan_ids)


def reward_available_to(*, reward: Reward, account: PointsAccount) -> bool:
    """Whether the reward's tier and membership conditions let this customer have it."""
    live = (
        Membership.objects.filter(customer_id=account.customer_id, state__in=LIVE_STATES)
        .values_list("plan_id", flat=True)
        .first()
    )
    return reward_open_to(
        tier_ids={t.pk for t in reward.tiers.all()},
        plan_ids={p.pk for p in reward.plans.all()},
        tier_id=account.tier_id,
        plan_id=live,
    )


def _priced(*, reward: Reward, units: int | None) -> tuple[int, Decimal]:
    """(points, amount) of one redemption. "N points = 1 unit": the customer chooses how many
    units; every other kind costs its points for its value."""
    if reward.kind != Reward.Kind.POINTS_FOR_AMOUNT:
        return reward.points_cost, reward.value
    if not units or units < 1:
        raise ValidationError({"units": _("Choose how many to redeem.")})
    if reward.max_units and units > reward.max_units:
        raise ValidationError(
            {"units": _("At most %(count)s at a time.") % {"count": reward.max_units}}
        )
    return reward.points_cost * units, Decimal(units).quantize(Decimal("0.01"), ROUND_DOWN)


@transaction.atomic
def reward_redeem(
    *, account: PointsAccount, reward: Reward, key: str, units: int | None = None
) -> tuple[Redemption, bool]:
    """Spends the points and issues a single-use code, all or nothing. The same key again
    (a double click, a second tab, a retried request) returns the first redemption and
    spends nothing. Returns (redemption, created)."""
    if reward.merchant_id != account.merchant_id:
        raise ValidationError({"reward": _("No such reward.")})
    full_key = f"redeem:{account.pk}:{key}"
    account = account_locked(account=account)
    earlier = entry_get(merchant_id=account.merchant_id, key=full_key)
    if earlier is not None:
        return Redemption.objects.get(entry=earlier), False
    if not reward.is_active:
        raise ValidationError({"reward": _("This reward is no longer offered.")})
    if not reward_available_to(reward=reward, account=account):
        raise ValidationError({"reward": _("This reward is not part of your tier or membership.")})
    if reward.per_customer_limit is not None:
        taken = Redemption.objects.filter(account=account, reward=reward).exclude(
            state=Redemption.State.CANCELLED
        )
        if taken.count() >= reward.per_customer_limit:
            raise ValidationError({"reward": _("You have already redeemed this reward.")})
    points, amount = _priced(reward=reward, units=units)
    # One guarded statement: two customers can't both take the last one.
    in_stock = Reward.objects.filter(pk=reward.pk, stock__gt=0)
    if reward.stock is not None:
        if not in_stock.update(stock=F("stock") - 1):
            raise ValidationError({"reward": _("This reward is out of stock.")})
        from loyalty.selectors import catalog_forget  # the page shows what is left

        catalog_forget(merchant_id=reward.merchant_id)
    entry, _created = entry_write(
        account=account,
        kind=PointsEntry.Kind.REDEEM,
        points=-points,
        key=full_key,
        note=reward.name[:200],
        activity=Activity.Kind.POINTS_REDEEMED,
    )
    for _attempt in range(5):
        try:
            with transaction.atomic():
                redemption = Redemption.objects.create(
                    merchant_id=account.merchant_id,
                    account=account,
                    reward=reward,
                    entry=entry,
                    points=points,
                    amount=amount,
                    currency=account.merchant.base_currency,
                    code=code_make(CODE_LENGTH),
                )
                reactions.code_issued(redemption=redemption)
            return redemption, True
        except IntegrityError:
            continue
    raise IntegrityError("Could not issue a unique code; try again.")


def reward_redeem_from_page(
    *, account: PointsAccount, reward: Reward, page_state: int, units: int | None = None
) -> tuple[Redemption, bool]:
    """A redemption pressed on the rewards page. Keyed by the reward and the ledger state the
    page was drawn from: a double click or a second tab drawn from the same balance spends
    once, and a page drawn after it (a new state) may redeem again."""
    return reward_redeem(
        account=account, reward=reward, key=f"portal:{reward.pk}:{page_state}", units=units
    )


@transaction.atomic
def redemption_use(*, merchant_id: int, code: str, order: Order | None) -> Redemption:
    """Marks a code used by an order. A code is used once: the guarded update lets one of
    two concurrent uses through, and the other gets an error naming the code."""
    code = code.strip().upper()
    redemption = Redemption.objects.filter(merchant_id=merchant_id, code=code).first()
    if redemption is None:
        raise ValidationError({"code": _("No such code.")})
    if order is not None and order.merchant_id != merchant_id:
        raise ValidationError({"order": _("No such order.")})
    if not redemption_mark_used(redemption=redemption, order=order):
        raise ValidationError({"code": _("This code was already used or cancelled.")})
    reactions.code_used(redemption=redemption, order=order)
    return redemption


def redemption_mark_used(*, redemption: Redemption, order: Order | None) -> bool:
    """The guarded update from ready to used: False when the code was already used or
    cancelled (of two racing uses, one gets True)."""
    return _redemption_moved(redemption, Redemption.State.ISSUED, Redemption.State.USED,
                             used_at=now(), used_order=order)  # fmt: skip


def redemption_restore(*, redemption: Redemption) -> bool:
    """The order that used the code was cancelled or refunded: the code is ready again."""
    return _redemption_moved(redemption, Redemption.State.USED, Redemption.State.ISSUED,
                             used_at=None, used_order=None)  # fmt: skip


def _redemption_moved(redemption: Redemption, was: str, becomes: str, **fields) -> bool:
    moved = Redemption.objects.filter(pk=redemption.pk, state=was).update(state=becomes, **fields)
    if moved:
        redemption.state = becomes
        for name, value in fields.items():
            setattr(redemption, name, value)
    return bool(moved)
