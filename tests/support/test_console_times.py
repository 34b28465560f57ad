"""One time format with its zone everywhere in the console (issue 15, item 7): "Dec 1, 2026 22:09
UTC", in SUPPORT_TIME_ZONE, never Django's "Dec. 1, 2026, 10:09 p.m." beside a bare "22:09"."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from billing import services
from billing.models import Order, ReconcileRun
from support.models import Alert, InboundMessage
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 1, 22, 9, tzinfo=UTC)
TWELVE_HOUR = re.compile(r"\b[ap]\.m\.|\b(noon|midnight)\b")


def page(console, url, **params):
    response = console.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def an_active_order_paid_at(moment):
    order = services.order_settle(order_id=paid_order(email="bo@example.com").id, actor="webhook")
    Order.objects.filter(pk=order.pk).update(paid_at=moment, created_at=moment - timedelta(seconds=40))
    order.events.update(created_at=moment)
    return order


def test_the_case_page_says_every_time_with_its_zone_and_never_in_twelve_hours(console, stripe_emulator):
    order = an_active_order_paid_at(AT)

    case = page(console, reverse("admin:billing_order_change", args=[order.pk]))

    diagnosis = case.split('id="case-diagnosis"')[1].split("</div>")[0]
    assert "Paid $249.00 on Dec 1, 2026 22:09 UTC" in diagnosis
    timeline = case.split('id="case-timeline"')[1].split("</ul>")[0]
    assert "Dec 1, 2026 22:09:00 UTC" in timeline
    details = case.split("<h2>Details</h2>")[1]
    assert "Dec 1, 2026 22:09 UTC" in details  # paid at, read-only
    assert "Dec 1, 2026 22:08 UTC" in details  # created at
    assert not TWELVE_HOUR.search(case)


def test_the_console_shows_times_in_the_support_teams_zone(console, stripe_emulator, settings):
    settings.SUPPORT_TIME_ZONE = "Europe/Berlin"
    order = an_active_order_paid_at(AT)

    case = page(console, reverse("admin:billing_order_change", args=[order.pk]))

    assert "Paid $249.00 on Dec 1, 2026 23:09 CET" in case
    assert "22:09" not in case.split('id="case-timeline"')[1].split("</ul>")[0]


def test_the_order_list_shows_times_with_their_zone(console):
    order = OrderFactory()
    Order.objects.filter(pk=order.pk).update(created_at=AT)

    orders = page(console, reverse("admin:billing_order_changelist"))

    assert "Dec 1, 2026 22:09 UTC" in orders
    assert not TWELVE_HOUR.search(orders)


def test_the_order_list_still_sorts_by_its_time_columns(console):
    older, newer = OrderFactory(), OrderFactory()
    Order.objects.filter(pk=older.pk).update(created_at=AT - timedelta(days=1))
    Order.objects.filter(pk=newer.pk).update(created_at=AT)

    orders = page(console, reverse("admin:billing_order_changelist"), o="6")  # created_at, ascending

    assert orders.index(older.reference) < orders.index(newer.reference)
    assert 'class="sortable column-created_at sorted ascending"' in orders


def test_alerts_show_their_times_with_their_zone(console):
    alert = Alert.objects.create(kind=Alert.Kind.HELD_MONEY, key="held-money:test", summary="Held", notified_at=AT)
    Alert.objects.filter(pk=alert.pk).update(created_at=AT)

    listing = page(console, reverse("admin:support_alert_changelist"))
    detail = page(console, reverse("admin:support_alert_change", args=[alert.pk]))

    for html in (listing, detail):
        assert "Dec 1, 2026 22:09 UTC" in html
        assert not TWELVE_HOUR.search(html)


def test_inbound_messages_show_their_times_with_their_zone(console):
    message = InboundMessage.objects.create(message_id="<m1@example.com>", from_email="bo@example.com",
                                            subject="Where is my order?")
    InboundMessage.objects.filter(pk=message.pk).update(received_at=AT)

    listing = page(console, reverse("admin:support_inboundmessage_changelist"))
    detail = page(console, reverse("admin:support_inboundmessage_change", args=[message.pk]))

    for html in (listing, detail):
        assert "Dec 1, 2026 22:09 UTC" in html
        assert not TWELVE_HOUR.search(html)


def test_sweeps_show_their_times_with_their_zone(console):
    run = ReconcileRun.objects.create(started_at=AT, finished_at=AT + timedelta(seconds=2),
                                      status=ReconcileRun.Status.OK)

    listing = page(console, reverse("admin:billing_reconcilerun_changelist"))
    detail = page(console, reverse("admin:billing_reconcilerun_change", args=[run.pk]))

    for html in (listing, detail):
        assert "Dec 1, 2026 22:09 UTC" in html
        assert not TWELVE_HOUR.search(html.split('id="content"')[1])


def test_the_queue_says_since_when_with_its_zone(console, stripe_emulator):
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)
    services.order_settle(order_id=order.id, actor="webhook")
    Order.objects.filter(pk=order.pk).update(held_since=AT)

    queue = page(console, reverse("admin:index")).split('id="needs-attention"')[1]

    assert "since Dec 1, 2026 22:09 UTC" in queue


def test_search_results_say_when_with_the_zone(console):
    order = OrderFactory(email="cy@example.com")
    Order.objects.filter(pk=order.pk).update(created_at=AT)

    results = page(console, reverse("admin:index"), q="cy@example.com").split('id="search-results"')[1]

    assert "ordered Dec 1, 2026 22:09 UTC" in results
    assert not TWELVE_HOUR.search(results.split("</ul>")[0])


def test_the_stripe_mirror_lists_its_times_with_their_zone(client, stripe_emulator):
    from djstripe.models import Charge

    from billing.mirror import stripe_mirror_sync
    from tests.factories import StaffFactory

    paid_order()
    stripe_mirror_sync()
    Charge.objects.update(created=AT)
    client.force_login(StaffFactory(is_superuser=True))

    charges = page(client, reverse("admin:djstripe_charge_changelist"))
    charge = page(client, reverse("admin:djstripe_charge_change", args=[Charge.objects.get().djstripe_id]))

    assert "Dec 1, 2026 22:09 UTC" in charges
    assert not TWELVE_HOUR.search(charges.split('id="result_list"')[1])
    assert charge  # dj-stripe's own change page (its times in Django's format) still opens


def test_every_list_of_the_console_still_opens(client):
    from django.contrib import admin

    from tests.factories import StaffFactory

    OrderFactory()
    client.force_login(StaffFactory(is_superuser=True))

    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url


def test_change_pages_with_editable_times_still_open(client):
    from tests.factories import StaffFactory

    superuser = StaffFactory(is_superuser=True)
    plan = OrderFactory().plan
    client.force_login(superuser)

    plan_page = page(client, reverse("admin:billing_plan_change", args=[plan.pk]))
    user_page = page(client, reverse("admin:accounts_user_change", args=[superuser.pk]))

    assert " UTC</div>" in plan_page.split("field-created_at")[1][:800]  # read-only: the console's format
    assert 'name="date_joined_0"' in user_page  # editable: still Django's input
