"""Win-back campaigns and broadcasts: who enters, who is held out, what each one is sent
and when, what stops a step, and a pass run twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, CampaignEntry, Message
from campaigns.services.campaigns import (
    audience_count,
    campaign_audience,
    campaign_enter,
    campaign_move,
    campaign_save,
    campaigns_advance,
    held_out,
)
from campaigns.services.flows import due_claim
from campaigns.services.sending import messages_send
from customers.models import Customer
from customers.services import CustomerData, order_ingest
from merchants.models import AuditEvent, JobRun
from tests.campaigns.factories import PromotionFactory, TemplateFactory
from tests.campaigns.smtp_sink import html_of
from tests.customers.factories import CustomerFactory, order_data
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

MORNING = datetime(2027, 5, 10, 10, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    return MerchantFactory(name="Kashi Tea", timezone="UTC")


def _quiet(shop, who: str, *, days: int, orders: int = 1, span_days: int = 0, **fields):
    """A customer whose last of `orders` orders was `days` ago, the first `span_days`
    before that."""
    last = MORNING - timedelta(days=days)
    fields = {"email": f"{who}@example.test", "marketing_consent": True, **fields}
    return CustomerFactory(
        merchant=shop, external_id=who, first_name=who.title(), orders_count=orders,
        last_order_at=last, first_order_at=last - timedelta(days=span_days), **fields,
    )  # fmt: skip


def _campaign(shop, *, steps=None, **data):
    template = TemplateFactory(merchant=shop, subject_en="We miss you",
                               body_en="Come back, {{ first_name }}. {{ code }}")  # fmt: skip
    data = {"name": "Come back", "kind": Campaign.Kind.WINBACK, "holdout_percent": 0, **data}
    campaign = campaign_save(merchant=shop, campaign=None, data=data, actor=None,
                             steps=steps or [{"template": template}])  # fmt: skip
    campaign_move(campaign=campaign, move="start", actor=None)
    return campaign


def _entered(campaign) -> set[str]:
    return set(
        CampaignEntry.objects.filter(campaign=campaign).values_list("customer__external_id",
                                                                    flat=True)
    )  # fmt: skip


def _send_due():
    for chunk in due_claim():
        messages_send(message_ids=chunk)


def test_fixed_days_take_in_only_those_quiet_long_enough_with_consent_and_an_address(shop):
    _quiet(shop, "ada", days=100)
    _quiet(shop, "bea", days=30)
    _quiet(shop, "cy", days=200, marketing_consent=False)
    _quiet(shop, "dan", days=120, email="")
    _quiet(shop, "eve", days=95, erased_at=MORNING)
    CustomerFactory(merchant=shop, external_id="never", marketing_consent=True)
    _quiet(MerchantFactory(), "other-shop", days=300)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, days_since=90)
        assert audience_count(campaign=campaign) == (1, 0)
        assert campaign_enter(campaign_id=campaign.pk) == {
            "entered": 1, "held_out": 0, "messages": 1,
        }  # fmt: skip
    assert _entered(campaign) == {"ada"}


def test_filters_narrow_who_enters(shop):
    _quiet(shop, "ada", days=100, segment="at_risk", total_spent=Decimal("300.00"))
    _quiet(shop, "bea", days=100, segment="at_risk", total_spent=Decimal("20.00"))
    _quiet(shop, "cy", days=100, segment="lost", total_spent=Decimal("300.00"))
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, segments=["at_risk"], min_spent=Decimal("100.00"))
        assert list(campaign_audience(campaign=campaign).values_list("external_id", flat=True)) == [
            "ada"
        ]


def test_gap_mode_uses_her_own_rhythm_and_the_fixed_days_for_one_time_buyers(shop):
    # Ada ordered 3 times 10 days apart; 25 days quiet is over twice her gap.
    # Bea ordered 3 times 20 days apart; 25 days is under twice hers (40).
    # Cy ordered once, 100 days ago: over the fixed 90. Dan once, 60 days ago: under.
    _quiet(shop, "ada", days=25, orders=3, span_days=20)
    _quiet(shop, "bea", days=25, orders=3, span_days=40)
    _quiet(shop, "cy", days=100)
    _quiet(shop, "dan", days=60)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, selection="gap", gap_multiple=Decimal("2.00"), days_since=90)
        campaign_enter(campaign_id=campaign.pk)
    assert _entered(campaign) == {"ada", "cy"}


def test_predicted_mode_is_refused_until_predictions_exist(shop):
    template = TemplateFactory(merchant=shop)
    with pytest.raises(ValidationError) as error:
        campaign_save(merchant=shop, campaign=None, actor=None, steps=[{"template": template}],
                      data={"name": "x", "kind": "winback", "selection": "predicted"})  # fmt: skip
    assert "selection" in error.value.message_dict
    assert not Campaign.objects.exists()


def test_bad_settings_are_named_and_nothing_is_saved(shop):
    foreign = TemplateFactory()
    mine = TemplateFactory(merchant=shop)
    cases = [
        ([], {}, "steps"),
        ([{"template": mine}] * 4, {}, "steps"),
        ([{"template": foreign}], {}, "steps"),
        ([{"template": mine}, {"template": mine}], {"kind": "broadcast"}, "steps"),
        ([{"template": mine}], {"min_spent": Decimal("50"), "max_spent": Decimal("10")},
         "max_spent"),
    ]  # fmt: skip
    for steps, extra, field in cases:
        data = {"name": "x", "kind": "winback", **extra}
        with pytest.raises(ValidationError) as error:
            campaign_save(merchant=shop, campaign=None, actor=None, steps=steps, data=data)
        assert field in error.value.message_dict
    assert not Campaign.objects.exists()


def test_the_holdout_is_its_share_stable_frozen_and_sent_nothing(shop):
    for n in range(400):
        _quiet(shop, f"c{n}", days=100)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, holdout_percent=10)
        count, out = audience_count(campaign=campaign)
        detail = campaign_enter(campaign_id=campaign.pk)
    assert count == 400
    assert detail["held_out"] == out
    assert 20 <= out <= 60  # 10% of 400, give or take chance
    entries = CampaignEntry.objects.filter(campaign=campaign)
    for entry in entries:
        assert entry.held_out == held_out(campaign_id=campaign.pk, customer_id=entry.customer_id,
                                          percent=10)  # fmt: skip
    held = set(entries.filter(held_out=True).values_list("customer_id", flat=True))
    messaged = set(Message.objects.filter(campaign=campaign).values_list("customer_id", flat=True))
    assert not held & messaged
    assert len(messaged) == 400 - out
    # Another campaign holds out others: held out of one, she can still get the other.
    other = [held_out(campaign_id=campaign.pk + 1, customer_id=pk, percent=10) for pk in held]
    assert not all(other)


def test_steps_are_due_their_delays_after_entering_with_a_code_each(smtp_sink, shop):
    _quiet(shop, "ada", days=100)
    offer = PromotionFactory(merchant=shop, name="Ten off")
    first = TemplateFactory(merchant=shop, body_en="Hello {{ first_name }}, {{ code }}")
    second = TemplateFactory(merchant=shop, body_en="Still here")
    third = TemplateFactory(merchant=shop, body_en="Last chance")
    steps = [
        {"template": first, "offer": offer, "delay_days": 0},
        {"template": second, "delay_days": 3},
        {"template": third, "delay_days": 7},
    ]
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, steps=steps)
        campaign_enter(campaign_id=campaign.pk)
        _send_due()
    due = dict(Message.objects.filter(campaign=campaign).values_list("data__step", "send_after"))
    assert due == {1: MORNING, 2: MORNING + timedelta(days=3), 3: MORNING + timedelta(days=10)}
    [arrived] = smtp_sink.wait_for(1)
    code = Message.objects.get(campaign=campaign, data__step=1).code
    assert code
    assert code in html_of(arrived)
    assert "Hello Ada" in html_of(arrived)


def test_an_order_since_entering_stops_the_later_steps(shop):
    _quiet(shop, "ada", days=100)
    first = TemplateFactory(merchant=shop)
    second = TemplateFactory(merchant=shop)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, steps=[{"template": first},
                                          {"template": second, "delay_days": 4}])  # fmt: skip
        campaign_enter(campaign_id=campaign.pk)
        _send_due()
    with time_machine.travel(MORNING + timedelta(days=2), tick=False):
        person = CustomerData(external_id="ada", email="ada@example.test", marketing_consent=True)
        order_ingest(merchant=shop, data=order_data("back-1", customer=person))
    with time_machine.travel(MORNING + timedelta(days=4, minutes=1), tick=False):
        _send_due()
    states = dict(
        Message.objects.filter(campaign=campaign).values_list("data__step", "state")
    )  # fmt: skip
    assert states == {1: "sent", 2: "skipped"}
    assert Message.objects.get(campaign=campaign, data__step=2).skip_reason == "ordered_since"


def test_a_pass_run_twice_enters_no_one_twice_and_re_entry_waits_its_days(shop):
    _quiet(shop, "ada", days=100)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, reentry_days=30)
        campaigns_advance()
        campaigns_advance()
    with time_machine.travel(MORNING + timedelta(days=1), tick=False):
        campaigns_advance()  # a new day, but she entered yesterday
    with time_machine.travel(MORNING + timedelta(days=31), tick=False):
        campaigns_advance()  # past the re-entry days: in again
    entries = list(CampaignEntry.objects.filter(campaign=campaign).order_by("entered_at")
                   .values_list("entered_on", flat=True))  # fmt: skip
    assert entries == [MORNING.date(), (MORNING + timedelta(days=31)).date()]
    assert Message.objects.filter(campaign=campaign).count() == 2
    runs = JobRun.objects.filter(job=f"campaigns.winback.{campaign.pk}")
    assert runs.count() == 3


def test_no_one_enters_before_the_shops_morning(shop):
    _quiet(shop, "ada", days=100)
    with time_machine.travel(MORNING.replace(hour=6), tick=False):
        campaign = _campaign(shop)
        campaigns_advance()
    assert _entered(campaign) == set()


def test_paused_its_messages_wait_and_go_on_resume(shop):
    _quiet(shop, "ada", days=100)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop)
        campaign_enter(campaign_id=campaign.pk)
        campaign_move(campaign=campaign, move="pause", actor=None)
        _send_due()
        assert Message.objects.get(campaign=campaign).state == "queued"
        campaigns_advance()  # paused: no pass
        campaign_move(campaign=campaign, move="resume", actor=None)
        _send_due()
    assert Message.objects.get(campaign=campaign).state == "sent"
    actions = set(AuditEvent.objects.filter(merchant=shop).values_list("action", flat=True))
    assert {"campaigns.campaign_saved", "campaigns.campaign_start", "campaigns.campaign_pause",
            "campaigns.campaign_resume"} <= actions  # fmt: skip
    with pytest.raises(ValidationError):
        campaign_move(campaign=campaign, move="resume", actor=None)


def test_a_broadcast_goes_once_at_its_time_to_its_list(shop):
    listed = [_quiet(shop, who, days=5) for who in ("ada", "bea")]
    _quiet(shop, "cy", days=5)
    template = TemplateFactory(merchant=shop)
    with time_machine.travel(MORNING, tick=False):
        campaign = campaign_save(
            merchant=shop, campaign=None, actor=None, steps=[{"template": template}],
            listed=[c.pk for c in listed],
            data={"name": "Spring range", "kind": "broadcast", "holdout_percent": 0,
                  "send_at": MORNING + timedelta(hours=2)},
        )  # fmt: skip
        campaign_move(campaign=campaign, move="start", actor=None)
        campaigns_advance()
        assert _entered(campaign) == set()
    with time_machine.travel(MORNING + timedelta(hours=2), tick=False):
        campaigns_advance()
        campaigns_advance()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DONE
    assert _entered(campaign) == {"ada", "bea"}
    assert Message.objects.filter(campaign=campaign).count() == 2


def test_a_customer_erased_after_entering_is_not_sent(shop):
    ada = _quiet(shop, "ada", days=100)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop)
        campaign_enter(campaign_id=campaign.pk)
        Customer.objects.filter(pk=ada.pk).update(erased_at=MORNING)
        _send_due()
    assert Message.objects.get(campaign=campaign).skip_reason == "erased"


def test_after_the_first_pass_only_those_newly_quiet_or_past_re_entry_are_read(shop):
    """Day 1 enters everyone quiet over 90 days. Day 2 reads who crossed 90 days since:
    Bea, 89 days quiet on day 1. Cy gave consent on day 1 after the pass, though long
    quiet: she enters when she next goes quiet, not now. Ada, entered on day 1, enters
    again once her 30 re-entry days have passed, still quiet."""
    _quiet(shop, "ada", days=100)
    _quiet(shop, "bea", days=89)
    cy = _quiet(shop, "cy", days=300, marketing_consent=False)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop, reentry_days=30)
        campaigns_advance()
    assert _entered(campaign) == {"ada"}
    Customer.objects.filter(pk=cy.pk).update(marketing_consent=True)
    with time_machine.travel(MORNING + timedelta(days=1), tick=False):
        campaign.refresh_from_db()
        assert audience_count(campaign=campaign) == (1, 0)
        campaigns_advance()
    assert _entered(campaign) == {"ada", "bea"}
    with time_machine.travel(MORNING + timedelta(days=30, hours=1), tick=False):
        campaigns_advance()
    ada = CampaignEntry.objects.filter(campaign=campaign, customer__external_id="ada")
    assert ada.count() == 2
    assert not CampaignEntry.objects.filter(campaign=campaign, customer=cy).exists()


def test_a_paused_week_is_caught_up_on_resume(shop):
    _quiet(shop, "ada", days=100)
    _quiet(shop, "bea", days=85)
    with time_machine.travel(MORNING, tick=False):
        campaign = _campaign(shop)
        campaigns_advance()
        campaign_move(campaign=campaign, move="pause", actor=None)
    with time_machine.travel(MORNING + timedelta(days=8), tick=False):
        campaign_move(campaign=campaign, move="resume", actor=None)
        campaigns_advance()
    assert _entered(campaign) == {"ada", "bea"}
