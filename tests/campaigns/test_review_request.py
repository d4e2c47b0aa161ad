"""A review request a week after delivery: the message carries a signed link, the page it
opens takes a rating and words, and the answer arrives in the inbox as a review, once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils.timezone import now

from campaigns.services.flows import due_claim, flow_save, flows_advance
from campaigns.services.sending import messages_send
from customers.services import CustomerData, order_fulfilment_record, order_ingest
from feedback.models import Feedback
from tests.campaigns.factories import TemplateFactory
from tests.campaigns.smtp_sink import text_of
from tests.customers.factories import order_data
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db
WEEK = 7 * 24 * 60


def _send_due():
    for chunk in due_claim():
        messages_send(message_ids=chunk)


def test_a_review_request_a_week_after_delivery_becomes_one_review(smtp_sink):
    shop = MerchantFactory(name="Kashi Tea")
    body = "How was order {{ order_number }}? {{ review_link }}"
    template = TemplateFactory(merchant=shop, kind="transactional", body_en=body)
    flow_save(merchant=shop, flow=None, actor=None,
              data={"trigger": "review_request", "template": template, "enabled": True,
                    "delay_minutes": WEEK})  # fmt: skip
    person = CustomerData(external_id="ada", email="ada@example.test", first_name="Ada")
    order = order_ingest(merchant=shop, data=order_data("1001", customer=person)).order
    order_fulfilment_record(merchant=shop, source=order.source, external_id="1001",
                            delivered=True)  # fmt: skip
    flows_advance()
    _send_due()
    assert smtp_sink.wait_for(1, seconds=0.3) == []  # a week to go
    with time_machine.travel(now() + timedelta(minutes=WEEK + 1)):
        _send_due()
    [request] = smtp_sink.wait_for(1)
    link = re.search(r"https?://\S+/feedback/review/\S+/", text_of(request)).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    visitor = Client()
    assert visitor.get(f"/{path}").status_code == 200
    answer = visitor.post(f"/{path}", {"rating": "5", "body": "The jasmine tea was lovely."})
    assert 'data-testid="review-thanks"' in answer.content.decode()
    visitor.post(f"/{path}", {"rating": "1", "body": "Sent again"})
    review = Feedback.objects.get(merchant=shop)
    assert (review.kind, review.channel, review.rating) == ("review", "review", 5)
    assert review.customer_id == order.customer_id
    assert review.product_sku == "TEA-1"
    assert "1001" in review.subject


def test_a_review_link_changed_or_of_another_shop_opens_nothing(smtp_sink):
    from feedback.services.reviews import review_link_make

    shop, other = MerchantFactory(), MerchantFactory()
    person = CustomerData(external_id="ada", email="ada@example.test")
    order = order_ingest(merchant=shop, data=order_data("1001", customer=person)).order
    link = review_link_make(order.customer, {"order_id": order.pk})
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    assert Client().get(path[:-4] + "xyz/").status_code == 410
    foreign = path.replace(f"/r/{shop.slug}/", f"/r/{other.slug}/")
    assert Client().post(foreign, {"rating": "5"}).status_code == 410
    assert not Feedback.objects.exists()
