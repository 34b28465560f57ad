"""Backstop settings, read from the environment (12-factor).

Every variable is listed in README.md's configuration table. With DJANGO_DEBUG off (the default),
anything production needs must be set explicitly: the process refuses to start otherwise.
"""

import base64
import binascii
import os
import uuid
from datetime import timedelta
from email.utils import getaddresses
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
import stripe
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config import failpoints, logs
from config.env import env_bool, env_duration, env_durations, env_int, env_list, env_str, env_url, load_env_file

# BACKSTOP_ENV_FILE first, so every reader below sees it: manage.py (cron, the task worker) and
# WSGI all come through here.
load_env_file()

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime files of the embedded setup (SQLite database, file email); never committed.
VAR_DIR = Path(env_str("BACKSTOP_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
failpoints.refuse_unless_allowed()  # named crash points: only in DEBUG or when explicitly allowed

SECRET_KEY = env_str("SECRET_KEY", required=not DEBUG) or "dev-only-insecure-key-for-DEBUG-mode"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Absolute base for links we send by email (status page, sign-in link).
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000" if DEBUG else None, required=not DEBUG)
# The product's name as customers and the team read it: every page, email, receipt, alert and the
# console's header. How emails and support's reply drafts sign off when nobody signs by name.
SITE_NAME = env_str("SITE_NAME", "Backstop")
SUPPORT_SIGNATURE = env_str("SUPPORT_SIGNATURE", f"The {SITE_NAME} team")

INSTALLED_APPS = [
    # The Django admin with the support console's front page (search and the queue).
    "support.admin_apps.SupportAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "djstripe",
    "django_q",
    "django_guid",
    "anymail",
    "csp",
    "django_ratelimit",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework_api_key",
    "outbox",
    "accounts",
    "billing",
    "support",
    "ops",
]

MIDDLEWARE = [
    # First, so every line logged while answering carries the request's id (config/logs.py).
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "billing.middleware.stripe_someone_waiting",
    "config.csp.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
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
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.site",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'backstop.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL", _default_db))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL we understand: {exc}") from None

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Webhooks, the worker and the web server write at the same time. WAL lets readers run
    # beside one writer; IMMEDIATE takes the write lock at BEGIN so two writers queue on the
    # busy timeout instead of failing with "database is locked" halfway through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a cheaper health check (config/postgresql/base.py).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Behind PgBouncer in transaction mode a server-side cursor (QuerySet.iterator(), used by the
    # reminders) would outlive the transaction that made it on a connection someone else now has:
    # set DB_TRANSACTION_POOLING=true there (docs/scaling.md).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DB_TRANSACTION_POOLING", False)
    # Parameters travel apart from the SQL (no quoting in Python), and a statement a connection
    # runs a fifth time is prepared: PostgreSQL parses and plans it once, not on every request
    # (decision 0033). Not behind PgBouncer's transaction pooling, whose server connections change
    # under a prepared statement.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=None if env_bool("DB_TRANSACTION_POOLING", False) else 5,
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out address or account is refused before its password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # One-click sign-in links in our emails (django-sesame: signed, expiring, invalidated when the
    # password changes).
    "sesame.backends.ModelBackend",
]
SESAME_MAX_AGE = 14 * 24 * 3600

# --- Staff sign-in: throttled and locked (django-axes), optional second factor (django-otp) --------
# After AXES_FAILURE_LIMIT wrong passwords for one account from one address, that pair is locked
# for AXES_COOLOFF_TIME; a correct password resets the count. Per pair, so nobody can lock a
# colleague out from elsewhere by typing their email wrongly on purpose.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Django's login forms pass the email as `username` (axes would look for USERNAME_FIELD, "email").
AXES_USERNAME_FORM_FIELD = "username"
# Every spelling of one address (capitals, spaces) is one counter, as it is one account.
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# A time-based one-time code (an authenticator app) on top of the password for the console; on
# unless DEBUG. `support_staff --totp` gives a person their device.
STAFF_TWO_FACTOR = env_bool("STAFF_TWO_FACTOR", not DEBUG)
OTP_TOTP_ISSUER = f"{SITE_NAME} support"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "billing:home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The cache is shared by the web server and the worker (rate limits, django-q2 statistics),
# so it lives in the database rather than in one process's memory. config/cache.py is Django's
# DatabaseCache with an atomic increment that keeps the key's expiry, which rate limits need, and
# that never culls a live key (rate-limit counters and the task cluster's heartbeat must survive a
# flood of other keys), and writes each key in one statement. Each process purges expired rows at
# most once every PURGE_EVERY_SECONDS, on a write.
CACHES = {
    "default": {
        "BACKEND": "config.cache.DatabaseCache",
        "LOCATION": "backstop_cache",
        "OPTIONS": {"PURGE_EVERY_SECONDS": 60},
    }
}

# --- Rate limits (django-ratelimit) -----------------------------------------------------------
# The limits themselves are named constants beside the views they guard (billing/views.py,
# accounts/views.py). Counted per client address (config/client_ip.py) in the shared cache above;
# if counting fails the request is treated as over the limit (RATELIMIT_FAIL_OPEN stays False).
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = "config.client_ip.client_ip"
# One IPv6 client usually holds a whole /64 (SLAAC, privacy addresses): count it as one client, or
# it could take a fresh address for every request. IPv4 clients count per address.
RATELIMIT_IPV6_MASK = 64
RATELIMIT_IPV4_MASK = 32
# How many reverse proxies of ours stand in front of the app, each appending the address it saw to
# X-Forwarded-For (1 behind the documented nginx). 0 trusts no header: the client is REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more (1 behind the documented nginx).")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The zone the support console shows every time in, and reads a typed date in (support/timefmt.py):
# the team's own, e.g. "Europe/Berlin". The site, its emails and its schedules stay in UTC.
SUPPORT_TIME_ZONE = env_str("SUPPORT_TIME_ZONE", "UTC")
try:
    ZoneInfo(SUPPORT_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"SUPPORT_TIME_ZONE must be an IANA time zone name such as 'UTC' or 'Europe/Berlin', not "
        f"{SUPPORT_TIME_ZONE!r} (if the name is right, this machine lacks the time zone database: "
        "install the system's tzdata package, or `pip install tzdata`)."
    ) from None

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded files: only what customers attach to support mail (support.InboundAttachment), never
# served by URL: staff download them through the console. STORAGES["default"] may be swapped for
# an object store; keep it private.
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Sessions in the database as Django keeps them, each write one statement (config/sessions.py).
SESSION_ENGINE = "config.sessions"

# --- HTTPS ----------------------------------------------------------------------------------
# One switch for everything that assumes TLS; only the local demo turns it off.
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Stripe (dj-stripe mirrors Stripe objects locally) ---------------------------------------
STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE", False)
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", required=True)
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY", required=True)
_key_mode = "live" if STRIPE_LIVE_MODE else "test"
if not STRIPE_SECRET_KEY.startswith((f"sk_{_key_mode}_", f"rk_{_key_mode}_")):
    raise ImproperlyConfigured(
        f"STRIPE_SECRET_KEY must be a {_key_mode}-mode secret key (sk_{_key_mode}_...) "
        f"because STRIPE_LIVE_MODE is {STRIPE_LIVE_MODE}."
    )
if not STRIPE_PUBLISHABLE_KEY.startswith(f"pk_{_key_mode}_"):
    raise ImproperlyConfigured(f"STRIPE_PUBLISHABLE_KEY must be a {_key_mode}-mode key (pk_{_key_mode}_...).")
if STRIPE_LIVE_MODE:
    STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY
    STRIPE_LIVE_PUBLIC_KEY = STRIPE_PUBLISHABLE_KEY
else:
    STRIPE_TEST_SECRET_KEY = STRIPE_SECRET_KEY
    STRIPE_TEST_PUBLIC_KEY = STRIPE_PUBLISHABLE_KEY
# Only set when pointing at the local emulator: dj-stripe reads STRIPE_API_HOST's mere presence.
STRIPE_API_BASE = env_url("STRIPE_API_BASE")
# Seconds a Stripe call made while a person waits on a page may take (billing/stripe_api.py).
STRIPE_INTERACTIVE_TIMEOUT = env_int("STRIPE_INTERACTIVE_TIMEOUT", 5)
# Stripe calls a second that background work (the sweep, the task worker, commands) may make, per
# process: 4 task workers x 5 = 20, a fifth of live mode's 100/s and under any endpoint's 25/s, the
# rest left to checkout; after a 429 background calls pause too (billing/stripe_pacing.py).
STRIPE_BACKGROUND_RATE = env_int("STRIPE_BACKGROUND_RATE", 10)
if STRIPE_BACKGROUND_RATE < 1:
    raise ImproperlyConfigured("STRIPE_BACKGROUND_RATE must be at least 1 (Stripe calls a second).")
if STRIPE_API_BASE:
    STRIPE_API_HOST = STRIPE_API_BASE
STRIPE_JS_URL = env_url("STRIPE_JS_URL", "https://js.stripe.com/v3")
# The Stripe API version every request asks for (billing/stripe_api.py's client, dj-stripe) and the
# webhook endpoint is created with (`manage.py stripe_webhook_endpoint --create`), so neither
# follows the account's default version when someone changes it in the Dashboard. Default: the
# version the installed stripe SDK is built for; a system check (billing/checks.py) warns when they differ.
STRIPE_API_VERSION = env_str("STRIPE_API_VERSION", stripe.api_version)
# Backstop emails its own confirmation and refund emails. Stripe also emails a receipt for every
# payment and refund when a PaymentIntent carries `receipt_email` (live mode): two receipts each
# time. Off unless someone wants Stripe's receipts too.
STRIPE_RECEIPT_EMAILS = env_bool("STRIPE_RECEIPT_EMAILS", False)
# Signing secret of the Stripe webhook endpoint; `manage.py stripe_webhook_endpoint` stores it
# on dj-stripe's WebhookEndpoint row, which is where dj-stripe verifies signatures from.
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# The endpoint's path, /stripe/webhook/<uuid>/: each installation makes its own, so no published
# default ever reaches a real endpoint. Normalised because the URL only matches lowercase UUIDs.
STRIPE_WEBHOOK_UUID = env_str("STRIPE_WEBHOOK_UUID")
_MAKE_A_UUID = 'make one with: python -c "import uuid; print(uuid.uuid4())"'
if STRIPE_WEBHOOK_UUID:
    try:
        STRIPE_WEBHOOK_UUID = str(uuid.UUID(STRIPE_WEBHOOK_UUID))
    except ValueError:
        raise ImproperlyConfigured(
            f"STRIPE_WEBHOOK_UUID must be a UUID, not {STRIPE_WEBHOOK_UUID!r}; {_MAKE_A_UUID}"
        ) from None
elif STRIPE_WEBHOOK_SECRET and not DEBUG:
    raise ImproperlyConfigured(f"STRIPE_WEBHOOK_UUID must be set with STRIPE_WEBHOOK_SECRET; {_MAKE_A_UUID}")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
# dj-stripe's own three migrations, as one (docs/decisions/0035-dj-stripe-migrations-as-one.md): its
# 0002 drops 514 fields one at a time, and Django re-renders every related model for each, a minute
# of CPU on every fresh database. The one migration replaces the three, so a database that ran them
# is already up to date.
MIGRATION_MODULES = {"djstripe": "config.djstripe_migrations"}
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
SILENCED_SYSTEM_CHECKS = ["djstripe.W002"] if STRIPE_API_BASE else []
# django-ratelimit only vouches for memcached and Redis. Its real objections to a database cache
# (not atomic, and the generic incr() resets the expiry) are answered by config/cache.py, which
# locks the row and keeps the expiry; what is left of W001 is "not on our list".
SILENCED_SYSTEM_CHECKS += ["django_ratelimit.W001"]

# --- Content-Security-Policy (django-csp, through config/csp.py) ----------------------------------
# Scripts: our own files, Stripe.js, and inline <script> blocks only with this response's nonce
# (templates write nonce="{{ CSP_NONCE }}"), so injected markup cannot run script. Styles allow
# 'unsafe-inline': the templates use <style> blocks and style="" attributes, and Stripe.js (and
# the emulator's stand-in) inject styles; a style cannot run code on its own, so we accept that
# trade-off rather than hash every attribute. Stripe's hosts are those of its CSP guide;
# config/csp.py adds the origin of STRIPE_JS_URL / STRIPE_API_BASE when they point elsewhere (the
# emulator in the demo and the tests).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE, "https://js.stripe.com", "https://*.js.stripe.com"],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https://*.stripe.com"],  # data: for base.html's empty favicon
        "connect-src": [SELF, "https://api.stripe.com"],
        "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Email ----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else None,
    required=not DEBUG,
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"{SITE_NAME} <hello@backstop.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Shown to customers as the way to reach a human.
SUPPORT_EMAIL = env_str("SUPPORT_EMAIL", "support@backstop.localhost")
# Who sold the plan, printed at the top of every receipt. The address is one or more lines
# separated by ";" (or new lines).
# With SITE_NAME set and no SELLER_NAME, the receipt names the site rather than the demo's company.
SELLER_NAME = env_str("SELLER_NAME", "Backstop Demo Ltd" if SITE_NAME == "Backstop" else SITE_NAME)
SELLER_ADDRESS = [line.strip() for line in env_str(
    "SELLER_ADDRESS", "1 Example Street; Springfield, IL 62701; United States").replace("\n", ";").split(";")
    if line.strip()]
# Internal: who is told when money is held without service.
SUPPORT_TEAM_EMAILS = env_list("SUPPORT_TEAM_EMAILS", [SUPPORT_EMAIL])
# How soon a customer who writes to support should have a first reply: the console shows each
# email's wait against it, and puts the ones past it first in its queue.
SUPPORT_FIRST_RESPONSE = env_duration("SUPPORT_FIRST_RESPONSE", "4h")
# Optional Slack-compatible incoming webhook (POST {"text": ...}) for the same alerts.
ALERT_WEBHOOK_URL = env_url("ALERT_WEBHOOK_URL")

# --- Safety nets ----------------------------------------------------------------------------
# Money held without service is refunded automatically this long after we first saw it, unless
# the order is finished first (docs/decisions/0004-held-money-refunds-by-default.md).
HELD_MONEY_DEADLINE = env_duration("HELD_MONEY_DEADLINE", "24h")
# The sweep leaves a charge this long to the fast paths (the customer's return, the webhook)
# before it settles the order itself (docs/decisions/0006-sweep-interval-and-grace.md).
RECONCILE_GRACE = env_duration("RECONCILE_GRACE", "20s")
# Retention (docs/retention.md): how long operational records are kept before the daily prune.
# Orders, refunds, their events and what was sent are bookkeeping and are never pruned.
RETAIN_SWEEP_RUNS = env_duration("RETAIN_SWEEP_RUNS", "90d")
RETAIN_WEBHOOK_LOG = env_duration("RETAIN_WEBHOOK_LOG", "90d")
RETAIN_EMAIL_BODIES = env_duration("RETAIN_EMAIL_BODIES", "730d")
RETAIN_SUPPORT_MAIL = env_duration("RETAIN_SUPPORT_MAIL", "730d")
# A payment attempt left unfinished this long (the bank's check abandoned, a card form never
# submitted) is canceled in Stripe by the sweep, so it can never be charged later and the
# customer may start again (docs/reconcile.md#abandoned-payment-attempts).
ABANDONED_PAYMENT_AFTER = env_duration("ABANDONED_PAYMENT_AFTER", "1h")
# How long before a plan ends its holder is reminded, once per entry; on the day it ends they get
# one more email (billing/renewals.py, docs/decisions/0010-no-automatic-renewal.md).
RENEWAL_REMINDERS = env_durations("RENEWAL_REMINDERS", "30d,7d")
# The email provider whose delivery reports (and inbound mail) we accept: only its webhook URLs
# are routed (config/urls.py), and only with the shared secret. Read from the anymail backend.
_esp = EMAIL_BACKEND.split(".")[2] if EMAIL_BACKEND.startswith("anymail.backends.") else ""
ANYMAIL_ESP = env_str("ANYMAIL_ESP", _esp if _esp != "test" else "")
ANYMAIL = {
    # Basic-auth "user:pass" the ESP's webhooks must present; without it they are not routed.
    "WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET", required=not DEBUG and bool(ANYMAIL_ESP)),
}
# The provider's own webhook settings, by anymail's names with its ANYMAIL_ prefix: e.g. Mailgun's
# signing key as ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY. Only the configured provider's are read; one
# its webhook needs and lacks stops start-up (config/esp_webhooks.py builds each view at boot).
_esp_prefix = f"ANYMAIL_{ANYMAIL_ESP.upper()}_" if ANYMAIL_ESP else None
ANYMAIL.update({name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items()
                if _esp_prefix and name.startswith(_esp_prefix) and value})
# What a customer attaches to one support email is kept up to this many megabytes in all (the
# default storage, MEDIA_ROOT); past it an attachment is listed on the case as not kept. The inbound
# webhook takes requests up to twice this (base64 in the provider's JSON, the email's own text), so
# an email over the cap still arrives and says what was left out; nginx's inbound location must
# allow as much (docs/deploy/nginx.conf, decision 0027).
INBOUND_ATTACHMENTS_MAX_MB = env_int("INBOUND_ATTACHMENTS_MAX_MB", 25)
if INBOUND_ATTACHMENTS_MAX_MB < 0:
    raise ImproperlyConfigured("INBOUND_ATTACHMENTS_MAX_MB must be 0 (keep none) or more.")
if EMAIL_BACKEND.startswith("anymail.backends.postmark"):
    ANYMAIL["POSTMARK_SERVER_TOKEN"] = env_str("POSTMARK_SERVER_TOKEN", required=True)

# --- Background tasks (django-q2, ORM broker) ------------------------------------------------
Q_CLUSTER = {
    "name": "backstop",
    "orm": "default",
    # Four, not one per core: the sweep may hold one for up to half a minute under load, and sending
    # an email waits on the ESP, not the CPU (issue 10: with two, confirmation emails queued behind
    # the sweep at 50 customers, p95 9.8 s).
    "workers": env_int("Q_WORKERS", 4),
    # A task that runs longer than `timeout` is killed; one not acknowledged within `retry` is
    # delivered again, so `timeout` stays below `retry` or a slow task would run twice at once.
    "timeout": 60,
    "retry": 90,
    "max_attempts": 5,
    "catch_up": False,
    # Successful tasks are not stored: their outcome is already in our own rows (outbox, order
    # events, sweep runs), and django-q2's pruning of stored successes locked and sorted up to
    # 1000 rows after every task (docs/decisions/0008-task-results-not-stored.md). Failures are.
    "save_limit": -1,
    # How long the cluster waits before asking again after finding the queue empty: a confirmation
    # queued in that moment waits as long (at 1 s, up to a second of every email's delay; at 100
    # customers the queue empties between bursts). Five empty queries a second when idle.
    "poll": 0.2,
    # django-q2's ORM broker plus a heartbeat /readyz reads: when a cluster was last alive
    # (config/heartbeat.py), which its own three-second status cannot say.
    "broker_class": "config.heartbeat.HeartbeatORM",
}

# --- Health and metrics (docs/operations.md) ----------------------------------------------------
# /readyz answers 503 when no task worker has been alive for this long (a restart takes seconds)...
TASK_WORKER_STALE_AFTER = env_duration("TASK_WORKER_STALE_AFTER", "90s")
# ... or when the oldest transactional email still unsent was owed longer ago than this.
OUTBOX_ALERT_AFTER = env_duration("OUTBOX_ALERT_AFTER", "5m")
# Bearer token for /metrics (Prometheus) and for /readyz's details. Unset: /metrics does not exist
# and /readyz tells everyone only its status.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        # Per API key (accounts/api.py): a product asking about its users as they sign in.
        "access_api": env_str("ACCESS_API_THROTTLE_RATE", "600/minute"),
    },
}

# --- The product's door (docs/integrating.md) --------------------------------------------------
# Where access events are POSTed as signed Standard Webhooks (accounts/webhooks.py). Empty: nothing
# is recorded or sent, and the in-process signals are the only news of a change.
ACCESS_WEBHOOK_URL = env_str("ACCESS_WEBHOOK_URL", "")
ACCESS_WEBHOOK_SECRET = env_str("ACCESS_WEBHOOK_SECRET", "")
if ACCESS_WEBHOOK_URL and not ACCESS_WEBHOOK_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"ACCESS_WEBHOOK_URL must be an http(s) URL, not {ACCESS_WEBHOOK_URL!r}.")
if ACCESS_WEBHOOK_URL and not ACCESS_WEBHOOK_SECRET:
    raise ImproperlyConfigured("ACCESS_WEBHOOK_SECRET must be set with ACCESS_WEBHOOK_URL (whsec_ and base64, "
                               "e.g. from: python -c \"import base64,os; print('whsec_' + "
                               "base64.b64encode(os.urandom(32)).decode())\").")
if ACCESS_WEBHOOK_SECRET:
    try:
        if not ACCESS_WEBHOOK_SECRET.startswith("whsec_"):
            raise ValueError
        if len(base64.b64decode(ACCESS_WEBHOOK_SECRET.removeprefix("whsec_"), validate=True)) < 24:
            raise ValueError
    except (ValueError, binascii.Error):
        raise ImproperlyConfigured(
            "ACCESS_WEBHOOK_SECRET must be whsec_ followed by at least 24 random bytes in base64 (the "
            "Standard Webhooks format the product verifies with)."
        ) from None

# --- Logs, errors (docs/operations.md) ----------------------------------------------------------
# "text": one readable line per record; "json": one JSON object per line with the request's (or
# task's, or run's) id and the order's reference where there is one (config/logs.py).
LOG_FORMAT = env_str("LOG_FORMAT", "text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
# Request ids (django-guid): a valid X-Request-ID from our proxy is kept, else one is made; the
# response carries it back in the same header.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": False,
    "UUID_LENGTH": 32,
    "INTEGRATIONS": [logs.TaskIds()],
}
# Who is emailed an unhandled error (a 500) with its traceback: "Ana <ana@example.com>, ops@example.com".
ADMINS = [(name or email, email) for name, email in getaddresses([env_str("ADMINS", "")]) if email]
# Error reports to Sentry (or any Sentry-compatible service) from web, worker and commands; off when unset.
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    import sentry_sdk  # only when configured: the SDK hooks into Django as it starts

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        send_default_pii=False,  # no cookies, users' addresses or IPs; the request id is enough
        traces_sample_rate=0.0,
        before_send=logs.sentry_before_send,
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logs.json_formatter"},
    },
    "filters": {
        # Status tokens and client secrets travel in URLs; Django's "Not Found: /orders/<token>/"
        # warnings would write them down (config/log_redaction.py).
        "redact_secrets": {"()": "config.log_redaction.RedactingFilter"},
        "request_context": {"()": "config.logs.RequestContext"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "line",
                    "filters": ["redact_secrets", "request_context"]},
        # Unhandled errors (django.request's 500s) to ADMINS, as Django does by default; nobody when unset.
        "mail_admins": {"class": "config.logs.RedactingAdminEmailHandler", "level": "ERROR",
                        "filters": ["require_debug_false"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Replaces Django's default for "django" (console only in DEBUG, mail_admins); the root's
        # console writes its lines in every mode.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
        # Two INFO lines per Stripe call, and axes's start-up banner: a clean `reconcile -v 0` from
        # cron must print nothing (cron mails whatever it prints).
        "stripe": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},
        # A line per request saying it made an id.
        "django_guid": {"level": "WARNING"},
    },
}
