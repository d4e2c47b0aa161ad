from __future__ import annotations

import factory
from django.utils.timezone import now

from feedback.models import (
    CannedReply,
    Channel,
    Department,
    Feedback,
    Kind,
    Message,
    RoutingRule,
    SlaPolicy,
)
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Department {n}")


class FeedbackFactory(factory.django.DjangoModelFactory):
    """A bare ticket row, as if it came in at `created_at`; services add messages."""

    class Meta:
        model = Feedback

    merchant = factory.SubFactory(MerchantFactory)
    customer = factory.SubFactory(CustomerFactory, merchant=factory.SelfAttribute("..merchant"))
    channel = Channel.PORTAL
    kind = Kind.QUESTION
    subject = factory.Sequence(lambda n: f"Question {n}")
    body = "Where is my order?"
    created_at = factory.LazyFunction(now)
    updated_at = factory.SelfAttribute("created_at")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    feedback = factory.SubFactory(FeedbackFactory)
    merchant = factory.SelfAttribute("feedback.merchant")
    kind = Message.Kind.CUSTOMER
    body = "Hello"
    created_at = factory.LazyFunction(now)


class RoutingRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoutingRule

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    position = factory.Sequence(lambda n: n)


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlaPolicy

    merchant = factory.SubFactory(MerchantFactory)
    priority = "normal"
    first_response_minutes = 240
    resolution_minutes = 960


class CannedReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CannedReply

    merchant = factory.SubFactory(MerchantFactory)
    title = factory.Sequence(lambda n: f"Canned {n}")
    body = "Hello {customer_name}, about {ticket_number}: it is on its way. {agent_name}"
