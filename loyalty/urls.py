from __future__ import annotations

from django.urls import path

from loyalty import views

app_name = "loyalty"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("figures/", views.figures_panel, name="figures-panel"),
    path("program/", views.program_settings, name="program-settings"),
    path("tiers/", views.tier_list, name="tier-list"),
    path("tiers/new/", views.tier_form, name="tier-create"),
    path("tiers/<int:pk>/edit/", views.tier_form, name="tier-update"),
    path("tiers/<int:pk>/delete/", views.tier_delete, name="tier-delete"),
    path("tiers/recalculate/", views.tiers_recalculate, name="tier-recalculate"),
    path("rules/", views.rule_list, name="rule-list"),
    path("rules/new/", views.rule_form, name="rule-create"),
    path("rules/<int:pk>/edit/", views.rule_form, name="rule-update"),
    path("rewards/", views.reward_list, name="reward-list"),
    path("rewards/new/", views.reward_form, name="reward-create"),
    path("rewards/<int:pk>/edit/", views.reward_form, name="reward-update"),
    path("plans/", views.plan_list, name="plan-list"),
    path("plans/new/", views.plan_form, name="plan-create"),
    path("plans/<int:pk>/edit/", views.plan_form, name="plan-update"),
    path("referrals/", views.referral_list, name="referral-list"),
    path("referrals/<int:pk>/review/", views.referral_review, name="referral-review"),
    path("customers/<int:pk>/", views.customer_panel, name="customer-panel"),
    path("customers/<int:pk>/adjust/", views.customer_adjust, name="customer-adjust"),
    path("customers/<int:pk>/tier/", views.customer_tier, name="customer-tier"),
]
