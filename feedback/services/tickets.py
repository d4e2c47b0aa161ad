"""Tickets: intake from every channel, the moves of the state table, replies and notes,
assignment, merge and bulk actions (DESIGN 5.10).

Every write locks the ticket row first, so two agents (or an agent and the customer's
email) acting on the same ticket apply one after the other, each seeing the other's result.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import make_msgid
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.mail import address_email_send, customer_email_send
from customers.models import Activity, Customer
from customers.selectors import customer_get_by_email
from customers.services.profiles import customer_event_record
from feedback.models import (
    Attachment,
    Channel,
    CsatSurvey,
    Cycle,
    Feedback,
    Kind,
    Message,
    Priority,
    ReviewState,
    State,
)
from feedback.services.routing import feedback_route
from feedback.services.sla import sla_due_set, sla_pause, sla_priority_changed, sla_resume
from feedback.states import By, transition_allowed
from merchants.models import Merchant, StaffMember, normalise_email

ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENT_MAX_COUNT = 5
# The types a customer may attach, each with the bytes its files start with: a name or a
# declared type alone doesn't make a file an image.
ATTACHMENT_TYPES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
    "text/plain": (),
}
CSAT_DAYS = 14
SUBJECT_LENGTH = 200


@dataclass(frozen=True)
class Upload:
    """A file as a door received it."""

    name: str
    content_type: str
    content: bytes


def uploads_check(uploads: Sequence[Upload]) -> None:
    """Refuses the whole message when one file is too big, of a type we don't take, or not
    what it says it is; the error names the file."""
    if len(uploads) > ATTACHMENT_MAX_COUNT:
        raise ValidationError(
            {"attachments": _("Attach at most %(count)d files.") % {"count": ATTACHMENT_MAX_COUNT}}
        )
    for upload in uploads:
        if len(upload.content) > ATTACHMENT_MAX_BYTES:
            raise ValidationError({"attachments": _(
                "%(name)s is larger than %(size)d MB."
            ) % {"name": upload.name, "size": ATTACHMENT_MAX_BYTES // (1024 * 1024)}})  # fmt: skip
        kind = upload.content_type.split(";")[0].strip().lower()
        if kind not in ATTACHMENT_TYPES:
            raise ValidationError({"attachments": _(
                "%(name)s: only images (PNG, JPEG, GIF, WebP), PDF and plain text can be attached."
            ) % {"name": upload.name}})  # fmt: skip
        starts = ATTACHMENT_TYPES[kind]
        if kind == "text/plain":
            try:
                upload.content.decode("utf-8")
            except UnicodeDecodeError:
                starts = (b"\x00invalid",)
        if starts and not upload.content.startswith(starts):
            raise ValidationError({"attachments": _(
                "%(name)s is not the kind of file its type says."
            ) % {"name": upload.name}})  # fmt: skip


def _attachments_store(*, message: Message, uploads: Sequence[Upload]) -> None:
    for upload in uploads:
        attachment = Attachment(
            merchant_id=message.merchant_id,
            message=message,
            name=upload.name[:200],
            content_type=upload.content_type.split(";")[0].strip().lower(),
            size=len(upload.content),
        )
        attachment.file.save(upload.name[-100:] or "file", ContentFile(upload.content), save=False)
        attachment.save()


def _event(*, feedback: Feedback, text: str, at: datetime, author=None) -> Message:
    return Message.objects.create(
        merchant_id=feedback.merchant_id,
        feedback=feedback,
        kind=Message.Kind.EVENT,
        body=text,
        author=author,
        is_automatic=True,
        created_at=at,
    )


def _locked(feedback: Feedback) -> Feedback:
    """The ticket re-read under a row lock: what another agent just did is seen here."""
    return (
        Feedback.objects.select_for_update(of=("self",))
        .select_related("merchant", "customer")
        .get(pk=feedback.pk, merchant_id=feedback.merchant_id)
    )


def _timeline(*, feedback: Feedback, kind: str, at: datetime, **data) -> None:
    if feedback.customer_id is not None:
        Activity.objects.create(
            merchant_id=feedback.merchant_id,
            customer_id=feedback.customer_id,
            kind=kind,
            occurred_at=at,
            data={"feedback": feedback.pk, "subject": feedback.subject, **data},
        )


# --- Intake ----------------------------------------------------------------------------


def feedback_submit(
    *,
    merchant: Merchant,
    channel: str,
    kind: str,
    subject: str = "",
    body: str = "",
    customer: Customer | None = None,
    sender_email: str = "",
    sender_name: str = "",
    rating: int | None = None,
    product_sku: str = "",
    product_name: str = "",
    external_id: str = "",
    language: str = "",
    uploads: Sequence[Upload] = (),
    email_message_id: str = "",
    logged_by: StaffMember | None = None,
    follows: Feedback | None = None,
    at: datetime | None = None,
) -> Feedback:
    """A new ticket from any door: routed, its SLA clock started, the customer's words as
    its first message. The same review (`external_id`) or email (`email_message_id`) sent
    again returns the ticket it made the first time and writes nothing."""
    at = at or now()
    subject = " ".join(subject.split())[:SUBJECT_LENGTH]
    body = body.strip()
    sender_email = normalise_email(sender_email) if sender_email else ""
    errors: dict[str, str] = {}
    if channel not in Channel.values:
        errors["channel"] = _("Choose one of: %(choices)s.") % {
            "choices": ", ".join(Channel.values)
        }
    if kind not in Kind.values:
        errors["kind"] = _("Choose one of: %(choices)s.") % {"choices": ", ".join(Kind.values)}
    if rating is not None and not 1 <= rating <= 5:
        errors["rating"] = _("A rating is a whole number from 1 to 5.")
    if kind == Kind.REVIEW and rating is None:
        errors["rating"] = _("A review needs a rating from 1 to 5.")
    if not body and rating is None:
        errors["body"] = _("Write a message.")
    if customer is None and not sender_email and not sender_name:
        errors["customer"] = _("Say who wrote in: a customer, an email address or a name.")
    if customer is not None and customer.merchant_id != merchant.pk:
        errors["customer"] = _("No such customer.")
    if errors:
        raise ValidationError(errors)
    uploads_check(uploads)
    if not subject:
        subject = (" ".join(body.split())[:60] or str(Kind(kind).label))[:SUBJECT_LENGTH]
    if external_id:
        existing = Feedback.objects.filter(
            merchant=merchant, channel=channel, external_id=external_id
        ).first()
        if existing is not None:
            return existing
    if email_message_id:
        existing_message = Message.objects.filter(
            merchant=merchant, email_message_id=email_message_id
        ).first()
        if existing_message is not None:
            return existing_message.feedback
    if customer is None and sender_email:
        customer = customer_get_by_email(merchant=merchant, email=sender_email)
    try:
        with transaction.atomic():
            return _ticket_create(
                merchant=merchant, channel=channel, kind=kind, subject=subject, body=body,
                customer=customer, sender_email=sender_email, sender_name=sender_name[:120],
                rating=rating, product_sku=product_sku[:100], product_name=product_name[:200],
                external_id=external_id[:100], language=language[:8], uploads=uploads,
                email_message_id=email_message_id, logged_by=logged_by, follows=follows, at=at,
            )  # fmt: skip
    except IntegrityError:
        # The same review or email arrived twice at the same moment: the first one stands.
        if external_id:
            existing = Feedback.objects.filter(
                merchant=merchant, channel=channel, external_id=external_id
            ).first()
            if existing is not None:
                return existing
        if email_message_id:
            first = Message.objects.filter(
                merchant=merchant, email_message_id=email_message_id
            ).first()
            if first is not None:
                return first.feedback
        raise


def _ticket_create(*, merchant, channel, kind, subject, body, customer, sender_email,
                   sender_name, rating, product_sku, product_name, external_id, language,
                   uploads, email_message_id, logged_by, follows, at) -> Feedback:  # fmt: skip
    feedback = Feedback(
        merchant=merchant,
        customer=customer,
        sender_email=sender_email or (customer.email if customer else ""),
        sender_name=sender_name,
        channel=channel,
        kind=kind,
        rating=rating,
        subject=subject,
        body=body,
        language=language or (customer.language if customer else "") or "",
        product_sku=product_sku,
        product_name=product_name,
        review_state=ReviewState.PENDING if kind == Kind.REVIEW else "",
        external_id=external_id,
        follows=follows,
        created_at=at,
        updated_at=at,
    )
    feedback_route(feedback=feedback)
    sla_due_set(feedback=feedback, at=at, first_response=True)
    feedback.save()
    Cycle.objects.create(merchant=merchant, feedback=feedback, number=1, started_at=at)
    message = Message.objects.create(
        merchant=merchant,
        feedback=feedback,
        kind=Message.Kind.CUSTOMER,
        body=body or _("Rated %(rating)d of 5.") % {"rating": rating},
        email_message_id=email_message_id[:250],
        author=logged_by.user if logged_by else None,
        created_at=at,
    )
    _attachments_store(message=message, uploads=uploads)
    if logged_by is not None:
        _event(feedback=feedback, at=at, author=logged_by.user, text=_(
            "Logged by %(agent)s from a call or a visit."
        ) % {"agent": logged_by.user.full_name or logged_by.user.email})  # fmt: skip
    if follows is not None:
        _event(feedback=feedback, at=at, text=_(
            "The customer wrote again about closed ticket #%(number)d."
        ) % {"number": follows.pk})  # fmt: skip
        _event(feedback=follows, at=at, text=_(
            "The customer wrote again: the conversation goes on in ticket #%(number)d."
        ) % {"number": feedback.pk})  # fmt: skip
    _timeline(feedback=feedback, kind=Activity.Kind.FEEDBACK_RECEIVED, at=at,
              channel=channel, kind_of=kind)  # fmt: skip
    return feedback


def customer_reply(
    *,
    feedback: Feedback,
    body: str,
    uploads: Sequence[Upload] = (),
    email_message_id: str = "",
    channel: str | None = None,
    at: datetime | None = None,
) -> Feedback:
    """The customer writes again on a ticket. Pending goes back to open; resolved reopens
    (a new cycle); closed starts a new ticket that follows the old one; a merged ticket
    passes the message to the one it was merged into. Returns the ticket written on."""
    at = at or now()
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    uploads_check(uploads)
    with transaction.atomic():
        feedback = _locked(feedback)
        for _hop in range(10):
            if feedback.state != State.MERGED or feedback.merged_into_id is None:
                break
            feedback = _locked(
                Feedback(pk=feedback.merged_into_id, merchant_id=feedback.merchant_id)
            )
        if feedback.state == State.CLOSED:
            return feedback_submit(
                merchant=feedback.merchant, channel=channel or feedback.channel,
                kind=feedback.kind if feedback.kind != Kind.REVIEW else Kind.QUESTION,
                subject=_("Re: %(subject)s") % {"subject": feedback.subject}, body=body,
                customer=feedback.customer, sender_email=feedback.sender_email,
                sender_name=feedback.sender_name, language=feedback.language, uploads=uploads,
                email_message_id=email_message_id, follows=feedback, at=at,
            )  # fmt: skip
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    merchant_id=feedback.merchant_id,
                    feedback=feedback,
                    kind=Message.Kind.CUSTOMER,
                    body=body,
                    email_message_id=email_message_id[:250],
                    created_at=at,
                )
        except IntegrityError:
            # This email was already received (a webhook replayed): nothing changes.
            return Message.objects.get(
                merchant_id=feedback.merchant_id, email_message_id=email_message_id
            ).feedback
        _attachments_store(message=message, uploads=uploads)
        if feedback.state == State.PENDING or feedback.state == State.RESOLVED:
            _move(feedback=feedback, to=State.OPEN, by=By.CUSTOMER, member=None, at=at)
        feedback.updated_at = at
        feedback.save()
        return feedback


# --- Staff: replies, notes, moves ----------------------------------------------------------


def _agent_name(member: StaffMember | None) -> str:
    if member is None:
        return _("the system")
    return member.user.full_name or member.user.email


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
        feedback = _locked(feedback)
        _member_check(feedback=feedback, member=member)
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
        _attachments_store(message=message, uploads=uploads)
        # Queued before a resolve below queues its survey: the answer arrives first.
        transaction.on_commit(lambda: reply_email_send(message_id=message.pk))
        if feedback.first_response_at is None:
            feedback.first_response_at = at
        if feedback.assignee_id is None:
            feedback.assignee = member
        if feedback.state == State.NEW:
            _move(feedback=feedback, to=State.OPEN, by=By.STAFF, member=member, at=at)
        if then and then != feedback.state:
            _move(feedback=feedback, to=then, by=By.STAFF, member=member, at=at)
        feedback.updated_at = at
        feedback.save()
        _timeline(feedback=feedback, kind=Activity.Kind.FEEDBACK_REPLIED, at=at)
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


def note_add(*, feedback: Feedback, member: StaffMember, body: str, at=None) -> Message:
    """An internal note: for colleagues only, never sent or shown to the customer."""
    at = at or now()
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a note.")})
    with transaction.atomic():
        feedback = _locked(feedback)
        _member_check(feedback=feedback, member=member)
        return Message.objects.create(
            merchant_id=feedback.merchant_id, feedback=feedback, kind=Message.Kind.NOTE,
            body=body, author=member.user, created_at=at,
        )  # fmt: skip


def _member_check(*, feedback: Feedback, member: StaffMember | None) -> None:
    if member is not None and member.merchant_id != feedback.merchant_id:
        raise ValidationError({"assignee": _("No such staff member.")})


def feedback_transition(
    *, feedback: Feedback, to: str, member: StaffMember | None, by: By = By.STAFF, at=None
) -> Feedback:
    """Moves the ticket to `to` if the state table allows it for `by`; otherwise a
    ValidationError naming both states."""
    at = at or now()
    with transaction.atomic():
        feedback = _locked(feedback)
        _member_check(feedback=feedback, member=member)
        _move(feedback=feedback, to=to, by=by, member=member, at=at)
        feedback.updated_at = at
        feedback.save()
        return feedback


def _move(*, feedback: Feedback, to: str, by: By, member: StaffMember | None, at) -> None:
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
        _timeline(feedback=feedback, kind=Activity.Kind.FEEDBACK_RESOLVED, at=at)
        agent = member or feedback.assignee
        cycle = feedback.cycle
        ticket_id = feedback.pk
        transaction.on_commit(
            lambda: csat_send(feedback_id=ticket_id, cycle=cycle, agent=agent, at=at)
        )
    if to == State.CLOSED:
        feedback.closed_at = at
    feedback.state = to
    if by == By.CUSTOMER:
        text = _("The customer wrote again: %(from)s → %(to)s.")
    else:
        text = _("%(agent)s: %(from)s → %(to)s.")
    _event(feedback=feedback, at=at, author=member.user if member else None, text=text % {
        "agent": _agent_name(member),
        "from": State(current).label,
        "to": State(to).label,
    })  # fmt: skip


def feedback_assign(
    *, feedback: Feedback, assignee: StaffMember | None, member: StaffMember, at=None
) -> Feedback:
    at = at or now()
    with transaction.atomic():
        feedback = _locked(feedback)
        _member_check(feedback=feedback, member=member)
        _member_check(feedback=feedback, member=assignee)
        if feedback.assignee_id == (assignee.pk if assignee else None):
            return feedback
        feedback.assignee = assignee
        feedback.updated_at = at
        feedback.save()
        _event(feedback=feedback, at=at, author=member.user, text=(
            _("%(agent)s assigned the ticket to %(assignee)s.") % {
                "agent": _agent_name(member), "assignee": _agent_name(assignee)}
            if assignee else _("%(agent)s unassigned the ticket.") % {
                "agent": _agent_name(member)}
        ))  # fmt: skip
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
        feedback = _locked(feedback)
        _member_check(feedback=feedback, member=member)
        changes = []
        if category is not None and category != feedback.category:
            feedback.category = category.strip()[:60]
            changes.append(_("category %(value)s") % {"value": feedback.category or "—"})
        if department is not None and department != feedback.department:
            if department and department.merchant_id != feedback.merchant_id:
                raise ValidationError({"department": _("No such department.")})
            feedback.department = department or None
            changes.append(_("department %(value)s") % {"value": department or "—"})
        if priority is not None and priority != feedback.priority:
            if priority not in Priority.values:
                raise ValidationError({"priority": _("No such priority.")})
            old = feedback.priority
            feedback.priority = priority
            sla_priority_changed(feedback=feedback, old_priority=old, at=at)
            changes.append(_("priority %(value)s") % {"value": Priority(priority).label})
        if changes:
            feedback.updated_at = at
            feedback.save()
            _event(feedback=feedback, at=at, author=member.user, text=_(
                "%(agent)s set %(changes)s."
            ) % {"agent": _agent_name(member), "changes": ", ".join(changes)})  # fmt: skip
        return feedback


def feedback_tag(*, feedback: Feedback, member: StaffMember, tags: Iterable[str], at=None):
    """Adds tags (kept lower-case, each once)."""
    at = at or now()
    with transaction.atomic():
        feedback = _locked(feedback)
        _member_check(feedback=feedback, member=member)
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
        locked = {t.pk: _locked(t) for t in (first, second)}
        source, target = locked[source.pk], locked[target.pk]
        _member_check(feedback=source, member=member)
        if target.state in (State.MERGED, State.SPAM, State.CLOSED):
            raise ValidationError({"target": _(
                "Ticket #%(number)d is %(state)s: merge into an open one."
            ) % {"number": target.pk, "state": State(target.state).label.lower()}})  # fmt: skip
        moved = Message.objects.filter(feedback=source).update(feedback=target)
        _move(feedback=source, to=State.MERGED, by=By.STAFF, member=member, at=at)
        source.merged_into = target
        source.updated_at = at
        source.save()
        _event(feedback=source, at=at, author=member.user, text=_(
            "%(agent)s merged this ticket into #%(target)d; its %(count)d messages moved there."
        ) % {"agent": _agent_name(member), "target": target.pk, "count": moved})  # fmt: skip
        _event(feedback=target, at=at, author=member.user, text=_(
            "%(agent)s merged ticket #%(source)d (%(subject)s) into this one."
        ) % {"agent": _agent_name(member), "source": source.pk,
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
        feedback = _locked(feedback)
        _member_check(feedback=feedback, member=member)
        if feedback.kind != Kind.REVIEW:
            raise ValidationError({"review": _("Only reviews are approved or rejected.")})
        feedback.review_state = ReviewState.APPROVED if approve else ReviewState.REJECTED
        feedback.updated_at = at
        feedback.save()
        _event(feedback=feedback, at=at, author=member.user, text=(
            _("%(agent)s approved the review.") if approve else _("%(agent)s rejected the review.")
        ) % {"agent": _agent_name(member)})  # fmt: skip
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


# --- CSAT ----------------------------------------------------------------------------------


def csat_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csat_send(*, feedback_id: int, cycle: int, agent: StaffMember | None, at=None) -> bool:
    """Asks whoever wrote in to rate the answer, 1 to 5, by a link that works once and for
    14 days. One survey per cycle: a second resolve of the same cycle sends nothing."""
    at = at or now()
    feedback = Feedback.objects.select_related("merchant", "customer__merchant").get(pk=feedback_id)
    if feedback.state != State.RESOLVED or feedback.cycle != cycle:
        return False
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            CsatSurvey.objects.create(
                merchant_id=feedback.merchant_id, feedback=feedback, cycle=cycle,
                token_hash=csat_token_hash(token), sent_at=at,
                expires_at=at + timedelta(days=CSAT_DAYS), agent=agent,
            )  # fmt: skip
    except IntegrityError:
        return False
    path = reverse("feedback-portal:csat", kwargs={"merchant_slug": feedback.merchant.slug,
                                                  "token": token})  # fmt: skip
    context = {"feedback": feedback, "link": settings.SITE_URL.rstrip("/") + path,
               "days": CSAT_DAYS}  # fmt: skip
    template = "feedback/mail/csat"
    if feedback.customer is not None and feedback.customer.email:
        return customer_email_send(customer=feedback.customer, template=template, context=context)
    if feedback.sender_email:
        address_email_send(
            merchant=feedback.merchant, address=feedback.sender_email,
            language=feedback.language, template=template, context=context,
        )  # fmt: skip
        return True
    return False


def csat_survey_open(*, merchant: Merchant, token: str, at=None) -> CsatSurvey:
    """The survey behind a link, if it can still be answered; else a ValidationError that
    says why (unknown, used, or expired)."""
    at = at or now()
    survey = (
        CsatSurvey.objects.select_related("feedback")
        .filter(merchant=merchant, token_hash=csat_token_hash(token))
        .first()
    )
    if survey is None:
        raise ValidationError({"token": _("This link is not valid.")})
    if survey.answered_at is not None:
        raise ValidationError({"token": _("This survey has been answered already. Thank you!")})
    if survey.expires_at <= at:
        raise ValidationError({"token": _("This link has expired.")})
    return survey


def csat_answer(
    *, merchant: Merchant, token: str, rating: int, comment: str = "", at=None
) -> CsatSurvey:
    """Records the answer once: the guarded update lets one of two racing submits through."""
    at = at or now()
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError({"rating": _("Choose a rating from 1 to 5.")})
    survey = csat_survey_open(merchant=merchant, token=token, at=at)
    taken = CsatSurvey.objects.filter(
        pk=survey.pk, answered_at__isnull=True, expires_at__gt=at
    ).update(answered_at=at, rating=rating, comment=comment.strip()[:2000])
    if not taken:
        raise ValidationError({"token": _("This survey has been answered already. Thank you!")})
    survey.refresh_from_db()
    line = _("The customer rated the answer %(rating)d of 5.") % {"rating": rating}
    if survey.comment:
        line = _("%(rated)s They wrote: %(comment)s") % {"rated": line, "comment": survey.comment}
    _event(feedback=survey.feedback, at=at, text=line)
    return survey


# --- Inbound email ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundEmail:
    sender: str
    subject: str
    text: str
    message_id: str
    sender_name: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    uploads: tuple[Upload, ...] = ()


def email_receive(*, merchant: Merchant, email: InboundEmail, at=None) -> Feedback:
    """An email from the mail provider's webhook (or a mailbox reader). A reply threads onto
    the ticket its In-Reply-To (or References) points at; anything else is a new ticket.
    The same Message-ID received again changes nothing."""
    at = at or now()
    if not email.message_id.strip():
        raise ValidationError({"message_id": _("The email has no Message-ID.")})
    if not email.sender.strip():
        raise ValidationError({"from": _("The email has no sender.")})
    message_id = email.message_id.strip()[:250]
    seen = Message.objects.filter(merchant=merchant, email_message_id=message_id).first()
    if seen is not None:
        return seen.feedback
    wanted = [
        ref.strip() for ref in (email.in_reply_to, *reversed(email.references)) if ref.strip()
    ]
    if wanted:
        earlier = (
            Message.objects.filter(merchant=merchant, email_message_id__in=wanted)
            .select_related("feedback")
            .first()
        )
        if earlier is not None:
            return customer_reply(
                feedback=earlier.feedback, body=email.text, uploads=email.uploads,
                email_message_id=message_id, channel=Channel.EMAIL, at=at,
            )  # fmt: skip
    return feedback_submit(
        merchant=merchant, channel=Channel.EMAIL, kind=Kind.QUESTION, subject=email.subject,
        body=email.text, sender_email=email.sender, sender_name=email.sender_name,
        uploads=email.uploads, email_message_id=message_id, at=at,
    )  # fmt: skip
