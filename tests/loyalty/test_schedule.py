from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from config.celery import beat_schedule
from customers.models import Activity
from loyalty.models import EarningRule, PointsAccount
from loyalty.services.ledger import account_for
from loyalty.services.schedule import DAILY_JOBS, daily_job_run, programs_due
from tests.customers.factories import CustomerFactory
from tests.loyalty.factories import EarningRuleFactory, ProgramFactory, TierFactory
from tests.loyalty.helpers import account_with

pytestmark = pytest.mark.django_db


def test_every_loyalty_job_is_scheduled():
    tasks = {entry["task"] for entry in beat_schedule().values()}
    assert {"loyalty.tasks.pending_confirm_task", "loyalty.tasks.loyalty_daily_due_task"} <= tasks


def test_each_daily_job_runs_once_per_merchant_day(merchant):
    ProgramFactory(merchant=merchant)
    with time_machine.travel(datetime(2026, 3, 1, 3, 0, tzinfo=UTC), tick=False):
        assert programs_due() == [(merchant.pk, "2026-03-01")]
        for job in DAILY_JOBS:
            assert (
                daily_job_run(job=job, merchant_id=merchant.pk, local_date="2026-03-01") is not None
            )
            assert daily_job_run(job=job, merchant_id=merchant.pk, local_date="2026-03-01") is None


def test_a_merchants_night_is_its_own(merchant):
    merchant.timezone = "America/Los_Angeles"
    merchant.save()
    ProgramFactory(merchant=merchant)
    # 08:00 UTC is midnight in Los Angeles: not yet 02:00 there.
    with time_machine.travel(datetime(2026, 3, 1, 8, 0, tzinfo=UTC), tick=False):
        assert programs_due() == []
    with time_machine.travel(datetime(2026, 3, 1, 10, 30, tzinfo=UTC), tick=False):
        assert programs_due() == [(merchant.pk, "2026-03-01")]


def test_birthday_points_once_a_year_with_the_tier_bonus(merchant):
    ProgramFactory(merchant=merchant)
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.EVENT,
                       event=EarningRule.Event.BIRTHDAY, points=100)  # fmt: skip
    gold = TierFactory(merchant=merchant, birthday_points=50)
    leap = CustomerFactory(merchant=merchant, birth_date=date(2000, 2, 29))
    other = CustomerFactory(merchant=merchant, birth_date=date(1990, 7, 1))
    account = account_for(customer=leap)
    PointsAccount.objects.filter(pk=account.pk).update(tier=gold)
    account_for(customer=other)
    with time_machine.travel(datetime(2026, 2, 28, 12, 0, tzinfo=UTC), tick=False):
        daily_job_run(job="loyalty.birthdays", merchant_id=merchant.pk, local_date="2026-02-28")
    account.refresh_from_db()
    assert account.available == 150
    assert PointsAccount.objects.get(customer=other).available == 0
    with time_machine.travel(datetime(2026, 2, 28, 18, 0, tzinfo=UTC), tick=False):
        from loyalty.services.schedule import birthdays_reward

        birthdays_reward(program=merchant.loyalty_program)
    account.refresh_from_db()
    assert account.available == 150
    assert Activity.objects.filter(kind=Activity.Kind.POINTS_EARNED).count() == 2


def test_reconcile_points_finds_no_mismatch_and_names_a_tampered_account(merchant):
    ProgramFactory(merchant=merchant)
    fine = account_with(merchant, 120)
    out = StringIO()
    call_command("reconcile_points", stdout=out)
    assert "0 mismatched" in out.getvalue()
    PointsAccount.objects.filter(pk=fine.pk).update(available=999)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile_points", "--merchant", merchant.slug, stdout=out)
    assert "stored 999 available" in out.getvalue()
    assert "ledger 120" in out.getvalue()


def test_recalculate_tiers_command_names_the_merchant(merchant):
    ProgramFactory(merchant=merchant)
    out = StringIO()
    call_command("recalculate_tiers", "--merchant", merchant.slug, stdout=out)
    assert f"{merchant.slug}: 0 tier change(s)" in out.getvalue()
    with pytest.raises(CommandError, match="No loyalty program"):
        call_command("recalculate_tiers", "--merchant", "nope")
