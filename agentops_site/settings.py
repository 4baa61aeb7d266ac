"""Every setting comes from the environment; see the settings table in README.md."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from agentops_site.env import env_bool, env_choice, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is unset (or the development key) while DJANGO_DEBUG=0: "
        "set SECRET_KEY to a long random string."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "projects",
    "sessions.apps.AgentSessionsConfig",
    "events",
    "analytics",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the session and the user are known, before the session is saved (response order).
    "agentops_site.db_router.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a login from a locked-out address before any password is checked.
    "agentops_site.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "agentops_site.urls"
WSGI_APPLICATION = "agentops_site.wsgi.application"

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
                "dashboard.onboarding.context",
                "agentops_site.db_router.context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

DATABASE_URL = env_url(
    "DATABASE_URL", "sqlite:///db.sqlite3", schemes=("sqlite", "postgres", "postgresql")
)


def _database_config(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        name = Path(config["NAME"] or "db.sqlite3")
        config["NAME"] = str(name if name.is_absolute() else BASE_DIR / name)
        config["CONN_MAX_AGE"] = 0
        # WAL and IMMEDIATE transactions let the embedded default take concurrent SDK writers
        # without "database is locked" errors.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # A file, not :memory:, so live-server tests and worker subprocesses see the same data;
        # one per test process, so concurrent runs on one checkout do not share it.
        config["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
    else:
        options = config.setdefault("OPTIONS", {})
        options["connect_timeout"] = 5
        # JIT compiles the dashboard's aggregates on every request (20-40 ms each over ~100k
        # rows, measured by bench/pages.py) and never pays back at these query sizes. With the
        # default 4 MB work_mem the overview's GROUP BY of a busy day (~100k events) sorted on
        # disk (130 ms); 32 MB lets it hash in memory (~3 MB used, 97 ms).
        options["options"] = "-c jit=off -c work_mem=32MB"
    return config


DATABASES = {"default": _database_config(DATABASE_URL)}
# A streaming replica of the primary for dashboard and export reads (agentops_site/db_router.py
# says which reads, and how a user still sees their own writes). Unset: everything on "default".
DATABASE_REPLICA_URL = env_url("DATABASE_REPLICA_URL", None, schemes=("postgres", "postgresql"))
if DATABASE_REPLICA_URL:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL is set but DATABASE_URL is not a postgres:// URL: "
            "a replica is a PostgreSQL streaming replica of a PostgreSQL primary."
        )
    DATABASES["replica"] = _database_config(DATABASE_REPLICA_URL)
    # Tests never create a second database for it: it shows the primary's test database.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["agentops_site.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# plotly.js comes from the installed plotly package (dashboard/staticfinders.py): no CDN.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfinders.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Security outside DEBUG -----------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
# `make run` serves plain HTTP on loopback with DEBUG off: cookies marked Secure would never
# come back over http://127.0.0.1, so it sets SECURE_COOKIES=0 (and SECURE_SSL_REDIRECT=0).
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # /healthz is probed over plain HTTP by load balancers and compose health checks.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Product settings -----------------------------------------------------------------------

SESSION_INACTIVITY_TIMEOUT = env_int("SESSION_INACTIVITY_TIMEOUT", 1800, minimum=1)
DATA_RETENTION_DAYS = env_int("DATA_RETENTION_DAYS", 0)
SESSION_JWT_TTL = env_int("SESSION_JWT_TTL", 24 * 3600, minimum=60)
# The address SDK snippets and hints show. Empty (the default): the address the browser is on.
PUBLIC_URL = env_str("PUBLIC_URL", "").rstrip("/")

# Bounds on what one request may carry; see events/limits.py for the per-event ones.
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
INGEST_MAX_EVENTS_PER_BATCH = env_int("INGEST_MAX_EVENTS_PER_BATCH", 1000, minimum=1)
# Most spans one POST /v1/traces may carry; those past it are refused alone (partial_success).
# agentops 0.4 sends at most its max_queue_size (512) per request.
OTLP_MAX_SPANS_PER_REQUEST = env_int("OTLP_MAX_SPANS_PER_REQUEST", 10_000, minimum=1)
# "queued": POST /v1/traces answers once the request is durable and a worker writes it (answers
# in a few ms); "inline": written before the answer (read-after-write, ~2x the latency). See
# events/otlp_queue.py. With CELERY_TASK_ALWAYS_EAGER the write is inline either way.
OTLP_WRITE = env_choice("OTLP_WRITE", "queued", ("queued", "inline"))
# The Celery queue of those writes; empty: the default queue. A queue of its own lets ingest have
# workers of its own (`celery -A agentops_site worker -Q <it>`), never behind a long rollup.
OTLP_WRITE_QUEUE = env_str("OTLP_WRITE_QUEUE", "")
# Backpressure: once the oldest queued request has waited this long, requests write inline
# until the workers catch up (events/otlp_queue.py `queued`).
OTLP_QUEUE_MAX_LAG_SECONDS = env_int("OTLP_QUEUE_MAX_LAG_SECONDS", 10, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES

# --- Celery ---------------------------------------------------------------------------------

CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", None, schemes=("redis", "rediss", "amqp", "amqps", "memory")
)
# With no broker configured, tasks still go through a real broker: files in CELERY_BROKER_DIR
# (agentops_site/broker.py), consumed by the worker and beat that `make run` starts beside the
# web server (Procfile). Nothing runs inside a request, and queued work survives restarts.
CELERY_BROKER_DIR = Path(env_str("CELERY_BROKER_DIR", str(BASE_DIR / "var" / "broker")))
BROKER_IS_FILESYSTEM = CELERY_BROKER_URL is None
if BROKER_IS_FILESYSTEM:
    from agentops_site import broker as _directory_broker

    CELERY_BROKER_URL = _directory_broker.URL
    CELERY_BROKER_TRANSPORT = "agentops_site.broker:Transport"
# Tasks run at the call site only when asked (scripts, the unit tests' conftest): never by
# default, so a deployment without a broker server still hands work to its worker.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers a message a killed worker never acknowledged after this many seconds; it must
# exceed the longest task time limit (analytics.purge_old_data: 3300 s).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
# Workers sweep for such messages about ten times per visibility timeout, at most every 100 s
# (kombu's default: every 10th tick of 10 s), so a small timeout really redelivers quickly.
_RESTORE_PERIOD = min(100, max(1, CELERY_VISIBILITY_TIMEOUT // 10))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": min(10, _RESTORE_PERIOD),
    "unacked_restore_throttle": max(1, _RESTORE_PERIOD // 10),
    "socket_connect_timeout": 5,
}
if BROKER_IS_FILESYSTEM:
    # The directory broker redelivers on a worker's restart, not after a timeout (broker.py).
    CELERY_BROKER_TRANSPORT_OPTIONS.update(_directory_broker.transport_options(CELERY_BROKER_DIR))
# Lets several deployments (or test runs) share one Redis without taking each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_BEAT_SCHEDULE = {
    "expire-silent-sessions": {"task": "analytics.expire_sessions", "schedule": 60.0},
    "rollup-catch-up": {"task": "analytics.rollup_recent", "schedule": 15 * 60.0},
    "purge-old-data": {"task": "analytics.purge_old_data", "schedule": crontab(minute=17, hour=3)},
    "maintain-partitions": {"task": "analytics.maintain_partitions", "schedule": 3600.0},
    "write-waiting-otlp-batches": {"task": "events.process_pending_otlp", "schedule": 60.0},
}

# --- Cache and throttles (projects/throttle.py) ---------------------------------------------

# The throttles must count across gunicorn workers and machines, so production keeps them in
# Redis: CACHE_URL, else the broker's Redis when the broker is Redis. The embedded default
# (no broker) counts per process in memory, which is enough for one developer's server.
CACHE_URL = env_url("CACHE_URL", None, schemes=("redis", "rediss", "locmem"))
if CACHE_URL is None and CELERY_BROKER_URL and CELERY_BROKER_URL.startswith("redis"):
    CACHE_URL = CELERY_BROKER_URL
if CACHE_URL and CACHE_URL.startswith("redis"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "agentops"),
            # A Redis that is away must cost a request milliseconds, not the default minutes.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
THROTTLE_CACHE = "default"
THROTTLE_KEY_PREFIX = "throttle"
# Failed API key / session token checks allowed per client address per window; 0 turns it off.
AUTH_FAILURE_LIMIT = env_int("AUTH_FAILURE_LIMIT", 20)
AUTH_FAILURE_WINDOW = env_int("AUTH_FAILURE_WINDOW", 60, minimum=1)
# Requests per API key (its session tokens included) per window; 0 (the default) is unlimited.
API_KEY_RATE_LIMIT = env_int("API_KEY_RATE_LIMIT", 0)
API_KEY_RATE_WINDOW = env_int("API_KEY_RATE_WINDOW", 60, minimum=1)
# How many reverse proxies in front of gunicorn append to X-Forwarded-For (0: use REMOTE_ADDR).
THROTTLE_TRUSTED_PROXIES = env_int("THROTTLE_TRUSTED_PROXIES", 0)

# --- Login throttling (django-axes) ---------------------------------------------------------

# Failed dashboard/admin logins per client address before it is locked out for
# LOGIN_LOCKOUT_MINUTES; counted in the database, so every web process shares the count.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The same client address as the API throttles (THROTTLE_TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "agentops_site.login_throttle.client_ip"
AXES_VERBOSE = False

# --- REST framework -------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "agentops_site.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Self-hosted AgentOps API",
    "DESCRIPTION": "The AgentOps v2 ingestion protocol, session stats and export.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page's JavaScript is served by us, not a CDN: self-hosted means offline too.
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "agentops_site.errors.document_error_responses",
    ],
}

# --- Logging: everything to stdout ----------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["stdout"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes logs every successful login at INFO; lockouts are WARNING and still shown.
    "loggers": {"axes": {"level": "WARNING"}},
}
