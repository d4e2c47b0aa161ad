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


# --- Messages ------------------------------------------------------------------------
# (docs/business-rules.md, messages): what a merchant sends customers by email, who must
# not get it, and what happened to each one.


class SendingSettings(models.Model):
    """How one merchant's mail goes out. Missing values fall back to the merchant's name and
    reply-to address and the deployment's sender address."""

    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="sending")
    from_name = models.CharField(_("from name"), max_length=120, blank=True)
    from_email = models.EmailField(_("from address"), blank=True)
    reply_to = models.EmailField(_("reply-to address"), blank=True)
    # The frequency cap across all marketing mail: at most `cap_messages` per customer in
    # any `cap_days` days.
    cap_messages = models.PositiveSmallIntegerField(_("marketing messages at most"), default=1)
    cap_days = models.PositiveSmallIntegerField(_("in this many days"), default=3)
    # Marketing mail due inside quiet hours (customer's time zone, else the merchant's) waits
    # for their end. Both empty: no quiet hours.
    quiet_from = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_until = models.TimeField(_("quiet hours until"), null=True, blank=True)
    soft_bounce_limit = models.PositiveSmallIntegerField(
        _("soft bounces in a row before suppressing"), default=7
    )
    send_rate = models.PositiveIntegerField(_("messages per minute at most"), default=600)
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=5)
    attribution_by = models.CharField(
        _("an order is credited to the last message she"), max_length=9,
        choices=[("clicked", _("clicked")), ("opened", _("opened")), ("received", _("received"))],
        default="clicked",
    )  # fmt: skip

    def __str__(self) -> str:
        return f"sending settings of {self.merchant_id}"


class MessageTemplate(models.Model):
    """An email a merchant writes once per language (subject and body, with merge fields
    like {{ first_name }}); the merchant's default language stands in for a missing one."""

    class Kind(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        TRANSACTIONAL = "transactional", _("Transactional")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices, default=Kind.MARKETING)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "name"], name="template_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Flow(models.Model):
    """A message sent when something happens to a customer (an Activity of its trigger's
    kind), after a delay, if she still qualifies when it is due."""

    class Trigger(models.TextChoices):
        WELCOME = "welcome", _("Welcome")
        POST_PURCHASE = "post_purchase", _("Thank you after a purchase")
        SHIPPED = "shipped", _("Order shipped")
        DELIVERED = "delivered", _("Order delivered")
        REVIEW_REQUEST = "review_request", _("Review request after delivery")
        POINTS_EARNED = "points_earned", _("Points earned")
        POINTS_EXPIRING = "points_expiring", _("Points expiring")
        TIER_UP = "tier_up", _("Tier up")
        TIER_DOWN = "tier_down", _("Tier-down warning before the recalculation")
        SECOND_ORDER = "second_order", _("Second-order nudge at the segment's typical gap")
        BIRTHDAY = "birthday", _("Birthday")
        MEMBERSHIP_RENEWED = "membership_renewed", _("Membership renewed")
        PAYMENT_FAILED = "payment_failed", _("Membership payment failed")
        FEEDBACK_RESOLVED = "feedback_resolved", _("Feedback resolved")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    trigger = models.CharField(_("when"), max_length=24, choices=Trigger.choices)
    enabled = models.BooleanField(_("on"), default=False)
    delay_minutes = models.PositiveIntegerField(_("delay (minutes)"), default=0)
    template = models.ForeignKey(
        MessageTemplate, verbose_name=_("template"), on_delete=models.PROTECT, related_name="+"
    )
    offer = models.ForeignKey(
        Promotion, verbose_name=_("offer"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", help_text=_("A code of this promotion is issued on send."),
    )  # fmt: skip
    segments = models.JSONField(_("segments"), default=list, blank=True)
    tiers = models.ManyToManyField(Tier, verbose_name=_("tiers"), blank=True, related_name="+")
    personas = models.ManyToManyField(
        Persona, verbose_name=_("personas"), blank=True, related_name="+"
    )
    # Activities from before it was turned on send nothing; each pass reads from where the
    # last one stopped (less a margin, for transactions that committed late).
    enabled_at = models.DateTimeField(null=True, blank=True)
    scanned_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["trigger"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "trigger"], name="flow_one_per_trigger")
        ]

    def __str__(self) -> str:
        return self.get_trigger_display()


class Message(models.Model):
    """One email to one customer: queued (maybe due later), then sent or skipped with its
    reason, then what the ESP reported. `key` makes one trigger send once however often
    the job that makes it runs."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=14, choices=MessageTemplate.Kind.choices)
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    campaign = models.ForeignKey(
        "Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    entry = models.ForeignKey(
        "CampaignEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    key = models.CharField(max_length=120)
    # What the trigger said (the order's number, the points), for the merge fields.
    data = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    skip_reason = models.CharField(max_length=20, blank=True)
    failure = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    address = models.EmailField(blank=True)
    language = models.CharField(max_length=8, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    code = models.CharField(max_length=40, blank=True)
    esp_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now)
    send_after = models.DateTimeField(default=now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "key"], name="message_once_per_key")
        ]
        indexes = [
            models.Index(fields=["send_after"], condition=Q(state="queued"), name="message_due"),
            models.Index(fields=["customer", "-created_at"], name="message_customer_recent"),
            models.Index(
                fields=["customer", "sent_at"],
                condition=Q(kind="marketing"),
                name="message_marketing_sent",
            ),
            models.Index(fields=["esp_message_id"], name="message_esp_id"),
            models.Index(fields=["flow", "-created_at"], name="message_flow_recent"),
            models.Index(fields=["campaign", "-created_at"], name="message_campaign_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class MessageEvent(models.Model):
    """What the ESP's tracking webhook said about a message, once per event."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered", _("Delivered")
        OPENED = "opened", _("Opened")
        CLICKED = "clicked", _("Clicked")
        BOUNCED = "bounced", _("Bounced")
        SOFT_BOUNCED = "soft_bounced", _("Bounced (soft)")
        COMPLAINED = "complained", _("Marked as spam")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        FAILED = "failed", _("Rejected")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    esp = models.CharField(max_length=40)
    event_key = models.CharField(max_length=200)
    kind = models.CharField(max_length=14, choices=Kind.choices)
    # An open fetched by a machine (Apple Mail Privacy Protection, an image proxy): kept,
    # left out of open rates.
    machine = models.BooleanField(default=False)
    url = models.URLField(max_length=2000, blank=True)
    occurred_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "esp", "event_key"], name="message_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.message_id}"


class Suppression(models.Model):
    """An address that gets no more marketing mail from this merchant."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        SOFT_BOUNCES = "soft_bounces", _("Too many soft bounces")
        COMPLAINT = "complaint", _("Marked as spam")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        MANUAL = "manual", _("Added by staff")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    address = models.EmailField()
    reason = models.CharField(max_length=14, choices=Reason.choices)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "address"], name="suppression_once")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"


class MailPreference(models.Model):
    """A customer who asked for fewer emails instead of none: marketing mail at most once
    in `every_days` days for her, on top of the merchant's cap."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="+")
    every_days = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"{self.customer_id}: every {self.every_days} days"


# --- Campaigns ------------------------------------------------------------------------
# (docs/business-rules.md, win-back and broadcasts): who enters, who is held out, what
# each one is sent, and what it changed.


class Campaign(models.Model):
    """A win-back campaign (a daily pass enters the customers gone quiet for long enough)
    or a broadcast (everyone it names, once, at a time). Either way a share of those who
    enter is held out and sent nothing, so the report can tell what the messages changed."""

    class Kind(models.TextChoices):
        WINBACK = "winback", _("Win-back")
        BROADCAST = "broadcast", _("Broadcast")

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Running")
        PAUSED = "paused", _("Paused")
        DONE = "done", _("Sent")

    class Selection(models.TextChoices):
        DAYS = "days", _("Days since the last order, over a fixed number")
        GAP = "gap", _("Days since the last order, over a multiple of her own gap between orders")
        # Wired up with the predictions (docs/business-rules.md, predictions); not offered
        # until they exist.
        PREDICTED = "predicted", _("Predicted probability of being active, under a threshold")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.DRAFT)
    selection = models.CharField(
        _("who has gone quiet"), max_length=10, choices=Selection.choices, default=Selection.DAYS
    )
    days_since = models.PositiveIntegerField(_("days since the last order"), default=90)
    gap_multiple = models.DecimalField(
        _("multiple of her average gap"), max_digits=4, decimal_places=2, default=Decimal("2.00"),
        help_text=_("For customers with two orders or more; the others enter after the fixed "
                    "number of days."),
    )  # fmt: skip
    segments = models.JSONField(_("segments"), default=list, blank=True)
    personas = models.ManyToManyField(
        Persona, verbose_name=_("personas"), blank=True, related_name="+"
    )
    tiers = models.ManyToManyField(Tier, verbose_name=_("tiers"), blank=True, related_name="+")
    plans = models.ManyToManyField(
        MembershipPlan, verbose_name=_("members of"), blank=True, related_name="+"
    )
    min_spent = models.DecimalField(_("spent at least"), **MONEY, null=True, blank=True)
    max_spent = models.DecimalField(_("spent at most"), **MONEY, null=True, blank=True)
    consent_only = models.BooleanField(
        _("only customers with marketing consent"), default=True,
        help_text=_("Others would enter, be counted and be sent nothing."),
    )  # fmt: skip
    listed = models.ManyToManyField(
        Customer, verbose_name=_("listed customers"), blank=True, related_name="+",
        through="CampaignListEntry",
    )  # fmt: skip
    reentry_days = models.PositiveIntegerField(
        _("enter again after (days)"), default=180,
        help_text=_("A customer enters this campaign at most once in this many days."),
    )  # fmt: skip
    holdout_percent = models.PositiveSmallIntegerField(
        _("held out (%)"), default=10,
        help_text=_("This share of those who enter is sent nothing: the comparison that shows "
                    "what the messages changed."),
    )  # fmt: skip
    send_at = models.DateTimeField(
        _("send at"), null=True, blank=True, help_text=_("A broadcast's time; empty: at once.")
    )
    started_at = models.DateTimeField(null=True, blank=True)
    # The moment of the last pass: a fixed-days win-back then looks only at who has gone
    # quiet, or come to the end of her re-entry days, since (campaign_candidates).
    selected_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=50), name="campaign_holdout_at_most_half"
            )
        ]

    def __str__(self) -> str:
        return self.name


class CampaignListEntry(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer"], name="campaign_list_unique_customer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.customer_id}"


class CampaignStep(models.Model):
    """One of up to three messages of a campaign, `delay_days` after the one before (the
    first: after entering), maybe with a unique code of an offer issued on send."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    delay_days = models.PositiveSmallIntegerField(_("days after the step before"), default=0)
    template = models.ForeignKey(
        MessageTemplate, verbose_name=_("template"), on_delete=models.PROTECT, related_name="+"
    )
    offer = models.ForeignKey(
        Promotion, verbose_name=_("offer"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", help_text=_("A code of this promotion is issued on send."),
    )  # fmt: skip

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="campaign_step_once"),
            models.CheckConstraint(
                condition=Q(position__gte=1, position__lte=3), name="campaign_steps_one_to_three"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} #{self.position}"


class CampaignEntry(models.Model):
    """A customer entering a campaign: held out (sent nothing, frozen at entry) or not, and
    `starts_at`, when its first message was due, from which both groups' windows count."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="entries")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    entered_on = models.DateField()
    entered_at = models.DateTimeField()
    starts_at = models.DateTimeField()
    held_out = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer", "entered_on"], name="campaign_entry_once_a_day"
            )
        ]
        indexes = [
            models.Index(
                fields=["campaign", "customer", "-entered_at"], name="campaign_entry_last"
            ),
            # The daily pass's re-entry: whose wait ended since the last pass.
            models.Index(fields=["campaign", "entered_at"], name="campaign_entry_when"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.campaign_id}"
