"""A manager imports orders (a real Celery worker runs the import), opens a customer's
360 page, and builds a persona watching its live count."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from tests.browser.test_staff_shell import _sign_in

pytestmark = [
    pytest.mark.needs_chromium,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]


HEADER = (
    "order_id,placed_at,customer_external_id,customer_email,customer_first_name,total,"
    "discount_codes,sku,product_name,category,quantity,price"
)


def _orders_csv(tmp_path):
    rows = [HEADER]
    for n in range(1, 301):
        who = n % 60
        code = "SAVE10" if n % 2 else ""
        placed = f"2026-0{1 + n % 9}-1{n % 9} 10:00"
        rows.append(
            f"imp-{n},{placed},imp-c{who},buyer{who}@import.test,Buyer{who},25.00,{code},"
            "TEA-1,Green tea,tea,1,25.00"
        )
    rows.append("imp-bad-1,2026-03-01 10:00,imp-c1,b1@import.test,B1,twenty,,TEA-1,Tea,tea,1,20")
    rows.append("imp-bad-2,not a date,imp-c2,b2@import.test,B2,20.00,,TEA-1,Tea,tea,1,20")
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_manager_imports_orders_opens_a_customer_and_builds_a_persona(
    live_server, desktop, worker_broker, tmp_path
):
    call_command("seed_demo", quiet_signins=True)
    page = desktop.page
    _sign_in(page, live_server.url, email="manager@demo.test")

    page.get_by_role("link", name="Import").click()
    page.get_by_label("What the file holds").select_option("orders")
    page.get_by_label("CSV file").set_input_files(str(_orders_csv(tmp_path)))
    page.get_by_role("button", name="Start import").click()
    page.wait_for_url(re.compile(r".*/customers/imports/\d+/$"))
    progress = page.get_by_test_id("import-progress")
    page.locator('[data-testid="import-progress"][data-state="done"]').wait_for(timeout=60_000)
    assert "Done: 300 rows imported, 2 skipped." in progress.inner_text()
    assert page.get_by_test_id("error-report").is_visible()
    assert "“twenty” is not an amount" in progress.inner_text()
    desktop.screenshot("customers-import-done")

    page.get_by_test_id("sidebar").get_by_role("link", name="Customers").click()
    page.get_by_label("Search").fill("buyer7@import.test")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name="Buyer7").click()
    assert page.get_by_test_id("customer-name").inner_text() == "Buyer7"
    stats = page.get_by_test_id("customer-stats").inner_text()
    assert "125.00 USD" in stats  # five imported orders of 25.00
    assert page.get_by_test_id("customer-segment").inner_text() != "—"
    assert "Order placed · 25.00 USD" in page.get_by_test_id("timeline").inner_text()
    desktop.screenshot("customers-360")

    page.get_by_role("link", name="Personas").click()
    page.get_by_role("link", name="New persona").click()
    page.get_by_label("Name").fill("Code hunter")
    page.get_by_label("Portrait").fill("Buys when there is a code.")
    preview = page.get_by_test_id("persona-preview")
    everyone = preview.inner_text()
    page.get_by_label("Field").select_option("discount_share")
    page.wait_for_load_state("networkidle")  # choosing a field redraws its row
    page.get_by_label("Value").fill("50")
    page.get_by_label("Value").blur()
    page.wait_for_function(
        """before => {
            const count = document.querySelector('[data-testid="persona-preview"]');
            return count.innerText !== before && /match/.test(count.innerText);
        }""",
        arg=everyone,
    )
    page.wait_for_load_state("networkidle")
    assert page.get_by_label("Value").input_value() == "50", "the count's refresh keeps it"
    matched = int(re.search(r"(\d+) customers? match", preview.inner_text()).group(1))
    assert matched >= 30  # at least the import's code users
    desktop.screenshot("customers-persona-builder")
    page.get_by_role("button", name="Save persona").click()
    page.wait_for_url(re.compile(r".*/customers/personas/\d+/$"))
    desktop.screenshot("customers-persona-detail")

    # Saved last, it gets only those the demo's personas above it leave; at the top, all.
    page.get_by_role("link", name="Personas").click()
    row = page.get_by_test_id("persona-table").locator("tr", has_text="Code hunter")
    for _ in range(3):
        # Each move answers once its customers are reassigned: wait for that answer.
        with page.expect_navigation():
            row.get_by_role("button", name="Move up").click()
    row = page.get_by_test_id("persona-table").locator("tbody tr").first
    assert "Code hunter" in row.inner_text()
    assert row.locator("td").nth(2).inner_text() == str(matched)
    desktop.screenshot("customers-persona-list")
    assert desktop.csp_violations == []
    assert desktop.errors == []
