"""Customers for `make chaos`: the purchase of scripts/load/locustfile.py, with a person's and a
browser's habits when things break, and a record of every page that spoke about their money.

What this customer does that the load customer does not:

- A connection error or a 500/502/503/504 from the shop (a SIGKILLed gunicorn worker, gunicorn
  down) is answered like a person pressing reload a couple of seconds later (a POST is sent
  again, as a browser's reload re-submits it), up to CHAOS_MAX_RELOADS times. The pay page's own
  "payment is briefly unavailable" 503 is answered the same way ("Try again").
- Stripe.js (the emulator's stand-in) with pay.js, as billing/static/billing/pay.js uses it: if
  the Payment Element cannot load (the PaymentIntent fetch fails), the person reloads the pay
  page. If confirm gets no clear answer (connection reset, 5xx, timeout), Stripe.js sends the
  same confirm once more; a succeeded PaymentIntent, or "already succeeded" (the first attempt
  went through and only its answer was lost), goes to the return URL as a redirect would;
  anything else goes to the order's plain status page, as pay.js's goToStatus does.
- status.js's rhythm (every 2 s for a minute, then every 10 s; an 8 s request timeout; an error
  or a 429 just waits for the next poll) until the status is final or LOAD_ACTIVE_TIMEOUT.
- A share of customers (CHAOS_LEAVE_RATE) close the tab as soon as they have paid, before the
  return page: their orders are left to the webhook and the sweep.
- A status that offers to pay ("Not charged yet", "Payment didn't go through") is followed: the
  person presses "Pay now"/"Try again" and pays again on the same order (at most
  CHAOS_PAY_ATTEMPTS times); the server decides whether a card form is shown.

Every answer is written to CHAOS_OBSERVATIONS_FILE as a JSON line: when it was asked and
answered, the step, the HTTP status or connection error, the order reference and PaymentIntent,
and for pages that state the payment: the status code and whether it tells the customer they
were not charged (scripts/load/chaos.py compares that with when Stripe took the money).
"""

import json
import os
import random
import re
import sys
import time
from html import unescape
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import locustfile as shared  # (a module, not its class: locust would run that class too)

ACTIVE_TIMEOUT = float(os.environ.get("LOAD_ACTIVE_TIMEOUT", "180"))
MAX_RELOADS = int(os.environ.get("CHAOS_MAX_RELOADS", "20"))
PAY_ATTEMPTS = int(os.environ.get("CHAOS_PAY_ATTEMPTS", "3"))
LEAVE_RATE = float(os.environ.get("CHAOS_LEAVE_RATE", "0"))  # share who close the tab once they have paid
RELOAD_AFTER = 2.0  # seconds before a person presses reload on an error page
APP_TIMEOUT = 60.0  # a browser waits long; a person gives up and reloads after about this
STRIPE_JS_TIMEOUT = 30.0  # pay.js's ANSWER_TIMEOUT_MS
POLL_FAST, POLL_SLOW, POLL_FAST_FOR, POLL_TIMEOUT = 2.0, 10.0, 60.0, 8.0  # status.js
OBSERVATIONS_FILE = os.environ.get("CHAOS_OBSERVATIONS_FILE")
_observations = open(OBSERVATIONS_FILE, "a", buffering=1) if OBSERVATIONS_FILE else None  # noqa: SIM115

# What a page or the status API says about the money, as the customer reads it.
NOT_CHARGED_CODES = {"not_charged", "failed", "canceled"}  # "Not charged yet", "... you have not been charged"
REFERENCE_RES = [re.compile(r'id="status-reference">([^<]+)<'), re.compile(r'id="order-reference">([^<]+)<'),
                 re.compile(r"Your reference is <strong>([^<]+)</strong>")]
CHARGED_RE = re.compile(r'data-charged="(true|false)"')
FINAL_RE = re.compile(r'data-final="(true|false)"')
CLIENT_SECRET_RE = re.compile(r'"(pi_[A-Za-z0-9]+)_secret_')


def page_claim(text):
    """(kind, status code, charged, says not charged) of an HTML page from the shop, or None."""
    code = shared.STATUS_CODE_RE.search(text)
    if code:
        charged = CHARGED_RE.search(text)
        charged = charged is not None and charged.group(1) == "true"
        return "status page", code.group(1), charged, code.group(1) in NOT_CHARGED_CODES and not charged
    if 'id="pay-unavailable"' in text:
        said = "You have <strong>not</strong> been charged" in text
        return "pay unavailable", "maybe_paid" if not said else "not_charged", None, said
    if 'id="payment-form"' in text:
        # A card form with "Pay": an offer to take the money (again, if it was already taken).
        return "pay form", "pay_form", False, True
    if 'id="checkout-setup-failed"' in text:
        return "checkout", "setup_failed", False, True
    return None


# With several web hosts (chaos --hosts), each customer sticks to one, as a load balancer with
# sticky sessions would send them; a host that is down is then down for its customers.
HOSTS = [h for h in os.environ.get("CHAOS_HOSTS", "").split(",") if h]


class ChaosCustomer(shared.Customer):
    _email = _ref = _pi = None

    def on_start(self):
        if HOSTS:
            self.host = self.client.base_url = random.choice(HOSTS)

    # -- one request, with a person's patience ---------------------------------------------------

    def _request(self, name, method, url, *, timeout, **kwargs):
        headers = {**self._headers, **kwargs.pop("headers", {})}
        sent = time.time()
        with self.client.request(method, url, name=name, catch_response=True, allow_redirects=False,
                                 headers=headers, timeout=timeout, **kwargs) as response:
            self._observe(name, url, sent, time.time(), response)
            return response

    def _step(self, steps, name, method, url, **kwargs):
        """A request to the shop: errors and 50x answered by reloading after a couple of seconds."""
        expect = kwargs.pop("expect", (200,))
        timeout = kwargs.pop("timeout", APP_TIMEOUT)
        started = time.perf_counter()
        for attempt in range(MAX_RELOADS + 1):
            response = self._request(name, method, url, timeout=timeout, **kwargs)
            steps[name] = steps.get(name, 0.0) + (time.perf_counter() - started)
            if response.status_code in expect:
                response.success()
                return response
            response.failure(f"HTTP {response.status_code}" if response.status_code else f"{response.error}")
            if not (response.status_code == 0 or response.status_code >= 500) or attempt == MAX_RELOADS:
                break
            time.sleep(RELOAD_AFTER + random.random())
        raise shared.PurchaseFailed(f"{name}: HTTP {response.status_code or response.error}")

    def _observe(self, name, url, sent, answered, response):
        if _observations is None:
            return
        target = "shop" if url.startswith("/") or url.startswith(self.host) else "stripe"
        row = {"t": round(sent, 3), "t_end": round(answered, 3), "step": name, "target": target,
               "http": response.status_code, "customer": self._email}
        if response.status_code == 0:
            row["error"] = type(response.error).__name__ if response.error else "connection error"
        text = response.text or ""
        claim = None
        if target == "shop" and text:
            if name.startswith("GET /api/"):
                try:
                    body = json.loads(text)
                except ValueError:
                    body = {}
                if "code" in body:
                    claim = ("status api", body["code"], body.get("charged"),
                             body["code"] in NOT_CHARGED_CODES and not body.get("charged"))
                    self._ref = body.get("reference") or self._ref
            else:
                claim = page_claim(text)
                secret = CLIENT_SECRET_RE.search(text)
                if secret:  # the pay page: the PaymentIntent the form would confirm
                    self._pi = secret.group(1)
                for pattern in REFERENCE_RES:
                    match = pattern.search(text)
                    if match:
                        self._ref = unescape(match.group(1)).strip()
                        break
        elif target == "stripe" and name == "Stripe.js POST confirm" and text:
            try:
                body = json.loads(text)
            except ValueError:
                body = {}
            error = body.get("error") or {}
            pi = body if "status" in body else (error.get("payment_intent") or {})
            row["pi_status"] = pi.get("status")
            row["stripe_error"] = error.get("code") or error.get("type")
        if claim:
            row.update(page=claim[0], code=claim[1], charged=claim[2], says_not_charged=claim[3])
        row.update(ref=self._ref, pi=self._pi)
        _observations.write(json.dumps(row) + "\n")

    # -- the purchase ------------------------------------------------------------------------------

    def _purchase(self, email, steps, outcome):
        self._email, self._ref, self._pi = email, None, None
        pay_path = self._checkout(steps, email)
        status_path = pay_path.replace("/checkout/", "/orders/", 1).replace("/pay/", "/")
        outcome["pay_attempts"] = 0
        code = None
        while outcome["pay_attempts"] < PAY_ATTEMPTS:
            outcome["pay_attempts"] += 1
            response = self._step(steps, "GET /checkout/[token]/pay/", "GET", pay_path, expect=(200, 302))
            if response.status_code == 302:  # the shop knows the payment is made or under way
                next_url = response.headers["Location"]
            else:
                pay = self._pay_page(steps, pay_path, response)
                self._pi = outcome["payment_intent"] = pay["intent_id"]
                next_url = self._browser_pays(steps, pay, status_path, outcome)
                if next_url is None:  # the card form did not load: reload the pay page
                    time.sleep(RELOAD_AFTER)
                    continue
                if "payment_intent=" in next_url and random.random() < LEAVE_RATE:
                    # Paid, and the tab closed before the return page: only the webhook or the sweep can finish it.
                    outcome["left_after_paying"] = outcome["ok"] = True
                    return
            returned = "payment_intent=" in next_url
            name = "GET /orders/[token]/ (return)" if returned else "GET /orders/[token]/"
            page = self._step(steps, name, "GET", next_url).text
            code, final = _status_of(page)
            outcome.setdefault("return_status", code)
            outcome.setdefault("return_seconds", round(time.perf_counter() - self._started, 4))
            if not final:
                code = self._poll(steps, self._status_api_url(page), code, outcome)
            if code == "active":
                outcome["ok"] = True
                return
            if code not in ("not_charged", "failed"):
                break
            time.sleep(RELOAD_AFTER)  # "Pay now" / "Try again": back to the pay page of the same order
        raise shared.PurchaseFailed(f"status {code!r} after {outcome['pay_attempts']} payment attempt(s)")

    def _checkout(self, steps, email):
        """1-2. As the load customer, but "we couldn't get the payment step ready" is answered by
        pressing the button again a few seconds later, as the page asks (same form, same nonce)."""
        page = self._step(steps, "GET /checkout/", "GET", "/checkout/").text
        for _attempt in range(MAX_RELOADS):
            csrf, nonce_input = shared.CSRF_RE.search(page), shared.NONCE_RE.search(page)
            if not csrf or not nonce_input:
                raise shared.PurchaseFailed("checkout form without csrf token or nonce")
            nonce = shared.VALUE_RE.search(nonce_input.group(0)).group(1)
            response = self._step(steps, "POST /checkout/", "POST", "/checkout/", expect=(200, 302), data={
                "csrfmiddlewaretoken": csrf.group(1), "email": email, "full_name": "Chaos Test", "nonce": nonce,
            }, headers={"Referer": self.host + "/checkout/"})
            if response.status_code == 302:
                pay_path = response.headers["Location"]
                if "/pay/" not in pay_path:
                    raise shared.PurchaseFailed(f"checkout went to {pay_path}, not the pay page")
                return pay_path
            page = response.text
            if 'id="checkout-setup-failed"' not in page:
                raise shared.PurchaseFailed("checkout form answered without an order")
            time.sleep(RELOAD_AFTER + random.random())
        raise shared.PurchaseFailed("checkout: the payment step never got ready")

    def _browser_pays(self, steps, pay, status_path, outcome):
        """Stripe.js and pay.js: where the browser goes after "Pay", or None to reload the pay page."""
        mount = self._request("Stripe.js GET payment_intent", "GET", pay["pi_url"] + "?" + urlencode(
            {"key": pay["publishable_key"], "client_secret": pay["client_secret"]}), timeout=STRIPE_JS_TIMEOUT)
        if mount.status_code != 200:
            mount.failure(f"HTTP {mount.status_code or mount.error}")
            return None
        mount.success()
        for attempt in (1, 2):
            response = self._request("Stripe.js POST confirm", "POST", pay["pi_url"] + "/confirm",
                                     timeout=STRIPE_JS_TIMEOUT, data=self._confirm_data(pay))
            body = _json(response)
            error = body.get("error") or {}
            if response.status_code == 200 and body.get("status") == "succeeded":
                response.success()
                outcome["paid_seconds"] = round(time.perf_counter() - self._started, 4)
                return shared.return_url_for(pay)
            if (error.get("code") == "payment_intent_unexpected_state"
                    and (error.get("payment_intent") or {}).get("status") == "succeeded"):
                response.success()  # "already succeeded": this is the re-send of a confirm that went through
                outcome["already_succeeded"] = True
                return shared.return_url_for(pay)
            response.failure(f"HTTP {response.status_code or response.error}")
            unclear = response.status_code == 0 or response.status_code >= 500
            if not unclear or attempt == 2:
                break
            outcome["confirm_resent"] = True
            time.sleep(1.0)
        return status_path  # pay.js: no clear answer, the status page knows

    def _confirm_data(self, pay):
        return {"return_url": pay["return_url"], "payment_method_data[type]": "card",
                **{f"payment_method_data[card][{k}]": v for k, v in shared.TEST_CARD.items()},
                "key": pay["publishable_key"], "client_secret": pay["client_secret"]}

    def _poll(self, steps, api_url, code, outcome):
        """status.js until the status is final (or offers to pay), or LOAD_ACTIVE_TIMEOUT."""
        if api_url is None:
            return code
        started = time.monotonic()
        polls = 0
        while time.monotonic() - started < ACTIVE_TIMEOUT:
            time.sleep(POLL_FAST if time.monotonic() - started < POLL_FAST_FOR else POLL_SLOW)
            polls += 1
            response = self._request("GET /api/orders/[token]/status", "GET", api_url, timeout=POLL_TIMEOUT)
            body = _json(response)
            if response.status_code != 200 or "code" not in body:
                if response.status_code != 429:
                    response.failure(f"HTTP {response.status_code or response.error}")
                continue  # "Reconnecting…": the next poll on the usual rhythm
            response.success()
            code = body["code"]
            if body.get("final") or code in ("not_charged", "failed"):
                break
        outcome["polls"] = outcome.get("polls", 0) + polls
        return code


def _status_of(page):
    code = shared.STATUS_CODE_RE.search(page)
    final = FINAL_RE.search(page)
    return (code.group(1) if code else None), (final is not None and final.group(1) == "true")


def _json(response):
    try:
        body = json.loads(response.text or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
