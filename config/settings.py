"""Settings for Belt & Road Weekly, all read from the environment.

With no environment set it runs embedded: SQLite under var/, Celery tasks run in
process, a local-memory cache and emails written as .eml files to var/outbox/.
Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, SITE_URL, ALLOWED_HOSTS,
DEBUG=false and an email backend (see README.md for the full table).
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_languages,
    env_list,
    env_prefixed,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "insecure-dev-key-only-for-the-embedded-default-never-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: with DEBUG=false set SECRET_KEY to a long random string "
        '(python -c "import secrets; print(secrets.token_urlsafe(50))").'
    )
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for DEBUG=false: use 50 or more random characters."
    )

# Every link in an email is absolute and built from SITE_URL. Production mail must link
# to https, because Gmail and Yahoo only honour https List-Unsubscribe URLs.
SITE_URL = env_url(
    "SITE_URL", "http://localhost:8000", schemes=("https",) if not DEBUG else ("http", "https")
)
_site_host = urlsplit(SITE_URL).hostname or "localhost"

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [_site_host, "localhost", "127.0.0.1", "[::1]"] if DEBUG else [_site_host]
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "captcha",
    "django_countries",
    "axes",
    "articles",
    "newsletter",
    "inbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # ESP webhooks (machines posting events) skip the rest: newsletter/webhooks.py says why.
    "newsletter.webhooks.WebhookShortcutMiddleware",
    # WhiteNoise serves collected static files in production; runserver serves them in DEBUG.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    "django.contrib.sessions.middleware.SessionMiddleware",
    # LocaleMiddleware, plus sending a browser that prefers another language to its page.
    "config.locale.ReaderLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # NUL and other control characters leave query strings and form posts here, once.
    "config.cleaning.ControlCharacterMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Every time shown or typed on a page is in the newsletter's zone, whatever TIME_ZONE is.
    "newsletter.timezones.NewsroomTimezoneMiddleware",
    # django-axes: staff logins locked out after repeated failures (last, as its docs say).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------
_DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    _database = dj_database_url.parse(
        _DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60, minimum=0)
    )
except ValueError as exc:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL ({exc}): use postgres://user:pass@host:5432/name "
        "or sqlite:///path/to/file.sqlite3."
    ) from None
if _database["ENGINE"] not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
    raise ImproperlyConfigured(
        "DATABASE_URL must point to PostgreSQL (postgres://) or SQLite (sqlite://)."
    )
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is the embedded default: one writer at a time, so wait for the lock
    # instead of failing when the web process and an eager task write together.
    _database["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # A fresh checkout has no var/ yet; the embedded default must work without set-up.
    if _database["NAME"] and _database["NAME"] != ":memory:":
        Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _database["CONN_MAX_AGE"] = 0
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache and rate limits ---------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss"))
# The cache gets its own Redis database by default, so that clearing it (tests, an
# operator) never drops queued Celery tasks.
REDIS_CACHE_URL = env_str("REDIS_CACHE_URL", "")
if REDIS_CACHE_URL:
    REDIS_CACHE_URL = env_url("REDIS_CACHE_URL", "", schemes=("redis", "rediss"))
elif REDIS_URL:
    _parts = urlsplit(REDIS_URL)
    _db = _parts.path.strip("/")
    _cache_db = int(_db) + 1 if _db.isdigit() else 1
    REDIS_CACHE_URL = urlunsplit(_parts._replace(path=f"/{_cache_db}"))

if REDIS_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "KEY_PREFIX": "brw",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery (see config/celery.py for the delivery guarantees) --------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
# Without a broker there is nobody to run tasks, so the embedded default runs them
# in process. CELERY_TASK_ALWAYS_EAGER=true forces that with Redis too (tests do).
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
# A task that is not acknowledged within this many seconds is handed to another
# worker by Redis. It must exceed the longest task and every retry countdown.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TIMEZONE = "UTC"
# --- Feed sources ----------------------------------------------------------------------
# Every active feed source is fetched this often (conditional GET, so an unchanged feed
# costs one small request).
FEED_FETCH_INTERVAL_MINUTES = env_int("FEED_FETCH_INTERVAL_MINUTES", 15, minimum=1)
# A source may read a file only from this directory ("file:NAME"); empty: no file sources.
# `make demo` writes its portal feed there (the shipped sample, dated this week).
FEED_FILE_DIR = env_str("FEED_FILE_DIR", str(VAR_DIR / "feeds"))
# Test-only, never from the environment: lets tests fetch feeds from 127.0.0.1.
FEED_ALLOW_LOOPBACK = False

# How often beat's send watchdog looks for lost or stalled batch ranges.
NEWSLETTER_WATCH_SECONDS = env_int("NEWSLETTER_WATCH_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE = {
    # Each active feed source is fetched, its new and changed articles imported.
    "fetch-feeds": {
        "task": "articles.tasks.fetch_feeds",
        "schedule": FEED_FETCH_INTERVAL_MINUTES * 60.0,
    },
    # Each newsletter compiles at its own weekday and time; this tick checks which are due.
    "compile-due-issues": {"task": "newsletter.tasks.compile_due_issues", "schedule": 300.0},
    # Scheduled issues start sending when their time comes.
    "send-due-issues": {"task": "newsletter.tasks.send_due_issues", "schedule": 60.0},
    # The send watchdog: re-enqueues ranges whose task was lost (dispatched, never
    # claimed) and rows whose batch died (lease ran out), so no fault stalls a send
    # for more than about a minute (newsletter/sending/dispatch.py).
    "reclaim-expired-leases": {
        "task": "newsletter.tasks.reclaim_expired_leases",
        "schedule": float(NEWSLETTER_WATCH_SECONDS),
    },
    # Tracking events whose task was lost (broker down at the time) are processed late.
    "process-stale-tracking-events": {
        "task": "newsletter.tasks.process_stale_tracking_events",
        "schedule": 300.0,
    },
    # Sunset (off unless NEWSLETTER_SUNSET_AFTER_ISSUES is set): ask, then pause.
    "sunset-readers": {"task": "newsletter.tasks.sunset_readers", "schedule": 3600.0},
    # Signups nobody confirmed are deleted once NEWSLETTER_PENDING_PURGE_DAYS have passed.
    "purge-unconfirmed-signups": {
        "task": "newsletter.tasks.purge_unconfirmed_signups",
        "schedule": 86400.0,
    },
}

# --- Email -----------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "newsletter.backends.OutboxBackend")
EMAIL_OUTBOX_DIR = Path(env_str("EMAIL_OUTBOX_DIR", str(VAR_DIR / "outbox")))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are both true: choose one.")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Belt & Road Weekly <weekly@{_site_host}>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# Every ANYMAIL_<KEY> variable becomes ANYMAIL["<KEY>"], e.g. ANYMAIL_MAILGUN_API_KEY,
# ANYMAIL_MAILGUN_SENDER_DOMAIN, ANYMAIL_MAILGUN_API_URL, ANYMAIL_WEBHOOK_SECRET.
ANYMAIL = env_prefixed("ANYMAIL_")
if (
    EMAIL_BACKEND.startswith("anymail.backends.")
    and EMAIL_BACKEND.split(".")[2]
    not in (
        "test",
        "console",
    )
    and not ANYMAIL
):
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND={EMAIL_BACKEND} needs the ESP's credentials in ANYMAIL_* variables "
        "(for Mailgun: ANYMAIL_MAILGUN_API_KEY and ANYMAIL_MAILGUN_SENDER_DOMAIN)."
    )

# The ESPs whose tracking webhooks /anymail/<esp>/tracking/ answers; any other is a 404.
# Default: the ESP of EMAIL_BACKEND when it is one of them (newsletter/webhooks.py).
WEBHOOK_ESPS_SUPPORTED = ("mailgun", "sendgrid", "postmark", "sparkpost", "mailjet")
_backend_esp = (
    EMAIL_BACKEND.split(".")[2]
    if EMAIL_BACKEND.startswith("anymail.backends.")
    # The project's own Mailgun backend (anymail's, with the payload encoded once).
    else "mailgun"
    if EMAIL_BACKEND == "newsletter.sending.mailgun.EmailBackend"
    else ""
)
NEWSLETTER_WEBHOOK_ESPS = env_list(
    "NEWSLETTER_WEBHOOK_ESPS", [_backend_esp] if _backend_esp in WEBHOOK_ESPS_SUPPORTED else []
)
for _esp in NEWSLETTER_WEBHOOK_ESPS:
    if _esp not in WEBHOOK_ESPS_SUPPORTED:
        raise ImproperlyConfigured(
            f"NEWSLETTER_WEBHOOK_ESPS names {_esp!r}: choose from {', '.join(WEBHOOK_ESPS_SUPPORTED)}."
        )

# --- The newsletter ---------------------------------------------------------------------
NEWSLETTER_BATCH_SIZE = env_int("NEWSLETTER_BATCH_SIZE", 1000, minimum=1)
# A claimed batch row is leased for this long and renewed every third of it while
# the batch works (a heartbeat); a worker that dies leaves rows that the watchdog
# hands to another worker once the lease runs out.
NEWSLETTER_LEASE_SECONDS = env_int("NEWSLETTER_LEASE_SECONDS", 60, minimum=30)
# A range dispatched but not claimed by a worker within this many seconds was lost on
# the broker (a restart, say) and is enqueued again.
NEWSLETTER_DISPATCH_GRACE_SECONDS = env_int("NEWSLETTER_DISPATCH_GRACE_SECONDS", 60, minimum=5)
# Attempts per row for errors of the ESP or the network; rate limits (429, 503 with
# Retry-After) do not count, they are waited out for up to NEWSLETTER_GIVE_UP_AFTER.
NEWSLETTER_MAX_ATTEMPTS = env_int("NEWSLETTER_MAX_ATTEMPTS", 5, minimum=1)
# Seconds after the send started (or "Retry failed" was pressed) after which rows
# still waiting for a rate limit fail with the reason. 24 hours by default.
NEWSLETTER_GIVE_UP_AFTER = env_int("NEWSLETTER_GIVE_UP_AFTER", 86400, minimum=60)
# First retry delay after a transient error; each next one doubles, capped below
# CELERY_VISIBILITY_TIMEOUT (newsletter.sending.retry).
NEWSLETTER_RETRY_BASE_SECONDS = env_int("NEWSLETTER_RETRY_BASE_SECONDS", 30, minimum=1)
# Messages per second across all workers, 0 for no limit.
NEWSLETTER_SEND_RATE = env_float("NEWSLETTER_SEND_RATE", 0.0, minimum=0.0)
# "auto": one API call per variant and batch where the anymail ESP supports it
# (Mailgun, SendGrid, SparkPost, Mailjet; see newsletter/sending/ways_out/esp.py); "off": one
# message per reader everywhere.
NEWSLETTER_ESP_BATCH = env_choice("NEWSLETTER_ESP_BATCH", "auto", choices=("auto", "off"))
# Recipients per ESP batch call, 0 for the ESP's own limit (Mailgun 1,000, Mailjet 50).
NEWSLETTER_ESP_BATCH_LIMIT = env_int("NEWSLETTER_ESP_BATCH_LIMIT", 0, minimum=0)
NEWSLETTER_PRIVACY_URL = env_str("NEWSLETTER_PRIVACY_URL", f"{SITE_URL}/newsletter/privacy/")
NEWSLETTER_CONFIRM_MAX_AGE_DAYS = env_int("NEWSLETTER_CONFIRM_MAX_AGE_DAYS", 7, minimum=1)
# Signups never confirmed are deleted after this many days (data minimisation, GDPR art. 5).
NEWSLETTER_PENDING_PURGE_DAYS = env_int("NEWSLETTER_PENDING_PURGE_DAYS", 30, minimum=1)
# List hygiene (newsletter/services/list_hygiene.py). A hard bounce or a complaint takes the
# reader off the list at once; soft bounces do after this many issues in a row (0: never).
NEWSLETTER_SOFT_BOUNCE_LIMIT = env_int("NEWSLETTER_SOFT_BOUNCE_LIMIT", 3, minimum=0)
# Also keep the address (as a keyed hash) on the suppression list, so that no import or
# signup brings it back.
NEWSLETTER_SUPPRESS_BOUNCED = env_bool("NEWSLETTER_SUPPRESS_BOUNCED", True)
NEWSLETTER_SUPPRESS_COMPLAINED = env_bool("NEWSLETTER_SUPPRESS_COMPLAINED", True)
# Sunset: readers with no open or click in their last N issues are asked whether to keep
# receiving; no answer within the grace period pauses them. 0 turns it off (the default:
# opens are only known when the ESP tracks them).
NEWSLETTER_SUNSET_AFTER_ISSUES = env_int("NEWSLETTER_SUNSET_AFTER_ISSUES", 0, minimum=0)
NEWSLETTER_SUNSET_GRACE_DAYS = env_int("NEWSLETTER_SUNSET_GRACE_DAYS", 14, minimum=1)

# --- Abuse resistance of the signup paths (newsletter/abuse.py) ---------------------------
# Counters live in the cache (Redis in production), shared by every web process.
# At most one signup email (confirmation or "you are already subscribed") per address
# in this many hours, however often the address is submitted.
NEWSLETTER_EMAIL_INTERVAL_HOURS = env_int("NEWSLETTER_EMAIL_INTERVAL_HOURS", 24, minimum=1)
# Submissions per client IP (an IPv6 /64) per hour: past the soft limit the form asks
# for the identifying code; past the hard limit submissions are dropped silently.
NEWSLETTER_IP_SOFT_LIMIT = env_int("NEWSLETTER_IP_SOFT_LIMIT", 3, minimum=0)
NEWSLETTER_IP_HARD_LIMIT = env_int("NEWSLETTER_IP_HARD_LIMIT", 30, minimum=1)
# Submissions naming one address per day, from anywhere; more are dropped silently.
NEWSLETTER_ADDRESS_LIMIT = env_int("NEWSLETTER_ADDRESS_LIMIT", 5, minimum=1)
# A form sent back sooner than this after it was shown was filled by a bot.
NEWSLETTER_MIN_FILL_SECONDS = env_int("NEWSLETTER_MIN_FILL_SECONDS", 2, minimum=0)
# Show the identifying code on every signup, not only past the soft limit.
NEWSLETTER_CAPTCHA_ALWAYS = env_bool("NEWSLETTER_CAPTCHA_ALWAYS", False)
# Reverse proxies in front of the app that append to X-Forwarded-For (0: none, use
# REMOTE_ADDR). Per-IP limits need the real client address, never one a client typed.
NEWSLETTER_PROXY_COUNT = env_int("NEWSLETTER_PROXY_COUNT", 0, minimum=0)
if NEWSLETTER_IP_SOFT_LIMIT >= NEWSLETTER_IP_HARD_LIMIT:
    raise ImproperlyConfigured(
        f"NEWSLETTER_IP_SOFT_LIMIT ({NEWSLETTER_IP_SOFT_LIMIT}) must be below "
        f"NEWSLETTER_IP_HARD_LIMIT ({NEWSLETTER_IP_HARD_LIMIT}): the identifying code comes first."
    )

# Reader questions and contributions (inbox/): the largest attachment a contribution may
# carry. Files are kept under MEDIA_ROOT, which no URL serves; editors download them in admin.
INBOX_ATTACHMENT_MAX_MB = env_int("INBOX_ATTACHMENT_MAX_MB", 10, minimum=1)
# The largest CSV admin may import (the import runs as a background job).
NEWSLETTER_IMPORT_MAX_MB = env_int("NEWSLETTER_IMPORT_MAX_MB", 50, minimum=1)
# What a .docx may unpack to (inbox/files.py also caps its compression ratio and entries).
INBOX_DOCX_MAX_UNPACKED_MB = env_int("INBOX_DOCX_MAX_UNPACKED_MB", 50, minimum=1)

# django-simple-captcha: the portal's "Identifying code", four letters, five minutes.
CAPTCHA_LENGTH = 4
CAPTCHA_TIMEOUT = 5
CAPTCHA_FONT_SIZE = 30
CAPTCHA_LETTER_ROTATION = (-25, 25)
CAPTCHA_FOREGROUND_COLOR = "#7a1616"
# The audio version of the code is spoken by Debian's flite (installed by `make venv`
# and .ci/run); without it the audio link is not shown.
CAPTCHA_FLITE_PATH = env_str("CAPTCHA_FLITE_PATH", shutil.which("flite") or "")

# django-axes: staff logins. Locked out per username and, separately, per IP after
# AXES_FAILURE_LIMIT failures in a row, for AXES_COOLOFF_MINUTES; an admin unlocks
# under Axes > Access attempts (delete the rows) or with `manage.py axes_reset`.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_RESET_ON_SUCCESS = True
# The client's IP as the reader forms count it, through NEWSLETTER_PROXY_COUNT proxies.
AXES_CLIENT_IP_CALLABLE = "newsletter.abuse.client_ip"

if CELERY_VISIBILITY_TIMEOUT <= NEWSLETTER_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}) must be longer than "
        f"NEWSLETTER_LEASE_SECONDS ({NEWSLETTER_LEASE_SECONDS}), or Redis re-delivers batches still in flight."
    )

# --- Internationalisation ---------------------------------------------------------------
# The languages the newsroom publishes in; the first is the default (unprefixed URLs,
# articles and readers with no language of their own). A new language is one more
# code here and a catalogue in locale/<code>/LC_MESSAGES/django.po (README, "Languages").
LANGUAGES = env_languages("NEWSLETTER_LANGUAGES", ["en", "zh-hans"])
LANGUAGE_CODE = LANGUAGES[0][0]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The language switcher's choice outlives the session (a year, Django's default).
LANGUAGE_COOKIE_NAME = "brw_language"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# --- Security ---------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is probed over plain http by load balancers inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # One line per task is the worker's job; in process (embedded) it would drown the output.
    "loggers": {
        "celery.app.trace": {"level": "INFO" if REDIS_URL else "WARNING"},
        "newsletter.tasks": {"level": "INFO" if REDIS_URL else "WARNING"},
    },
}
