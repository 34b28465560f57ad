"""Access events to the product as signed Standard Webhooks, against a real receiver that verifies
each signature with the `standardwebhooks` library, as a product would."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts import access, webhooks
from accounts.models import AccessDelivery
from billing import services
from tests.accounts.receiver import SECRET, Receiver
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory, UserFactory
from tests.ports import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    product = Receiver().start()
    settings.ACCESS_WEBHOOK_URL = product.url
    settings.ACCESS_WEBHOOK_SECRET = SECRET
    yield product
    product.stop()


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def grant(user, *, paid_at=None):
    order = OrderFactory(email=user.email, user=user, paid_at=paid_at or timezone.now())
    with transaction.atomic():
        return access.access_grant(user=user, order=order, plan=order.plan, paid_at=order.paid_at)


def test_a_payment_is_told_to_the_product_as_a_signed_access_granted_with_the_address_end_and_plan(
    receiver, stripe_emulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="webhook")

    end = iso(order.entitlement.ends_at)
    assert receiver.events() == [("access.granted", "ada@example.com", end)]
    data = receiver.verified[0][1]["data"]
    assert (data["has_access"], data["plan"]) == (True, {"code": "annual", "name": "Annual"})
    assert receiver.refused == []
    assert AccessDelivery.objects.get().status == AccessDelivery.Status.DELIVERED


def test_a_refund_sends_access_revoked(receiver, stripe_emulator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="webhook")
    with django_capture_on_commit_callbacks(execute=True):
        services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="Asked to")

    assert [event for event, _email, _until in receiver.events()] == ["access.granted", "access.revoked"]
    revoked = receiver.verified[1][1]["data"]
    assert (revoked["email"], revoked["has_access"], revoked["access_until"]) == ("ada@example.com", False, None)
    assert revoked["period"]["revoked"] is True


def test_a_delivery_the_product_refuses_is_retried_later_with_the_same_id_until_it_is_taken(
    receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [500]
    with django_capture_on_commit_callbacks(execute=True):
        grant(UserFactory(email="ada@example.com"))
    delivery = AccessDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_response) == ("pending", 1, "HTTP 500: try later")
    assert delivery.next_attempt_at > timezone.now()

    assert webhooks.access_deliveries_dispatch_due()["delivered"] == 0  # not due yet: backing off
    webhooks.access_deliveries_dispatch_due(now=delivery.next_attempt_at)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response) == ("delivered", 2, "HTTP 200: ok")
    assert [event_id for event_id, _event in receiver.verified] == [delivery.event_id] * 2


def test_each_failed_attempt_waits_longer_before_the_next():
    waits = [webhooks.BACKOFF[min(n, len(webhooks.BACKOFF)) - 1] for n in range(1, 8)]

    assert waits == sorted(waits)
    assert waits[0] < waits[-1] == timedelta(hours=1)


def test_a_later_event_for_a_customer_waits_until_the_earlier_one_is_delivered(
    receiver, django_capture_on_commit_callbacks
):
    user = UserFactory(email="ada@example.com")
    receiver.answers = [503]
    with django_capture_on_commit_callbacks(execute=True):
        entitlement = grant(user)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        access.access_revoke(order=entitlement.order, why="refund requested")
    assert receiver.events() == [("access.granted", "ada@example.com", iso(entitlement.ends_at))]

    webhooks.access_deliveries_dispatch_due(now=timezone.now() + timedelta(hours=2))

    assert receiver.events() == [("access.granted", "ada@example.com", iso(entitlement.ends_at)),
                                 ("access.granted", "ada@example.com", iso(entitlement.ends_at)),
                                 ("access.revoked", "ada@example.com", None)]


def test_another_customers_events_do_not_wait_for_a_customer_whose_delivery_failed(
    receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [500]
    with django_capture_on_commit_callbacks(execute=True):
        grant(UserFactory(email="ada@example.com"))
        grant(UserFactory(email="bob@example.com"))

    assert [email for _event, email, _until in receiver.events()] == ["ada@example.com", "bob@example.com"]
    assert AccessDelivery.objects.get(email="bob@example.com").status == AccessDelivery.Status.DELIVERED


def test_a_product_that_cannot_be_reached_is_recorded_for_support_and_retried(
    settings, django_capture_on_commit_callbacks
):
    settings.ACCESS_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/hooks/"
    settings.ACCESS_WEBHOOK_SECRET = SECRET

    with django_capture_on_commit_callbacks(execute=True):
        grant(UserFactory())

    delivery = AccessDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_response.startswith("No answer")


def test_the_end_of_a_plan_is_sent_as_access_ended(receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        grant(UserFactory(email="ada@example.com"), paid_at=timezone.now() - timedelta(days=400))
        access.access_ends_mark()

    assert [event for event, _email, _until in receiver.events()] == ["access.granted", "access.ended"]


def test_without_a_webhook_url_nothing_is_recorded_or_sent(settings, django_capture_on_commit_callbacks):
    settings.ACCESS_WEBHOOK_URL = ""

    with django_capture_on_commit_callbacks(execute=True):
        grant(UserFactory())

    assert not AccessDelivery.objects.exists()


def test_each_delivery_is_visible_to_support_in_the_console(receiver, admin_client,
                                                            django_capture_on_commit_callbacks):
    receiver.answers = [500]
    with django_capture_on_commit_callbacks(execute=True):
        grant(UserFactory(email="ada@example.com"))

    page = admin_client.get("/admin/accounts/accessdelivery/").content.decode()

    assert "ada@example.com" in page
    assert "HTTP 500: try later" in page
    assert "Waiting to be delivered" in page


def test_support_people_may_see_the_deliveries_but_not_change_them(client):
    from support.services import support_staff_ensure

    person = support_staff_ensure(email="ana@backstop.localhost", password="a long support password 1")
    client.force_login(person)

    assert person.has_perm("accounts.view_accessdelivery")
    assert not person.has_perm("accounts.change_accessdelivery")
    assert client.get("/admin/accounts/accessdelivery/").status_code == 200
