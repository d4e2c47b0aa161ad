"""Everything real about Regulars' configuration, read from the environment.

The embedded default (SQLite and the Celery filesystem transport under var/, console
email, local-memory cache) needs no servers; production sets DATABASE_URL,
CELERY_BROKER_URL and REDIS_URL. `.env.example` documents every variable.
"""

from __future__ import annotations

from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public address of this deployment, for links in emails sent outside a request.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "axes",
    "csp",
    "ninja",
    "modeltranslation",
    # Our apps, lowest first: an app imports only from apps above it in this list.
    "merchants",
    "customers",
    "loyalty",
    "campaigns",
    "feedback",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "merchants.middleware.NulRefusedMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "merchants.middleware.StaffIdleTimeoutMiddleware",
    "merchants.middleware.ActiveMerchantMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks, so it sees every sign-in attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "merchants.context_processors.staff",
            ],
            # `date` in the merchant's calendar, Gregorian or Solar Hijri.
            "builtins": ["merchants.templatetags.dates"],
        },
    },
    {
        # The hot pages' fragments (the rewards page's panels, the customer list's and the
        # inbox's rows): jinja2/ at the root, config/jinja2.py for what they can call.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "config.jinja2.environment"},
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'regulars.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the Celery worker share one file: WAL lets readers run beside a
    # writer, and IMMEDIATE transactions queue writers instead of failing with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }


def postgres_settings(database: dict, *, keep_connections: bool = False) -> dict:
    """A PostgreSQL database's settings. Connections are kept between requests only where
    a long-lived worker reuses them (`keep_connections`: gunicorn and Celery under the
    production settings); the development server opens a thread per request, and keeping
    each thread's connection ran PostgreSQL out of them after about a hundred requests.
    DATABASE_CONN_MAX_AGE overrides either. Parameters are bound by the server, so psycopg
    prepares a statement a connection has run
    DATABASE_PREPARE_THRESHOLD times and then only executes it (planning the hot pages' and
    the API's statements cost more than running them). Prepared at the protocol level,
    which PgBouncer 1.21+ keeps in transaction mode (max_prepared_statements); behind an
    older pooler, DATABASE_PREPARE_THRESHOLD= (empty) turns it off."""
    threshold = env("DATABASE_PREPARE_THRESHOLD", default="5")
    kept = 60 if keep_connections else 0
    database["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=kept)
    database["CONN_HEALTH_CHECKS"] = True
    database.setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": int(threshold) if threshold else None}
    )
    return database


if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    postgres_settings(DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    # django-redis, told to answer a miss when Redis is away (and log it): everything kept
    # in the cache is also in the database (sessions are cached_db, the loyalty catalog and
    # figures are read again), so pages, sign-in and ingest go on while Redis is down.
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Accounts, sign-in and sessions ---------------------------------------------------
AUTH_USER_MODEL = "merchants.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first, so a locked-out address never reaches the password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * 3  # an invitation link lives three days

# Staff are signed out after this long without a request.
STAFF_IDLE_TIMEOUT_SECONDS = env.int("STAFF_IDLE_TIMEOUT_SECONDS", default=30 * 60)
# The idle timeout is enforced by merchants.middleware, which says why the person was
# signed out; the session itself lives an hour longer so that message can be shown.
SESSION_COOKIE_AGE = STAFF_IDLE_TIMEOUT_SECONDS + 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = False
if REDIS_URL:
    # Read from the shared cache, written through to the database: a staff page saves a
    # query. Never over a per-process cache, where one process could keep a session
    # another had ended.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# django-axes: five wrong passwords for one email from one address lock that pair for
# fifteen minutes; a successful sign-in resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "merchants.views.sign_in_locked_out"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)
AXES_VERBOSE = False

# --- Languages ------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("ar", _("Arabic")),
    ("fa", _("Persian")),
    ("ru", _("Russian")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Merchant content per language (merchants/content.py): a column per language, English
# the column the plain field mirrors; the fallback is per field, the merchant's default.
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_LANGUAGES = ("en", "ar", "fa", "ru")
LANGUAGE_COOKIE_NAME = "regulars_language"
LANGUAGE_COOKIE_AGE = 60 * 60 * 24 * 365
LANGUAGE_COOKIE_SAMESITE = "Lax"
USE_I18N = True
USE_THOUSAND_SEPARATOR = True
# Arabic and Persian numbers grouped by thousands (config/formats/): Latin digits throughout.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
# Front-end libraries come from npm (package.json and its lock) into node_modules/ at
# set-up; only their dist folders are served, from our own origin.
NODE_MODULES = BASE_DIR / "node_modules"
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", NODE_MODULES / "bootstrap" / "dist"),
    ("vendor/bootstrap-icons", NODE_MODULES / "bootstrap-icons" / "font"),
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/chartjs", NODE_MODULES / "chart.js" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# --- Security headers -----------------------------------------------------------------
# The pages load nothing from elsewhere and run no inline script; the one inline style
# (the merchant's brand colour) carries the request's nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# --- Email ----------------------------------------------------------------------------
# EMAIL_URL for plain SMTP (smtp+tls://user:password@host:587). Unset, every message is
# written to a file under var/mail/ and printed to the console. An ESP through
# django-anymail: EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend and its keys in
# ANYMAIL (JSON), e.g. {"MAILGUN_API_KEY": "…", "MAILGUN_WEBHOOK_SIGNING_KEY": "…"}.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    default=_email["EMAIL_BACKEND"]
    if env("EMAIL_URL", default="")
    else "customers.mail.FileAndConsoleBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Regulars <no-reply@regulars.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The ESP's tracking webhooks (/hooks/anymail/<esp>/tracking/) are refused without this
# basic-auth "user:password" in their URL, besides the ESP's own signature where it signs.
ANYMAIL = env.json("ANYMAIL", default={})
if env("ANYMAIL_WEBHOOK_SECRET", default=""):
    ANYMAIL["WEBHOOK_SECRET"] = env("ANYMAIL_WEBHOOK_SECRET")

# --- Forms ----------------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
REDIS_VISIBILITY_TIMEOUT = 2 * 60 * 60 + 15 * 60  # seconds; see the Redis broker below
# An import with no progress for this long lost its worker and is picked up again.
IMPORT_STALE_SECONDS = env.int("IMPORT_STALE_SECONDS", default=5 * 60)
# How long a send task holds the messages it took: a worker that dies holding them gives
# them back after this, for the next pass of the flows (every minute) to send.
MESSAGE_LEASE_SECONDS = env.int("MESSAGE_LEASE_SECONDS", default=10 * 60)
CELERY_FILESYSTEM_DIR = Path(env("CELERY_FILESYSTEM_DIR", default=str(VAR_DIR / "celery")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed"):
        (CELERY_FILESYSTEM_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FILESYSTEM_DIR / "queue"),
        "data_folder_out": str(CELERY_FILESYSTEM_DIR / "queue"),
        "processed_folder": str(CELERY_FILESYSTEM_DIR / "processed"),
        "store_processed": False,
    }
else:
    # Longer than the longest task's hard time limit (an import's two hours), so Redis
    # never hands a running task to a second worker; tests/merchants/test_celery_worker.py
    # holds every task to it. A task whose worker died comes back after this long; an
    # import's own heartbeat has it picked up within minutes (IMPORT_STALE_SECONDS).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = env(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule")
)
# A task redelivered more often than this (a worker killed by it each time) is dropped.
CELERY_MAX_DELIVERIES = env.int("CELERY_MAX_DELIVERIES", default=5)
# How often the scheduler records that it is alive (shown on the dashboard).
HEARTBEAT_SECONDS = env.float("HEARTBEAT_SECONDS", default=60.0)

# How many customers `seed_demo` gives Demo Store (with about six orders each).
DEMO_CUSTOMERS = env.int("DEMO_CUSTOMERS", default=2000)
# And how many feedback tickets its inbox holds, worked some way through their lives.
DEMO_TICKETS = env.int("DEMO_TICKETS", default=300)

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
