from __future__ import annotations

from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="customer-list"),
    path("<int:pk>/", views.customer_detail, name="customer-detail"),
    path("<int:pk>/edit/", views.customer_update, name="customer-update"),
    path("<int:pk>/export/", views.customer_export, name="customer-export"),
    path("<int:pk>/erase/", views.customer_erase, name="customer-erase"),
    path("imports/", views.import_list, name="import-list"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("imports/<int:pk>/errors.csv", views.import_errors, name="import-errors"),
]
