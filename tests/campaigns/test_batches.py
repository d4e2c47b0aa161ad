from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Code, CodeBatch, Promotion
from campaigns.services import batches
from campaigns.services.batches import ALPHABET, batch_create, batch_csv, codes_make
from campaigns.tasks import codes_make_task
from tests.campaigns.factories import CodeFactory, PromotionFactory


def test_a_batch_makes_unique_codes_without_look_alikes_and_exports_them(merchant):
    promotion = PromotionFactory(merchant=merchant, name="Spring")
    batch = batch_create(promotion=promotion, count=2500, prefix="spr-", length=8)
    codes_make_task.apply(args=[batch.pk]).get()
    batch.refresh_from_db()
    assert (batch.state, batch.made) == (CodeBatch.State.DONE, 2500)
    codes = list(Code.objects.filter(batch=batch).values_list("code", flat=True))
    assert len(set(codes)) == 2500
    assert all(c.startswith("SPR-") and len(c) == 12 for c in codes)
    assert all(ch in ALPHABET for c in codes for ch in c[4:])
    lines = "".join(batch_csv(batch=batch)).splitlines()
    assert lines[0] == "code,promotion"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(codes)


def test_a_batch_run_twice_or_colliding_makes_exactly_what_was_asked(merchant, monkeypatch):
    promotion = PromotionFactory(merchant=merchant)
    taken = CodeFactory(promotion=PromotionFactory(merchant=merchant), code="AAAAAAAA")
    draws = iter(["AAAAAAAA", "AAAAAAAA", "BBBBBBBB"] + ["CCCCCCCC", "DDDDDDDD"] * 5)
    monkeypatch.setattr(batches, "_drawn", lambda batch, n: [next(draws) for _ in range(n)])
    monkeypatch.setattr(batches, "CHUNK", 3)
    batch = batch_create(promotion=promotion, count=3, length=8)
    codes_make(batch_id=batch.pk)
    codes_make(batch_id=batch.pk)
    mine = set(Code.objects.filter(batch=batch).values_list("code", flat=True))
    # The code another promotion holds is skipped and drawn again; a repeat within a chunk too.
    assert mine == {"BBBBBBBB", "CCCCCCCC", "DDDDDDDD"}
    assert Code.objects.get(code="AAAAAAAA").promotion == taken.promotion


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({"count": 0}, "count"),
        ({"count": 1_000_001}, "count"),
        ({"count": 10_000, "length": 4}, "length"),  # a hundredth of 31^4 is 9,235
        ({"count": 10, "length": 3}, "length"),
        ({"count": 10, "prefix": "O1-"}, "prefix"),
        ({"count": 10, "prefix": "A\x00"}, "prefix"),
    ],
)
def test_a_batch_that_cant_be_made_names_what_is_wrong(merchant, fields, wrong):
    promotion = PromotionFactory(merchant=merchant)
    with pytest.raises(ValidationError) as refused:
        batch_create(promotion=promotion, **fields)
    assert wrong in refused.value.message_dict
    assert not CodeBatch.objects.exists()


def test_a_public_code_promotion_has_no_batches(merchant):
    public = PromotionFactory(merchant=merchant, codes=Promotion.Codes.PUBLIC)
    with pytest.raises(ValidationError) as refused:
        batch_create(promotion=public, count=10)
    assert "promotion" in refused.value.message_dict
