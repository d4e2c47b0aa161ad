from __future__ import annotations

from django.urls import path

from feedback import metrics_views

app_name = "feedback"

urlpatterns: list = [
    path("metrics/", metrics_views.inbox_metrics_page, name="metrics"),
]
