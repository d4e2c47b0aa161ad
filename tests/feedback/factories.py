from __future__ import annotations

from datetime import timedelta

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


# Metrics tests build cycles, breaches and surveys by hand with explicit times. Models are
# named by label so the model import list above, which other factories share, stays put.
class CycleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Cycle"

    feedback = factory.SubFactory(FeedbackFactory)
    merchant = factory.SelfAttribute("feedback.merchant")
    number = 1
    started_at = factory.SelfAttribute("feedback.created_at")


class SlaBreachFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.SlaBreach"

    feedback = factory.SubFactory(FeedbackFactory)
    merchant = factory.SelfAttribute("feedback.merchant")
    target = "first_response"
    cycle = 1
    due_at = factory.LazyFunction(now)
    breached_at = factory.SelfAttribute("due_at")


class CsatSurveyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.CsatSurvey"

    feedback = factory.SubFactory(FeedbackFactory)
    merchant = factory.SelfAttribute("feedback.merchant")
    cycle = 1
    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    sent_at = factory.LazyFunction(now)
    expires_at = factory.LazyAttribute(lambda survey: survey.sent_at + timedelta(days=14))
