from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from campaigns import portal
        from campaigns.demo import demo_promotions_seed
        from campaigns.demo_campaigns import demo_campaigns_seed
        from campaigns.demo_messages import demo_messages_seed
        from campaigns.hooks import tracking_received
        from campaigns.services import codes
        from customers import reactions
        from loyalty import reactions as loyalty_reactions
        from merchants.demo import demo_step_register
        from merchants.panels import panel_register, portal_panel_register
        from merchants.roles import Perm

        # A cancelled order, or one refunded in full, gives back the codes it used.
        reactions.on_order_cancelled(codes.order_cancelled)
        reactions.on_refund_recorded(codes.order_refunded)
        # An order that carries codes redeems them, in its transaction.
        reactions.on_orders_stored(codes.orders_stored)
        # A reward's code is one of the checkout codes, found by the same lookup.
        loyalty_reactions.on_code_issued(codes.reward_code_issued)
        loyalty_reactions.on_code_used(codes.reward_code_used)
        # What she may use now, between her points and the rewards.
        portal_panel_register("offers", portal.offers_panel, order=15)
        # The mail she was sent (or not, and why), on her 360 page.
        panel_register("customer-360", "campaigns:customer-panel", Perm.CAMPAIGNS_VIEW, order=40)
        # What the ESP reports of each message: delivered, opened, bounced…
        tracking.connect(tracking_received, dispatch_uid="campaigns.tracking")
        # The demo shop's promotions, used by its customers, after loyalty's activity.
        demo_step_register(demo_promotions_seed, order=160)
        # Its mail: templates in four languages, the flows on, recent thank-yous sent.
        demo_step_register(demo_messages_seed, order=170)
        # A win-back campaign entered ten weeks ago, so its report has figures.
        demo_step_register(demo_campaigns_seed, order=175)
