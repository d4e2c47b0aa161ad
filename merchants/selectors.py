"""Reads of merchants, staff, the audit log and job runs, always scoped by merchant."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from merchants.models import (
    ApiKey,
    AuditEvent,
    JobRun,
    Merchant,
    StaffMember,
    StoreConnection,
    User,
)


def membership_get(*, user: User, merchant_id: int | None) -> StaffMember | None:
    """The user's membership in the given merchant, or their first one when that is gone."""
    return membership_pick(list(memberships_for_user(user=user)), merchant_id)


def membership_pick(memberships: list[StaffMember], merchant_id: int | None):
    """Of a user's memberships (in memberships_for_user's order), the one in the given
    merchant, else the first."""
    found = next((m for m in memberships if m.merchant_id == merchant_id), None)
    return found or (memberships[0] if memberships else None)


def memberships_for_user(*, user: User) -> QuerySet[StaffMember]:
    return (
        StaffMember.objects.select_related("merchant")
        .filter(user=user)
        .order_by("merchant__name", "merchant_id")
    )


def staff_member_list(*, merchant: Merchant) -> QuerySet[StaffMember]:
    return (
        StaffMember.objects.filter(merchant=merchant)
        .select_related("user", "invited_by")
        .order_by("user__email")
    )


def staff_member_get(*, merchant: Merchant, pk: int) -> StaffMember:
    """A staff member of this merchant; a foreign id is a 404."""
    return get_object_or_404(staff_member_list(merchant=merchant), pk=pk)


def audit_event_list(*, merchant: Merchant, action: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(merchant=merchant).select_related("actor")
    if action:
        events = events.filter(action=action)
    return events.order_by("-created_at", "-id")


def job_last_finished(*, job: str) -> JobRun | None:
    return JobRun.objects.filter(job=job, state=JobRun.State.DONE).order_by("-started_at").first()


def api_key_list(*, merchant: Merchant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(merchant=merchant).select_related("created_by")


def api_key_get(*, merchant: Merchant, pk: int) -> ApiKey:
    return get_object_or_404(api_key_list(merchant=merchant), pk=pk)


def store_connection_list(*, merchant: Merchant) -> QuerySet[StoreConnection]:
    return StoreConnection.objects.filter(merchant=merchant)


def store_connection_get(*, merchant: Merchant, pk: int) -> StoreConnection:
    return get_object_or_404(store_connection_list(merchant=merchant), pk=pk)
