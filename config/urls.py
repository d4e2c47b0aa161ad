from __future__ import annotations

from django.urls import include, path

from config.api import api
from customers import hooks
from feedback import inbound
from merchants import views as merchant_views

auth_patterns = [
    path("login/", merchant_views.SignInView.as_view(), name="login"),
    path("logout/", merchant_views.SignOutView.as_view(), name="logout"),
    path("password-reset/", merchant_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        merchant_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        merchant_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        merchant_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("", merchant_views.DashboardView.as_view(), name="dashboard"),
    path("accounts/", include(auth_patterns)),
    path("language/", merchant_views.language_set, name="language-set"),
    path("healthz/", merchant_views.healthz, name="healthz"),
    path("merchants/", include("merchants.urls")),
    path("customers/", include("customers.urls")),
    path("loyalty/", include("loyalty.urls")),
    path("feedback/", include("feedback.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("api/v1/", api.urls),
    # The customer's rewards page: the shell and sign-in (customers/), loyalty's actions.
    path("r/<slug:merchant_slug>/", include("customers.portal_urls")),
    path("r/<slug:merchant_slug>/", include("loyalty.portal_urls")),
    path("r/<slug:merchant_slug>/", include("feedback.portal_urls")),
    path("r/<slug:merchant_slug>/", include("campaigns.portal_urls")),
    path("hooks/shopify/<uuid:connection>/", hooks.shopify_webhook, name="hook-shopify"),
    path(
        "hooks/woocommerce/<uuid:connection>/", hooks.woocommerce_webhook, name="hook-woocommerce"
    ),
    # Delivery, open, click, bounce and complaint events from the ESP (campaigns/hooks.py).
    path("hooks/anymail/", include("campaigns.hooks")),
    # Emails to the shop's support address, from the mail provider: feedback/inbound.py.
    path("hooks/email/<slug:merchant_slug>/", inbound.email_webhook, name="hook-email"),
]
