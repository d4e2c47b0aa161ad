"""The demo shop's win-back campaign: customers quiet for 60 days, one in ten held out,
entered ten weeks ago through the real services and their mail recorded then (not
delivered: it goes to a connection that drops it), so its report has figures to show.
It stays running: its daily pass enters whoever goes quiet from now on."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import time_machine
from django.core.mail import get_connection
from django.utils.timezone import now

from campaigns.demo_messages import _reported
from campaigns.models import Campaign, Message, MessageTemplate
from campaigns.services.campaigns import campaign_enter, campaign_move, campaign_save
from campaigns.services.sending import messages_send
from merchants.models import Merchant

WEEKS_AGO = 10


def demo_campaigns_seed() -> list[str]:
    merchant = Merchant.objects.filter(slug="demo-store").first()
    if merchant is None or Campaign.objects.filter(merchant=merchant).exists():
        return []
    template = MessageTemplate.objects.filter(merchant=merchant, name="Come back").first()
    if template is None:
        return []
    day = (now() - timedelta(weeks=WEEKS_AGO)).astimezone(merchant.zone).date()
    morning = datetime.combine(day, time(10), tzinfo=merchant.zone)
    with time_machine.travel(morning, tick=False):
        campaign = campaign_save(
            merchant=merchant, campaign=None, actor=None, steps=[{"template": template}],
            data={"name": "Come back after 60 quiet days", "kind": Campaign.Kind.WINBACK,
                  "days_since": 60, "holdout_percent": 10, "consent_only": True},
        )  # fmt: skip
        campaign_move(campaign=campaign, move="start", actor=None)
        detail = campaign_enter(campaign_id=campaign.pk) or {}
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        messages_send(message_ids=ids, connection=get_connection(
            "django.core.mail.backends.dummy.EmailBackend"))  # fmt: skip
        sent = Message.objects.filter(campaign=campaign, state=Message.State.SENT).order_by("pk")
        for n, message in enumerate(sent):
            _reported(message, "delivered")
            if n % 3 == 0:
                _reported(message, "clicked")
    return [f"a win-back campaign for {merchant.slug}: {detail.get('entered', 0)} entered "
            f"{WEEKS_AGO} weeks ago, {detail.get('held_out', 0)} held out"]  # fmt: skip
