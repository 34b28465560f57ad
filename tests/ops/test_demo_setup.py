from io import StringIO

import pytest
from django.core.management import call_command
from djstripe.models import WebhookEndpoint

from billing.models import Plan

pytestmark = pytest.mark.django_db


def run_demo_setup(password="demo-password-1"):
    call_command("demo_setup", f"--support-password={password}", stdout=StringIO())


def test_demo_setup_seeds_the_annual_plan_at_249_dollars_for_12_months():
    run_demo_setup()

    plan = Plan.objects.get(code="annual")
    assert (plan.amount_cents, plan.currency, plan.duration_months) == (24900, "usd", 12)


def test_demo_setup_twice_keeps_one_plan_and_one_support_login(django_user_model):
    run_demo_setup()
    run_demo_setup(password="demo-password-2")

    assert Plan.objects.count() == 1
    assert django_user_model.objects.filter(is_staff=True).count() == 1


def test_the_printed_support_login_opens_the_admin(client):
    run_demo_setup(password="demo-password-1")

    assert client.login(email="support@backstop.localhost", password="demo-password-1")
    assert client.get("/admin/").status_code == 200


def test_a_printed_password_that_starts_with_a_dash_opens_the_admin(client):
    run_demo_setup(password="-ZkKCL7nuAmu")  # as `make demo` may draw one, one time in 32

    assert client.login(email="support@backstop.localhost", password="-ZkKCL7nuAmu")
    assert client.get("/admin/").status_code == 200


def test_demo_setup_stores_the_webhook_signing_secret_for_dj_stripe(settings):
    run_demo_setup()

    endpoint = WebhookEndpoint.objects.get(djstripe_uuid=settings.STRIPE_WEBHOOK_UUID)
    assert endpoint.secret == settings.STRIPE_WEBHOOK_SECRET
