"""Promotion codes at 1M customers and 1M codes: validate + redeem over HTTP against a bare
view doing the same guarded statements in raw SQL; generating 1M unique codes against a
server-side COPY of the same rows; the generator's memory from 100k to 1M codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parseaddr
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt

from bench.harness import ROOT, Row, median, say

PROMOTION = "Bench 10% off"
SAMPLE = 100_000
SLICE = 8_000  # the codes and customers one wrk run may use, split between its 2 threads

# --- The bare view --------------------------------------------------------------------------

KEY_SQL = "SELECT key_hash, merchant_id, scopes, revoked_at FROM merchants_apikey WHERE prefix = %s"
CUSTOMER_SQL = "SELECT id FROM customers_customer WHERE merchant_id = %s AND external_id = %s"
CODE_SQL = """
SELECT c.id, c.single_use, c.customer_id, p.id, p.is_active, p.starts_at, p.ends_at,
  p.value, p.min_spend, p.usage_limit, p.per_customer_limit, p.budget, p.taken, p.committed,
  (SELECT count(*) FROM campaigns_codeuse u WHERE u.promotion_id = p.id
     AND u.customer_id = %s AND u.state IN ('reserved', 'redeemed')),
  EXISTS (SELECT 1 FROM campaigns_codeuse u WHERE u.single_code_id = c.id
     AND u.state IN ('reserved', 'redeemed'))
FROM campaigns_code c JOIN campaigns_promotion p ON p.id = c.promotion_id
WHERE c.merchant_id = %s AND c.code = %s
"""
USE_SQL = """
INSERT INTO campaigns_codeuse (merchant_id, promotion_id, code_id, customer_id, slot,
  single_code_id, state, discount, currency, cart_total, order_id, order_external_id,
  reserved_until, redeemed_at, ended_at, created_at)
VALUES (%s, %s, %s, %s, %s, %s, 'redeemed', %s, 'USD', %s, %s, %s, NULL, %s, NULL, %s)
ON CONFLICT DO NOTHING RETURNING id
"""
TAKE_SQL = """
UPDATE campaigns_promotion SET taken = taken + 1, committed = committed + %s
WHERE id = %s AND (usage_limit IS NULL OR taken < usage_limit)
  AND (budget IS NULL OR committed + %s <= budget) RETURNING id
"""
ATTEMPT_SQL = """
INSERT INTO campaigns_codeattempt (merchant_id, code, promotion_id, customer_id, action,
  accepted, reason, detail, cart_total, discount, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, '', %s, %s, %s)
"""


def _bare_answer(request: HttpRequest, code: str, redeem: bool) -> JsonResponse:
    """What a skilled engineer would write by hand for the checkout's call: the API key,
    the customer, the code with its promotion and her uses in one statement, the checks,
    the discount; for a redemption the use (the unique constraints hold the per-customer
    and per-code limits) and the guarded UPDATE of the promotion's counters; the attempt."""
    raw = request.headers.get("Authorization", "").removeprefix("Bearer ")
    body = json.loads(request.body)
    at = now()
    with connection.cursor() as cursor:
        cursor.execute(KEY_SQL, [raw[3:].split("_", 1)[0]])
        key = cursor.fetchone()
        if not key or key[0] != hashlib.sha256(raw.encode()).hexdigest() or key[3]:
            return JsonResponse({"detail": "unauthorised"}, status=401)
        merchant_id = key[1]
        cursor.execute(CUSTOMER_SQL, [merchant_id, body["customer"]["external_id"]])
        customer_id = cursor.fetchone()[0]
        code = code.strip().upper()
        subtotal = Decimal(body["cart"]["subtotal"])
        with transaction.atomic():
            cursor.execute(CODE_SQL, [customer_id, merchant_id, code])
            (code_id, single, bound, promotion_id, active, starts, ends, value, min_spend, limit,
             per_customer, budget, taken, committed, mine, used) = cursor.fetchone()  # fmt: skip
            discount = (subtotal * value / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            reason = (
                "inactive" if not active
                else "not_started" if starts and at < starts
                else "expired" if ends and at >= ends
                else "not_yours" if bound and bound != customer_id
                else "min_spend" if subtotal < min_spend
                else "already_used" if mine >= per_customer
                else "code_used" if single and used
                else "limit_reached" if limit is not None and taken >= limit
                else "budget_spent" if budget is not None and committed + discount > budget
                else ""
            )  # fmt: skip
            if redeem and not reason:
                order = body.get("order_external_id", "")
                cursor.execute(
                    "SELECT min(id) FROM customers_order WHERE merchant_id = %s "
                    "AND source IN ('api', 'shopify', 'woocommerce', 'csv') AND external_id = %s",
                    [merchant_id, order],
                )
                found = cursor.fetchone()
                found = found if found and found[0] else None
                cursor.execute(USE_SQL, [merchant_id, promotion_id, code_id, customer_id,
                                         mine + 1, code_id if single else None, discount,
                                         subtotal, found[0] if found else None, order, at,
                                         at])  # fmt: skip
                if cursor.fetchone() is None:
                    reason = "code_used"
                else:
                    cursor.execute(TAKE_SQL, [discount, promotion_id, discount])
                    if cursor.fetchone() is None:
                        transaction.set_rollback(True)
                        reason = "limit_reached"
        accepted = not reason
        cursor.execute(ATTEMPT_SQL, [merchant_id, code, promotion_id, customer_id,
                                     "redeem" if redeem else "validate", accepted, reason,
                                     subtotal, discount if accepted else 0, at])  # fmt: skip
    return JsonResponse({
        "accepted": accepted, "reason": reason, "code": code,
        "discount": f"{discount if accepted else 0:.2f}", "currency": "USD",
        "promotion_id": promotion_id,
    })  # fmt: skip


@csrf_exempt
def bare_code_validate(request: HttpRequest, merchant_id: int, code: str) -> JsonResponse:
    return _bare_answer(request, code, redeem=False)


@csrf_exempt
def bare_code_redeem(request: HttpRequest, merchant_id: int, code: str) -> JsonResponse:
    return _bare_answer(request, code, redeem=True)


# --- Set-up ---------------------------------------------------------------------------------


def _promotion(merchant, name: str, count: int):
    """The bench promotion with `count` unique codes, made by the product's own generator
    the first time and kept."""
    from campaigns.models import Code, Promotion
    from campaigns.services.batches import batch_create, codes_make

    promotion, _made = Promotion.objects.get_or_create(
        merchant=merchant, name=name, defaults={
            "kind": Promotion.Kind.PERCENT, "value": Decimal("10.00"),
            "codes": Promotion.Codes.UNIQUE, "per_customer_limit": 1,
        },
    )  # fmt: skip
    if Code.objects.filter(promotion=promotion).count() < count:
        say(f"  making {count:,} codes for {name} (once)…")
        codes_make(batch_id=batch_create(promotion=promotion, count=count, prefix="BN-").pk)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE campaigns_code")
    return promotion


def _pairs(merchant, promotion) -> tuple[list[str], list[str]]:
    """100,000 codes nobody has used and as many customers who haven't used the promotion,
    each drawn at random."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code FROM campaigns_code c WHERE promotion_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM campaigns_codeuse u WHERE u.code_id = c.id) "
            "ORDER BY md5(id::text) LIMIT %s",
            [promotion.pk, SAMPLE],
        )
        codes = [code for (code,) in cursor.fetchall()]
        cursor.execute(
            "SELECT external_id FROM customers_customer k WHERE merchant_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM campaigns_codeuse u WHERE u.customer_id = k.id "
            "AND u.promotion_id = %s) ORDER BY md5(id::text) LIMIT %s",
            [merchant.pk, promotion.pk, SAMPLE],
        )
        people = [external_id for (external_id,) in cursor.fetchall()]
    return codes, people


# Each thread takes its own half of the run's slice; its connections validate the next code
# for the next customer, then redeem it against an order.
CODES_SCRIPT = """
codes = {%(codes)s}
people = {%(people)s}
local threads = 0
function setup(thread)
  thread:set("first", %(first)d + threads * %(half)d)
  threads = threads + 1
end
local counter = 0
request = function()
  counter = counter + 1
  local n = first + math.floor((counter - 1) / 2)
  local body = string.format(
    '{"customer":{"external_id":"%%s"},"cart":{"subtotal":"40.00","shipping":"5.00",' ..
    '"lines":[],"other_codes":[]}%%s}', people[n],
    counter %% 2 == 0 and string.format(',"order_external_id":"bench-%%s"', codes[n]) or "")
  local verb = counter %% 2 == 1 and "validate" or "redeem"
  return wrk.format("POST", string.format("%(path)s", codes[n], verb), nil, body)
end
"""


def run_codes(ctx) -> list[Row]:
    from bench.customers import _vacuum
    from bench.harness import loads_compared, web_server, wrk
    from campaigns.models import CodeAttempt, CodeUse
    from customers.models import Customer
    from merchants.api_keys import api_key_create
    from merchants.models import ApiKey

    merchant = ctx.merchant
    promotion = _promotion(merchant, PROMOTION, 1_000_000)
    codes, people = _pairs(merchant, promotion)
    runs_needed = 2 * (ctx.rounds + 1)
    if len(codes) < SLICE * runs_needed or len(people) < SLICE * runs_needed:
        raise RuntimeError("not enough unused codes or customers left: drop the bench promotion")
    ApiKey.objects.filter(merchant=merchant, name="bench-redeem").delete()
    _key, raw = api_key_create(merchant=merchant, name="bench-redeem", scopes=["redeem"])
    headers = {"Authorization": f"Bearer {raw}", "Content-Type": "application/json"}
    quoted = {
        "codes": ",".join(f'"{c}"' for c in codes),
        "people": ",".join(f'"{p}"' for p in people),
    }
    slices = iter(range(runs_needed))
    _vacuum()

    def load(path: str):
        def run():
            first = next(slices) * SLICE + 1
            lua = CODES_SCRIPT % {**quoted, "first": first, "half": SLICE // 2, "path": path}
            return wrk(base, headers=headers, lua=lua, seconds=ctx.seconds)

        return run

    before = CodeUse.objects.filter(promotion=promotion).count()
    attempts_before = CodeAttempt.objects.filter(promotion=promotion).count()
    last_attempt = CodeAttempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with web_server(ctx.env) as base:
        say("  validate + redeem…")
        mine, theirs = loads_compared(
            load("/api/v1/promotions/codes/%s/%s"),
            load(f"/bench/bare/{merchant.pk}/codes/%s/%s/"),
            ctx.rounds,
        )
    answered = sum(x.requests for x in mine) + sum(x.requests for x in theirs)
    uses = CodeUse.objects.filter(promotion=promotion).count() - before
    attempts = CodeAttempt.objects.filter(promotion=promotion).count() - attempts_before
    # A redemption refused would be a fault. A validation may be told "already used": its
    # pair's redemption went out on another connection and was answered first.
    run_attempts = CodeAttempt.objects.filter(promotion=promotion, pk__gt=last_attempt)
    refused = run_attempts.filter(accepted=False, action=CodeAttempt.Action.REDEEM).count()
    raced = run_attempts.filter(accepted=False, action=CodeAttempt.Action.VALIDATE).count()
    promotion.refresh_from_db()
    rps = median([x.requests_per_second for x in mine])
    p99 = median([x.p99_ms for x in mine])
    bare_rps = median([x.requests_per_second for x in theirs])
    customers = Customer.objects.filter(merchant=merchant).count()
    row = Row(
        scenario="promotion code: validate + redeem (HTTP, 8 connections)",
        data=f"{customers:,} customers, {promotion.code_set.count():,} codes",
        ours=f"{rps:,.0f} req/s, p99 {p99:.0f} ms",
        baseline=f"{bare_rps:,.0f} req/s, p99 {median([x.p99_ms for x in theirs]):.0f} ms "
        "(bare view: raw SQL, the same guarded statements)",
        ratio=bare_rps / rps,
        budget="≥ 300 req/s, p99 ≤ 50 ms",
        holds=rps >= 300 and p99 <= 50 and refused == 0 and promotion.taken >= uses,
        notes=[
            f"req/s per round, ours {[round(x.requests_per_second) for x in mine]}, "
            f"bare {[round(x.requests_per_second) for x in theirs]}",
            f"every second request redeems: {uses:,} uses and {attempts:,} attempts recorded "
            f"for about {answered:,} answers (warm-up runs included), {refused} redemptions "
            f"refused, {raced} validations answered after their pair's redemption; each pair "
            "is a new customer and an unused code of the 1M",
        ],
    )
    return [row, *_generation_rows(ctx)]


# --- Generating codes -----------------------------------------------------------------------

MEASURE = """
import time, django
django.setup()
from campaigns.models import Promotion
from campaigns.services.batches import batch_create, codes_make
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
promotion = Promotion.objects.get(pk={promotion})
batch = batch_create(promotion=promotion, count={count}, prefix="G{tag}")
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
started = time.perf_counter()
codes_make(batch_id=batch.pk)
seconds = time.perf_counter() - started
print(max(0, status("VmHWM") - before), seconds)
"""


def _make_alone(env: dict, promotion_id: int, count: int, tag: str) -> tuple[float, float]:
    """Memory growth (MB) and seconds of making `count` codes in a fresh process."""
    code = MEASURE.format(promotion=promotion_id, count=count, tag=tag)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    return int(out[-2]) / 2**20, float(out[-1])


def _copied(promotion_id: int, merchant_id: int, folder: Path) -> float:
    """Seconds of a server-side COPY of the same rows the generator wrote (read back, the
    generator's rows removed, then copied in again from a file the server reads)."""
    path = folder / "bench-codes.csv"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT merchant_id, promotion_id, code, single_use, batch_id, created_at "
            "FROM campaigns_code WHERE promotion_id = %s",
            [promotion_id],
        )
        rows = cursor.fetchall()
        with open(path, "w") as out:
            for row in rows:
                out.write(f"{row[0]},{row[1]},{row[2]},t,{row[4]},{row[5].isoformat()}\n")
        os.chmod(path, 0o644)
        cursor.execute("DELETE FROM campaigns_code WHERE promotion_id = %s", [promotion_id])
        started = time.perf_counter()
        cursor.execute(
            "COPY campaigns_code (merchant_id, promotion_id, code, single_use, batch_id, "
            f"created_at) FROM '{path}' WITH (FORMAT csv)"
        )
        seconds = time.perf_counter() - started
        cursor.execute("DELETE FROM campaigns_code WHERE promotion_id = %s", [promotion_id])
    path.unlink()
    return seconds


def _generation_rows(ctx) -> list[Row]:
    from campaigns.models import CodeBatch, Promotion

    merchant = ctx.merchant
    scratch, _made = Promotion.objects.get_or_create(
        merchant=merchant, name="Bench generated", defaults={
            "kind": Promotion.Kind.PERCENT, "value": Decimal("5.00"),
            "codes": Promotion.Codes.UNIQUE,
        },
    )  # fmt: skip
    env = {**os.environ, **ctx.env}
    folder = Path("/tmp/regulars-bench")
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)
    ours, copies, memory = [], [], {}
    say("  making 1M codes…")
    for n in range(max(1, ctx.rounds // 2)):
        CodeBatch.objects.filter(promotion=scratch).delete()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE campaigns_code")
        grown, seconds = _make_alone(env, scratch.pk, 1_000_000, "ABCDEFGH"[n])
        ours.append(seconds)
        memory[1_000_000] = max(memory.get(1_000_000, 0), grown)
        copies.append(_copied(scratch.pk, merchant.pk, folder))
        say(f"    ours {seconds:.1f} s (+{grown:.0f} MB), COPY {copies[-1]:.1f} s")
    CodeBatch.objects.filter(promotion=scratch).delete()
    grown, small_seconds = _make_alone(env, scratch.pk, 100_000, "S")
    memory[100_000] = grown
    with connection.cursor() as cursor:  # 100k codes: not fetched one by one to delete
        cursor.execute("DELETE FROM campaigns_code WHERE promotion_id = %s", [scratch.pk])
    CodeBatch.objects.filter(promotion=scratch).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_code")
    mine, floor = median(ours), median(copies)
    share = floor / mine
    small, big = memory[100_000], memory[1_000_000]
    return [
        Row(
            scenario="generating 1M unique codes (Celery task's work, COPY path)",
            data="1,000,000 codes, 8 characters and a prefix, beside 1M kept",
            ours=f"{mine:.1f} s ({1_000_000 / mine:,.0f} codes/s)",
            baseline=f"{floor:.1f} s: server-side COPY of the same rows from a file",
            ratio=mine / floor,
            budget="≥ 25% of COPY's rate",
            holds=share >= 0.25,
            notes=[
                f"ours per round {[round(x, 1) for x in ours]} s, COPY "
                f"{[round(x, 1) for x in copies]} s; ours is {share:.0%} of COPY's rate",
                "ours draws each code at random, skips any the shop already has (ON CONFLICT), "
                "and moves the progress bar every 10,000 codes",
            ],
        ),
        Row(
            scenario="memory of generating codes",
            data="100,000 and 1,000,000 codes",
            ours=f"+{small:.1f} MB → +{big:.1f} MB; {small_seconds:.1f} s → {mine:.1f} s",
            baseline="10 times the codes",
            ratio=(big + 1) / (small + 1),
            budget="memory growth flat (≤ 1.5× + 5 MB)",
            holds=big <= small * 1.5 + 5,
            notes=["memory is the growth of the process's peak resident size during the run"],
        ),
    ]


# --- Sending marketing mail ---------------------------------------------------------------

MAIL_MERCHANT = "bench-mail"
RECIPIENTS = 100_000
SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Count:
    taken = 0
    async def handle_DATA(self, server, session, envelope):
        Count.taken += 1
        return "250 OK"
controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
    print(Count.taken, flush=True)
"""
SEND = """
import time, django
django.setup()
from campaigns.services.flows import due_claim
from campaigns.services.sending import messages_send
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
started = time.perf_counter()
sent = 0
for chunk in due_claim():
    sent += sum(1 for outcome in messages_send(message_ids=chunk).values() if outcome == "sent")
seconds = time.perf_counter() - started
print(max(0, status("VmHWM") - before), seconds, sent)
"""
BARE_SEND = """
import smtplib, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
sent = 0
with smtplib.SMTP("127.0.0.1", port) as server, open(path, "rb") as messages:
    while line := messages.readline():
        sender, to, length = line.split(b" ")
        server.sendmail(sender.decode(), [to.decode()], messages.read(int(length)))
        sent += 1
print(time.perf_counter() - started, sent)
"""


class _Sink:
    """The SMTP server both senders talk to, in its own process: it counts and drops."""

    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SINK, str(port)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)  # fmt: skip
        assert self.process.stdout.readline().strip() == "ready"

    def close(self) -> int:
        out, _err = self.process.communicate("", timeout=60)
        return int(out.split()[-1])


def _mail_audience(count: int):
    """A shop of its own with `count` consenting customers and a marketing template."""
    from campaigns.models import MessageTemplate, SendingSettings
    from customers.models import Customer
    from merchants.models import Merchant

    merchant, _made = Merchant.objects.get_or_create(
        slug=MAIL_MERCHANT, defaults={"name": "Bench Mail Tea", "base_currency": "USD"}
    )
    have = Customer.objects.filter(merchant=merchant).count()
    at = now()
    for first in range(have, count, 10_000):
        Customer.objects.bulk_create(
            Customer(merchant=merchant, external_id=f"m{n}", email=f"m{n}@mail.bench.test",
                     first_name=f"Reader{n}", language=("en", "ar", "fa", "ru")[n % 4],
                     marketing_consent=True, created_at=at, updated_at=at)
            for n in range(first, min(first + 10_000, count))
        )  # fmt: skip
    SendingSettings.objects.update_or_create(merchant=merchant,
                                             defaults={"cap_messages": 0,
                                                       "send_rate": 10 * RECIPIENTS})  # fmt: skip
    template, _made = MessageTemplate.objects.get_or_create(
        merchant=merchant, name="Bench news", defaults={
            "kind": MessageTemplate.Kind.MARKETING,
            "subject_en": "{{ first_name }}, our spring teas are in",
            "body_en": "Hello {{ first_name }},\n\nThe first flush from Darjeeling is here. "
                       "Come and taste it at {{ store_name }}.",
            "subject_ar": "{{ first_name }}، وصل شاي الربيع",
            "body_ar": "مرحبًا {{ first_name }}،\n\nوصل القطاف الأول من دارجيلنغ.",
            "subject_fa": "{{ first_name }}، چای بهاره رسید",
            "body_fa": "سلام {{ first_name }}،\n\nچای چین اول دارجلینگ رسید.",
            "subject_ru": "{{ first_name }}, весенний чай уже здесь",
            "body_ru": "Здравствуйте, {{ first_name }}!\n\nПервый сбор из Дарджилинга уже у нас.",
        },
    )  # fmt: skip
    return merchant, template


def _queue(merchant, template, count: int, tag: str) -> None:
    """`count` messages due now, one per customer, as a broadcast queues them."""
    from campaigns.models import Message
    from customers.models import Customer

    with connection.cursor() as cursor:  # the last round's, without fetching them first
        cursor.execute("DELETE FROM campaigns_messageevent WHERE merchant_id = %s", [merchant.pk])
        cursor.execute("DELETE FROM campaigns_message WHERE merchant_id = %s", [merchant.pk])
    at = now()
    ids = Customer.objects.filter(merchant=merchant).order_by("pk").values_list("pk", flat=True)
    batch = []
    for pk in ids[:count].iterator(chunk_size=10_000):
        batch.append(Message(merchant=merchant, customer_id=pk, template=template,
                             kind=template.kind, key=f"bench:{tag}:{pk}",
                             send_after=at))  # fmt: skip
        if len(batch) == 10_000:
            Message.objects.bulk_create(batch)
            batch = []
    Message.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_message")


def _prerendered(merchant, template, count: int, path: Path) -> None:
    """The same messages ours sends, rendered before the clock starts: one rendered per
    language, the recipient, her name and her unsubscribe link put in for each."""
    from campaigns.models import Message
    from campaigns.services.messages import message_render, unsubscribe_url
    from customers.mail import mail_message

    samples = {}
    with open(path, "wb") as out:
        rows = Message.objects.filter(merchant=merchant).select_related("customer", "merchant")
        for message in rows.order_by("pk")[:count].iterator(chunk_size=2_000):
            customer = message.customer
            if customer.language not in samples:
                link = unsubscribe_url(message)
                rendered = message_render(template=template, customer=customer,
                                          unsubscribe_url=link)  # fmt: skip
                headers = {"List-Unsubscribe": f"<{link}>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}  # fmt: skip
                email = mail_message(merchant=merchant, address=customer.email,
                                     subject=rendered.subject, text=rendered.text,
                                     html=rendered.html, headers=headers)  # fmt: skip
                samples[customer.language] = (
                    email.message().as_bytes(linesep="\r\n"),
                    customer,
                    link,
                )
            raw, first, link = samples[customer.language]
            raw = (raw.replace(first.email.encode(), customer.email.encode())
                   .replace(link.rsplit("/", 2)[1].encode(),
                            unsubscribe_url(message).rsplit("/", 2)[1].encode()))  # fmt: skip
            sender = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
            out.write(f"{sender} {customer.email} {len(raw)}\n".encode())
            out.write(raw)


def _send_alone(env: dict, port: int) -> tuple[float, float, int]:
    """Memory growth (MB), seconds and messages sent by one worker's send, in a fresh
    process, to the sink on `port`."""
    env = {**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    out = subprocess.run([sys.executable, "-c", SEND], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    return int(out[-3]) / 2**20, float(out[-2]), int(out[-1])


def run_send(ctx) -> list[Row]:
    from bench.harness import free_port

    merchant, template = _mail_audience(RECIPIENTS)
    env = {k: v for k, v in {**os.environ, **ctx.env}.items() if k != "EMAIL_BACKEND"}
    folder = Path("/tmp/regulars-bench")
    folder.mkdir(exist_ok=True)
    ours, bare, memory, arrived = [], [], {}, []
    rounds = max(1, ctx.rounds // 2)
    for n in range(rounds):
        say(f"  round {n + 1}: queueing {RECIPIENTS:,} messages…")
        _queue(merchant, template, RECIPIENTS, f"r{n}")
        path = folder / "bench-mail.bin"
        _prerendered(merchant, template, RECIPIENTS, path)
        port = free_port()
        sink = _Sink(port)
        grown, seconds, sent = _send_alone(env, port)
        arrived.append(sink.close())
        ours.append(seconds)
        memory[RECIPIENTS] = max(memory.get(RECIPIENTS, 0), grown)
        port = free_port()
        sink = _Sink(port)
        out = subprocess.run([sys.executable, "-c", BARE_SEND, str(port), str(path)],
                             check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
        sink.close()
        bare.append(float(out[0]))
        say(f"    ours {seconds:.1f} s ({sent:,} sent, +{grown:.0f} MB), bare {bare[-1]:.1f} s")
        if sent != RECIPIENTS or arrived[-1] != RECIPIENTS:
            raise RuntimeError(f"sent {sent:,}, the server took {arrived[-1]:,}")
        path.unlink()
    small = RECIPIENTS // 10
    _queue(merchant, template, small, "small")
    port = free_port()
    sink = _Sink(port)
    memory[small], small_seconds, _sent = _send_alone(env, port)
    sink.close()
    mine, floor = median(ours), median(bare)
    share = floor / mine
    return [
        Row(
            scenario="marketing send: render and send to a local SMTP server (one worker)",
            data=f"{RECIPIENTS:,} consenting customers in 4 languages, one message each",
            ours=f"{mine:.1f} s ({RECIPIENTS / mine:,.0f} messages/s)",
            baseline=f"{floor:.1f} s ({RECIPIENTS / floor:,.0f}/s): a bare smtplib loop "
            "sending the same messages, rendered before its clock starts",
            ratio=mine / floor,
            budget="≥ 50% of the bare loop's rate per worker",
            holds=share >= 0.5,
            notes=[
                f"ours per round {[round(x, 1) for x in ours]} s, bare "
                f"{[round(x, 1) for x in bare]} s; ours is {share:.0%} of the bare rate",
                "ours claims each chunk of 200 under its customers' locks, checks consent, "
                "suppression, the cap and quiet hours for the chunk in a few queries, renders "
                "each message in her language, sends it over one connection, marks it sent "
                "at once and writes her timeline; the server took every message",
            ],
        ),
        Row(
            scenario="memory of a marketing send",
            data=f"{small:,} and {RECIPIENTS:,} recipients",
            ours=f"+{memory[small]:.1f} MB → +{memory[RECIPIENTS]:.1f} MB; "
            f"{small_seconds:.1f} s → {mine:.1f} s",
            baseline="10 times the recipients",
            ratio=(memory[RECIPIENTS] + 1) / (memory[small] + 1),
            budget="memory growth flat (≤ 1.5× + 5 MB)",
            holds=memory[RECIPIENTS] <= memory[small] * 1.5 + 5,
            notes=["memory is the growth of the worker process's peak resident size"],
        ),
    ]
