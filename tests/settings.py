"""Test settings: the production settings module, fed a test environment.

Going through config.settings (not a separate hand-written module) means the tests exercise
the same environment parsing that production boots with.
"""

import os

from django.core.exceptions import ImproperlyConfigured

if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured(
        "Tests run on PostgreSQL: use `make test` (it starts a throwaway server), or set "
        "DATABASE_URL=postgres://... yourself."
    )

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SITE_URL", "http://testserver")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("STRIPE_SECRET_KEY", "sk_test_51BackstopEmulatorLocalKey0000000000")
os.environ.setdefault("STRIPE_PUBLISHABLE_KEY", "pk_test_51BackstopEmulatorLocalKey0000000000")
# Points dj-stripe at the emulator; the emulator fixture replaces the port per session.
os.environ.setdefault("STRIPE_API_BASE", "http://127.0.0.1:12111")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_backstop_secret_0123456789")
# Tests are not an installation: a fixed path keeps failures reproducible. Never used outside tests.
os.environ.setdefault("STRIPE_WEBHOOK_UUID", "7e57e57e-0000-4000-8000-000000000001")
os.environ.setdefault("EMAIL_BACKEND", "anymail.backends.test.EmailBackend")
# Delivery reports and inbound mail arrive as Postmark would send them.
os.environ.setdefault("ANYMAIL_ESP", "postmark")
os.environ.setdefault("ANYMAIL_WEBHOOK_SECRET", "esp:hook-secret")
# One directory per pytest-xdist worker (gw0, gw1, ...): workers never share files, as they never
# share a database (pytest-django names each worker's test database after it).
os.environ.setdefault("BACKSTOP_VAR_DIR", "/tmp/backstop-test-var" + os.environ.get("PYTEST_XDIST_WORKER", ""))
# The emulator has no rate limits unless a test asks, so background Stripe calls are not paced
# either (billing/stripe_pacing.py); the tests of pacing set their own budget.
os.environ.setdefault("STRIPE_BACKGROUND_RATE", "1000")
# Production asks staff for an authenticator code; the tests of that turn it on themselves.
os.environ.setdefault("STAFF_TWO_FACTOR", "false")

from config.settings import *  # noqa: F403

# django-axes needs the request in authenticate(), which the test client's login() does not pass;
# the tests of the lockout turn it back on (tests/support/test_staff_signin.py).
AXES_ENABLED = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in prod
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405  tasks run inline unless a test starts a worker
LOGGING["loggers"]["stripe"] = {"level": "WARNING"}  # noqa: F405  one line per API call is noise here
LOGGING["loggers"]["django-q"] = {"level": "WARNING"}  # noqa: F405

# Static files collected as production collects them: without the brotli copies that a test tool's
# dependency would add (tests/static_files.py).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "tests.static_files.CompressedAsInProduction"}}  # noqa: F405

# WhiteNoise reads every static file once per process, not once per test Client (tests/static_files.py).
MIDDLEWARE = [
    "tests.static_files.WhiteNoiseMiddlewareTableOncePerProcess"
    if name == "whitenoise.middleware.WhiteNoiseMiddleware" else name for name in MIDDLEWARE  # noqa: F405
]

# Django's PostgreSQL backend, but emptying the tables after a transactional test with DELETE instead
# of TRUNCATE: a second less per test (tests/postgresql/base.py).
DATABASES["default"]["ENGINE"] = "tests.postgresql"  # noqa: F405

# `make test` migrates one database from scratch and names it here (scripts/test.sh); each pytest
# worker's test database is then a copy of it (CREATE DATABASE ... TEMPLATE), made in a second,
# instead of each worker running every migration again. Unset, each worker migrates its own.
if os.environ.get("BACKSTOP_TEST_DB_TEMPLATE"):
    DATABASES["default"]["TEST"] = {"TEMPLATE": os.environ["BACKSTOP_TEST_DB_TEMPLATE"]}  # noqa: F405
