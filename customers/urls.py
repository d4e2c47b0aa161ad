from __future__ import annotations

from django.urls import path

from customers import persona_views, views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="customer-list"),
    path("<int:pk>/", views.customer_detail, name="customer-detail"),
    path("<int:pk>/edit/", views.customer_update, name="customer-update"),
    path("<int:pk>/export/", views.customer_export, name="customer-export"),
    path("<int:pk>/erase/", views.customer_erase, name="customer-erase"),
    path("personas/", persona_views.persona_list, name="persona-list"),
    path("personas/new/", persona_views.persona_form, name="persona-create"),
    path("personas/preview/", persona_views.persona_preview, name="persona-preview"),
    path("personas/<int:pk>/", persona_views.persona_detail, name="persona-detail"),
    path("personas/<int:pk>/edit/", persona_views.persona_form, name="persona-update"),
    path("personas/<int:pk>/move/", persona_views.persona_move, name="persona-move"),
    path("personas/<int:pk>/delete/", persona_views.persona_delete, name="persona-delete"),
    path(
        "connections/<int:pk>/rejected/", views.connection_deliveries, name="connection-deliveries"
    ),
    path("imports/", views.import_list, name="import-list"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("imports/<int:pk>/errors.csv", views.import_errors, name="import-errors"),
    path("imports/<int:pk>/resume/", views.import_resume, name="import-resume"),
    path("imports/sample.csv", views.import_sample, name="import-sample"),
]
