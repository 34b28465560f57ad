"""`manage.py customer_erase EMAIL --yes`: the person is gone for good, here, at Stripe, in the
mirror and in support mail, and a restore of an older backup plus `reconcile --since all` does not
bring them back (docs/decisions/0025-erasure.md)."""

import subprocess
from io import StringIO

import pytest
import stripe
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from djstripe import models as djstripe_models

from accounts.models import Entitlement, User
from accounts.proof import SESSION_PROVED
from billing import mirror, services
from billing.models import ErasureRecord, Order, OrderState
from billing.services.erasure import customer_erasure_plan
from outbox.models import OutboundEmail
from support.models import Alert, InboundMessage
from tests.billing.helpers import order_with_payment_intent, paid_order
from tests.billing.test_restore import PG_BIN, _pg_args, backup, restore
from tests.factories import OrderFactory, PlanFactory

ADDRESS = "ada@example.com"


def database_text() -> str:
    """Every row of the database as pg_dump writes it: where an address could hide."""
    return subprocess.run([f"{PG_BIN}/pg_dump", *_pg_args(), "--data-only", connection.settings_dict["NAME"]],
                          check=True, capture_output=True, text=True).stdout


def erase(email=ADDRESS) -> str:
    out = StringIO()
    call_command("customer_erase", email, "--yes", stdout=out)
    return out.getvalue()


@pytest.fixture
def ada(stripe_emulator, settings):
    """Ada paid (her account, entitlement, confirmation), wrote to support, and the mirror has it all.
    Stripe was asked to email its own receipt too, so its records hold her address where it can keep it."""
    settings.STRIPE_RECEIPT_EMAILS = True
    PlanFactory()
    order = paid_order(email=ADDRESS, full_name="Ada Lovelace")
    order = services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")
    User.objects.filter(email=ADDRESS).update(full_name="Ada Lovelace", company_name="Engines Ltd")
    message = InboundMessage.objects.create(message_id="pm-1", from_email=ADDRESS, from_name="Ada Lovelace",
                                            subject="Receipt please", body="I am Ada Lovelace, ada@example.com")
    message.orders.add(order)
    mirror.stripe_mirror_sync(since=0)
    order.refresh_from_db()
    return order


@pytest.mark.django_db
def test_without_yes_nothing_is_erased_and_it_says_what_would_be(ada):
    with pytest.raises(CommandError, match=f"(?s)run again with --yes.*{ada.reference}"):
        call_command("customer_erase", ADDRESS, stdout=StringIO())

    assert Order.objects.get(pk=ada.pk).email == ADDRESS


@pytest.mark.django_db
def test_an_unknown_address_is_refused_in_one_line():
    with pytest.raises(CommandError, match=r"Nothing is held about nobody@example\.com"):
        call_command("customer_erase", "nobody@example.com", "--yes", stdout=StringIO())


@pytest.mark.django_db
def test_the_order_keeps_its_amounts_dates_and_references_with_the_person_replaced(ada):
    erase()

    order = Order.objects.get(pk=ada.pk)
    record = ErasureRecord.objects.get()
    assert (order.email, order.full_name, order.card_last4) == (record.placeholder, "", "")
    assert (order.reference, order.amount_received_cents, order.paid_at, order.stripe_charge_id) == (
        ada.reference, ada.amount_received_cents, ada.paid_at, ada.stripe_charge_id)
    assert record.finished_at is not None


@pytest.mark.django_db
def test_the_account_is_closed_and_anonymised_and_its_access_revoked(ada):
    erase()

    user = Entitlement.objects.get(order=ada).user
    assert (user.email.startswith("erased-"), user.full_name, user.company_name) == (True, "", "")
    assert not user.is_active
    assert not user.has_usable_password()
    assert Entitlement.objects.get(order=ada).revoked_at is not None


@pytest.mark.django_db
def test_events_emails_and_support_mail_no_longer_name_them(ada):
    Alert.objects.create(kind="email", key="k", summary=f"Email to {ADDRESS} bounced", order=ada)
    erase()

    for event in ada.events.all():
        assert ADDRESS not in f"{event.reason} {event.actor} {event.data}"
    assert not OutboundEmail.objects.filter(recipient=ADDRESS).exists()
    message = InboundMessage.objects.get()
    assert (message.from_email.startswith("erased-"), message.from_name, message.body) == (True, "", "")
    assert ADDRESS not in Alert.objects.get().summary


@pytest.mark.django_db
def test_stripe_keeps_no_personal_field_and_carries_the_erasure_mark(ada):
    erase()

    payment = stripe.PaymentIntent.retrieve(ada.stripe_payment_intent_id)
    assert payment.receipt_email is None
    assert "email" not in payment.metadata
    assert payment.metadata["backstop_erased"]
    assert payment.metadata["reference"] == ada.reference
    assert "email" not in stripe.Charge.retrieve(ada.stripe_charge_id).metadata


@pytest.mark.django_db(transaction=True)
def test_the_database_holds_the_address_nowhere_after_the_erasure(ada, client, settings):
    settings.AXES_ENABLED = True  # sign-in attempts are logged by the address typed
    client.post(reverse("admin:login"), {"username": ADDRESS, "password": "a wrong guess"})
    assert AccessAttempt.objects.filter(username=ADDRESS).exists()
    assert ADDRESS in database_text()  # where it was: orders, events, emails, the mirror, webhook bodies
    erase()

    text = database_text()
    assert ADDRESS not in text.lower()
    assert "Ada Lovelace" not in text


@pytest.mark.django_db(transaction=True)
def test_running_it_again_finds_nothing_left(ada):
    erase()

    with pytest.raises(CommandError, match="Nothing is held"):
        erase()


@pytest.mark.django_db(transaction=True)
def test_a_restore_of_an_older_backup_and_reconcile_since_all_erase_them_again(ada, tmp_path):
    dump = tmp_path / "before-the-erasure.dump"
    backup(dump)
    erase()

    restore(dump)
    assert Order.objects.get(reference=ada.reference).email == ADDRESS  # the restore is real
    call_command("reconcile", "--since", "all", stdout=StringIO(), stderr=StringIO())

    assert Order.objects.get(reference=ada.reference).email.startswith("erased-")
    assert ADDRESS not in database_text().lower()


@pytest.mark.django_db
def test_a_backup_without_the_order_does_not_recreate_the_person(ada):
    erase()
    # A backup older than the purchase: the order and everything of theirs is not there.
    Entitlement.objects.all().delete()
    Order.objects.all().delete()

    call_command("reconcile", "--since", "all", stdout=StringIO(), stderr=StringIO())

    assert not Order.objects.filter(reference=ada.reference).exists()
    assert not Alert.objects.filter(kind="unmatched_charge").exists()
    assert not User.objects.filter(email=ADDRESS).exists()


def grant(codename: str) -> None:
    User.objects.get(email="ana@backstop.localhost").user_permissions.add(Permission.objects.get(codename=codename))


def erase_action(console, order, **confirm):
    return console.post(reverse("admin:billing_order_changelist"),
                        {"action": "erase_customer", "_selected_action": [order.id], **confirm})


@pytest.mark.django_db
def test_the_console_says_what_it_would_erase_before_it_does(ada, console):
    grant("erase_customer")

    response = erase_action(console, ada)

    assert b"Type their address to confirm" in response.content
    assert ada.reference.encode() in response.content
    assert Order.objects.get(pk=ada.pk).email == ADDRESS


@pytest.mark.django_db
def test_the_console_erases_once_the_address_is_typed(ada, console):
    grant("erase_customer")

    erase_action(console, ada, confirm_email="Ada@Example.com")

    assert Order.objects.get(pk=ada.pk).email.startswith("erased-")
    assert ErasureRecord.objects.get().actor == "support:ana@backstop.localhost"


@pytest.mark.django_db
def test_the_console_erases_nothing_when_another_address_is_typed(ada, console):
    grant("erase_customer")

    response = erase_action(console, ada, confirm_email="someone@example.com")

    assert b"nothing was erased" in response.content
    assert Order.objects.get(pk=ada.pk).email == ADDRESS


@pytest.mark.django_db
def test_the_console_offers_no_erasure_without_the_permission(ada, console):
    erase_action(console, ada, confirm_email=ADDRESS)

    assert Order.objects.get(pk=ada.pk).email == ADDRESS


@pytest.mark.django_db
def test_it_is_refused_while_money_of_theirs_is_still_moving(stripe_emulator):
    order = OrderFactory(email=ADDRESS, state=OrderState.REFUND_PENDING)

    with pytest.raises(CommandError, match=f"Not erased: {order.reference} is refund in progress"):
        erase()

    assert Order.objects.get(pk=order.pk).email == ADDRESS


@pytest.mark.django_db
def test_what_a_person_confirms_names_the_payments_at_stripe_of_an_address_without_a_stripe_customer(ada):
    lines = customer_erasure_plan(ADDRESS).describe()

    assert "at Stripe: the address on 1 payment(s), each marked backstop_erased" in lines


@pytest.mark.django_db
def test_the_stripe_customer_of_an_address_that_came_back_keeps_no_personal_field(ada):
    later = paid_order(email=ADDRESS)  # a second order: on the address's Stripe Customer (decision 0034)
    later = services.order_settle(order_id=later.id, actor="webhook", reason="payment_intent.succeeded")

    erase()

    customer = stripe.Customer.retrieve(later.stripe_customer_id)
    assert (customer.email, customer.name, customer.phone, customer.address) == (None, None, None, None)
    assert "backstop_email" not in customer.metadata
    assert customer.metadata["backstop_erased"]
    assert stripe.PaymentIntent.retrieve(ada.stripe_payment_intent_id).metadata["backstop_erased"]


@pytest.mark.django_db
def test_a_payment_they_never_finished_is_canceled_so_it_cannot_be_completed_after(stripe_emulator):
    PlanFactory()
    order = order_with_payment_intent(email=ADDRESS)

    erase()

    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status == "canceled"
    assert Order.objects.get(pk=order.pk).state == OrderState.CANCELED


@pytest.mark.django_db
def test_a_browser_that_proved_their_address_forgets_it(ada):
    browser = SessionStore()
    browser[SESSION_PROVED] = [ADDRESS]
    browser.create()
    stranger = SessionStore()
    stranger[SESSION_PROVED] = ["grace@example.com"]
    stranger.create()

    erase()

    assert not SessionStore().exists(browser.session_key)
    assert SessionStore().exists(stranger.session_key)


@pytest.mark.django_db(transaction=True)
def test_what_stripe_still_holds_of_them_never_comes_back_into_the_mirror(ada):
    erase()
    assert stripe.Charge.retrieve(ada.stripe_charge_id).receipt_email == ADDRESS  # Stripe's to keep

    mirror.stripe_mirror_sync(since=0)

    assert ADDRESS not in database_text().lower()


@pytest.mark.django_db(transaction=True)
def test_a_mirror_rebuilt_from_stripe_after_the_erasure_holds_nothing_of_them(ada):
    erase()
    for model in (djstripe_models.Charge, djstripe_models.PaymentIntent, djstripe_models.PaymentMethod,
                  djstripe_models.BalanceTransaction, djstripe_models.Customer):
        model.objects.all().delete()  # every row new to the pass: written in one INSERT per kind

    mirror.stripe_mirror_sync(since=0)

    assert djstripe_models.Charge.objects.filter(id=ada.stripe_charge_id).exists()
    assert ADDRESS not in database_text().lower()


@pytest.mark.django_db
def test_someone_who_only_wrote_to_support_can_be_erased(stripe_emulator):
    InboundMessage.objects.create(message_id="pm-2", from_email="Bo@Example.com", from_name="Bo", body="Hello")

    erase("bo@example.com")

    message = InboundMessage.objects.get()
    assert (message.from_email.startswith("erased-"), message.from_name, message.body) == (True, "", "")
