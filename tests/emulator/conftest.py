"""Fixtures for the emulator's own tests: one emulator subprocess per session, reset per test.

These tests need neither Django nor a database (run them with ``-p no:django`` if the Django
settings are unavailable).
"""

import pytest
import stripe

from stripe_emulator.testing import EmulatorProcess

from .receiver import WebhookReceiver

WEBHOOK_SECRET = "whsec_emulatorTestsSecret0000000000"
RETRY_SCHEDULE = (0.2, 0.4, 0.8)


@pytest.fixture(scope="session")
def webhook_receiver():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def emulator_process(webhook_receiver):
    with EmulatorProcess(
        webhooks=[(webhook_receiver.url, WEBHOOK_SECRET)],
        retry_schedule=RETRY_SCHEDULE,
        webhook_timeout=1.0,
    ) as process:
        yield process


@pytest.fixture
def emulator(emulator_process, webhook_receiver):
    """A clean emulator with the module-level ``stripe`` SDK pointed at it.

    SDK retries are off (``max_network_retries = 0``) so that a test sees exactly the response the
    emulator gave; tests about retries turn them on themselves.
    """
    emulator_process.control.reset()
    webhook_receiver.reset()
    with emulator_process.stripe_configured(max_network_retries=0):
        yield emulator_process
    # Leave nothing behind for the next test (scripted faults, a paused queue).
    emulator_process.control.reset()


@pytest.fixture
def control(emulator):
    return emulator.control


@pytest.fixture
def customer(emulator):
    return stripe.Customer.create(email="jenny@example.com", name="Jenny Rosen")


@pytest.fixture(autouse=True)
def anymail_test_backend(request):
    """Stand in for tests/conftest.py's fixture of this name, which needs pytest-django's
    ``settings``: the emulator's tests touch neither Django nor email and also run with
    ``-p no:django``. Under pytest-django it does what the original does."""
    if request.config.pluginmanager.has_plugin("django"):
        settings = request.getfixturevalue("settings")
        settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"


# Modules in this folder that need Django (dj-stripe integration): skipped with -p no:django.
NEEDS_DJANGO = {"test_djstripe_mirror.py"}


def pytest_ignore_collect(collection_path, config):
    if collection_path.name in NEEDS_DJANGO and not config.pluginmanager.has_plugin("django"):
        return True
    return None
