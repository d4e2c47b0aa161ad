"""The flows that look ahead rather than react: a second-order nudge for one-time buyers at
their segment's typical gap, and a warning before a tier drops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from campaigns.models import Message, MessageTemplate
from campaigns.services.flows import due_claim, flow_advance, flow_save, flows_advance
from campaigns.services.sending import messages_send
from customers.models import Activity
from customers.services import CustomerData, order_ingest
from loyalty.models import PointsAccount
from loyalty.services.schedule import daily_job_run, programs_due
from loyalty.services.tiers import tiers_recalculate
from merchants.models import JobRun
from tests.campaigns.factories import TemplateFactory
from tests.campaigns.smtp_sink import html_of
from tests.customers.factories import CustomerFactory, order_data
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

START = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    return MerchantFactory(name="Kashi Tea", timezone="UTC")


def _flow(shop, trigger, body, **data):
    template = TemplateFactory(merchant=shop, kind=MessageTemplate.Kind.MARKETING, body_en=body)
    data = {"trigger": trigger, "template": template, "enabled": True, **data}
    return flow_save(merchant=shop, flow=None, actor=None, data=data)


def _order(shop, number: str, who: str, total="50.00"):
    person = CustomerData(external_id=who, email=f"{who}@example.test", first_name=who.title(),
                          marketing_consent=True)  # fmt: skip
    return order_ingest(merchant=shop, data=order_data(number, customer=person, total=total))


def _send_due():
    for chunk in due_claim():
        messages_send(message_ids=chunk)


def _nudged(flow) -> dict[str, str]:
    return dict(
        Message.objects.filter(flow=flow).values_list("customer__external_id", "state")
    )  # fmt: skip


# --- Second-order nudge ---------------------------------------------------------------


def test_a_one_time_buyer_is_nudged_once_when_her_order_is_the_shops_typical_gap_old(
    smtp_sink, shop
):
    """Too few repeat customers to tell a gap: 30 days. Ada bought once and hears on the
    morning her order is 30 days old, once; Bea bought again and hears nothing; Dan buys
    again in the hour the nudge waits and it is not sent."""
    with time_machine.travel(START - timedelta(days=1), tick=False):
        flow = _flow(shop, "second_order", "We miss you, {{ first_name }}.", delay_minutes=60)
    with time_machine.travel(START, tick=False):
        _order(shop, "1", "ada")
        _order(shop, "2", "bea")
        _order(shop, "3", "dan")
    with time_machine.travel(START + timedelta(days=10), tick=False):
        _order(shop, "4", "bea")
    for day in range(1, 33):
        morning = START + timedelta(days=day)
        with time_machine.travel(morning, tick=False):
            flows_advance()
            flows_advance()  # the same morning again: claimed, nothing more
            _send_due()
        if day == 29:
            assert _nudged(flow) == {}
        if day == 30:
            assert _nudged(flow) == {"ada": "queued", "dan": "queued"}
            with time_machine.travel(morning + timedelta(minutes=20), tick=False):
                _order(shop, "5", "dan")
    assert _nudged(flow) == {"ada": "sent", "dan": "skipped"}
    assert Message.objects.get(flow=flow, customer__external_id="dan").skip_reason == (
        "ordered_since"
    )
    assert Message.objects.get(flow=flow, customer__external_id="ada").data == {"gap_days": 30.0}
    [arrived] = smtp_sink.wait_for(1)
    assert "We miss you, Ada." in html_of(arrived)
    assert JobRun.objects.filter(job=f"campaigns.second_order.{flow.pk}").count() == 32


def test_the_nudge_waits_each_segments_own_gap(shop):
    """20 champions buy every 12 days and 20 loyal customers every 40: champions wait 12
    days, every other segment the shop's median, 26."""
    at = START
    for index in range(20):
        CustomerFactory(merchant=shop, segment="champions", orders_count=3,
                        first_order_at=at - timedelta(days=100),
                        last_order_at=at - timedelta(days=76))  # fmt: skip
        CustomerFactory(merchant=shop, segment="loyal", orders_count=2,
                        first_order_at=at - timedelta(days=200 + index % 2),
                        last_order_at=at - timedelta(days=160 + index % 2))  # fmt: skip

    def one_timer(segment, days):
        return CustomerFactory(merchant=shop, segment=segment, orders_count=1,
                               first_order_at=at - timedelta(days=days, hours=1),
                               last_order_at=at - timedelta(days=days, hours=1))  # fmt: skip

    champion_12 = one_timer("champions", 12)
    one_timer("champions", 26)  # her moment was two weeks ago
    newcomer_26 = one_timer("new", 26)
    one_timer("new", 12)  # not yet
    unscored_26 = one_timer("", 26)
    with time_machine.travel(at - timedelta(days=30), tick=False):
        flow = _flow(shop, "second_order", "Come back")
    with time_machine.travel(at, tick=False):
        assert flow_advance(flow_id=flow.pk) == 3
    queued = set(Message.objects.filter(flow=flow).values_list("customer_id", flat=True))
    assert queued == {champion_12.pk, newcomer_26.pk, unscored_26.pk}
    assert Message.objects.get(customer=champion_12).data == {"gap_days": 12.0}
    assert Message.objects.get(customer=newcomer_26).data == {"gap_days": 26.0}


def test_a_nudge_flow_turned_on_late_leaves_old_one_time_buyers_alone(shop):
    with time_machine.travel(START, tick=False):
        _order(shop, "1", "eve")
    with time_machine.travel(START + timedelta(days=45), tick=False):
        flow = _flow(shop, "second_order", "Hello")
        assert flow_advance(flow_id=flow.pk) == 0


def test_nudges_go_out_from_the_shops_morning(shop):
    shop.timezone = "Asia/Tehran"
    shop.save()
    with time_machine.travel(START - timedelta(days=1), tick=False):
        flow = _flow(shop, "second_order", "Hello")
    with time_machine.travel(START, tick=False):
        _order(shop, "1", "ada")
    # 05:00 UTC is 08:30 in Tehran: before the morning; 06:00 is 09:30.
    day = START.replace(hour=5) + timedelta(days=31)
    with time_machine.travel(day, tick=False):
        assert flow_advance(flow_id=flow.pk) == 0
    with time_machine.travel(day + timedelta(hours=1), tick=False):
        assert flow_advance(flow_id=flow.pk) == 1


# --- Tier-down warning ----------------------------------------------------------------


@pytest.fixture
def gold_shop(shop):
    """Spend over a rolling year, Silver at 100 and Gold at 500; the tiers job at 02:30."""
    ProgramFactory(merchant=shop, tier_warning_days=14)
    TierFactory(merchant=shop, name="Silver", threshold=Decimal("100"))
    TierFactory(merchant=shop, name="Gold", threshold=Decimal("500"))
    return shop


def _ada_reaches_gold(shop):
    """300 in March 2026, 250 on 1 June 10:00 (Gold from then, kept until 1 June 2027
    10:00), 100 in September. On the night of 2 June 2027 the year counted holds only the
    100: Silver."""
    for number, when, total in (("1", datetime(2026, 3, 1, 10, tzinfo=UTC), "300.00"),
                                ("2", datetime(2026, 6, 1, 10, tzinfo=UTC), "250.00"),
                                ("3", datetime(2026, 9, 1, 10, tzinfo=UTC), "100.00")):  # fmt: skip
        with time_machine.travel(when, tick=False):
            _order(shop, number, "ada", total=total)
    return PointsAccount.objects.get(customer__external_id="ada")


def _night(day: datetime) -> dict:
    with time_machine.travel(day.replace(hour=2, minute=30), tick=False):
        for merchant_id, local_date in programs_due():
            return daily_job_run(job="loyalty.tiers", merchant_id=merchant_id,
                                 local_date=local_date)  # fmt: skip
    return {}


def test_a_tier_drop_is_warned_of_once_fourteen_days_ahead_with_what_keeps_it(smtp_sink, gold_shop):
    account = _ada_reaches_gold(gold_shop)
    assert account.tier.name == "Gold"
    with time_machine.travel(datetime(2027, 5, 1, tzinfo=UTC), tick=False):
        flow = _flow(gold_shop, "tier_down",
                     "Your {{ tier }} ends on {{ tier_ends_on }}: spend {{ to_keep_tier }} "
                     "to keep it.")  # fmt: skip
    warned = {}
    for day in range(1, 32):
        night = datetime(2027, 5, day, tzinfo=UTC)
        warned[day] = _night(night)["warned"]
        with time_machine.travel(night.replace(hour=10), tick=False):
            flows_advance()
            _send_due()
    assert {day for day, count in warned.items() if count} == {19}
    [warning] = Activity.objects.filter(kind="tier.at_risk")
    assert warning.data == {"tier": "Gold", "tier_id": account.tier_id, "on": "2027-06-02",
                            "to_keep": "400.00", "basis": "spent"}  # fmt: skip
    assert Message.objects.get(flow=flow).state == "sent"
    [arrived] = smtp_sink.wait_for(1)
    assert "Your Gold ends on June 2, 2027: spend 400.00 USD to keep it." in html_of(arrived)
    # What the warning said is what the recalculation does: Gold on the 1st, Silver on the 2nd.
    for day, tier in ((1, "Gold"), (2, "Silver")):
        with time_machine.travel(datetime(2027, 6, day, 2, 30, tzinfo=UTC), tick=False):
            tiers_recalculate(merchant=gold_shop)
        account.refresh_from_db()
        assert account.tier.name == tier


def test_a_warning_she_has_answered_by_buying_is_not_sent(smtp_sink, gold_shop):
    """Warned on 19 May, the message waiting an hour; she spends 400 in that hour, keeps
    Gold on 2 June, and the warning is skipped."""
    account = _ada_reaches_gold(gold_shop)
    with time_machine.travel(datetime(2027, 5, 1, tzinfo=UTC), tick=False):
        flow = _flow(gold_shop, "tier_down", "{{ to_keep_tier }}", delay_minutes=60)
    assert _night(datetime(2027, 5, 19, tzinfo=UTC))["warned"] == 1
    with time_machine.travel(datetime(2027, 5, 19, 3, tzinfo=UTC), tick=False):
        flows_advance()
        _order(gold_shop, "4", "ada", total="400.00")
    with time_machine.travel(datetime(2027, 5, 19, 4, tzinfo=UTC), tick=False):
        _send_due()
    message = Message.objects.get(flow=flow)
    assert (message.state, message.skip_reason) == ("skipped", "kept_tier")
    assert smtp_sink.wait_for(1, seconds=0.3) == []
    with time_machine.travel(datetime(2027, 6, 2, 2, 30, tzinfo=UTC), tick=False):
        tiers_recalculate(merchant=gold_shop)
    account.refresh_from_db()
    assert account.tier.name == "Gold"


def test_no_warning_days_no_warning(gold_shop):
    _ada_reaches_gold(gold_shop)
    gold_shop.loyalty_program.tier_warning_days = 0
    gold_shop.loyalty_program.save()
    assert _night(datetime(2027, 5, 25, tzinfo=UTC))["warned"] == 0
    assert not Activity.objects.filter(kind="tier.at_risk").exists()
