"""Extend gives the customer days and tells them: an email through the outbox, queued in the
transaction that adds the days, saying how many days and the new end of all their paid time."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.selectors import access_until
from billing import services
from outbox import services as outbox_services
from outbox.models import OutboundEmail
from support import selectors as support_selectors
from support import services as support_services
from tests.billing.helpers import paid_order
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(stripe_emulator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.order_settle(order_id=paid_order(email="ada@example.com", full_name="Ada Lovelace").id,
                                     actor="customer")


def extend(order, *, days=30, user=None):
    return support_services.entitlement_extend(
        order_id=order.id, user=user or StaffFactory(full_name="Ana Ruiz"), days=days, reason="Outage on Dec 3",
        key=uuid.uuid4(), seen=support_selectors.order_case_version(order.id))


def extension_emails(mailoutbox):
    return [m for m in mailoutbox if m.tags == ["access_extended"]]


def test_extending_access_owes_the_customer_an_email_in_the_same_transaction(order):
    extend(order)

    email = order.emails.get(kind="access_extended")
    assert email.recipient == "ada@example.com"


def test_the_email_says_how_many_days_were_added_and_the_new_end_of_the_paid_time(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        extend(order, days=30)

    (message,) = extension_emails(mailoutbox)
    end = f"{timezone.localtime(access_until(order.user)):%B %-d, %Y}"
    assert message.to == ["ada@example.com"]
    assert "30 days" in message.subject
    assert end in message.subject
    assert "Ana from our support team added 30 days to your" in message.body
    assert f"Your paid time now ends on {end}." in message.body
    assert "Nothing was charged for this." in message.body
    assert end in message.alternatives[0][0]


def test_the_email_never_says_the_customer_asked_for_it(order, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        extend(order)

    (message,) = extension_emails(mailoutbox)
    assert "as you asked" not in message.body.lower()
    assert "your request" not in message.body.lower()


def test_two_extensions_send_two_emails_each_with_its_own_days_and_end(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        extend(order, days=10)
    first_end = access_until(order.user)
    with django_capture_on_commit_callbacks(execute=True):
        extend(order, days=5)

    first, second = extension_emails(mailoutbox)
    assert "10 days" in first.subject
    assert f"{timezone.localtime(first_end):%B %-d, %Y}" in first.subject
    second_end = timezone.localtime(first_end + timedelta(days=5))
    assert "5 days" in second.subject
    assert f"{second_end:%B %-d, %Y}" in second.subject


def test_an_extension_that_is_refused_owes_no_email(order):
    services.order_refund(order_id=order.id, actor="customer", reason="Changed my mind")

    with pytest.raises(ValueError, match="no active access"):
        extend(order)

    assert not OutboundEmail.objects.filter(kind="access_extended").exists()



def test_the_email_row_holds_the_days_and_the_new_end_as_the_extension_decided_them(order):
    extend(order, days=30)

    email = order.emails.get(kind="access_extended")
    assert email.facts == {"days": 30, "ends_at": access_until(order.user).isoformat()}


def test_the_email_rows_dedupe_key_is_only_the_order_and_the_console_action(order):
    key = uuid.uuid4()

    support_services.entitlement_extend(order_id=order.id, user=StaffFactory(), days=30, reason="Outage",
                                        key=key, seen=support_selectors.order_case_version(order.id))

    email = order.emails.get(kind="access_extended")
    assert email.dedupe_key == f"extended:{order.id}:{key}"


def test_an_email_sent_after_a_later_extension_still_states_its_own_days_and_end(order, mailoutbox):
    extend(order, days=10)
    first_end = access_until(order.user)
    extend(order, days=5)

    first = OutboundEmail.objects.filter(kind="access_extended").order_by("id").first()
    outbox_services.outbound_email_send(email_id=first.id)

    (message,) = extension_emails(mailoutbox)
    assert "10 days" in message.subject
    assert f"{timezone.localtime(first_end):%B %-d, %Y}" in message.subject
