"""Returning customers: signed in or holding a Renew link, checkout knows them and says what one more
payment adds; anyone else typing a known address gets one calm email sent to that address."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Entitlement
from accounts.periods import add_months
from billing import services
from billing.models import Order
from billing.tokens import renew_token
from outbox.models import OutboundEmail
from tests.billing.helpers import at_once, paid_order
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def active_customer(email="ana@example.com"):
    order = services.order_settle(order_id=paid_order(email=email).id, actor="customer")
    return order, order.user


def day(moment):
    return f"{timezone.localtime(moment):%B %-d, %Y}"


def checkout(client, email, **extra):
    return client.post(reverse("billing:checkout"), {"email": email, "full_name": "", "nonce": str(uuid.uuid4()),
                                                     **extra})


def test_a_signed_in_customer_finds_checkout_prefilled_with_what_another_year_adds(client, stripe_emulator):
    order, user = active_customer()
    client.force_login(user)

    page = client.get(reverse("billing:checkout")).content.decode()

    until = order.entitlement.ends_at
    assert 'value="ana@example.com"' in page
    assert f"runs until <strong>{day(until)}</strong>" in page
    assert f"to <strong>{day(add_months(until, 12))}</strong>" in page


def test_a_signed_in_customer_goes_straight_to_paying_for_another_year_without_emails(client, stripe_emulator):
    _order, user = active_customer()
    client.force_login(user)
    client.get(reverse("billing:checkout"))
    emails_before = OutboundEmail.objects.count()

    response = checkout(client, "ana@example.com")

    assert response.status_code == 302
    assert response.url.endswith("/pay/")
    assert Order.objects.count() == 2
    assert OutboundEmail.objects.count() == emails_before
    pay_page = client.get(response.url).content.decode()
    assert 'id="pay-renewal"' in pay_page


def test_a_renew_link_opens_checkout_prefilled_for_its_customer(stripe_emulator):
    order, user = active_customer()

    page = Client().get(reverse("billing:checkout") + "?renew=" + renew_token(user)).content.decode()

    assert 'value="ana@example.com"' in page
    assert f"runs until <strong>{day(order.entitlement.ends_at)}</strong>" in page


def test_a_broken_renew_link_gives_the_plain_checkout(stripe_emulator):
    active_customer()

    page = Client().get(reverse("billing:checkout") + "?renew=nonsense").content.decode()

    assert "ana@example.com" not in page
    assert "runs until" not in page


def test_a_stranger_typing_a_known_address_is_told_only_that_we_emailed_it(stripe_emulator):
    active_customer()

    page = checkout(Client(), "ana@example.com").content.decode()

    assert "This email address already has the Annual plan" in page
    assert "nothing has been charged" in page
    assert "runs until" not in page
    assert "buy_again" not in page
    assert Order.objects.count() == 1


def test_the_already_yours_email_says_a_checkout_happened_and_how_to_add_time(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order, _user = active_customer()

    with django_capture_on_commit_callbacks(execute=True):
        checkout(Client(), "ana@example.com")

    (message,) = [m for m in mailoutbox if m.to == ["ana@example.com"] and "nothing was charged" in m.subject]
    html = message.alternatives[0][0]
    for body in (message.body, html):
        assert "started a checkout on our site with this email address" in body
        assert day(order.entitlement.ends_at) in body
        assert "?renew=" in body
        assert "Find my order" not in body
        assert order.full_name not in body  # only our words: whoever typed the address may not be them
    assert f"active until {day(order.entitlement.ends_at)}" in message.body


@pytest.mark.django_db(transaction=True)
def test_two_checkouts_with_a_known_address_at_the_same_moment_send_one_email(stripe_emulator):
    active_customer()
    clients = iter([Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")])

    errors = at_once(lambda: checkout(next(clients), "ana@example.com"))

    assert errors == []
    assert OutboundEmail.objects.filter(kind="already_yours").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_tabs_of_one_browser_submitted_at_the_same_moment_make_one_order_and_one_payment(stripe_emulator):
    import stripe

    PlanFactory()
    first_tab = Client()
    first_tab.get(reverse("billing:checkout"))  # the browser's session, as both tabs rendered the form
    second_tab = Client()
    second_tab.cookies = first_tab.cookies
    tabs = iter([first_tab, second_tab])
    answers = []

    errors = at_once(lambda: answers.append(checkout(next(tabs), "ana@example.com")))

    assert errors == []
    assert Order.objects.count() == 1
    assert {a.url for a in answers} == {answers[0].url}
    assert answers[0].url.endswith("/pay/")
    assert len(stripe.PaymentIntent.list(limit=10).data) == 1


def test_a_deliberate_second_year_from_the_browser_that_bought_is_asked_first(client, stripe_emulator):
    PlanFactory()
    checkout(client, "ana@example.com")
    first = Order.objects.get()
    from tests.billing.helpers import pay

    pay(first)
    page = checkout(client, "ana@example.com").content.decode()
    first.refresh_from_db()

    until = Entitlement.objects.get(order=first).ends_at
    assert f"Your plan runs until <strong>{day(until)}</strong>" in page
    assert "Yes, add 12 months" in page
    response = checkout(client, "ana@example.com", buy_again="1", email_confirmed="1")
    assert response.status_code == 302
    assert Order.objects.count() == 2
