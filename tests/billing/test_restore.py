"""Last night's backup, restored for real (pg_dump / pg_restore), then `reconcile --since all`.

Everyone who paid since the backup ends active, nobody is charged again, and nobody gets the same
email twice, although the outbox rows that said so went with the restore: the sender notes each
once-per-order email on the PaymentIntent, which the restore cannot take back
(docs/decisions/0012-what-was-sent-survives-a-restore.md).
"""

import subprocess
from datetime import timedelta
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.db import connection, connections

from accounts.models import Entitlement
from billing import services
from billing.models import Order, OrderState
from outbox import services as outbox_services
from outbox.models import OutboundEmail
from tests.billing.helpers import order_with_payment_intent, paid_order, pay
from tests.factories import PlanFactory

PG_BIN = "/usr/lib/postgresql/15/bin"


@pytest.fixture(autouse=True)
def no_grace(settings):
    settings.RECONCILE_GRACE = timedelta(0)


def _pg_args() -> list[str]:
    db = connection.settings_dict
    return ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"] or "postgres"]


def backup(path) -> None:
    subprocess.run([f"{PG_BIN}/pg_dump", *_pg_args(), "--format=custom", f"--file={path}",
                    connection.settings_dict["NAME"]], check=True)


def restore(path) -> None:
    connections.close_all()  # pg_restore --clean drops every table: nobody may hold one
    subprocess.run([f"{PG_BIN}/pg_restore", *_pg_args(), "--clean", "--if-exists", "--single-transaction",
                    "--no-owner", f"--dbname={connection.settings_dict['NAME']}", str(path)], check=True)


def settled(order: Order) -> Order:
    return services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")


def customer_emails(mailoutbox) -> list[tuple[str, str]]:
    return sorted((message.to[0], message.subject) for message in mailoutbox)


@pytest.fixture
def night_and_day(stripe_emulator, tmp_path, mailoutbox):
    """Before the backup: Ada is active and Grace has reached the payment step. After it: Grace pays,
    Linus buys from scratch, and Ada is refunded. Then the database is restored to the backup."""
    PlanFactory()
    ada = settled(paid_order(email="ada@example.com"))
    grace = order_with_payment_intent(email="grace@example.com")
    dump = tmp_path / "last-night.dump"
    backup(dump)

    pay(grace)
    settled(grace)
    linus = settled(paid_order(email="linus@example.com"))
    services.order_refund(order_id=ada.id, actor="support:amy@backstop.localhost", reason="Asked for a refund")
    before = {"emails": customer_emails(mailoutbox),
              "charges": [c.id for c in stripe.Charge.list(limit=100).auto_paging_iter()],
              "refunds": [r.id for r in stripe.Refund.list(limit=100).auto_paging_iter()]}
    references = {"ada": ada.reference, "grace": grace.reference, "linus": linus.reference}

    restore(dump)
    assert not Order.objects.filter(reference=linus.reference).exists()  # the restore is real
    out = StringIO()
    call_command("reconcile", "--since", "all", stdout=out, stderr=out)
    return references, before


@pytest.mark.django_db(transaction=True)
def test_everyone_who_paid_since_the_backup_is_active_with_one_entitlement_after_the_restore(night_and_day):
    references, _ = night_and_day
    for name in ("grace", "linus"):
        order = Order.objects.get(reference=references[name])
        assert order.state == OrderState.ACTIVE, name
        assert Entitlement.objects.filter(order=order).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refund_made_since_the_backup_is_known_again_after_the_restore(night_and_day):
    references, _ = night_and_day
    assert Order.objects.get(reference=references["ada"]).state == OrderState.REFUNDED


@pytest.mark.django_db(transaction=True)
def test_nobody_is_charged_or_refunded_again_after_the_restore(night_and_day):
    _, before = night_and_day
    assert [c.id for c in stripe.Charge.list(limit=100).auto_paging_iter()] == before["charges"]
    assert [r.id for r in stripe.Refund.list(limit=100).auto_paging_iter()] == before["refunds"]


@pytest.mark.django_db(transaction=True)
def test_nobody_gets_the_same_email_twice_after_the_restore(night_and_day, mailoutbox):
    _, before = night_and_day
    assert customer_emails(mailoutbox) == before["emails"]
    assert {kind for kind, in OutboundEmail.objects.values_list("kind")} >= {"confirmation", "refund"}


@pytest.mark.django_db(transaction=True)
def test_the_timeline_says_the_email_was_not_sent_again_and_why(night_and_day):
    references, _ = night_and_day
    linus = Order.objects.get(reference=references["linus"])
    assert linus.emails.get(kind="confirmation").status == OutboundEmail.Status.SENT
    assert linus.events.filter(reason__contains="already sent on").filter(
        reason__contains="not sent again").exists()


@pytest.mark.django_db
def test_a_sent_confirmation_is_noted_on_its_payment_intent(stripe_emulator, mailoutbox,
                                                            django_capture_on_commit_callbacks):
    PlanFactory()
    order = paid_order(email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        settled(order)

    email = order.emails.get(kind="confirmation")
    note = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).metadata["backstop_sent_confirmation"]
    assert email.followed_up_at is not None
    assert note.endswith(f" {email.esp_message_id}")
    assert note.startswith(f"{email.sent_at:%Y-%m-%d}")


@pytest.mark.django_db
def test_a_note_stripe_could_not_take_is_written_by_the_next_dispatch(stripe_emulator, emulator_control, mailoutbox,
                                                                      django_capture_on_commit_callbacks):
    PlanFactory()
    order = paid_order(email="ada@example.com")
    emulator_control.fail_next(method="POST", path=f"/v1/payment_intents/{order.stripe_payment_intent_id}",
                               count=10)
    with django_capture_on_commit_callbacks(execute=True):
        settled(order)
    email = order.emails.get(kind="confirmation")
    assert (email.status, email.followed_up_at) == (OutboundEmail.Status.SENT, None)
    emulator_control.clear_faults()
    OutboundEmail.objects.filter(pk=email.pk).update(sent_at=email.sent_at - timedelta(minutes=2))

    assert outbox_services.outbound_email_dispatch_due()["followed_up"] == 1
    assert "backstop_sent_confirmation" in stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).metadata
    assert len(mailoutbox) == 1

