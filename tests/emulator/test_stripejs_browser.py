"""The emulator's Stripe.js stand-in (``GET /v3/``), driven in a real Chromium.

Each test loads a small checkout page, written only against the public Stripe.js v3 API, from a
local HTTP server on its own port (so every call to the emulator is cross-origin, as with real
Stripe), pays a PaymentIntent created with the official ``stripe`` SDK, and checks the outcome
both in the page and in the emulator.
"""

from __future__ import annotations

import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from stripe_emulator import DEFAULT_PUBLISHABLE_KEY as PUBLISHABLE_KEY
from stripe_emulator.testing import EmulatorProcess
from tests.browser import strict_page

pytestmark = pytest.mark.browser

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_3DS = "4000002500003155"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def stripejs_emulator():
    # Its own emulator, not the package conftest's shared one, which other tests reset.
    with EmulatorProcess() as process:
        yield process


@pytest.fixture(scope="module")
def emulator_url(stripejs_emulator):
    return stripejs_emulator.api_base


@pytest.fixture(scope="module")
def stripe_client(stripejs_emulator):
    return stripejs_emulator.client(max_network_retries=0)


@pytest.fixture
def payment_intent(stripe_client):
    return stripe_client.v1.payment_intents.create(
        params={"amount": 24900, "currency": "usd", "automatic_payment_methods": {"enabled": True}}
    )


# ---------------------------------------------------------------------------- shop pages --

# A checkout page written only against the public Stripe.js API: it would work unchanged with
# https://js.stripe.com/v3/.
CHECKOUT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test checkout</title>
<style>
  body {{ font-family: system-ui, sans-serif; max-width: 420px; margin: 32px auto; color: #30313d; }}
  button {{ margin-top: 12px; padding: 10px 16px; font: inherit; font-weight: 600; color: #fff;
           background: #0570de; border: 0; border-radius: 6px; width: 100%; }}
  #error-message {{ margin-top: 12px; color: #df1b41; }}
</style>
<script src="{stripe_js}"></script>
</head><body>
<h1>Pay $249.00</h1>
<form id="payment-form">
  <div id="payment-element"></div>
  <button id="submit" type="submit" disabled>Pay</button>
  <div id="error-message" role="alert"></div>
</form>
<script>
  const config = {config};
  const stripe = Stripe(config.publishableKey);
  const elements = stripe.elements({{clientSecret: config.clientSecret}});
  const paymentElement = elements.create('payment');
  const form = document.getElementById('payment-form');
  const button = document.getElementById('submit');
  const errorBox = document.getElementById('error-message');
  window.results = [];
  paymentElement.on('ready', () => {{ button.disabled = false; document.body.dataset.ready = 'true'; }});
  paymentElement.mount('#payment-element');
  form.addEventListener('submit', async (event) => {{
    event.preventDefault();
    button.disabled = true;
    errorBox.textContent = '';
    const result = await stripe.confirmPayment({{
      elements,
      confirmParams: {{
        return_url: config.returnUrl,
        payment_method_data: {{billing_details: {{name: 'Ada Lovelace', email: 'ada@example.com'}}}},
      }},
      redirect: config.redirect,
    }});
    window.results.push(result);
    if (result.error) errorBox.textContent = result.error.message;
    button.disabled = false;
  }});
</script>
</body></html>
"""

RETURN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Thanks</title></head>
<body><h1>Thank you</h1><p id="status">{status}</p></body></html>"""


class _ShopHandler(BaseHTTPRequestHandler):
    emulator_url = ""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/checkout":
            origin = f"http://{self.headers['Host']}"
            config = {
                "publishableKey": PUBLISHABLE_KEY,
                "clientSecret": query["client_secret"],
                "returnUrl": f"{origin}/return?order=42",
                "redirect": query.get("redirect", "always"),
            }
            body = CHECKOUT_PAGE.format(
                stripe_js=html.escape(f"{self.emulator_url}/v3/"),
                config=json.dumps(config).replace("</", "<\\/"),
            )
        elif parts.path == "/return":
            body = RETURN_PAGE.format(status=html.escape(query.get("redirect_status", "")))
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def shop_url(emulator_url):
    handler = type("ShopHandler", (_ShopHandler,), {"emulator_url": emulator_url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------- browser --


@pytest.fixture
def shop_page(chromium):
    with strict_page(chromium, width=800, height=900, timeout_ms=TIMEOUT_MS) as page:
        yield page


def open_checkout(page, shop_url, intent, redirect="always"):
    page.goto(f"{shop_url}/checkout?client_secret={intent.client_secret}&redirect={redirect}")
    page.wait_for_selector("body[data-ready='true']")


def fill_card(page, number, expiry="12 / 34", cvc="123"):
    page.get_by_label("Card number").fill(number)
    page.locator("input[name='exp-date']").fill(expiry)
    page.locator("input[name='cvc']").fill(cvc)


def form_fields(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.post_data or "").items()}


def last_result(page):
    page.wait_for_function("window.results.length > 0")
    return page.evaluate("window.results[window.results.length - 1]")


# ------------------------------------------------------------------------------------ tests --


def test_paying_with_4242_redirects_to_the_return_url_with_redirect_status_succeeded(
    shop_page, shop_url, payment_intent, stripe_client
):
    open_checkout(shop_page, shop_url, payment_intent)
    fill_card(shop_page, CARD_OK)

    with shop_page.expect_request(lambda r: r.url.endswith("/confirm")) as confirm:
        shop_page.get_by_role("button", name="Pay").click()
    shop_page.wait_for_url("**/return?**")

    sent = form_fields(confirm.value)
    assert confirm.value.url.endswith(f"/v1/payment_intents/{payment_intent.id}/confirm")
    assert sent["key"] == PUBLISHABLE_KEY
    assert sent["client_secret"] == payment_intent.client_secret
    assert sent["return_url"] == f"{shop_url}/return?order=42"
    assert sent["payment_method_data[type]"] == "card"
    assert sent["payment_method_data[card][number]"] == CARD_OK
    assert (sent["payment_method_data[card][exp_month]"], sent["payment_method_data[card][exp_year]"]) == (
        "12",
        "34",
    )
    assert sent["payment_method_data[card][cvc]"] == "123"
    assert sent["payment_method_data[billing_details][name]"] == "Ada Lovelace"
    assert sent["payment_method_data[billing_details][email]"] == "ada@example.com"

    returned = parse_qs(urlsplit(shop_page.url).query)
    assert returned == {
        "order": ["42"],
        "payment_intent": [payment_intent.id],
        "payment_intent_client_secret": [payment_intent.client_secret],
        "redirect_status": ["succeeded"],
    }
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "succeeded"


def test_a_declined_card_shows_the_decline_message_and_a_retry_with_4242_succeeds(
    shop_page, shop_url, payment_intent, stripe_client
):
    open_checkout(shop_page, shop_url, payment_intent)
    fill_card(shop_page, CARD_DECLINED)
    shop_page.get_by_role("button", name="Pay").click()

    error = last_result(shop_page)["error"]
    assert (error["type"], error["code"], error["decline_code"]) == ("card_error", "card_declined", "generic_decline")
    assert error["message"] == "Your card was declined."
    assert error["payment_intent"]["id"] == payment_intent.id
    assert shop_page.get_by_role("alert").filter(has_text=error["message"]).is_visible()
    assert urlsplit(shop_page.url).path == "/checkout"
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "requires_payment_method"

    fill_card(shop_page, CARD_OK)
    shop_page.get_by_role("button", name="Pay").click()
    shop_page.wait_for_url("**/return?**redirect_status=succeeded*")
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "succeeded"


def test_the_3ds_card_shows_the_challenge_modal_and_complete_leads_to_success(
    shop_page, shop_url, payment_intent, stripe_client
):
    open_checkout(shop_page, shop_url, payment_intent)
    fill_card(shop_page, CARD_3DS)
    shop_page.get_by_role("button", name="Pay").click()

    modal = shop_page.get_by_role("dialog")
    modal.wait_for(state="visible")
    challenge = shop_page.frame_locator("#stripe-emulator-3ds-modal iframe")
    challenge.get_by_text("3D Secure 2 Test Page").wait_for()
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "requires_action"
    challenge.get_by_role("button", name="Complete").click()

    shop_page.wait_for_url("**/return?**")
    assert parse_qs(urlsplit(shop_page.url).query)["redirect_status"] == ["succeeded"]
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "succeeded"


def test_failing_the_3ds_challenge_resolves_an_authentication_error(shop_page, shop_url, payment_intent, stripe_client):
    open_checkout(shop_page, shop_url, payment_intent)
    fill_card(shop_page, CARD_3DS)
    shop_page.get_by_role("button", name="Pay").click()

    shop_page.frame_locator("#stripe-emulator-3ds-modal iframe").get_by_role("button", name="Fail").click()

    error = last_result(shop_page)["error"]
    assert error["code"] == "payment_intent_authentication_failure"
    assert error["payment_intent"]["id"] == payment_intent.id
    assert error["payment_intent"]["status"] == "requires_payment_method"
    shop_page.get_by_role("dialog").wait_for(state="detached")
    assert shop_page.get_by_role("alert").filter(has_text=error["message"]).is_visible()
    assert urlsplit(shop_page.url).path == "/checkout"
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "requires_payment_method"


def test_retrieve_payment_intent_returns_the_payment_intent(shop_page, shop_url, payment_intent):
    open_checkout(shop_page, shop_url, payment_intent)

    result = shop_page.evaluate("cs => stripe.retrievePaymentIntent(cs)", payment_intent.client_secret)

    assert "error" not in result
    pi = result["paymentIntent"]
    assert (pi["id"], pi["object"], pi["amount"], pi["currency"], pi["status"]) == (
        payment_intent.id,
        "payment_intent",
        24900,
        "usd",
        "requires_payment_method",
    )


def test_redirect_if_required_resolves_the_succeeded_payment_intent_without_leaving_the_page(
    shop_page, shop_url, payment_intent
):
    open_checkout(shop_page, shop_url, payment_intent, redirect="if_required")
    fill_card(shop_page, CARD_OK)
    shop_page.get_by_role("button", name="Pay").click()

    result = last_result(shop_page)
    assert result["paymentIntent"]["id"] == payment_intent.id
    assert result["paymentIntent"]["status"] == "succeeded"
    assert urlsplit(shop_page.url).path == "/checkout"


def test_an_incomplete_card_resolves_a_validation_error_and_sends_nothing(shop_page, shop_url, payment_intent):
    open_checkout(shop_page, shop_url, payment_intent)
    sent = []
    shop_page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/confirm") else None)
    fill_card(shop_page, "4242 4242", cvc="")
    shop_page.get_by_role("button", name="Pay").click()

    error = last_result(shop_page)["error"]
    assert (error["type"], error["code"]) == ("validation_error", "incomplete_number")
    assert shop_page.get_by_label("Card number").get_attribute("aria-invalid") == "true"
    assert sent == []


def test_a_network_failure_resolves_an_api_connection_error(shop_page, shop_url, payment_intent):
    open_checkout(shop_page, shop_url, payment_intent)
    shop_page.route("**/confirm", lambda route: route.abort("connectionreset"))
    fill_card(shop_page, CARD_OK)
    shop_page.get_by_role("button", name="Pay").click()

    error = last_result(shop_page)["error"]
    assert error["type"] == "api_connection_error"
    assert error["message"]


def test_handle_next_action_runs_the_challenge_for_a_payment_intent_confirmed_on_the_server(
    shop_page, shop_url, payment_intent, stripe_client
):
    stripe_client.v1.payment_intents.confirm(
        payment_intent.id,
        params={"payment_method": "pm_card_authenticationRequired", "return_url": f"{shop_url}/return"},
    )
    open_checkout(shop_page, shop_url, payment_intent)

    shop_page.evaluate(
        "cs => { stripe.handleNextAction({clientSecret: cs}).then((r) => window.results.push(r)); }",
        payment_intent.client_secret,
    )
    shop_page.frame_locator("#stripe-emulator-3ds-modal iframe").get_by_role("button", name="Complete").click()

    assert last_result(shop_page)["paymentIntent"]["status"] == "succeeded"
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "succeeded"


def test_the_challenge_page_opened_as_a_full_page_returns_to_the_return_url(
    shop_page, shop_url, emulator_url, payment_intent, stripe_client
):
    confirmed = stripe_client.v1.payment_intents.confirm(
        payment_intent.id,
        params={"payment_method": "pm_card_authenticationRequired", "return_url": f"{shop_url}/return"},
    )
    challenge_url = confirmed.next_action.redirect_to_url.url
    assert challenge_url.startswith(f"{emulator_url}/_emulator/3ds/{payment_intent.id}?")

    shop_page.goto(f"{challenge_url}&{urlencode({'return_url': f'{shop_url}/return'})}")
    shop_page.get_by_role("button", name="Complete").click()

    shop_page.wait_for_url(f"{shop_url}/return?**")
    returned = parse_qs(urlsplit(shop_page.url).query)
    assert returned["payment_intent"] == [payment_intent.id]
    assert returned["redirect_status"] == ["succeeded"]
    assert stripe_client.v1.payment_intents.retrieve(payment_intent.id).status == "succeeded"


def test_the_payment_element_reports_changes_and_elements_submit_validates(shop_page, shop_url, payment_intent):
    open_checkout(shop_page, shop_url, payment_intent)
    shop_page.evaluate("() => { window.changes = []; paymentElement.on('change', (e) => window.changes.push(e)); }")
    assert shop_page.evaluate("elements.getElement('payment') === paymentElement")

    assert shop_page.evaluate("elements.submit()")["error"]["code"] == "incomplete_number"
    shop_page.get_by_label("Card number").fill("4242 4242 4242 4241")
    invalid = shop_page.evaluate("window.changes.at(-1)")
    fill_card(shop_page, CARD_OK)
    complete = shop_page.evaluate("window.changes.at(-1)")

    assert (invalid["complete"], invalid["empty"], invalid["error"]["code"]) == (False, False, "invalid_number")
    assert complete == {
        "elementType": "payment",
        "complete": True,
        "empty": False,
        "collapsed": False,
        "value": {"type": "card"},
    }
    assert shop_page.evaluate("elements.submit()") == {"selectedPaymentMethod": "card"}


def test_the_payment_element_says_which_methods_real_stripe_would_also_offer(shop_page, shop_url, payment_intent):
    open_checkout(shop_page, shop_url, payment_intent)

    note = shop_page.locator("[data-stripe-emulator='methods-not-emulated']")

    assert note.text_content() == "Real Stripe would also offer: link (not emulated)."


def test_a_cards_only_payment_shows_no_other_methods(shop_page, shop_url, stripe_client):
    intent = stripe_client.v1.payment_intents.create(
        params={"amount": 24900, "currency": "usd", "payment_method_types": ["card"]})

    open_checkout(shop_page, shop_url, intent)

    assert shop_page.locator("[data-stripe-emulator='methods-not-emulated']").count() == 0
