"""make bench scenario of feedback/: the staff inbox at 1M tickets (the list's first page,
the unassigned view, a search, and the ticket page) against bare views that fetch the same
rows by raw SQL, with the number of queries each page makes."""

from __future__ import annotations

import time

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.customers import ROTATING_PATH, _load_row, _staff_cookie
from bench.harness import Row, loads_compared, median, same_page, say, web_server, wrk
from bench.loyalty import program_ready
from customers.models import Customer
from feedback.models import Attachment, CsatSurvey, Cycle, Feedback, Message, SlaBreach
from merchants.models import Merchant, User

TICKET_SAMPLE = 500
# In about one English subject in twelve ("Refund for order …", "Still waiting for my
# refund"): the first page is found among the newest thousand tickets.
SEARCH_WORD = "refund"
NOWHERE_WORD = "voucher"


def _vacuum() -> None:
    """What autovacuum would have done after the load: the visibility map set (index-only
    scans) and fresh statistics."""
    with connection.cursor() as cursor:
        for model in (Feedback, Message, Cycle, SlaBreach, CsatSurvey, Attachment):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")


def _sample(merchant: Merchant) -> list[int]:
    """500 tickets of customers, the same ones on every run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM feedback_feedback WHERE merchant_id = %s AND customer_id IS NOT NULL "
            "ORDER BY md5(id::text) LIMIT %s",
            [merchant.pk, TICKET_SAMPLE],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _threads(merchant: Merchant, ids: list[int]) -> dict[int, int]:
    """Of the sample, one ticket per thread length (1 to 4 messages)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (n) n, feedback_id FROM (SELECT feedback_id, count(*) AS n "
            "FROM feedback_message WHERE feedback_id = ANY(%s) GROUP BY feedback_id) x "
            "ORDER BY n, feedback_id",
            [ids],
        )
        return dict(cursor.fetchall())


def _queries(merchant: Merchant, paths: list[str]) -> list[int]:
    """Queries each page makes, served in this process as the web server would."""
    user = User.objects.get(email=f"owner@{merchant.slug}.bench.test")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    counts = []
    for path in paths:
        client.get(path)  # the session and per-process caches warm, as on a busy server
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        counts.append(len(captured))
    return counts


def _fruitless_search_ms(merchant: Merchant) -> float:
    """One search among closed tickets (most of them) for a word no subject holds: without
    an index on the words of subjects, the page would read every closed ticket."""
    user = User.objects.get(email=f"owner@{merchant.slug}.bench.test")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = client.get(f"/feedback/?view=all&state=closed&q={NOWHERE_WORD}")
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"the search answered {response.status_code}")
    return median(timings)


def run_inbox(ctx) -> list[Row]:
    merchant = ctx.merchant
    # The ticket page shows the customer's tier and points: every customer has an account.
    program_ready(merchant)
    _vacuum()
    cookie = _staff_cookie(merchant)
    headers = {"Cookie": cookie}
    ids = _sample(merchant)
    listed = ", ".join(str(pk) for pk in ids)
    bare = f"/bench/bare/{merchant.pk}/feedback/"
    lists = [
        ("inbox, first page (all)", "/feedback/?view=all", f"{bare}?view=all"),
        ("inbox, unassigned", "/feedback/?view=unassigned", f"{bare}?view=unassigned"),
        (
            f"inbox, search “{SEARCH_WORD}”",
            f"/feedback/?view=all&q={SEARCH_WORD}",
            f"{bare}?view=all&q={SEARCH_WORD}",
        ),
    ]
    threads = _threads(merchant, ids)
    tickets = Feedback.objects.filter(merchant=merchant).count()
    messages = Message.objects.filter(merchant=merchant).count()
    customers = Customer.objects.filter(merchant=merchant).count()
    data = f"{tickets:,} tickets ({messages:,} messages), {customers:,} customers"
    with web_server(ctx.env) as base:
        # Each bare view must answer the very page ours does (a signed-out session or a
        # missing page would answer a redirect or an error page fast, and fail this too).
        sizes = {
            ours: same_page(base, ours, theirs, headers)
            for ours, theirs in [(o, t) for _name, o, t in lists]
            + [(f"/feedback/{pk}/", f"{bare}{pk}/") for pk in list(threads.values())[:4]]
        }

        def page(url: str, lua: str | None = None):
            return lambda: wrk(url, headers=headers, lua=lua, seconds=ctx.seconds)

        cases = [(name, page(base + ours), page(base + theirs)) for name, ours, theirs in lists]
        cases.append(
            (
                f"ticket page ({len(ids)} random tickets)",
                page(base, ROTATING_PATH % (listed, "/feedback/%d/")),
                page(base, ROTATING_PATH % (listed, f"{bare}%d/")),
            )
        )
        rows = []
        for name, ours, baseline in cases:
            say(f"  {name}…")
            mine, theirs = loads_compared(ours, baseline, ctx.rounds)
            rows.append(_load_row(name, data, mine, theirs))
    list_queries = _queries(merchant, [ours for _name, ours, _theirs in lists])
    ticket_queries = _queries(merchant, [f"/feedback/{pk}/" for pk in threads.values()])
    bare_queries = _queries(merchant, [theirs for _name, _ours, theirs in lists])
    bare_ticket = _queries(merchant, [f"{bare}{pk}/" for pk in threads.values()])
    for row, count, bare_count, (_name, ours, _theirs) in zip(
        rows, list_queries, bare_queries, lists, strict=False
    ):
        row.notes.append(f"{count} queries per page (bare view: {bare_count})")
        row.notes.append(f"the bare view answers the same {sizes[ours]:,} bytes (checked)")
    fixed = len(set(ticket_queries)) == 1
    rows[-1].holds = rows[-1].holds and fixed
    rows[-1].notes.append(
        f"queries per ticket page for threads of {', '.join(map(str, threads))} messages: "
        f"{ticket_queries} (bare view: {bare_ticket})" + ("" if fixed else " — NOT A FIXED NUMBER")
    )
    rows[-1].notes.append("the bare view answers the same page for threads of each length "
                          "(checked)")  # fmt: skip
    rows[2].notes.append(
        f"the list shows unfinished tickets unless a state is chosen; a search among all "
        f"closed tickets for a word none holds: {_fruitless_search_ms(merchant):,.0f} ms a page"
    )
    rows[0].notes.append(
        "first pages, 50 rows each, newest activity first; the ticket page shows the thread "
        "with authors and the customer's orders, spend, tier, points and 5 latest tickets"
    )
    return rows
