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


# Mail that failed when it was first sent (feedback.services.thread.mail_deliver).
MAIL_RETRY = {
    "acks_late": True,
    "time_limit": 60,
    "soft_time_limit": 50,
    "autoretry_for": (OSError,),  # the mail server not answering
    "retry_backoff": True,
    "max_retries": 8,
}


@shared_task(**MAIL_RETRY)
def reply_email_task(message_id: int) -> None:
    from feedback.services.tickets import reply_email_send

    reply_email_send(message_id=message_id)


@shared_task(**MAIL_RETRY)
def csat_send_task(feedback_id: int, cycle: int, agent_id: int | None, at: str) -> None:
    from feedback.services.csat import csat_send

    csat_send(feedback_id=feedback_id, cycle=cycle, agent_id=agent_id, at=at)


@shared_task(**MAIL_RETRY)
def breach_notify_task(breach_id: int) -> None:
    from feedback.services.sla import breach_notify

    breach_notify(breach_id=breach_id)
