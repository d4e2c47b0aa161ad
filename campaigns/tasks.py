"""Scheduled work owned by campaigns/. Tasks call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def reservations_expire_task() -> None:
    """Hourly: code reservations past their 15 minutes give their places back (a take of a
    code frees its own promotion's at once; this sweeps the rest). Twice frees nothing more."""
    from campaigns.services.codes import reservations_expire

    reservations_expire()
