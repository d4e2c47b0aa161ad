"""What customers do about their feedback on the rewards page, under /r/<merchant-slug>/."""

from __future__ import annotations

from django.urls import path

from feedback import portal

app_name = "feedback-portal"

urlpatterns: list = [
    path("feedback/", portal.submit, name="submit"),
    path("feedback/<int:pk>/reply/", portal.reply, name="reply"),
    # Reversed by feedback.services.csat.csat_send for the email's link.
    path("feedback/csat/<str:token>/", portal.csat, name="csat"),
    # In the review request sent after delivery (feedback.services.reviews).
    path("feedback/review/<str:token>/", portal.review, name="review"),
]
