"""Promotions and their codes: who may use them, how often, for how much, and every use
and attempt (docs/business-rules.md, promotions)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from customers.models import MONEY, Customer, Order, Persona
from loyalty.models import MembershipPlan, Redemption, Tier
from merchants.models import Merchant, StoreConnection


class Promotion(models.Model):
    class Kind(models.TextChoices):
        PERCENT = "percent", _("Percent off")
        FIXED_AMOUNT = "fixed_amount", _("Amount off")
        FREE_SHIPPING = "free_shipping", _("Free shipping")
        FREE_PRODUCT = "free_product", _("Free product")
        BONUS_POINTS = "bonus_points", _("Bonus points")

    class Eligibility(models.TextChoices):
        EVERYONE = "everyone", _("Everyone")
        TIERS = "tiers", _("Tiers")
        PERSONAS = "personas", _("Personas")
        SEGMENTS = "segments", _("Segments")
        MEMBERS = "members", _("Members of a plan")
        CUSTOMER = "customer", _("One customer")
        LIST = "list", _("A list of customers")

    class Codes(models.TextChoices):
        PUBLIC = "public", _("One public code")
        UNIQUE = "unique", _("Unique codes")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="promotions")
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # Percent for PERCENT, money for FIXED_AMOUNT; the points for BONUS_POINTS.
    value = models.DecimalField(_("value"), **MONEY, default=Decimal("0.00"))
    bonus_points = models.PositiveIntegerField(_("bonus points"), default=0)
    product_sku = models.CharField(_("product SKU"), max_length=100, blank=True)
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    eligibility = models.CharField(
        _("who may use it"), max_length=10, choices=Eligibility.choices,
        default=Eligibility.EVERYONE,
    )  # fmt: skip
    tiers = models.ManyToManyField(Tier, verbose_name=_("tiers"), blank=True, related_name="+")
    personas = models.ManyToManyField(
        Persona, verbose_name=_("personas"), blank=True, related_name="+"
    )
    segments = models.JSONField(_("segments"), default=list, blank=True)
    plans = models.ManyToManyField(
        MembershipPlan, verbose_name=_("members of"), blank=True, related_name="+"
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True,
        on_delete=models.CASCADE, related_name="+",
    )  # fmt: skip
    listed = models.ManyToManyField(
        Customer, verbose_name=_("listed customers"), blank=True, related_name="+",
        through="PromotionListEntry",
    )  # fmt: skip
    min_spend = models.DecimalField(_("minimum spend"), **MONEY, default=Decimal("0.00"))
    usage_limit = models.PositiveIntegerField(_("uses in all"), null=True, blank=True)
    per_customer_limit = models.PositiveIntegerField(_("uses per customer"), default=1)
    budget = models.DecimalField(_("budget"), **MONEY, null=True, blank=True)
    is_exclusive = models.BooleanField(_("not combinable with other codes"), default=True)
    combinable_with = models.ManyToManyField(
        "self", verbose_name=_("combinable with"), blank=True, symmetrical=True
    )
    codes = models.CharField(_("codes"), max_length=6, choices=Codes.choices)
    is_active = models.BooleanField(_("active"), default=True)
    # Uses redeemed plus reservations still live, and the discount they hold: each moved
    # by one guarded statement (campaigns.services.codes), so they never pass their caps.
    taken = models.PositiveIntegerField(default=0)
    committed = models.DecimalField(**MONEY, default=Decimal("0.00"))
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(taken__lte=models.F("usage_limit")),
                name="promotion_taken_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(committed__lte=models.F("budget")),
                name="promotion_committed_within_budget",
            ),
            models.CheckConstraint(
                condition=Q(per_customer_limit__gte=1), name="promotion_per_customer_at_least_one"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PromotionListEntry(models.Model):
    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "customer"], name="promotion_list_unique_customer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.promotion_id}: {self.customer_id}"


class CodeBatch(models.Model):
    """Unique codes generated for a promotion in the background: `made` of `count` so far
    (the progress bar), each `prefix` + `length` characters of an alphabet without
    look-alikes (no 0/O, 1/I/L)."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        MAKING = "making", _("Being made")
        DONE = "done", _("Done")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="batches")
    prefix = models.CharField(_("prefix"), max_length=12, blank=True)
    length = models.PositiveSmallIntegerField(_("length"), default=8)
    count = models.PositiveIntegerField(_("how many"))
    made = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.count} codes)"


class Code(models.Model):
    """A code a customer types at checkout, of either kind, found by one lookup: a
    promotion's public code (any number of uses, within the promotion's limits) or one of
    its unique codes (one use, maybe bound to one customer), or the single-use code of a
    loyalty reward a customer redeemed points for (bound to her)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    promotion = models.ForeignKey(
        Promotion, null=True, blank=True, on_delete=models.CASCADE, related_name="code_set"
    )
    redemption = models.OneToOneField(
        Redemption, null=True, blank=True, on_delete=models.CASCADE, related_name="checkout_code"
    )
    code = models.CharField(max_length=40)
    single_use = models.BooleanField(default=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    batch = models.ForeignKey(
        CodeBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="code_set"
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="code_unique_per_merchant"),
            models.CheckConstraint(
                condition=Q(promotion__isnull=False, redemption__isnull=True)
                | Q(promotion__isnull=True, redemption__isnull=False),
                name="code_of_a_promotion_or_a_reward",
            ),
        ]

    def __str__(self) -> str:
        return self.code


LIVE_USE = ("reserved", "redeemed")


class CodeUse(models.Model):
    """A reservation (held for 15 minutes) or a redemption of a code by a customer. While
    live it counts in the promotion's `taken` and `committed`; released, expired or rolled
    back it no longer does. A redeemed use's `order` is how reports find the orders a
    promotion or a reward brought (loyalty-driven revenue)."""

    class State(models.TextChoices):
        RESERVED = "reserved", _("Reserved")
        REDEEMED = "redeemed", _("Redeemed")
        RELEASED = "released", _("Released")
        EXPIRED = "expired", _("Expired")
        ROLLED_BACK = "rolled_back", _("Rolled back")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    # None for a reward's code: it has no promotion's counters to move.
    promotion = models.ForeignKey(
        Promotion, null=True, blank=True, on_delete=models.CASCADE, related_name="uses"
    )
    code = models.ForeignKey(Code, on_delete=models.CASCADE, related_name="uses")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    # Which of the customer's allowed uses this is (1 … per_customer_limit): two live uses
    # can't hold the same one, so racing requests can't pass the limit.
    slot = models.PositiveIntegerField()
    # The code again for a single-use code, else None: one live use per such code.
    single_code = models.ForeignKey(
        Code, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    state = models.CharField(max_length=12, choices=State.choices)
    discount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    currency = models.CharField(max_length=3)
    cart_total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="code_uses"
    )
    order_external_id = models.CharField(max_length=128, blank=True)
    reserved_until = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "customer", "slot"],
                condition=Q(state__in=LIVE_USE),
                name="code_use_one_live_per_slot",
            ),
            models.UniqueConstraint(
                fields=["single_code"],
                condition=Q(state__in=LIVE_USE),
                name="code_use_one_live_per_single_code",
            ),
        ]
        indexes = [
            models.Index(
                fields=["reserved_until"],
                condition=Q(state="reserved"),
                name="code_use_reserved_until",
            ),
            models.Index(
                fields=["merchant", "order_external_id"],
                condition=Q(state="redeemed"),
                name="code_use_redeemed_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code_id} ({self.state})"


class CodeAttempt(models.Model):
    """Every validate, reserve, redeem, release and rollback, with its answer."""

    class Action(models.TextChoices):
        VALIDATE = "validate", _("Validate")
        RESERVE = "reserve", _("Reserve")
        REDEEM = "redeem", _("Redeem")
        RELEASE = "release", _("Release")
        ROLLBACK = "rollback", _("Roll back")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=40)
    promotion = models.ForeignKey(
        Promotion, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    accepted = models.BooleanField()
    reason = models.CharField(max_length=30, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    cart_total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    discount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    created_at = models.DateTimeField(default=now)

    class Meta:
        indexes = [models.Index(fields=["merchant", "-created_at"], name="attempt_merchant_at")]

    def __str__(self) -> str:
        return f"{self.action} {self.code}: {self.reason or 'accepted'}"

    @property
    def reason_text(self) -> str:
        from campaigns.services.codes import REASONS

        return str(REASONS.get(self.reason, self.reason))


class ShopPush(models.Model):
    """A promotion as the connected shop knows it: the discount made there (Shopify) and
    the settings it last accepted, or the shop's refusal, shown on the promotion. `claimed_until`
    lets one task at a time talk to the shop for it."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="shop_pushes")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="+")
    remote_id = models.CharField(max_length=200, blank=True)
    sent_settings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    error_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "connection"], name="shop_push_once_per_shop"
            )
        ]

    def __str__(self) -> str:
        return f"{self.promotion_id} → {self.connection_id}"


class ShopCode(models.Model):
    """A code as the shop answered for it: its id there (a WooCommerce coupon, a Shopify
    bulk creation until confirmed), or the shop's refusal. One row per code and shop, so a
    code is never sent to a shop twice."""

    code = models.ForeignKey(Code, on_delete=models.CASCADE, related_name="shop_copies")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="+")
    remote_id = models.CharField(max_length=200, blank=True)
    confirmed = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code", "connection"], name="shop_code_once_per_shop")
        ]
        indexes = [
            models.Index(
                fields=["connection", "remote_id"],
                condition=Q(confirmed=False),
                name="shop_code_unconfirmed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code_id} → {self.connection_id}"
