from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from merchants.models import Merchant, StoreConnection, validate_timezone

MONEY = {"max_digits": 12, "decimal_places": 2}
ZERO = Decimal("0.00")


class Segment(models.TextChoices):
    CHAMPIONS = "champions", _("Champions")
    CANT_LOSE_THEM = "cant_lose_them", _("Can't Lose Them")
    LOYAL = "loyal", _("Loyal")
    NEW = "new", _("New")
    PROMISING = "promising", _("Promising")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential Loyalist")
    NEED_ATTENTION = "need_attention", _("Need Attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to Sleep")
    AT_RISK = "at_risk", _("At Risk")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


class Customer(models.Model):
    """A merchant's customer, identified by (merchant, external_id) and matched by email."""

    class Gender(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")
        UNKNOWN = "", _("Not given")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="customers")
    external_id = models.CharField(_("external id"), max_length=128, blank=True)
    email = models.EmailField(_("email"), blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    # Her own time zone when the shop knows it (quiet hours); else the merchant's.
    timezone = models.CharField(
        _("time zone"), max_length=64, blank=True, validators=[validate_timezone]
    )
    acquisition_channel = models.CharField(_("acquisition channel"), max_length=60, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    marketing_consent_at = models.DateTimeField(null=True, blank=True)
    marketing_consent_source = models.CharField(max_length=60, blank=True)

    # Stats, kept equal to the orders in the same transaction as each order or refund.
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    orders_count = models.PositiveIntegerField(default=0)
    total_spent = models.DecimalField(default=ZERO, **MONEY)
    average_order_value = models.DecimalField(default=ZERO, **MONEY)

    # RFM, refreshed nightly and after imports (customers.segments).
    spent_last_365_days = models.DecimalField(default=ZERO, **MONEY)
    recency_score = models.PositiveSmallIntegerField(null=True, blank=True)
    frequency_score = models.PositiveSmallIntegerField(null=True, blank=True)
    monetary_score = models.PositiveSmallIntegerField(null=True, blank=True)
    segment = models.CharField(_("segment"), max_length=20, choices=Segment.choices, blank=True)
    # Behaviour read by persona rules, refreshed with the personas (customers.personas).
    discount_order_share = models.DecimalField(max_digits=5, decimal_places=4, default=0)
    express_order_share = models.DecimalField(max_digits=5, decimal_places=4, default=0)
    main_channel = models.CharField(max_length=30, blank=True)
    top_category = models.CharField(max_length=100, blank=True)
    persona = models.ForeignKey(
        "Persona", null=True, blank=True, on_delete=models.SET_NULL, related_name="customers"
    )

    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    erased_at = models.DateTimeField(null=True, blank=True)
    # Rewards-page sessions started before this are over (signing out ends them all).
    portal_signed_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "external_id"],
                condition=~Q(external_id=""),
                name="customer_unique_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "email"], name="customer_merchant_email"),
            models.Index(fields=["merchant", "last_order_at"], name="customer_merchant_last_order"),
            models.Index(fields=["merchant", "-id"], name="customer_merchant_recent"),
            models.Index(
                fields=["merchant", "orders_count", "id"], name="customer_merchant_orders"
            ),
            models.Index(fields=["merchant", "total_spent", "id"], name="customer_merchant_spent"),
            models.Index(
                fields=["merchant", "spent_last_365_days"], name="customer_merchant_spent_365"
            ),
            models.Index(fields=["merchant", "segment"], name="customer_merchant_segment"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or self.external_id or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def segment_label(self) -> str:
        """The segment's name: one lookup, where get_segment_display hashes every choice."""
        return Segment(self.segment).label if self.segment else ""

    @property
    def since(self) -> datetime:
        """A customer since their first order, or since the shop told us of them."""
        if self.first_order_at and self.first_order_at < self.created_at:
            return self.first_order_at
        return self.created_at


class Persona(models.Model):
    """A merchant-written portrait of a kind of customer, with the rules that recognise it.
    A customer's persona is the first one, by priority, whose rules all match."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="personas")
    name = models.CharField(_("name"), max_length=80)
    description = models.TextField(_("portrait"), blank=True)
    offers = models.TextField(_("offers that suit them"), blank=True)
    priority = models.PositiveIntegerField(_("priority"), default=0)
    rules = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "name"], name="persona_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    class Status(models.TextChoices):
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")

    class Source(models.TextChoices):
        API = "api", _("API")
        SHOPIFY = "shopify", _("Shopify")
        WOOCOMMERCE = "woocommerce", _("WooCommerce")
        CSV = "csv", _("CSV import")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="orders")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    source = models.CharField(max_length=20, choices=Source.choices)
    external_id = models.CharField(max_length=128)
    placed_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PAID)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(default=ZERO, **MONEY)
    discount = models.DecimalField(default=ZERO, **MONEY)
    shipping = models.DecimalField(default=ZERO, **MONEY)
    tax = models.DecimalField(default=ZERO, **MONEY)
    total = models.DecimalField(**MONEY)
    refunded_amount = models.DecimalField(default=ZERO, **MONEY)
    channel = models.CharField(max_length=30, blank=True)
    shipping_method = models.CharField(max_length=60, blank=True)
    discount_codes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "source", "external_id"], name="order_unique_per_source"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["customer", "placed_at"], name="order_customer_placed"),
            models.Index(fields=["merchant", "placed_at"], name="order_merchant_placed"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"

    @property
    def net_total(self) -> Decimal:
        return self.total - self.refunded_amount


class OrderLine(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=255, blank=True)
    category = models.CharField(max_length=100, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(**MONEY)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku or self.name}"

    @property
    def line_total(self) -> Decimal:
        return self.price * self.quantity


class Refund(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    source = models.CharField(max_length=20, choices=Order.Source.choices)
    external_id = models.CharField(max_length=128)
    amount = models.DecimalField(**MONEY)
    lines = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    refunded_at = models.DateTimeField()
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "source", "external_id"], name="refund_unique_per_source"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"refund {self.external_id} of {self.order}"


class Activity(models.Model):
    """One line of a customer's timeline, and the stream other apps react to."""

    class Kind(models.TextChoices):
        ORDER_PLACED = "order.placed", _("Order placed")
        ORDER_CANCELLED = "order.cancelled", _("Order cancelled")
        ORDER_REFUNDED = "order.refunded", _("Order refunded")
        ORDER_SHIPPED = "order.shipped", _("Order shipped")
        ORDER_DELIVERED = "order.delivered", _("Order delivered")
        PROFILE_CREATED = "profile.created", _("Profile created")
        PROFILE_UPDATED = "profile.updated", _("Profile updated")
        CONSENT_CHANGED = "consent.changed", _("Marketing consent changed")
        EVENT = "event", _("Event")
        # Written by loyalty/ on the customer's timeline.
        POINTS_EARNED = "points.earned", _("Points earned")
        POINTS_REDEEMED = "points.redeemed", _("Points redeemed")
        POINTS_ADJUSTED = "points.adjusted", _("Points adjusted")
        POINTS_REVERSED = "points.reversed", _("Points taken back")
        POINTS_EXPIRING = "points.expiring", _("Points expiring soon")
        POINTS_EXPIRED = "points.expired", _("Points expired")
        TIER_CHANGED = "tier.changed", _("Tier changed")
        TIER_AT_RISK = "tier.at_risk", _("Tier at risk")
        MEMBERSHIP_CHANGED = "membership.changed", _("Membership changed")
        REFERRAL_REWARDED = "referral.rewarded", _("Referral rewarded")
        EMAIL_SENT = "email.sent", _("Email sent")
        # Written by feedback/.
        FEEDBACK_RECEIVED = "feedback.received", _("Feedback received")
        FEEDBACK_REPLIED = "feedback.replied", _("Feedback answered")
        FEEDBACK_RESOLVED = "feedback.resolved", _("Feedback resolved")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=40)
    occurred_at = models.DateTimeField(default=now)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="activity_customer_recent"),
            models.Index(fields=["merchant", "kind", "occurred_at"], name="activity_merchant_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d}"

    @property
    def label(self) -> str:
        return str(dict(self.Kind.choices).get(self.kind, self.kind))


class ConsentRecord(models.Model):
    """Each grant or withdrawal of marketing consent, with when, where and how."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    granted = models.BooleanField()
    source = models.CharField(max_length=60)
    recorded_at = models.DateTimeField(default=now)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-recorded_at"], name="consent_customer_recent")
        ]

    def __str__(self) -> str:
        return f"{'granted' if self.granted else 'withdrawn'} via {self.source}"


class WebhookDelivery(models.Model):
    """One delivery from a shop platform, kept so a redelivery is answered and ignored."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(
        StoreConnection, on_delete=models.CASCADE, related_name="deliveries"
    )
    delivery_id = models.CharField(max_length=128)
    topic = models.CharField(max_length=60)
    outcome = models.CharField(max_length=200, blank=True)
    # A signed delivery whose payload can't be stored: the field at fault and why, shown
    # on the shop's connection page (the platform is told it arrived, so it stops resending).
    rejected_field = models.CharField(max_length=120, blank=True)
    rejected_reason = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "delivery_id"], name="webhook_delivery_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.delivery_id}"


def _import_path(instance: ImportJob, filename: str) -> str:
    return f"imports/{instance.merchant_id}/{now():%Y/%m}/{filename}"


class ImportJob(models.Model):
    """A CSV of customers or orders being read in the background, with its progress."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        ORDERS = "orders", _("Orders")

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    file = models.FileField(upload_to=_import_path)
    original_name = models.CharField(max_length=255)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    size_bytes = models.PositiveBigIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows_ok = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    failure = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        "merchants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Moved on with every batch stored: a running job whose heartbeat is older than
    # IMPORT_STALE_SECONDS lost its worker, and is picked up again from rows_done.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveSmallIntegerField(default=0)  # how many times it was started

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="import_job_stale")]

    def __str__(self) -> str:
        return f"{self.kind} import {self.original_name}"

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return min(99, int(self.bytes_done * 100 / self.size_bytes)) if self.size_bytes else 0


class ImportRowError(models.Model):
    """One rejected row of an import: which row, which column and why."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField()
    column = models.CharField(max_length=60, blank=True)
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["row_number", "id"]

    def __str__(self) -> str:
        return f"row {self.row_number} {self.column}: {self.reason}"


class PortalSignIn(models.Model):
    """A link that signs a customer in to the rewards page: a magic link from email (its
    token's hash, single use, 15 minutes) or a storefront link (its signature's hash, kept
    so the same link can't be used twice)."""

    class Kind(models.TextChoices):
        MAGIC = "magic", _("Email link")
        STOREFRONT = "storefront", _("Storefront link")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    token_hash = models.CharField(max_length=64)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "token_hash"], name="portal_sign_in_unique_token"
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="portal_sign_in_expires")]

    def __str__(self) -> str:
        return f"{self.kind} sign-in for customer {self.customer_id}"
