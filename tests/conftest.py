"""Shared fixtures: the real PostgreSQL (via pytest-django), the Stripe emulator, a live server.

Nothing of ours is mocked. Stripe is played by the local emulator (a subprocess speaking
Stripe's wire protocol to the official SDK), email by anymail's test backend (what the ESP
would have been asked), time by the emulator's clock where Stripe's time matters.
"""

import os
import time
from pathlib import Path

import pytest
import stripe
from django.urls import reverse

from stripe_emulator.testing import EmulatorProcess
from tests.browser import CHROMIUM, CHROMIUM_ARGS

# pytest-playwright drives the browser from an event loop in the test thread; Django's
# async-safety guard would otherwise refuse the ORM calls the same tests make.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# The files that take longest on their own, longest first (measured: docs/decisions/0026), handed to
# pytest-xdist's workers before all others (with --dist loadfile --no-loadscope-reorder, whole files
# go out in this order): started last, one of them would leave the other workers idle at the end.
# First those that need no PostgreSQL, the demo's (its stack runs on SQLite) leading: they run while
# scripts/test.sh still migrates the template database the others wait for. Within a file the order
# stays as written.
LONGEST_FILES_FIRST = (
    "tests/test_demo.py",
    "tests/billing/test_settle_decision.py",
    "tests/config/test_settings_from_env.py",
    "tests/test_app_dependencies.py",
    "tests/emulator/test_stripejs_browser.py",
    "tests/config/test_access_webhook_settings.py",
    # From here on, each needs the test database.
    "tests/e2e/test_flood_from_one_address.py",
    "tests/config/test_counters_survive.py",
    "tests/config/test_logs.py",
    "tests/e2e/test_console_in_browser.py",
    "tests/interleavings/test_money_path.py",
    "tests/billing/test_mirror_sync.py",
    "tests/e2e/test_when_things_go_wrong.py",
    "tests/e2e/test_checkout_in_browser.py",
    "tests/support/test_sweep_watch.py",
    "tests/e2e/test_money_words_in_browser.py",
    "tests/config/test_env_file.py",
)


def pytest_collection_modifyitems(items):
    rank = {path: position for position, path in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Under `make test`, the databases are copies of one that scripts/test.sh migrates while pytest
    starts and collects: wait here, before the first database is copied, for the file it writes when
    the migrations are done. Tests that need no database (the demo's, on its own SQLite) go on."""
    ready = os.environ.get("BACKSTOP_TEST_DB_TEMPLATE_READY")
    if not ready:
        return
    deadline = time.monotonic() + 900
    while not Path(ready).exists():
        if time.monotonic() > deadline:
            pytest.exit(f"the template database was not migrated within 15 minutes ({ready} never appeared)")
        time.sleep(0.2)
    if (answer := Path(ready).read_text().strip()) != "ok":
        pytest.exit(f"the template database's migrations failed ({answer}): nothing to copy")


@pytest.fixture(autouse=True)
def anymail_test_backend(settings):
    # pytest-django swaps in locmem for every test; Backstop sends through anymail, whose test
    # backend records what the ESP would have been asked (tags, metadata, message id).
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"


@pytest.fixture
def arm(monkeypatch):
    """arm("name=raise") arms this process's named crash points (config/failpoints.py), as
    BACKSTOP_FAILPOINTS would at start-up; arm("") disarms them, as a restarted process would be."""
    from config import failpoints

    monkeypatch.setenv(failpoints.ALLOW_ENV, "1")
    monkeypatch.delenv(failpoints.LOG_ENV, raising=False)
    failpoints.reset()

    def arm(spec):
        monkeypatch.setenv(failpoints.ENV, spec)
        failpoints.reset()

    yield arm
    monkeypatch.delenv(failpoints.ENV, raising=False)
    failpoints.reset()


@pytest.fixture(scope="session")
def stripe_emulator_process():
    with EmulatorProcess(retry_schedule=(0.2, 0.5, 1.0), webhook_timeout=5.0) as process:
        yield process


@pytest.fixture
def stripe_emulator(stripe_emulator_process, settings):
    """A clean emulator that Backstop (settings) and dj-stripe (module-level stripe) point at."""
    control = stripe_emulator_process.control
    control.reset()
    settings.STRIPE_API_BASE = stripe_emulator_process.api_base
    settings.STRIPE_SECRET_KEY = stripe_emulator_process.secret_key
    with stripe_emulator_process.stripe_configured(max_network_retries=0):
        yield stripe_emulator_process
    control.reset()


@pytest.fixture
def emulator_control(stripe_emulator):
    return stripe_emulator.control


@pytest.fixture
def stripe_webhooks_to_live_server(stripe_emulator, live_server, settings):
    """Register the live server's dj-stripe endpoint with the emulator, as one would in Stripe."""
    from billing.services import stripe_webhook_endpoint_ensure

    path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": settings.STRIPE_WEBHOOK_UUID})
    endpoint = stripe.WebhookEndpoint.create(url=live_server.url + path, enabled_events=["*"])
    stripe_webhook_endpoint_ensure(secret=endpoint.secret, uuid=settings.STRIPE_WEBHOOK_UUID,
                                   url=live_server.url + path, livemode=False)
    return endpoint


@pytest.fixture(scope="session")
def chromium(playwright):
    """One Chromium for the session, from pytest-playwright's Playwright instance."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
