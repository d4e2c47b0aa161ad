"""A code at checkout: validated for a customer and a cart, reserved for 15 minutes,
redeemed against an order, released, rolled back when the order is cancelled or refunded.

The limits hold however many requests race (docs/business-rules.md, promotions):
- the global limit and the budget are one guarded UPDATE of the promotion's `taken` and
  `committed` (a live reservation counts until it is released or expires);
- the per-customer limit and a unique code's single use are partial unique constraints on
  the live uses (`CodeUse`), so of two racing requests for the last place one is refused.
Every call is recorded as a CodeAttempt with its answer and reason.

A loyalty reward's code is a code of the same table and lookup (Code.redemption): bound to
the customer who redeemed points for it, used once, with the reward's terms and no
promotion's counters; redeemed here it is marked used in loyalty/, rolled back it is ready
again. An order stored with codes (API, webhook, import) redeems them in its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property

from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, Q, Sum
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from campaigns.models import LIVE_USE, Code, CodeAttempt, CodeUse, Promotion, PromotionListEntry
from campaigns.services.batches import code_draw
from campaigns.services.shops import shop_push_queue
from customers.models import Customer, Order, OrderLine, Refund
from customers.services.data import problems_raise, text_problem
from loyalty.models import Membership, PointsAccount, Redemption, Reward
from loyalty.services.earning import LIVE_MEMBERSHIP, bonus_grant, bonus_take_back
from loyalty.services.ledger import account_for, account_locked
from loyalty.services.rewards import redemption_mark_used, redemption_restore
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
    "cancelled": _("This reward's code was cancelled."),
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


def _codes() -> models.QuerySet[Code]:
    return Code.objects.select_related("promotion", "redemption__reward")


def code_find(*, merchant: Merchant, code: str) -> Code | None:
    """The one lookup of a checkout code, a promotion's or a reward's."""
    return _codes().filter(merchant=merchant, code=code_normalised(code)).first()


@dataclass(frozen=True)
class Terms:
    """What a code takes off: a promotion's kind and value, or a redeemed reward's."""

    kind: str
    value: Decimal
    product_sku: str = ""


def code_terms(code: Code) -> Terms:
    promotion = code.promotion
    if promotion is not None:
        return Terms(promotion.kind, promotion.value, promotion.product_sku)
    redemption = code.redemption
    reward = redemption.reward
    if reward.kind == Reward.Kind.PERCENT:
        return Terms(Promotion.Kind.PERCENT, reward.value)
    if reward.kind in (Reward.Kind.FREE_SHIPPING, Reward.Kind.FREE_PRODUCT):
        return Terms(reward.kind, Decimal("0.00"), reward.product_sku)
    # An amount off, or the amount the customer chose to turn her points into.
    return Terms(Promotion.Kind.FIXED_AMOUNT, redemption.amount)


def discount_for(*, terms: Terms, cart: Cart) -> Decimal:
    """The money off this cart: never more than what the cart costs."""
    kind = terms.kind
    if kind == Promotion.Kind.PERCENT:
        off = (cart.subtotal * terms.value / 100).quantize(CENT, ROUND_HALF_UP)
    elif kind == Promotion.Kind.FIXED_AMOUNT:
        off = terms.value
    elif kind == Promotion.Kind.FREE_SHIPPING:
        off = cart.shipping
    elif kind == Promotion.Kind.FREE_PRODUCT:
        off = next((line.price for line in cart.lines if line.sku == terms.product_sku),
                   Decimal("0.00"))  # fmt: skip
    else:
        off = Decimal("0.00")
    ceiling = cart.subtotal + (cart.shipping if kind == Promotion.Kind.FREE_SHIPPING else 0)
    return max(Decimal("0.00"), min(off, ceiling))


class Facts:
    """What eligibility reads of one customer, each read once and only when a rule asks."""

    def __init__(self, customer: Customer) -> None:
        self.customer = customer

    @cached_property
    def tier_id(self) -> int | None:
        return (
            PointsAccount.objects.filter(customer=self.customer)
            .values_list("tier_id", flat=True)
            .first()
        )

    @cached_property
    def plan_ids(self) -> set[int]:
        return set(
            Membership.objects.filter(
                customer=self.customer, state__in=LIVE_MEMBERSHIP
            ).values_list("plan_id", flat=True)
        )

    @cached_property
    def listed_in(self) -> set[int]:
        return set(
            PromotionListEntry.objects.filter(customer=self.customer).values_list(
                "promotion_id", flat=True
            )
        )


def promotion_takes_in(*, promotion: Promotion, facts: Facts) -> bool:
    """Whether the promotion's eligibility takes in this customer, as of now (its tiers,
    personas and plans read through prefetch when the caller prefetched them)."""
    customer = facts.customer
    rule = promotion.eligibility
    kinds = Promotion.Eligibility
    if rule == kinds.EVERYONE:
        return True
    if rule == kinds.CUSTOMER:
        return promotion.customer_id == customer.pk
    if rule == kinds.SEGMENTS:
        return bool(customer.segment) and customer.segment in promotion.segments
    if rule == kinds.PERSONAS:
        return customer.persona_id is not None and customer.persona_id in {
            p.pk for p in promotion.personas.all()
        }
    if rule == kinds.TIERS:
        return facts.tier_id is not None and facts.tier_id in {t.pk for t in promotion.tiers.all()}
    if rule == kinds.MEMBERS:
        return bool(facts.plan_ids & {p.pk for p in promotion.plans.all()})
    if rule == kinds.LIST:
        return promotion.pk in facts.listed_in
    return False


def customer_eligible(*, promotion: Promotion, customer: Customer) -> bool:
    return promotion_takes_in(promotion=promotion, facts=Facts(customer))


def code_issue(*, promotion: Promotion, customer: Customer) -> Code:
    """A unique code of the promotion bound to this customer (the rewards page's "get my
    code"): the one she already holds unused, else a new one. Her row is locked, so two
    presses make one code."""
    if promotion.codes == Promotion.Codes.PUBLIC:
        return promotion.code_set.first()
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        # Her codes are bound to her, so only her own uses can hold them: read hers, not
        # every live use of the shop (which grows with each redemption).
        live = CodeUse.objects.filter(customer=customer, state__in=LIVE_USE,
                                      single_code__isnull=False)  # fmt: skip
        mine = (
            Code.objects.filter(promotion=promotion, customer=customer)
            .exclude(pk__in=live.values("single_code"))
            .order_by("pk")
            .first()
        )
        if mine is not None:
            return mine
        batch = promotion.batches.order_by("-pk").first()
        prefix, length = (batch.prefix, batch.length) if batch else ("", 8)
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    issued = Code.objects.create(
                        merchant_id=promotion.merchant_id, promotion=promotion,
                        code=code_draw(prefix=prefix, length=length), single_use=True,
                        customer=customer,
                    )  # fmt: skip
                shop_push_queue(promotion=promotion)
                return issued
            except IntegrityError:
                continue
    raise IntegrityError("Could not issue a unique code; try again.")


# Refusals a stale reservation (past its 15 minutes, not yet ended) could be behind: only
# these make a decision end stale reservations and decide again.
_CROWDED = ("limit_reached", "budget_spent", "code_used", "already_used")


class _Uses:
    """The live uses one decision reads, in one statement and only if a check asks:
    anyone's of a single-use code, and the customer's own of the promotion (of the code,
    for a reward's)."""

    def __init__(self, *, code: Code, customer: Customer) -> None:
        self.code, self.customer = code, customer

    @cached_property
    def rows(self) -> list[CodeUse]:
        code, customer = self.code, self.customer
        hers = Q(promotion_id=code.promotion_id) if code.promotion_id else Q(code_id=code.pk)
        return list(
            CodeUse.objects.filter(
                Q(single_code_id=code.pk) | (hers & Q(customer_id=customer.pk)),
                state__in=LIVE_USE,
            )
        )

    def _hers(self, *, this_code: bool = False) -> list[CodeUse]:
        return [
            use for use in self.rows
            if use.customer_id == self.customer.pk
            and (use.promotion_id == self.code.promotion_id if self.code.promotion_id
                 else use.code_id == self.code.pk)
            and (not this_code or use.code_id == self.code.pk)
        ]  # fmt: skip

    def held(self, at: datetime) -> CodeUse | None:
        """Her live reservation of this code."""
        return next((use for use in self._hers(this_code=True)
                     if use.state == CodeUse.State.RESERVED and use.reserved_until > at),
                    None)  # fmt: skip

    def redeemed_for(self, order_external_id: str) -> CodeUse | None:
        """Her redemption of this code for this order, if it was made already."""
        return next((use for use in self._hers(this_code=True)
                     if use.state == CodeUse.State.REDEEMED
                     and use.order_external_id == order_external_id), None)  # fmt: skip

    def code_taken(self, *, redeemed_only: bool = False) -> bool:
        """A single-use code in use by anyone, her too; only her own hold on it is hers to
        renew or redeem."""
        return any(
            use.single_code_id == self.code.pk
            and (use.state == CodeUse.State.REDEEMED if redeemed_only
                 else not (use.customer_id == self.customer.pk
                           and use.state == CodeUse.State.RESERVED))
            for use in self.rows
        )  # fmt: skip

    def hers_counted(self) -> int:
        """Her live uses of the promotion, her hold on this very code aside."""
        return sum(
            1 for use in self._hers()
            if not (use.state == CodeUse.State.RESERVED and use.code_id == self.code.pk)
        )  # fmt: skip

    def free_slot(self) -> int:
        taken = {use.slot for use in self._hers()}
        return next(n for n in range(1, len(taken) + 2) if n not in taken)


def _checked(*, code: Code | None, customer: Customer, cart: Cart, at: datetime,
             uses: _Uses | None) -> Answer:  # fmt: skip
    """Everything that can be told without taking a place: the code, the window, who may
    use it, the cart, stacking, and the limits as they stand (a reservation takes its
    place with a guarded statement after this)."""
    if code is None or uses is None:
        return Answer(False, "unknown_code")
    if code.promotion is None:
        return _reward_checked(code=code, customer=customer, cart=cart, uses=uses)
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
    answer.discount = discount_for(terms=code_terms(code), cart=cart)
    answer.bonus_points = (
        promotion.bonus_points if promotion.kind == Promotion.Kind.BONUS_POINTS else 0
    )
    if promotion.usage_limit is not None and promotion.taken >= promotion.usage_limit:
        answer.reason = "limit_reached"
    elif promotion.budget is not None and promotion.committed + answer.discount > promotion.budget:
        answer.reason = "budget_spent"
    elif code.single_use and uses.code_taken():
        answer.reason = "code_used"
    elif uses.hers_counted() >= promotion.per_customer_limit:
        answer.reason = "already_used"
    else:
        answer.accepted = True
    return answer


def _reward_checked(*, code: Code, customer: Customer, cart: Cart, uses: _Uses) -> Answer:
    """A reward's code: hers alone, once, on the reward's terms."""
    answer = Answer(False, code=code)
    redemption = code.redemption
    terms = code_terms(code)
    if code.customer_id != customer.pk:
        answer.reason = "not_yours"
    elif redemption.state == Redemption.State.CANCELLED:
        answer.reason = "cancelled"
    elif redemption.state == Redemption.State.USED:
        answer.reason = "code_used"
    elif terms.kind == Promotion.Kind.FREE_PRODUCT and not any(
        line.sku == terms.product_sku for line in cart.lines
    ):
        answer.reason, answer.detail = "product_missing", terms.product_sku
    elif blocker := _not_combinable(promotion=None, cart=cart, own=code):
        answer.reason, answer.detail = "not_combinable", blocker
    elif uses.code_taken(redeemed_only=True):
        answer.reason = "code_used"
    else:
        answer.accepted = True
        answer.discount = discount_for(terms=terms, cart=cart)
    return answer


def _not_combinable(*, promotion: Promotion | None, cart: Cart, own: Code) -> str:
    """The first other code in the cart this promotion (None: a reward's code) can't go
    with, or ''. A reward's code goes with any code whose promotion is not exclusive."""
    others = [c for c in {code_normalised(raw) for raw in cart.other_codes} if c != own.code]
    if not others:
        return ""
    found = {
        c.code: c.promotion
        for c in Code.objects.select_related("promotion").filter(
            merchant_id=own.merchant_id, code__in=others
        )
    }
    allowed = set(promotion.combinable_with.values_list("pk", flat=True)) if promotion else set()
    for raw in sorted(others):
        if raw not in found:
            continue
        other = found[raw]
        if promotion is None:
            if other is not None and other.is_exclusive:
                return raw
        elif other is None:
            if promotion.is_exclusive:
                return raw
        elif other.pk != promotion.pk and (
            promotion.is_exclusive or other.is_exclusive or other.pk not in allowed
        ):
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


def _stale_released(*, code: Code, at: datetime) -> int:
    """Ends the reservations past their 15 minutes that could stand in this code's way
    (its promotion's, or its own for a reward's) and reads the counters again. Asked only
    when a decision was refused for want of a place: the hourly job ends the rest."""
    if code.promotion_id is not None:
        ended = reservations_expire(promotion_ids=[code.promotion_id], at=at)
    else:
        ended = reservations_expire(code_ids=[code.pk], at=at)
    if ended:
        _fresh(code)
    return ended


def code_validate(*, merchant: Merchant, code: str, customer: Customer, cart: Cart) -> Answer:
    """What the code is worth for this customer and cart now, or why not; takes nothing."""
    _inputs_checked(code=code, cart=cart)
    at = now()
    found = code_find(merchant=merchant, code=code)

    def decided() -> Answer:
        uses = _Uses(code=found, customer=customer) if found is not None else None
        return _checked(code=found, customer=customer, cart=cart, at=at, uses=uses)

    answer = decided()
    if answer.reason in _CROWDED and _stale_released(code=found, at=at):
        answer = decided()
    _attempt(merchant=merchant, raw=code, customer=customer, action=CodeAttempt.Action.VALIDATE,
             cart=cart, answer=answer)  # fmt: skip
    return answer


def _fresh(code: Code) -> None:
    """The counters (or the reward's state) as they are now, not as first read."""
    if code.promotion is not None:
        code.promotion.refresh_from_db(fields=["taken", "committed"])
    else:
        code.redemption.refresh_from_db(fields=["state", "used_at", "used_order"])


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
    else a place taken now. The same order again answers the first redemption. An order
    already stored under that id is linked to the use (else its webhook links it)."""
    _inputs_checked(code=code, cart=cart, order_external_id=order_external_id)
    order_external_id = order_external_id.strip()[:128]
    found = code_find(merchant=merchant, code=code)
    order = _order_of(merchant=merchant, external_id=order_external_id) if found else None
    return _take(merchant=merchant, raw=code, found=found, customer=customer, cart=cart,
                 action=CodeAttempt.Action.REDEEM, order_external_id=order_external_id,
                 order=order)  # fmt: skip


def _order_of(*, merchant: Merchant, external_id: str) -> Order | None:
    """The shop's order with this id from any source, the first stored if several. Asked
    by source, so each is one probe of the (merchant, source, external_id) unique index; a
    plain `.first()` walks the orders by id, all of them when there is none yet."""
    if not external_id:
        return None
    found = Order.objects.filter(
        merchant=merchant, source__in=Order.Source.values, external_id=external_id
    ).order_by()
    return min(found, key=lambda order: order.pk, default=None)


def _take(*, merchant: Merchant, raw: str, found: Code | None, customer: Customer, cart: Cart,
          action: str, order_external_id: str = "",
          order: Order | None = None) -> Answer:  # fmt: skip
    """Reserve's and redeem's shared work, for the code `raw` read as `found`: decided in
    one transaction, and once more if stale reservations stood in the way."""

    def taken() -> Answer:
        try:
            with transaction.atomic():
                answer = _take_in_transaction(merchant=merchant, code=found, customer=customer,
                                              cart=cart, at=at, action=action,
                                              order_external_id=order_external_id,
                                              order=order)  # fmt: skip
                if not answer.extra.get("replayed"):
                    # Recorded with the use it made: one commit for both.
                    _attempt(merchant=merchant, raw=raw, customer=customer, action=action,
                             cart=cart, answer=answer)  # fmt: skip
                return answer
        except _Refused as refused:
            return Answer(False, refused.reason, refused.detail,
                          promotion=found.promotion if found else None, code=found)  # fmt: skip

    at = now()
    answer = taken()
    if answer.reason in _CROWDED and _stale_released(code=found, at=at):
        answer = taken()
    if not answer.accepted:
        _attempt(merchant=merchant, raw=raw, customer=customer, action=action, cart=cart,
                 answer=answer)  # fmt: skip
    return answer


def _take_in_transaction(*, merchant: Merchant, code: Code | None, customer: Customer,
                         cart: Cart, at: datetime, action: str, order_external_id: str,
                         order: Order | None) -> Answer:  # fmt: skip
    redeeming = action == CodeAttempt.Action.REDEEM
    if code is None:
        raise _Refused("unknown_code")
    promotion = code.promotion
    if redeeming and promotion is not None and promotion.kind == Promotion.Kind.BONUS_POINTS:
        # The points account before the promotion, as an order's earning takes them: two
        # paths to the same customer can't wait on each other.
        account_locked(account=account_for(customer=customer))
    uses = _Uses(code=code, customer=customer)
    if redeeming and order_external_id:
        done = uses.redeemed_for(order_external_id)
        if done is not None:
            return Answer(True, discount=done.discount, promotion=promotion, code=code,
                          use=done, extra={"replayed": True})  # fmt: skip
    held = uses.held(at)
    if held is not None:
        # Locked, and read again: a racing request may have moved it a moment ago.
        held = (
            CodeUse.objects.select_for_update()
            .filter(pk=held.pk, state=CodeUse.State.RESERVED, reserved_until__gt=at)
            .first()
        )
        if held is not None:
            held.code, held.promotion = code, promotion
    answer = _checked(code=code, customer=customer, cart=cart, at=at, uses=uses)
    if held is not None and answer.reason in ("", *_CROWDED):
        # Her own hold already counts: it is renewed or turned into the redemption, with
        # the discount it holds moved to this cart's.
        answer = _hold_moved(held=held, answer=answer, cart=cart, at=at, action=action,
                             order_external_id=order_external_id, order=order)  # fmt: skip
    elif not answer.accepted:
        raise _Refused(answer.reason, answer.detail)
    else:
        answer.use = _use_created(merchant=merchant, code=code, customer=customer, cart=cart,
                                  answer=answer, at=at, redeeming=redeeming,
                                  order_external_id=order_external_id, order=order,
                                  slot=uses.free_slot())  # fmt: skip
    if redeeming:
        _redeemed_effects(use=answer.use, order=order)
    return answer


def _place_taken(*, promotion: Promotion, discount: Decimal) -> None:
    """The promotion's global limit and budget, in one guarded statement."""
    place = Q(pk=promotion.pk)
    if promotion.usage_limit is not None:
        place &= Q(taken__lt=promotion.usage_limit)
    if promotion.budget is not None:
        place &= Q(committed__lte=promotion.budget - discount)
    if not Promotion.objects.filter(place).update(
        taken=F("taken") + 1, committed=F("committed") + discount
    ):
        promotion.refresh_from_db(fields=["taken", "committed"])
        limit = promotion.usage_limit is not None and promotion.taken >= promotion.usage_limit
        raise _Refused("limit_reached" if limit else "budget_spent")


def _use_created(*, merchant: Merchant, code: Code, customer: Customer, cart: Cart,
                 answer: Answer, at: datetime, redeeming: bool, order_external_id: str,
                 order: Order | None, slot: int) -> CodeUse:  # fmt: skip
    """The use first, its place on the promotion's counters last: the unique constraints
    settle a race for her slot or the code before the promotion's row is locked, and the
    lock is held only for the commit after it. A refusal rolls both back."""
    promotion = code.promotion
    if promotion is not None and slot > promotion.per_customer_limit:
        raise _Refused("already_used")
    try:
        use = CodeUse.objects.create(
            merchant_id=merchant.pk,
            promotion=promotion,
            code=code,
            customer=customer,
            slot=slot,
            single_code=code if code.single_use else None,
            state=CodeUse.State.REDEEMED if redeeming else CodeUse.State.RESERVED,
            discount=answer.discount,
            currency=merchant.base_currency,
            cart_total=cart.subtotal,
            order=order if redeeming else None,
            order_external_id=order_external_id if redeeming else "",
            reserved_until=None if redeeming else at + RESERVATION,
            redeemed_at=at if redeeming else None,
        )
    except IntegrityError as clash:
        # Another request took the same place a moment ago: which one tells the reason (the
        # transaction is rolled back as the refusal leaves it).
        single = "single_code" in str(clash) and code.single_use
        raise _Refused("code_used" if single else "already_used") from clash
    if promotion is not None:
        _place_taken(promotion=promotion, discount=answer.discount)
    return use


def _redeemed_effects(*, use: CodeUse, order: Order | None) -> None:
    """What a redemption does beyond its place: a reward's code is marked used in loyalty/
    (the guarded update lets one of two racing uses through), a bonus-points promotion
    gives its points, once per use."""
    code = use.code
    if code.redemption_id is not None:
        if not redemption_mark_used(redemption=code.redemption, order=order):
            raise _Refused("code_used")
        return
    promotion = use.promotion
    if promotion.kind == Promotion.Kind.BONUS_POINTS and promotion.bonus_points:
        bonus_grant(customer=use.customer, points=promotion.bonus_points,
                    key=_bonus_key(use), note=promotion.name)  # fmt: skip


def _bonus_key(use: CodeUse) -> str:
    return f"promotion-use:{use.pk}"


def _hold_moved(*, held: CodeUse, answer: Answer, cart: Cart, at: datetime, action: str,
                order_external_id: str, order: Order | None) -> Answer:  # fmt: skip
    promotion = held.promotion
    discount = discount_for(terms=code_terms(held.code), cart=cart)
    change = discount - held.discount
    if change and promotion is not None:
        place = Q(pk=promotion.pk)
        if promotion.budget is not None:
            place &= Q(committed__lte=promotion.budget - change)
        if not Promotion.objects.filter(place).update(committed=F("committed") + change):
            raise _Refused("budget_spent")
    held.discount, held.cart_total = discount, cart.subtotal
    if action == CodeAttempt.Action.REDEEM:
        held.state, held.redeemed_at, held.reserved_until = CodeUse.State.REDEEMED, at, None
        held.order_external_id, held.order = order_external_id, order
    else:
        held.reserved_until = at + RESERVATION
    held.save(update_fields=["discount", "cart_total", "state", "redeemed_at",
                             "reserved_until", "order_external_id", "order"])  # fmt: skip
    return Answer(True, discount=discount, bonus_points=answer.bonus_points,
                  promotion=promotion, code=held.code, use=held)  # fmt: skip


def _uses_ended(*, uses: list[CodeUse], state: str, at: datetime) -> int:
    """Ends live uses (already locked) and gives their places and discounts back to their
    promotions, each promotion in one statement. A redeemed use rolled back also makes a
    reward's code ready again and takes back a bonus's points."""
    if not uses:
        return 0
    CodeUse.objects.filter(pk__in=[u.pk for u in uses]).update(state=state, ended_at=at)
    by_promotion: dict[int, tuple[int, Decimal]] = {}
    for use in uses:
        if use.promotion_id is None:
            continue
        count, money = by_promotion.get(use.promotion_id, (0, Decimal("0.00")))
        by_promotion[use.promotion_id] = (count + 1, money + use.discount)
    for promotion_id in sorted(by_promotion):
        count, money = by_promotion[promotion_id]
        Promotion.objects.filter(pk=promotion_id).update(
            taken=F("taken") - count, committed=F("committed") - money
        )
    if state == CodeUse.State.ROLLED_BACK:
        for use in uses:
            if use.code.redemption_id is not None:
                redemption_restore(redemption=use.code.redemption)
            elif use.promotion.kind == Promotion.Kind.BONUS_POINTS:
                bonus_take_back(merchant_id=use.merchant_id, key=_bonus_key(use))
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
            CodeUse.objects.select_for_update(of=("self",))
            .select_related("code__redemption", "promotion")
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


def reservations_expire(*, at: datetime | None = None, promotion_ids=None, code_ids=None) -> int:
    """Ends reservations past their 15 minutes, freeing their places (the hourly job, and
    every take of a code for its own promotion, or its own code for a reward's, first).
    Rows another transaction holds are left for the next run."""
    at = at or now()
    stale = CodeUse.objects.filter(state=CodeUse.State.RESERVED, reserved_until__lte=at)
    if promotion_ids is not None:
        stale = stale.filter(promotion_id__in=promotion_ids)
    if code_ids is not None:
        stale = stale.filter(code_id__in=code_ids)
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


def orders_stored(*, orders, lines=None, **_ignored) -> None:
    """customers/ stored orders (API, webhook, import), in their transaction: each code an
    order carries that is one of ours is redeemed by it (a shop's own codes are not ours
    and pass). A code the storefront already redeemed for that order is linked to it. The
    order stands whatever the answer; a refusal is in the attempts log with its reason.
    Orders without codes cost nothing here."""
    carrying = [
        order for order in orders
        if order.discount_codes and order.status not in (Order.Status.CANCELLED,
                                                         Order.Status.REFUNDED)
    ]  # fmt: skip
    if not carrying:
        return
    merchant = carrying[0].merchant
    wanted = {
        order.pk: sorted({code_normalised(str(raw)) for raw in order.discount_codes} - {""})
        for order in carrying
    }
    found = {
        code.code: code
        for code in _codes().filter(
            merchant=merchant, code__in={c for codes in wanted.values() for c in codes}
        )
    }
    using = [order for order in carrying if any(c in found for c in wanted[order.pk])]
    if not using:
        return
    by_order: dict[int, list[OrderLine]] = {}
    if lines is None:
        lines = OrderLine.objects.filter(order__in=using)
    for line in lines:
        by_order.setdefault(line.order_id, []).append(line)
    for order in using:
        for raw in wanted[order.pk]:
            if raw in found:
                _order_redeems(order=order, code=found[raw], others=wanted[order.pk],
                               lines=by_order.get(order.pk, []))  # fmt: skip


def _order_redeems(*, order: Order, code: Code, others: list[str], lines) -> None:
    customer = order.customer
    linked = CodeUse.objects.filter(
        code=code, order_external_id=order.external_id, state=CodeUse.State.REDEEMED
    ).update(order=order)
    if linked:
        if code.redemption_id is not None:
            Redemption.objects.filter(pk=code.redemption_id).update(used_order=order)
        return
    cart = Cart(
        subtotal=order.subtotal or order.total,
        shipping=order.shipping,
        lines=tuple(CartLine(line.sku, line.price, line.quantity) for line in lines),
        other_codes=tuple(c for c in others if c != code.code),
    )
    _take(merchant=order.merchant, raw=code.code, found=code, customer=customer, cart=cart,
          action=CodeAttempt.Action.REDEEM, order_external_id=order.external_id,
          order=order)  # fmt: skip


def reward_code_issued(*, redemption: Redemption) -> None:
    """loyalty/ issued a reward's code: it joins the checkout codes (a clash with a
    promotion's code raises IntegrityError, and loyalty draws another)."""
    Code.objects.create(
        merchant_id=redemption.merchant_id,
        code=redemption.code,
        single_use=True,
        customer_id=redemption.account.customer_id,
        redemption=redemption,
    )


def reward_code_used(*, redemption: Redemption, order: Order | None) -> None:
    """loyalty/'s own endpoint used a reward's code: the same use, recorded here too (her
    reservation of it, if live, becomes the redemption)."""
    code = Code.objects.filter(redemption=redemption).first()
    if code is None:
        return
    at = now()
    external_id = order.external_id if order else ""
    with transaction.atomic():
        held = CodeUse.objects.select_for_update().filter(
            single_code=code, state=CodeUse.State.RESERVED
        ).first()  # fmt: skip
        if held is not None:
            held.state, held.redeemed_at, held.reserved_until = CodeUse.State.REDEEMED, at, None
            held.order, held.order_external_id = order, external_id
            held.save(update_fields=["state", "redeemed_at", "reserved_until", "order",
                                     "order_external_id"])  # fmt: skip
            return
        CodeUse.objects.create(
            merchant_id=redemption.merchant_id, code=code, customer_id=code.customer_id,
            slot=1, single_code=code, state=CodeUse.State.REDEEMED,
            discount=redemption.amount, currency=redemption.currency, order=order,
            order_external_id=external_id, redeemed_at=at,
        )  # fmt: skip


def order_cancelled(*, order: Order) -> None:
    """customers/ cancelled the order (API or webhook), in its transaction."""
    codes_roll_back(merchant=order.merchant, order_external_id=order.external_id)


def order_refunded(*, refund: Refund) -> None:
    """customers/ recorded a refund: once the order is refunded in full, its codes go back."""
    order = refund.order
    if order.status == Order.Status.REFUNDED:
        codes_roll_back(merchant=order.merchant, order_external_id=order.external_id)
