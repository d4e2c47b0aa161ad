"""Scheduled work owned by feedback/."""

from __future__ import annotations

from celery import shared_task


# Every five minutes, so a run must end before the next one starts; one cut short leaves
# the rest to the next run (each breach is its own transaction, marked once).
@shared_task(acks_late=True, time_limit=4 * 60, soft_time_limit=4 * 60 - 15)
def sla_breaches_task() -> None:
    from feedback.services.sla import resolved_close_due, sla_breaches_mark

    sla_breaches_mark()
    resolved_close_due()
