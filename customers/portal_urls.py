"""The rewards page's shell and sign-in, under /r/<merchant-slug>/."""

from __future__ import annotations

from django.urls import path

from customers import portal_views

app_name = "portal"

urlpatterns = [
    path("", portal_views.portal_home, name="home"),
    path("panels/<slug:name>/", portal_views.portal_panel_view, name="panel"),
    path("sign-in/", portal_views.sign_in, name="sign-in"),
    path("sign-in/<str:token>/", portal_views.magic_link, name="magic-link"),
    path("enter/", portal_views.storefront_link, name="storefront-link"),
    path("sign-out/", portal_views.sign_out, name="sign-out"),
    path("language/", portal_views.language_set, name="language"),
]
