"""GET /api/v1/access/?email=ADDRESS for a separate product, and its keys (`manage.py access_api_key`)."""

from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client
from rest_framework_api_key.models import APIKey

from accounts.api import PerKeyThrottle
from accounts.api_keys import api_key_create
from billing import services
from tests.billing.helpers import paid_order
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/access/"


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    caches["default"].clear()  # counted in the database cache, which no test transaction rolls back


def product(key: str) -> Client:
    """A separate product's HTTP client, sending its key as the API asks."""
    return Client(HTTP_AUTHORIZATION=f"Api-Key {key}")


@pytest.fixture
def key():
    return api_key_create(name="The product")[1]


def test_a_paying_address_has_access_with_its_plan_end_and_periods(key, stripe_emulator):
    order = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="webhook")
    entitlement = order.entitlement

    body = product(key).get(URL, {"email": "Ada@Example.com"}).json()

    end = entitlement.ends_at.isoformat().replace("+00:00", "Z")
    assert body == {
        "email": "ada@example.com",
        "has_access": True,
        "plan": {"code": "annual", "name": "Annual"},
        "access_until": end,
        "periods": [{"plan": {"code": "annual", "name": "Annual"},
                     "starts_at": entitlement.starts_at.isoformat().replace("+00:00", "Z"), "ends_at": end}],
    }


def test_a_refunded_address_has_no_access_and_no_periods(key, stripe_emulator):
    order = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="webhook")
    services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="Asked to")

    body = product(key).get(URL, {"email": "ada@example.com"}).json()

    assert (body["has_access"], body["plan"], body["access_until"], body["periods"]) == (False, None, None, [])


def test_an_address_nobody_has_used_has_no_access(key):
    response = product(key).get(URL, {"email": "nobody@example.com"})

    assert response.status_code == 200
    assert response.json() == {"email": "nobody@example.com", "has_access": False, "plan": None,
                               "access_until": None, "periods": []}


@pytest.mark.parametrize("query", [{}, {"email": ""}, {"email": "not-an-address"}])
def test_a_missing_or_invalid_address_is_a_400_that_says_what_to_send(key, query):
    response = product(key).get(URL, query)

    assert response.status_code == 400
    assert response.json()["detail"] == "Give the address to ask about as ?email=ADDRESS (a valid email address)."
    assert "email" in response.json()["errors"]


@pytest.mark.parametrize("authorization", [None, "Api-Key wrong.key", "Bearer something"])
def test_without_a_valid_key_the_api_answers_401_and_names_the_scheme(authorization):
    UserFactory(email="ada@example.com")
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = Client(**headers).get(URL, {"email": "ada@example.com"})

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Api-Key")
    assert "has_access" not in response.json()


def test_the_key_is_stored_only_as_a_hash(key):
    stored = APIKey.objects.get()

    assert key not in (stored.id, stored.hashed_key)
    assert key.split(".")[1] not in stored.hashed_key


def test_each_key_is_throttled_on_its_own(key, monkeypatch):
    monkeypatch.setattr(PerKeyThrottle, "THROTTLE_RATES", {"access_api": "2/minute"})
    other = api_key_create(name="Another product")[1]

    answers = [product(key).get(URL, {"email": "ada@example.com"}).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert product(other).get(URL, {"email": "ada@example.com"}).status_code == 200


def test_the_command_prints_a_new_key_once_and_that_key_works():
    out = StringIO()

    call_command("access_api_key", "create", "The product", stdout=out, stderr=StringIO())

    key = out.getvalue().strip()
    assert product(key).get(URL, {"email": "ada@example.com"}).status_code == 200
    listed = StringIO()
    call_command("access_api_key", "list", stdout=listed)
    assert key.split(".")[0] in listed.getvalue()
    assert key not in listed.getvalue()


def test_a_revoked_key_stops_working(key):
    call_command("access_api_key", "revoke", key.split(".")[0], stdout=StringIO())

    assert product(key).get(URL, {"email": "ada@example.com"}).status_code == 401


def test_api_keys_are_listed_in_the_console(admin_client, key):
    page = admin_client.get("/admin/rest_framework_api_key/apikey/").content.decode()

    assert "The product" in page
    assert key not in page


def test_a_key_revoked_in_the_console_stops_working(admin_client, key):
    prefix = key.split(".")[0]

    admin_client.post("/admin/rest_framework_api_key/apikey/", {
        "action": "revoke", "_selected_action": [APIKey.objects.get(prefix=prefix).pk]})

    assert APIKey.objects.get(prefix=prefix).revoked
    assert product(key).get(URL, {"email": "ada@example.com"}).status_code == 401
