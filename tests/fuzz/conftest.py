"""Property-based fuzzing of every way in (forms, the status API, the Stripe and ESP webhooks).

Each property: any input gets a clear answer (2xx/3xx for valid input, a 4xx otherwise), never a
500, no traceback or another customer's details in the body, and nothing half-written (rows counted
before and after). Django's test Client against the real PostgreSQL, the emulator for Stripe.

Examples per property: 25 in the normal suite (HYPOTHESIS_PROFILE unset or "ci"), 2,000 with
HYPOTHESIS_PROFILE=long. No example database is kept: a failure prints its shrunk input (and a
@reproduce_failure line), which becomes an ordinary regression test.
"""

import os

import pytest
from django.core.cache import caches
from django.test import Client
from hypothesis import HealthCheck, event, settings

from tests.factories import OrderFactory, UserFactory

_COMMON = {
    "deadline": None,  # a request against PostgreSQL (and sometimes the emulator) varies in time
    "database": None,
    # The fixtures (database, emulator) are set up once per test; each example counts rows itself.
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                              HealthCheck.data_too_large],
}
# The suite's form is the same examples every run, so CI never fails at random; `make fuzz` explores.
settings.register_profile("ci", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Details of a customer who is not the one fuzzing: none may ever appear in an answer.
BYSTANDER = {"email": "bystander.private@example.org", "full_name": "Zebulon Quillfeather"}


@pytest.fixture
def bystander(db):
    user = UserFactory(email=BYSTANDER["email"], full_name=BYSTANDER["full_name"], company_name="Quillfeather Ltd",
                       vat_number="GB999999973")
    order = OrderFactory(email=BYSTANDER["email"], full_name=BYSTANDER["full_name"], user=user)
    return order


_client = None


def browser(address: str = "127.0.0.1") -> Client:
    """A browser with no cookies, coming from `address`. One Client for the session: a new one
    loads the middleware again (whitenoise scans every static file), a second per example."""
    global _client
    if _client is None:
        _client = Client(raise_request_exception=True)
    _client.cookies.clear()
    _client.defaults["REMOTE_ADDR"] = address
    return _client


def fresh_counts():
    """Rate-limit counts from earlier examples would turn every later one into a 429."""
    caches["default"].clear()


def assert_clean_answer(response, *, sent=None):
    """A clear answer: no 500, no traceback, none of the bystander's details (unless the request
    itself carried them, `sent`: a form may show back what was typed into it)."""
    event(f"HTTP {response.status_code}")  # the spread of answers, in --hypothesis-show-statistics
    assert response.status_code < 500, response.status_code
    body = b"".join(response.streaming_content) if response.streaming else response.content
    echoed = repr(sent) if sent is not None else ""
    for secret in ("Traceback (most recent call last)", "django.db.", "psycopg", *BYSTANDER.values(), "Quillfeather"):
        if secret not in echoed:
            assert secret.encode() not in body, secret
    return response
