"""The year's end in a real browser: the reminder run twice sends one email, and its Renew link opens
checkout prefilled with what one more payment adds."""

import re
from datetime import UTC, datetime, time, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Entitlement
from billing.models import OrderState
from tests.factories import OrderFactory, PlanFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_reminder_run_twice_sends_one_email_whose_renew_link_opens_a_prefilled_checkout(
    page, app_server, mailoutbox, settings
):
    plan = PlanFactory()
    user = UserFactory(email="rae@example.com", password="!")
    ends_at = datetime.combine(timezone.localdate() + timedelta(days=7), time(0), tzinfo=UTC)
    order = OrderFactory(plan=plan, user=user, email=user.email, state=OrderState.ACTIVE,
                         paid_at=ends_at - timedelta(days=365))
    Entitlement.objects.create(user=user, order=order, plan=plan, starts_at=order.paid_at, ends_at=ends_at)

    for _ in range(2):
        call_command("renewal_reminders", stdout=StringIO())

    (reminder,) = [m for m in mailoutbox if m.to == ["rae@example.com"]]
    renew = re.search(r"https?://\S+\?renew=\S+", reminder.body).group(0)
    page.goto(renew.replace(settings.SITE_URL, app_server.url))

    expect(page.get_by_label("Email")).to_have_value("rae@example.com")
    expect(page.locator("#checkout-renewal")).to_contain_text(f"{timezone.localtime(ends_at):%B %-d, %Y}")
