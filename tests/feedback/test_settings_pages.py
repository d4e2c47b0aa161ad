"""The inbox's configuration pages: departments, routing rules, SLA targets, canned
replies and business hours. Managers and owners only; every change audited; another
merchant's rows are not found."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from feedback.models import CannedReply, Department, RoutingRule, SlaPolicy, SupportSettings
from merchants.models import AuditEvent
from tests.feedback.factories import (
    CannedReplyFactory,
    DepartmentFactory,
    RoutingRuleFactory,
    SlaPolicyFactory,
)
from tests.loyalty.factories import TierFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "feedback:department-list",
    "feedback:department-create",
    "feedback:rule-list",
    "feedback:rule-create",
    "feedback:sla-list",
    "feedback:canned-list",
    "feedback:canned-create",
    "feedback:support-settings",
]


@pytest.fixture
def manager(merchant):
    return StaffMemberFactory(merchant=merchant, role="manager", user__full_name="Mona Manager")


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager.user)
    return client


def _audited(merchant, action: str) -> AuditEvent:
    return AuditEvent.objects.filter(merchant=merchant, action=action).latest("pk")


@pytest.mark.parametrize("name", PAGES)
def test_support_agents_may_not_configure_the_inbox(client, merchant, name):
    agent = StaffMemberFactory(merchant=merchant, role="support")
    client.force_login(agent.user)
    assert client.get(reverse(name)).status_code == 403
    assert client.post(reverse(name), {"name": "Mine"}).status_code == 403
    assert not Department.objects.exists()
    assert client.get(reverse("feedback:inbox")).status_code == 200


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_managers_and_owners_open_every_configuration_page(client, merchant, role):
    member = StaffMemberFactory(merchant=merchant, role=role)
    client.force_login(member.user)
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 200, name
    assert 'href="/feedback/departments/"' in client.get(reverse("feedback:inbox")).content.decode()


# --- Departments -------------------------------------------------------------------------------


def test_a_department_is_created_with_members_and_a_default_assignee(
    manager_client, merchant, manager
):
    agent = StaffMemberFactory(merchant=merchant, role="support", user__full_name="Sam Reed")
    response = manager_client.post("/feedback/departments/new/", {
        "name": "Shipping", "members": [agent.pk, manager.pk], "default_assignee": agent.pk,
        "email": "ship@example.test",
    })  # fmt: skip
    assert response.status_code == 302
    department = Department.objects.get(merchant=merchant)
    assert set(department.members.all()) == {agent, manager}
    assert department.default_assignee == agent
    event = _audited(merchant, "feedback.department_saved")
    assert event.after["name"] == "Shipping"
    assert sorted(event.after["members"]) == sorted([agent.pk, manager.pk])
    body = manager_client.get("/feedback/departments/").content.decode()
    assert "Shipping" in body
    assert "Sam Reed" in body
    assert "ship@example.test" in body


def test_a_default_assignee_must_be_a_member_and_staff_must_be_ours(
    manager_client, merchant, manager
):
    agent = StaffMemberFactory(merchant=merchant, role="support")
    stranger = StaffMemberFactory(role="support")

    response = manager_client.post("/feedback/departments/new/", {
        "name": "Shipping", "members": [manager.pk], "default_assignee": agent.pk,
    })  # fmt: skip
    assert "The default assignee must be a member." in response.content.decode()
    response = manager_client.post("/feedback/departments/new/", {
        "name": "Shipping", "members": [stranger.pk],
    })  # fmt: skip
    assert "Select a valid choice" in response.content.decode()
    assert not Department.objects.exists()
    # Only our staff are offered.
    page = manager_client.get("/feedback/departments/new/").content.decode()
    assert f'value="{agent.pk}"' in page
    assert f'value="{stranger.pk}"' not in page


def test_department_names_are_unique_and_edits_are_audited(manager_client, merchant, manager):
    billing = DepartmentFactory(merchant=merchant, name="Billing")
    shipping = DepartmentFactory(merchant=merchant, name="Shipping")
    response = manager_client.post(
        f"/feedback/departments/{shipping.pk}/edit/", {"name": "billing"}
    )
    assert "Another department has this name." in response.content.decode()
    manager_client.post(f"/feedback/departments/{shipping.pk}/edit/",
                        {"name": "Delivery", "members": [manager.pk]})  # fmt: skip
    shipping.refresh_from_db()
    assert shipping.name == "Delivery"
    event = _audited(merchant, "feedback.department_saved")
    assert event.before["name"] == "Shipping"
    assert event.after["name"] == "Delivery"
    billing.refresh_from_db()
    assert billing.name == "Billing"


# --- Routing rules ---------------------------------------------------------------------------


def test_a_rule_saves_every_field(manager_client, merchant):
    tier = TierFactory(merchant=merchant, name="Gold")
    department = DepartmentFactory(merchant=merchant)
    agent = StaffMemberFactory(merchant=merchant, role="support")
    data = {
        "name": "Angry gold", "is_active": "on", "channel": "email", "kind": "complaint",
        "rating_min": 1, "rating_max": 2, "keywords": "refund, broken", "tier": tier.pk,
        "segment": "champions", "category": "Escalation", "department": department.pk,
        "priority": "urgent", "assignee": agent.pk,
    }  # fmt: skip
    response = manager_client.post("/feedback/rules/new/", data)
    assert response.status_code == 302, response.content.decode()
    rule = RoutingRule.objects.get(merchant=merchant)
    assert (rule.name, rule.is_active, rule.channel, rule.kind) == (
        "Angry gold",
        True,
        "email",
        "complaint",
    )
    assert (rule.rating_min, rule.rating_max, rule.keywords) == (1, 2, "refund, broken")
    assert (rule.tier, rule.segment, rule.category) == (tier, "champions", "Escalation")
    assert (rule.department, rule.priority, rule.assignee) == (department, "urgent", agent)
    assert _audited(merchant, "feedback.rule_saved").after["keywords"] == "refund, broken"

    # Disabled by unticking "active".
    manager_client.post(f"/feedback/rules/{rule.pk}/edit/", {**data, "is_active": ""})
    rule.refresh_from_db()
    assert rule.is_active is False
    assert "Off" in manager_client.get("/feedback/rules/").content.decode()


def test_a_rule_refuses_a_backwards_rating_range_and_foreign_rows(manager_client, merchant):
    response = manager_client.post(
        "/feedback/rules/new/", {"name": "Odd", "rating_min": 4, "rating_max": 2}
    )
    assert "At most must not be below at least." in response.content.decode()
    for field, foreign in (
        ("tier", TierFactory().pk),
        ("department", DepartmentFactory().pk),
        ("assignee", StaffMemberFactory(role="support").pk),
    ):
        response = manager_client.post("/feedback/rules/new/", {"name": "X", field: foreign})
        assert "Select a valid choice" in response.content.decode(), field
    assert not RoutingRule.objects.exists()


def test_rules_move_up_and_down(manager_client, merchant):
    first = RoutingRuleFactory(merchant=merchant, name="First", position=0)
    second = RoutingRuleFactory(merchant=merchant, name="Second", position=1)
    third = RoutingRuleFactory(merchant=merchant, name="Third", position=2)

    def order():
        body = manager_client.get("/feedback/rules/").content.decode()
        return [int(pk) for pk in re.findall(r'data-rule="(\d+)"', body)]

    assert order() == [first.pk, second.pk, third.pk]
    manager_client.post(f"/feedback/rules/{third.pk}/move/", {"direction": "up"})
    assert order() == [first.pk, third.pk, second.pk]
    manager_client.post(f"/feedback/rules/{first.pk}/move/", {"direction": "down"})
    assert order() == [third.pk, first.pk, second.pk]
    manager_client.post(f"/feedback/rules/{third.pk}/move/", {"direction": "up"})  # top already
    assert order() == [third.pk, first.pk, second.pk]
    assert AuditEvent.objects.filter(merchant=merchant, action="feedback.rule_moved").count() == 2
    # A new rule goes last.
    manager_client.post("/feedback/rules/new/", {"name": "Fourth", "is_active": "on"})
    assert order()[-1] == RoutingRule.objects.get(name="Fourth").pk


# --- SLA ------------------------------------------------------------------------------------


def test_the_sla_page_edits_all_four_priorities(manager_client, merchant):
    SlaPolicyFactory(merchant=merchant, priority="low", first_response_minutes=600,
                     resolution_minutes=2400)  # fmt: skip
    page = manager_client.get("/feedback/sla/").content.decode()
    assert 'name="low_first"' in page
    assert 'value="600"' in page
    assert all(f'name="{p}_resolution"' in page for p in ("low", "normal", "high", "urgent"))

    response = manager_client.post("/feedback/sla/", {
        "low_first": "", "low_resolution": "",
        "normal_first": 240, "normal_resolution": 960,
        "high_first": 60, "high_resolution": 480,
        "urgent_first": 15, "urgent_resolution": 120,
    })  # fmt: skip

    assert response.status_code == 302
    assert dict(
        SlaPolicy.objects.filter(merchant=merchant).values_list(
            "priority", "first_response_minutes"
        )
    ) == {"normal": 240, "high": 60, "urgent": 15}
    event = _audited(merchant, "feedback.sla_saved")
    assert event.before == {"low": [600, 2400]}
    assert event.after["urgent"] == [15, 120]


def test_the_sla_page_names_targets_that_dont_add_up(manager_client, merchant):
    response = manager_client.post("/feedback/sla/", {
        "normal_first": 240, "normal_resolution": "", "high_first": 120, "high_resolution": 60,
        "urgent_first": 0, "urgent_resolution": 10,
    })  # fmt: skip
    body = response.content.decode()
    assert "Give both targets, or neither." in body
    assert "Resolution can&#x27;t be due before the first response." in body
    assert "greater than or equal to 1" in body
    assert not SlaPolicy.objects.exists()


# --- Canned replies ----------------------------------------------------------------------------


def test_canned_replies_are_created_edited_and_removed(manager_client, merchant):
    department = DepartmentFactory(merchant=merchant, name="Shipping")
    page = manager_client.get("/feedback/canned/new/").content.decode()
    for name in ("customer_name", "ticket_number", "agent_name", "merchant_name"):
        assert f"{{{name}}}" in page

    manager_client.post("/feedback/canned/new/", {
        "title_en": "Delayed", "department": department.pk, "body_en": "Hi {customer_name}",
    })  # fmt: skip
    canned = CannedReply.objects.get(merchant=merchant)
    assert (canned.title, canned.department) == ("Delayed", department)
    manager_client.post(f"/feedback/canned/{canned.pk}/edit/",
                        {"title_en": "Delayed", "department": "", "body_en": "Hello"})  # fmt: skip
    canned.refresh_from_db()
    assert canned.department is None
    assert canned.body == "Hello"
    listing = manager_client.get("/feedback/canned/").content.decode()
    assert "All departments" in listing

    assert manager_client.get(f"/feedback/canned/{canned.pk}/delete/").status_code == 200
    manager_client.post(f"/feedback/canned/{canned.pk}/delete/")
    assert not CannedReply.objects.exists()
    assert _audited(merchant, "feedback.canned_deleted").before["title"] == "Delayed"


def test_a_canned_reply_refuses_another_merchants_department(manager_client):
    response = manager_client.post("/feedback/canned/new/", {
        "title_en": "X", "department": DepartmentFactory().pk, "body_en": "Y",
    })  # fmt: skip
    assert "Select a valid choice" in response.content.decode()
    assert not CannedReply.objects.exists()


# --- Business hours -----------------------------------------------------------------------------


def test_business_hours_are_saved_and_the_inbound_secret_is_shown(manager_client, merchant):
    page = manager_client.get("/feedback/settings/").content.decode()
    hours = SupportSettings.objects.get(merchant=merchant)
    assert hours.inbound_secret
    assert hours.inbound_secret in page
    assert f"http://testserver/hooks/email/{merchant.slug}/" in page

    response = manager_client.post("/feedback/settings/", {
        "working_days": [1, 2, 3, 4, 5, 6], "day_starts": "08:30", "day_ends": "18:00",
        "close_after_days": 5,
    })  # fmt: skip

    assert response.status_code == 302
    hours.refresh_from_db()
    assert hours.working_days == [1, 2, 3, 4, 5, 6]
    assert (str(hours.day_starts), str(hours.day_ends)) == ("08:30:00", "18:00:00")
    assert hours.close_after_days == 5
    event = _audited(merchant, "feedback.hours_saved")
    assert event.before["working_days"] == [1, 2, 3, 4, 5]
    assert event.after["working_days"] == [1, 2, 3, 4, 5, 6]


def test_business_hours_refuse_no_days_and_an_empty_day(manager_client, merchant):
    response = manager_client.post("/feedback/settings/", {
        "day_starts": "09:00", "day_ends": "09:00", "close_after_days": 0,
    })  # fmt: skip
    body = response.content.decode()
    assert "This field is required." in body
    assert "The day must end at another time than it starts." in body
    assert "greater than or equal to 1" in body


# --- Another merchant's rows ---------------------------------------------------------------------


def test_another_merchants_rows_are_not_found(manager_client, other_merchant):
    department = DepartmentFactory(merchant=other_merchant, name="Theirs")
    rule = RoutingRuleFactory(merchant=other_merchant, name="Theirs")
    canned = CannedReplyFactory(merchant=other_merchant, title="Theirs")
    for url in (
        f"/feedback/departments/{department.pk}/edit/",
        f"/feedback/rules/{rule.pk}/edit/",
        f"/feedback/rules/{rule.pk}/move/",
        f"/feedback/canned/{canned.pk}/edit/",
        f"/feedback/canned/{canned.pk}/delete/",
    ):
        assert manager_client.get(url).status_code == 404, url
        assert manager_client.post(url, {"name": "Ours", "title": "Ours", "body": "x",
                                         "direction": "up"}).status_code == 404, url  # fmt: skip
    department.refresh_from_db()
    rule.refresh_from_db()
    assert department.name == rule.name == "Theirs"
    assert CannedReply.objects.get(pk=canned.pk).title == "Theirs"
    for name in ("department-list", "rule-list", "canned-list"):
        assert "Theirs" not in manager_client.get(reverse(f"feedback:{name}")).content.decode()
