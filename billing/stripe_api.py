"""The only door to Stripe. Everything goes through the official SDK with our settings.

Production talks to api.stripe.com; the demo and tests set STRIPE_API_BASE to the local emulator.
Nothing else in the code knows the difference.
"""

import contextlib
import functools

import stripe
from django.conf import settings

from billing import stripe_pacing

# Each call is retried by the SDK on network errors, 409 and 5xx with the same idempotency key, so
# a lost response is answered by Stripe's stored reply rather than a second charge. Stripe's rate
# limits (429) are waited out by our HTTP client, which also paces background calls so that
# checkout goes first (billing/stripe_pacing.py).
MAX_NETWORK_RETRIES = 2
TIMEOUT_SECONDS = 20
# While a person waits on a page, a hanging Stripe must not hold them (and the web thread) for a
# minute: calls give up after settings.STRIPE_INTERACTIVE_TIMEOUT and retry once, then the page
# says "checking" and the worker, the sweep and the next poll carry on with the patient settings.
INTERACTIVE_RETRIES = 1

StripeError = stripe.StripeError
CardError = stripe.CardError
InvalidRequestError = stripe.InvalidRequestError

@contextlib.contextmanager
def someone_waiting():
    """Stripe calls made inside answer a person (a web request), so they give up sooner, and
    wait out Stripe's rate limits for a few seconds at most, all of them together."""
    with stripe_pacing.person_waiting():
        yield


def client() -> stripe.StripeClient:
    if stripe_pacing.person_is_waiting():
        return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_API_VERSION,
                       settings.STRIPE_INTERACTIVE_TIMEOUT, INTERACTIVE_RETRIES, interactive=True)
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_API_VERSION,
                   TIMEOUT_SECONDS, MAX_NETWORK_RETRIES, interactive=False)


@functools.lru_cache(maxsize=8)
def _client(api_key, api_base, api_version, timeout, retries, *, interactive):
    # Cached so that the HTTP session (and its keep-alive connections) is reused across calls.
    return stripe.StripeClient(
        api_key=api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=retries,
        http_client=stripe_pacing.PacedRequestsClient(interactive=interactive, timeout=timeout),
        stripe_version=api_version,
    )


def customer_create(*, idempotency_key: str, **params):
    return client().v1.customers.create(params=params, options={"idempotency_key": idempotency_key})


def payment_intent_create(*, idempotency_key: str, **params):
    return client().v1.payment_intents.create(params=params, options={"idempotency_key": idempotency_key})


def payment_intent_retrieve(payment_intent_id: str):
    # The charge's refunds too: each is a line on the customer's receipt.
    return client().v1.payment_intents.retrieve(
        payment_intent_id, params={"expand": ["latest_charge.refunds"]}
    )


def payment_intent_note(payment_intent_id: str, *, idempotency_key: str, metadata: dict):
    """Add metadata to a PaymentIntent (Stripe merges it into what is there)."""
    return client().v1.payment_intents.update(payment_intent_id, params={"metadata": metadata},
                                              options={"idempotency_key": idempotency_key})


def payment_intent_cancel(payment_intent_id: str, *, idempotency_key: str, cancellation_reason: str = "abandoned"):
    """Cancel a PaymentIntent that was never finished, so it can never be charged.

    Stripe cancels one in requires_payment_method, requires_confirmation, requires_action,
    requires_capture (or, rarely, processing); a succeeded or already canceled one answers 400
    payment_intent_unexpected_state (an InvalidRequestError) with the PaymentIntent attached.
    """
    return client().v1.payment_intents.cancel(payment_intent_id,
                                              params={"cancellation_reason": cancellation_reason},
                                              options={"idempotency_key": idempotency_key})


def payment_intent_search_by_order(order_id: int):
    result = client().v1.payment_intents.search(
        params={"query": f"metadata['order_id']:'{int(order_id)}'", "limit": 10}
    )
    return list(result.data)


# Erasure (billing/services/erasure.py): the personal fields Backstop put on Stripe's objects
# cleared, and the `mark` metadata ({"backstop_erased": "<when>"}) written in their place: the
# record of the erasure that a restore of our database cannot take back. Updates: the same call
# twice leaves the same object, and the key makes a retried one Stripe's stored reply.

def customer_erase_personal(customer_id: str, *, idempotency_key: str, mark: dict):
    return client().v1.customers.update(
        customer_id,
        params={"email": "", "name": "", "phone": "", "description": "", "address": "", "shipping": "",
                "metadata": {"backstop_email": "", **mark}},
        options={"idempotency_key": idempotency_key})


def payment_intent_erase_personal(payment_intent_id: str, *, idempotency_key: str, mark: dict):
    return client().v1.payment_intents.update(
        payment_intent_id, params={"receipt_email": "", "metadata": {"email": "", **mark}},
        options={"idempotency_key": idempotency_key})


def charge_erase_personal(charge_id: str, *, idempotency_key: str, mark: dict):
    """A charge carries a copy of its PaymentIntent's metadata from when it was made. Its
    receipt_email cannot be cleared through the API (Stripe takes no empty value for it)."""
    return client().v1.charges.update(charge_id, params={"metadata": {"email": "", **mark}},
                                      options={"idempotency_key": idempotency_key})


def payment_intents_of_customer(customer_id: str) -> list:
    return list(client().v1.payment_intents.list(params={"customer": customer_id, "limit": 100})
                .auto_paging_iter())


def charges_of_customer(customer_id: str) -> list:
    return list(client().v1.charges.list(params={"customer": customer_id, "limit": 100}).auto_paging_iter())


def refund_create(*, idempotency_key: str, **params):
    return client().v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})


def charge_retrieve(charge_id: str):
    return client().v1.charges.retrieve(charge_id)


# The lists the pull sync reads, in the order it mirrors them (a charge refers to its
# PaymentIntent, a refund or a dispute to its charge), each with the objects it refers to expanded:
# dj-stripe mirrors those too, and would otherwise fetch each one with a call of its own (a
# customer, a card and a balance transaction per purchase).
LISTABLE = {
    "payment_intents": ["data.customer", "data.payment_method"],
    "charges": ["data.balance_transaction"],
    "refunds": ["data.balance_transaction"],
    "disputes": [],
}


def list_created_since(resource: str, created_gte: int, *, page_size: int = 100):
    """Every object of `resource` created at or after `created_gte` (Unix time), newest first,
    following Stripe's pagination cursors."""
    service = getattr(client().v1, resource)
    params = {"created": {"gte": int(created_gte)}, "limit": page_size}
    if LISTABLE[resource]:
        params["expand"] = LISTABLE[resource]
    page = service.list(params=params)
    yield from page.auto_paging_iter()


def webhook_endpoint_create(*, idempotency_key: str, **params):
    # Created with STRIPE_API_VERSION, so its events keep one shape when the account's default changes.
    return client().v1.webhook_endpoints.create(
        params={**params, "api_version": settings.STRIPE_API_VERSION},
        options={"idempotency_key": idempotency_key},
    )


def webhook_endpoints_list() -> list:
    return list(client().v1.webhook_endpoints.list(params={"limit": 100}).auto_paging_iter())


def account_retrieve():
    """The account the key belongs to (its settings: the statement prefix)."""
    return client().v1.accounts.retrieve_current()
