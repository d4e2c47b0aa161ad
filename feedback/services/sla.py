"""SLA clocks on tickets, and the job that marks missed targets (docs/business-rules.md §8, §9).

Due times are wall-clock UTC instants worked out from business minutes (services.hours):
the clock runs only inside the merchant's working hours, in the merchant's time zone, and
stops while a ticket is pending. The functions that move clocks only change the instance;
the ticket services lock, save and log.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import pairwise

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.timezone import now

from feedback import states, tasks
from feedback.models import (
    PRIORITY_ORDER,
    Feedback,
    SlaBreach,
    SlaPolicy,
    State,
    SupportSettings,
)
from feedback.services.hours import business_add, business_minutes
from feedback.services.thread import event_add, mail_deliver
from merchants.content import content_override
from merchants.dates import date_shown
from merchants.models import Merchant

logger = logging.getLogger(__name__)

BREACH_CHUNK = 500
# A list in a fixed order, so the SQL is the same on every run (and a partial index on
# these states can match it).
ACTIVE_STATES = sorted(states.ACTIVE)


# ---------------------------------------------------------------------------------------
# Clocks on one ticket (the caller holds the row and saves it)


def _hours_of(merchant: Merchant) -> SupportSettings:
    """Read-only: a merchant who never saved support settings works Monday to Friday, 9 to 5;
    working out a due time must not write a settings row."""
    try:
        return merchant.support_settings
    except SupportSettings.DoesNotExist:
        return SupportSettings(merchant=merchant)


def _policies(*, merchant_id: int, priorities: set[str]) -> dict[str, SlaPolicy]:
    found = SlaPolicy.objects.filter(merchant_id=merchant_id, priority__in=priorities)
    return {policy.priority: policy for policy in found}


def _add(feedback: Feedback, start: datetime, minutes: int) -> datetime:
    merchant = feedback.merchant
    return business_add(hours=_hours_of(merchant), merchant=merchant, start=start, minutes=minutes)


def sla_due_set(*, feedback: Feedback, at: datetime, first_response: bool) -> None:
    """Starts the clocks of a new ticket (first_response=True) or of a reopened cycle (a new
    resolution clock only; a first response happens once per ticket)."""
    policy = _policies(merchant_id=feedback.merchant_id, priorities={feedback.priority}).get(
        feedback.priority
    )
    sets_first_response = first_response and feedback.first_response_at is None
    if policy is None:
        feedback.resolution_due_at = None
        if sets_first_response:
            feedback.first_response_due_at = None
        return
    feedback.resolution_due_at = _add(feedback, at, policy.resolution_minutes)
    if sets_first_response:
        feedback.first_response_due_at = _add(feedback, at, policy.first_response_minutes)


def sla_pause(*, feedback: Feedback, at: datetime) -> None:
    """Entering pending: the clock stops until sla_resume."""
    feedback.sla_paused_at = at


def sla_resume(*, feedback: Feedback, at: datetime) -> None:
    """Leaving pending: every due time moves on by the business minutes spent waiting."""
    paused_at = feedback.sla_paused_at
    feedback.sla_paused_at = None
    if paused_at is None:
        return
    merchant = feedback.merchant
    waited = business_minutes(hours=_hours_of(merchant), merchant=merchant, start=paused_at, end=at)
    if not waited:
        # Adding 0 would still roll a due time at closing over to the next opening.
        return
    if feedback.first_response_due_at is not None:
        feedback.first_response_due_at = _add(feedback, feedback.first_response_due_at, waited)
    if feedback.resolution_due_at is not None:
        feedback.resolution_due_at = _add(feedback, feedback.resolution_due_at, waited)


def sla_priority_changed(*, feedback: Feedback, old_priority: str, at: datetime) -> None:
    """Moves each due time by the difference between the two priorities' targets, so the
    time already used and earlier pauses still count. A met first response stays as it was.
    Without an old target the new one starts now (from the pause, if pending, so resuming
    does not count the wait twice); without a new target the clock goes."""
    if old_priority == feedback.priority:
        return
    policies = _policies(
        merchant_id=feedback.merchant_id, priorities={old_priority, feedback.priority}
    )
    old, new = policies.get(old_priority), policies.get(feedback.priority)
    targets = [("resolution_due_at", "resolution_minutes")]
    if feedback.first_response_at is None:
        targets.append(("first_response_due_at", "first_response_minutes"))
    for due_field, minutes_field in targets:
        due = getattr(feedback, due_field)
        if new is None:
            moved = None
        elif old is None or due is None:
            moved = _add(feedback, feedback.sla_paused_at or at, getattr(new, minutes_field))
        else:
            difference = getattr(new, minutes_field) - getattr(old, minutes_field)
            moved = _add(feedback, due, difference) if difference else due
        setattr(feedback, due_field, moved)


# ---------------------------------------------------------------------------------------
# The breach job

DUE_FIELDS: dict[str, str] = {
    SlaBreach.Target.FIRST_RESPONSE: "first_response_due_at",
    SlaBreach.Target.RESOLUTION: "resolution_due_at",
}


def _overdue(target: str, at: datetime) -> Q:
    """Tickets whose `target` is missed at `at`: the clock runs (new or open) and the due
    time has passed; a first response counts only until one was given."""
    missed = Q(state__in=ACTIVE_STATES, **{f"{DUE_FIELDS[target]}__lt": at})
    if target == SlaBreach.Target.FIRST_RESPONSE:
        missed &= Q(first_response_at__isnull=True)
    return missed


def _already_breached(target: str) -> Exists:
    breaches = SlaBreach.objects.filter(feedback=OuterRef("pk"), target=target)
    if target == SlaBreach.Target.RESOLUTION:
        breaches = breaches.filter(cycle=OuterRef("cycle"))
    # A first response is owed once per ticket: a reopen after a missed one is not news.
    return Exists(breaches)


def _priority_raised() -> Case:
    """One step up, in SQL, so a concurrent staff edit of other fields is not overwritten."""
    steps = [When(priority=low, then=Value(high)) for low, high in pairwise(PRIORITY_ORDER)]
    return Case(*steps, default=F("priority"))


def sla_breaches_mark(*, at: datetime | None = None) -> int:
    """Marks every missed target once, escalates and notifies. Returns the new breaches.

    Why two overlapping runs escalate once: each candidate is handled in its own short
    transaction that re-reads the ticket under a row lock (SKIP LOCKED: a ticket another run
    or a staff edit holds is left to the next run, five minutes later) and re-checks that it
    is still overdue; the SlaBreach insert then happens under a savepoint, and the unique
    (ticket, target, cycle) constraint makes a run that comes second (after the first
    committed) fail the insert and skip. Only the run whose insert succeeded goes on to
    raise the priority, write the event and queue the email (on commit).

    Only merchants with a policy have clocks. Per merchant, the (merchant, state) index
    finds the tickets being worked, a set bounded by the backlog rather than by history;
    pages of at most BREACH_CHUNK keep each read small.
    """
    at = at or now()
    merchant_ids = list(
        SlaPolicy.objects.order_by("merchant_id").values_list("merchant_id", flat=True).distinct()
    )
    return sum(
        _target_breaches_mark(merchant_id=merchant_id, target=target, at=at)
        for merchant_id in merchant_ids
        for target in SlaBreach.Target
    )


def _target_breaches_mark(*, merchant_id: int, target: str, at: datetime) -> int:
    due_field = DUE_FIELDS[target]
    # Keyset pages on (due time, id): the rows this run skipped or marked stay behind the
    # cursor, so a page never comes back.
    candidates = (
        Feedback.objects.filter(_overdue(target, at), merchant_id=merchant_id)
        .exclude(_already_breached(target))
        .order_by(due_field, "pk")
        .values_list(due_field, "pk")
    )
    marked = 0
    after: tuple[datetime, int] | None = None
    while True:
        page = candidates
        if after is not None:
            page = page.filter(
                Q(**{f"{due_field}__gt": after[0]}) | Q(**{due_field: after[0], "pk__gt": after[1]})
            )
        rows = list(page[:BREACH_CHUNK])
        marked += sum(_breach_record(feedback_id=pk, target=target, at=at) for _due, pk in rows)
        if len(rows) < BREACH_CHUNK:
            return marked
        after = rows[-1]


def _breach_record(*, feedback_id: int, target: str, at: datetime) -> bool:
    with transaction.atomic():
        feedback = (
            Feedback.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("merchant")
            .filter(_overdue(target, at), pk=feedback_id)
            .exclude(_already_breached(target))
            .first()
        )
        if feedback is None:  # answered, paused or closed meanwhile, or held elsewhere
            return False
        try:
            with transaction.atomic():
                breach = SlaBreach.objects.create(
                    merchant_id=feedback.merchant_id,
                    feedback=feedback,
                    target=target,
                    cycle=feedback.cycle,
                    due_at=getattr(feedback, DUE_FIELDS[target]),
                    breached_at=at,
                )
        except IntegrityError:  # another run marked it first: it escalates, not us
            return False
        # The due times stay: escalation is not a new target.
        Feedback.objects.filter(pk=feedback.pk).update(
            priority=_priority_raised(), breached_at=Coalesce(F("breached_at"), Value(at))
        )
        event_add(feedback=feedback, at=at,
                  event="sla_first_response" if breach.target == SlaBreach.Target.FIRST_RESPONSE
                  else "sla_resolution", values={"due": breach.due_at.isoformat()})  # fmt: skip
        mail_deliver(breach_notify, tasks.breach_notify_task, breach_id=breach.pk)
    return True


def _local_time(instant: datetime, merchant: Merchant) -> str:
    local = instant.astimezone(merchant.zone)
    return f"{date_shown(local, 'DATETIME_FORMAT')} ({merchant.timezone})"


def _breach_recipients(feedback: Feedback) -> list[tuple[str, str]]:
    """(address, language) to email: the department's address (in the shop's language),
    else its members, else the assignee, each in their own language."""
    shop_language = feedback.merchant.default_language
    department = feedback.department
    if department is not None:
        if department.email:
            return [(department.email, shop_language)]
        members = (
            department.members.filter(user__is_active=True)
            .order_by("user__email")
            .values_list("user__email", "user__language")
        )
        if members:
            return [(email, language or shop_language) for email, language in members]
    assignee = feedback.assignee
    if assignee is not None and assignee.user.is_active:
        return [(assignee.user.email, assignee.user.language or shop_language)]
    return []


def _ticket_link(feedback: Feedback) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(
        "feedback:ticket-detail", kwargs={"pk": feedback.pk}
    )


def breach_notify(*, breach_id: int) -> None:
    """Emails the department (or its members, or the assignee) that a target was missed."""
    breach = SlaBreach.objects.select_related(
        "merchant", "feedback__customer", "feedback__department", "feedback__assignee__user"
    ).get(pk=breach_id)
    feedback, merchant = breach.feedback, breach.merchant
    recipients = _breach_recipients(feedback)
    if not recipients:
        # The breach is marked on the ticket and in the inbox either way; with no department
        # address, member or assignee there is no one to email (a shop's choice, not a fault).
        logger.info("SLA breach %s on ticket %s: nobody to notify", breach.pk, feedback.pk)
        return
    context = {
        "breach": breach,
        "feedback": feedback,
        "merchant": merchant,
        "link": _ticket_link(feedback),
    }
    # Each in their own language: one message per language, to everyone who reads it.
    by_language: dict[str, list[str]] = {}
    for email, language in recipients:
        by_language.setdefault(language, []).append(email)
    for language, emails in sorted(by_language.items()):
        with translation.override(language), timezone.override(merchant.zone), \
                content_override(merchant):  # fmt: skip
            context["due"] = _local_time(breach.due_at, merchant)
            subject = " ".join(
                render_to_string("feedback/mail/breach_subject.txt", context).split()
            )
            body = render_to_string("feedback/mail/breach.txt", context)
        send_mail(subject, body, None, emails)


# ---------------------------------------------------------------------------------------
# Closing resolved tickets


def resolved_close_due(*, at: datetime | None = None) -> int:
    """Closes tickets resolved more than the merchant's close_after_days ago: one UPDATE per
    distinct setting in use (most merchants share the default), nothing else written. The
    WHERE re-checks the state under the row lock, so a ticket reopened meanwhile stays open."""
    at = at or now()
    default_days = SupportSettings._meta.get_field("close_after_days").default
    custom = SupportSettings.objects.exclude(close_after_days=default_days)
    closed = 0
    for days in sorted(set(custom.values_list("close_after_days", flat=True))):
        merchants = custom.filter(close_after_days=days).values("merchant_id")
        closed += _resolved_close(at=at, days=days, merchants=Q(merchant_id__in=merchants))
    default_merchants = ~Q(merchant_id__in=custom.values("merchant_id"))
    closed += _resolved_close(at=at, days=default_days, merchants=default_merchants)
    return closed


def _resolved_close(*, at: datetime, days: int, merchants: Q) -> int:
    return Feedback.objects.filter(
        merchants, state=State.RESOLVED, resolved_at__lt=at - timedelta(days=days)
    ).update(state=State.CLOSED, closed_at=at)
