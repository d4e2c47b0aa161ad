from __future__ import annotations

from django.urls import path

from feedback import metrics_views, settings_views, views

app_name = "feedback"

urlpatterns: list = [
    path("metrics/", metrics_views.inbox_metrics_page, name="metrics"),
    # The inbox and its tickets.
    path("", views.inbox, name="inbox"),
    path("bulk/", views.inbox_bulk, name="inbox-bulk"),
    path("new/", views.ticket_create, name="ticket-create"),
    path("<int:pk>/", views.ticket_detail, name="ticket-detail"),
    path("<int:pk>/reply/", views.ticket_reply, name="ticket-reply"),
    path("<int:pk>/state/", views.ticket_state, name="ticket-state"),
    path("<int:pk>/assign/", views.ticket_assign, name="ticket-assign"),
    path("<int:pk>/triage/", views.ticket_triage, name="ticket-triage"),
    path("<int:pk>/tags/", views.ticket_tag, name="ticket-tag"),
    path("<int:pk>/merge/", views.ticket_merge, name="ticket-merge"),
    path("<int:pk>/review/", views.ticket_review, name="ticket-review"),
    path("<int:pk>/canned/", views.ticket_canned, name="ticket-canned"),
    path("<int:pk>/presence/", views.ticket_presence, name="ticket-presence"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment"),
    path("customers/<int:pk>/", views.customer_panel, name="customer-panel"),
    path("figures/", views.figures_panel, name="figures-panel"),
    # Configuration.
    path("departments/", settings_views.department_list, name="department-list"),
    path("departments/new/", settings_views.department_form, name="department-create"),
    path("departments/<int:pk>/edit/", settings_views.department_form, name="department-update"),
    path("rules/", settings_views.rule_list, name="rule-list"),
    path("rules/new/", settings_views.rule_form, name="rule-create"),
    path("rules/<int:pk>/edit/", settings_views.rule_form, name="rule-update"),
    path("rules/<int:pk>/move/", settings_views.rule_move, name="rule-move"),
    path("sla/", settings_views.sla_list, name="sla-list"),
    path("canned/", settings_views.canned_list, name="canned-list"),
    path("canned/new/", settings_views.canned_form, name="canned-create"),
    path("canned/<int:pk>/edit/", settings_views.canned_form, name="canned-update"),
    path("canned/<int:pk>/delete/", settings_views.canned_delete, name="canned-delete"),
    path("settings/", settings_views.support_settings, name="support-settings"),
]
