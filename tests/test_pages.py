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


def test_health_check_answers_ok(client):
    assert client.get("/healthz/").json() == {"status": "ok"}


def test_portal_shell_is_mobile_first_branded_and_right_to_left_in_persian():
    merchant = MerchantFactory(name="Kashi Tea House", brand_color="#aa3300")
    request = RequestFactory().get("/r/kashi/")
    request.csp_nonce = "n0nce"
    with translation.override("fa"):
        html = render_to_string("portal/base.html", {"merchant": merchant}, request=request)
    assert '<html lang="fa" dir="rtl">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "Kashi Tea House" in html
    assert '<style nonce="n0nce">:root { --regulars-brand: #aa3300; }</style>' in html
    assert "bootstrap.rtl.min.css" in html
