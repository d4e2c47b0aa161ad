"""The Celery app, its task defaults and the beat schedule (kept here, in code)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from celery import Celery
from celery.contrib.django.task import DjangoTask
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

logger = logging.getLogger(__name__)


class RegularsTask(DjangoTask):
    """Counts deliveries of each task id so a message that kills its worker every time
    (a poison task, redelivered because of acks_late) is dropped instead of looping."""

    def __call__(self, *args, **kwargs):
        from django.conf import settings
        from django.core.cache import cache

        task_id = self.request.id
        if task_id and not self.request.is_eager:
            key = f"celery-deliveries:{task_id}"
            cache.add(key, 0, timeout=24 * 60 * 60)
            deliveries = cache.incr(key)
            if deliveries > settings.CELERY_MAX_DELIVERIES:
                logger.error(
                    "Dropping task %s[%s] after %s deliveries", self.name, task_id, deliveries - 1
                )
                return None
        return super().__call__(*args, **kwargs)


app = Celery("regulars", task_cls=RegularsTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule() -> dict:
    """Every scheduled job of the product. Each one is safe to run twice (JobRun)."""
    from django.conf import settings

    return {
        "scheduler-heartbeat": {
            "task": "merchants.tasks.heartbeat_task",
            "schedule": timedelta(seconds=settings.HEARTBEAT_SECONDS),
        },
        # Hourly, so that each merchant's night (02:00 in its time zone) is caught.
        "segments-nightly": {
            "task": "customers.tasks.segments_due_task",
            "schedule": crontab(minute=15),
        },
        "loyalty-pending-hourly": {
            "task": "loyalty.tasks.pending_confirm_task",
            "schedule": crontab(minute=5),
        },
        # Hourly, so that each merchant's 02:00 is caught: expiry and reminders, tiers,
        # memberships and birthdays, each once per merchant-day.
        "loyalty-daily": {
            "task": "loyalty.tasks.loyalty_daily_due_task",
            "schedule": crontab(minute=25),
        },
        # Code reservations past their 15 minutes give their places back.
        # Triggered flows: new activities become messages; due ones go out in chunks.
        "flows-every-minute": {
            "task": "campaigns.tasks.flows_tick_task",
            "schedule": crontab(),
        },
        # Win-back campaigns enter their customers once per merchant-local day, broadcasts
        # once at their time (JobRun); the messages go out with the flows' sends.
        "campaigns-enter": {
            "task": "campaigns.tasks.campaigns_enter_task",
            "schedule": crontab(minute="*/15"),
        },
        "code-reservations-expire": {
            "task": "campaigns.tasks.reservations_expire_task",
            "schedule": crontab(minute=35),
        },
        # Imports whose worker died (no progress for five minutes) go on where they
        # stopped; one already picked up again is claimed, so a second sweep does nothing.
        "imports-resume-stalled": {
            "task": "customers.tasks.imports_resume_task",
            "schedule": crontab(minute="*/5"),
        },
        # Spent and expired rewards-page sign-in links; deleting twice deletes nothing more.
        "portal-sign-ins-purge": {
            "task": "customers.tasks.portal_sign_ins_purge_task",
            "schedule": crontab(minute=40, hour=3),
        },
        # Marks missed SLA targets (each once: SlaBreach is unique per ticket, target and
        # cycle) and closes resolved tickets left long enough.
        "feedback-sla-every-5-minutes": {
            "task": "feedback.tasks.sla_breaches_task",
            "schedule": crontab(minute="*/5"),
        },
    }


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, **kwargs) -> None:
    sender.conf.beat_schedule = beat_schedule()
