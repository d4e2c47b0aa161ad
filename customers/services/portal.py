"""Customers signing in to their rewards page (docs/business-rules.md §12): a magic link by email,
or a link from the merchant's storefront signed with the merchant's secret. Customers are
not Django users; a signed-in customer is a (merchant, customer) pair kept by the rewards
page."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.mail import LANGUAGE_CODES, customer_email_send
from customers.models import Customer, PortalSignIn
from merchants.models import Merchant, normalise_email

MAGIC_LINK_MINUTES = 15
STOREFRONT_LINK_SECONDS = 10 * 60
# Sign-in links asked for, per hour: per email at one merchant, and per address.
LINKS_PER_EMAIL = 5
LINKS_PER_IP = 20
RATE_WINDOW_SECONDS = 60 * 60


class LinkRefused(Exception):
    """A sign-in link that can't be used. `reason` is one of unknown, used, expired,
    stale, signature."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooManyLinks(Exception):
    pass


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def attempt_allowed(*, key: str, limit: int) -> bool:
    """Counts one more attempt under `key` within the hour; False once `limit` is passed.
    For the rewards page's forms open to anyone (sign-in links, referral invitations)."""
    return _counted(f"portal-attempt:{key}", limit)


def _counted(key: str, limit: int) -> bool:
    """Counts one more within the window; False once the limit is passed."""
    cache.add(key, 0, RATE_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, RATE_WINDOW_SECONDS)
        return True
    # None: the cache is away (it answers a miss rather than fail). The forms stay open
    # for that while, as the sign-in for staff does (django-axes counts in the database).
    return count is None or count <= limit


def magic_link_request(*, merchant: Merchant, email: str, ip_address: str | None) -> None:
    """Queues a sign-in link to the email if it belongs to one of the merchant's customers.
    Whether it does is never told: known and unknown addresses get the same answer and the
    same work here, and the lookup happens in the worker. Raises TooManyLinks past the
    limits (counted whether or not the address is known)."""
    email = normalise_email(email)
    per_email = _counted(f"portal-link:email:{merchant.pk}:{_hash(email)}", LINKS_PER_EMAIL)
    per_ip = _counted(f"portal-link:ip:{ip_address}", LINKS_PER_IP) if ip_address else True
    if not (per_email and per_ip):
        raise TooManyLinks
    from customers.tasks import magic_link_send_task

    magic_link_send_task.delay_on_commit(merchant.pk, email, ip_address)


def _sign_in_record(
    *, customer: Customer, kind: str, secret: str, lasts: timedelta, ip_address, used: bool
) -> PortalSignIn:
    """A link's row: the hash of its secret part (unique per shop), and how long it lasts."""
    at = now()
    return PortalSignIn.objects.create(
        merchant_id=customer.merchant_id,
        customer=customer,
        kind=kind,
        token_hash=_hash(secret),
        ip_address=ip_address,
        created_at=at,
        expires_at=at + lasts,
        used_at=at if used else None,
    )


def magic_link_make(
    *, customer: Customer, ip_address: str | None = None, minutes: int = MAGIC_LINK_MINUTES
) -> str:
    """A new single-use sign-in URL for the customer, valid for 15 minutes (a link in a
    message she is sent unasked lasts longer: she reads mail when she reads it)."""
    token = secrets.token_urlsafe(32)
    _sign_in_record(customer=customer, kind=PortalSignIn.Kind.MAGIC, secret=token,
                    lasts=timedelta(minutes=minutes), ip_address=ip_address,
                    used=False)  # fmt: skip
    path = reverse(
        "portal:magic-link",
        kwargs={"merchant_slug": customer.merchant.slug, "token": token},
    )
    return settings.SITE_URL.rstrip("/") + path


def magic_link_send(*, merchant_id: int, email: str, ip_address: str | None = None) -> bool:
    """Emails a sign-in link to the merchant's customer with this address, if there is one."""
    customer = (
        Customer.objects.select_related("merchant")
        .filter(merchant_id=merchant_id, email=normalise_email(email), erased_at=None)
        .order_by("pk")
        .first()
    )
    if customer is None:
        return False
    link = magic_link_make(customer=customer, ip_address=ip_address)
    return customer_email_send(
        customer=customer,
        template="customers/mail/magic_link",
        context={"link": link, "minutes": MAGIC_LINK_MINUTES},
    )


def _magic_sign_in(*, merchant: Merchant, token: str):
    return PortalSignIn.objects.filter(
        merchant=merchant, kind=PortalSignIn.Kind.MAGIC, token_hash=_hash(token)
    )


def magic_link_check(*, merchant: Merchant, token: str) -> None:
    """Raises LinkRefused if the link could not sign anyone in; changes nothing."""
    sign_in = _magic_sign_in(merchant=merchant, token=token).first()
    if sign_in is None:
        raise LinkRefused("unknown")
    if sign_in.used_at is not None:
        raise LinkRefused("used")
    if sign_in.expires_at <= now():
        raise LinkRefused("expired")


def magic_link_use(*, merchant: Merchant, token: str) -> Customer:
    """Spends the link and returns its customer. One guarded statement on the link's own
    row, so of many clicks at once exactly one signs in: PostgreSQL re-checks `used_at` on
    the row a click waited for. (A condition reached through a join is not re-checked: it
    sits in a subquery read before the wait, and let several clicks through.)"""
    at = now()
    sign_in = _magic_sign_in(merchant=merchant, token=token).select_related("customer").first()
    if sign_in is None or sign_in.customer.erased_at is not None:
        raise LinkRefused("unknown")
    spent = PortalSignIn.objects.filter(pk=sign_in.pk, used_at=None, expires_at__gt=at).update(
        used_at=at
    )
    if not spent:
        magic_link_check(merchant=merchant, token=token)
        raise LinkRefused("unknown")
    return sign_in.customer


def storefront_signature(*, merchant: Merchant, external_id: str, timestamp: int) -> str:
    message = f"{external_id}:{timestamp}".encode()
    return hmac.new(merchant.portal_secret.encode(), message, hashlib.sha256).hexdigest()


def storefront_link_make(*, customer: Customer, at: datetime | None = None) -> str:
    """The path a storefront would link to (what its own code does with the secret)."""
    timestamp = int((at or now()).timestamp())
    signature = storefront_signature(
        merchant=customer.merchant, external_id=customer.external_id, timestamp=timestamp
    )
    path = reverse("portal:storefront-link", kwargs={"merchant_slug": customer.merchant.slug})
    query = urlencode({"customer": customer.external_id, "ts": timestamp, "sig": signature})
    return f"{path}?{query}"


def storefront_link_use(
    *, merchant: Merchant, external_id: str, timestamp: str, signature: str, ip_address=None
) -> Customer:
    """Checks the storefront's signature over the customer's external id and the time, in
    constant time, then the ten-minute window, then that the link is new."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        raise LinkRefused("signature") from None
    expected = storefront_signature(merchant=merchant, external_id=external_id, timestamp=stamp)
    if not external_id or not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise LinkRefused("signature")
    if abs(time.time() - stamp) > STOREFRONT_LINK_SECONDS:
        raise LinkRefused("stale")
    customer = Customer.objects.filter(
        merchant=merchant, external_id=external_id, erased_at=None
    ).first()
    if customer is None:
        raise LinkRefused("unknown")
    try:
        with transaction.atomic():
            _sign_in_record(customer=customer, kind=PortalSignIn.Kind.STOREFRONT,
                            secret=expected, lasts=timedelta(seconds=STOREFRONT_LINK_SECONDS),
                            ip_address=ip_address, used=True)  # fmt: skip
    except IntegrityError:
        raise LinkRefused("used") from None
    return customer


def portal_sign_out(*, customer: Customer) -> None:
    """Ends every rewards-page session of the customer's."""
    Customer.objects.filter(pk=customer.pk).update(portal_signed_out_at=now())


def customer_language_set(*, customer: Customer, language: str) -> None:
    if language not in LANGUAGE_CODES:
        raise ValidationError({"language": _("Choose one of the languages offered.")})
    Customer.objects.filter(pk=customer.pk).update(language=language)
    customer.language = language


def portal_sign_ins_purge(*, before: datetime | None = None) -> int:
    """Deletes sign-in links that ended more than a day ago: a used or expired link is
    refused either way, and a storefront link's own time stamp rules out its reuse by then."""
    cutoff = (before or now()) - timedelta(days=1)
    deleted, _by_model = PortalSignIn.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
