from __future__ import annotations

from django.urls import path

from campaigns import campaign_views, mail_views, views

app_name = "campaigns"

urlpatterns = [
    path("promotions/", views.promotion_list, name="promotion-list"),
    path("promotions/new/", views.promotion_form, name="promotion-create"),
    path("promotions/eligible/", views.eligible_count, name="eligible-count"),
    path("promotions/<int:pk>/", views.promotion_detail, name="promotion-detail"),
    path("promotions/<int:pk>/edit/", views.promotion_form, name="promotion-update"),
    path("promotions/<int:pk>/batches/", views.batch_new, name="batch-create"),
    path("promotions/<int:pk>/shop/", views.shop_push_again, name="shop-push"),
    path("batches/<int:pk>/", views.batch_progress, name="batch-progress"),
    path("batches/<int:pk>/codes.csv", views.batch_export, name="batch-export"),
    path("attempts/", views.attempt_list, name="attempt-list"),
    path("campaigns/", campaign_views.campaign_list, name="campaign-list"),
    path("campaigns/new/", campaign_views.campaign_form, name="campaign-create"),
    path("campaigns/audience/", campaign_views.audience, name="campaign-audience"),
    path("campaigns/<int:pk>/", campaign_views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:pk>/edit/", campaign_views.campaign_form, name="campaign-update"),
    path("campaigns/<int:pk>/change/", campaign_views.campaign_change, name="campaign-change"),
    path("campaigns/<int:pk>/report.csv", campaign_views.campaign_export, name="campaign-export"),
    path("messages/flows/", mail_views.flow_list, name="flow-list"),
    path("messages/flows/edit/", mail_views.flow_form, name="flow-update"),
    path("messages/templates/", mail_views.template_list, name="template-list"),
    path("messages/templates/new/", mail_views.template_form, name="template-create"),
    path("messages/templates/preview/", mail_views.template_preview, name="template-preview"),
    path("messages/templates/<int:pk>/edit/", mail_views.template_form, name="template-update"),
    path("messages/templates/<int:pk>/test/", mail_views.template_test, name="template-test"),
    path("messages/settings/", mail_views.sending_form, name="sending-settings"),
    path("messages/suppressions/", mail_views.suppression_list, name="suppression-list"),
    path("messages/suppressions/change/", mail_views.suppression_change, name="suppression-change"),
    path("customers/<int:pk>/messages/", mail_views.customer_panel, name="customer-panel"),
]
