"""A refund the customer's bank sends back (a closed or replaced card): Stripe marks the refund
failed days later and holds the money again. The order stays refunded (its access ended), and a
person returns the money another way; nothing may go on saying the customer has it."""

import uuid

import pytest
import stripe
from django.urls import reverse

from accounts.models import Entitlement
from billing import selectors, services
from billing.errors import BillingError
from billing.models import OrderState
from outbox.models import OutboundEmail
from support import selectors as support_selectors
from support.models import Alert
from tests.billing.helpers import paid_order
from tests.support.test_case_page import staff

pytestmark = pytest.mark.django_db


def refunded_order():
    order = paid_order()
    services.order_settle(order_id=order.id, actor="webhook")
    return services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="Asked to cancel")


def bank_sends_back(order, emulator_control):
    refund = stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data[0]
    emulator_control.fail_refund(refund.id)
    return services.order_settle(order_id=order.id, actor="webhook")


def test_a_refund_the_bank_sent_back_is_recorded_as_money_stripe_holds_again(stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)

    assert order.state == OrderState.REFUNDED
    assert order.amount_refunded_cents == 0
    assert order.refund_sent_back_cents == 24900


def test_a_refund_the_bank_sent_back_alerts_the_team_once(stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)
    services.order_settle(order_id=order.id, actor="sweep")

    alerts = Alert.objects.filter(order=order, kind=Alert.Kind.REFUND_FAILED)
    assert alerts.count() == 1
    assert "sent back" in alerts.get().summary


def test_a_refund_the_bank_sent_back_is_in_the_console_queue(stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)

    items = [item for item in support_selectors.needs_attention() if item.kind == "refund_sent_back"]

    assert [item.title for item in items] == [f"{order.reference}: refund sent back by the bank"]
    assert items[0].money_cents == 24900


def test_the_status_page_stops_saying_a_sent_back_refund_reached_the_customer(stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)

    status = selectors.order_customer_status(order, checked=True)

    assert status.code == "refund_sent_back"
    assert "has been refunded in full" not in status.message
    assert "your bank sent the refund of $249.00 back" in status.message


def test_a_refund_the_bank_sent_back_neither_gives_access_back_nor_holds_the_money(stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)

    assert order.held_since is None
    assert Entitlement.objects.get(order=order).revoked_at is not None
    assert not OutboundEmail.objects.filter(kind="payment_received").exists()


def test_a_refund_that_went_through_leaves_nothing_sent_back(stripe_emulator):
    order = refunded_order()

    assert order.refund_sent_back_cents == 0
    assert not [item for item in support_selectors.needs_attention() if item.kind == "refund_sent_back"]


def returned_another_way(client, order, how="Bank transfer on Dec 9"):
    return client.post(reverse("admin:billing_order_returned_another_way", args=[order.pk]), {
        "key": str(uuid.uuid4()), "how": how, "seen": support_selectors.order_case_version(order.id)})


def test_the_case_page_offers_to_record_the_money_returned_another_way(client, stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)
    staff(client, refunds=True)

    page = client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert 'id="case-returned-another-way">Returned $249.00 another way</button>' in page


def test_money_returned_another_way_is_recorded_with_who_and_how_and_leaves_the_queue(
    client, stripe_emulator, emulator_control
):
    order = bank_sends_back(refunded_order(), emulator_control)
    staff(client, refunds=True)

    returned_another_way(client, order)

    order.refresh_from_db()
    assert order.refund_sent_back_cents == 0
    event = order.events.get(kind="returned_another_way")
    assert (event.actor, event.data["amount_cents"], event.data["how"]) == (
        "support:ana@backstop.localhost", 24900, "Bank transfer on Dec 9")
    assert not [item for item in support_selectors.needs_attention() if item.kind == "refund_sent_back"]
    assert not Alert.objects.filter(order=order, kind=Alert.Kind.REFUND_FAILED, resolved_at__isnull=True).exists()


def test_the_status_page_says_the_money_was_returned_another_way(client, stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)
    staff(client, refunds=True)
    returned_another_way(client, order)
    order.refresh_from_db()

    status = selectors.order_customer_status(order, checked=True)

    assert status.code == "refunded"
    assert "so we returned $249.00 to you another way" in status.message


def test_recording_money_returned_another_way_needs_the_refund_right(client, stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)
    staff(client, refunds=False)

    response = returned_another_way(client, order)

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.refund_sent_back_cents == 24900


def test_money_can_be_recorded_returned_another_way_only_for_a_refund_sent_back(stripe_emulator):
    order = refunded_order()

    with pytest.raises(BillingError, match="no refund sent back"):
        services.order_returned_another_way(order_id=order.id, actor="support:ana@backstop.localhost", how="transfer")


def test_the_receipt_counts_money_returned_another_way_as_given_back(client, stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)
    staff(client, refunds=True)
    returned_another_way(client, order)
    order.refresh_from_db()

    receipt = selectors.order_receipt(order, proved=True)

    assert [refund.amount for refund in receipt.refunds] == ["$249.00"]
    assert (receipt.amount_refunded, receipt.net_amount) == ("$249.00", "$0.00")


def test_the_receipt_of_a_refund_sent_back_shows_no_refund(stripe_emulator, emulator_control):
    order = bank_sends_back(refunded_order(), emulator_control)

    receipt = selectors.order_receipt(order, proved=True)

    assert receipt.refunds == ()
    assert (receipt.amount_refunded, receipt.net_amount) == ("", "$249.00")
