"""Customers buying the plan, as a browser does it, over HTTP against the real server.

One task = one full purchase by a new customer (new cookies, new email, new client address):

1. GET  /checkout/                                  the form: csrf token and the form's nonce
2. POST /checkout/                                  -> 302 to /checkout/<token>/pay/
3. GET  /checkout/<token>/pay/                      client secret, publishable key, Stripe.js URL
4. GET  <emulator>/v1/payment_intents/<id>          what Stripe.js's Payment Element does on mount
5. POST <emulator>/v1/payment_intents/<id>/confirm  what stripe.confirmPayment() sends (card 4242…)
6. GET  <return_url>?payment_intent=…&redirect_status=succeeded   the status page (settles)
7. GET  /api/orders/<token>/status every 2 s until "active", as status.js polls

Each request is a locust request (per-step statistics); the whole purchase is also reported as
request type PURCHASE, and, when LOAD_RESULTS_FILE is set, written there as one JSON line
(scripts/load/run.py reads those for exact percentiles).

Run it on its own against a running stack (e.g. `make demo`):
    .venv/bin/locust -f scripts/load/locustfile.py --host http://127.0.0.1:8000
Environment: LOAD_THINK_TIME (seconds between a customer's purchases, default 0),
LOAD_ACTIVE_TIMEOUT (seconds to wait for "active", default 60), LOAD_RESULTS_FILE.
"""

import itertools
import json
import os
import random
import re
import time
import uuid
from html import unescape
from urllib.parse import urlencode, urljoin, urlsplit

from locust import HttpUser, constant, events, task

THINK_TIME = float(os.environ.get("LOAD_THINK_TIME", "0"))
ACTIVE_TIMEOUT = float(os.environ.get("LOAD_ACTIVE_TIMEOUT", "60"))
POLL_SECONDS = 2.0  # status.js's FAST_MS
RESULTS_FILE = os.environ.get("LOAD_RESULTS_FILE")
RUN_ID = uuid.uuid4().hex[:8]
TEST_CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "34", "cvc": "123"}

_counter = itertools.count(1)
_results = open(RESULTS_FILE, "a", buffering=1) if RESULTS_FILE else None  # noqa: SIM115 (lives with the process)

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NONCE_RE = re.compile(r'<input[^>]*name="nonce"[^>]*>')
VALUE_RE = re.compile(r'value="([^"]*)"')
STATUS_CODE_RE = re.compile(r'data-status-code="([^"]*)"')
RETURN_URL_RE = re.compile(r'data-return-url="([^"]+)"')
STRIPE_JS_RE = re.compile(r'<script src="([^"]+/v3/?)"')


def json_script(html, element_id):
    """The value Django's json_script filter put in <script id="…" type="application/json">."""
    match = re.search(rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>', html, re.S)
    if not match:
        raise PurchaseFailed(f"no #{element_id} on the pay page")
    return json.loads(match.group(1))


class PurchaseFailed(Exception):
    pass


def _client_address(n):
    # A distinct client per purchase, as the documented nginx reports it in X-Forwarded-For
    # (TRUSTED_PROXY_COUNT=1): per-client rate limits then see many customers, not one.
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Customer(HttpUser):
    wait_time = constant(THINK_TIME)

    def _step(self, steps, name, method, url, **kwargs):
        """One request as a locust request named `name`; raises PurchaseFailed on a wrong answer."""
        expect = kwargs.pop("expect", (200,))
        headers = {**self._headers, **kwargs.pop("headers", {})}
        started = time.perf_counter()
        with self.client.request(method, url, name=name, catch_response=True, allow_redirects=False,
                                 headers=headers, **kwargs) as response:
            steps[name] = steps.get(name, 0.0) + (time.perf_counter() - started)
            if response.status_code not in expect:
                response.failure(f"HTTP {response.status_code}")
                raise PurchaseFailed(f"{name}: HTTP {response.status_code}")
            response.success()
            return response

    @task
    def purchase(self):
        n = next(_counter)
        self.client.cookies.clear()  # a new customer, a new browser
        self._headers = {"X-Forwarded-For": _client_address(n + random.randrange(1 << 20))}
        email = f"load-{RUN_ID}-{n}-{uuid.uuid4().hex[:6]}@example.com"
        steps, outcome = {}, {"email": email, "ok": False}
        started = self._started = time.perf_counter()
        wall_started = time.time()
        try:
            self._purchase(email, steps, outcome)
        except PurchaseFailed as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # a connection reset, a parse error: a failed purchase, keep going
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        total = time.perf_counter() - started
        events.request.fire(request_type="PURCHASE", name="full purchase", response_time=total * 1000,
                            response_length=0, exception=None if outcome["ok"] else PurchaseFailed(outcome["error"]),
                            context={})
        if _results is not None:
            _results.write(json.dumps({**outcome, "started": wall_started, "seconds": round(total, 4),
                                       "steps": {k: round(v, 4) for k, v in steps.items()}}) + "\n")

    def _purchase(self, email, steps, outcome):
        pay_path = self._checkout(steps, email)
        pay = self._pay_page(steps, pay_path)
        outcome["payment_intent"] = pay["intent_id"]
        self._stripe_js_mount(steps, pay)
        confirm = self._stripe_js_confirm(steps, pay).json()
        if confirm.get("status") != "succeeded":
            raise PurchaseFailed(f"confirm answered status {confirm.get('status')!r}")
        outcome["paid_seconds"] = round(time.perf_counter() - self._started, 4)

        # 6. Stripe.js sends the browser to the return URL: the status page settles the order.
        page = self._step(steps, "GET /orders/[token]/ (return)", "GET", return_url_for(pay)).text
        code = STATUS_CODE_RE.search(page)
        code = code.group(1) if code else None
        outcome["return_status"] = code
        outcome["return_seconds"] = round(time.perf_counter() - self._started, 4)

        # 7. status.js polls every 2 s until the order is final.
        api_url = self._status_api_url(page)
        deadline = time.monotonic() + ACTIVE_TIMEOUT
        polls = 0
        while code != "active":
            if code in ("failed", "attention", "refunding", "refunded") or api_url is None:
                raise PurchaseFailed(f"status page says {code!r}")
            if time.monotonic() > deadline:
                raise PurchaseFailed(f"not active after {ACTIVE_TIMEOUT:.0f} s (status {code!r})")
            time.sleep(POLL_SECONDS)  # gevent-patched by locust: yields to the other customers
            polls += 1
            code = self._step(steps, "GET /api/orders/[token]/status", "GET", api_url,
                              expect=(200, 429)).json().get("code", code)
        outcome["polls"] = polls
        outcome["ok"] = True

    # The steps, one method each, so a customer with other habits (scripts/load/chaos_locustfile.py)
    # can reuse them.

    def _checkout(self, steps, email):
        """1-2. The checkout form, submitted; returns the pay page's path."""
        page = self._step(steps, "GET /checkout/", "GET", "/checkout/").text
        csrf, nonce_input = CSRF_RE.search(page), NONCE_RE.search(page)
        if not csrf or not nonce_input:
            raise PurchaseFailed("checkout form without csrf token or nonce")
        nonce = VALUE_RE.search(nonce_input.group(0)).group(1)
        response = self._step(steps, "POST /checkout/", "POST", "/checkout/", expect=(302,), data={
            "csrfmiddlewaretoken": csrf.group(1), "email": email, "full_name": "Load Test", "nonce": nonce,
        }, headers={"Referer": self.host + "/checkout/"})
        pay_path = response.headers["Location"]
        if "/pay/" not in pay_path:
            raise PurchaseFailed(f"checkout went to {pay_path}, not the pay page")
        return pay_path

    def _pay_page(self, steps, pay_path, response=None):
        """3. The pay page: what its Stripe.js needs."""
        page = (response or self._step(steps, "GET /checkout/[token]/pay/", "GET", pay_path)).text
        return pay_page_fields(page)

    def _stripe_js_mount(self, steps, pay, **kwargs):
        """4. The Payment Element checks the client secret."""
        return self._step(steps, "Stripe.js GET payment_intent", "GET", pay["pi_url"] + "?" + urlencode(
            {"key": pay["publishable_key"], "client_secret": pay["client_secret"]}), **kwargs)

    def _stripe_js_confirm(self, steps, pay, **kwargs):
        """5. stripe.confirmPayment() with the test card."""
        return self._step(steps, "Stripe.js POST confirm", "POST", pay["pi_url"] + "/confirm", data={
            "return_url": pay["return_url"],
            "payment_method_data[type]": "card",
            **{f"payment_method_data[card][{k}]": v for k, v in TEST_CARD.items()},
            "key": pay["publishable_key"],
            "client_secret": pay["client_secret"],
        }, **kwargs)

    def _status_api_url(self, page):
        api = re.search(r'data-status-api-url="([^"]+)"', page)
        return urljoin(self.host, unescape(api.group(1))) if api else None


def pay_page_fields(page):
    """What Stripe.js gets from the pay page: client secret, key, return URL, its own origin."""
    client_secret = json_script(page, "stripe-client-secret")
    publishable_key = json_script(page, "stripe-publishable-key")
    return_url = unescape(RETURN_URL_RE.search(page).group(1))
    stripe_js = STRIPE_JS_RE.search(page)
    if not stripe_js:
        raise PurchaseFailed("no Stripe.js on the pay page")
    parts = urlsplit(stripe_js.group(1))
    stripe_base = f"{parts.scheme}://{parts.netloc}"  # Stripe.js calls the origin it came from
    intent_id = client_secret.split("_secret_")[0]
    return {"client_secret": client_secret, "publishable_key": publishable_key, "return_url": return_url,
            "intent_id": intent_id, "pi_url": f"{stripe_base}/v1/payment_intents/{intent_id}"}


def return_url_for(pay, redirect_status="succeeded"):
    """Where Stripe.js sends the browser after confirming: the return URL with its parameters."""
    url = pay["return_url"]
    return url + ("&" if "?" in url else "?") + urlencode({
        "payment_intent": pay["intent_id"], "payment_intent_client_secret": pay["client_secret"],
        "redirect_status": redirect_status})
