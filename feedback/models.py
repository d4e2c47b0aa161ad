"""The feedback inbox's rows: tickets (Feedback) and their messages and attachments,
departments, routing rules, canned replies, SLA policies and business hours, SLA breaches,
resolution cycles and CSAT surveys (docs/business-rules.md §8)."""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import Customer, Segment
from loyalty.models import Tier
from merchants.models import Merchant, StaffMember


class Channel(models.TextChoices):
    PORTAL = "portal", _("Rewards page")
    API = "api", _("API")
    EMAIL = "email", _("Email")
    REVIEW = "review", _("Review")
    PHONE = "phone", _("Phone or staff entry")


class Kind(models.TextChoices):
    COMPLAINT = "complaint", _("Complaint")
    QUESTION = "question", _("Question")
    SUGGESTION = "suggestion", _("Suggestion")
    PRAISE = "praise", _("Praise")
    REVIEW = "review", _("Review")


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


class State(models.TextChoices):
    # "ticket state": in Russian and Arabic a state agrees with the word for a ticket, and
    # the same English words elsewhere ("New" customers, an "Open" plan) would not.
    NEW = "new", pgettext_lazy("ticket state", "New")
    OPEN = "open", pgettext_lazy("ticket state", "Open")
    PENDING = "pending", pgettext_lazy("ticket state", "Pending")
    RESOLVED = "resolved", pgettext_lazy("ticket state", "Resolved")
    CLOSED = "closed", pgettext_lazy("ticket state", "Closed")
    MERGED = "merged", pgettext_lazy("ticket state", "Merged")
    SPAM = "spam", pgettext_lazy("ticket state", "Spam")


class ReviewState(models.TextChoices):
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", pgettext_lazy("review", "Approved")
    REJECTED = "rejected", pgettext_lazy("review", "Rejected")


class SupportSettings(models.Model):
    """The merchant's business hours (in the merchant's time zone) for SLA clocks, and how
    long a resolved ticket waits for the customer before it closes."""

    merchant = models.OneToOneField(
        Merchant, on_delete=models.CASCADE, related_name="support_settings"
    )
    # ISO weekdays, Monday = 1 … Sunday = 7.
    working_days = models.JSONField(_("working days"), default=list)
    day_starts = models.TimeField(_("day starts"), default=time(9, 0))
    day_ends = models.TimeField(_("day ends"), default=time(17, 0))
    close_after_days = models.PositiveSmallIntegerField(
        _("close resolved tickets after (days)"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
    )
    inbound_secret = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"Support settings of {self.merchant}"


class Department(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="departments")
    name = models.CharField(_("name"), max_length=80)
    members = models.ManyToManyField(
        StaffMember, blank=True, related_name="departments", verbose_name=_("members")
    )
    default_assignee = models.ForeignKey(
        StaffMember,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("default assignee"),
    )
    email = models.EmailField(_("notification email"), blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "name"], name="department_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class SlaPolicy(models.Model):
    """Targets for one priority, in business minutes."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="sla_policies")
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField(
        _("first response within (business minutes)"), validators=[MinValueValidator(1)]
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution within (business minutes)"), validators=[MinValueValidator(1)]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "priority"], name="sla_one_per_priority")
        ]

    def __str__(self) -> str:
        return f"SLA {self.priority}"


class RoutingRule(models.Model):
    """Ordered: the first active rule whose conditions all hold routes the ticket. An empty
    condition holds for everything; keywords match any one of them, in any language."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="routing_rules")
    name = models.CharField(_("name"), max_length=80)
    position = models.PositiveIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    # Conditions.
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, blank=True)
    rating_min = models.PositiveSmallIntegerField(
        _("rating at least"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )  # fmt: skip
    rating_max = models.PositiveSmallIntegerField(
        _("rating at most"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )  # fmt: skip
    keywords = models.TextField(
        _("keywords"), blank=True, help_text=_("One per line or comma-separated; any one matches.")
    )
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        verbose_name=_("customer tier"),
    )  # fmt: skip
    segment = models.CharField(
        _("customer segment"), max_length=20, choices=Segment.choices, blank=True
    )
    # Actions.
    category = models.CharField(_("set category"), max_length=60, blank=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        verbose_name=_("set department"),
    )  # fmt: skip
    priority = models.CharField(
        _("set priority"), max_length=10, choices=Priority.choices, blank=True
    )
    assignee = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("set assignee"),
    )  # fmt: skip

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class CannedReply(models.Model):
    """A reply an agent starts from. Placeholders: {customer_name}, {ticket_number},
    {agent_name}, {merchant_name}. No department: every department may use it."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="canned_replies")
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.CASCADE, related_name="canned_replies",
        verbose_name=_("department"),
    )  # fmt: skip
    title = models.CharField(_("title"), max_length=80)
    body = models.TextField(_("text"))

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Feedback(models.Model):
    """A ticket: one piece of feedback from a customer (or an unknown sender by email) and
    the conversation about it."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback"
    )
    sender_email = models.EmailField(_("sender email"), blank=True)
    sender_name = models.CharField(_("sender name"), max_length=120, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    rating = models.PositiveSmallIntegerField(
        _("rating"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )  # fmt: skip
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("message"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    # The shop's own id for a review sent through the API: sending it again creates nothing.
    external_id = models.CharField(_("external id"), max_length=100, blank=True)
    # Reviews: the product and whether the merchant approved it.
    product_sku = models.CharField(_("product SKU"), max_length=100, blank=True)
    product_name = models.CharField(_("product"), max_length=200, blank=True)
    review_state = models.CharField(
        _("review"), max_length=10, choices=ReviewState.choices, blank=True
    )
    category = models.CharField(_("category"), max_length=60, blank=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets",
        verbose_name=_("department"),
    )  # fmt: skip
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets",
        verbose_name=_("assignee"),
    )  # fmt: skip
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.NEW)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    created_at = models.DateTimeField(_("created"), default=now)
    # The latest customer or staff message, or state change: the inbox's order.
    updated_at = models.DateTimeField(_("updated"), default=now)
    # SLA: due times in wall-clock UTC, worked out from business hours; null without a policy.
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    # While pending, the clock is stopped; the business minutes left are kept here.
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    # When the current cycle first missed a target (set by the breach job, cleared on reopen).
    breached_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)
    # The cycle the ticket is in: 1, then 2 after the first reopen, and so on.
    cycle = models.PositiveIntegerField(default=1)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_tickets"
    )
    follows = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="followed_by",
        verbose_name=_("follows ticket"),
    )  # fmt: skip
    # Set once a review has earned its points: approving twice earns once.
    points_awarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "-updated_at", "-id"], name="fb_recent"),
            models.Index(fields=["merchant", "state", "-updated_at", "-id"], name="fb_state"),
            models.Index(fields=["merchant", "assignee", "-updated_at", "-id"], name="fb_assignee"),
            models.Index(
                fields=["merchant", "department", "-updated_at", "-id"], name="fb_department"
            ),
            models.Index(fields=["customer", "-created_at"], name="fb_customer"),
            models.Index(fields=["merchant", "breached_at"], name="fb_breached"),
            # The unassigned view: most unfinished tickets have someone, so walking fb_state
            # for the ones that don't would read past all of those.
            models.Index(
                fields=["merchant", "state", "-updated_at", "-id"],
                condition=models.Q(assignee__isnull=True),
                name="fb_unassigned",
            ),
            models.Index(fields=["merchant", "created_at"], name="fb_created"),
            models.Index(fields=["merchant", "sender_email"], name="fb_sender"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "channel", "external_id"],
                condition=~models.Q(external_id=""),
                name="feedback_external_once",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def number(self) -> str:
        return f"#{self.pk}"

    @property
    def sender(self) -> str:
        """Who wrote in, as the inbox shows it (reads `customer`: select it with the row)."""
        if self.customer_id is not None:
            return self.customer.full_name or self.customer.email or self.sender_email
        return self.sender_name or self.sender_email

    # The names of the channel, state and priority in the active language: one lookup each,
    # where get_<field>_display hashes every (lazily translated) choice; the inbox shows
    # fifty rows of them.

    @property
    def channel_label(self) -> str:
        return str(Channel(self.channel).label)

    @property
    def state_label(self) -> str:
        return str(State(self.state).label)

    @property
    def priority_label(self) -> str:
        return str(Priority(self.priority).label)


class Message(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        REPLY = "reply", _("Reply")
        NOTE = "note", _("Internal note")
        EVENT = "event", _("Event")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(blank=True)
    # An event line (kind EVENT) is a kind and its values, worded when shown in the reader's
    # language (feedback.events); lines stored before that hold their words in `body`.
    event = models.CharField(max_length=40, blank=True)
    values = models.JSONField(default=dict, blank=True)
    # Sent by the product, not typed by a person (an acknowledgement, a CSAT request): never
    # counts as a first response.
    is_automatic = models.BooleanField(default=False)
    # Inbound: the email's Message-ID (a replay finds it); outbound: the id our email used,
    # so the customer's answer threads by In-Reply-To.
    email_message_id = models.CharField(max_length=250, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["feedback", "created_at"], name="fbmsg_thread")]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "email_message_id"],
                condition=~models.Q(email_message_id=""),
                name="fbmsg_email_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} on #{self.feedback_id}"

    @property
    def text(self) -> str:
        """What the thread shows: an event worded in the active language, else the body."""
        if self.event:
            from feedback.events import event_line

            return event_line(self.event, self.values)
        return self.body

    @property
    def is_public(self) -> bool:
        return self.kind in (self.Kind.CUSTOMER, self.Kind.REPLY)


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"feedback/{instance.merchant_id}/{now():%Y/%m}/{filename}"


class Attachment(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=250)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()

    def __str__(self) -> str:
        return self.name


class Cycle(models.Model):
    """One open-to-resolved stretch of a ticket: the first starts at creation, each reopen
    starts another. Resolution time is measured per cycle."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="cycles")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feedback", "number"], name="cycle_once")]
        indexes = [models.Index(fields=["merchant", "resolved_at"], name="cycle_resolved")]

    def __str__(self) -> str:
        return f"#{self.feedback_id} cycle {self.number}"


class SlaBreach(models.Model):
    """A target missed, once per ticket, target and cycle: the job that inserts the row is
    the one that escalates and notifies."""

    class Target(models.TextChoices):
        FIRST_RESPONSE = "first_response", _("First response")
        RESOLUTION = "resolution", _("Resolution")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="breaches")
    target = models.CharField(max_length=20, choices=Target.choices)
    cycle = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    breached_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["feedback", "target", "cycle"], name="sla_breach_once")
        ]
        indexes = [models.Index(fields=["merchant", "breached_at"], name="sla_breach_recent")]

    def __str__(self) -> str:
        return f"#{self.feedback_id} {self.target} breached"


class CsatSurvey(models.Model):
    """Sent when a ticket is resolved: a single-use link (only its hash is kept) that
    expires after 14 days, answered with 1 to 5 and a comment."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="surveys")
    cycle = models.PositiveIntegerField()
    token_hash = models.CharField(max_length=64, unique=True)
    sent_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True)
    # Whom the answer is about: the agent who resolved the cycle.
    agent = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["feedback", "cycle"], name="csat_once_per_cycle")
        ]
        indexes = [models.Index(fields=["merchant", "answered_at"], name="csat_answered")]

    def __str__(self) -> str:
        return f"CSAT #{self.feedback_id} cycle {self.cycle}"
