import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Entitlement
from billing.tokens import order_status_token, user_from_renew_token
from tests.billing.helpers import paid_order

pytestmark = pytest.mark.django_db


def test_the_account_page_shows_the_plan_its_end_date_and_the_payment_reference(client, stripe_emulator):
    from billing import services

    order = services.order_settle(order_id=paid_order().id, actor="webhook")
    client.force_login(order.user)

    page = client.get(reverse("accounts:home")).content.decode()

    assert "Annual" in page
    assert order.reference in page
    assert f"{order.entitlement.ends_at:%Y}" in page


# --- The year's end: days left, Renew, receipts, receipt details, reminders ---------------------

def settled_order(**order_fields):
    from billing import services

    return services.order_settle(order_id=paid_order(**order_fields).id, actor="customer")


def signed_in_customer(client, **order_fields):
    order = settled_order(**order_fields)
    client.force_login(order.user)
    return order


def account_page(client):
    response = client.get(reverse("accounts:home"))
    assert response.status_code == 200
    return response.content.decode()


def renew_link(page: str) -> str:
    return html.unescape(re.search(r'href="([^"]+)" id="account-renew"', page).group(1))


def plan_ends_in(order, days: int):
    """The customer's paid time runs out `days` from now, as if the year had nearly gone by."""
    Entitlement.objects.filter(order=order).update(ends_at=timezone.now() + timedelta(days=days))


def test_the_account_page_says_how_many_days_are_left_and_the_end_date(client, stripe_emulator):
    order = signed_in_customer(client)
    ends_at = order.entitlement.ends_at

    page = account_page(client)

    assert f"{(ends_at.date() - timezone.now().date()).days} days left" in page
    assert f"active until {ends_at:%B} {ends_at.day}, {ends_at:%Y}" in page
    assert "no automatic renewal" in page


def test_the_renew_link_on_the_account_page_is_made_for_the_customer(client, stripe_emulator):
    order = signed_in_customer(client, email="ada+annual@example.com")

    url = urlsplit(renew_link(account_page(client)))

    assert url.path == reverse("billing:checkout")
    assert user_from_renew_token(parse_qs(url.query)["renew"][0]) == order.user


def test_renewing_is_offered_quietly_while_the_plan_has_long_to_run(client, stripe_emulator):
    signed_in_customer(client)

    page = account_page(client)

    assert 'class="button secondary" href="' in page
    assert ">Renew early</a>" in page


def test_renewing_comes_first_within_thirty_days_of_the_end(client, stripe_emulator):
    order = signed_in_customer(client)
    plan_ends_in(order, days=12)

    page = account_page(client)

    assert "12 days left" in page
    assert f'<a class="button" href="{html.escape(renew_link(page))}" id="account-renew">Renew</a>' in page
    assert "Your plan ends soon." in page


def test_each_payment_on_the_account_page_links_to_its_receipt(client, stripe_emulator):
    order = signed_in_customer(client)
    receipt_url = reverse("billing:receipt", kwargs={"token": order_status_token(order)})

    page = account_page(client)

    assert f'href="{receipt_url}"' in page
    assert client.get(receipt_url).status_code == 200


def test_the_customer_adds_a_company_and_vat_number_for_their_receipts(client, stripe_emulator):
    order = signed_in_customer(client)

    response = client.post(reverse("accounts:receipt_details"),
                           {"company_name": " Analytical  Engines Ltd ", "vat_number": "gb 123 4567 89"}, follow=True)

    order.user.refresh_from_db()
    assert (order.user.company_name, order.user.vat_number) == ("Analytical Engines Ltd", "GB 123 4567 89")
    assert "Saved. The receipts of your next payments show these details" in response.content.decode()


def test_a_company_name_that_is_too_long_is_refused_with_a_clear_error(client, stripe_emulator):
    order = signed_in_customer(client)

    response = client.post(reverse("accounts:receipt_details"), {"company_name": "A" * 201, "vat_number": ""})

    order.user.refresh_from_db()
    assert order.user.company_name == ""
    assert "Please keep the company name to 200 characters or fewer." in response.content.decode()


def test_something_that_is_not_a_vat_number_is_refused_with_a_clear_error(client, stripe_emulator):
    order = signed_in_customer(client)

    response = client.post(reverse("accounts:receipt_details"), {"company_name": "Acme", "vat_number": "n/a"})

    order.user.refresh_from_db()
    assert order.user.vat_number == ""
    assert "like DE123456789" in response.content.decode()


def test_reminders_before_the_plan_ends_are_on_until_the_customer_turns_them_off(client, stripe_emulator):
    order = signed_in_customer(client)
    assert re.search(r'name="renewal_reminders"[^>]* checked', account_page(client))

    response = client.post(reverse("accounts:reminders"), {}, follow=True)

    order.user.refresh_from_db()
    assert order.user.renewal_reminders is False
    assert "Email me before my plan ends" in response.content.decode()
    assert not re.search(r'name="renewal_reminders"[^>]* checked', response.content.decode())


def test_the_customer_turns_reminders_back_on(client, stripe_emulator):
    order = signed_in_customer(client)
    order.user.renewal_reminders = False
    order.user.save()

    client.post(reverse("accounts:reminders"), {"renewal_reminders": "on"})

    order.user.refresh_from_db()
    assert order.user.renewal_reminders is True
