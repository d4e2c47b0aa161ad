"""CSV imports of customers and orders, read as a stream: memory stays flat however long
the file is. A bad row is reported (row, column, reason) and skipped whole; good rows land.

The dashboard runs this in a Celery task (progress bar); `manage.py import_customers` and
`import_orders` run it in the terminal. Both go through the same services as the API.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware, now

from customers.models import ImportJob, ImportRowError, Order
from customers.personas import segments_and_personas_refresh
from customers.services import (
    CustomerData,
    OrderData,
    OrderLineData,
    customer_check,
    customers_upsert_many,
    orders_check,
    orders_ingest_many,
)
from customers.services.orders import STATUSES
from customers.tasks import import_run_task
from merchants.models import Merchant

SOURCE = Order.Source.CSV
# What the import page offers to download: every column, filled in as the importer reads it.
_ORDER_1001 = {
    "order_id": "1001",
    "placed_at": "2026-03-01 10:00",
    "customer_external_id": "c-1001",
    "customer_email": "ana@example.com",
    "customer_first_name": "Ana",
    "customer_last_name": "Silva",
    "status": "paid",
    "currency": "EUR",
    "subtotal": "50.00",
    "discount": "5.00",
    "shipping": "4.00",
    "tax": "0.00",
    "total": "49.00",
    "channel": "web",
    "shipping_method": "standard",
    "discount_codes": "SPRING;FRIENDS",
}
SAMPLES = {
    "customers": [
        {"external_id": "c-1001", "email": "ana@example.com", "first_name": "Ana",
         "last_name": "Silva", "phone": "+351 912 345 678", "birth_date": "1990-04-23",
         "gender": "female", "city": "Lisbon", "country": "PT", "language": "pt",
         "timezone": "Europe/Lisbon", "acquisition_channel": "instagram", "tags": "vip;newsletter",
         "marketing_consent": "yes"},
        {"external_id": "c-1002", "email": "omar@example.com", "first_name": "Omar",
         "last_name": "Haddad", "gender": "male", "city": "Amman", "country": "JO",
         "language": "ar", "marketing_consent": "no"},
    ],
    "orders": [
        {**_ORDER_1001, "sku": "TEA-1", "product_name": "Green tea", "category": "tea",
         "quantity": "2", "price": "15.00"},
        {**_ORDER_1001, "sku": "POT-1", "product_name": "Teapot", "category": "ware",
         "quantity": "1", "price": "20.00"},
    ],
}  # fmt: skip


def sample_csv(kind: str) -> str:
    """A small file of `kind` in the importer's format, that imports without an error."""
    columns = CUSTOMER_COLUMNS if kind == ImportJob.Kind.CUSTOMERS else ORDER_COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(SAMPLES[kind])
    return out.getvalue()


CUSTOMER_COLUMNS = (
    "external_id", "email", "first_name", "last_name", "phone", "birth_date", "gender", "city",
    "country", "language", "timezone", "acquisition_channel", "tags", "marketing_consent",
)  # fmt: skip
ORDER_COLUMNS = (
    "order_id", "placed_at", "customer_external_id", "customer_email", "customer_first_name",
    "customer_last_name", "status", "currency", "subtotal", "discount", "shipping", "tax",
    "total", "channel", "shipping_method", "discount_codes", "sku", "product_name", "category",
    "quantity", "price",
)  # fmt: skip
REQUIRED = {
    ImportJob.Kind.CUSTOMERS: ("external_id", "email"),  # at least one of the two
    ImportJob.Kind.ORDERS: ("order_id", "placed_at", "total"),
}
BATCH = 1000
YES = {"1", "true", "yes", "y"}
NO = {"0", "false", "no", "n", ""}

logger = logging.getLogger(__name__)


class RowError(ValueError):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


class ImportRefused(ValueError):
    """The file as a whole can't be read (no header, missing columns): nothing is written."""


@dataclass
class Progress:
    rows_done: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    bytes_done: int = 0


ErrorSink = Callable[[int, str, str], None]


# --- Reading cells ------------------------------------------------------------------------


def _cell(row: dict, column: str) -> str:
    return (row.get(column) or "").strip()


def _money(row: dict, column: str, *, required: bool = False) -> Decimal:
    text = _cell(row, column)
    if not text:
        if required:
            raise RowError(column, "is empty")
        return Decimal("0.00")
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise RowError(column, f"“{text}” is not an amount") from error
    if value < 0 or value != value.quantize(Decimal("0.01")):
        raise RowError(column, f"“{text}” must be zero or more, with at most two decimals")
    return value


def _date(row: dict, column: str) -> date | None:
    text = _cell(row, column)
    if not text:
        return None
    try:
        parsed = parse_date(text)
    except ValueError as error:  # well formed, but no such day (1999-02-31)
        raise RowError(column, f"“{text}” is not a day of the calendar") from error
    if parsed is None:
        raise RowError(column, f"“{text}” is not a date like 1990-04-23")
    return parsed


def _moment(row: dict, column: str, merchant: Merchant) -> datetime:
    text = _cell(row, column)
    if not text:
        raise RowError(column, "is empty")
    try:
        parsed = parse_datetime(text)
        day = parse_date(text) if parsed is None else None
    except ValueError as error:  # well formed, but no such moment (2026-02-30T25:00)
        raise RowError(column, f"“{text}” is not a day and time of the calendar") from error
    if parsed is None:
        if day is None:
            raise RowError(column, f"“{text}” is not a date and time like 2026-05-01T10:00:00Z")
        return datetime.combine(day, time(), tzinfo=merchant.zone)
    # A time without a zone is the store's local time.
    return parsed if parsed.tzinfo else make_aware(parsed, merchant.zone)


def _flag(row: dict, column: str) -> bool | None:
    text = _cell(row, column).lower()
    if column not in row:
        return None
    if text in YES:
        return True
    if text in NO:
        return False
    raise RowError(column, f"“{text}” is not yes or no")


def _list(row: dict, column: str) -> list[str] | None:
    if column not in row:
        return None
    return [part.strip() for part in _cell(row, column).split(";") if part.strip()]


def _optional(row: dict, column: str) -> str | None:
    return _cell(row, column) or None if column in row else None


def customer_from_row(row: dict) -> CustomerData:
    if not _cell(row, "external_id") and not _cell(row, "email"):
        raise RowError("external_id", "a customer needs an external_id or an email")
    gender = _cell(row, "gender").lower()
    if gender not in ("", "female", "male", "other"):
        raise RowError("gender", f"“{gender}” is not female, male or other")
    return CustomerData(
        external_id=_optional(row, "external_id"),
        email=_optional(row, "email"),
        first_name=_optional(row, "first_name"),
        last_name=_optional(row, "last_name"),
        phone=_optional(row, "phone"),
        birth_date=_date(row, "birth_date"),
        gender=gender or None,
        city=_optional(row, "city"),
        country=_optional(row, "country"),
        language=_optional(row, "language"),
        timezone=_optional(row, "timezone"),
        acquisition_channel=_optional(row, "acquisition_channel"),
        tags=_list(row, "tags"),
        marketing_consent=_flag(row, "marketing_consent"),
    )


def order_from_rows(rows: list[tuple[int, dict]], merchant: Merchant) -> OrderData:
    """One order from its consecutive rows (one row per line); order columns come from the
    first row. Raises RowError carrying the row number in `.row`."""
    first_number, first = rows[0]
    try:
        customer = CustomerData(
            external_id=_cell(first, "customer_external_id") or None,
            email=_cell(first, "customer_email") or None,
            first_name=_cell(first, "customer_first_name") or None,
            last_name=_cell(first, "customer_last_name") or None,
        )
        if not customer.external_id and not customer.email:
            raise RowError(
                "customer_external_id", "an order needs customer_external_id or customer_email"
            )
        status = _cell(first, "status").lower() or Order.Status.PAID
        if status not in STATUSES:
            raise RowError("status", f"“{status}” is not one of {', '.join(Order.Status.values)}")
        data = {
            "placed_at": _moment(first, "placed_at", merchant),
            "currency": (_cell(first, "currency") or merchant.base_currency).upper(),
            "subtotal": _money(first, "subtotal"),
            "discount": _money(first, "discount"),
            "shipping": _money(first, "shipping"),
            "tax": _money(first, "tax"),
            "total": _money(first, "total", required=True),
            "status": status,
            "channel": _cell(first, "channel")[:30],
            "shipping_method": _cell(first, "shipping_method")[:60],
            "discount_codes": tuple(_list(first, "discount_codes") or ()),
        }
    except RowError as error:
        error.row = first_number  # type: ignore[attr-defined]
        raise
    lines = []
    for number, row in rows:
        if not (_cell(row, "sku") or _cell(row, "product_name")):
            continue
        try:
            quantity_text = _cell(row, "quantity") or "1"
            if not quantity_text.isdigit() or int(quantity_text) < 1:
                raise RowError("quantity", f"“{quantity_text}” is not a whole number of at least 1")
            lines.append(
                OrderLineData(
                    sku=_cell(row, "sku")[:100],
                    name=_cell(row, "product_name")[:255],
                    category=_cell(row, "category")[:100],
                    quantity=int(quantity_text),
                    price=_money(row, "price", required=True),
                )
            )
        except RowError as error:
            error.row = number  # type: ignore[attr-defined]
            raise
    return OrderData(
        source=SOURCE,
        external_id=_cell(first, "order_id")[:128],
        customer=customer,
        lines=tuple(lines),
        **data,
    )


# --- Streaming ---------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from a binary file, for the progress bar."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


def _rows(stream: IO[bytes], kind: str) -> tuple[_CountingReader, Iterator[tuple[int, dict]]]:
    counter = _CountingReader(stream)
    text = io.TextIOWrapper(io.BufferedReader(counter), encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    header = [name.strip() for name in (reader.fieldnames or [])]
    if not header:
        raise ImportRefused("The file is empty or has no header row.")
    reader.fieldnames = header
    known = CUSTOMER_COLUMNS if kind == ImportJob.Kind.CUSTOMERS else ORDER_COLUMNS
    if kind == ImportJob.Kind.CUSTOMERS:
        if not set(REQUIRED[kind]) & set(header):
            raise ImportRefused("The file needs an external_id or an email column.")
    else:
        missing = [c for c in REQUIRED[kind] if c not in header]
        if missing:
            raise ImportRefused(f"The file has no {', '.join(missing)} column.")
    unknown = [c for c in header if c not in known]
    if unknown:
        raise ImportRefused(
            f"Unknown column {', '.join(unknown)}. Columns are: {', '.join(known)}."
        )
    # Row 1 is the header, so the first data row is row 2, as a spreadsheet shows it.
    return counter, ((reader.line_num, row) for row in reader)


def _service_error_column(error: ValidationError, default: str) -> tuple[str, str]:
    if hasattr(error, "error_dict"):
        field, messages = next(iter(error.message_dict.items()))
        column = {"external_id": "order_id", "customer": "customer_external_id"}.get(field, field)
        column = column.replace("customer.", "customer_").split(".")[-1]
        return column, " ".join(messages)
    return default, " ".join(error.messages)


def import_stream(
    *,
    merchant: Merchant,
    kind: str,
    stream: IO[bytes],
    on_error: ErrorSink,
    on_progress: Callable[[Progress], None] = lambda progress: None,
    resume: Progress | None = None,
) -> Progress:
    """Reads the CSV and stores each good row (a customer, or an order with its lines) through
    the services. Calls on_error(row, column, reason) for each skipped row. With `resume`
    (the progress of an earlier run that stopped), its first rows_done rows are passed
    over unread by the services and the counts go on from it: every batch ends at a whole
    order, and what a batch stored again changes nothing (orders and customers are keyed).

    Reading and checking the next batch (pure Python, no database) runs in a thread while
    this one stores the last: storing spends much of its time waiting for the database,
    and the reader uses that time. At most two checked batches wait, so memory stays flat."""
    counter, rows = _rows(stream, kind)
    if resume is not None and resume.rows_done:
        rows = itertools.islice(rows, resume.rows_done, None)
    if kind == ImportJob.Kind.CUSTOMERS:
        groups: Iterator[list[tuple[int, dict]]] = ([row] for row in rows)
    else:
        groups = _orders_grouped(rows)
    checked: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def hand_over(item) -> None:
        while not stop.is_set():
            try:
                checked.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            batch: list[list[tuple[int, dict]]] = []
            for group in groups:
                batch.append(group)
                if len(batch) >= BATCH:
                    hand_over((*_checked_batch(merchant, kind, batch), counter.count))
                    batch = []
                if stop.is_set():
                    return
            if batch:
                hand_over((*_checked_batch(merchant, kind, batch), counter.count))
        except BaseException as error:  # raised again in the storing thread
            hand_over(error)
        finally:
            hand_over(None)

    reader = threading.Thread(target=read, name="csv-import-reader", daemon=True)
    reader.start()
    progress = dataclasses.replace(resume) if resume is not None else Progress()
    try:
        while (item := checked.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            good, bad, rows_done, bytes_done = item
            progress.rows_done += rows_done
            for number, column, reason in bad:
                progress.rows_failed += 1
                on_error(number, column, reason)
            _store_checked(merchant, kind, good, progress)
            progress.bytes_done = bytes_done
            on_progress(progress)
    finally:
        stop.set()
        reader.join()
    return progress


def _orders_grouped(rows: Iterator[tuple[int, dict]]) -> Iterator[list[tuple[int, dict]]]:
    group: list[tuple[int, dict]] = []
    for number, row in rows:
        if group and _cell(row, "order_id") != _cell(group[0][1], "order_id"):
            yield group
            group = []
        group.append((number, row))
    if group:
        yield group


def _checked_batch(
    merchant: Merchant, kind: str, batch: list[list[tuple[int, dict]]]
) -> tuple[list[tuple[list[tuple[int, dict]], Any]], list[tuple[int, str, str]], int]:
    """Parses and checks every group of rows: (the good ones with their data, the bad rows
    as (row, column, reason), how many rows were read)."""
    good: list[tuple[list[tuple[int, dict]], Any]] = []
    bad: list[tuple[int, str, str]] = []
    for group in batch:
        problem = None
        try:
            data = _parsed(merchant, kind, group)
        except RowError as error:
            problem = (getattr(error, "row", group[0][0]), error.column, error.reason)
        except ValidationError as error:
            default = "order_id" if kind == ImportJob.Kind.ORDERS else "email"
            problem = (group[0][0], *_service_error_column(error, default))
        if problem is None:
            good.append((group, data))
            continue
        bad_row, column, reason = problem
        for number, _row in group:
            if number == bad_row:
                bad.append((number, column, reason))
            else:
                bad.append(
                    (number, "order_id", f"skipped with its order: row {bad_row} is invalid")
                )
    return good, bad, sum(len(group) for group in batch)


def _store_checked(
    merchant: Merchant,
    kind: str,
    good: list[tuple[list[tuple[int, dict]], Any]],
    progress: Progress,
) -> None:
    """Stores a batch's good groups in one set-based call."""
    if not good:
        return
    if kind == ImportJob.Kind.CUSTOMERS:
        customers_upsert_many(merchant=merchant, customers=[d for _g, d in good], source=SOURCE)
    else:
        orders_ingest_many(merchant=merchant, orders=[d for _g, d in good], checked=True)
    progress.rows_ok += sum(len(group) for group, _data in good)


def _parsed(merchant: Merchant, kind: str, group: list[tuple[int, dict]]) -> Any:
    """The customer or order in a group of rows; RowError or ValidationError if it can't be
    stored."""
    if kind == ImportJob.Kind.CUSTOMERS:
        data = customer_from_row(group[0][1])
        customer_check(data)
        return data
    order = order_from_rows(group, merchant)
    problems = orders_check(merchant=merchant, orders=[order])
    if problems:
        raise problems[0]
    return order


# --- Import jobs (the dashboard's background imports) -----------------------------------


def import_job_create(*, merchant: Merchant, kind: str, upload, actor=None) -> ImportJob:
    """Saves the uploaded file and queues its import once the transaction commits."""
    if kind not in ImportJob.Kind.values:
        raise ValidationError({"kind": "Choose customers or orders."})
    job = ImportJob.objects.create(
        merchant=merchant,
        kind=kind,
        file=upload,
        original_name=upload.name[:255],
        size_bytes=upload.size or 0,
        created_by=actor,
    )
    import_run_task.delay_on_commit(job.pk)
    return job


# A running job whose heartbeat (moved on with every stored batch, a few seconds apart) is
# older than IMPORT_STALE_SECONDS (five minutes) lost its worker: it is picked up again
# where it stopped.


def _stale() -> timedelta:
    return timedelta(seconds=settings.IMPORT_STALE_SECONDS)


# A job started this many times without finishing fails, saying where, for a person to
# resume it: a row that kills its worker every time must not take the workers down forever.
MOST_RUNS = 5


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Runs a queued import, or picks up one whose worker died (its heartbeat is stale)
    from the last batch it stored. A second delivery of the task while the job runs finds
    it claimed and does nothing."""
    at = now()
    claimable = Q(state=ImportJob.State.QUEUED) | Q(
        state=ImportJob.State.RUNNING, heartbeat_at__lt=at - _stale()
    )
    claimed = ImportJob.objects.filter(claimable, pk=job_id, runs__lt=MOST_RUNS).update(
        state=ImportJob.State.RUNNING, heartbeat_at=at, runs=F("runs") + 1,
        started_at=Coalesce("started_at", Value(at)),
    )  # fmt: skip
    if not claimed:
        _give_up_if_stuck(job_id=job_id, at=at)
        return None
    job = ImportJob.objects.select_related("merchant").get(pk=job_id)
    pending: list[ImportRowError] = []

    def on_error(row: int, column: str, reason: str) -> None:
        pending.append(
            ImportRowError(job=job, row_number=row, column=column[:60], reason=reason[:255])
        )

    def on_progress(progress: Progress) -> None:
        # The batch's errors and the counts after it, together: a run picked up again
        # starts after them and reports each bad row once.
        with transaction.atomic():
            ImportRowError.objects.bulk_create(pending)
            pending.clear()
            ImportJob.objects.filter(pk=job.pk).update(
                rows_done=progress.rows_done,
                rows_ok=progress.rows_ok,
                rows_failed=progress.rows_failed,
                bytes_done=progress.bytes_done,
                heartbeat_at=now(),
            )

    resume = Progress(rows_done=job.rows_done, rows_ok=job.rows_ok,
                      rows_failed=job.rows_failed, bytes_done=job.bytes_done)  # fmt: skip
    try:
        with job.file.open("rb") as stream:
            import_stream(
                merchant=job.merchant,
                kind=job.kind,
                stream=stream,
                on_error=on_error,
                on_progress=on_progress,
                resume=resume,
            )
    except (ImportRefused, UnicodeDecodeError, csv.Error) as error:
        reason = (
            str(error)
            if isinstance(error, ImportRefused)
            else f"The file can't be read as UTF-8 CSV ({error})."
        )
        return _failed(job, reason)
    except Exception as error:
        # Whatever else stops the job is said on it, not left "running" for good: the rows
        # stored so far stay, and the message names where it stopped.
        logger.exception("Import %s stopped", job.pk)
        done = ImportJob.objects.values_list("rows_done", flat=True).get(pk=job.pk)
        return _failed(job, f"The import stopped after row {done:,}: {type(error).__name__}.")
    # New orders move customers between segments and personas: refresh before saying done.
    segments_and_personas_refresh(merchant=job.merchant)
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.DONE, finished_at=now())
    return ImportJob.objects.get(pk=job.pk)


def _give_up_if_stuck(*, job_id: int, at) -> None:
    """A job whose worker died MOST_RUNS times fails, saying where, once it is stale."""
    stuck = ImportJob.objects.filter(
        pk=job_id, state=ImportJob.State.RUNNING, heartbeat_at__lt=at - _stale(),
        runs__gte=MOST_RUNS,
    ).first()  # fmt: skip
    if stuck is not None:
        _failed(stuck, f"The import stopped {stuck.runs} times after row {stuck.rows_done:,}. "
                       "Resume it to go on from there.")  # fmt: skip


def imports_stalled() -> list[int]:
    """The running imports whose worker died: their heartbeat is older than IMPORT_STALE_SECONDS."""
    return list(
        ImportJob.objects.filter(
            state=ImportJob.State.RUNNING, heartbeat_at__lt=now() - _stale()
        ).values_list("pk", flat=True)
    )


def imports_resume_stalled() -> int:
    """Queues each stalled import again (the periodic sweep); the task picks it up from
    where it stopped, or fails it after MOST_RUNS."""
    stalled = imports_stalled()
    for pk in stalled:
        import_run_task.delay(pk)
    return len(stalled)


def import_job_resume(*, job: ImportJob, actor=None) -> ImportJob:
    """A person resumes a failed import: it goes on from the last row it stored."""
    resumed = ImportJob.objects.filter(pk=job.pk, state=ImportJob.State.FAILED).update(
        state=ImportJob.State.QUEUED, failure="", finished_at=None, runs=0
    )
    if resumed:
        import_run_task.delay_on_commit(job.pk)
    return ImportJob.objects.get(pk=job.pk)


def _failed(job: ImportJob, reason: str) -> ImportJob:
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.FAILED, failure=reason[:255], finished_at=now()
    )
    return ImportJob.objects.get(pk=job.pk)
