"""What the browser is told to allow (Content-Security-Policy), what it must not keep (no-store), and
what our logs must not write down (status tokens, client secrets)."""

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.cache import caches
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import OrderState
from billing.tokens import order_status_token
from tests.billing.helpers import order_with_payment_intent
from tests.browser import strict_page
from tests.factories import OrderFactory, PlanFactory, UserFactory
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def policy(response) -> dict[str, list[str]]:
    directives = (part.strip().split() for part in response["Content-Security-Policy"].split(";"))
    return {name: values for name, *values in directives}


# --- Content-Security-Policy -----------------------------------------------------------------------


@pytest.mark.django_db
def test_pages_allow_scripts_frames_and_calls_only_from_us_and_stripe(client, settings):
    settings.STRIPE_JS_URL, settings.STRIPE_API_BASE = "https://js.stripe.com/v3", None

    csp = policy(client.get(reverse("billing:home")))

    scripts = {v for v in csp["script-src"] if not v.startswith("'nonce-")}
    assert scripts == {"'self'", "https://js.stripe.com", "https://*.js.stripe.com"}
    assert set(csp["frame-src"]) == {"https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"}
    assert set(csp["connect-src"]) == {"'self'", "https://api.stripe.com"}
    assert csp["object-src"] == ["'none'"]


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["billing:checkout", "billing:lookup"])
def test_every_inline_script_carries_the_nonce_of_its_response(client, url_name):
    PlanFactory()

    response = client.get(reverse(url_name))

    nonce = next(v for v in policy(response)["script-src"] if v.startswith("'nonce-"))[len("'nonce-"):-1]
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.content.decode())
    assert inline
    assert all(f'nonce="{nonce}"' in attributes for attributes in inline)


@pytest.mark.django_db
def test_the_policy_follows_stripe_js_to_the_emulator(client, settings):
    settings.STRIPE_JS_URL, settings.STRIPE_API_BASE = "http://127.0.0.1:12111/v3", "http://127.0.0.1:12111"

    csp = policy(client.get(reverse("billing:home")))

    for directive in ("script-src", "connect-src", "frame-src"):
        assert "http://127.0.0.1:12111" in csp[directive]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_paying_with_3d_secure_breaks_no_rule_of_the_policy(chromium, live_server, stripe_emulator, settings):
    settings.STRIPE_JS_URL = f"{stripe_emulator.api_base}/v3"
    # live_server serves static files from the apps' folders, where there are no hashed names.
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    caches["default"].clear()  # rate-limit counts committed by earlier browser tests
    PlanFactory()
    with strict_page(chromium) as page:
        violations = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(live_server.url + "/checkout/")
        page.get_by_label("Email").fill("ada@example.com")
        with page.expect_navigation(url="**/pay/") as pay_page:
            page.get_by_role("button", name="Continue to payment").click()
        assert "script-src" in pay_page.value.headers["content-security-policy"]
        page.locator("input[name='cardnumber']").fill("4000002500003155")
        page.locator("input[name='exp-date']").fill("12 / 34")
        page.locator("input[name='cvc']").fill("123")
        page.locator("#pay-button").click()
        page.frame_locator("#stripe-emulator-3ds-modal iframe").get_by_role("button", name="Complete").click()

        expect(page.locator("#order-status")).to_have_attribute("data-status-code", "active", timeout=20_000)
        assert violations == []


# --- Cache-Control: no-store -----------------------------------------------------------------------


def assert_never_stored(response):
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_status_page_is_never_stored(client):
    order = OrderFactory()

    assert_never_stored(client.get(reverse("billing:status", kwargs={"token": order_status_token(order)})))


@pytest.mark.django_db
def test_the_pay_page_is_never_stored(client, stripe_emulator):
    order = order_with_payment_intent()

    assert_never_stored(client.get(reverse("billing:pay", kwargs={"token": order_status_token(order)})))


@pytest.mark.django_db
def test_the_already_bought_answer_of_checkout_is_never_stored(client):
    plan = PlanFactory()
    OrderFactory(plan=plan, email="ana@example.com", state=OrderState.DISPUTED, paid_at=timezone.now())

    response = client.post(reverse("billing:checkout"), {"email": "ana@example.com",
                                                         "nonce": "8b0d3b84-5f5e-4f55-9d8c-2c1c1d1e1f20"})

    assert response.status_code == 200
    assert_never_stored(response)


@pytest.mark.django_db
def test_the_lookup_answer_is_never_stored(client):
    assert_never_stored(client.post(reverse("billing:lookup"), {"email": "ana@example.com"}))


@pytest.mark.django_db
def test_the_account_page_is_never_stored(client):
    client.force_login(UserFactory())

    assert_never_stored(client.get(reverse("accounts:home")))


# --- Logs ------------------------------------------------------------------------------------------


def test_the_access_log_and_the_app_log_never_write_down_a_status_token_or_client_secret(tmp_path):
    port = free_port()
    out, err = (tmp_path / "stdout").open("w"), (tmp_path / "stderr").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--access-logfile", "-", "--logger-class", "config.log_redaction.GunicornLogger"],
        cwd=ROOT, stdout=out, stderr=err, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    try:
        url = (f"http://127.0.0.1:{port}/orders/4f1c0de5e5e5:s3cr3tSig/"
               "?payment_intent=pi_1&payment_intent_client_secret=pi_1_secret_topsecret&redirect_status=succeeded")
        deadline = time.monotonic() + 30
        status = None
        while status is None:
            try:
                urllib.request.urlopen(url, timeout=2)
            except urllib.error.HTTPError as answer:
                status = answer.code
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)
        out.close()
        err.close()

    logs = (tmp_path / "stdout").read_text() + (tmp_path / "stderr").read_text()
    assert status == 404
    assert "GET /orders/[token]/" in logs
    assert "Not Found: /orders/[token]/" in logs
    assert "s3cr3tSig" not in logs
    assert "topsecret" not in logs
