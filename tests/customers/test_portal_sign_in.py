"""Customers signing in to their rewards page: magic links by email and signed links from
the storefront, over the real views."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils.timezone import now

from customers.models import Activity, PortalSignIn
from customers.portal import COOKIE
from customers.services.portal import (
    LINKS_PER_EMAIL,
    magic_link_make,
    portal_sign_ins_purge,
    storefront_link_make,
    storefront_signature,
)
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ask(client, merchant, django_capture_on_commit_callbacks):
    """Asks for a link as the sign-in page does. The email goes out from a Celery task
    queued on commit; here it runs when the request's transaction ends."""
    from config.celery import app

    def post(email: str, **extra):
        app.conf.task_always_eager = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                return client.post(_sign_in(merchant), {"email": email}, **extra)
        finally:
            app.conf.task_always_eager = False

    return post


@pytest.fixture
def customer(merchant):
    return CustomerFactory(
        merchant=merchant, email="rana@example.com", first_name="Rana", external_id="shop-77"
    )


def _home(merchant) -> str:
    return reverse("portal:home", kwargs={"merchant_slug": merchant.slug})


def _sign_in(merchant) -> str:
    return reverse("portal:sign-in", kwargs={"merchant_slug": merchant.slug})


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _path(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def test_the_page_sends_strangers_to_sign_in(client, merchant):
    response = client.get(_home(merchant))
    assert response.status_code == 302
    assert response["Location"] == _sign_in(merchant)


def test_an_unknown_shop_is_not_found(client, db):
    assert client.get("/r/no-such-shop/").status_code == 404
    assert client.get("/r/no-such-shop/sign-in/").status_code == 404


def test_asking_for_a_link_emails_one_that_signs_in_once(client, ask, merchant, customer):
    response = ask(" Rana@Example.com ")

    assert response.status_code == 200
    assert "a sign-in link is on its way" in _text(response)
    (message,) = mail.outbox
    assert message.to == ["rana@example.com"]
    assert merchant.name in message.subject
    assert merchant.name in message.from_email
    link = _path(re.search(r"https?://\S+", message.body).group(0))
    assert Activity.objects.filter(customer=customer, kind=Activity.Kind.EMAIL_SENT).exists()

    # Opening it asks for a press (mail scanners open links); the press signs in.
    opened = client.get(link)
    assert opened.status_code == 200
    assert "Continue to my rewards" in _text(opened)
    assert client.get(_home(merchant)).status_code == 302  # not signed in by the opening
    pressed = client.post(link)
    assert pressed.status_code == 302
    assert client.get(_home(merchant)).status_code == 200

    client.cookies.pop(COOKIE)
    again = client.post(link)
    assert again.status_code == 410
    assert "already used" in _text(again)
    assert COOKIE not in again.cookies or not again.cookies[COOKIE].value


def test_unknown_and_known_emails_get_the_same_answer(client, ask, merchant, customer):
    known = ask("rana@example.com")
    unknown = ask("nobody@example.com")

    def text(response):
        # Less what differs on every page (tokens, nonces) and the address itself.
        page = response.content.decode().replace("rana@example.com", "X")
        return re.sub(
            r'(value=|nonce=|Token": )"[^"]+"', "", page.replace("nobody@example.com", "X")
        )

    assert known.status_code == unknown.status_code == 200
    assert text(known) == text(unknown)
    assert len(mail.outbox) == 1  # only the customer got one


def test_a_customer_of_another_shop_gets_no_link(client, ask, merchant, other_merchant):
    CustomerFactory(merchant=other_merchant, email="elsewhere@example.com")
    ask("elsewhere@example.com")
    assert mail.outbox == []


def test_a_bad_email_names_the_field(client, ask, merchant):
    response = ask("not-an-email")
    assert response.status_code == 400
    assert "Enter a valid email address" in _text(response)


def test_links_are_rate_limited_per_email_and_per_address(client, ask, merchant, customer):
    for _ in range(LINKS_PER_EMAIL):
        assert ask("rana@example.com").status_code == 200
    refused = ask("rana@example.com")
    assert refused.status_code == 429
    assert "Too many sign-in links" in _text(refused)
    assert len(mail.outbox) == LINKS_PER_EMAIL
    # An unknown address counts the same, so the limit tells nothing either.
    for n in range(20 - LINKS_PER_EMAIL - 1):
        ask(f"stranger{n}@example.com")
    by_address = ask("someone-new@example.com")
    assert by_address.status_code == 429
    # Another address is not held back by this one's count.
    elsewhere = ask("fresh@example.com", REMOTE_ADDR="10.9.8.7")
    assert elsewhere.status_code == 200


def test_a_link_expires_after_fifteen_minutes(client, merchant, customer):
    link = _path(magic_link_make(customer=customer))
    with time_machine.travel(now() + timedelta(minutes=15, seconds=1)):
        response = client.post(link)
    assert response.status_code == 410
    assert "has expired" in _text(response)
    assert client.get(_home(merchant)).status_code == 302


def test_a_link_still_works_at_fourteen_minutes(client, merchant, customer):
    link = _path(magic_link_make(customer=customer))
    with time_machine.travel(now() + timedelta(minutes=14)):
        assert client.post(link).status_code == 302
        assert client.get(_home(merchant)).status_code == 200


def test_a_made_up_token_is_refused_kindly(client, merchant):
    response = client.get(_sign_in(merchant) + "not-a-real-token/")
    assert response.status_code == 410
    assert "isn't one we know" in _text(response)


def test_another_shops_link_does_not_open_this_shop(client, merchant, other_merchant, customer):
    link = _path(magic_link_make(customer=customer))
    foreign = link.replace(f"/r/{merchant.slug}/", f"/r/{other_merchant.slug}/")
    assert client.post(foreign).status_code == 410


def test_the_storefront_link_signs_in_once(client, merchant, customer):
    path = storefront_link_make(customer=customer)

    response = client.get(path)
    assert response.status_code == 302
    assert client.get(_home(merchant)).status_code == 200

    client.cookies.pop(COOKIE)
    reused = client.get(path)
    assert reused.status_code == 410
    assert "already used" in _text(reused)


def test_a_stale_storefront_link_is_refused(client, merchant, customer):
    path = storefront_link_make(customer=customer, at=now() - timedelta(minutes=10, seconds=5))
    response = client.get(path)
    assert response.status_code == 410
    assert "too old" in _text(response)


def test_a_forged_storefront_link_is_refused(client, merchant, customer):
    stamp = int(time.time())
    for query in (
        {"customer": "shop-77", "ts": stamp, "sig": "0" * 64},
        # Signed for another customer, sent for this one.
        {"customer": "shop-77", "ts": stamp,
         "sig": storefront_signature(merchant=merchant, external_id="shop-78", timestamp=stamp)},
        {"customer": "shop-77", "ts": "soon", "sig": "ab"},
        {"customer": "shop-77", "ts": stamp, "sig": "é" * 64},  # not even ASCII
        {},
    ):  # fmt: skip
        response = client.get(reverse("portal:storefront-link", args=[merchant.slug]), query)
        assert response.status_code == 403
        assert "isn't valid" in _text(response)
    assert client.get(_home(merchant)).status_code == 302


def test_another_shops_secret_does_not_sign(client, merchant, other_merchant, customer):
    stamp = int(time.time())
    signature = storefront_signature(
        merchant=other_merchant, external_id="shop-77", timestamp=stamp
    )
    response = client.get(
        reverse("portal:storefront-link", args=[merchant.slug]),
        {"customer": "shop-77", "ts": stamp, "sig": signature},
    )
    assert response.status_code == 403


def test_signing_out_ends_the_session_even_if_its_cookie_is_kept(client, merchant, customer):
    client.get(storefront_link_make(customer=customer))
    kept = client.cookies[COOKIE].value

    response = client.post(reverse("portal:sign-out", args=[merchant.slug]))
    assert response.status_code == 200
    assert "signed out" in _text(response)
    client.cookies[COOKIE] = kept
    assert client.get(_home(merchant)).status_code == 302


def test_the_session_holds_only_the_shop_and_the_customer(client, merchant, customer):
    from django.core import signing

    from customers.portal import SALT

    client.get(storefront_link_make(customer=customer))
    cookie = client.cookies[COOKIE]
    assert cookie["path"] == f"/r/{merchant.slug}/"
    assert cookie["httponly"]
    assert set(signing.loads(cookie.value, salt=SALT)) == {"m", "c", "t"}
    # A session of this shop's is nobody at another's.
    assert client.get(f"/r/{merchant.slug}/").status_code == 200


def test_a_session_cookie_for_another_shop_is_nobody_here(client, merchant, other_merchant):
    theirs = CustomerFactory(merchant=other_merchant, external_id="x-1")
    client.get(storefront_link_make(customer=theirs))
    value = client.cookies[COOKIE].value
    client.cookies[COOKIE] = value  # sent to every path now
    assert client.get(_home(merchant)).status_code == 302


def test_an_erased_customer_cannot_sign_in(client, merchant, customer):
    link = _path(magic_link_make(customer=customer))
    customer.erased_at = now()
    customer.save(update_fields=["erased_at"])
    assert client.post(link).status_code == 410


def test_old_links_are_purged_and_recent_ones_kept(merchant, customer):
    magic_link_make(customer=customer)
    with time_machine.travel(now() + timedelta(days=2)):
        recent = magic_link_make(customer=customer)
        assert portal_sign_ins_purge() == 1
    assert PortalSignIn.objects.count() == 1
    assert recent


def test_rewards_link_command_prints_a_working_link(client, merchant, customer):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(
        "rewards_link", "--merchant", merchant.slug, "--email", "RANA@example.com", stdout=out
    )
    link = _path(re.search(r"https?://\S+", out.getvalue()).group(0))
    assert client.post(link).status_code == 302
    assert client.get(_home(merchant)).status_code == 200


def test_the_owner_finds_the_link_secret_and_a_new_one_ends_old_links(
    owner_client, client, merchant, customer
):
    from django.test import Client

    from merchants.models import AuditEvent

    settings_page = owner_client.get(reverse("merchants:merchant-settings"))
    assert merchant.portal_secret in _text(settings_page)
    assert f"/r/{merchant.slug}/enter/?customer=EXTERNAL_ID" in _text(settings_page)
    old_link = storefront_link_make(customer=customer)

    response = owner_client.post(reverse("merchants:merchant-portal-secret"))
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert Client().get(old_link).status_code == 403
    assert Client().get(storefront_link_make(customer=customer)).status_code == 302
    event = AuditEvent.objects.get(merchant=merchant, after={"portal_secret": "rotated"})
    assert event.actor_id is not None


def test_every_merchant_gets_a_secret_of_its_own(merchant, other_merchant):
    assert len(merchant.portal_secret) == 64
    assert merchant.portal_secret != other_merchant.portal_secret


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_presses_of_one_link_at_once_sign_in_one_browser():
    """Many browsers (a mail scanner, a forwarded email, a double tap) pressing "Continue"
    on the same link at the same moment: exactly one gets a session, every round."""
    from django.test import Client

    from tests.merchants.factories import MerchantFactory
    from tests.races import race

    merchant = MerchantFactory()
    customer = CustomerFactory(merchant=merchant, email="rana@example.com")
    for _round in range(8):
        link = _path(magic_link_make(customer=customer))
        answers: list[int] = []

        def press(_index: int, link=link, answers=answers) -> None:
            browser = Client()
            pressed = browser.post(link)
            answers.append(pressed.status_code)
            if pressed.status_code == 302:
                assert browser.get(_home(merchant)).status_code == 200

        assert race(press, 20) == []
        assert sorted(answers) == [302] + [410] * 19
