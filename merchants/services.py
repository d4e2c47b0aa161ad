"""Everything that writes merchants, staff, the audit log and job claims."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from merchants.models import (
    AuditEvent,
    JobRun,
    Merchant,
    StaffMember,
    User,
    normalise_email,
    portal_secret_make,
)
from merchants.roles import Role

Row = TypeVar("Row", bound=Model)

logger = logging.getLogger(__name__)

MERCHANT_SETTINGS_FIELDS = (
    "name",
    "base_currency",
    "timezone",
    "default_language",
    "calendar",
    "brand_color",
    "reply_to_email",
    "storefront_url",
)


# --- Audit ----------------------------------------------------------------------------
def audit_record(
    *,
    action: str,
    merchant: Merchant | None,
    actor: User | None = None,
    actor_label: str = "",
    target: Model | None = None,
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        merchant=merchant,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label or (actor.email if actor is not None and actor.pk else ""),
        action=action,
        object_type=target._meta.label if target is not None else "",
        object_id=str(target.pk) if target is not None else "",
        object_repr=(object_repr or (str(target) if target is not None else ""))[:200],
        before=before or {},
        after=after or {},
        ip_address=ip_address,
    )


def _plain(value: Any) -> Any:
    """A field's value as the audit log keeps it: rows by id, sets sorted, the rest text."""
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, list | tuple | set) or hasattr(value, "all"):
        items = value.all() if hasattr(value, "all") else value
        return sorted(_plain(v) for v in items)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _own(merchant: Merchant, value: Any, field: str) -> None:
    """A row picked on a form must be the merchant's: a forged id names nothing."""
    items = value if isinstance(value, list | tuple | set) or hasattr(value, "all") else [value]
    for item in items.all() if hasattr(items, "all") else items:
        if isinstance(item, Model) and getattr(item, "merchant_id", merchant.pk) != merchant.pk:
            raise ValidationError({field: _("Choose one of your own.")})


@transaction.atomic
def audited_save(
    *,
    merchant: Merchant,
    instance: Row,
    data: dict[str, Any],
    actor,
    action: str,
    ip_address: str | None = None,
) -> Row:
    """Staff configuration written from a form: the fields in `data` (many-to-many ones after
    the row), each row it names checked to be the merchant's, and the change audited with
    what it was and what it became."""
    if instance.pk is not None and getattr(instance, "merchant_id", None) != merchant.pk:
        raise ValidationError(_("No such item."))
    for name, value in data.items():
        _own(merchant, value, name)
    instance.merchant = merchant  # type: ignore[attr-defined]
    many = {f.name for f in instance._meta.many_to_many}
    before = (
        {name: _plain(getattr(instance, name)) for name in data} if instance.pk is not None else {}
    )
    for name, value in data.items():
        if name not in many:
            setattr(instance, name, value)
    instance.full_clean(exclude=["merchant", *many])
    instance.save()
    for name in many & set(data):
        getattr(instance, name).set(data[name])
    after = {name: _plain(getattr(instance, name)) for name in data}
    changed = {k: v for k, v in after.items() if before.get(k, object()) != v}
    if changed:
        audit_record(
            action=action,
            merchant=merchant,
            actor=actor,
            target=instance,
            before={k: before[k] for k in changed if k in before},
            after=changed,
            ip_address=ip_address,
        )
    return instance


def sign_in_failure_record(*, email: str, ip_address: str | None, locked: bool = False) -> None:
    """One event per merchant the email is staff of (so its owners see it), or one
    without a merchant when nobody has that email."""
    action = AuditEvent.Action.SIGN_IN_LOCKED if locked else AuditEvent.Action.SIGN_IN_FAILED
    email = normalise_email(email)[:254]
    user = User.objects.filter(email=email).first()
    merchants = (
        [m.merchant for m in StaffMember.objects.filter(user=user).select_related("merchant")]
        if user
        else []
    )
    for merchant in merchants or [None]:
        audit_record(
            action=action,
            merchant=merchant,
            actor_label=email,
            object_repr=email,
            ip_address=ip_address,
        )


# --- Merchants ------------------------------------------------------------------------
@transaction.atomic
def merchant_create(
    *,
    name: str,
    slug: str,
    owner_email: str,
    base_currency: str = "USD",
    timezone_name: str = "UTC",
    default_language: str = "en",
) -> Merchant:
    merchant = Merchant(
        name=name,
        slug=slug,
        base_currency=base_currency,
        timezone=timezone_name,
        default_language=default_language,
    )
    merchant.full_clean()
    merchant.save()
    owner, _created = User.objects.get_or_create(email=normalise_email(owner_email))
    if _created:
        owner.set_unusable_password()
        owner.save(update_fields=["password"])
    StaffMember.objects.create(merchant=merchant, user=owner, role=Role.OWNER)
    return merchant


@transaction.atomic
def merchant_update(
    *, merchant: Merchant, actor: User, data: dict[str, Any], ip_address: str | None = None
) -> Merchant:
    locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
    before = {field: getattr(locked, field) for field in MERCHANT_SETTINGS_FIELDS}
    for field in MERCHANT_SETTINGS_FIELDS:
        if field in data:
            setattr(locked, field, data[field])
    locked.full_clean(exclude=["slug"])
    after = {field: getattr(locked, field) for field in MERCHANT_SETTINGS_FIELDS}
    changed = {field for field in MERCHANT_SETTINGS_FIELDS if before[field] != after[field]}
    if changed:
        locked.save(update_fields=sorted(changed))
        audit_record(
            action=AuditEvent.Action.SETTINGS_CHANGED,
            merchant=locked,
            actor=actor,
            target=locked,
            before={field: before[field] for field in sorted(changed)},
            after={field: after[field] for field in sorted(changed)},
            ip_address=ip_address,
        )
    return locked


@transaction.atomic
def portal_secret_rotate(
    *, merchant: Merchant, actor: User, ip_address: str | None = None
) -> Merchant:
    """A new secret for the storefront's rewards-page links; links signed with the old one
    stop working at once."""
    locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
    locked.portal_secret = portal_secret_make()
    locked.save(update_fields=["portal_secret"])
    audit_record(
        action=AuditEvent.Action.SETTINGS_CHANGED,
        merchant=locked,
        actor=actor,
        target=locked,
        after={"portal_secret": "rotated"},
        ip_address=ip_address,
    )
    return locked


# --- Staff ----------------------------------------------------------------------------
@dataclass(frozen=True)
class InviteResult:
    member: StaffMember
    new_account: bool


def staff_invite(
    *,
    merchant: Merchant,
    actor: User,
    email: str,
    role: str,
    ip_address: str | None = None,
) -> InviteResult:
    """Adds a person to the merchant's team and emails them: a link to choose a password
    for a new account, or a note that they can switch to this merchant for an existing one."""
    email = normalise_email(email)
    if role not in Role.values:
        raise ValidationError({"role": _("Choose one of the roles.")})
    try:
        with transaction.atomic():
            user, new_account = User.objects.get_or_create(email=email)
            if new_account:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            member = StaffMember.objects.create(
                merchant=merchant, user=user, role=role, invited_by=actor
            )
            audit_record(
                action=AuditEvent.Action.STAFF_INVITED,
                merchant=merchant,
                actor=actor,
                target=member,
                object_repr=email,
                after={"email": email, "role": role},
                ip_address=ip_address,
            )
            needs_password = new_account or not user.has_usable_password()
            transaction.on_commit(
                lambda: _invitation_send(member=member, needs_password=needs_password)
            )
    except IntegrityError as error:
        raise ValidationError(
            {"email": _("%(email)s is already on this team.") % {"email": email}}
        ) from error
    return InviteResult(member=member, new_account=new_account)


def _invitation_send(*, member: StaffMember, needs_password: bool) -> None:
    user, merchant = member.user, member.merchant
    base_url = settings.SITE_URL.rstrip("/")
    if needs_password:
        link = base_url + reverse(
            "password_reset_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
    else:
        link = base_url + reverse("login")
    language = user.language or merchant.default_language
    with translation.override(language):
        context = {
            "merchant": merchant,
            "member": member,
            "link": link,
            "needs_password": needs_password,
        }
        subject = _("You have been invited to %(merchant)s on Regulars") % {
            "merchant": merchant.name
        }
        body = render_to_string("merchants/email/staff_invitation.txt", context)
    send_mail(
        subject,
        body,
        None,
        [user.email],
        fail_silently=False,
    )


def _owners_left_after(*, member: StaffMember, new_role: str | None) -> int:
    others = (
        StaffMember.objects.select_for_update()
        .filter(merchant_id=member.merchant_id, role=Role.OWNER)
        .exclude(pk=member.pk)
        .count()
    )
    return others + (1 if new_role == Role.OWNER else 0)


@transaction.atomic
def staff_role_change(
    *, member: StaffMember, actor: User, role: str, ip_address: str | None = None
) -> StaffMember:
    if role not in Role.values:
        raise ValidationError({"role": _("Choose one of the roles.")})
    locked = StaffMember.objects.select_for_update().select_related("user").get(pk=member.pk)
    if locked.role == role:
        return locked
    if locked.role == Role.OWNER and _owners_left_after(member=locked, new_role=role) == 0:
        raise ValidationError({"role": _("A merchant needs at least one owner.")})
    before = locked.role
    locked.role = role
    locked.save(update_fields=["role"])
    audit_record(
        action=AuditEvent.Action.STAFF_ROLE_CHANGED,
        merchant=locked.merchant,
        actor=actor,
        target=locked,
        object_repr=locked.user.email,
        before={"role": before},
        after={"role": role},
        ip_address=ip_address,
    )
    return locked


@transaction.atomic
def staff_remove(*, member: StaffMember, actor: User, ip_address: str | None = None) -> None:
    locked = StaffMember.objects.select_for_update().select_related("user").get(pk=member.pk)
    if locked.role == Role.OWNER and _owners_left_after(member=locked, new_role=None) == 0:
        raise ValidationError(_("A merchant needs at least one owner."))
    audit_record(
        action=AuditEvent.Action.STAFF_REMOVED,
        merchant=locked.merchant,
        actor=actor,
        target=locked,
        object_repr=locked.user.email,
        before={"email": locked.user.email, "role": locked.role},
        ip_address=ip_address,
    )
    locked.delete()


def user_language_set(*, user: User, language: str) -> None:
    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": _("Choose one of the languages.")})
    User.objects.filter(pk=user.pk).update(language=language)
    user.language = language


# --- Scheduled jobs -------------------------------------------------------------------
def job_run_claim(*, job: str, period_key: str, merchant: Merchant | None = None) -> JobRun | None:
    """Claims (job, merchant, period); returns None when that run was already claimed.

    A claim still running after REDIS_VISIBILITY_TIMEOUT (longer than any task may run
    before it is killed) belongs to a worker that died: it is taken over, so the next
    scheduled try does the run instead of finding it claimed for good. The jobs key their
    work, so what the dead run did is not done twice."""
    from django.conf import settings

    try:
        with transaction.atomic():
            return JobRun.objects.create(job=job, merchant=merchant, period_key=period_key)
    except IntegrityError:
        pass
    at = timezone.now()
    dead = timedelta(seconds=settings.REDIS_VISIBILITY_TIMEOUT)
    claimed = JobRun.objects.filter(
        job=job, merchant=merchant, period_key=period_key, state=JobRun.State.RUNNING,
        started_at__lt=at - dead,
    )  # fmt: skip
    # One statement: of two takers, one moves started_at and the other finds it fresh.
    if claimed.update(started_at=at):
        return JobRun.objects.get(job=job, merchant=merchant, period_key=period_key)
    return None


def job_run_finish(*, run: JobRun, detail: dict[str, Any] | None = None) -> None:
    JobRun.objects.filter(pk=run.pk).update(
        state=JobRun.State.DONE, finished_at=timezone.now(), detail=detail or {}
    )


HEARTBEAT_JOB = "scheduler.heartbeat"


def heartbeat_record() -> bool:
    """Records that the worker and beat ran a scheduled task this minute (shown on the
    dashboard). Returns False when this minute was already recorded."""
    now = timezone.now()
    run = job_run_claim(job=HEARTBEAT_JOB, period_key=now.strftime("%Y-%m-%dT%H:%M"))
    if run is None:
        return False
    job_run_finish(run=run)
    return True


def health_parts() -> dict[str, str]:
    """ "ok" or "unavailable" for the database, the cache and the Celery broker, each
    asked once with a short timeout."""
    import uuid

    from django.core.cache import cache
    from django.db import connection

    from config.celery import app

    parts = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        parts["database"] = "ok"
    except Exception:  # any failure is the answer
        parts["database"] = "unavailable"
    probe = f"healthz:{uuid.uuid4().hex}"
    # The cache answers a miss when it is away: a value written must come back.
    cache.set(probe, 1, 10)
    parts["cache"] = "ok" if cache.get(probe) == 1 else "unavailable"
    cache.delete(probe)
    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        parts["broker"] = "ok"
    except Exception:  # any failure is the answer
        parts["broker"] = "unavailable"
    return parts
