import pytest
from django.urls import reverse

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
