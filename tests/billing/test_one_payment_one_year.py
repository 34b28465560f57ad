"""Every payment buys something: a second year while the first runs is added after it, and a refund
takes back only the time that payment bought, in words that say what access remains."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from sesame.utils import get_query_string

from accounts.models import Entitlement
from accounts.periods import add_months
from billing import services
from billing.models import Order, OrderState
from billing.tokens import order_status_token
from tests.billing.helpers import at_once, paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def active_order(email="ana@example.com", **fields):
    order = paid_order(email=email, **fields)
    return services.order_settle(order_id=order.id, actor="customer")


def refund(order, reason="Bought twice by mistake."):
    return services.order_refund(order_id=order.id, actor="support:sam@backstop.localhost", reason=reason)


def sent(mailoutbox, order, kind_word):
    return [m for m in mailoutbox if m.to == [order.email] and kind_word in m.subject.lower()
            and order.reference in m.subject]


def status_text(client, order):
    return client.get(reverse("billing:status", kwargs={"token": order_status_token(order)})).content.decode()


def day(moment):
    return f"{timezone.localtime(moment):%B %-d, %Y}"


def test_a_second_year_bought_while_the_plan_runs_starts_where_the_first_ends(stripe_emulator):
    first = active_order()

    second = active_order()

    one, two = first.entitlement, Entitlement.objects.get(order=second)
    assert two.starts_at == one.ends_at
    assert two.ends_at == add_months(one.ends_at, 12)
    assert one.user_id == two.user_id


def test_the_second_years_status_page_says_what_it_adds_and_the_new_end(client, stripe_emulator):
    first = active_order()
    second = active_order()
    two = Entitlement.objects.get(order=second)
    # Its dates follow another payment's end: shown to a session that proved the address.
    client.get(reverse("accounts:signin") + get_query_string(second.user))

    page = status_text(client, second)

    assert f"It adds 12 months after the time you had already paid for: {day(first.entitlement.ends_at)} to " \
           f"{day(two.ends_at)}" in page


def test_the_second_years_confirmation_says_what_it_covers(stripe_emulator, mailoutbox,
                                                            django_capture_on_commit_callbacks):
    first = active_order()
    with django_capture_on_commit_callbacks(execute=True):
        second = active_order()

    (confirmation,) = [m for m in mailoutbox if "all set" in m.subject.lower() or "confirm" in m.subject.lower()][-1:]
    two = Entitlement.objects.get(order=second)
    covers = f"{two.starts_at:%B %-d, %Y} to {two.ends_at:%B %-d, %Y}"
    assert f"This payment covers: {covers}" in confirmation.body
    assert covers in confirmation.alternatives[0][0]
    assert first.entitlement.ends_at == two.starts_at


@pytest.mark.django_db(transaction=True)
def test_two_years_activating_at_the_same_moment_stack_instead_of_overlapping(stripe_emulator):
    first, second = paid_order(email="ana@example.com"), paid_order(email="ana@example.com")
    orders = iter([first, second])

    errors = at_once(lambda: services.order_settle(order_id=next(orders).id, actor="webhook"))

    assert errors == []
    one, two = Entitlement.objects.order_by("id")
    assert two.starts_at == one.ends_at


def test_refunding_the_stacked_year_leaves_the_first_year_as_it_was(stripe_emulator):
    first = active_order()
    second = active_order()
    ends_before = first.entitlement.ends_at

    refund(second)

    first.entitlement.refresh_from_db()
    assert first.entitlement.revoked_at is None
    assert first.entitlement.ends_at == ends_before
    assert Entitlement.objects.get(order=second).revoked_at is not None


def test_refunding_the_stacked_year_tells_the_customer_the_plan_stays_until_the_first_years_end(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    first = active_order()
    second = active_order()

    with django_capture_on_commit_callbacks(execute=True):
        refund(second)

    (message,) = sent(mailoutbox, second, "refund")
    until = day(first.entitlement.ends_at)
    assert f"You keep your Annual plan until {until}" in message.body
    assert "has ended" not in message.body
    assert until in message.alternatives[0][0]
    assert "has ended" not in message.alternatives[0][0]


def test_refunding_the_current_year_moves_the_stacked_year_up_to_when_it_was_paid(stripe_emulator):
    first = active_order()
    second = active_order()

    refund(first)

    two = Entitlement.objects.get(order=second)
    second.refresh_from_db()
    assert two.starts_at == second.paid_at
    assert two.ends_at == add_months(second.paid_at, 12)
    assert second.events.filter(reason__startswith="Time moved up").exists()


def test_access_ends_and_the_customer_is_told_so_only_when_no_paid_time_is_left(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    first = active_order()
    second = active_order()

    with django_capture_on_commit_callbacks(execute=True):
        refund(first)
    with django_capture_on_commit_callbacks(execute=True):
        refund(second)

    (first_email,) = sent(mailoutbox, first, "refund")
    (last_email,) = sent(mailoutbox, second, "refund")
    assert "You keep your Annual plan until" in first_email.body
    assert "Your Annual plan has ended with this refund." in last_email.body
    assert "has ended with this refund" in last_email.alternatives[0][0]


def test_the_refunded_years_status_page_says_what_access_remains(client, stripe_emulator):
    first = active_order()
    second = active_order()
    refund(second)
    second.refresh_from_db()
    assert second.state == OrderState.REFUNDED

    page = status_text(client, second)

    assert f"Your Annual plan stays active until {day(first.entitlement.ends_at)}" in page


def test_a_refund_to_someone_who_never_had_access_says_nothing_about_access_ending(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    order = paid_order(email="bo@example.com")
    OrderFactory._meta.model.objects.filter(pk=order.pk).update(amount_cents=19900)  # money held for a person
    services.order_settle(order_id=order.id, actor="webhook")

    with django_capture_on_commit_callbacks(execute=True):
        services.order_refund(order_id=order.id, actor="sweep", reason=(
            "We could not finish setting up your account in time, so, as promised, we refunded you automatically."))

    (message,) = sent(mailoutbox, order, "refund")
    assert not Entitlement.objects.filter(order=order).exists()
    for body in (message.body, message.alternatives[0][0]):
        assert "ended" not in body
        assert "access" not in body.lower()


def test_an_expired_year_does_not_push_a_new_one_into_the_future(stripe_emulator):
    first = active_order()
    Entitlement.objects.filter(order=first).update(starts_at=timezone.now() - timedelta(days=400),
                                                   ends_at=timezone.now() - timedelta(days=35))

    second = active_order()

    two = Entitlement.objects.get(order=second)
    second.refresh_from_db()
    assert two.starts_at == second.paid_at


def test_each_payment_of_a_stacked_pair_has_its_own_confirmation(stripe_emulator):
    first = active_order()
    second = active_order()

    for order in (first, second):
        assert order.emails.filter(kind="confirmation").count() == 1


def test_extending_the_first_of_two_stacked_years_moves_the_second_along_so_no_day_is_lost(
    stripe_emulator, django_capture_on_commit_callbacks
):
    # Found by make interleavings: the extension overlapped the second year, so it added nothing.
    from accounts.selectors import access_until
    from support import selectors as support_selectors
    from support import services as support_services
    from tests.factories import StaffFactory

    with django_capture_on_commit_callbacks(execute=True):
        first = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="customer")
        second = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="customer")
    until = access_until(first.user)

    support_services.entitlement_extend(order_id=first.id, user=StaffFactory(), days=30, reason="Outage",
                                        key=uuid.uuid4(), seen=support_selectors.order_case_version(first.id))

    first_period, second_period = (Entitlement.objects.get(order=o) for o in (first, second))
    assert access_until(first.user) == until + timedelta(days=30)
    assert second_period.starts_at == first_period.ends_at


def test_refunding_the_first_year_keeps_the_days_support_added_to_the_second(
    stripe_emulator, django_capture_on_commit_callbacks
):
    from accounts.selectors import access_until
    from support import selectors as support_selectors
    from support import services as support_services
    from tests.factories import StaffFactory

    with django_capture_on_commit_callbacks(execute=True):
        first = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="customer")
        second = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="customer")
    support_services.entitlement_extend(order_id=second.id, user=StaffFactory(), days=30, reason="Outage",
                                        key=uuid.uuid4(), seen=support_selectors.order_case_version(second.id))

    with django_capture_on_commit_callbacks(execute=True):
        services.order_refund(order_id=first.id, actor="customer", reason="Bought twice by mistake")

    second_period = Entitlement.objects.get(order=second)
    assert second_period.starts_at == Order.objects.get(pk=second.pk).paid_at
    assert access_until(first.user) == add_months(second_period.starts_at, 12) + timedelta(days=30)
