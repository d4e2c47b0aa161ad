"""What staff change about the shop's mail, each change audited: templates, the sending
settings, the suppression list."""

from __future__ import annotations

from django.db import transaction
from django.utils.timezone import now

from campaigns.models import MessageTemplate, SendingSettings, Suppression
from campaigns.services.tracking import suppress, suppression_lift
from merchants.models import Merchant
from merchants.services import audit_record, audited_save


def template_save(*, merchant: Merchant, template: MessageTemplate | None, data: dict, actor,
                  ip_address: str | None = None) -> MessageTemplate:  # fmt: skip
    template = template or MessageTemplate()
    template.updated_at = now()
    return audited_save(merchant=merchant, instance=template, data=data, actor=actor,
                        action="campaigns.template_saved", ip_address=ip_address)  # fmt: skip


def sending_save(*, merchant: Merchant, data: dict, actor,
                 ip_address: str | None = None) -> SendingSettings:  # fmt: skip
    current = SendingSettings.objects.filter(merchant=merchant).first() or SendingSettings()
    return audited_save(merchant=merchant, instance=current, data=data, actor=actor,
                        action="campaigns.sending_saved", ip_address=ip_address)  # fmt: skip


@transaction.atomic
def suppression_add(*, merchant: Merchant, address: str, actor, ip_address=None) -> bool:
    added = suppress(merchant_id=merchant.pk, address=address, reason=Suppression.Reason.MANUAL)
    if added:
        audit_record(action="campaigns.suppression_added", merchant=merchant, actor=actor,
                     object_repr=address.strip().lower(), ip_address=ip_address)  # fmt: skip
    return added


@transaction.atomic
def suppression_remove(*, merchant: Merchant, address: str, actor, ip_address=None) -> bool:
    removed = suppression_lift(merchant_id=merchant.pk, address=address) > 0
    if removed:
        audit_record(action="campaigns.suppression_removed", merchant=merchant, actor=actor,
                     object_repr=address.strip().lower(), ip_address=ip_address)  # fmt: skip
    return removed
