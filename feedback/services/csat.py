"""Customer satisfaction: a 1-to-5 survey sent when a ticket is resolved, by a link that
works once and for 14 days."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.mail import address_email_send, customer_email_send
from feedback.models import (
    CsatSurvey,
    Feedback,
    State,
)
from feedback.services.thread import event_add
from merchants.models import Merchant

CSAT_DAYS = 14


def csat_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csat_send(*, feedback_id: int, cycle: int, agent_id: int | None, at: str | None = None) -> bool:
    """Asks whoever wrote in to rate the answer, 1 to 5, by a link that works once and for
    14 days. One survey per cycle: a second resolve of the same cycle sends nothing. The
    survey is kept only if its email went: a failed send can be tried again. `at` is an
    ISO time (a task's argument)."""
    sent_at = datetime.fromisoformat(at) if at else now()
    feedback = Feedback.objects.select_related("merchant", "customer__merchant").get(pk=feedback_id)
    if feedback.state != State.RESOLVED or feedback.cycle != cycle:
        return False
    to_customer = feedback.customer is not None and bool(feedback.customer.email)
    if not to_customer and not feedback.sender_email:
        return False
    token = secrets.token_urlsafe(32)
    path = reverse("feedback-portal:csat", kwargs={"merchant_slug": feedback.merchant.slug,
                                                  "token": token})  # fmt: skip
    context = {"feedback": feedback, "link": settings.SITE_URL.rstrip("/") + path,
               "days": CSAT_DAYS}  # fmt: skip
    template = "feedback/mail/csat"
    try:
        with transaction.atomic():
            CsatSurvey.objects.create(
                merchant_id=feedback.merchant_id, feedback=feedback, cycle=cycle,
                token_hash=csat_token_hash(token), sent_at=sent_at,
                expires_at=sent_at + timedelta(days=CSAT_DAYS), agent_id=agent_id,
            )  # fmt: skip
            if to_customer:
                customer_email_send(customer=feedback.customer, template=template,
                                    context=context)  # fmt: skip
            else:
                address_email_send(
                    merchant=feedback.merchant, address=feedback.sender_email,
                    language=feedback.language, template=template, context=context,
                )  # fmt: skip
    except IntegrityError:
        return False
    return True


def csat_survey_open(*, merchant: Merchant, token: str, at=None) -> CsatSurvey:
    """The survey behind a link, if it can still be answered; else a ValidationError that
    says why (unknown, used, or expired)."""
    at = at or now()
    survey = (
        CsatSurvey.objects.select_related("feedback")
        .filter(merchant=merchant, token_hash=csat_token_hash(token))
        .first()
    )
    if survey is None:
        raise ValidationError({"token": _("This link is not valid.")})
    if survey.answered_at is not None:
        raise ValidationError({"token": _("This survey has been answered already. Thank you!")})
    if survey.expires_at <= at:
        raise ValidationError({"token": _("This link has expired.")})
    return survey


def csat_answer(
    *, merchant: Merchant, token: str, rating: int, comment: str = "", at=None
) -> CsatSurvey:
    """Records the answer once: the guarded update lets one of two racing submits through."""
    at = at or now()
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError({"rating": _("Choose a rating from 1 to 5.")})
    survey = csat_survey_open(merchant=merchant, token=token, at=at)
    taken = CsatSurvey.objects.filter(
        pk=survey.pk, answered_at__isnull=True, expires_at__gt=at
    ).update(answered_at=at, rating=rating, comment=comment.strip()[:2000])
    if not taken:
        raise ValidationError({"token": _("This survey has been answered already. Thank you!")})
    survey.refresh_from_db()
    if survey.comment:
        event_add(feedback=survey.feedback, at=at, event="rated_with_comment",
                  values={"rating": rating, "comment": survey.comment})  # fmt: skip
    else:
        event_add(feedback=survey.feedback, at=at, event="rated", values={"rating": rating})
    return survey
