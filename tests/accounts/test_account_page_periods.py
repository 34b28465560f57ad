"""The account page names the end of all paid time with the payment whose period holds it, and each
payment with the period it paid for (two stacked years: the second's reference goes with the end)."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Entitlement
from accounts.selectors import access_until
from billing import services
from tests.billing.helpers import paid_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_years(client, stripe_emulator):
    first = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="customer")
    second = services.order_settle(order_id=paid_order(email="ada@example.com").id, actor="customer")
    client.force_login(first.user)
    return first, second


def page_text(client) -> str:
    body = client.get(reverse("accounts:home")).content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def plan_box(client) -> str:
    body = client.get(reverse("accounts:home")).content.decode()
    box = re.search(r'<div class="notice[^"]*" id="account-plan".*?</div>\s*</div>', body, re.S).group(0)
    return " ".join(re.sub(r"<[^>]+>", " ", box).split())


def day(moment) -> str:
    return f"{timezone.localtime(moment):%B} {timezone.localtime(moment).day}, {timezone.localtime(moment).year}"


def test_the_end_of_all_paid_time_goes_with_the_payment_whose_period_holds_it(client, two_years):
    first, second = two_years

    box = plan_box(client)

    assert f"active until {day(access_until(first.user))}" in box
    assert second.reference in box
    assert first.reference not in box


def test_each_payment_shows_the_period_it_paid_for(client, two_years):
    first, second = two_years
    periods = {o.reference: Entitlement.objects.get(order=o) for o in (first, second)}

    text = page_text(client)

    for reference, period in periods.items():
        assert f"Reference {reference}" in text
        assert f"Covers {day(period.starts_at)} to {day(period.ends_at)}" in text


def test_a_refunded_payment_says_its_period_was_closed(client, two_years, django_capture_on_commit_callbacks):
    first, second = two_years
    with django_capture_on_commit_callbacks(execute=True):
        services.order_refund(order_id=second.id, actor="customer", reason="Bought twice")

    text = page_text(client)

    assert "Its time was taken back with the refund" in text
    assert first.reference in plan_box(client)
