from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.merchants.factories import StaffMemberFactory

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "x7!production-like-secret-key-for-the-settings-test-only-9f8e7d6c5b4a",
    "DATABASE_URL": "postgres://regulars@db.internal:5432/regulars",
    "ALLOWED_HOSTS": "rewards.example.com",
}


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_its_essentials(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _python("import django; django.setup()", env)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_cookies_are_secure_and_pages_redirect_to_https():
    result = _python(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.LANGUAGE_COOKIE_SECURE, "
        "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, s.DEBUG, "
        "s.PASSWORD_HASHERS[0].endswith('Argon2PasswordHasher'))",
        PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 5 + ["False", "True"]


@pytest.mark.parametrize(("threshold", "expected"), [(None, "5"), ("", "None"), ("2", "2")])
def test_production_binds_parameters_on_the_server_and_lets_psycopg_prepare(threshold, expected):
    env = dict(PRODUCTION_ENV)
    if threshold is not None:
        env["DATABASE_PREPARE_THRESHOLD"] = threshold
    result = _python(
        "import django; django.setup(); from django.conf import settings as s; "
        "o = s.DATABASES['default']['OPTIONS']; "
        "print(o['server_side_binding'], o['prepare_threshold'], "
        "s.DATABASES['default']['CONN_MAX_AGE'])",
        env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", expected, "60"]


def test_check_deploy_is_clean_with_production_settings():
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **PRODUCTION_ENV},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_their_inline_style_satisfies(client):
    member = StaffMemberFactory()
    client.force_login(member.user)
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    body = response.content.decode()
    assert f'<style nonce="{nonce}">' in body
    assert "<script>" not in body, "no inline script: CSP would block it"
    assert " style=" not in body, "no inline style attributes: CSP would block them"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_forms_refuse_a_post_without_the_csrf_token():
    member = StaffMemberFactory()
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": member.user.email, "password": "x"})
    assert response.status_code == 403
    client.force_login(member.user)
    assert client.post("/merchants/settings/", {"name": "Hijacked"}).status_code == 403
