"""The daily campaign pass for real: two passes racing on PostgreSQL enter each customer
once, and the task runs in a real Celery worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils.timezone import now

from campaigns.models import Campaign, CampaignEntry, Message
from campaigns.services.campaigns import campaign_enter, campaign_move, campaign_save
from campaigns.tasks import campaigns_enter_task
from merchants.models import JobRun
from tests.campaigns.factories import TemplateFactory, zone_in_its_day
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory


def _running_campaign(customers: int) -> Campaign:
    shop = MerchantFactory(timezone=zone_in_its_day())
    long_ago = now() - timedelta(days=120)
    CustomerFactory.create_batch(customers, merchant=shop, marketing_consent=True,
                                 orders_count=1, last_order_at=long_ago)  # fmt: skip
    data = {"name": "Back", "kind": "winback", "holdout_percent": 10}
    campaign = campaign_save(merchant=shop, campaign=None, actor=None, data=data,
                             steps=[{"template": TemplateFactory(merchant=shop)}])  # fmt: skip
    campaign_move(campaign=campaign, move="start", actor=None)
    return campaign


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once_enter_each_customer_once():
    campaign = _running_campaign(1500)
    at = now()
    barrier = threading.Barrier(2)
    answers: list = []

    def run() -> None:
        try:
            barrier.wait()
            answers.append(campaign_enter(campaign_id=campaign.pk, at=at))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [a for a in answers if a is not None]
    assert len(done) == 1, answers
    entries = CampaignEntry.objects.filter(campaign=campaign)
    assert entries.count() == entries.values("customer").distinct().count() == 1500
    assert done[0]["entered"] == 1500
    messaged = entries.filter(held_out=False).count()
    assert Message.objects.filter(campaign=campaign).count() == messaged == done[0]["messages"]


@pytest.mark.needs_postgres
@pytest.mark.needs_redis
@pytest.mark.django_db(transaction=True)
def test_the_pass_runs_in_a_real_worker(worker_broker):
    campaign = _running_campaign(50)
    campaigns_enter_task.delay()
    entries = CampaignEntry.objects.filter(campaign=campaign)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and entries.count() < 50:
        time.sleep(0.2)
    assert entries.count() == 50
    run = JobRun.objects.get(job=f"campaigns.winback.{campaign.pk}")
    while time.monotonic() < deadline and run.state != "done":
        time.sleep(0.2)
        run.refresh_from_db()
    assert run.detail["entered"] == 50
    assert (
        Message.objects.filter(campaign=campaign).count() == entries.filter(held_out=False).count()
    )
