from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import OrderEvent
from outbox import services
from outbox.models import OutboundEmail
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def owed_email(kind="status_link", **order_fields):
    order = OrderFactory(**order_fields)
    return OutboundEmail.objects.create(about=order, kind=kind, recipient=order.email,
                                        next_attempt_at=timezone.now())


def test_a_sent_email_records_the_esp_message_id_and_status(mailoutbox):
    email = owed_email()

    services.outbound_email_send(email_id=email.id)

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.esp_message_id == str(mailoutbox[0].anymail_status.message_id)
    assert email.esp_status == "sent"
    assert mailoutbox[0].metadata == {"outbound_email_id": str(email.id),
                                      "order_reference": email.about.reference}


def test_an_email_already_sent_is_never_sent_again(mailoutbox):
    email = owed_email()

    services.outbound_email_send(email_id=email.id)
    services.outbound_email_send(email_id=email.id)

    assert len(mailoutbox) == 1


def test_a_failing_mail_server_leaves_the_email_owed_with_a_later_retry(settings):
    # A real SMTP client against a port where nothing listens: the connection is refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    email = owed_email()

    services.outbound_email_send(email_id=email.id)

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.PENDING
    assert email.attempts == 1
    assert "ConnectionRefused" in email.last_error
    assert email.next_attempt_at > timezone.now()


def test_after_the_last_retry_the_email_is_given_up_for_a_person_to_handle(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    email = owed_email()
    OutboundEmail.objects.filter(pk=email.pk).update(attempts=len(services.EMAIL_RETRY_DELAYS))

    services.outbound_email_send(email_id=email.id)

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED


def test_the_dispatcher_sends_emails_whose_retry_time_has_come(mailoutbox):
    due = owed_email()
    later = owed_email()
    OutboundEmail.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    result = services.outbound_email_dispatch_due()

    assert result["sent"] == 1
    assert [m.to for m in mailoutbox] == [[due.recipient]]


def test_an_interrupted_send_is_flagged_uncertain_instead_of_sent_twice(mailoutbox):
    email = owed_email()
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.SENDING, claimed_at=timezone.now() - timedelta(minutes=10))

    result = services.outbound_email_dispatch_due()

    email.refresh_from_db()
    assert result["uncertain"] == 1
    assert email.status == OutboundEmail.Status.UNCERTAIN
    assert mailoutbox == []


def test_the_database_refuses_a_second_confirmation_row_for_one_order():
    from django.db import IntegrityError

    email = owed_email(kind="confirmation")

    with pytest.raises(IntegrityError):
        OutboundEmail.objects.create(about=email.about, kind="confirmation",
                                     recipient=email.recipient)


def test_sending_is_recorded_on_the_order_timeline():
    email = owed_email()

    services.outbound_email_send(email_id=email.id)

    assert OrderEvent.objects.filter(order=email.about, reason__startswith="Email sent").exists()


def test_an_owed_email_keeps_the_facts_it_states_as_given_when_it_was_owed():
    order = OrderFactory()

    email = services.outbound_email_queue(about=order, kind="access_extended",
                                          facts={"days": 7, "ends_at": "2027-01-02T03:04:05+00:00"})

    email.refresh_from_db()
    assert email.facts == {"days": 7, "ends_at": "2027-01-02T03:04:05+00:00"}
