"""The loyalty program of a merchant: its settings, earning rules, the points ledger,
rewards and redemptions, tiers, paid memberships and referrals.

The ledger (PointsEntry) is append-only. Each entry says when its points count as
available (`available_at`: pending until then) and, for a lot of earned points, when they
expire. A balance is a sum over entries; the account's columns hold those sums, moved in
the same transaction as each entry, and `reconcile_points` checks that they agree.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import MONEY, Customer, Order
from merchants.models import Merchant


class Program(models.Model):
    """One per merchant: how points are earned, kept, spent and what they are worth."""

    class Base(models.TextChoices):
        NET = "net", _("Order total less discounts, shipping and tax")
        TOTAL = "total", _("Order total")

    class Rounding(models.TextChoices):
        DOWN = "down", _("Round down")
        NEAREST = "nearest", _("Round to nearest")
        UP = "up", _("Round up")

    class Expiry(models.TextChoices):
        NEVER = "never", pgettext_lazy("points expire", "Never")
        AFTER_EARNING = "after_earning", _("Months after earning (oldest first)")
        INACTIVITY = "inactivity", _("Months without earning or spending")
        CALENDAR_YEAR = "calendar_year", _("At the end of the calendar year")

    class RefundPolicy(models.TextChoices):
        AVAILABLE_ONLY = "available_only", _("Take back only what is still available")
        ALLOW_NEGATIVE = "allow_negative", _("Allow a negative balance, repaid by later points")

    class TierBasis(models.TextChoices):
        SPENT = "spent", _("Amount spent")
        POINTS = "points", _("Points earned")
        ORDERS = "orders", _("Number of orders")

    class TierWindow(models.TextChoices):
        LIFETIME = "lifetime", _("Lifetime")
        ROLLING_YEAR = "rolling_year", _("Rolling 12 months")
        CALENDAR_YEAR = "calendar_year", _("Calendar year")

    merchant = models.OneToOneField(
        Merchant, on_delete=models.CASCADE, related_name="loyalty_program"
    )
    is_active = models.BooleanField(_("program is running"), default=True)
    points_per_unit = models.DecimalField(
        _("points per currency unit"), max_digits=8, decimal_places=2, default=Decimal("1.00")
    )
    earn_base = models.CharField(
        _("points are earned on"), max_length=10, choices=Base.choices, default=Base.NET
    )
    rounding = models.CharField(
        _("rounding"), max_length=10, choices=Rounding.choices, default=Rounding.DOWN
    )
    pending_days = models.PositiveSmallIntegerField(_("days points stay pending"), default=30)
    expiry_mode = models.CharField(
        _("points expire"), max_length=20, choices=Expiry.choices, default=Expiry.NEVER
    )
    expiry_months = models.PositiveSmallIntegerField(_("months"), default=12)
    reminder_days = models.PositiveSmallIntegerField(_("reminder days before expiry"), default=14)
    refund_policy = models.CharField(
        _("when a refund finds the points spent"),
        max_length=20,
        choices=RefundPolicy.choices,
        default=RefundPolicy.AVAILABLE_ONLY,
    )
    point_value = models.DecimalField(
        _("value of one point"), max_digits=12, decimal_places=4, default=Decimal("0.0100")
    )
    excluded_skus = models.JSONField(_("SKUs that earn nothing"), default=list, blank=True)
    tier_basis = models.CharField(
        _("tiers are reached by"), max_length=10, choices=TierBasis.choices, default=TierBasis.SPENT
    )
    tier_window = models.CharField(
        _("counted over"),
        max_length=20,
        choices=TierWindow.choices,
        default=TierWindow.ROLLING_YEAR,
    )
    tier_warning_days = models.PositiveSmallIntegerField(
        _("days of warning before a tier drops"), default=14,
        help_text=_("A customer whose tier would drop within this many days, if she bought "
                    "nothing more, is told once (the tier-down warning flow). 0: no warning."),
    )  # fmt: skip
    referrer_points = models.PositiveIntegerField(_("points for the referrer"), default=500)
    # What a support agent may adjust without a manager (owners set them).
    support_adjust_limit = models.PositiveIntegerField(
        _("most points a support agent adjusts at a time"), default=500
    )
    support_daily_limit = models.PositiveIntegerField(
        _("most points a support agent adjusts in a day"), default=2000
    )
    friend_reward = models.ForeignKey(
        "Reward",
        verbose_name=_("welcome reward for the friend"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    terms = models.TextField(
        _("program terms"), blank=True,
        help_text=_("Shown to customers on the rewards page: how points, tiers and rewards work."),
    )  # fmt: skip
    updated_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"{self.merchant} program"


class Tier(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(_("name"), max_length=60)
    threshold = models.DecimalField(_("threshold"), **MONEY)
    multiplier = models.DecimalField(
        _("earning multiplier"), max_digits=5, decimal_places=2, default=Decimal("1.00")
    )
    perks = models.TextField(_("perks"), blank=True)
    birthday_points = models.PositiveIntegerField(_("birthday bonus points"), default=0)
    exclusive_promotions = models.BooleanField(_("access to exclusive promotions"), default=False)

    class Meta:
        ordering = ["threshold", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "threshold"], name="tier_one_per_threshold"
            ),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class MembershipPlan(models.Model):
    class Period(models.TextChoices):
        MONTH = "month", _("Month")
        QUARTER = "quarter", _("Quarter")
        YEAR = "year", _("Year")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="membership_plans"
    )
    name = models.CharField(_("name"), max_length=60)
    description = models.TextField(_("description"), blank=True)
    price = models.DecimalField(_("price"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    period = models.CharField(_("billing period"), max_length=10, choices=Period.choices)
    trial_days = models.PositiveSmallIntegerField(_("trial days"), default=0)
    grace_days = models.PositiveSmallIntegerField(_("days past due before it ends"), default=7)
    multiplier = models.DecimalField(
        _("earning multiplier"), max_digits=5, decimal_places=2, default=Decimal("1.00")
    )
    recurring_points = models.PositiveIntegerField(_("points each period"), default=0)
    perks = models.TextField(_("perks"), blank=True)
    exclusive_promotions = models.BooleanField(_("access to exclusive promotions"), default=False)
    is_active = models.BooleanField(_("open to new members"), default=True)

    class Meta:
        ordering = ["price", "id"]

    def __str__(self) -> str:
        return self.name


class EarningRule(models.Model):
    """One way to earn beyond the base rate: a multiplier (the best one that matches wins,
    among these and the customer's tier and membership multipliers), a fixed bonus on an
    order, or points for an event, with limits and an active window."""

    class Kind(models.TextChoices):
        CATEGORY_MULTIPLIER = "category_multiplier", _("Category or SKU multiplier")
        CAMPAIGN_MULTIPLIER = "campaign_multiplier", _("Bonus campaign multiplier")
        FIRST_ORDER = "first_order", _("First order bonus")
        PRODUCT_BONUS = "product_bonus", _("Product bonus")
        EVENT = "event", _("Event")

    class Event(models.TextChoices):
        SIGNUP = "signup", _("Sign-up")
        BIRTHDAY = "birthday", _("Birthday")
        REVIEW = "review", _("Product review")
        REFERRAL = "referral", _("Referral")
        SOCIAL_FOLLOW = "social_follow", _("Social follow")
        NEWSLETTER = "newsletter", _("Newsletter sign-up")
        CUSTOM = "custom", _("Custom event")

    class Per(models.TextChoices):
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="earning_rules")
    name = models.CharField(_("name"), max_length=80)
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    multiplier = models.DecimalField(
        _("multiplier"), max_digits=5, decimal_places=2, default=Decimal("1.00")
    )
    points = models.PositiveIntegerField(_("points"), default=0)
    category = models.CharField(_("category"), max_length=100, blank=True)
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    event = models.CharField(_("event"), max_length=20, choices=Event.choices, blank=True)
    event_key = models.CharField(_("custom event key"), max_length=60, blank=True)
    limit_count = models.PositiveIntegerField(_("at most"), null=True, blank=True)
    limit_per = models.CharField(_("per"), max_length=10, choices=Per.choices, blank=True)
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["kind", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def state(self) -> str:
        """What the rule list shows: off, active, scheduled (starts later) or ended."""
        if not self.is_active:
            return "off"
        at = now()
        if self.starts_at is not None and at < self.starts_at:
            return "scheduled"
        if self.ends_at is not None and at >= self.ends_at:
            return "ended"
        return "active"


class PointsAccount(models.Model):
    """A customer's points and tier. `available` and `pending` always equal the sums of the
    ledger: entries whose `available_at` is at or before `confirmed_through` count as
    available, later ones as pending."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="points_accounts")
    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="points_account"
    )
    available = models.IntegerField(default=0)
    pending = models.IntegerField(default=0)
    confirmed_through = models.DateTimeField(default=now)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    referral_code = models.CharField(max_length=16)
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts"
    )
    tier_since = models.DateTimeField(null=True, blank=True)
    tier_floor = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tier_floor_until = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "referral_code"], name="account_unique_referral_code"
            ),
            models.CheckConstraint(
                condition=Q(pending__gte=0), name="account_pending_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} · {self.available}"


class PointsEntry(models.Model):
    """One line of the ledger; never edited. A correction is a new entry that references
    the one it corrects."""

    class Kind(models.TextChoices):
        EARN = "earn", _("Earned")
        REDEEM = "redeem", _("Redeemed")
        EXPIRE = "expire", _("Expired")
        ADJUST = "adjust", _("Adjusted")
        REVERSE = "reverse", _("Reversed")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(PointsAccount, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    points = models.IntegerField()
    # Pending until then; spends, expiries and adjustments are available at once.
    available_at = models.DateTimeField(default=now)
    # Set on lots of earned points (and on reversals of them) when the program expires points.
    expires_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    # Rules that paid out are kept (deactivated, not deleted): limits count their entries.
    rule = models.ForeignKey(
        EarningRule, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    note = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"], name="entry_unique_idempotency_key"
            ),
            models.CheckConstraint(condition=~Q(points=0), name="entry_points_not_zero"),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="entry_account_recent"),
            models.Index(fields=["merchant", "available_at"], name="entry_merchant_available"),
            models.Index(fields=["merchant", "expires_at"], name="entry_merchant_expires"),
            models.Index(fields=["account", "rule", "created_at"], name="entry_account_rule"),
            models.Index(fields=["merchant", "created_at"], name="entry_merchant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+d}"


class Reward(models.Model):
    class Kind(models.TextChoices):
        FIXED_AMOUNT = "fixed_amount", _("Amount off")
        PERCENT = "percent", _("Percent off")
        FREE_SHIPPING = "free_shipping", _("Free shipping")
        FREE_PRODUCT = "free_product", _("Free product")
        POINTS_FOR_AMOUNT = "points_for_amount", _("Points for an amount of the customer's choice")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="rewards")
    name = models.CharField(_("name"), max_length=80)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    points_cost = models.PositiveIntegerField(_("points"))
    value = models.DecimalField(_("value"), **MONEY, default=Decimal("0.00"))
    product_sku = models.CharField(_("product SKU"), max_length=100, blank=True)
    max_units = models.PositiveIntegerField(
        _("most units in one redemption"), null=True, blank=True
    )
    tiers = models.ManyToManyField(Tier, verbose_name=_("only for tiers"), blank=True)
    plans = models.ManyToManyField(
        MembershipPlan, verbose_name=_("only for members of"), blank=True
    )
    stock = models.PositiveIntegerField(_("stock left"), null=True, blank=True)
    per_customer_limit = models.PositiveIntegerField(_("per customer"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["points_cost", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_costs_points"),
        ]

    def __str__(self) -> str:
        return self.name


class Redemption(models.Model):
    """Points turned into a reward: a single-use code the storefront accepts."""

    class State(models.TextChoices):
        ISSUED = "issued", _("Ready to use")
        USED = "used", _("Used")
        CANCELLED = "cancelled", _("Cancelled")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="redemptions")
    account = models.ForeignKey(PointsAccount, on_delete=models.CASCADE, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    # None for a gift that cost no points (a referred friend's welcome reward).
    entry = models.OneToOneField(
        PointsEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="redemption"
    )
    points = models.PositiveIntegerField()
    amount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    currency = models.CharField(max_length=3)
    code = models.CharField(max_length=24)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ISSUED)
    used_order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="redemption_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code


class TierChange(models.Model):
    class Reason(models.TextChoices):
        UPGRADE = "upgrade", _("Reached the threshold")
        RECALCULATION = "recalculation", _("Scheduled recalculation")
        OVERRIDE = "override", _("Set by staff")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(
        PointsAccount, on_delete=models.CASCADE, related_name="tier_changes"
    )
    from_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_tier} → {self.to_tier}"


class Membership(models.Model):
    class State(models.TextChoices):
        TRIALING = "trialing", _("Trial")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Payment due")
        CANCELLED = "cancelled", _("Cancelled (until period end)")
        EXPIRED = "expired", _("Ended")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    plan = models.ForeignKey(MembershipPlan, on_delete=models.PROTECT, related_name="memberships")
    state = models.CharField(max_length=10, choices=State.choices)
    started_at = models.DateTimeField(default=now)
    # Anchor for periods: each period ends `n` periods after this date, never by chaining.
    anchor = models.DateTimeField(default=now)
    periods_paid = models.PositiveIntegerField(default=0)
    current_period_end = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=~Q(state="expired"),
                name="membership_one_live_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} · {self.get_state_display()}"


class MembershipPayment(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="payments")
    external_id = models.CharField(max_length=128)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    paid_at = models.DateTimeField()
    period_end = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "external_id"], name="membership_payment_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class Referral(models.Model):
    class State(models.TextChoices):
        INVITED = "invited", _("Invited")
        ORDERED = "ordered", _("Friend ordered, waiting for the return window")
        REWARDED = "rewarded", _("Rewarded")
        FLAGGED = "flagged", _("Waiting for review")
        REJECTED = "rejected", _("Rejected")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="referrals")
    referrer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="referrals_made")
    friend = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="referred_by")
    welcome = models.OneToOneField(
        Redemption, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.INVITED)
    flags = models.JSONField(default=list, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.referrer} → {self.friend}"
