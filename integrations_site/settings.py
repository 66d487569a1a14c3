"""Settings of the integration hub, read from the environment (and an optional ``.env``).

One code base, two shapes, chosen by ``DATABASE_URL`` and ``REDIS_URL``:

* embedded default, zero services: SQLite in ``var/`` (WAL, busy timeout), django-q2's ORM broker,
  Django's database cache;
* past one machine: PostgreSQL, django-q2's Redis broker and Django's Redis cache.

Every variable is listed with its default in ``docs/configuration.md``.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from integrations_site.keys import load_fernet_keys, load_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("HUB_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)

# The sandbox partner (a fake CRM and payment provider under /sandbox/) for the demo and the
# tests. Never in production: it answers whoever holds its demo key.
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=False)

SECRET_KEY = load_secret_key(env("SECRET_KEY", default=""), debug=DEBUG, var_dir=VAR_DIR)

# Fernet keys for credentials at rest: the first encrypts, every one decrypts. Rotation: put the
# new key first, run ``manage.py rotate_fernet_keys``, then drop the old one (docs/secrets.md).
FERNET_KEYS = load_fernet_keys(env("FERNET_KEYS", default=""), debug=DEBUG, var_dir=VAR_DIR)
# The keys are real Fernet keys, checked at start-up: no key derivation from arbitrary strings.
FERNET_USE_HKDF = False

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "integrations_site.apps.HubAdminConfig",  # Django's admin, its home page grouped
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_q",
    "social_django",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "connectors",
    "webhooks",
    "flows",
    "syncs",
    "api",
    "monitoring",
    "governance",
    "health_check",
    *(["sandbox"] if SANDBOX_ENABLED else []),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files in production; DEBUG's runserver serves them itself.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    "django.contrib.sessions.middleware.SessionMiddleware",
    # the console's language: the one a person chose (its selector), else LANGUAGE_CODE
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # a refused single sign-on ends on the login page with a message, not an error page
    "social_django.middleware.SocialAuthExceptionMiddleware",
]

ROOT_URLCONF = "integrations_site.urls"
WSGI_APPLICATION = "integrations_site.wsgi.application"

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
                "connectors.context_processors.sso",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hub.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; IMMEDIATE transactions take the write
    # lock up front, so two writers queue on the busy timeout instead of failing with
    # "database is locked" when a read transaction tries to upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: tests run real worker processes that must see the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_hub.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, queue -------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="hub"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "hub_cache",
        }
    }

Q_CLUSTER = {
    "name": env("Q_CLUSTER_NAME", default="hub"),
    # processing is I/O-bound (a worker mostly waits for partners): 4 by default, more for a
    # busy hub (docs/operations.md: the figures per worker count)
    "workers": env.int("Q_WORKERS", default=4),
    # A task that runs longer than this is killed; ``retry`` must stay above it so that django-q2
    # never hands a still-running task to a second worker.
    "timeout": env.int("Q_TIMEOUT", default=120),
    "retry": env.int("Q_RETRY", default=180),
    "max_attempts": 1,
    "queue_limit": 50,
    "save_limit": env.int("Q_SAVE_LIMIT", default=1000),
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.5,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth, i18n, static -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The console's default language (a person may choose another in the console's header) and the
# time zone its dates are shown in, with the zone written after each time.
LANGUAGE_CODE = env("LANGUAGE_CODE", default="en-us")
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [Path(__file__).resolve().parent / "locale"]  # in the package: wheels carry it
FORMAT_MODULE_PATH = ["integrations_site.formats"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON in, JSON out, errors included (no browsable API: ?format=api is a 404)
    "DEFAULT_PARSER_CLASSES": ["api.errors.HubJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Integration hub API",
    "DESCRIPTION": "Run flows and read their runs. Token authentication with per-token scopes; "
    "POST requests honour the Idempotency-Key header (docs/rest-api.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # the docs page works offline: Swagger UI is served from the sidecar package
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/",
}

# --- Security (production) ----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets this header itself and strips it from clients.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Error pages and reports mask sensitive variables and settings even in DEBUG.
DEFAULT_EXCEPTION_REPORTER_FILTER = "integrations_site.debug.AlwaysSafeExceptionReporterFilter"

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# LOG_FORMAT: "text" (a line per record, correlation id and structured fields included) or
# "json" (one JSON object per line, python-json-logger), for a log collector.
LOG_FORMAT = env("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f'LOG_FORMAT must be "text" or "json", not {LOG_FORMAT!r}.')
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "integrations_site.logs.CorrelationFilter"}},
    "formatters": {
        "text": {
            "()": "integrations_site.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["correlation"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # These log full URLs (query-string keys) and token exchanges at DEBUG: never below INFO.
        "urllib3": {"level": "INFO"},
        "requests_oauthlib": {"level": "INFO"},
        "oauthlib": {"level": "INFO"},
    },
}

# --- Hub ----------------------------------------------------------------------------------------
# Outbound calls to private, loopback and link-local addresses are refused unless this is on
# (development, tests and the bundled sandbox turn it on; production leaves it off).
HUB_ALLOW_PRIVATE_NETWORKS = env.bool("HUB_ALLOW_PRIVATE_NETWORKS", default=DEBUG)
# Idempotency records (outbound calls with a key) are kept this long, then purged.
HUB_IDEMPOTENCY_TTL_SECONDS = env.int("HUB_IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# A partner's answer larger than this is refused (and the read stops there).
HUB_MAX_RESPONSE_BYTES = env.int("HUB_MAX_RESPONSE_BYTES", default=10 * 1024 * 1024)

# Webhooks: addresses of reverse proxies whose X-Forwarded-For is believed (for IP allowlists).
HUB_TRUSTED_PROXIES = env.list("HUB_TRUSTED_PROXIES", default=[])
# Seconds between processing attempts of a failing event; then it is dead (about 2.8 days).
HUB_WEBHOOK_RETRY_SCHEDULE = env.list(
    "HUB_WEBHOOK_RETRY_SCHEDULE", cast=int, default=[10, 60, 300, 1800, 7200, 21600, 43200, 86400]
)
# A worker holds an event this long; past it, the sweeper takes the event back.
HUB_WEBHOOK_LEASE_SECONDS = env.int("HUB_WEBHOOK_LEASE_SECONDS", default=300)
# Inside a task (an event's processing), a wait longer than this (Retry-After, backoff) is not
# slept in the worker: the event's retry is scheduled for then.
HUB_INLINE_WAIT_SECONDS = env.float("HUB_INLINE_WAIT_SECONDS", default=5.0)
# The sandbox partner's request log (tests and demos) is kept this many days.
HUB_SANDBOX_RETENTION_DAYS = env.int("HUB_SANDBOX_RETENTION_DAYS", default=7)
# Retention purges: rows per delete statement, at most this many rows per pass (the next pass,
# a few minutes later, goes on), and a pause between batches for ingest (docs/operations.md).
# Each connection's share of the workers (its bulkhead): calls in flight at once from the
# workers, across every process and machine (empty: half of a cluster's workers), and when work
# refused for a busy connection comes back.
HUB_CONNECTION_CONCURRENCY = env.int("HUB_CONNECTION_CONCURRENCY", default=None)
HUB_BULKHEAD_RETRY_SECONDS = env.float("HUB_BULKHEAD_RETRY_SECONDS", default=3.0)
# An attempt (or a call in flight) slower than this marks its connection slow for a minute.
HUB_BULKHEAD_SLOW_SECONDS = env.float("HUB_BULKHEAD_SLOW_SECONDS", default=2.0)
HUB_PURGE_BATCH_ROWS = env.int("HUB_PURGE_BATCH_ROWS", default=500)
HUB_PURGE_MAX_ROWS_PER_PASS = env.int("HUB_PURGE_MAX_ROWS_PER_PASS", default=50_000)
HUB_PURGE_PAUSE_SECONDS = env.float("HUB_PURGE_PAUSE_SECONDS", default=0.02)
# Refused deliveries are counted in memory and written to their endpoint this many seconds later.
HUB_WEBHOOK_REFUSAL_FLUSH_SECONDS = env.float("HUB_WEBHOOK_REFUSAL_FLUSH_SECONDS", default=5.0)
# A sync run holds its job this long past its last committed page; past it, the job is
# considered lost and the next start (or the sweeper) resumes the run from its last page.
# --- Monitoring (docs/monitoring.md) --------------------------------------------------------------
# The console's address as people reach it, for the links in notifications.
HUB_CONSOLE_URL = env("HUB_CONSOLE_URL", default="http://127.0.0.1:8000")
# A signal absent this long resolves its incident (a flapping one within it never left).
HUB_INCIDENT_RESOLVE_AFTER_MINUTES = env.int("HUB_INCIDENT_RESOLVE_AFTER_MINUTES", default=10)
# Rollups: the recent minutes recomputed each pass, then minute rows kept, then hour rows.
# (longer than the longest attempt: an attempt's row carries its start and lands when it ends)
HUB_ROLLUP_RECOMPUTE_MINUTES = env.int("HUB_ROLLUP_RECOMPUTE_MINUTES", default=5)
HUB_ROLLUP_MINUTE_DAYS = env.int("HUB_ROLLUP_MINUTE_DAYS", default=3)
HUB_ROLLUP_HOUR_DAYS = env.int("HUB_ROLLUP_HOUR_DAYS", default=400)
# /metrics: a bearer token, or addresses allowed without one (both empty: refused to all).
HUB_METRICS_TOKEN = env("HUB_METRICS_TOKEN", default="")
HUB_METRICS_ALLOWED_IPS = env.list(
    "HUB_METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"] if DEBUG else []
)
# /ready/ answers 503 past these: no worker heartbeat, and the oldest pending event's age.
HUB_READY_HEARTBEAT_SECONDS = env.int("HUB_READY_HEARTBEAT_SECONDS", default=180)
HUB_READY_BACKLOG_SECONDS = env.int("HUB_READY_BACKLOG_SECONDS", default=900)
# Email for the notification channels: EMAIL_URL (smtp://user:password@host:587/?tls=True),
# the console backend in development.
EMAIL_CONFIG = env.email_url(
    "EMAIL_URL", default="consolemail://" if DEBUG else "smtp://127.0.0.1:25"
)
vars().update(EMAIL_CONFIG)
# every outbound exchange has a timeout, the SMTP one too (Django's default waits forever)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="integration-hub@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

HUB_SYNC_LEASE_SECONDS = env.int("HUB_SYNC_LEASE_SECONDS", default=300)
# Modules that register webhook handlers (@webhooks.handlers.handler), imported at start-up.
HUB_HANDLER_MODULES = env.list("HUB_HANDLER_MODULES", default=[])
# OAuth over plain http (oauthlib refuses it): development and the tests' local OAuth server only.
HUB_OAUTH_ALLOW_HTTP = env.bool("HUB_OAUTH_ALLOW_HTTP", default=DEBUG)

# --- Staff single sign-on (social-auth-app-django) ----------------------------------------------
# Each provider is on when its client id is set. Only emails in HUB_SSO_ALLOWED_DOMAINS get in;
# a first sign-in creates a staff user in the Operators group (never a superuser).
HUB_SSO_ALLOWED_DOMAINS = env.list("HUB_SSO_ALLOWED_DOMAINS", default=[])
HUB_PASSWORD_LOGIN = env.bool("HUB_PASSWORD_LOGIN", default=True)
SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = env("SSO_GOOGLE_CLIENT_ID", default="")
SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = env("SSO_GOOGLE_CLIENT_SECRET", default="")
SOCIAL_AUTH_GITHUB_KEY = env("SSO_GITHUB_CLIENT_ID", default="")
SOCIAL_AUTH_GITHUB_SECRET = env("SSO_GITHUB_CLIENT_SECRET", default="")
SOCIAL_AUTH_GITHUB_SCOPE = ["user:email"]
SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = env("SSO_OIDC_ENDPOINT", default="")
SOCIAL_AUTH_OIDC_KEY = env("SSO_OIDC_CLIENT_ID", default="")
SOCIAL_AUTH_OIDC_SECRET = env("SSO_OIDC_CLIENT_SECRET", default="")
SSO_PROVIDERS = [
    (backend, label)
    for backend, label, key in [
        ("google-oauth2", "Google", SOCIAL_AUTH_GOOGLE_OAUTH2_KEY),
        ("github", "GitHub", SOCIAL_AUTH_GITHUB_KEY),
        ("oidc", env("SSO_OIDC_LABEL", default="single sign-on"), SOCIAL_AUTH_OIDC_KEY),
    ]
    if key
]
AUTHENTICATION_BACKENDS = [
    *(["django.contrib.auth.backends.ModelBackend"] if HUB_PASSWORD_LOGIN else []),
    *(["social_core.backends.google.GoogleOAuth2"] if SOCIAL_AUTH_GOOGLE_OAUTH2_KEY else []),
    *(["social_core.backends.github.GithubOAuth2"] if SOCIAL_AUTH_GITHUB_KEY else []),
    *(["social_core.backends.open_id_connect.OpenIdConnectAuth"] if SOCIAL_AUTH_OIDC_KEY else []),
]
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/admin/"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/admin/login/?sso=refused"
SOCIAL_AUTH_RAISE_EXCEPTIONS = False
SOCIAL_AUTH_USER_FIELDS = ["username", "email", "first_name", "last_name"]
SOCIAL_AUTH_REDIRECT_IS_HTTPS = not DEBUG
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "connectors.sso.allowed_domain_only",
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "connectors.sso.make_operator",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "social_core.pipeline.user.user_details",
)
# Scopes that look like full access, flagged in red on connections (regular expressions).
HUB_BROAD_SCOPE_PATTERNS = env.list(
    "HUB_BROAD_SCOPE_PATTERNS",
    default=[r"^\*$", r"(^|[.:_/ -])admin($|[.:_/ -])", r"full[_-]?access", r"\.all$", r"^all$"],
)
