from __future__ import annotations

from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers import reactions
        from loyalty import portal
        from loyalty.demo import demo_activity_seed, demo_night, demo_program_seed
        from loyalty.services import earning
        from merchants.demo import demo_night_register, demo_step_register
        from merchants.panels import panel_register, portal_panel_register
        from merchants.roles import Perm

        # Orders, refunds, cancellations and events earn or take back points in the
        # transaction that stored them.
        reactions.on_orders_stored(earning.orders_stored)
        reactions.on_refund_recorded(earning.refund_reverse)
        reactions.on_order_cancelled(earning.cancel_reverse)
        reactions.on_event_recorded(earning.event_earn)
        panel_register("customer-360", "loyalty:customer-panel", Perm.LOYALTY_VIEW, order=10)
        panel_register("dashboard", "loyalty:figures-panel", Perm.LOYALTY_VIEW, order=10)
        portal_panel_register("points", portal.points_panel, order=10)
        portal_panel_register("rewards", portal.rewards_panel, order=20)
        portal_panel_register("membership", portal.membership_panel, order=40)
        portal_panel_register("referrals", portal.referrals_panel, order=50)
        portal_panel_register("history", portal.history_panel, order=60)
        # The rewards page and orders cache the catalog; any change to it, whichever way it is
        # written, sends the next page back to the database (no rules run here).
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from loyalty.models import EarningRule, MembershipPlan, Program, Reward, Tier
        from loyalty.selectors import catalog_changed as forget

        # Orders read the earning rules from the catalog too.
        for model in (Program, Tier, Reward, MembershipPlan, EarningRule):
            post_save.connect(forget, sender=model, dispatch_uid=f"catalog-{model.__name__}")
            post_delete.connect(forget, sender=model, dispatch_uid=f"catalog-d-{model.__name__}")
        for through in (Reward.tiers.through, Reward.plans.through):
            m2m_changed.connect(forget, sender=through, dispatch_uid=f"catalog-{through.__name__}")
        # The program before the demo orders (so they earn), the rest after them.
        demo_step_register(demo_program_seed, order=50)
        demo_step_register(demo_activity_seed, order=150)
        demo_night_register(demo_night)
        # The tier-down warning's merge fields, for campaigns' templates.
        from django.utils.translation import gettext_lazy as _

        from customers.mail import merge_field_register
        from loyalty.services.tiers import tier_ends_on_text, to_keep_tier_text

        merge_field_register("tier_ends_on", label=_("the day her tier would drop (tier-down "
                             "warning)"), value=tier_ends_on_text)  # fmt: skip
        merge_field_register("to_keep_tier", label=_("what keeps her tier (tier-down warning)"),
                             value=to_keep_tier_text)  # fmt: skip
