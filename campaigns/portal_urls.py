"""What customers do with offers on their rewards page, under /r/<merchant-slug>/."""

from __future__ import annotations

from django.urls import path

from campaigns import portal

app_name = "campaigns-portal"

urlpatterns = [
    path("offers/<int:pk>/code/", portal.code_get, name="code-get"),
]
