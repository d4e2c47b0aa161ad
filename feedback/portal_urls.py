"""What customers do about their feedback on the rewards page, under /r/<merchant-slug>/."""

from __future__ import annotations

from django.urls import path  # noqa: F401

app_name = "feedback-portal"

urlpatterns: list = []
