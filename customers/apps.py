from __future__ import annotations

from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers import expressions  # noqa: F401 - registers the `field__any` lookup
        from customers.demo import demo_customers_seed
        from merchants.demo import demo_step_register
        from merchants.panels import panel_register
        from merchants.roles import Perm

        demo_step_register(demo_customers_seed)
        # The shop connection page shows what each connection's deliveries couldn't store.
        panel_register("store-connection", "customers:connection-deliveries",
                       Perm.INTEGRATIONS_MANAGE)  # fmt: skip
