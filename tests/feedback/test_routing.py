"""Routing rules: the first active rule whose conditions all hold sets the ticket's
category, department, priority and assignee; nothing matching leaves it in triage."""

from __future__ import annotations

import pytest

from customers.models import Segment
from feedback.models import Channel, Feedback, Kind
from feedback.services.routing import feedback_route
from loyalty.models import PointsAccount
from loyalty.services.ledger import account_for
from tests.customers.factories import CustomerFactory
from tests.feedback.factories import DepartmentFactory, FeedbackFactory, RoutingRuleFactory
from tests.loyalty.factories import TierFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(merchant):
    return CustomerFactory(merchant=merchant)


def new_ticket(merchant, customer=None, **fields) -> Feedback:
    """An unsaved ticket, as the intake services route it before the first save."""
    return FeedbackFactory.build(merchant=merchant, customer=customer, **fields)


def test_of_two_matching_rules_the_lower_position_wins(merchant, customer):
    billing = DepartmentFactory(merchant=merchant, name="Billing")
    sales = DepartmentFactory(merchant=merchant, name="Sales")
    RoutingRuleFactory(merchant=merchant, position=5, department=sales, category="sales")
    first = RoutingRuleFactory(merchant=merchant, position=1, department=billing, category="bills")
    ticket = new_ticket(merchant, customer)
    assert feedback_route(feedback=ticket) == first
    assert (ticket.department, ticket.category) == (billing, "bills")


def test_equal_positions_go_in_the_order_the_rules_were_made(merchant, customer):
    older = RoutingRuleFactory(merchant=merchant, position=0, category="older")
    RoutingRuleFactory(merchant=merchant, position=0, category="newer")
    assert feedback_route(feedback=new_ticket(merchant, customer)) == older


def test_a_disabled_rule_is_skipped(merchant, customer):
    RoutingRuleFactory(merchant=merchant, position=0, is_active=False, category="off")
    on = RoutingRuleFactory(merchant=merchant, position=1, category="on")
    ticket = new_ticket(merchant, customer)
    assert feedback_route(feedback=ticket) == on
    assert ticket.category == "on"


def test_another_merchants_rules_never_route(merchant, other_merchant, customer):
    RoutingRuleFactory(merchant=other_merchant, category="theirs")
    ticket = new_ticket(merchant, customer)
    assert feedback_route(feedback=ticket) is None
    assert ticket.category == ""


def test_unmatched_feedback_stays_in_triage(merchant, customer):
    sales = DepartmentFactory(merchant=merchant)
    RoutingRuleFactory(merchant=merchant, channel=Channel.EMAIL, department=sales)
    ticket = new_ticket(merchant, customer, channel=Channel.PORTAL, priority="normal")
    assert feedback_route(feedback=ticket) is None
    assert ticket.department is None
    assert ticket.assignee is None
    assert ticket.priority == "normal"


def test_channel_and_kind_must_both_hold(merchant, customer):
    RoutingRuleFactory(merchant=merchant, channel=Channel.EMAIL, kind=Kind.COMPLAINT)
    assert feedback_route(
        feedback=new_ticket(merchant, customer, channel="email", kind="complaint")
    )
    assert not feedback_route(
        feedback=new_ticket(merchant, customer, channel="email", kind="praise")
    )
    assert not feedback_route(
        feedback=new_ticket(merchant, customer, channel="portal", kind="complaint")
    )


@pytest.mark.parametrize(
    ("rating", "routed"), [(1, True), (2, True), (3, False), (5, False), (None, False)]
)
def test_rating_within_bounds(merchant, customer, rating, routed):
    RoutingRuleFactory(merchant=merchant, rating_min=1, rating_max=2, priority="high")
    ticket = new_ticket(merchant, customer, rating=rating)
    assert (feedback_route(feedback=ticket) is not None) is routed
    assert ticket.priority == ("high" if routed else "normal")


def test_rating_floor_alone(merchant, customer):
    RoutingRuleFactory(merchant=merchant, rating_min=4)
    assert feedback_route(feedback=new_ticket(merchant, customer, rating=5))
    assert not feedback_route(feedback=new_ticket(merchant, customer, rating=3))


@pytest.mark.parametrize(
    ("keywords", "subject", "body", "routed"),
    [
        # English, any case, comma or line separated.
        ("refund, money back", "Want my MONEY BACK", "", True),
        ("refund\nexchange", "Hello", "Can I Exchange it?", True),
        ("refund", "Hello", "Where is my parcel?", False),
        # Persian rule (ی, ک) against text typed on an Arabic keyboard (ي, ك).
        ("کیک", "", "الكيك كان سيئا", True),
        # Arabic rule (ي, ك, ة) against Persian letters.
        ("كيكة", "کیکه خراب بود", "", True),
        # Harakat and tatweel in the text do not hide a word.
        ("شكوى", "شَكْوَى", "", True),
        ("شكوى", "شـــكوى", "", True),
        # A Persian list separated by the Arabic comma.
        ("تاخیر، بازپرداخت", "درخواست بازپرداخت", "", True),
        # Persian words with or without the zero-width non-joiner.
        ("می\u200cخواهم", "میخواهم پول را پس بگیرم", "", True),
        # Russian: case, and yo written as ye.
        ("ёлка", "ЕЛКА пришла сломанной", "", True),
        ("возврат", "Хочу ВОЗВРАТ денег", "", True),
        ("возврат", "Спасибо", "всё хорошо", False),
        # Only separators: no keyword condition at all.
        (" , \n", "Anything", "", True),
    ],
)
def test_keywords_in_any_language(merchant, customer, keywords, subject, body, routed):
    RoutingRuleFactory(merchant=merchant, keywords=keywords, category="matched")
    ticket = new_ticket(merchant, customer, subject=subject, body=body)
    assert (feedback_route(feedback=ticket) is not None) is routed
    assert ticket.category == ("matched" if routed else "")


def test_tier_is_the_customers_current_loyalty_tier(merchant, customer):
    silver = TierFactory(merchant=merchant, name="Silver")
    gold = TierFactory(merchant=merchant, name="Gold")
    account_for(customer=customer)
    PointsAccount.objects.filter(customer=customer).update(tier=gold)
    RoutingRuleFactory(merchant=merchant, position=0, tier=silver, category="silver")
    RoutingRuleFactory(merchant=merchant, position=1, tier=gold, category="gold")
    ticket = new_ticket(merchant, customer)
    feedback_route(feedback=ticket)
    assert ticket.category == "gold"


def test_a_tier_rule_fails_without_customer_or_tier(merchant, customer):
    gold = TierFactory(merchant=merchant)
    RoutingRuleFactory(merchant=merchant, tier=gold)
    assert feedback_route(feedback=new_ticket(merchant, None, sender_email="a@b.test")) is None
    assert feedback_route(feedback=new_ticket(merchant, customer)) is None  # no points account
    account_for(customer=customer)
    assert feedback_route(feedback=new_ticket(merchant, customer)) is None  # no tier yet


def test_segment_rule(merchant):
    champion = CustomerFactory(merchant=merchant, segment=Segment.CHAMPIONS)
    lost = CustomerFactory(merchant=merchant, segment=Segment.LOST)
    RoutingRuleFactory(merchant=merchant, segment=Segment.CHAMPIONS, priority="urgent")
    assert feedback_route(feedback=new_ticket(merchant, champion))
    assert not feedback_route(feedback=new_ticket(merchant, lost))
    assert not feedback_route(feedback=new_ticket(merchant, None))


def test_segment_is_read_when_the_customer_is_not_loaded(merchant):
    champion = CustomerFactory(merchant=merchant, segment=Segment.CHAMPIONS)
    RoutingRuleFactory(merchant=merchant, segment=Segment.CHAMPIONS)
    ticket = FeedbackFactory(merchant=merchant, customer=champion)
    stored = Feedback.objects.get(pk=ticket.pk)
    assert feedback_route(feedback=stored)


def test_department_default_assignee_takes_the_ticket(merchant, customer):
    agent = StaffMemberFactory(merchant=merchant, role="support")
    billing = DepartmentFactory(merchant=merchant, default_assignee=agent)
    RoutingRuleFactory(merchant=merchant, department=billing, priority="high", category="bills")
    ticket = new_ticket(merchant, customer)
    feedback_route(feedback=ticket)
    assert ticket.department == billing
    assert ticket.assignee == agent
    assert ticket.priority == "high"
    assert ticket.category == "bills"


def test_the_rules_own_assignee_beats_the_department_default(merchant, customer):
    default = StaffMemberFactory(merchant=merchant, role="support")
    chosen = StaffMemberFactory(merchant=merchant, role="support")
    billing = DepartmentFactory(merchant=merchant, default_assignee=default)
    RoutingRuleFactory(merchant=merchant, department=billing, assignee=chosen)
    ticket = new_ticket(merchant, customer)
    feedback_route(feedback=ticket)
    assert ticket.assignee == chosen


def test_routing_reads_at_most_two_queries(merchant, django_assert_max_num_queries):
    champion = CustomerFactory(merchant=merchant, segment=Segment.CHAMPIONS)
    gold = TierFactory(merchant=merchant)
    account_for(customer=champion)
    PointsAccount.objects.filter(customer=champion).update(tier=gold)
    agent = StaffMemberFactory(merchant=merchant, role="support")
    department = DepartmentFactory(merchant=merchant, default_assignee=agent)
    for position in range(5):
        RoutingRuleFactory(merchant=merchant, position=position, tier=gold, keywords="nothing")
    RoutingRuleFactory(merchant=merchant, position=9, tier=gold, segment=Segment.CHAMPIONS,
                       department=department)  # fmt: skip
    ticket = Feedback.objects.get(pk=FeedbackFactory(merchant=merchant, customer=champion).pk)
    with django_assert_max_num_queries(2):
        feedback_route(feedback=ticket)
        assert ticket.department == department
        assert ticket.assignee.user.email == agent.user.email
