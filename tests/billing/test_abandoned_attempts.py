"""A payment attempt left unfinished (the bank's 3-D Secure check abandoned, a card never sent) ends
in the truth: never "processing", "not charged" with a way on at every moment, canceled in Stripe by
the sweep after ABANDONED_PAYMENT_AFTER, and no page, email or lookup treats it as a purchase."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing import selectors, services
from billing.errors import PaymentNotCanceled
from billing.models import Order, OrderState
from billing.tokens import order_status_token
from outbox.models import OutboundEmail
from tests.billing.helpers import order_with_payment_intent, paid_order, pay
from tests.factories import OrderFactory, PlanFactory

pytestmark = pytest.mark.django_db

BANK_CHECK = "pm_card_authenticationRequired"  # 4000 0025 0000 3155: the bank asks for 3-D Secure


def settle(order, actor="webhook"):
    return services.order_settle(order_id=order.id, actor=actor, reason="test")


def left_at_the_bank_check(**fields) -> Order:
    """Pay pressed with a 3-D Secure card, then the bank's window closed: Stripe waits at requires_action."""
    order = order_with_payment_intent(**fields)
    assert pay(order, BANK_CHECK).status == "requires_action"
    return settle(order)


def client_secret(order):
    return stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).client_secret


def sweep():
    out = StringIO()
    call_command("reconcile", stdout=out, stderr=out)
    return out.getvalue()


def long_ago(order, hours=2):
    """As if Stripe's status had been the same for `hours` (the sweep's clock is when we first saw it)."""
    Order.objects.filter(pk=order.pk).update(payment_status_at=timezone.now() - timedelta(hours=hours))


def checkout(client, email):
    return client.post(reverse("billing:checkout"), {"email": email, "full_name": "", "nonce": str(uuid.uuid4())})


# --- settle never calls an unfinished attempt "processing" ------------------------------------------


def test_a_payment_waiting_for_the_bank_check_keeps_the_order_pending(stripe_emulator):
    order = left_at_the_bank_check()

    assert order.state == OrderState.PENDING
    assert order.payment_status == "requires_action"


def test_an_order_marked_processing_at_the_bank_check_goes_back_to_pending_on_its_next_settle(stripe_emulator):
    order = order_with_payment_intent()
    pay(order, BANK_CHECK)
    Order.objects.filter(pk=order.pk).update(state=OrderState.PROCESSING)  # as settle did before

    order = settle(order)

    assert order.state == OrderState.PENDING
    assert order.events.filter(from_state="processing", to_state="pending").exists()


def test_a_bank_check_after_a_declined_card_moves_the_failed_order_to_pending(stripe_emulator):
    order = order_with_payment_intent()
    pay(order, "pm_card_chargeDeclined")
    assert settle(order).state == OrderState.FAILED

    pay(order, BANK_CHECK)

    assert settle(order).state == OrderState.PENDING


def test_a_failed_bank_check_makes_the_order_failed_with_stripes_reason(stripe_emulator, emulator_control):
    order = left_at_the_bank_check()
    emulator_control.fail_3ds(order.stripe_payment_intent_id, client_secret(order))

    order = settle(order)

    assert order.state == OrderState.FAILED
    assert "authentication" in order.attention_reason


def test_the_first_sight_of_a_payment_dates_its_status_from_stripes_creation(stripe_emulator):
    order = left_at_the_bank_check()

    created = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).created
    assert order.payment_status_at.timestamp() == created


# --- the status page: not charged, with the way to finish ------------------------------------------


def test_the_status_says_not_charged_and_offers_to_finish_paying_at_the_bank_check(stripe_emulator):
    order = left_at_the_bank_check()

    status = selectors.order_customer_status(order)

    assert (status.code, status.charged, status.pay_label) == ("not_charged", False, "Finish paying")
    assert "bank asked you to confirm" in status.message
    assert "nothing has been taken" in status.message


def test_the_status_page_shows_the_finish_paying_link_and_no_spinner(client, stripe_emulator):
    order = left_at_the_bank_check()
    token = order_status_token(order)

    page = client.get(reverse("billing:status", kwargs={"token": token})).content.decode()

    assert 'data-status-code="not_charged"' in page
    assert f'href="{reverse("billing:pay", kwargs={"token": token})}">Finish paying</a>' in page
    assert 'id="status-pay" hidden' not in page
    assert 'id="status-working" aria-hidden="true" hidden' in page
    assert "Confirming your payment" not in page


def test_the_status_api_gives_the_pay_label_to_the_poller(client, stripe_emulator):
    order = left_at_the_bank_check()

    body = client.get(reverse("billing:status-api", kwargs={"token": order_status_token(order)})).json()

    assert (body["code"], body["charged"], body["pay_label"]) == ("not_charged", False, "Finish paying")


def test_a_paying_page_at_the_bank_check_still_offers_the_card_form(client, stripe_emulator):
    order = left_at_the_bank_check()

    response = client.get(reverse("billing:pay", kwargs={"token": order_status_token(order)}))

    assert response.status_code == 200
    assert "stripe-client-secret" in response.content.decode()


# --- the sweep cancels it in Stripe -----------------------------------------------------------------


def test_the_sweep_cancels_a_bank_check_left_longer_than_abandoned_payment_after(stripe_emulator):
    order = left_at_the_bank_check()
    long_ago(order)

    sweep()

    order.refresh_from_db()
    pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
    assert (pi.status, pi.cancellation_reason) == ("canceled", "abandoned")
    assert order.state == OrderState.CANCELED
    event = order.events.get(to_state="canceled")
    assert event.actor == "sweep"
    assert "unfinished for more than an hour" in event.reason


def test_a_dry_run_says_it_would_cancel_and_cancels_nothing(stripe_emulator):
    order = left_at_the_bank_check()
    long_ago(order)

    out = StringIO()
    call_command("reconcile", "--dry-run", "-v", "2", stdout=out, stderr=out)

    assert f"check {order.reference} with Stripe; cancel its unfinished payment" in out.getvalue()
    order.refresh_from_db()
    assert order.state == OrderState.PENDING
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "requires_action"


def test_the_sweep_leaves_a_bank_check_younger_than_abandoned_payment_after(stripe_emulator):
    order = left_at_the_bank_check()

    sweep()

    order.refresh_from_db()
    assert order.state == OrderState.PENDING
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "requires_action"


def test_abandoned_payment_after_is_a_setting(stripe_emulator, settings):
    settings.ABANDONED_PAYMENT_AFTER = timedelta(0)
    order = left_at_the_bank_check()

    sweep()

    order.refresh_from_db()
    assert order.state == OrderState.CANCELED


def test_the_sweep_cancels_a_card_form_never_sent_and_a_declined_card_never_retried(stripe_emulator):
    never_sent = order_with_payment_intent(email="never@example.com")
    settle(never_sent)
    declined = order_with_payment_intent(email="declined@example.com")
    pay(declined, "pm_card_chargeDeclined")
    settle(declined)
    long_ago(never_sent)
    long_ago(declined)

    sweep()

    for order in (never_sent, declined):
        order.refresh_from_db()
        assert order.state == OrderState.CANCELED
        assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "canceled"


def test_an_attempt_nobody_settled_since_the_card_form_is_canceled_too(stripe_emulator, settings):
    settings.ABANDONED_PAYMENT_AFTER = timedelta(0)
    order = order_with_payment_intent()  # the card form was shown; nobody asked Stripe since

    sweep()

    order.refresh_from_db()
    assert order.state == OrderState.CANCELED


def test_a_bank_check_finished_just_before_the_sweep_is_settled_not_canceled(stripe_emulator, emulator_control):
    order = left_at_the_bank_check()
    long_ago(order)
    emulator_control.complete_3ds(order.stripe_payment_intent_id, client_secret(order))

    sweep()

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "succeeded"


def test_an_order_marked_processing_before_the_fix_is_canceled_by_the_sweep(stripe_emulator, settings):
    settings.ABANDONED_PAYMENT_AFTER = timedelta(0)
    order = order_with_payment_intent()
    pay(order, BANK_CHECK)
    Order.objects.filter(pk=order.pk).update(state=OrderState.PROCESSING)  # as settle did before

    sweep()

    order.refresh_from_db()
    assert order.state == OrderState.CANCELED


def test_a_canceled_attempt_says_so_and_offers_to_start_again(client, stripe_emulator):
    order = left_at_the_bank_check()
    long_ago(order)
    sweep()
    order.refresh_from_db()

    page = client.get(reverse("billing:status", kwargs={"token": order_status_token(order)})).content.decode()

    assert "you have not been charged" in page
    assert "never finished, so it was canceled" in page
    assert f'href="{reverse("billing:checkout")}">Start again</a>' in page


# --- order_payment_cancel ----------------------------------------------------------------------------


def test_cancel_is_safe_to_repeat(stripe_emulator):
    order = left_at_the_bank_check()

    first = services.order_payment_cancel(order_id=order.id, actor="support:ana", reason="asked by phone")
    second = services.order_payment_cancel(order_id=order.id, actor="support:ana", reason="asked by phone")

    assert first.state == second.state == OrderState.CANCELED
    assert order.events.filter(to_state="canceled").count() == 1
    assert "asked by phone" in order.events.get(to_state="canceled").reason


def test_cancel_refuses_and_settles_when_stripe_shows_the_money_taken(stripe_emulator):
    order = paid_order()

    with pytest.raises(PaymentNotCanceled, match=r"Stripe shows \$249.00 taken"):
        services.order_payment_cancel(order_id=order.id, actor="support:ana", reason="test")

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "succeeded"


def test_cancel_of_an_order_without_a_payment_cancels_only_the_order(stripe_emulator):
    order = OrderFactory()

    order = services.order_payment_cancel(order_id=order.id, actor="support:ana", reason="duplicate")

    assert order.state == OrderState.CANCELED


def test_cancel_refuses_an_active_order(stripe_emulator):
    order = settle(paid_order())

    with pytest.raises(PaymentNotCanceled, match="no unfinished payment"):
        services.order_payment_cancel(order_id=order.id, actor="support:ana", reason="test")


# --- checking out again, emails and lookups --------------------------------------------------------


def test_checkout_again_from_another_browser_goes_to_payment_with_a_new_order(stripe_emulator):
    PlanFactory()
    first = left_at_the_bank_check(email="eu@example.com")

    response = checkout(Client(), "eu@example.com")

    assert response.status_code == 302
    assert response.url.endswith("/pay/")
    assert Order.objects.count() == 2
    assert not OutboundEmail.objects.filter(kind="already_yours").exists()
    first.refresh_from_db()
    assert first.state == OrderState.PENDING


def test_checkout_again_in_the_same_browser_reuses_its_order(client, stripe_emulator):
    PlanFactory()
    response = checkout(client, "eu@example.com")
    order = Order.objects.get()
    pay(order, BANK_CHECK)
    settle(order)

    again = checkout(client, "eu@example.com")

    assert again.url == response.url
    assert Order.objects.count() == 1


def test_checkout_after_the_sweep_canceled_the_attempt_goes_to_payment(stripe_emulator):
    PlanFactory()
    order = left_at_the_bank_check(email="eu@example.com")
    long_ago(order)
    sweep()

    response = checkout(Client(), "eu@example.com")

    assert response.url.endswith("/pay/")
    assert Order.objects.filter(state=OrderState.PENDING).count() == 1


def test_an_unpaid_attempt_does_not_hide_an_earlier_purchase(stripe_emulator):
    plan = PlanFactory()
    bought = settle(paid_order(email="ana@example.com", plan=plan))
    left_at_the_bank_check(email="ana@example.com", plan=plan)

    assert services.order_latest_purchase(email="ana@example.com", plan=plan).order == bought


def test_find_my_order_sends_no_link_for_an_attempt_at_the_bank_check(stripe_emulator):
    order = order_with_payment_intent(email="eu@example.com")
    pay(order, BANK_CHECK)
    Order.objects.filter(pk=order.pk).update(state=OrderState.PROCESSING)  # as settle did before

    assert services.order_status_links_send(email="eu@example.com") == 0
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_the_already_yours_email_never_speaks_of_a_payment_on_an_unpaid_order(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = left_at_the_bank_check(email="eu@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        services.order_already_yours_send(order=order)

    (message,) = mailoutbox
    for body in (message.body, message.alternatives[0][0]):
        assert "payment on it" not in body
        assert "has not been paid" in body
        assert "nothing was charged" in body


def test_the_already_yours_email_for_a_paid_order_says_it_is_paid(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order(email="eu@example.com")
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)  # Stripe took another amount: in review
    assert settle(order).state == OrderState.NEEDS_REVIEW

    with django_capture_on_commit_callbacks(execute=True):
        services.order_already_yours_send(order=Order.objects.get(pk=order.pk))

    (message,) = [m for m in mailoutbox if "nothing was charged" in m.subject]
    assert "paid, so we stopped before a second payment" in message.body


# --- support: Cancel payment attempt ---------------------------------------------------------------


def support(client, email="ana@backstop.localhost"):
    call_command("support_staff", email, password="a long pass phrase 42", stdout=StringIO())
    assert client.login(email=email, password="a long pass phrase 42")
    return client


def case(order, action=None):
    if action is None:
        return reverse("admin:billing_order_change", args=[order.pk])
    return reverse(f"admin:billing_order_{action}", args=[order.pk])


def test_the_case_of_an_unfinished_attempt_offers_cancel_payment_attempt(client, stripe_emulator):
    order = left_at_the_bank_check()

    page = support(client).get(case(order)).content.decode()

    assert 'id="case-cancel-payment"' in page
    assert "Cancel payment attempt" in page


def test_support_cancels_an_unfinished_attempt_in_stripe_as_that_person(client, stripe_emulator):
    order = left_at_the_bank_check()

    response = support(client).post(case(order, "cancel_payment"), follow=True)

    order.refresh_from_db()
    assert order.state == OrderState.CANCELED
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "canceled"
    assert order.events.get(to_state="canceled").actor == "support:ana@backstop.localhost"
    assert "payment attempt canceled in Stripe; nothing was charged" in response.content.decode()


def test_support_cancel_is_refused_with_what_stripe_shows_when_money_was_taken(client, stripe_emulator):
    order = paid_order()  # the order does not know yet; Stripe does

    response = support(client).post(case(order, "cancel_payment"), follow=True)

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert "Stripe shows $249.00 taken" in response.content.decode()
    assert "nothing was canceled" in response.content.decode()


def test_the_case_of_an_active_order_offers_no_cancel(client, stripe_emulator):
    order = settle(paid_order())

    page = support(client).get(case(order)).content.decode()

    assert 'id="case-cancel-payment"' not in page


def test_cancel_needs_the_recover_permission(client, stripe_emulator, django_user_model):
    order = left_at_the_bank_check()
    django_user_model.objects.create_user(email="bo@backstop.localhost", password="a long pass phrase 42",
                                          is_staff=True)
    client.login(email="bo@backstop.localhost", password="a long pass phrase 42")

    response = client.post(case(order, "cancel_payment"))

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_recover_on_an_unfinished_attempt_says_nothing_was_taken_and_what_ends_it(client, stripe_emulator):
    order = left_at_the_bank_check()

    response = support(client).post(case(order, "recover"), {"key": str(uuid.uuid4())}, follow=True)

    page = response.content.decode()
    assert "Stripe took nothing: the customer&#x27;s bank asked them to confirm" in page
    assert "Cancel payment attempt ends it now" in page
    assert "after an hour" in page
