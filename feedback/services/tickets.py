"""Staff work on a ticket: replies emailed to the customer, internal notes, the moves of
the state table, assignment, triage, tags, merge, bulk actions and review moderation
(docs/business-rules.md §8).

Every write locks the ticket row first, so two agents (or an agent and the customer's
email) acting on the same ticket apply one after the other, each seeing the other's result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import make_msgid
from django.db import transaction
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.mail import address_email_send, customer_email_send
from customers.models import Activity
from customers.services.profiles import customer_event_record
from feedback import tasks
from feedback.models import (
    Cycle,
    Feedback,
    Kind,
    Message,
    Priority,
    ReviewState,
    State,
)
from feedback.services.csat import csat_send
from feedback.services.sla import sla_due_set, sla_pause, sla_priority_changed, sla_resume
from feedback.services.thread import (
    Upload,
    agent_value,
    attachments_store,
    event_add,
    mail_deliver,
    member_check,
    ticket_locked,
    timeline_add,
    uploads_check,
)
from feedback.states import By, transition_allowed
from merchants.models import Merchant, StaffMember


def staff_reply(
    *,
    feedback: Feedback,
    member: StaffMember,
    body: str,
    uploads: Sequence[Upload] = (),
    then: str | None = None,
    at: datetime | None = None,
) -> Message:
    """A public reply: on the customer's rewards page and in their inbox, in their language.
    The first one stops the first-response clock; a ticket nobody owns becomes the
    replier's. `then` moves the ticket on in the same step (pending or resolved)."""
    at = at or now()
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a reply.")})
    uploads_check(uploads)
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        member_check(feedback=feedback, member=member)
        if feedback.state in (State.CLOSED, State.MERGED, State.SPAM):
            raise ValidationError({"body": _(
                "This ticket is %(state)s: it can't be replied to."
            ) % {"state": State(feedback.state).label.lower()}})  # fmt: skip
        domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "regulars.local"
        message = Message.objects.create(
            merchant_id=feedback.merchant_id,
            feedback=feedback,
            kind=Message.Kind.REPLY,
            body=body,
            author=member.user,
            email_message_id=make_msgid(idstring=f"fb{feedback.pk}", domain=domain),
            created_at=at,
        )
        attachments_store(message=message, uploads=uploads)
        # Queued before a resolve below queues its survey: the answer arrives first.
        mail_deliver(reply_email_send, tasks.reply_email_task, message_id=message.pk)
        if feedback.first_response_at is None:
            feedback.first_response_at = at
        if feedback.assignee_id is None:
            feedback.assignee = member
        if feedback.state == State.NEW:
            state_move(feedback=feedback, to=State.OPEN, by=By.STAFF, member=member, at=at)
        if then and then != feedback.state:
            state_move(feedback=feedback, to=then, by=By.STAFF, member=member, at=at)
        feedback.updated_at = at
        feedback.save()
        timeline_add(feedback=feedback, kind=Activity.Kind.FEEDBACK_REPLIED, at=at)
        return message


def reply_email_send(*, message_id: int) -> bool:
    """Emails a public reply to whoever wrote in, threaded under their last email."""
    message = (
        Message.objects.select_related("feedback__merchant", "feedback__customer__merchant")
        .filter(pk=message_id, kind=Message.Kind.REPLY)
        .first()
    )
    if message is None:
        return False
    feedback = message.feedback
    headers = {"Message-ID": message.email_message_id}
    earlier = (
        Message.objects.filter(feedback=feedback, created_at__lte=message.created_at)
        .exclude(pk=message.pk)
        .exclude(email_message_id="")
        .order_by("-created_at", "-pk")
        .values_list("email_message_id", flat=True)[:10]
    )
    if earlier:
        headers["In-Reply-To"] = earlier[0]
        headers["References"] = " ".join(reversed(earlier))
    context = {"feedback": feedback, "reply": message, "portal_url": _portal_url(feedback)}
    template = "feedback/mail/reply"
    if feedback.customer is not None and feedback.customer.email:
        return customer_email_send(
            customer=feedback.customer, template=template, context=context, headers=headers
        )
    if feedback.sender_email:
        address_email_send(
            merchant=feedback.merchant, address=feedback.sender_email,
            language=feedback.language, template=template, context=context, headers=headers,
        )  # fmt: skip
        return True
    return False


def _portal_url(feedback: Feedback) -> str:
    if feedback.customer_id is None:
        return ""
    path = reverse("portal:home", kwargs={"merchant_slug": feedback.merchant.slug})
    return settings.SITE_URL.rstrip("/") + path


def note_add(
    *,
    feedback: Feedback,
    member: StaffMember,
    body: str,
    uploads: Sequence[Upload] = (),
    at=None,
) -> Message:
    """An internal note: for colleagues only, never sent or shown to the customer. Text
    only: files come with a reply."""
    at = at or now()
    body = body.strip()
    if uploads:
        raise ValidationError({"attachments": _("Files go with a reply; a note keeps text only.")})
    if not body:
        raise ValidationError({"body": _("Write a note.")})
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        member_check(feedback=feedback, member=member)
        return Message.objects.create(
            merchant_id=feedback.merchant_id, feedback=feedback, kind=Message.Kind.NOTE,
            body=body, author=member.user, created_at=at,
        )  # fmt: skip


def feedback_transition(
    *, feedback: Feedback, to: str, member: StaffMember | None, by: By = By.STAFF, at=None
) -> Feedback:
    """Moves the ticket to `to` if the state table allows it for `by`; otherwise a
    ValidationError naming both states."""
    at = at or now()
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        member_check(feedback=feedback, member=member)
        state_move(feedback=feedback, to=to, by=by, member=member, at=at)
        feedback.updated_at = at
        feedback.save()
        return feedback


def state_move(*, feedback: Feedback, to: str, by: By, member: StaffMember | None, at) -> None:
    """One move of the table with what it brings, on a locked ticket the caller saves."""
    current = feedback.state
    if to not in State.values or not transition_allowed(current, to, by):
        raise ValidationError({"state": _(
            "A ticket that is %(current)s can't be moved to %(to)s."
        ) % {
            "current": State(current).label.lower(),
            "to": State(to).label.lower() if to in State.values else to,
        }})  # fmt: skip
    if current == State.PENDING:
        sla_resume(feedback=feedback, at=at)
    if to == State.PENDING:
        sla_pause(feedback=feedback, at=at)
    if current == State.RESOLVED and to == State.OPEN:
        # A reopen: a new cycle with its own resolution clock.
        feedback.reopen_count += 1
        feedback.cycle += 1
        feedback.resolved_at = None
        feedback.breached_at = None
        Cycle.objects.create(
            merchant_id=feedback.merchant_id, feedback=feedback, number=feedback.cycle,
            started_at=at,
        )  # fmt: skip
        sla_due_set(feedback=feedback, at=at, first_response=False)
    if current == State.SPAM and to == State.OPEN:
        feedback.resolved_at = None
    if to == State.RESOLVED:
        feedback.resolved_at = at
        Cycle.objects.filter(feedback=feedback, number=feedback.cycle).update(
            resolved_at=at, resolved_by=member or feedback.assignee
        )
        timeline_add(feedback=feedback, kind=Activity.Kind.FEEDBACK_RESOLVED, at=at)
        agent = member or feedback.assignee
        mail_deliver(csat_send, tasks.csat_send_task, feedback_id=feedback.pk,
                     cycle=feedback.cycle, agent_id=agent.pk if agent else None,
                     at=at.isoformat())  # fmt: skip
    if to == State.CLOSED:
        feedback.closed_at = at
    feedback.state = to
    event_add(feedback=feedback, at=at, author=member.user if member else None,
              event="moved_by_customer" if by == By.CUSTOMER else "moved",
              values={"agent": agent_value(member), "from": current, "to": to})  # fmt: skip


def feedback_assign(
    *, feedback: Feedback, assignee: StaffMember | None, member: StaffMember, at=None
) -> Feedback:
    at = at or now()
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        member_check(feedback=feedback, member=member)
        member_check(feedback=feedback, member=assignee)
        if feedback.assignee_id == (assignee.pk if assignee else None):
            return feedback
        feedback.assignee = assignee
        feedback.updated_at = at
        feedback.save()
        if assignee is not None:
            event_add(feedback=feedback, at=at, author=member.user, event="assigned",
                      values={"agent": agent_value(member),
                              "assignee": agent_value(assignee)})  # fmt: skip
        else:
            event_add(feedback=feedback, at=at, author=member.user, event="unassigned",
                      values={"agent": agent_value(member)})  # fmt: skip
        return feedback


def feedback_update(
    *,
    feedback: Feedback,
    member: StaffMember,
    category: str | None = None,
    department=None,
    priority: str | None = None,
    at=None,
) -> Feedback:
    """Triage: category, department and priority; a new priority moves the SLA clock."""
    at = at or now()
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        member_check(feedback=feedback, member=member)
        changes = []
        if category is not None and category != feedback.category:
            feedback.category = category.strip()[:60]
            changes.append(("category", feedback.category))
        if department is not None and department != feedback.department:
            if department and department.merchant_id != feedback.merchant_id:
                raise ValidationError({"department": _("No such department.")})
            feedback.department = department or None
            changes.append(("department", str(department) if department else ""))
        if priority is not None and priority != feedback.priority:
            if priority not in Priority.values:
                raise ValidationError({"priority": _("No such priority.")})
            old = feedback.priority
            feedback.priority = priority
            sla_priority_changed(feedback=feedback, old_priority=old, at=at)
            changes.append(("priority", priority))
        if changes:
            feedback.updated_at = at
            feedback.save()
            event_add(feedback=feedback, at=at, author=member.user, event="triaged",
                      values={"agent": agent_value(member), "changes": changes})  # fmt: skip
        return feedback


def feedback_tag(*, feedback: Feedback, member: StaffMember, tags: Iterable[str], at=None):
    """Adds tags (kept lower-case, each once)."""
    at = at or now()
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        member_check(feedback=feedback, member=member)
        added = [
            t for t in dict.fromkeys(tag_clean(t) for t in tags) if t and t not in feedback.tags
        ]
        if added:
            feedback.tags = [*feedback.tags, *added]
            feedback.save(update_fields=["tags"])
        return feedback


def tag_clean(tag: str) -> str:
    return " ".join(tag.split()).lower()[:40]


def feedback_merge(*, source: Feedback, target: Feedback, member: StaffMember, at=None) -> Feedback:
    """Merges a duplicate into another ticket: its messages move over, and both keep a line
    saying so. The duplicate ends merged and passes later customer messages on."""
    at = at or now()
    if source.pk == target.pk:
        raise ValidationError({"target": _("A ticket can't be merged into itself.")})
    if source.merchant_id != target.merchant_id:
        raise ValidationError({"target": _("No such ticket.")})
    with transaction.atomic():
        # Both rows locked in primary-key order, so two opposite merges can't deadlock.
        first, second = sorted((source, target), key=lambda t: t.pk)
        locked = {t.pk: ticket_locked(t) for t in (first, second)}
        source, target = locked[source.pk], locked[target.pk]
        member_check(feedback=source, member=member)
        if target.state in (State.MERGED, State.SPAM, State.CLOSED):
            raise ValidationError({"target": _(
                "Ticket #%(number)d is %(state)s: merge into an open one."
            ) % {"number": target.pk, "state": State(target.state).label.lower()}})  # fmt: skip
        moved = Message.objects.filter(feedback=source).update(feedback=target)
        state_move(feedback=source, to=State.MERGED, by=By.STAFF, member=member, at=at)
        source.merged_into = target
        source.updated_at = at
        source.save()
        event_add(feedback=source, at=at, author=member.user, event="merged_away",
                  values={"agent": agent_value(member), "target": target.pk,
                          "count": moved})  # fmt: skip
        event_add(feedback=target, at=at, author=member.user, event="merged_in",
                  values={"agent": agent_value(member), "source": source.pk,
                          "subject": source.subject})  # fmt: skip
        if target.first_response_at is None and source.first_response_at is not None:
            target.first_response_at = source.first_response_at
        target.updated_at = at
        target.save()
        return target


@dataclass
class BulkResult:
    done: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


BULK_LIMIT = 100
gettext_lazy("assign")  # the bulk action names are shown from the template


def feedback_bulk(
    *,
    merchant: Merchant,
    ids: Sequence[int],
    action: str,
    member: StaffMember,
    assignee: StaffMember | None = None,
    state: str = "",
    tags: Sequence[str] = (),
) -> BulkResult:
    """Assign, move or tag many tickets at once. Each ticket goes through the same service
    as one at a time; a ticket the move doesn't apply to is listed with the reason, and the
    others still change."""
    if action not in ("assign", "state", "tag"):
        raise ValidationError({"action": _("Choose assign, state or tag.")})
    if len(ids) > BULK_LIMIT:
        raise ValidationError(
            {"ids": _("Choose at most %(count)d tickets.") % {"count": BULK_LIMIT}}
        )
    if action == "tag" and not [t for t in tags if tag_clean(t)]:
        raise ValidationError({"tags": _("Write a tag.")})
    result = BulkResult()
    tickets = Feedback.objects.filter(merchant=merchant, pk__in=list(ids)).order_by("pk")
    for ticket in tickets:
        try:
            if action == "assign":
                feedback_assign(feedback=ticket, assignee=assignee, member=member)
            elif action == "state":
                feedback_transition(feedback=ticket, to=state, member=member)
            else:
                feedback_tag(feedback=ticket, member=member, tags=tags)
        except ValidationError as error:
            result.refused.append((ticket.pk, " ".join(error.messages)))
        else:
            result.done += 1
    return result


# --- Reviews ----------------------------------------------------------------------------------


def review_moderate(*, feedback: Feedback, approve: bool, member: StaffMember, at=None) -> Feedback:
    """Approves or rejects a review. An approved review earns the loyalty program's review
    points once, whatever happens later; a rejected one earns nothing."""
    at = at or now()
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        member_check(feedback=feedback, member=member)
        if feedback.kind != Kind.REVIEW:
            raise ValidationError({"review": _("Only reviews are approved or rejected.")})
        feedback.review_state = ReviewState.APPROVED if approve else ReviewState.REJECTED
        feedback.updated_at = at
        feedback.save()
        event_add(feedback=feedback, at=at, author=member.user,
                  event="review_approved" if approve else "review_rejected",
                  values={"agent": agent_value(member)})  # fmt: skip
        if approve and feedback.customer_id is not None:
            first = Feedback.objects.filter(pk=feedback.pk, points_awarded_at__isnull=True).update(
                points_awarded_at=at
            )
            if first:
                customer_event_record(
                    customer=feedback.customer, key="review", source="feedback", occurred_at=at,
                    data={"feedback": feedback.pk, "sku": feedback.product_sku},
                )  # fmt: skip
        return feedback
