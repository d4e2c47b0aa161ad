from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import translation
from django.views.defaults import server_error

from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db


def test_unknown_page_shows_the_friendly_404(client):
    member = StaffMemberFactory()
    client.force_login(member.user)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "find that page" in response.content.decode()


def test_server_error_page_renders_without_a_request_context():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_health_check_answers_ok_for_each_part(client):
    assert client.get("/healthz/").json() == {
        "status": "ok",
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
    }


def test_portal_shell_is_mobile_first_branded_and_right_to_left_in_persian():
    merchant = MerchantFactory(name="Kashi Tea House", brand_color="#aa3300")
    request = RequestFactory().get("/r/kashi/")
    request.csp_nonce = "n0nce"
    with translation.override("fa"):
        html = render_to_string("portal/base.html", {"merchant": merchant}, request=request)
    assert '<html lang="fa" dir="rtl">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "Kashi Tea House" in html
    # White on the brand colour: it reads at more than 4.5:1.
    assert (
        '<style nonce="n0nce">:root { --regulars-brand: #aa3300; '
        "--regulars-brand-text: #ffffff; }</style>" in html
    )
    assert "bootstrap.rtl.min.css" in html


@pytest.mark.parametrize(
    ("colour", "text"),
    [
        ("#0d6efd", "#ffffff"),
        ("#7a3e9d", "#ffffff"),
        ("#ffd60a", "#000000"),
        ("#e9ecef", "#000000"),
    ],
)
def test_the_rewards_page_writes_on_the_brand_colour_in_a_colour_that_reads(colour, text):
    assert MerchantFactory.build(brand_color=colour).brand_text_color == text
