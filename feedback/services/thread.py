"""What every ticket service shares: files as received and their checks, the ticket
row under a lock, the thread's event lines, and the customer's timeline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from customers.models import Activity
from feedback.models import (
    Attachment,
    Feedback,
    Message,
)
from merchants.models import StaffMember

logger = logging.getLogger(__name__)

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


def attachments_store(*, message: Message, uploads: Sequence[Upload]) -> None:
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


def event_add(
    *, feedback: Feedback, event: str, values: dict, at: datetime, author=None
) -> Message:
    """A line on the ticket's thread: its kind and values (feedback.events words them
    for each reader)."""
    from feedback.events import SENTENCES

    if event not in SENTENCES:
        raise ValueError(f"Unknown ticket event {event!r}.")
    return Message.objects.create(
        merchant_id=feedback.merchant_id,
        feedback=feedback,
        kind=Message.Kind.EVENT,
        event=event,
        values=values,
        author=author,
        is_automatic=True,
        created_at=at,
    )


def agent_value(member: StaffMember | None) -> str:
    """An agent as an event stores them: their name, or "" for the product itself."""
    return (member.user.full_name or member.user.email) if member is not None else ""


def ticket_locked(feedback: Feedback) -> Feedback:
    """The ticket re-read under a row lock: what another agent just did is seen here."""
    return (
        Feedback.objects.select_for_update(of=("self",))
        .select_related("merchant", "customer")
        .get(pk=feedback.pk, merchant_id=feedback.merchant_id)
    )


def timeline_add(*, feedback: Feedback, kind: str, at: datetime, **data) -> None:
    if feedback.customer_id is not None:
        Activity.objects.create(
            merchant_id=feedback.merchant_id,
            customer_id=feedback.customer_id,
            kind=kind,
            occurred_at=at,
            data={"feedback": feedback.pk, "subject": feedback.subject, **data},
        )


def member_check(*, feedback: Feedback, member: StaffMember | None) -> None:
    if member is not None and member.merchant_id != feedback.merchant_id:
        raise ValidationError({"assignee": _("No such staff member.")})


def mail_deliver(send: Callable[..., object], task, **arguments) -> None:
    """Once the transaction commits, sends at once, so the customer isn't kept waiting for
    a worker; if the mail server doesn't answer, the task tries again with backoff. The
    arguments are ids and text, fit for a task."""

    def deliver() -> None:
        try:
            send(**arguments)
        except OSError:  # smtplib's errors and refused connections alike
            logger.warning("Mail by %s failed; a task will retry it", send.__name__)
            task.delay(**arguments)

    transaction.on_commit(deliver, robust=True)
