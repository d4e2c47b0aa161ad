"""The JSON shapes of the feedback part of /api/v1/."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import model_validator

from customers.schemas import Email, Incoming
from feedback.services.intake import SUBJECT_LENGTH

BODY_LENGTH = 20000


class SenderIn(Incoming):
    """Who wrote: a customer of the shop by `external_id`, or anyone by `email` (a customer
    with that address is found; an unknown sender stays a sender)."""

    external_id: str | None = Field(None, min_length=1, max_length=128)
    email: Email | None = None
    name: str = Field("", max_length=120)

    @model_validator(mode="after")
    def _someone(self) -> SenderIn:
        if not self.external_id and not self.email:
            raise ValueError("give the customer's external_id or an email")
        return self


class FeedbackIn(Incoming):
    customer: SenderIn
    kind: Literal["complaint", "question", "suggestion", "praise"]
    rating: int | None = Field(None, ge=1, le=5)
    subject: str = Field("", max_length=SUBJECT_LENGTH)
    body: str = Field(..., min_length=1, max_length=BODY_LENGTH)
    language: str = Field("", max_length=8)


class ReviewIn(Incoming):
    id: str = Field(
        ...,
        min_length=1,
        max_length=100,
        description="Your id for the review: sending it again returns the same ticket and "
        "creates nothing.",
    )
    customer: SenderIn
    product_sku: str = Field("", max_length=100)
    product_name: str = Field("", max_length=200)
    rating: int = Field(..., ge=1, le=5)
    subject: str = Field("", max_length=SUBJECT_LENGTH)
    body: str = Field("", max_length=BODY_LENGTH)
    language: str = Field("", max_length=8)


class FeedbackOut(Schema):
    id: int
    state: str
    kind: str
    subject: str
    created: bool


class MessageOut(Schema):
    kind: str
    body: str
    created_at: datetime


class FeedbackDetailOut(Schema):
    id: int
    state: str
    kind: str
    channel: str
    subject: str
    rating: int | None
    customer_external_id: str | None
    sender_email: str
    product_sku: str
    review_state: str
    created_at: datetime
    updated_at: datetime
    merged_into: int | None
    follows: int | None
    messages: list[MessageOut]
