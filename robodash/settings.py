"""Settings, read from the environment (see .env.example).

robodash runs on PostgreSQL and Redis in every mode. With no DATABASE_URL or CELERY_BROKER_URL it
uses the servers that `make run` keeps under var/ (robodash.embedded), and the local simulator as
the provider. Set DATABASE_URL and CELERY_BROKER_URL for your own (compose, CI, production).
"""

import base64
import datetime as dt
import hashlib
import os
import urllib.parse
import zoneinfo
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from robodash import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ROBODASH_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envfloat(name: str, default: str) -> float:
    value = os.environ.get(name, default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def envint(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envzone(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be a time zone name such as Asia/Karachi, not {value!r}"
        ) from None
    return value


def envsecret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def fernet_keys(value: str) -> list[str]:
    """FIELD_ENCRYPTION_KEY's comma-separated Fernet keys, each checked; ImproperlyConfigured
    for a malformed one, whose message never echoes the value: it is a secret."""
    keys = [key.strip() for key in value.split(",") if key.strip()]
    try:
        if not keys:
            raise ValueError("no key")
        for key in keys:
            Fernet(key)  # raises ValueError unless 32 url-safe base64-encoded bytes
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys (generate one "
            "with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from None
    return keys


def redis_cache_url_beside(broker_url: str) -> str:
    """A cache URL (redis-py's forms) on the same Redis as the Celery broker `broker_url` (any
    form kombu reads: redis://, rediss://, redis+socket:///path?virtual_host=N), in the other
    database of the broker's pair (0 and 1, 2 and 3, … 14 and 15: Redis has 16 by default), so
    brokers on different pairs never meet each other's caches (the test processes' brokers
    step by two: robodash.embedded.broker_url_of_worker). Its own database, because the cache's
    clear() empties the whole database."""
    parts = urllib.parse.urlsplit(broker_url)
    query = urllib.parse.parse_qsl(parts.query)
    db_text = embedded.broker_db(broker_url)
    try:
        cache_db = int(db_text) ^ 1
    except ValueError:
        raise ImproperlyConfigured(
            f"CELERY_BROKER_URL's Redis database must be a number, not {db_text!r}"
        ) from None
    if parts.scheme == "redis+socket":
        query = [(name, value) for name, value in query if name != "virtual_host"]
        query = [*query, ("db", str(cache_db))]
        scheme, path = "unix", parts.path
    else:
        scheme, path = parts.scheme, f"/{cache_db}"
    rest = f"?{urllib.parse.urlencode(query)}" if query else ""
    # By hand: urlunsplit drops the // of a scheme it does not know (unix:).
    return f"{scheme}://{parts.netloc}{path}{rest}"


DEBUG = envbool("DEBUG", "false")
SECRET_KEY = envsecret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set (set DEBUG=true for a local demo)")
    SECRET_KEY = "insecure-local-demo-key-not-for-production"

_hosts = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost")
ALLOWED_HOSTS = [h.strip() for h in _hosts.split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Its index expressions (OpClass) and pg_trgm's migration operation: the orders search.
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "calls",
    "shops",
    "ninja",  # the API's docs page serves Swagger UI from ninja's own static files
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body (sessions, CSRF, forms): an oversized one is refused unread.
    "robodash.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in user's saved language wins over the browser's (after LocaleMiddleware's guess).
    "robodash.middleware.UserLanguageMiddleware",
    "robodash.middleware.NoStoreWhenSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Between the two: sees LoginRequiredMiddleware's redirect of an htmx request.
    "robodash.middleware.HtmxSignInAndRefusalMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Last: turns a locked-out sign-in (on /accounts/login/ and /admin/login/) into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "robodash.urls"
WSGI_APPLICATION = "robodash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "calls.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
EMBEDDED_DATABASE = not DATABASE_URL
if EMBEDDED_DATABASE:
    DATABASE_URL = embedded.postgres_url(VAR_DIR)  # the socket of make run's own PostgreSQL
try:
    # Connections are kept a minute, and checked before their first query of each request or
    # task: one that PostgreSQL ended (a restart, a failover) is replaced instead of failing the
    # request (tests/test_database_restart.py).
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
except ValueError:
    DATABASES = {"default": {"ENGINE": ""}}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    # Never echo the URL: it may hold a password.
    raise ImproperlyConfigured(
        "DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:5432/name); "
        "robodash runs on PostgreSQL only, and brings its own when DATABASE_URL is unset"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "calls.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},  # 12, not 10: "Summer2024" has ten
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Sign-in lockout (django-axes) -----------------------------------------------------------
# Axes checks every sign-in, the admin's included, before Django's own backend.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Locked after this many failures for one username, or from one address, whichever comes
# first; the lock lifts after the cool-off (or `manage.py axes_reset_username NAME`).
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", "10")
AXES_COOLOFF_TIME = dt.timedelta(minutes=envfloat("AXES_COOLOFF_MINUTES", "15"))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "robodash.middleware.client_ip"

# --- Languages -------------------------------------------------------------------------------
# English is the default; each user may pick Urdu (User.language), and anyone may switch with
# the language form in the top bar (Django's set_language, /i18n/setlang/). Before sign-in the
# browser's Accept-Language or the language cookie decides (LocaleMiddleware). The translations
# live in locale/ (docs/i18n.md says how to update them).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ur", "اردو")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["robodash.formats"]  # Urdu's dates and numbers (Django has none for ur)
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True
# The merchant's zone: its midnights split the days of the overview's and the reports' figures,
# and it is new stores' zone (each store may choose its own calling zone). Read at start; the
# `migrate` every start runs counts the stored figures again when it changed
# (calls/figures/counters.py).
ROBODASH_DEFAULT_STORE_TIMEZONE = envzone("ROBODASH_DEFAULT_STORE_TIMEZONE", "Asia/Karachi")

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the <body hx-headers> attribute anyway
X_FRAME_OPTIONS = "DENY"

# --- HTTPS, headers and request size ---------------------------------------------------------
# In production gunicorn is reached only through the TLS proxy (compose's caddy), which sets
# X-Forwarded-Proto and X-Forwarded-For. `make run` (DEBUG on) serves plain HTTP without one.
BEHIND_TLS_PROXY = envbool("ROBODASH_BEHIND_TLS_PROXY", "false" if DEBUG else "true")
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True  # names under the dashboard's own host, if any
# Joining browsers' HSTS preload list binds a whole registered domain for good: the domain
# owner's decision to make (SECURE_HSTS_PRELOAD), not a default of one app on it.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SESSION_COOKIE_SECURE = BEHIND_TLS_PROXY
CSRF_COOKIE_SECURE = BEHIND_TLS_PROXY
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No inline script or style anywhere: every page's CSS and JavaScript is a static file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
# Bodies larger than these are refused from their Content-Length, before being read.
# The upload's own limit (a 10 MB CSV) plus room for the rest of the multipart form.
ROBODASH_MAX_BODY_BYTES = envint("ROBODASH_MAX_BODY_BYTES", "1048576")  # 1 MiB
ROBODASH_MAX_UPLOAD_BODY_BYTES = envint("ROBODASH_MAX_UPLOAD_BODY_BYTES", "11534336")  # 11 MiB
# The most data rows one upload on the new-campaign page may have (import_calls has no cap):
# a file over it is refused before anything is stored.
ROBODASH_UPLOAD_MAX_ROWS = envint("ROBODASH_UPLOAD_MAX_ROWS", "200000")
# A launch of up to this many valid rows runs within the request; a larger one in a worker,
# with a progress bar on the campaign page.
ROBODASH_LAUNCH_IN_REQUEST_ROWS = envint("ROBODASH_LAUNCH_IN_REQUEST_ROWS", "5000")

# The cache is shared by every process (the API's rate limit per token is counted across all
# gunicorn workers), so it is never a per-process memory cache: CACHE_URL, else the broker's
# Redis (below), in the other database of the broker's pair.
CACHE_URL = os.environ.get("CACHE_URL", "")

# --- Secrets at rest -------------------------------------------------------------------------
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation). For a local demo
# with DEBUG on, one is derived from SECRET_KEY so `make run` needs no set-up.
FIELD_ENCRYPTION_KEY = envsecret("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is not set (see .env.example)")
    FIELD_ENCRYPTION_KEY = base64.urlsafe_b64encode(
        hashlib.sha256(SECRET_KEY.encode()).digest()
    ).decode()
# Read once, here: a malformed key stops the start rather than the first store save, and
# calls/crypto.py builds its MultiFernet from this list.
FIELD_ENCRYPTION_KEYS = fernet_keys(FIELD_ENCRYPTION_KEY)

# --- Provider --------------------------------------------------------------------------------
ROBOCALL_BASE_URL = os.environ.get("ROBOCALL_BASE_URL", "http://127.0.0.1:8001/api/v1/")
# (connect, read) seconds. A `calls` read timeout is ambiguous: the call may have been placed.
ROBOCALL_CONNECT_TIMEOUT = envfloat("ROBOCALL_CONNECT_TIMEOUT", "3.05")
ROBOCALL_READ_TIMEOUT = envfloat("ROBOCALL_READ_TIMEOUT", "20")

# --- Pipeline timing -------------------------------------------------------------------------
# Every fixed duration of the pipeline (first poll, re-poll while ringing, leases, lifetime)
# is divided by this; tests and benchmarks speed the whole pipeline up with it. The stores'
# retry delays are real settings of their own and are not scaled.
ROBODASH_TIME_SCALE = envfloat("ROBODASH_TIME_SCALE", "1")
ROBODASH_SWEEP_SECONDS = envfloat("ROBODASH_SWEEP_SECONDS", "2")

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
EMBEDDED_BROKER = not CELERY_BROKER_URL
if EMBEDDED_BROKER:
    CELERY_BROKER_URL = embedded.redis_url(VAR_DIR)  # the socket of make run's own Redis
if CELERY_BROKER_URL.split("://", 1)[0] not in ("redis", "rediss", "redis+socket"):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must be a Redis URL (redis://host:6379/0, rediss://… or "
        "redis+socket:///path/to/redis.sock); robodash brings its own Redis when it is unset"
    )
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL or redis_cache_url_beside(CELERY_BROKER_URL),
    }
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Postgres is the source of truth: a task lost with a dead worker or a flushed Redis is found
# again by the next sweep, so tasks are acknowledged on receipt and never redelivered blindly.
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes a worker's database connection before and after every task
# (Celery 5.7, whatever CONN_MAX_AGE says) unless told to reuse it: a connection per task cost
# PostgreSQL a new backend and, in it, the planning of the counting triggers' statements again,
# for every call sent (bench/pipeline_bench.py). Reused for up to this many tasks per process;
# robodash/celery.py closes it sooner, by Django's rules for a request (CONN_MAX_AGE, or broken).
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Logging ---------------------------------------------------------------------------------
# Every handler scrubs provider keys, whatever logger the line comes from (urllib3 logs full
# URLs at DEBUG, and the key travels in the query string), and writes a refused request (4xx)
# on one line, without the traceback Django attaches to it.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "calls.redaction.RedactSecretsFilter"},
        "refusals_on_one_line": {"()": "robodash.log_filters.RefusalsOnOneLine"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets", "refusals_on_one_line"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own defaults give "django" a console handler of its own when DEBUG is on (make
    # run), which would print each of its lines a second time, unfiltered: none, so they reach
    # the one above. (runserver's access lines keep their "django.server" handler.)
    "loggers": {"django": {"handlers": [], "propagate": True}},
}

# --- Shops ---------------------------------------------------------------------------------------
# The address merchants reach robodash at, for the webhook and API URLs shown to paste into a
# shop. Unset, a page shows the address it was opened at (shops/urls_public.py).
ROBODASH_PUBLIC_URL = os.environ.get("ROBODASH_PUBLIC_URL", "").strip()
# Where the workers may send a merchant's requests (shops/outgoing.py): off, only to public
# https addresses, checked when saved and again at connect time. On (`make run` and the tests,
# whose shop stand-ins listen on 127.0.0.1): plain http and private or internal addresses too.
ROBODASH_ALLOW_PRIVATE_TARGETS = envbool("ROBODASH_ALLOW_PRIVATE_TARGETS", "false")
# Requests one API token may make a minute (POST /api/v1/orders, GET of an order).
ROBODASH_API_RATE_PER_MINUTE = envint("ROBODASH_API_RATE_PER_MINUTE", "600")
