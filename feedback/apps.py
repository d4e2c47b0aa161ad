from __future__ import annotations

from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from customers.mail import merge_field_register
        from feedback import portal
        from feedback.demo import demo_feedback_seed
        from feedback.services.reviews import review_link_make
        from merchants.demo import demo_step_register
        from merchants.panels import panel_register, portal_panel_register
        from merchants.roles import Perm

        # After loyalty's activity step: the tickets' customers have orders and tiers.
        demo_step_register(demo_feedback_seed, order=200)
        # Below loyalty's panels (10 to 60): the rewards come first on the customer's page.
        portal_panel_register("feedback", portal.feedback_panel, order=70)
        # On the customer 360 page, after loyalty's panel.
        panel_register("customer-360", "feedback:customer-panel", Perm.FEEDBACK_WORK, order=30)
        panel_register("dashboard", "feedback:figures-panel", Perm.FEEDBACK_WORK, order=20)
        # A review request's link (the message sent after delivery): the answer is a review.
        label = _("a link to review the order (delivery messages)")
        merge_field_register("review_link", label=label, value=review_link_make)
