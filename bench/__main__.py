"""`make bench`: python -m bench [--only NAME …] [--rounds N] [--seconds S] [--ingest N]
[--tickets N]

Creates the bench database (BENCH_DATABASE_URL, PostgreSQL), loads 1M customers and 10M
orders the first time (kept for later runs), and 1M feedback tickets the first time the
inbox scenario runs, runs the scenarios, prints the table and writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/regulars_bench"
SCENARIOS = (
    "segments", "pages", "dashboard", "one-order", "refresh-orders", "bulk", "tiers", "expiry",
    "loyalty-memory", "rewards-page", "inbox", "codes", "send", "winback",
)  # fmt: skip
# What every scenario runs on: settings, the shell and middleware, the bench itself.
SHARED_CODE = [
    "config", "merchants", "bench/__main__.py", "bench/harness.py", "pyproject.toml", "uv.lock",
]  # fmt: skip
PAGE_SHELL = ["templates/base.html", "templates/_document.html", "templates/partials"]
# The code each scenario exercises besides SHARED_CODE: a row measured on a commit is
# stale once any of these paths differs from that commit.
SCENARIO_CODE = {
    "segments": ["customers", "bench/customers.py"],
    "pages": ["customers", "templates/customers", "jinja2/customers", *PAGE_SHELL,
              "bench/customers.py", "bench/urls.py"],
    "dashboard": ["loyalty/selectors.py", "loyalty/views.py", "feedback/selectors.py",
                  "feedback/views.py", "feedback/metrics.py", "templates/merchants",
                  "templates/loyalty/partials", "templates/feedback/partials", *PAGE_SHELL,
                  "bench/customers.py", "bench/urls.py"],
    "one-order": ["customers", "loyalty", "bench/customers.py", "bench/urls.py"],
    "refresh-orders": ["customers", "loyalty", "bench/customers.py", "bench/urls.py"],
    "bulk": ["customers", "loyalty", "bench/customers.py"],
    "tiers": ["loyalty", "customers/inserts.py", "customers/models.py", "bench/loyalty.py"],
    "expiry": ["loyalty", "customers/inserts.py", "customers/models.py", "bench/loyalty.py"],
    "loyalty-memory": ["loyalty", "customers", "bench/loyalty.py"],
    "rewards-page": ["customers", "loyalty", "feedback/portal.py", "feedback/models.py",
                     "feedback/forms.py", "templates/portal", "templates/loyalty/portal",
                     "templates/feedback/portal", "templates/_document.html",
                     "templates/partials", "jinja2/loyalty", "campaigns", "jinja2/campaigns",
                     "bench/loyalty.py",
                     "bench/urls.py"],
    "inbox": ["feedback", "templates/feedback", "jinja2/feedback", *PAGE_SHELL,
              "bench/feedback.py", "bench/urls.py"],
    "codes": ["campaigns", "customers", "loyalty", "bench/campaigns.py", "bench/urls.py"],
    "send": ["campaigns", "customers", "loyalty/selectors.py", "templates/campaigns/email",
             "bench/campaigns.py"],
    "winback": ["campaigns", "customers", "loyalty/services/earning.py", "bench/winback.py"],
}  # fmt: skip


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BENCH_DATABASE_URL", DEFAULT_DB)
    env["DATABASE_URL"] = env["BENCH_DATABASE_URL"]
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    env.setdefault("CELERY_BROKER_URL", env["REDIS_URL"])
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.bench"
    env.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 50)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def _database_create(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--ingest", type=int, default=1_000_000, help="orders for bulk ingest")
    parser.add_argument(
        "--tickets", type=int, default=1_000_000, help="feedback tickets for the inbox scenario"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--refresh-rounds",
        type=int,
        default=1,
        help="rounds of the segment refresh: each is several minutes at 1M customers",
    )
    parser.add_argument("--seconds", type=int, default=10, help="per HTTP load run")
    parser.add_argument("--no-write", action="store_true", help="don't touch BENCHMARKS.md")
    parser.add_argument("--load-only", action="store_true", help="load the data and stop")
    args = parser.parse_args()

    env = _environment()
    os.environ.update(env)
    (ROOT / "var").mkdir(exist_ok=True)
    _database_create(env["DATABASE_URL"])
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench import customers as scenarios
    from bench.harness import command, commit_of, failed_row, report, say, table
    from customers.dataset import dataset_generate
    from customers.models import Customer, Order
    from merchants.models import Merchant

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    call_command("migrate", verbosity=0)
    merchant, _created = Merchant.objects.get_or_create(
        slug="bench", defaults={"name": "Bench Tea", "base_currency": "USD"}
    )
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    state_file = ROOT / "var" / f"bench-dataset-{database}.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    have = (
        Customer.objects.filter(merchant=merchant).count(),
        Order.objects.filter(merchant=merchant).count(),
    )
    if have != (args.customers, args.orders):
        if have != (0, 0):
            sys.exit(
                f"The bench merchant holds {have[0]:,} customers and {have[1]:,} orders, not "
                f"{args.customers:,} and {args.orders:,}: drop the bench database first."
            )
        say(f"Generating {args.customers:,} customers and {args.orders:,} orders…")
        result = dataset_generate(
            merchant=merchant,
            customers=args.customers,
            orders=args.orders,
            seed=1,
            on_progress=lambda table_, rows: say(f"  {rows:,} {table_}…"),
        )
        state = {"seconds": round(result.seconds), "date": started, "lines": result.lines}
        state_file.parent.mkdir(exist_ok=True)
        state_file.write_text(json.dumps(state))
    generation = (
        f"generated by `manage.py generate_dataset` in {state['seconds'] / 60:.0f} min "
        f"({state['date']})"
        if "seconds" in state
        else "generation time not recorded (dataset loaded outside `make bench`)"
    )
    dataset = (
        f"{args.customers:,} customers and {args.orders:,} orders for one merchant, {generation}."
    )
    if "inbox" in args.only or args.load_only:
        state = _tickets_ready(merchant, args.tickets, state, state_file, started)
    if "tickets" in state:
        dataset += (
            f" {state['tickets']['count']:,} feedback tickets, generated by "
            f"`manage.py generate_tickets` in {state['tickets']['seconds'] / 60:.0f} min "
            f"({state['tickets']['date']})."
        )
    if args.load_only:
        small, _made = Merchant.objects.get_or_create(
            slug="bench-100k", defaults={"name": "Bench Tea (100k)", "base_currency": "USD"}
        )
        if not Customer.objects.filter(merchant=small).exists():
            say("Generating 100,000 customers and 1,000,000 orders for the 100k runs…")
            dataset_generate(merchant=small, customers=100_000, orders=1_000_000, seed=2)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = f"PostgreSQL {cursor.fetchone()[0]}"
        cursor.execute("ANALYZE")

    ctx = scenarios.Context(
        merchant=merchant,
        env=env,
        rounds=args.rounds,
        refresh_rounds=args.refresh_rounds,
        seconds=args.seconds,
        ingest_orders=args.ingest,
    )
    from bench import campaigns, dashboard, feedback, loyalty, refresh, winback

    def loyalty_memory(ctx):
        small, _made = Merchant.objects.get_or_create(
            slug="bench-100k", defaults={"name": "Bench Tea (100k)", "base_currency": "USD"}
        )
        if not Customer.objects.filter(merchant=small).exists():
            say("Generating 100,000 customers and 1,000,000 orders for the memory runs…")
            dataset_generate(merchant=small, customers=100_000, orders=1_000_000, seed=2)
        return loyalty.run_memory(ctx, small)

    runs = {
        "tiers": loyalty.run_tiers,
        "expiry": loyalty.run_expiry,
        "loyalty-memory": loyalty_memory,
        "rewards-page": loyalty.run_portal,
        "pages": scenarios.run_pages,
        "one-order": scenarios.run_one_order,
        "refresh-orders": refresh.run_refresh_orders,
        "dashboard": dashboard.run_dashboard,
        "segments": scenarios.run_segments,
        "bulk": scenarios.run_bulk_ingest,
        "inbox": feedback.run_inbox,
        "codes": campaigns.run_codes,
        "send": campaigns.run_send,
        "winback": winback.run_winback,
    }
    rows = []
    for name in SCENARIOS:
        if name in args.only:
            say(f"{name}:")
            began = time.monotonic()
            code = [*SHARED_CODE, *SCENARIO_CODE[name]]
            commit = commit_of(code)
            if not commit:
                say("  (the code it runs has uncommitted changes: its rows will read stale)")
            try:
                measured = runs[name](ctx)
            except Exception as failure:
                import traceback

                traceback.print_exc()
                measured = [failed_row(name, failure)]
            for row in measured:
                row.code, row.commit = code, commit
                rows.append(row)
            say(f"  ({time.monotonic() - began:.0f} s)")
    say("")
    say(table(rows))
    if args.no_write:
        return
    for row in rows:
        row.measured = f"{started} by `{command()}`"
    rows = _rows_merged(rows, full=set(args.only) == set(SCENARIOS))
    _benchmarks_write(report(rows, dataset=dataset, postgres=postgres))


def _tickets_ready(merchant, tickets: int, state: dict, state_file: Path, started: str) -> dict:
    """The bench merchant's tickets, generated up to `tickets` the first time (kept for
    later runs); the generation time goes to the state file beside the customers'."""
    from bench.harness import say
    from feedback.dataset import tickets_generate
    from feedback.models import Feedback

    have = Feedback.objects.filter(merchant=merchant).count()
    if have >= tickets:
        return state
    say(f"Generating {tickets - have:,} feedback tickets…")
    result = tickets_generate(
        merchant=merchant,
        tickets=tickets - have,
        seed=1 + have,
        on_progress=lambda table_, rows: say(f"  {rows:,} {table_}…"),
    )
    say(
        f"  {result.tickets:,} tickets, {result.messages:,} messages, {result.cycles:,} "
        f"cycles, {result.breaches:,} SLA breaches, {result.surveys:,} CSAT surveys in "
        f"{result.seconds:.0f} s ({result.seconds / result.tickets * 100_000:.0f} s per 100k)"
    )
    state = {
        **state,
        "tickets": {"count": have + result.tickets, "seconds": round(result.seconds),
                    "date": started},
    }  # fmt: skip
    state_file.parent.mkdir(exist_ok=True)
    state_file.write_text(json.dumps(state))
    return state


def _rows_merged(fresh: list, full: bool = False) -> list:
    """This run's rows, plus the last figures of scenarios it did not run (none after a
    full run). The store is committed beside the bench, so a partial run on a new machine
    keeps the other rows, which read stale once their code changes."""
    from dataclasses import asdict

    from bench.harness import Row

    store = ROOT / "bench" / "last-run.json"
    kept = (
        [Row(**row) for row in json.loads(store.read_text())] if store.exists() and not full else []
    )
    names = {row.scenario for row in fresh}
    order = [row.scenario for row in kept] + [r.scenario for r in fresh if r.scenario not in
             {k.scenario for k in kept}]  # fmt: skip
    merged = {row.scenario: row for row in kept if row.scenario not in names}
    merged.update({row.scenario: row for row in fresh})
    rows = [merged[name] for name in order if name in merged]
    store.write_text(json.dumps([asdict(row) for row in rows], indent=1, ensure_ascii=False) + "\n")
    return rows


def _benchmarks_write(run: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    head = path.read_text().split("<!-- last run -->")[0] if path.exists() else ""
    path.write_text(head.rstrip() + "\n\n<!-- last run -->\n" + run + "\n")


if __name__ == "__main__":
    main()
