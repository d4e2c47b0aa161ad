from __future__ import annotations

import functools
import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from merchants.dates import Calendar
from merchants.roles import Role

CURRENCIES = [
    ("USD", "USD"),
    ("EUR", "EUR"),
    ("GBP", "GBP"),
    ("AED", "AED"),
    ("SAR", "SAR"),
    ("QAR", "QAR"),
    ("KWD", "KWD"),
    ("EGP", "EGP"),
    ("IRR", "IRR"),
    ("TRY", "TRY"),
    ("RUB", "RUB"),
    ("KZT", "KZT"),
    ("CAD", "CAD"),
    ("AUD", "AUD"),
    ("CHF", "CHF"),
    ("JPY", "JPY"),
    ("INR", "INR"),
]


def portal_secret_make() -> str:
    return secrets.token_hex(32)


@functools.cache
def _zones() -> frozenset[str]:
    # available_timezones() walks the zone files on every call; each customer a door
    # stores with a time zone is checked against it.
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _zones():
        raise ValidationError(_("“%(value)s” is not a known time zone."), params={"value": value})


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=normalise_email(email), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=normalise_email(username or ""))


def normalise_email(email: str) -> str:
    return email.strip().lower()


# Providers that ignore dots in the part before the @, and their other domain names.
DOTLESS_MAILBOXES = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def email_mailbox(email: str) -> str:
    """The mailbox an address delivers to, as the big providers read it, for comparing two
    addresses (never for storing one): case and a `+tag` ignored everywhere, and dots too
    at Gmail, so `Sam.Lee+promo@googlemail.com` is `samlee@gmail.com`."""
    local, _at, domain = normalise_email(email).rpartition("@")
    if not local:
        return normalise_email(email)
    local = local.split("+", 1)[0]
    if domain in DOTLESS_MAILBOXES:
        domain = DOTLESS_MAILBOXES[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


class User(AbstractBaseUser):
    """A staff person. Customers are not users: they sign in to their rewards page only."""

    email = models.EmailField(_("email"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


class Merchant(models.Model):
    """A shop using Regulars: the tenant every other row belongs to."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    base_currency = models.CharField(
        _("base currency"), max_length=3, choices=CURRENCIES, default="USD"
    )
    timezone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_timezone]
    )
    default_language = models.CharField(
        _("default language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    calendar = models.CharField(
        _("calendar"), max_length=16, choices=Calendar.choices, default=Calendar.GREGORIAN
    )
    brand_color = models.CharField(
        _("brand colour"),
        max_length=7,
        default="#0d6efd",
        validators=[
            RegexValidator(
                r"^#[0-9a-fA-F]{6}$", _("Enter a colour as # and six hex digits, like #0d6efd.")
            )
        ],
    )
    reply_to_email = models.EmailField(_("reply-to email"), blank=True)
    storefront_url = models.URLField(_("shop address"), blank=True)
    # Signs the storefront's links to the rewards page (HMAC-SHA256); rotated from settings.
    portal_secret = models.CharField(max_length=64, default=portal_secret_make)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def brand_text_color(self) -> str:
        """White on the brand colour when it reads well enough (WCAG AA, 4.5:1), else
        whichever of white and black reads better."""
        channels = [int(self.brand_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
        on_white, on_black = 1.05 / (luminance + 0.05), (luminance + 0.05) / 0.05
        return "#ffffff" if on_white >= 4.5 or on_white >= on_black else "#000000"


class StaffMember(models.Model):
    """A user's role in one merchant. A user may be staff of several merchants."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "user"], name="staff_one_role_per_merchant")
        ]
        ordering = ["merchant", "user__email"]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) at {self.merchant}"


class AuditEvent(models.Model):
    """Append-only record of a sensitive action: who, where, what, before and after."""

    class Action(models.TextChoices):
        SIGN_IN_FAILED = "sign_in.failed", _("Sign-in failed")
        SIGN_IN_LOCKED = "sign_in.locked", _("Sign-in locked out")
        PERMISSION_DENIED = "permission.denied", _("Permission denied")
        SETTINGS_CHANGED = "settings.changed", _("Settings changed")
        STAFF_INVITED = "staff.invited", _("Staff invited")
        STAFF_ROLE_CHANGED = "staff.role_changed", _("Staff role changed")
        STAFF_REMOVED = "staff.removed", _("Staff removed")
        API_KEY_CREATED = "api_key.created", _("API key created")
        API_KEY_REVOKED = "api_key.revoked", _("API key revoked")
        CONNECTION_CREATED = "connection.created", _("Shop connection created")
        CONNECTION_REVOKED = "connection.revoked", _("Shop connection revoked")
        CUSTOMER_EXPORTED = "customer.exported", _("Customer data exported")
        CUSTOMER_ERASED = "customer.erased", _("Customer erased")

    merchant = models.ForeignKey(
        Merchant, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept apart from the foreign key so the log still names who acted after they leave.
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "-created_at"], name="audit_merchant_recent")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label or '-'}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")


class JobRun(models.Model):
    """Claims one run of a scheduled job for one merchant and period, so a second run of
    the same job (a retry, a second beat, two workers) finds the claim and does nothing."""

    class State(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    job = models.CharField(max_length=60)
    merchant = models.ForeignKey(
        Merchant, null=True, blank=True, on_delete=models.CASCADE, related_name="job_runs"
    )
    period_key = models.CharField(max_length=40)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "merchant", "period_key"],
                condition=models.Q(merchant__isnull=False),
                name="jobrun_once_per_merchant_period",
            ),
            models.UniqueConstraint(
                fields=["job", "period_key"],
                condition=models.Q(merchant__isnull=True),
                name="jobrun_once_per_period",
            ),
        ]
        indexes = [models.Index(fields=["job", "-started_at"], name="jobrun_job_recent")]

    def __str__(self) -> str:
        return f"{self.job} {self.period_key} ({self.state})"


class ApiKey(models.Model):
    """A merchant's key for the JSON API. Only a hash is stored; the key is shown once."""

    class Scope(models.TextChoices):
        INGEST = "ingest", _("Send customers, orders, refunds and events")
        REDEEM = "redeem", _("Validate and redeem codes")
        READ = "read", _("Read customers' loyalty status")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an Idempotency-Key, replayed for 24 hours."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    path = models.CharField(max_length=255)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "key"], name="idempotency_key_once")
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.status_code}"


class StoreConnection(models.Model):
    """A shop platform sending webhooks: its address (by a random id) and its secret."""

    class Platform(models.TextChoices):
        SHOPIFY = "shopify", "Shopify"
        WOOCOMMERCE = "woocommerce", "WooCommerce"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="connections")
    platform = models.CharField(max_length=20, choices=Platform.choices)
    name = models.CharField(_("name"), max_length=80)
    public_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    # The platform signs with this secret, so it is kept as is (not hashed) to verify.
    secret = models.CharField(max_length=128)
    # Where promotions and their codes are created in the shop (optional): the shop's
    # address, and its Admin API access token (Shopify) or REST consumer key and secret
    # (WooCommerce). Kept as is: they are sent to the shop on every call.
    admin_url = models.URLField(_("shop address"), blank=True)
    admin_key = models.CharField(_("consumer key"), max_length=128, blank=True)
    admin_token = models.CharField(_("access token or consumer secret"), max_length=256,
                                   blank=True)  # fmt: skip
    created_at = models.DateTimeField(default=now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_platform_display()}: {self.name}"

    @property
    def pushes_codes(self) -> bool:
        """Whether promotions are created in this shop: it is live and we may write to it."""
        needs_key = self.platform == self.Platform.WOOCOMMERCE
        return bool(
            self.revoked_at is None and self.admin_url and self.admin_token
            and (self.admin_key or not needs_key)
        )  # fmt: skip
