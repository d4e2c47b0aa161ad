"""Unique codes made in batches, in the background, up to a million at a time; and a batch's
codes as CSV."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from campaigns.models import Code, CodeBatch, Promotion
from campaigns.services.shops import shop_push_queue
from customers.services.data import problems_raise, text_problem

# No 0/O, 1/I/L: what a customer reads off a card and types can't be mistaken.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MOST_CODES = 1_000_000
CHUNK = 10_000
# A batch may fill at most this share of the codes its length allows, so that drawing at
# random rarely repeats a code and the batch finishes in a few rounds.
FULLEST = 0.01


def batch_create(*, promotion: Promotion, count: int, prefix: str = "", length: int = 8
                 ) -> CodeBatch:  # fmt: skip
    """A batch to be made by codes_make (queued on commit by the caller's door)."""
    prefix = prefix.strip().upper()
    problems_raise({"prefix": text_problem(prefix)})
    errors = {}
    if not 1 <= count <= MOST_CODES:
        errors["count"] = [_("Between 1 and 1,000,000 codes.")]
    if not 4 <= length <= 20:
        errors["length"] = [_("Between 4 and 20 characters.")]
    elif count > len(ALPHABET) ** length * FULLEST:
        errors["length"] = [_("Too short for that many codes: make them longer.")]
    if any(ch not in ALPHABET for ch in prefix.replace("-", "")):
        errors["prefix"] = [_("Letters and digits without look-alikes (no 0, O, 1, I, L).")]
    if len(prefix) > 12:
        errors["prefix"] = [_("At most 12 characters.")]
    if promotion.codes != Promotion.Codes.UNIQUE:
        errors["promotion"] = [_("This promotion uses one public code.")]
    if errors:
        raise ValidationError(errors)
    return CodeBatch.objects.create(merchant_id=promotion.merchant_id, promotion=promotion,
                                    prefix=prefix, length=length, count=count)  # fmt: skip


def code_draw(*, prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def _drawn(batch: CodeBatch, how_many: int) -> list[str]:
    return [code_draw(prefix=batch.prefix, length=batch.length) for _ in range(how_many)]


def codes_make(*, batch_id: int) -> CodeBatch:
    """Makes the batch's codes in chunks, each chunk its own transaction, so `made` moves
    as they go (the progress bar) and a task run twice, or resumed after a crash, goes on
    from what is there: a code drawn twice, or already another batch's, is drawn again."""
    with transaction.atomic():
        batch = CodeBatch.objects.select_for_update().get(pk=batch_id)
        if batch.state == CodeBatch.State.DONE:
            return batch
        batch.state = CodeBatch.State.MAKING
        batch.save(update_fields=["state"])
    while True:
        with transaction.atomic():
            batch = CodeBatch.objects.select_for_update().get(pk=batch_id)
            made = Code.objects.filter(batch=batch).count()
            wanted = min(CHUNK, batch.count - made)
            if wanted <= 0:
                batch.made, batch.state, batch.finished_at = made, CodeBatch.State.DONE, now()
                batch.save(update_fields=["made", "state", "finished_at"])
                shop_push_queue(promotion=batch.promotion)
                return batch
            _codes_insert(batch, _drawn(batch, wanted))
            batch.made = Code.objects.filter(batch=batch).count()
            batch.save(update_fields=["made"])


def _codes_insert(batch: CodeBatch, codes: list[str]) -> None:
    """New codes, skipping any the merchant already has. On PostgreSQL through COPY into a
    temporary table and one INSERT … SELECT … ON CONFLICT DO NOTHING."""
    at = now()
    if connection.vendor != "postgresql":
        Code.objects.bulk_create(
            [Code(merchant_id=batch.merchant_id, promotion_id=batch.promotion_id, code=code,
                  batch=batch, single_use=True, created_at=at) for code in codes],
            ignore_conflicts=True,
        )  # fmt: skip
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS campaigns_new_code (code varchar(40)) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY campaigns_new_code (code) FROM STDIN") as copy:
            for code in codes:
                copy.write_row((code,))
        cursor.execute(
            "INSERT INTO campaigns_code (merchant_id, promotion_id, code, single_use, "
            "customer_id, batch_id, created_at) "
            "SELECT DISTINCT ON (code) %s, %s, code, true, NULL, %s, %s FROM campaigns_new_code "
            "ON CONFLICT (merchant_id, code) DO NOTHING",
            [batch.merchant_id, batch.promotion_id, batch.pk, at],
        )


def batch_csv(*, batch: CodeBatch) -> Iterator[str]:
    """The batch's codes as CSV lines (code, promotion), read in chunks: a million codes
    stream without being held in memory."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["code", "promotion"])
    yield out.getvalue()
    codes = Code.objects.filter(batch=batch).order_by("pk").values_list("code", flat=True)
    for code in codes.iterator(chunk_size=5000):
        out.seek(0)
        out.truncate()
        writer.writerow([code, batch.promotion.name])
        yield out.getvalue()
