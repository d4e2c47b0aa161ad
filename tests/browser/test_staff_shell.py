from __future__ import annotations

import re

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base_url: str, email: str = "owner@demo.test") -> None:
    page.goto(f"{base_url}/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("regulars-demo")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def test_owner_signs_in_switches_to_arabic_and_signs_out(live_server, desktop):
    call_command("seed_demo", quiet_signins=True)
    page = desktop.page

    _sign_in(page, live_server.url)

    sidebar = page.get_by_test_id("sidebar")
    for area in ("Dashboard", "Customers", "Loyalty", "Campaigns", "Feedback", "Reports"):
        assert sidebar.get_by_text(area, exact=False).first.is_visible()
    assert sidebar.get_by_text("Settings", exact=True).is_visible()
    assert page.get_by_test_id("merchant-name").inner_text() == "Demo Store"
    assert page.locator("html").get_attribute("dir") == "ltr"
    desktop.screenshot("staff-dashboard-en")

    page.get_by_test_id("language-menu").get_by_role("button").first.click()
    page.get_by_role("button", name="العربيّة").click()
    page.wait_for_load_state()

    html = page.locator("html")
    assert html.get_attribute("lang") == "ar"
    assert html.get_attribute("dir") == "rtl"
    assert page.locator("link[href*='bootstrap.rtl.min.css']").count() == 1
    assert sidebar.get_by_text("لوحة التحكم").is_visible()
    # Right to left: the sidebar now stands at the right of the content.
    sidebar_box = page.locator("#sidebar").bounding_box()
    main_box = page.locator("#main").bounding_box()
    assert sidebar_box["x"] > main_box["x"]
    desktop.screenshot("staff-dashboard-ar")

    page.get_by_test_id("user-menu").click()
    page.get_by_role("button", name="تسجيل الخروج").click()
    page.wait_for_url(re.compile(r".*/accounts/login/$"))
    assert page.get_by_test_id("login-form").is_visible()
    assert page.locator("html").get_attribute("dir") == "rtl"
    desktop.screenshot("staff-signed-out-ar")

    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url, "signed out: the dashboard asks to sign in again"
    assert desktop.csp_violations == []
    assert desktop.errors == []


def test_dashboard_shell_fits_a_phone(live_server, phone):
    call_command("seed_demo", quiet_signins=True)
    page = phone.page

    _sign_in(page, live_server.url, email="support@demo.test")

    # The sidebar folds into a menu button on a narrow screen.
    assert not page.locator("#sidebar").is_visible()
    page.get_by_role("button", name="Menu").click()
    page.locator("#sidebar.show").wait_for()
    assert page.get_by_test_id("sidebar").get_by_text("Feedback").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    phone.screenshot("staff-dashboard-phone")
    assert phone.csp_violations == []


def test_owner_changes_a_role_in_place_with_htmx(live_server, desktop):
    from merchants.models import AuditEvent, StaffMember

    call_command("seed_demo", quiet_signins=True)
    page = desktop.page
    _sign_in(page, live_server.url)
    page.get_by_role("link", name="Team").click()
    page.wait_for_url(f"{live_server.url}/merchants/staff/")
    # A marker on the window survives only if the page is not reloaded.
    page.evaluate("window.notReloaded = true")

    analyst = StaffMember.objects.get(user__email="analyst@demo.test")
    row = page.locator(f"#staff-{analyst.pk}")
    row.get_by_label("Role").select_option("marketer")
    row.get_by_role("button", name="Change").click()

    page.locator(f"#staff-{analyst.pk}").get_by_role("status").wait_for()
    assert page.evaluate("window.notReloaded") is True
    analyst.refresh_from_db()
    assert analyst.role == "marketer"
    assert AuditEvent.objects.filter(
        action="staff.role_changed", object_repr="analyst@demo.test"
    ).exists()
    desktop.screenshot("staff-team-role-changed")
    assert desktop.csp_violations == []
