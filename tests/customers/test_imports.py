from __future__ import annotations

import io
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from customers.imports import ImportRefused, import_job_run, import_stream
from customers.models import Customer, ImportJob, Order, OrderLine
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """external_id,email,first_name,birth_date,gender,country,tags,marketing_consent
c-1,ana@example.test,Ana,1990-04-23,female,pt,vip;newsletter,yes
c-2,not-an-email,Bob,,,,,no
,,Nobody,,,,,
c-4,dee@example.test,Dee,23/04/1990,,,,
c-5,eve@example.test,Eve,,robot,,,
c-6,fay@example.test,Fay,,,,,maybe
c-7,gus@example.test,Gus,1985-01-02,male,RU,,0
"""

ORDERS_HEADER = (
    "order_id,placed_at,customer_external_id,customer_email,currency,total,discount_codes,"
    "sku,product_name,category,quantity,price\n"
)
ORDERS_CSV = (
    ORDERS_HEADER
    + """1001,2026-03-01 10:00,c-1,ana@example.test,USD,50.00,SPRING,TEA-1,Green tea,tea,2,15.00
1001,2026-03-01 10:00,c-1,ana@example.test,USD,50.00,SPRING,POT-1,Teapot,ware,1,20.00
1002,2026-03-02T09:00:00Z,c-2,bo@example.test,USD,30.00,,TEA-1,Green tea,tea,1,15.00
1002,2026-03-02T09:00:00Z,c-2,bo@example.test,USD,30.00,,TEA-2,Black tea,tea,1,fifteen
1003,2026-03-03 12:00,c-3,cy@example.test,EUR,10.00,,TEA-1,Green tea,tea,1,10.00
1004,yesterday,c-4,di@example.test,USD,10.00,,TEA-1,Green tea,tea,1,10.00
1005,2026-03-05 08:30,,,USD,10.00,,TEA-1,Green tea,tea,1,10.00
1006,2026-03-06 18:00,c-1,ana@example.test,USD,12.50,,TEA-3,Oolong,tea,1,12.50
"""
)


@pytest.fixture
def shop():
    return MerchantFactory(base_currency="USD", timezone="America/New_York")


def _run(shop, kind, text):
    errors = []
    progress = import_stream(
        merchant=shop,
        kind=kind,
        stream=io.BytesIO(text.encode()),
        on_error=lambda *e: errors.append(e),
    )
    return progress, errors


def test_good_customer_rows_land_and_each_bad_row_is_named(shop):
    progress, errors = _run(shop, "customers", CUSTOMERS_CSV)

    assert (progress.rows_done, progress.rows_ok, progress.rows_failed) == (7, 2, 5)
    assert errors == [
        (3, "email", "Enter a valid email address."),
        (4, "external_id", "a customer needs an external_id or an email"),
        (5, "birth_date", "“23/04/1990” is not a date like 1990-04-23"),
        (6, "gender", "“robot” is not female, male or other"),
        (7, "marketing_consent", "“maybe” is not yes or no"),
    ]
    ana = Customer.objects.get(merchant=shop, external_id="c-1")
    assert (ana.email, ana.country, ana.tags, ana.marketing_consent) == (
        "ana@example.test",
        "PT",
        ["vip", "newsletter"],
        True,
    )
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"c-1", "c-7"}


def test_orders_group_their_lines_and_a_bad_line_skips_its_whole_order(shop):
    progress, errors = _run(shop, "orders", ORDERS_CSV)

    assert (progress.rows_ok, progress.rows_failed) == (3, 5)
    assert errors == [
        (4, "order_id", "skipped with its order: row 5 is invalid"),
        (5, "price", "“fifteen” is not an amount"),
        (6, "currency", "Orders must be in the store's currency, USD."),
        (7, "placed_at", "“yesterday” is not a date and time like 2026-05-01T10:00:00Z"),
        (8, "customer_external_id", "an order needs customer_external_id or customer_email"),
    ]
    order = Order.objects.get(external_id="1001")
    assert order.source == "csv"
    assert order.lines.count() == 2
    assert order.discount_codes == ["SPRING"]
    # No zone in the file: the store's (New York, UTC-5 in March) is used.
    assert order.placed_at.isoformat() == "2026-03-01T15:00:00+00:00"
    ana = Customer.objects.get(external_id="c-1")
    assert (ana.orders_count, ana.total_spent) == (2, Decimal("62.50"))
    assert not Order.objects.filter(external_id__in=["1002", "1003", "1004", "1005"]).exists()


def test_importing_the_same_orders_again_creates_nothing(shop):
    _run(shop, "orders", ORDERS_CSV)
    before = (Customer.objects.count(), Order.objects.count(), OrderLine.objects.count())
    _run(shop, "orders", ORDERS_CSV)
    assert (Customer.objects.count(), Order.objects.count(), OrderLine.objects.count()) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty or has no header"),
        ("order_id,total\n1,10\n", "no placed_at column"),
        ("email,favourite_colour\na@b.test,red\n", "Unknown column favourite_colour"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(shop, text, message):
    kind = "customers" if text.startswith("email") else "orders"
    with pytest.raises(ImportRefused, match=message):
        _run(shop, kind, text)
    assert Customer.objects.count() == 0


def test_upload_runs_in_the_background_and_reports_progress_and_errors(
    client, shop, django_capture_on_commit_callbacks
):
    from tests.merchants.factories import StaffMemberFactory

    member = StaffMemberFactory(merchant=shop, role="manager")
    client.force_login(member.user)
    upload = SimpleUploadedFile("customers.csv", CUSTOMERS_CSV.encode(), content_type="text/csv")

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post("/customers/imports/", {"kind": "customers", "file": upload})

    job = ImportJob.objects.get()
    assert response.url == f"/customers/imports/{job.pk}/"
    assert len(queued) == 1, "the task is queued once the upload is saved"
    waiting = client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in waiting
    assert "Waiting for a worker" in waiting

    import_job_run(job_id=job.pk)  # what the worker runs
    assert import_job_run(job_id=job.pk) is None, "a second delivery does nothing"

    finished = client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert "every 1s" not in finished
    assert "Done: 2 rows imported, 5 skipped." in finished
    report = client.get(f"/customers/imports/{job.pk}/errors.csv")
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert lines[0] == "row,column,reason"
    assert lines[1] == "3,email,Enter a valid email address."
    assert len(lines) == 6


def test_an_unreadable_upload_fails_with_the_reason(client, shop):
    job = ImportJob.objects.create(
        merchant=shop,
        kind="orders",
        file=SimpleUploadedFile("orders.csv", b"order_id,total\n1,1\n"),
        original_name="orders.csv",
    )
    job = import_job_run(job_id=job.pk)
    assert job.state == "failed"
    assert "no placed_at column" in job.failure


def test_only_csv_files_are_accepted(client, shop):
    from tests.merchants.factories import StaffMemberFactory

    client.force_login(StaffMemberFactory(merchant=shop, role="owner").user)
    upload = SimpleUploadedFile(
        "customers.xlsx", b"PK\x03\x04", content_type="application/vnd.ms-excel"
    )
    response = client.post("/customers/imports/", {"kind": "customers", "file": upload})
    assert "Choose a .csv file." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_import_commands_report_bad_rows_and_land_good_ones(shop, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_CSV)
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="5 rows were skipped"):
        call_command("import_customers", str(path), merchant=shop.slug, stdout=out, stderr=err)

    assert "row 5, birth_date: “23/04/1990” is not a date like 1990-04-23" in err.getvalue()
    assert "2 rows imported, 5 rows skipped of 7." in out.getvalue()
    assert Customer.objects.count() == 2

    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS_CSV.splitlines()[0] + "\n" + ORDERS_CSV.splitlines()[1] + "\n")
    call_command("import_orders", str(orders), merchant=shop.slug, stdout=StringIO())
    assert Order.objects.count() == 1


def _many_orders(count: int) -> str:
    return ORDERS_HEADER + "".join(
        f"{n},2026-03-01 10:00,c-{n},c{n}@example.test,USD,10.00,,TEA-1,Green tea,tea,1,10.00\n"
        for n in range(count)
    )


def test_a_long_file_lands_whole_and_in_order_across_batches(shop):
    # Read and checked in one thread, stored in another: every batch, once, in order.
    progress, errors = _run(shop, "orders", _many_orders(2500))
    assert (progress.rows_done, progress.rows_ok, errors) == (2500, 2500, [])
    assert Order.objects.filter(merchant=shop).count() == 2500
    assert Customer.objects.get(external_id="c-2499").orders_count == 1


def test_a_failure_while_storing_stops_the_reading_too(shop, monkeypatch):
    import threading

    from customers import imports

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(imports, "orders_ingest_many", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        _run(shop, "orders", _many_orders(5000))
    assert not any(t.name == "csv-import-reader" for t in threading.enumerate())


def test_a_stream_that_breaks_midway_is_an_error_not_a_short_import(shop):
    class Breaking(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 2000:
                raise OSError("connection reset while reading the upload")
            return super().read(min(size, 512) if size and size > 0 else 512)

    with pytest.raises(OSError, match="connection reset"):
        import_stream(merchant=shop, kind="orders", stream=Breaking(_many_orders(3000).encode()),
                      on_error=lambda *e: None)  # fmt: skip


def test_a_day_that_does_not_exist_is_a_reported_row_and_the_rest_land(shop):
    text = (
        "external_id,email,birth_date\n"
        "c-1,ana@example.test,1999-02-31\n"
        "c-2,bo@example.test,1990-04-23\n"
    )
    progress, errors = _run(shop, "customers", text)
    assert errors == [(2, "birth_date", "“1999-02-31” is not a day of the calendar")]
    assert (progress.rows_ok, progress.rows_failed) == (1, 1)
    orders = ORDERS_HEADER + "9001,2026-02-30 10:00,c-2,,USD,10.00,,T,Tea,tea,1,10.00\n"
    progress, errors = _run(shop, "orders", orders)
    assert errors == [(2, "placed_at", "“2026-02-30 10:00” is not a day and time of the calendar")]


def test_a_job_stopped_by_anything_else_says_so_instead_of_running_for_good(shop, monkeypatch):
    from customers import imports

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(imports, "customers_upsert_many", broken)
    job = ImportJob.objects.create(
        merchant=shop, kind="customers", original_name="customers.csv",
        file=SimpleUploadedFile("customers.csv", CUSTOMERS_CSV.encode()),
    )  # fmt: skip
    job = import_job_run(job_id=job.pk)
    assert job.state == "failed"
    assert job.failure == "The import stopped after row 0: RuntimeError."
    assert job.finished_at is not None


@pytest.mark.parametrize("kind", ["customers", "orders"])
def test_the_sample_files_offered_on_the_import_page_import_without_an_error(client, shop, kind):
    from tests.merchants.factories import StaffMemberFactory

    shop.base_currency = "EUR"
    shop.save()
    client.force_login(StaffMemberFactory(merchant=shop, role="manager").user)
    page = client.get("/customers/imports/").content.decode()
    assert "separated by semicolons" in page
    sample = client.get(f"/customers/imports/sample.csv?kind={kind}")
    assert sample["Content-Disposition"].endswith(f'regulars-{kind}-sample.csv"')
    progress, errors = _run(shop, kind, sample.content.decode())
    assert errors == []
    assert progress.rows_ok == progress.rows_done == 2
    if kind == "customers":
        assert Customer.objects.get(external_id="c-1001").tags == ["vip", "newsletter"]
    else:
        assert Order.objects.get(external_id="1001").lines.count() == 2
    assert client.get("/customers/imports/sample.csv?kind=other").status_code == 404


def test_a_failed_import_is_resumed_from_where_it_stopped(
    client, shop, django_capture_on_commit_callbacks
):
    from tests.merchants.factories import StaffMemberFactory

    client.force_login(StaffMemberFactory(merchant=shop, role="manager").user)
    text = "external_id,email\n" + "".join(f"c-{n},c{n}@example.test\n" for n in range(3000))
    job = ImportJob.objects.create(
        merchant=shop, kind="customers", original_name="c.csv", state="failed",
        failure="The import stopped 5 times after row 2,000.", rows_done=2000, rows_ok=2000,
        file=SimpleUploadedFile("c.csv", text.encode()),
    )  # fmt: skip
    page = client.get(f"/customers/imports/{job.pk}/").content.decode()
    assert "Resume after row 2,000" in page
    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post(f"/customers/imports/{job.pk}/resume/")
    assert len(queued) == 1
    job.refresh_from_db()
    assert (job.state, job.failure, job.runs) == ("queued", "", 0)
    job = import_job_run(job_id=job.pk)
    # The first 2,000 rows were stored before: only the rest are read again.
    assert (job.state, job.rows_done, job.rows_ok) == ("done", 3000, 3000)
    assert Customer.objects.filter(merchant=shop).count() == 1000
