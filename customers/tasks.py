"""Background work owned by customers/."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, time_limit=2 * 60 * 60, soft_time_limit=2 * 60 * 60 - 60)
def import_run_task(job_id: int) -> None:
    from customers.imports import import_job_run  # import inside: no cycles at import time

    import_job_run(job_id=job_id)


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def imports_resume_task() -> None:
    """Every five minutes: queues again each import whose worker died."""
    from customers.imports import imports_resume_stalled

    imports_resume_stalled()


@shared_task(acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def segments_due_task() -> None:
    """Hourly: queues each merchant's nightly segment refresh once its night has come."""
    from customers.personas import segments_due

    for merchant_id, local_date in segments_due():
        segments_refresh_task.delay(merchant_id, local_date)


@shared_task(acks_late=True, time_limit=60 * 60, soft_time_limit=59 * 60)
def segments_refresh_task(merchant_id: int, local_date: str) -> None:
    from customers.personas import segments_refresh_nightly

    segments_refresh_nightly(merchant_id=merchant_id, local_date=local_date)


@shared_task(
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    autoretry_for=(OSError,),  # the mail server not answering
    retry_backoff=True,
    max_retries=5,
)
def magic_link_send_task(merchant_id: int, email: str, ip_address: str | None) -> None:
    from customers.services.portal import magic_link_send

    magic_link_send(merchant_id=merchant_id, email=email, ip_address=ip_address)


@shared_task(acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def portal_sign_ins_purge_task() -> None:
    from customers.services.portal import portal_sign_ins_purge

    portal_sign_ins_purge()
