"""accounts.access: every change to a customer's paid time, the signals it sends, and the door
(`has_access`, `@access_required`, `AccessRequiredMixin`, the demo product at /app/)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from accounts import access
from accounts.decorators import access_required
from accounts.models import Entitlement
from accounts.periods import add_months
from billing import services
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def active_order(**fields):
    return services.order_settle(order_id=paid_order(**fields).id, actor="webhook")


def refund(order):
    return services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="Asked to")


def granted(user, *, paid_at):
    """A period for a paid order, granted as billing does, without Stripe (for dates in the past)."""
    order = OrderFactory(email=user.email, user=user, paid_at=paid_at)
    with transaction.atomic():
        return access.access_grant(user=user, order=order, plan=order.plan, paid_at=paid_at)


@pytest.fixture
def heard():
    """Every access signal sent, as (event, email, access_until)."""
    events = []
    receivers = {}
    for name, signal in access.SIGNALS.items():
        def receiver(sender, user, entitlement, access_until, name=name, **kwargs):
            events.append((name, user.email, access_until))
        receivers[name] = receiver
        signal.connect(receiver, weak=False, dispatch_uid=f"test-{name}")
    yield events
    for name, signal in access.SIGNALS.items():
        signal.disconnect(dispatch_uid=f"test-{name}")


def test_a_settled_payment_grants_access_until_the_end_of_its_period(stripe_emulator):
    order = active_order(email="ada@example.com")

    entitlement = Entitlement.objects.get(order=order)
    assert access.has_access(order.user)
    assert access.access_until(order.user) == entitlement.ends_at == add_months(order.paid_at, 12)
    assert [p.order_id for p in access.access_periods(order.user)] == [order.id]


def test_nobody_signed_out_has_access():
    assert access.has_access(AnonymousUser()) is False


def test_a_payment_and_its_refund_send_access_granted_then_access_revoked_after_commit(
    stripe_emulator, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = active_order(email="ada@example.com")
    until = Entitlement.objects.get(order=order).ends_at
    with django_capture_on_commit_callbacks(execute=True):
        refund(order)

    assert heard == [("access.granted", "ada@example.com", until), ("access.revoked", "ada@example.com", None)]


def test_a_payment_granted_long_after_its_year_ran_out_is_announced_with_no_access_left(
    heard, django_capture_on_commit_callbacks
):
    user = UserFactory(email="ada@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        granted(user, paid_at=timezone.now() - timedelta(days=400))  # adopted from Stripe a year late

    assert heard == [("access.granted", "ada@example.com", None)]


def test_a_second_year_is_announced_with_the_end_of_the_second_year(heard, django_capture_on_commit_callbacks):
    user = UserFactory(email="ada@example.com")
    first = granted(user, paid_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        second = granted(user, paid_at=timezone.now())

    assert second.ends_at > first.ends_at
    assert heard == [("access.granted", "ada@example.com", second.ends_at)]


def test_the_access_granted_signal_reads_nothing_back_after_the_commit(
    heard, django_capture_on_commit_callbacks, django_assert_num_queries
):
    user = UserFactory(email="ada@example.com")
    with django_capture_on_commit_callbacks() as after_commit:
        entitlement = granted(user, paid_at=timezone.now())

    with django_assert_num_queries(0):  # was 1: the new end read back with access_until()
        for callback in after_commit:
            callback()

    assert heard == [("access.granted", "ada@example.com", entitlement.ends_at)]


def test_a_change_that_rolls_back_sends_no_signal(heard, django_capture_on_commit_callbacks):
    user = UserFactory()
    order = OrderFactory(email=user.email, user=user, paid_at=timezone.now())

    def grant_then_fail():
        with transaction.atomic():
            access.access_grant(user=user, order=order, plan=order.plan, paid_at=order.paid_at)
            raise RuntimeError("the settle failed after the grant")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        grant_then_fail()

    assert heard == []
    assert not Entitlement.objects.filter(order=order).exists()


def test_support_extending_sends_access_extended_with_the_new_end(heard, django_capture_on_commit_callbacks):
    user = UserFactory(email="ada@example.com")
    entitlement = granted(user, paid_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.entitlement_add_days(order_id=entitlement.order_id, days=30, actor="support:ana", reason="Outage")

    assert heard == [("access.extended", "ada@example.com", entitlement.ends_at + timedelta(days=30))]


def test_a_period_that_ran_out_is_marked_once_and_access_ended_is_sent_once(
    heard, django_capture_on_commit_callbacks
):
    user = UserFactory(email="ada@example.com")
    entitlement = granted(user, paid_at=timezone.now() - timedelta(days=400))
    heard.clear()

    with django_capture_on_commit_callbacks(execute=True):
        first, second = access.access_ends_mark(), access.access_ends_mark()

    assert (first, second) == (1, 0)
    assert heard == [("access.ended", "ada@example.com", None)]
    entitlement.refresh_from_db()
    assert entitlement.ended_at is not None


def test_a_period_followed_by_a_stacked_one_ends_without_ending_access(heard, django_capture_on_commit_callbacks):
    user = UserFactory()
    first = granted(user, paid_at=timezone.now() - timedelta(days=370))
    granted(user, paid_at=timezone.now() - timedelta(days=369))  # stacked: starts where the first ends
    heard.clear()

    with django_capture_on_commit_callbacks(execute=True):
        ended = access.access_ends_mark()

    assert ended == 0
    assert heard == []
    first.refresh_from_db()
    assert first.ended_at is not None
    assert access.has_access(user)


def test_extending_a_plan_that_had_ended_makes_its_next_end_news_again(django_capture_on_commit_callbacks):
    user = UserFactory()
    entitlement = granted(user, paid_at=timezone.now() - timedelta(days=400))
    access.access_ends_mark()

    with transaction.atomic():
        services.entitlement_add_days(order_id=entitlement.order_id, days=7, actor="support:ana", reason="Goodwill")

    entitlement.refresh_from_db()
    assert entitlement.ended_at is None
    assert access.access_ends_mark(now=timezone.now() + timedelta(days=8)) == 1


# --- The door ------------------------------------------------------------------------------------


def test_the_product_sends_someone_not_signed_in_to_sign_in_and_back(client):
    response = client.get("/app/")

    assert response.status_code == 302
    assert response["Location"] == "/account/login/?next=/app/"


def test_the_product_tells_a_signed_in_customer_without_a_plan_that_they_have_none_and_how_to_buy(client):
    client.force_login(UserFactory())

    response = client.get("/app/")

    assert response.status_code == 403
    page = response.content.decode()
    assert "This account has no paid plan." in page
    assert 'href="/checkout/" id="app-buy"' in page


def test_the_product_opens_for_a_customer_with_paid_access(client, stripe_emulator):
    order = active_order()
    client.force_login(order.user)

    response = client.get("/app/")

    assert response.status_code == 200
    assert "Welcome to the product" in response.content.decode()


def test_after_a_refund_the_product_closes_and_says_the_plan_was_closed_with_a_way_to_renew(client, stripe_emulator):
    order = refund(active_order())
    client.force_login(order.user)

    response = client.get("/app/")

    assert response.status_code == 403
    page = response.content.decode()
    assert "Your Annual plan was closed on" in page
    assert 'id="app-renew"' in page


def test_the_decorator_lets_in_only_people_with_paid_access():
    @access_required
    def product(request):
        return HttpResponse("the product")

    request = RequestFactory().get("/tools/")
    request.user = UserFactory()
    refused = product(request)
    granted(request.user, paid_at=timezone.now())

    assert refused.status_code == 403
    assert product(request).content == b"the product"


def test_setup_schedules_installs_the_check_for_ended_periods_and_the_webhook_dispatcher():
    from io import StringIO

    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=StringIO())

    assert Schedule.objects.filter(func="accounts.tasks.mark_access_ended", minutes=5).count() == 1
    assert Schedule.objects.filter(func="accounts.tasks.dispatch_access_events", minutes=1).count() == 1
