from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from merchants.models import AuditEvent, User
from tests.merchants.factories import TEST_PASSWORD, StaffMemberFactory, UserFactory

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"


def _sign_in(client, email: str, password: str = TEST_PASSWORD, **extra):
    return client.post(LOGIN, {"username": email, "password": password}, **extra)


def test_staff_sign_in_with_email_in_any_case_and_lands_on_dashboard(client):
    member = StaffMemberFactory(user=UserFactory(email="olivia@shop.test"))

    response = _sign_in(client, "  Olivia@Shop.TEST ")

    assert response.status_code == 302
    assert response.url == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert member.merchant.name in page.content.decode()


def test_passwords_are_stored_with_argon2():
    user = UserFactory()
    assert user.password.startswith("argon2")
    assert TEST_PASSWORD not in user.password


def test_wrong_password_is_refused_and_audited_for_each_merchant_of_that_email(client):
    member = StaffMemberFactory()
    second = StaffMemberFactory(user=member.user)

    response = _sign_in(client, member.user.email, "wrong-password", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 200
    assert "don&#x27;t match an account" in response.content.decode()
    events = AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED)
    assert {e.merchant_id for e in events} == {member.merchant_id, second.merchant_id}
    assert {e.ip_address for e in events} == {"203.0.113.9"}
    assert {e.actor_label for e in events} == {member.user.email}


def test_unknown_email_failure_is_audited_without_a_merchant(client):
    _sign_in(client, "nobody@nowhere.test", "whatever")
    event = AuditEvent.objects.get(action=AuditEvent.Action.SIGN_IN_FAILED)
    assert event.merchant is None
    assert event.actor_label == "nobody@nowhere.test"


def test_five_failures_lock_the_email_even_with_the_right_password(client):
    member = StaffMemberFactory()
    for _ in range(5):
        _sign_in(client, member.user.email, "wrong")

    response = _sign_in(client, member.user.email, TEST_PASSWORD)

    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.SIGN_IN_LOCKED, merchant=member.merchant
    ).exists()


def test_lockout_ends_after_fifteen_minutes(client):
    member = StaffMemberFactory()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(5):
            _sign_in(client, member.user.email, "wrong")
        assert _sign_in(client, member.user.email).status_code == 429
        traveller.shift(timedelta(minutes=16))
        assert _sign_in(client, member.user.email).status_code == 302


def test_staff_are_signed_out_after_thirty_idle_minutes(client):
    member = StaffMemberFactory()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.force_login(member.user)
        assert client.get("/").status_code == 200
        traveller.shift(timedelta(minutes=29))
        assert client.get("/").status_code == 200, "activity within 30 minutes keeps the session"
        traveller.shift(timedelta(minutes=29))
        assert client.get("/").status_code == 200, "the clock restarts at each request"
        traveller.shift(timedelta(minutes=31))
        response = client.get("/merchants/audit/")

    assert response.status_code == 302
    assert response.url == f"{LOGIN}?next=/merchants/audit/"
    assert "_auth_user_id" not in client.session
    page = client.get(response.url)
    assert "signed out after 30 minutes" in page.content.decode()


def test_idle_htmx_request_is_redirected_by_header(client):
    member = StaffMemberFactory()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.force_login(member.user)
        client.get("/")
        traveller.shift(timedelta(minutes=31))
        response = client.get("/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(LOGIN)


def test_sign_out_takes_a_post_and_ends_the_session(client):
    member = StaffMemberFactory()
    client.force_login(member.user)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_password_reset_by_email_sets_a_new_password(client):
    member = StaffMemberFactory()

    response = client.post("/accounts/password-reset/", {"email": member.user.email.upper()})

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert "Choose a password" in form_page.content.decode()
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"},
    )
    assert response.status_code == 302
    client.logout()
    assert _sign_in(client, member.user.email, "a-brand-new-passphrase").status_code == 302
    # The link works once.
    reused = client.get(link, follow=True)
    assert "This link no longer works" in reused.content.decode()


def test_password_reset_for_unknown_email_answers_the_same(client):
    response = client.post("/accounts/password-reset/", {"email": "nobody@nowhere.test"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert mail.outbox == []


def test_user_without_a_merchant_sees_why(client):
    user = UserFactory()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 403
    assert "not on any store" in response.content.decode()


def test_emails_are_unique_whatever_their_case():
    UserFactory(email="same@shop.test")
    assert User.objects.filter(email="same@shop.test").count() == 1
    with pytest.raises(Exception):  # noqa: B017, PT011 - the database refuses it
        User.objects.create(email="SAME@shop.test")
