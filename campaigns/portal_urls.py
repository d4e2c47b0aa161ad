"""What customers do with offers and with marketing mail, under /r/<merchant-slug>/."""

from __future__ import annotations

from django.urls import path

from campaigns import portal

app_name = "campaigns-portal"

urlpatterns = [
    path("offers/<int:pk>/code/", portal.code_get, name="code-get"),
    path("unsubscribe/<str:token>/", portal.unsubscribe, name="unsubscribe"),
]
