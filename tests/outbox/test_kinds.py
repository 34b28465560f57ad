"""The kinds of email are registered by the apps that send them (outbox/kinds.py), in their ready()."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from outbox import kinds, services
from outbox.kinds import EmailKind, UnknownEmailKind
from outbox.models import OutboundEmail
from tests.factories import OrderFactory, UserFactory


def test_each_app_registers_the_kinds_it_sends():
    assert [kind.name for kind in kinds.registered()] == [
        "access_extended", "already_yours", "confirmation", "password_reset", "payment_received", "plan_ended",
        "refund", "renewal_reminder", "signin_link", "status_link", "support_reply"]


def test_the_console_names_each_kind_as_its_app_labels_it():
    assert (kinds.label("confirmation"), kinds.label("password_reset"), kinds.label("support_reply")) == (
        "Order confirmation", "Password link", "Reply from support")


def test_a_kind_no_app_registers_is_named_by_its_bare_name():
    assert kinds.label("fax_cover_sheet") == "fax_cover_sheet"


def test_only_billings_three_order_emails_are_once_per_subject():
    assert kinds.once_per_subject() == ["confirmation", "payment_received", "refund"]


def test_registering_a_kind_again_the_same_way_changes_nothing():
    kinds.register(kinds.get("confirmation"))

    assert kinds.get("confirmation").once_per_subject


def test_registering_a_kind_twice_differently_is_refused():
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        kinds.register(EmailKind("confirmation", "Another confirmation", build=lambda email: None))


@pytest.mark.django_db
def test_owing_an_email_of_a_kind_no_app_registered_is_refused():
    with pytest.raises(UnknownEmailKind, match="fax_cover_sheet"):
        services.outbound_email_queue(kind="fax_cover_sheet", about=OrderFactory())

    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_a_password_link_is_about_an_account_not_an_order():
    with pytest.raises(ValueError, match="about an account"):
        services.outbound_email_queue(kind="password_reset", about=OrderFactory())


@pytest.mark.django_db
def test_an_order_email_is_about_its_order_not_an_account():
    with pytest.raises(ValueError, match="about something"):
        services.outbound_email_queue(kind="status_link", user=UserFactory())


@pytest.mark.django_db
def test_a_once_per_subject_email_carries_the_key_that_refuses_a_second():
    order = OrderFactory()

    email = services.outbound_email_queue(kind="confirmation", about=order)

    assert email.dedupe_key == f"billing.order:{order.id}:confirmation"


@pytest.mark.django_db
def test_a_row_whose_kind_no_app_registers_is_retried_not_sent():
    order = OrderFactory()
    email = OutboundEmail.objects.create(about=order, kind="fax_cover_sheet", recipient=order.email,
                                         next_attempt_at=timezone.now())

    services.outbound_email_send(email_id=email.id)

    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.PENDING, 1)
    assert "fax_cover_sheet" in email.last_error
