"""A code at checkout: validated for a customer and a cart, reserved for 15 minutes,
redeemed against an order, released, rolled back when the order is cancelled or refunded.

The limits hold however many requests race (docs/business-rules.md, promotions):
- the global limit and the budget are one guarded UPDATE of the promotion's `taken` and
  `committed` (a live reservation counts until it is released or expires);
- the per-customer limit and a unique code's single use are partial unique constraints on
  the live uses (`CodeUse`), so of two racing requests for the last place one is refused.
Every call is recorded as a CodeAttempt with its answer and reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from campaigns.models import LIVE_USE, Code, CodeAttempt, CodeUse, Promotion, PromotionListEntry
from customers.models import Customer, Order, Refund
from customers.services.data import problems_raise, text_problem
from loyalty.models import Membership, PointsAccount
from loyalty.services.earning import LIVE_MEMBERSHIP
from merchants.models import Merchant

RESERVATION = timedelta(minutes=15)
CENT = Decimal("0.01")

# Why a code was refused: the API answers the key, the dashboard shows the words.
REASONS = {
    "unknown_code": _("No such code."),
    "inactive": _("This promotion is switched off."),
    "not_started": _("This promotion has not started yet."),
    "expired": _("This promotion has ended."),
    "not_eligible": _("This customer is not eligible for this promotion."),
    "not_yours": _("This code belongs to another customer."),
    "min_spend": _("The cart is below the minimum spend."),
    "product_missing": _("The free product is not in the cart."),
    "limit_reached": _("This promotion has been used as often as it may be."),
    "budget_spent": _("This promotion's budget is spent."),
    "not_combinable": _("This code can't be combined with another code in the cart."),
    "already_used": _("This customer has already used this promotion."),
    "code_used": _("This code has already been used."),
    "no_reservation": _("There is no live reservation of this code for this customer."),
    "no_use": _("Nothing to roll back for this order."),
}


@dataclass(frozen=True)
class CartLine:
    sku: str
    price: Decimal
    quantity: int = 1


@dataclass(frozen=True)
class Cart:
    subtotal: Decimal
    shipping: Decimal = Decimal("0.00")
    lines: tuple[CartLine, ...] = ()
    # The other codes already in the cart, as the customer typed them.
    other_codes: tuple[str, ...] = ()


@dataclass
class Answer:
    """What a code is worth for this customer and cart, or why it is refused."""

    accepted: bool
    reason: str = ""
    detail: str = ""
    discount: Decimal = Decimal("0.00")
    bonus_points: int = 0
    promotion: Promotion | None = None
    code: Code | None = None
    use: CodeUse | None = None
    extra: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        return str(REASONS.get(self.reason, "")) if self.reason else ""


class _Refused(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _inputs_checked(*, code: str, cart: Cart | None = None, order_external_id: str = "") -> None:
    """What no column can hold is refused with the field named, before any lookup."""
    problems_raise({
        "code": text_problem(code),
        "order_external_id": text_problem(order_external_id),
        "cart.lines": text_problem([line.sku for line in cart.lines]) if cart else None,
        "cart.other_codes": text_problem(list(cart.other_codes)) if cart else None,
    })  # fmt: skip


def code_normalised(raw: str) -> str:
    """Codes are read as typed at a checkout: spaces around and letter case don't count."""
    return raw.strip().upper()


def code_find(*, merchant: Merchant, code: str) -> Code | None:
    return (
        Code.objects.select_related("promotion")
        .filter(merchant=merchant, code=code_normalised(code))
        .first()
    )


def discount_for(*, promotion: Promotion, cart: Cart) -> Decimal:
    """The money off this cart: never more than what the cart costs."""
    kind = promotion.kind
    if kind == Promotion.Kind.PERCENT:
        off = (cart.subtotal * promotion.value / 100).quantize(CENT, ROUND_HALF_UP)
    elif kind == Promotion.Kind.FIXED_AMOUNT:
        off = promotion.value
    elif kind == Promotion.Kind.FREE_SHIPPING:
        off = cart.shipping
    elif kind == Promotion.Kind.FREE_PRODUCT:
        off = next((line.price for line in cart.lines if line.sku == promotion.product_sku),
                   Decimal("0.00"))  # fmt: skip
    else:
        off = Decimal("0.00")
    ceiling = cart.subtotal + (cart.shipping if kind == Promotion.Kind.FREE_SHIPPING else 0)
    return max(Decimal("0.00"), min(off, ceiling))


def customer_eligible(*, promotion: Promotion, customer: Customer) -> bool:
    """Whether the promotion's eligibility takes in this customer, as of now."""
    rule = promotion.eligibility
    kinds = Promotion.Eligibility
    if rule == kinds.EVERYONE:
        return True
    if rule == kinds.CUSTOMER:
        return promotion.customer_id == customer.pk
    if rule == kinds.SEGMENTS:
        return bool(customer.segment) and customer.segment in promotion.segments
    if rule == kinds.PERSONAS:
        return (
            customer.persona_id is not None
            and promotion.personas.filter(pk=customer.persona_id).exists()
        )
    if rule == kinds.TIERS:
        tier_id = (
            PointsAccount.objects.filter(customer=customer)
            .values_list("tier_id", flat=True)
            .first()
        )
        return tier_id is not None and promotion.tiers.filter(pk=tier_id).exists()
    if rule == kinds.MEMBERS:
        return Membership.objects.filter(
            customer=customer, state__in=LIVE_MEMBERSHIP, plan__in=promotion.plans.all()
        ).exists()
    if rule == kinds.LIST:
        return PromotionListEntry.objects.filter(promotion=promotion, customer=customer).exists()
    return False


def _checked(*, code: Code | None, customer: Customer, cart: Cart, at: datetime) -> Answer:
    """Everything that can be told without taking a place: the code, the window, who may
    use it, the cart, stacking, and the limits as they stand (a reservation takes its
    place with a guarded statement after this)."""
    if code is None:
        return Answer(False, "unknown_code")
    promotion = code.promotion
    answer = Answer(False, promotion=promotion, code=code)
    if not promotion.is_active:
        answer.reason = "inactive"
    elif promotion.starts_at is not None and at < promotion.starts_at:
        answer.reason = "not_started"
    elif promotion.ends_at is not None and at >= promotion.ends_at:
        answer.reason = "expired"
    elif code.customer_id is not None and code.customer_id != customer.pk:
        answer.reason = "not_yours"
    elif not customer_eligible(promotion=promotion, customer=customer):
        answer.reason = "not_eligible"
    elif cart.subtotal < promotion.min_spend:
        answer.reason = "min_spend"
        answer.detail = str(promotion.min_spend)
    elif promotion.kind == Promotion.Kind.FREE_PRODUCT and not any(
        line.sku == promotion.product_sku for line in cart.lines
    ):
        answer.reason = "product_missing"
        answer.detail = promotion.product_sku
    else:
        blocker = _not_combinable(promotion=promotion, cart=cart, own=code)
        if blocker:
            answer.reason, answer.detail = "not_combinable", blocker
    if answer.reason:
        return answer
    answer.discount = discount_for(promotion=promotion, cart=cart)
    answer.bonus_points = (
        promotion.bonus_points if promotion.kind == Promotion.Kind.BONUS_POINTS else 0
    )
    live = CodeUse.objects.filter(state__in=LIVE_USE)
    if promotion.usage_limit is not None and promotion.taken >= promotion.usage_limit:
        answer.reason = "limit_reached"
    elif promotion.budget is not None and promotion.committed + answer.discount > promotion.budget:
        answer.reason = "budget_spent"
    elif (
        code.single_use
        and live.filter(single_code=code)
        .exclude(customer=customer, state=CodeUse.State.RESERVED)
        .exists()
    ):
        # Used by anyone, her too; only her own hold on it is hers to renew or redeem.
        answer.reason = "code_used"
    elif (
        live.filter(promotion=promotion, customer=customer)
        .exclude(state=CodeUse.State.RESERVED, code=code)
        .count()
        >= promotion.per_customer_limit
    ):
        answer.reason = "already_used"
    else:
        answer.accepted = True
    return answer


def _not_combinable(*, promotion: Promotion, cart: Cart, own: Code) -> str:
    """The first other code in the cart this promotion can't go with, or ''."""
    others = [c for c in {code_normalised(raw) for raw in cart.other_codes} if c != own.code]
    if not others:
        return ""
    found = {
        c.code: c.promotion
        for c in Code.objects.select_related("promotion").filter(
            merchant_id=own.merchant_id, code__in=others
        )
    }
    allowed = set(promotion.combinable_with.values_list("pk", flat=True))
    for raw in sorted(others):
        other = found.get(raw)
        if other is None or other.pk == promotion.pk:
            continue
        if promotion.is_exclusive or other.is_exclusive or other.pk not in allowed:
            return raw
    return ""


def _attempt(*, merchant: Merchant, raw: str, customer: Customer | None, action: str,
             cart: Cart | None, answer: Answer) -> None:  # fmt: skip
    CodeAttempt.objects.create(
        merchant=merchant,
        code=code_normalised(raw)[:40],
        promotion=answer.promotion,
        customer=customer,
        action=action,
        accepted=answer.accepted,
        reason=answer.reason,
        detail=answer.detail[:200],
        cart_total=cart.subtotal if cart else Decimal("0.00"),
        discount=answer.discount if answer.accepted else Decimal("0.00"),
    )


def code_validate(*, merchant: Merchant, code: str, customer: Customer, cart: Cart) -> Answer:
    """What the code is worth for this customer and cart now, or why not; takes nothing."""
    _inputs_checked(code=code, cart=cart)
    at = now()
    found = code_find(merchant=merchant, code=code)
    if found is not None:
        reservations_expire(promotion_ids=[found.promotion_id], at=at)
        found.promotion.refresh_from_db(fields=["taken", "committed"])
    answer = _checked(code=found, customer=customer, cart=cart, at=at)
    _attempt(merchant=merchant, raw=code, customer=customer, action=CodeAttempt.Action.VALIDATE,
             cart=cart, answer=answer)  # fmt: skip
    return answer


def code_reserve(*, merchant: Merchant, code: str, customer: Customer, cart: Cart) -> Answer:
    """Holds the code's place for this customer for 15 minutes (the same customer asking
    again renews her hold on the same terms)."""
    _inputs_checked(code=code, cart=cart)
    found = code_find(merchant=merchant, code=code)
    return _take(merchant=merchant, raw=code, found=found, customer=customer, cart=cart,
                 action=CodeAttempt.Action.RESERVE)  # fmt: skip


def code_redeem(
    *, merchant: Merchant, code: str, customer: Customer, cart: Cart, order_external_id: str
) -> Answer:
    """Uses the code on an order: the customer's live reservation of it if she holds one,
    else a place taken now. The same order again answers the first redemption."""
    _inputs_checked(code=code, cart=cart, order_external_id=order_external_id)
    order_external_id = order_external_id.strip()[:100]
    found = code_find(merchant=merchant, code=code)
    if found is not None and order_external_id:
        done = CodeUse.objects.filter(
            code=found, customer=customer, order_external_id=order_external_id,
            state=CodeUse.State.REDEEMED,
        ).first()  # fmt: skip
        if done is not None:
            return Answer(True, discount=done.discount, promotion=found.promotion, code=found,
                          use=done, extra={"replayed": True})  # fmt: skip
    return _take(merchant=merchant, raw=code, found=found, customer=customer, cart=cart,
                 action=CodeAttempt.Action.REDEEM, order_external_id=order_external_id)  # fmt: skip


def _take(*, merchant: Merchant, raw: str, found: Code | None, customer: Customer, cart: Cart,
          action: str, order_external_id: str = "") -> Answer:  # fmt: skip
    """Reserve's and redeem's shared work, for the code `raw` read as `found`."""
    at = now()
    if found is not None:
        reservations_expire(promotion_ids=[found.promotion_id], at=at)
    try:
        with transaction.atomic():
            answer = _take_in_transaction(merchant=merchant, code=found, customer=customer,
                                          cart=cart, at=at, action=action,
                                          order_external_id=order_external_id)  # fmt: skip
    except _Refused as refused:
        answer = Answer(False, refused.reason, refused.detail,
                        promotion=found.promotion if found else None, code=found)  # fmt: skip
    _attempt(merchant=merchant, raw=raw, customer=customer, action=action, cart=cart,
             answer=answer)  # fmt: skip
    return answer


def _take_in_transaction(*, merchant: Merchant, code: Code | None, customer: Customer,
                         cart: Cart, at: datetime, action: str,
                         order_external_id: str) -> Answer:  # fmt: skip
    if code is not None:
        code.promotion.refresh_from_db(fields=["taken", "committed"])
    held = None
    if code is not None:
        held = (
            CodeUse.objects.select_for_update()
            .filter(
                code=code, customer=customer, state=CodeUse.State.RESERVED, reserved_until__gt=at
            )
            .first()
        )
    answer = _checked(code=code, customer=customer, cart=cart, at=at)
    if held is not None and answer.reason in ("", "limit_reached", "budget_spent", "code_used"):
        # Her own hold already counts: it is renewed or turned into the redemption, with
        # the discount it holds moved to this cart's.
        return _hold_moved(held=held, answer=answer, cart=cart, at=at, action=action,
                           order_external_id=order_external_id)  # fmt: skip
    if not answer.accepted:
        raise _Refused(answer.reason, answer.detail)
    promotion = answer.promotion
    place = Q(pk=promotion.pk)
    if promotion.usage_limit is not None:
        place &= Q(taken__lt=promotion.usage_limit)
    if promotion.budget is not None:
        place &= Q(committed__lte=promotion.budget - answer.discount)
    if not Promotion.objects.filter(place).update(
        taken=F("taken") + 1, committed=F("committed") + answer.discount
    ):
        promotion.refresh_from_db(fields=["taken", "committed"])
        limit = promotion.usage_limit is not None and promotion.taken >= promotion.usage_limit
        raise _Refused("limit_reached" if limit else "budget_spent")
    slots = set(
        CodeUse.objects.filter(
            promotion=promotion, customer=customer, state__in=LIVE_USE
        ).values_list("slot", flat=True)
    )
    slot = next(n for n in range(1, promotion.per_customer_limit + 2) if n not in slots)
    if slot > promotion.per_customer_limit:
        raise _Refused("already_used")
    redeeming = action == CodeAttempt.Action.REDEEM
    try:
        with transaction.atomic():
            answer.use = CodeUse.objects.create(
                merchant_id=promotion.merchant_id,
                promotion=promotion,
                code=code,
                customer=customer,
                slot=slot,
                single_code=code if code.single_use else None,
                state=CodeUse.State.REDEEMED if redeeming else CodeUse.State.RESERVED,
                discount=answer.discount,
                currency=merchant.base_currency,
                cart_total=cart.subtotal,
                order_external_id=order_external_id if redeeming else "",
                reserved_until=None if redeeming else at + RESERVATION,
                redeemed_at=at if redeeming else None,
            )
    except IntegrityError as clash:
        # Another request took the same place a moment ago: which one tells the reason.
        single = "single_code" in str(clash) and code.single_use
        raise _Refused("code_used" if single else "already_used") from clash
    return answer


def _hold_moved(*, held: CodeUse, answer: Answer, cart: Cart, at: datetime, action: str,
                order_external_id: str) -> Answer:  # fmt: skip
    promotion = held.promotion
    discount = discount_for(promotion=promotion, cart=cart)
    change = discount - held.discount
    if change:
        place = Q(pk=promotion.pk)
        if promotion.budget is not None:
            place &= Q(committed__lte=promotion.budget - change)
        if not Promotion.objects.filter(place).update(committed=F("committed") + change):
            raise _Refused("budget_spent")
    held.discount, held.cart_total = discount, cart.subtotal
    if action == CodeAttempt.Action.REDEEM:
        held.state, held.redeemed_at, held.reserved_until = CodeUse.State.REDEEMED, at, None
        held.order_external_id = order_external_id
    else:
        held.reserved_until = at + RESERVATION
    held.save(update_fields=["discount", "cart_total", "state", "redeemed_at",
                             "reserved_until", "order_external_id"])  # fmt: skip
    return Answer(True, discount=discount, bonus_points=answer.bonus_points,
                  promotion=promotion, code=held.code, use=held)  # fmt: skip


def _uses_ended(*, uses: list[CodeUse], state: str, at: datetime) -> int:
    """Ends live uses (already locked) and gives their places and discounts back to their
    promotions, each promotion in one statement."""
    if not uses:
        return 0
    CodeUse.objects.filter(pk__in=[u.pk for u in uses]).update(state=state, ended_at=at)
    by_promotion: dict[int, tuple[int, Decimal]] = {}
    for use in uses:
        count, money = by_promotion.get(use.promotion_id, (0, Decimal("0.00")))
        by_promotion[use.promotion_id] = (count + 1, money + use.discount)
    for promotion_id in sorted(by_promotion):
        count, money = by_promotion[promotion_id]
        Promotion.objects.filter(pk=promotion_id).update(
            taken=F("taken") - count, committed=F("committed") - money
        )
    return len(uses)


def code_release(*, merchant: Merchant, code: str, customer: Customer) -> Answer:
    """Lets go of the customer's live reservation of the code (the cart was abandoned)."""
    _inputs_checked(code=code)
    at = now()
    found = code_find(merchant=merchant, code=code)
    with transaction.atomic():
        uses = list(
            CodeUse.objects.select_for_update().filter(
                code=found, customer=customer, state=CodeUse.State.RESERVED
            )
        ) if found else []  # fmt: skip
        _uses_ended(uses=uses, state=CodeUse.State.RELEASED, at=at)
    answer = (
        Answer(True, promotion=found.promotion, code=found, use=uses[0])
        if uses
        else Answer(False, "no_reservation" if found else "unknown_code",
                    promotion=found.promotion if found else None, code=found)
    )  # fmt: skip
    _attempt(merchant=merchant, raw=code, customer=customer,
             action=CodeAttempt.Action.RELEASE, cart=None, answer=answer)  # fmt: skip
    return answer


def codes_roll_back(*, merchant: Merchant, order_external_id: str) -> int:
    """A cancelled or refunded order gives back the codes it used, once: a second call
    finds nothing live. Returns how many uses were rolled back."""
    _inputs_checked(code="", order_external_id=order_external_id)
    at = now()
    with transaction.atomic():
        uses = list(
            CodeUse.objects.select_for_update()
            .select_related("code")
            .filter(
                merchant=merchant,
                order_external_id=order_external_id.strip(),
                state=CodeUse.State.REDEEMED,
            )
            .order_by("pk")
        )
        ended = _uses_ended(uses=uses, state=CodeUse.State.ROLLED_BACK, at=at)
    for use in uses:
        _attempt(merchant=merchant, raw=use.code.code, customer=use.customer,
                 action=CodeAttempt.Action.ROLLBACK, cart=None,
                 answer=Answer(True, promotion=use.promotion, use=use))  # fmt: skip
    if not uses:
        _attempt(merchant=merchant, raw="", customer=None, action=CodeAttempt.Action.ROLLBACK,
                 cart=None, answer=Answer(False, "no_use", detail=order_external_id))  # fmt: skip
    return ended


def reservations_expire(*, at: datetime | None = None, promotion_ids=None) -> int:
    """Ends reservations past their 15 minutes, freeing their places (the hourly job, and
    every take of a code for its own promotion first). Rows another transaction holds are
    left for the next run."""
    at = at or now()
    stale = CodeUse.objects.filter(state=CodeUse.State.RESERVED, reserved_until__lte=at)
    if promotion_ids is not None:
        stale = stale.filter(promotion_id__in=promotion_ids)
    ended = 0
    while True:
        with transaction.atomic():
            uses = list(stale.select_for_update(skip_locked=True).order_by("pk")[:1000])
            ended += _uses_ended(uses=uses, state=CodeUse.State.EXPIRED, at=at)
        if len(uses) < 1000:
            return ended


def promotion_counts(*, promotion: Promotion) -> dict:
    """What the live uses add up to: kept equal to the promotion's counters."""
    live = CodeUse.objects.filter(promotion=promotion, state__in=LIVE_USE).aggregate(
        count=Count("id"), money=Sum("discount")
    )
    return {"taken": live["count"], "committed": live["money"] or Decimal("0.00")}


def order_cancelled(*, order: Order) -> None:
    """customers/ cancelled the order (API or webhook), in its transaction."""
    codes_roll_back(merchant=order.merchant, order_external_id=order.external_id)


def order_refunded(*, refund: Refund) -> None:
    """customers/ recorded a refund: once the order is refunded in full, its codes go back."""
    order = refund.order
    if order.status == Order.Status.REFUNDED:
        codes_roll_back(merchant=order.merchant, order_external_id=order.external_id)
