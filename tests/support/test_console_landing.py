"""The console's landing page: one search box across orders and the Stripe mirror, and a queue of
only what needs a person."""

from datetime import timedelta

import pytest
import stripe
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.mirror import stripe_mirror_sync
from billing.models import Order
from outbox.models import OutboundEmail
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def search(console, q):
    return console.get(reverse("admin:index"), {"q": q}).content.decode()


def test_search_finds_a_customer_by_part_of_their_email_in_any_case(console):
    order = OrderFactory(email="ana.lovelace@example.com")

    assert order.reference in search(console, "LOVELACE")


def test_search_finds_an_order_by_reference_or_the_code_on_the_bank_statement(console):
    order = OrderFactory()
    code = order.reference.replace("BK-", "").replace("-", "")

    assert order.reference in search(console, order.reference.lower())
    assert order.reference in search(console, f"BACKSTOP* {code}")


def test_search_finds_a_payment_by_card_last_four_before_its_order_is_finished(console, stripe_emulator):
    order = paid_order()  # charged; the order does not know the card yet
    stripe_mirror_sync()

    assert order.reference in search(console, "4242")


def test_search_finds_a_charge_that_has_no_order_at_all(console, stripe_emulator):
    payment = stripe.PaymentIntent.create(amount=24900, currency="usd", confirm=True, payment_method="pm_card_visa",
                                          payment_method_types=["card"])
    stripe_mirror_sync()

    page = search(console, payment.id)

    assert "no order" in page
    assert payment.latest_charge in page


def test_search_finds_orders_by_amount(console):
    order = OrderFactory()

    assert order.reference in search(console, "$249.00")


def test_a_charged_order_the_nets_could_not_finish_is_in_the_queue(console, stripe_emulator):
    order = paid_order()
    stripe_mirror_sync()
    from djstripe.models import Charge

    Charge.objects.filter(payment_intent_id=order.stripe_payment_intent_id).update(
        created=timezone.now() - timedelta(minutes=10))

    page = console.get(reverse("admin:index")).content.decode()

    assert f"{order.reference}: Charged $249.00, not yet active" in page


def test_what_the_nets_fixed_on_their_own_is_not_in_the_queue(console, stripe_emulator):
    services.order_settle(order_id=paid_order().id, actor="sweep")

    page = console.get(reverse("admin:index")).content.decode()

    assert 'id="nothing-needs-attention"' in page


def test_held_money_comes_first_with_its_refund_deadline(console, stripe_emulator):
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)
    services.order_settle(order_id=order.id, actor="webhook")
    bounced = OrderFactory()
    OutboundEmail.objects.create(about=bounced, kind="confirmation", recipient=bounced.email, status="failed")

    page = console.get(reverse("admin:index")).content.decode()

    queue = page.split('id="needs-attention"')[1]
    assert queue.index(order.reference) < queue.index(bounced.reference)
    assert "automatic refund in" in queue


def test_two_paid_orders_by_one_customer_are_flagged(console, stripe_emulator):
    for _ in range(2):
        services.order_settle(order_id=paid_order(email="twice@example.com").id, actor="webhook")

    page = console.get(reverse("admin:index")).content.decode()

    assert "twice@example.com paid 2 times for the same plan within 60 minutes, not as a renewal" in page


def test_one_or_two_letters_ask_for_a_third_instead_of_reading_every_order(console):
    OrderFactory(email="zq@example.com")

    page = search(console, "zq")

    assert "Type at least 3 letters" in page


def landing(console) -> str:
    return console.get(reverse("admin:index")).content.decode()


def owed_email(**fields) -> OutboundEmail:
    order = OrderFactory()
    return OutboundEmail.objects.create(about=order, kind="status_link", recipient=order.email,
                                        next_attempt_at=timezone.now(), **fields)


def test_confirmations_the_email_provider_keeps_refusing_are_a_box_not_nothing_needs_a_person(console):
    owed_email(attempts=3, last_error="ConnectionRefusedError: [Errno 111] Connection refused")
    owed_email(attempts=3, last_error="ConnectionRefusedError: [Errno 111] Connection refused")

    page = landing(console)

    assert 'id="email-down"' in page
    assert "2 customer emails waiting" in page
    assert "Connection refused" in page
    assert page.index('id="email-down"') < page.index('role="search"')
    assert "Nothing needs a person right now" not in page


def test_an_email_unsent_past_outbox_alert_after_is_a_box_even_before_it_failed(console, settings):
    settings.OUTBOX_ALERT_AFTER = timedelta(minutes=5)
    email = owed_email()
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(minutes=6))

    assert "1 customer email waiting, the oldest for 6" in landing(console)


def test_an_email_on_its_first_retry_is_no_box(console):
    owed_email(attempts=1, last_error="ConnectionRefusedError: [Errno 111] Connection refused")

    assert 'id="email-down"' not in landing(console)
