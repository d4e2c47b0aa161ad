"""`make bench`: the production settings, served over plain HTTP on loopback, plus the
bare baseline views the benchmarks compare the product's pages and API with."""

from __future__ import annotations

from .production import *  # noqa: F403
from .production import STORAGES

ROOT_URLCONF = "bench.urls"
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Pages are measured, not their assets: no collectstatic needed for {% static %}.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
