from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from campaigns.services import codes
        from customers import reactions

        # A cancelled order, or one refunded in full, gives back the codes it used.
        reactions.on_order_cancelled(codes.order_cancelled)
        reactions.on_refund_recorded(codes.order_refunded)
