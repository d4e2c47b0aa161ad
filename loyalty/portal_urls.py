"""What customers do on their rewards page, under /r/<merchant-slug>/."""

from __future__ import annotations

from django.urls import path

from loyalty import portal

app_name = "loyalty-portal"

urlpatterns = [
    path("rewards/<int:pk>/redeem/", portal.redeem, name="redeem"),
    path("invite/<slug:code>/", portal.invite, name="invite"),
]
