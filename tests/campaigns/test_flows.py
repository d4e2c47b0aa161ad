"""Triggered flows: activities become messages once, after the delay, only for what
happens while the flow is on, re-checked when due, delivered over real SMTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils.timezone import now

from campaigns.models import Flow, Message, MessageTemplate
from campaigns.services.flows import due_claim, flow_advance, flow_save, flows_advance
from campaigns.services.sending import messages_send
from customers.models import Activity
from customers.services import CustomerData, order_ingest
from tests.campaigns.factories import PromotionFactory, TemplateFactory
from tests.campaigns.smtp_sink import html_of
from tests.customers.factories import CustomerFactory, order_data
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return MerchantFactory(name="Kashi Tea")


def _flow(shop, trigger="post_purchase", **data):
    template = data.pop("template", None) or TemplateFactory(
        merchant=shop, kind=MessageTemplate.Kind.TRANSACTIONAL
    )
    data = {"trigger": trigger, "template": template, "enabled": True, **data}
    return flow_save(merchant=shop, flow=None, actor=None, data=data)


def _order(shop, number: str, email="ada@example.test", **kwargs):
    person = CustomerData(external_id=f"c-{email}", email=email, first_name="Ada",
                          marketing_consent=True)  # fmt: skip
    return order_ingest(merchant=shop, data=order_data(number, customer=person, **kwargs))


def _send_due():
    for chunk in due_claim():
        messages_send(message_ids=chunk)


def test_an_order_gets_one_thank_you_however_often_the_pass_runs(smtp_sink, shop):
    flow = _flow(shop)
    _order(shop, "1001")
    flows_advance()
    flows_advance()
    assert Message.objects.filter(flow=flow).count() == 1
    _send_due()
    _send_due()
    [arrived] = smtp_sink.wait_for(1)
    assert "1001" in html_of(arrived)
    assert Message.objects.get(flow=flow).state == "sent"


def test_the_delay_holds_the_message_until_it_is_due(smtp_sink, shop):
    flow = _flow(shop, delay_minutes=60)
    _order(shop, "1001")
    flows_advance()
    message = Message.objects.get(flow=flow)
    assert message.send_after > now() + timedelta(minutes=59)
    assert due_claim() == []
    with time_machine.travel(now() + timedelta(minutes=61)):
        assert due_claim() == [[message.pk]]


def test_what_happened_before_the_flow_was_on_sends_nothing(smtp_sink, shop):
    _order(shop, "1000")
    flow = _flow(shop)
    flows_advance()
    assert not Message.objects.filter(flow=flow).exists()


def test_an_imported_old_order_is_history_not_a_moment(smtp_sink, shop):
    flow = _flow(shop)
    _order(shop, "0999", placed_at=now() - timedelta(days=40))
    flows_advance()
    assert not Message.objects.filter(flow=flow).exists()


def test_turned_off_and_on_it_skips_what_happened_while_off(smtp_sink, shop):
    flow = _flow(shop)
    flow_save(merchant=shop, flow=flow, actor=None, data={"enabled": False})
    _order(shop, "1001")
    with time_machine.travel(now() + timedelta(minutes=1)):
        flow_save(merchant=shop, flow=Flow.objects.get(pk=flow.pk), actor=None,
                  data={"enabled": True})  # fmt: skip
        flows_advance()
    assert not Message.objects.filter(flow=flow).exists()


def test_a_message_queued_while_on_is_skipped_if_the_flow_is_turned_off(smtp_sink, shop):
    flow = _flow(shop, delay_minutes=30)
    _order(shop, "1001")
    flows_advance()
    flow_save(merchant=shop, flow=flow, actor=None, data={"enabled": False})
    with time_machine.travel(now() + timedelta(minutes=31)):
        _send_due()
    assert Message.objects.get(flow=flow).skip_reason == "flow_off"
    assert smtp_sink.wait_for(1, seconds=0.3) == []


def test_conditions_are_checked_again_when_due(smtp_sink, shop):
    flow = _flow(shop, segments=["champions"], delay_minutes=5)
    _order(shop, "1001")
    flows_advance()
    with time_machine.travel(now() + timedelta(minutes=6)):
        _send_due()
    assert Message.objects.get(flow=flow).skip_reason == "not_eligible"


def test_tier_up_only_for_a_move_up(smtp_sink, shop):
    flow = _flow(shop, trigger="tier_up")
    customer = CustomerFactory(merchant=shop)
    Activity.objects.create(merchant=shop, customer=customer, kind="tier.changed",
                            data={"from": "Gold", "to": "Silver", "up": False})  # fmt: skip
    Activity.objects.create(merchant=shop, customer=customer, kind="tier.changed",
                            data={"from": "Silver", "to": "Gold", "up": True})  # fmt: skip
    assert flow_advance(flow_id=flow.pk) == 1


def test_an_activity_committed_late_is_still_found(smtp_sink, shop):
    with time_machine.travel(now() - timedelta(minutes=30)):
        flow = _flow(shop)
    customer = CustomerFactory(merchant=shop)
    flows_advance()
    # Dated before the last pass (its transaction took a while), committed after it.
    Activity.objects.create(merchant=shop, customer=customer, kind="order.placed",
                            occurred_at=now() - timedelta(minutes=5),
                            data={"external_id": "7"})  # fmt: skip
    flows_advance()
    assert Message.objects.filter(flow=flow).count() == 1


def test_a_flow_with_an_offer_issues_her_code_on_send(smtp_sink, shop):
    offer = PromotionFactory(merchant=shop, name="Ten off your next order")
    template = TemplateFactory(merchant=shop, body_en="Your code: {{ code }}")
    flow = _flow(shop, template=template, offer=offer)
    _order(shop, "1001")
    flows_advance()
    _send_due()
    message = Message.objects.get(flow=flow)
    assert message.code
    [arrived] = smtp_sink.wait_for(1)
    assert f"Your code: {message.code}" in html_of(arrived)
    assert offer.code_set.get(code=message.code).customer_id == message.customer_id


def test_a_flow_of_another_shops_template_is_refused(shop):
    from django.core.exceptions import ValidationError

    foreign = TemplateFactory(merchant=MerchantFactory())
    with pytest.raises(ValidationError):
        _flow(shop, template=foreign)


@time_machine.travel(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
def test_membership_renewal_and_payment_failure_are_told_apart(smtp_sink, shop):
    renewed = _flow(shop, trigger="membership_renewed")
    failed = _flow(shop, trigger="payment_failed")
    customer = CustomerFactory(merchant=shop)
    for before, after in (("trialing", "active"), ("active", "active"), ("active", "past_due")):
        Activity.objects.create(merchant=shop, customer=customer, kind="membership.changed",
                                data={"plan": "Club", "from": before, "to": after})  # fmt: skip
    assert flow_advance(flow_id=renewed.pk) == 1
    assert flow_advance(flow_id=failed.pk) == 1


@pytest.mark.parametrize(
    ("zone", "morning", "night_before"),
    [
        # 09:00 in Tehran on 14 March is 05:30 UTC; 08:00 there is before the wishes.
        ("Asia/Tehran", datetime(2027, 3, 14, 5, 30, tzinfo=UTC),
         datetime(2027, 3, 14, 4, 30, tzinfo=UTC)),
        # Los Angeles on its spring-forward day: 09:00 PDT is 16:00 UTC.
        ("America/Los_Angeles", datetime(2027, 3, 14, 16, 0, tzinfo=UTC),
         datetime(2027, 3, 14, 15, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_birthday_wishes_on_the_shops_own_day_once(smtp_sink, zone, morning, night_before):
    from datetime import date

    shop = MerchantFactory(timezone=zone)
    with time_machine.travel(night_before - timedelta(days=1)):
        flow = _flow(shop, trigger="birthday",
                     template=TemplateFactory(merchant=shop, kind="transactional"))  # fmt: skip
    today = CustomerFactory(merchant=shop, birth_date=date(1990, 3, 14))
    CustomerFactory(merchant=shop, birth_date=date(1990, 3, 15))
    with time_machine.travel(night_before):
        assert flow_advance(flow_id=flow.pk) == 0
    with time_machine.travel(morning):
        assert flow_advance(flow_id=flow.pk) == 1
        assert flow_advance(flow_id=flow.pk) == 0  # the day is claimed
        _send_due()
    assert list(Message.objects.values_list("customer_id", "state")) == [(today.pk, "sent")]
    assert len(smtp_sink.wait_for(1)) == 1


def test_a_leap_day_birthday_is_wished_on_feb_28(smtp_sink, shop):
    from datetime import date

    with time_machine.travel(datetime(2027, 2, 27, 12, 0, tzinfo=UTC)):
        flow = _flow(shop, trigger="birthday")
    leap = CustomerFactory(merchant=shop, birth_date=date(2000, 2, 29))
    with time_machine.travel(datetime(2027, 2, 28, 12, 0, tzinfo=UTC)):
        assert flow_advance(flow_id=flow.pk) == 1
    assert Message.objects.get().customer_id == leap.pk


def test_points_expiring_reminders_reach_each_shop_on_its_own_night(smtp_sink):
    """The expiry job runs at each shop's local 02:00: Los Angeles' reminder is written on
    its 4 February, Tehran's on its 5th, an hour apart in UTC; each becomes one message."""
    from loyalty.models import Program
    from loyalty.services.schedule import daily_job_run, programs_due
    from tests.loyalty.factories import ProgramFactory
    from tests.loyalty.test_expiry import _earn

    start = datetime(2027, 1, 10, 10, 0, tzinfo=UTC)
    shops, people = {}, {}
    with time_machine.travel(start, tick=False):
        for zone in ("America/Los_Angeles", "Asia/Tehran"):
            shop = MerchantFactory(timezone=zone)
            program = ProgramFactory(merchant=shop, expiry_mode=Program.Expiry.AFTER_EARNING,
                                     expiry_months=1, reminder_days=7)  # fmt: skip
            template = TemplateFactory(merchant=shop, body_en="{{ points }} points expire soon.")
            _flow(shop, trigger="points_expiring", template=template)
            customer = CustomerFactory(merchant=shop, marketing_consent=True)
            from loyalty.services.ledger import account_for

            _earn(account_for(customer=customer), 40, start, program)
            shops[zone], people[zone] = shop, customer

    def night(at):
        with time_machine.travel(at, tick=False):
            for merchant_id, local_date in programs_due():
                daily_job_run(job="loyalty.expiry", merchant_id=merchant_id, local_date=local_date)
            flows_advance()
            _send_due()

    night(datetime(2027, 2, 4, 22, 0, tzinfo=UTC))  # 14:00 in LA, 01:30 in Tehran
    assert list(Message.objects.values_list("customer_id", flat=True)) == [
        people["America/Los_Angeles"].pk]  # fmt: skip
    night(datetime(2027, 2, 4, 23, 0, tzinfo=UTC))  # 02:30 on the 5th in Tehran
    days = dict(Activity.objects.filter(kind="points.expiring")
                .values_list("merchant__timezone", "data__day"))  # fmt: skip
    assert days == {"America/Los_Angeles": "2027-02-04", "Asia/Tehran": "2027-02-05"}
    assert Message.objects.filter(state="sent").count() == 2
    arrived = smtp_sink.wait_for(2)
    assert all("40 points expire soon." in html_of(m) for m in arrived)
