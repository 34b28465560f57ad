"""STRIPE_API_VERSION: every call asks for it, the webhook endpoint is made with it, and a start
with a version other than the SDK's is warned about."""

from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.urls import reverse
from djstripe.models import WebhookEndpoint

from billing import stripe_api
from billing.checks import stripe_api_version_check
from billing.stripe_events import STRIPE_EVENTS_USED

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_version(settings):
    settings.STRIPE_API_VERSION = "2025-03-31.basil"
    stripe_api._client.cache_clear()
    yield settings.STRIPE_API_VERSION
    stripe_api._client.cache_clear()


def endpoint_url(settings):
    path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": settings.STRIPE_WEBHOOK_UUID})
    return settings.SITE_URL + path


def test_the_api_version_defaults_to_the_one_the_sdk_pins(settings):
    assert stripe.api_version == settings.STRIPE_API_VERSION


def test_every_call_through_the_stripe_door_asks_for_the_configured_version(stripe_emulator, other_version):
    customer = stripe_api.customer_create(idempotency_key="version-test", email="ada@example.com")

    assert customer.last_response.headers["Stripe-Version"] == other_version


def test_a_version_other_than_the_sdks_is_warned_about_at_start(other_version):
    warnings = stripe_api_version_check()

    assert [w.id for w in warnings] == ["backstop.W001"]
    assert other_version in warnings[0].msg
    assert stripe.api_version in warnings[0].msg


def test_the_sdks_own_version_passes_the_check():
    assert stripe_api_version_check() == []


def test_the_webhook_endpoint_is_created_at_stripe_with_the_configured_version(stripe_emulator, settings,
                                                                               other_version):
    call_command("stripe_webhook_endpoint", create=True, stdout=StringIO())

    [endpoint] = [e for e in stripe.WebhookEndpoint.list() if e.url == endpoint_url(settings)]
    assert endpoint.api_version == other_version
    assert endpoint.enabled_events == list(STRIPE_EVENTS_USED)


def test_the_created_endpoints_secret_is_where_webhooks_are_verified(stripe_emulator, settings):
    out = StringIO()

    call_command("stripe_webhook_endpoint", create=True, stdout=out)

    secret = WebhookEndpoint.objects.get(djstripe_uuid=settings.STRIPE_WEBHOOK_UUID).secret
    assert f"STRIPE_WEBHOOK_SECRET={secret}" in out.getvalue()


def test_an_endpoint_at_stripe_is_never_created_twice(stripe_emulator, settings):
    call_command("stripe_webhook_endpoint", create=True, stdout=StringIO())

    with pytest.raises(Exception, match="already has an endpoint"):
        call_command("stripe_webhook_endpoint", create=True, stdout=StringIO())
    assert len([e for e in stripe.WebhookEndpoint.list() if e.url == endpoint_url(settings)]) == 1


def test_an_endpoint_registered_with_another_version_is_warned_about(stripe_emulator, settings):
    stripe.WebhookEndpoint.create(url=endpoint_url(settings), enabled_events=["*"], api_version="2024-06-20")
    err = StringIO()

    call_command("stripe_webhook_endpoint", stdout=StringIO(), stderr=err)

    assert "API version 2024-06-20, not STRIPE_API_VERSION" in err.getvalue()


def test_without_stripe_the_secret_is_stored_and_stripe_is_not_asked(settings):
    err = StringIO()

    call_command("stripe_webhook_endpoint", no_stripe=True, stdout=StringIO(), stderr=err)

    assert WebhookEndpoint.objects.get(djstripe_uuid=settings.STRIPE_WEBHOOK_UUID).secret == (
        settings.STRIPE_WEBHOOK_SECRET)
    assert err.getvalue() == ""
