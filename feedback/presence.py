"""Who else is replying to a ticket right now, so two agents don't answer the same customer
twice. The reply box polls every 10 seconds; each poll says "I'm here" for 30 seconds.

Kept in the cache (Redis in production, local memory in tests): losing it loses nothing
but a hint, and nothing here touches the database."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils.timezone import now

from merchants.models import StaffMember

PRESENCE_SECONDS = 30
# Every poll is a request, and requests keep a staff session from timing out: a ticket left
# open would keep its browser signed in for ever. So the box stops polling (HTTP 286 tells
# htmx to) when nothing else happened on the page for a while, short of the idle timeout.
POLL_STOP = 0.8


def polling_over(*, since: str, at: datetime | None = None) -> bool:
    """Whether a reply box open since `since` (seconds since the epoch, as the page wrote
    it) has been left alone long enough to stop polling."""
    if not since.isdigit():
        return False
    at = at or now()
    return at.timestamp() - int(since) > settings.STAFF_IDLE_TIMEOUT_SECONDS * POLL_STOP


def _key(ticket_id: int) -> str:
    return f"feedback:presence:{ticket_id}"


def _alive(entries: dict, at: datetime) -> dict:
    cutoff = at.timestamp() - PRESENCE_SECONDS
    return {
        member_id: entry
        for member_id, entry in entries.items()
        if isinstance(entry, dict) and entry.get("at", 0) > cutoff
    }


def presence_mark(*, ticket_id: int, member: StaffMember, at: datetime | None = None) -> None:
    """Records that `member` has the ticket's reply box open. Two agents marking at the
    same instant may drop one of the two marks; the next poll, 10 seconds on, puts it back."""
    at = at or now()
    entries = _alive(cache.get(_key(ticket_id)) or {}, at)
    entries[member.pk] = {
        "name": member.user.full_name or member.user.email,
        "at": at.timestamp(),
    }
    cache.set(_key(ticket_id), entries, PRESENCE_SECONDS)


def presence_clear(*, ticket_id: int, member: StaffMember) -> None:
    """The member sent their reply or left: the others stop seeing them."""
    entries = cache.get(_key(ticket_id)) or {}
    if member.pk in entries:
        entries.pop(member.pk)
        cache.set(_key(ticket_id), entries, PRESENCE_SECONDS)


def presence_others(
    *, ticket_id: int, member: StaffMember, at: datetime | None = None
) -> list[str]:
    """The names of the other agents replying to the ticket, never the asker's own."""
    at = at or now()
    entries = _alive(cache.get(_key(ticket_id)) or {}, at)
    return sorted(entry["name"] for member_id, entry in entries.items() if member_id != member.pk)
