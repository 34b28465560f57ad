"""Abuse of the customer surface, as it was probed: checkout, status polling and order lookup are
limited per client and per email address (the client being the real one behind our proxy), lookup
emails are only about money and only in our words, and counting survives requests at once."""

import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Order, OrderState
from billing.tokens import order_status_token
from config.client_ip import client_ip
from outbox.models import OutboundEmail
from tests.billing.helpers import at_once, order_with_payment_intent, pay
from tests.factories import OrderFactory, PlanFactory
from tests.ratelimits import counting_afresh

pytestmark = pytest.mark.django_db


def checkout(client, email, **extra):
    return client.post(reverse("billing:checkout"), {"email": email, "full_name": "Ana", "nonce": str(uuid.uuid4())},
                       **extra)


def lookup(client, email, **extra):
    return client.post(reverse("billing:lookup"), {"email": email}, **extra)


def paid_order(email, **fields):
    """An order whose money Stripe took (no Stripe call needed to look it up)."""
    return OrderFactory(email=email, state=OrderState.ACTIVE, paid_at=timezone.now(),
                        stripe_payment_intent_id=f"pi_{uuid.uuid4().hex[:24]}", **fields)


def status_links(email=None):
    emails = OutboundEmail.objects.filter(kind="status_link")
    return emails.filter(recipient=email) if email else emails


def status_api(client, order, **extra):
    return client.get(reverse("billing:status-api", kwargs={"token": order_status_token(order)}), **extra)


# --- Checkout --------------------------------------------------------------------------------------


def test_checkout_makes_no_more_than_twenty_orders_an_hour_from_one_client(client, stripe_emulator):
    PlanFactory()
    counting_afresh(rate="20/h", value="127.0.0.1")

    answers = [checkout(client, f"buyer{i}@example.com") for i in range(21)]

    assert Order.objects.count() == 20
    assert answers[-1].status_code == 429
    assert "You have not been charged" in answers[-1].content.decode()


def test_checkout_makes_no_more_than_ten_orders_an_hour_for_one_email_address_from_one_client(stripe_emulator):
    PlanFactory()
    counting_afresh(rate="10/h", value="10.0.0.1|ana@example.com")

    # Fresh browsers on one connection: each makes its own order.
    answers = [checkout(Client(REMOTE_ADDR="10.0.0.1"), "ana@example.com") for i in range(11)]

    assert Order.objects.count() == 10
    assert answers[-1].status_code == 429


# --- Status polling --------------------------------------------------------------------------------


def test_the_status_api_answers_429_with_retry_after_past_the_per_client_limit(client):
    order = OrderFactory()
    counting_afresh(rate="120/m", value="127.0.0.1")

    answers = [status_api(client, order) for _ in range(121)]

    assert {a.status_code for a in answers[:120]} == {200}
    assert answers[-1].status_code == 429
    assert answers[-1]["Retry-After"]


def test_past_the_limit_the_status_page_says_checking_and_asks_stripe_nothing(client, stripe_emulator):
    charged = order_with_payment_intent()
    pay(charged)  # Stripe has the money; our order has not heard yet
    other = OrderFactory()
    counting_afresh(rate="120/m", value="127.0.0.1")
    for _ in range(120):
        status_api(client, other)

    page = client.get(reverse("billing:status", kwargs={"token": order_status_token(charged)}))

    charged.refresh_from_db()
    assert charged.state == OrderState.PENDING
    assert 'data-status-code="checking"' in page.content.decode()


# --- Order lookup ----------------------------------------------------------------------------------


def test_order_lookup_emails_nothing_about_an_order_without_money(client):
    OrderFactory(email="ana@example.com")  # never paid

    lookup(client, "ana@example.com")

    assert not status_links().exists()


def test_order_lookup_emails_carry_none_of_the_words_the_customer_typed(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    paid_order("ana@example.com", full_name="Claim your prize at https://evil.example <b>now</b>")

    with django_capture_on_commit_callbacks(execute=True):
        lookup(client, "ana@example.com")

    (message,) = mailoutbox
    assert "evil.example" not in message.body
    assert "evil.example" not in message.alternatives[0][0]


def test_order_lookup_for_a_250_character_address_stops_after_five_a_day():
    email = f"{'a' * 64}@{'b' * 61}.{'c' * 61}.{'d' * 57}.com"
    assert len(email) == 250
    paid_order(email)
    counting_afresh(rate="5/d", value=email)

    for i in range(6):
        lookup(Client(REMOTE_ADDR=f"10.0.1.{i}"), email)

    assert status_links(email).count() == 5


def test_order_lookup_stops_after_ten_an_hour_from_one_client(client):
    for i in range(11):
        paid_order(f"buyer{i}@example.com")
    counting_afresh(rate="10/h", value="127.0.0.1")

    for i in range(11):
        lookup(client, f"buyer{i}@example.com")

    assert status_links().count() == 10
    assert not status_links("buyer10@example.com").exists()


def test_behind_a_trusted_proxy_one_visitor_cannot_switch_lookup_off_for_everyone(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for i in range(11):
        paid_order(f"buyer{i}@example.com")
    paid_order("someone.else@example.com")
    counting_afresh(rate="10/h", value="203.0.113.9")
    for i in range(11):
        lookup(client, f"buyer{i}@example.com", HTTP_X_FORWARDED_FOR="203.0.113.9")

    lookup(client, "someone.else@example.com", HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert status_links("someone.else@example.com").count() == 1


def test_a_forged_forwarded_for_entry_does_not_escape_the_per_client_limit(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for i in range(11):
        paid_order(f"buyer{i}@example.com")
    counting_afresh(rate="10/h", value="203.0.113.9")

    for i in range(11):
        # The client wrote the left entry; our proxy appended the right one.
        lookup(client, f"buyer{i}@example.com", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.9")

    assert status_links().count() == 10


def test_checkouts_with_an_address_that_already_bought_email_it_once_in_a_few_minutes(stripe_emulator):
    PlanFactory()
    owner = Client()
    checkout(owner, "ana@example.com")
    order = Order.objects.get()
    pay(order)
    services.order_settle(order_id=order.id, actor="webhook")
    counting_afresh(rate="3/h", value="ana@example.com")

    for i in range(4):
        checkout(Client(REMOTE_ADDR=f"10.0.2.{i}"), "ana@example.com")

    notices = OutboundEmail.objects.filter(kind="already_yours", recipient="ana@example.com")
    assert notices.count() == 1
    assert not status_links("ana@example.com").exists()


def test_find_my_order_emails_do_not_use_up_the_checkout_notices_of_an_address(stripe_emulator):
    order = paid_order("ana@example.com")
    for _ in range(5):
        services.order_status_links_send(email="ana@example.com")

    assert services.order_already_yours_send(order=order) is True


def test_checkout_notices_stop_at_five_per_address_per_day(stripe_emulator):
    order = paid_order("ana@example.com")
    for _ in range(5):
        assert services.order_already_yours_send(order=order) is True
        # As if sent more than the few minutes apart that one notice waits for the next.
        OutboundEmail.objects.filter(kind="already_yours").update(
            created_at=timezone.now() - timedelta(hours=1))

    assert services.order_already_yours_send(order=order) is False


def test_each_lookup_the_page_lets_through_sends_one_email_whatever_the_address_had_today():
    paid_order("ana@example.com")
    paid_order("ana@example.com")

    for _ in range(6):
        services.order_status_links_send(email="ana@example.com")

    assert status_links("ana@example.com").count() == 6


# --- The client's address --------------------------------------------------------------------------


def test_behind_one_trusted_proxy_the_client_is_the_rightmost_forwarded_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.9")

    assert client_ip(request) == "203.0.113.9"


def test_without_a_trusted_proxy_the_forwarded_header_is_not_believed():
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert client_ip(request) == "192.0.2.1"


def test_a_forwarded_entry_that_is_not_an_address_falls_back_to_the_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="unknown")

    assert client_ip(request) == "127.0.0.1"


# --- Counting in the shared cache ------------------------------------------------------------------


def test_counting_a_request_keeps_its_window_expiry():
    cache = caches["default"]
    key = f"test-expiry-{uuid.uuid4().hex}"
    cache.add(key, 0, timeout=3600)

    cache.incr(key)

    # Django's generic incr() re-sets the key with the default 5-minute timeout.
    assert _expires_in(key) > timedelta(minutes=50)


@pytest.mark.django_db(transaction=True)
def test_requests_counted_at_the_same_moment_are_all_counted():
    cache = caches["default"]
    key = f"test-concurrent-{uuid.uuid4().hex}"
    cache.add(key, 0, timeout=3600)

    errors = at_once(lambda: cache.incr(key), times=8)

    assert errors == []
    assert cache.get(key) == 8
    cache.delete(key)


def _expires_in(key) -> timedelta:
    from django.db import connection

    cache = caches["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT expires FROM backstop_cache WHERE cache_key = %s", [cache.make_key(key)])
        (expires,) = cursor.fetchone()
    return expires - timezone.now()
