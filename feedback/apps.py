from __future__ import annotations

from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from feedback.demo import demo_feedback_seed
        from merchants.demo import demo_step_register

        # After loyalty's activity step: the tickets' customers have orders and tiers.
        demo_step_register(demo_feedback_seed, order=200)
