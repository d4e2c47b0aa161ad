from __future__ import annotations

from django.urls import path

from campaigns import views

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
]
