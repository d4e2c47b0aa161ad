from __future__ import annotations

from django.urls import path

from merchants import views

app_name = "merchants"

urlpatterns = [
    path("switch/", views.merchant_switch, name="merchant-switch"),
    path("settings/", views.MerchantSettingsView.as_view(), name="merchant-settings"),
    path("settings/link-secret/", views.portal_secret_rotate, name="merchant-portal-secret"),
    path("staff/", views.StaffListView.as_view(), name="staff-list"),
    path("staff/invite/", views.StaffInviteView.as_view(), name="staff-invite"),
    path("staff/<int:pk>/edit/", views.staff_update, name="staff-update"),
    path("staff/<int:pk>/remove/", views.staff_remove, name="staff-remove"),
    path("audit/", views.AuditEventListView.as_view(), name="audit-list"),
    path("api-keys/", views.api_key_list, name="apikey-list"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke, name="apikey-revoke"),
    path("connections/", views.store_connection_list, name="connection-list"),
    path(
        "connections/<int:pk>/revoke/",
        views.store_connection_revoke,
        name="connection-revoke",
    ),
]
