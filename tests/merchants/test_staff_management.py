from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail

from merchants.models import AuditEvent, StaffMember, User
from merchants.roles import Role
from tests.merchants.factories import StaffMemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_owner_invites_a_new_person_who_chooses_a_password_and_signs_in(
    owner_client, owner, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/merchants/staff/invite/", {"email": "New.Person@Shop.test", "role": "marketer"}
        )

    assert response.status_code == 302
    member = StaffMember.objects.get(merchant=owner.merchant, user__email="new.person@shop.test")
    assert member.role == Role.MARKETER
    assert member.invited_by == owner.user
    assert len(mail.outbox) == 1
    assert owner.merchant.name in mail.outbox[0].subject
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    audit = AuditEvent.objects.get(action=AuditEvent.Action.STAFF_INVITED)
    assert audit.after == {"email": "new.person@shop.test", "role": "marketer"}
    assert audit.actor == owner.user

    owner_client.logout()
    form_page = client.get(link, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "my-own-passphrase-9", "new_password2": "my-own-passphrase-9"},
    )
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "Marketer" in dashboard.content.decode()


def test_inviting_someone_already_on_regulars_adds_them_without_a_password_link(
    owner_client, owner, django_capture_on_commit_callbacks
):
    existing = StaffMemberFactory(role=Role.OWNER).user
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post("/merchants/staff/invite/", {"email": existing.email, "role": "analyst"})

    assert StaffMember.objects.filter(user=existing).count() == 2
    assert "/accounts/login/" in mail.outbox[0].body
    assert "/accounts/reset/" not in mail.outbox[0].body


def test_inviting_a_team_member_twice_names_the_problem_and_writes_nothing(owner_client, owner):
    member = StaffMemberFactory(merchant=owner.merchant, role=Role.SUPPORT)
    before = StaffMember.objects.count(), AuditEvent.objects.count()

    response = owner_client.post(
        "/merchants/staff/invite/", {"email": member.user.email, "role": "manager"}
    )

    assert response.status_code == 200
    assert "already on this team" in response.content.decode()
    assert (StaffMember.objects.count(), AuditEvent.objects.count()) == before
    assert mail.outbox == []


def test_invalid_invite_fields_are_named(owner_client):
    response = owner_client.post(
        "/merchants/staff/invite/", {"email": "not-an-email", "role": "boss"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid email address." in body
    assert "Select a valid choice." in body
    assert User.objects.filter(email="not-an-email").count() == 0


def test_role_change_by_htmx_answers_with_the_row_and_is_audited(owner_client, owner):
    member = StaffMemberFactory(merchant=owner.merchant, role=Role.SUPPORT)

    response = owner_client.post(
        f"/merchants/staff/{member.pk}/edit/",
        {f"m{member.pk}-role": "manager"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith(f'<tr id="staff-{member.pk}">')
    assert "Saved" in body
    member.refresh_from_db()
    assert member.role == Role.MANAGER
    audit = AuditEvent.objects.get(action=AuditEvent.Action.STAFF_ROLE_CHANGED)
    assert (audit.before, audit.after) == ({"role": "support"}, {"role": "manager"})


def test_the_last_owner_cannot_be_demoted_or_removed(owner_client, owner):
    response = owner_client.post(
        f"/merchants/staff/{owner.pk}/edit/",
        {f"m{owner.pk}-role": "analyst"},
        HTTP_HX_REQUEST="true",
    )
    assert "at least one owner" in response.content.decode()
    owner_client.post(f"/merchants/staff/{owner.pk}/remove/")
    owner.refresh_from_db()
    assert owner.role == Role.OWNER

    second_owner = StaffMemberFactory(merchant=owner.merchant, role=Role.OWNER)
    owner_client.post(f"/merchants/staff/{second_owner.pk}/remove/")
    assert not StaffMember.objects.filter(pk=second_owner.pk).exists()


def test_removed_staff_lose_access_at_their_next_request(client, owner):
    member = StaffMemberFactory(merchant=owner.merchant, role=Role.MANAGER)
    client.force_login(member.user)
    assert client.get("/").status_code == 200

    StaffMember.objects.filter(pk=member.pk).delete()

    response = client.get("/")
    assert response.status_code == 403
    assert owner.merchant.name not in response.content.decode()


def test_removal_is_audited_with_who_it_was(owner_client, owner):
    member = StaffMemberFactory(merchant=owner.merchant, role=Role.SUPPORT)
    owner_client.post(f"/merchants/staff/{member.pk}/remove/")
    audit = AuditEvent.objects.get(action=AuditEvent.Action.STAFF_REMOVED)
    assert audit.before == {"email": member.user.email, "role": "support"}
    assert audit.merchant == owner.merchant


def test_staff_page_lists_only_this_merchants_team(owner_client, owner, other_merchant):
    StaffMemberFactory(merchant=other_merchant, user=UserFactory(email="elsewhere@other.test"))
    body = owner_client.get("/merchants/staff/").content.decode()
    assert owner.user.email in body
    assert "elsewhere@other.test" not in body


def test_merchant_settings_are_saved_and_audited(owner_client, owner):
    response = owner_client.post(
        "/merchants/settings/",
        {
            "name": "Renamed Shop",
            "base_currency": "EUR",
            "timezone": "Asia/Tehran",
            "default_language": "fa",
            "calendar": "solar_hijri",
            "brand_color": "#112233",
            "reply_to_email": "help@renamed.test",
        },
    )
    assert response.status_code == 302
    owner.merchant.refresh_from_db()
    assert owner.merchant.name == "Renamed Shop"
    assert owner.merchant.timezone == "Asia/Tehran"
    audit = AuditEvent.objects.get(action=AuditEvent.Action.SETTINGS_CHANGED)
    assert audit.before["name"].startswith("Shop ")
    assert audit.after["name"] == "Renamed Shop"
    assert "slug" not in audit.after
    assert (audit.before["calendar"], audit.after["calendar"]) == ("gregorian", "solar_hijri")


def test_a_shop_on_the_solar_hijri_calendar_reads_its_dashboard_dates_in_it(owner_client, owner):
    """Staff read every date of the merchant in its calendar, in their own language's
    format: 3 December 2026 is 12 Azar 1405; a merchant that keeps the Gregorian calendar
    is untouched."""
    from datetime import UTC, date, datetime

    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(merchant=owner.merchant, birth_date=date(1990, 3, 21),
                               first_order_at=datetime(2026, 12, 3, 9, tzinfo=UTC))  # fmt: skip
    page = owner_client.get(f"/customers/{customer.pk}/").content.decode()
    assert "12/03/2026" in page or "12/3/2026" in page

    owner.merchant.calendar = "solar_hijri"
    owner.merchant.save(update_fields=["calendar"])
    page = owner_client.get(f"/customers/{customer.pk}/").content.decode()
    assert "09/12/1405" in page  # en's short date, m/d/Y
    assert "01/01/1369" in page  # born on Nowruz
    assert "2026" not in re.sub(r'<time[^>]*datetime="[^"]*"', "", page)
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"  # her language, as signing in sets
    page = owner_client.get(f"/customers/{customer.pk}/").content.decode()
    assert "1405/9/12" in page


def test_bad_settings_are_named_and_nothing_is_saved(owner_client, owner):
    name_before = owner.merchant.name
    response = owner_client.post(
        "/merchants/settings/",
        {
            "name": "",
            "base_currency": "XXX",
            "timezone": "Mars/Olympus",
            "default_language": "en",
            "calendar": "julian",
            "brand_color": "#a;}b{c",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("is-invalid") >= 5
    assert "six hex digits" in body
    owner.merchant.refresh_from_db()
    assert owner.merchant.name == name_before
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SETTINGS_CHANGED).exists()


def test_staff_in_two_merchants_switch_between_them(client):
    first = StaffMemberFactory(role=Role.OWNER)
    second = StaffMemberFactory(user=first.user, role=Role.ANALYST)
    client.force_login(first.user)

    client.post("/merchants/switch/", {"merchant": second.merchant_id})
    page = client.get("/").content.decode()
    assert f'data-testid="merchant-name">{second.merchant.name}<' in page
    assert client.get("/merchants/staff/").status_code == 403, "an analyst there"

    client.post("/merchants/switch/", {"merchant": first.merchant_id})
    assert client.get("/merchants/staff/").status_code == 200


def test_switching_to_a_merchant_you_are_not_staff_of_does_nothing(client, owner, other_merchant):
    client.force_login(owner.user)
    response = client.post("/merchants/switch/", {"merchant": other_merchant.pk}, follow=True)
    body = response.content.decode()
    assert "not on that merchant" in body
    assert f'data-testid="merchant-name">{owner.merchant.name}<' in body


def test_audit_log_pages_and_filters_by_action(owner_client, owner):
    for n in range(60):
        AuditEvent.objects.create(
            merchant=owner.merchant, action="staff.invited", object_repr=f"person-{n}@x.test"
        )
    AuditEvent.objects.create(
        merchant=owner.merchant, action="settings.changed", object_repr="the-settings"
    )

    first_page = owner_client.get("/merchants/audit/").content.decode()
    assert "Page 1 of 2" in first_page
    filtered = owner_client.get("/merchants/audit/?action=settings.changed").content.decode()
    assert "the-settings" in filtered
    assert "person-1@x.test" not in filtered


def test_audit_events_cannot_be_edited_or_deleted(owner):
    event = AuditEvent.objects.create(merchant=owner.merchant, action="settings.changed")
    event.object_repr = "tampered"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
