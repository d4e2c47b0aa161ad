"""Scheduled work owned by loyalty/ (docs/business-rules.md §9). Tasks take ids and call one
service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=29 * 60)
def pending_confirm_task() -> None:
    """Hourly: points past their return window become available."""
    from loyalty.services.schedule import pending_confirm_hourly

    pending_confirm_hourly()


@shared_task(acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def loyalty_daily_due_task() -> None:
    """Hourly: queues each merchant's daily loyalty jobs once its night (02:00 local) has
    come; each job is claimed per merchant-day, so asking every hour starts it once."""
    from loyalty.services.schedule import DAILY_JOBS, programs_due

    for merchant_id, local_date in programs_due():
        for job in DAILY_JOBS:
            loyalty_daily_job_task.delay(job, merchant_id, local_date)


@shared_task(acks_late=True, time_limit=2 * 60 * 60, soft_time_limit=2 * 60 * 60 - 60)
def loyalty_daily_job_task(job: str, merchant_id: int, local_date: str) -> None:
    from loyalty.services.schedule import daily_job_run

    daily_job_run(job=job, merchant_id=merchant_id, local_date=local_date)


@shared_task(acks_late=True, time_limit=2 * 60 * 60, soft_time_limit=2 * 60 * 60 - 60)
def tiers_recalculate_task(merchant_id: int) -> None:
    """Asked for from the tiers page: the same recalculation as the nightly one."""
    from loyalty.services.tiers import tiers_recalculate
    from merchants.models import Merchant

    tiers_recalculate(merchant=Merchant.objects.get(pk=merchant_id))
