"""Scheduled work owned by merchants/."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def heartbeat_task() -> None:
    from merchants.services import heartbeat_record

    heartbeat_record()
