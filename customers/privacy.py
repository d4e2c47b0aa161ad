"""Staff edits of a profile, and the GDPR rights: export a customer's data, erase them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.models import Activity, ConsentRecord, Customer, Order
from customers.services import consent_set
from merchants.models import AuditEvent, User
from merchants.services import audit_record

EDITABLE = (
    "first_name", "last_name", "email", "phone", "birth_date", "gender", "city", "country",
    "language", "timezone", "acquisition_channel", "tags",
)  # fmt: skip
# What erasure blanks. Orders, refunds and points stay for the merchant's books.
PERSONAL = {
    "email": "", "first_name": "", "last_name": "", "phone": "", "birth_date": None,
    "gender": "", "city": "", "country": "", "language": "", "timezone": "",
    "acquisition_channel": "", "tags": [], "external_id": "",
}  # fmt: skip


@transaction.atomic
def customer_profile_update(
    *, customer: Customer, actor: User, data: dict[str, Any], consent: bool | None = None
) -> Customer:
    if customer.erased_at is not None:
        raise ValidationError(_("This customer was erased."))
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    data = {**data, "email": data["email"].strip().lower()} if data.get("email") else data
    changed = {f: data[f] for f in EDITABLE if f in data and getattr(locked, f) != data[f]}
    for field, value in changed.items():
        setattr(locked, field, value)
    locked.full_clean(exclude=["merchant"], validate_constraints=False, validate_unique=False)
    if changed:
        locked.updated_at = now()
        locked.save(update_fields=[*changed, "updated_at"])
        Activity.objects.create(
            merchant_id=locked.merchant_id,
            customer=locked,
            kind=Activity.Kind.PROFILE_UPDATED,
            data={"source": "staff", "by": actor.email, "fields": sorted(changed)},
        )
    if consent is not None and consent != locked.marketing_consent:
        consent_set(customer=locked, granted=consent, source=f"staff:{actor.email}")
    return locked


def customer_export(*, customer: Customer, actor: User) -> dict[str, Any]:
    """Everything Regulars holds about the customer, as JSON-ready data (audited)."""
    profile = {
        field.name: getattr(customer, field.name)
        for field in Customer._meta.concrete_fields
        if field.name not in ("merchant",)
    }
    orders = [
        {
            "external_id": order.external_id,
            "source": order.source,
            "placed_at": order.placed_at,
            "status": order.status,
            "currency": order.currency,
            "total": order.total,
            "refunded_amount": order.refunded_amount,
            "discount_codes": order.discount_codes,
            "lines": [
                {"sku": line.sku, "name": line.name, "quantity": line.quantity, "price": line.price}
                for line in order.lines.all()
            ],
        }
        for order in Order.objects.filter(customer=customer)
        .prefetch_related("lines")
        .order_by("placed_at")
    ]
    consents = list(
        ConsentRecord.objects.filter(customer=customer)
        .order_by("recorded_at")
        .values("granted", "source", "recorded_at")
    )
    timeline = list(
        Activity.objects.filter(customer=customer)
        .order_by("occurred_at", "id")
        .values("kind", "occurred_at", "data")
    )
    audit_record(
        action=AuditEvent.Action.CUSTOMER_EXPORTED,
        merchant=customer.merchant,
        actor=actor,
        target=customer,
        object_repr=f"customer #{customer.pk}",
    )
    return {
        "merchant": customer.merchant.name,
        "exported_at": now(),
        "profile": profile,
        "orders": orders,
        "consents": consents,
        "timeline": timeline,
    }


@transaction.atomic
def customer_erase(*, customer: Customer, actor: User) -> Customer:
    """Replaces personal fields with a tombstone; keeps orders, refunds and the points
    ledger (amounts, dates) for the merchant's books. Audited; can't be undone."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.erased_at is not None:
        return locked
    for field, blank in PERSONAL.items():
        setattr(locked, field, blank)
    locked.marketing_consent = False
    locked.erased_at = now()
    locked.updated_at = locked.erased_at
    locked.save()
    # Events may carry what the shop sent about the person; only their kind and time stay.
    Activity.objects.filter(customer=locked).update(data={})
    audit_record(
        action=AuditEvent.Action.CUSTOMER_ERASED,
        merchant=locked.merchant,
        actor=actor,
        target=locked,
        object_repr=f"customer #{locked.pk}",
    )
    return locked
