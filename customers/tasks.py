"""Background work owned by customers/."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, time_limit=2 * 60 * 60, soft_time_limit=2 * 60 * 60 - 60)
def import_run_task(job_id: int) -> None:
    from customers.imports import import_job_run  # import inside: no cycles at import time

    import_job_run(job_id=job_id)
