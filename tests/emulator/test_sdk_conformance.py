"""Conformance with stripe-python's own types, without the network.

1. Every call Backstop makes through billing/stripe_api.py, made by the services that make it
   (checkout, settle, refund, the sweep, erasure, ...), has only parameters the SDK's typed params
   for that endpoint know (``PaymentIntentCreateParams`` and the rest, nested hashes included):
   a parameter the SDK does not know is one real Stripe refuses.
2. Every object the emulator returns (and every event's object) has only fields the SDK's
   resource class annotates (``stripe.PaymentIntent`` and its inner classes, nested objects
   included): a field the SDK does not know is one the emulator invented.

The SDK pins one API version (STRIPE_API_VERSION's default), so these are that version's types.
tests/emulator/test_conformance.py compares the emulator with real Stripe JSON besides.
"""

import ast
import importlib
import inspect
import json
import re
import typing
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import stripe
from django.core.management import call_command
from django.utils import timezone
from stripe._object_classes import get_object_class

from billing import services, stripe_api
from billing.mirror import stripe_mirror_sync
from billing.models import Order
from billing.services.erasure import customer_erase
from billing.statement import statement_prefix_refresh
from tests.billing.helpers import order_with_payment_intent, paid_order
from tests.factories import OrderFactory

STRIPE_DIR = Path(stripe.__file__).parent

# -- the SDK's typed params, by endpoint ---------------------------------------------------------


def _sdk_endpoints() -> list[tuple[str, re.Pattern, type]]:
    """(method, path pattern, params TypedDict) for every v1 service method of the SDK, read from
    the services' source: each method calls self._request("post", "/v1/...", params=params) and
    annotates `params` with its TypedDict."""
    endpoints = []
    for source in sorted(STRIPE_DIR.glob("_*_service.py")):
        tree = ast.parse(source.read_text())
        imports = {alias.asname or alias.name: node.module
                   for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                   and node.module.startswith("stripe.params") for alias in node.names}
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            params_arg = next((a for a in func.args.args if a.arg == "params"), None)
            call = next((n for n in ast.walk(func) if isinstance(n, ast.Call)
                         and isinstance(n.func, ast.Attribute) and n.func.attr == "_request"), None)
            if params_arg is None or call is None or len(call.args) < 2:
                continue
            method, path = call.args[0], call.args[1]
            if isinstance(path, ast.Call) and isinstance(path.func, ast.Attribute):
                path = path.func.value  # "/v1/payment_intents/{intent}".format(...)
            if not (isinstance(method, ast.Constant) and isinstance(path, ast.Constant)):
                continue
            name = re.search(r"\w+Params", ast.unparse(params_arg.annotation)).group(0)
            module = importlib.import_module(imports[name])
            pattern = re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path.value)))
            endpoints.append((method.value.upper(), pattern, getattr(module, name)))
    return endpoints


def _params_class(method: str, path: str) -> type:
    # /v1/payment_intents/search is its own endpoint, not /v1/payment_intents/{intent}: the most
    # literal match wins.
    matches = [(pattern.pattern.count("[^/]+"), cls) for endpoint_method, pattern, cls in SDK_ENDPOINTS
               if endpoint_method == method and pattern.fullmatch(path)]
    assert matches, f"the SDK has no {method} {path}"
    return min(matches, key=lambda match: match[0])[1]


def _referenced(annotation, module) -> list[type]:
    """The TypedDicts an annotation names ("PaymentIntentCreateParamsShipping", in a ForwardRef)."""
    names = re.findall(r"\b([A-Z]\w*Params\w*)\b", str(annotation))
    return [getattr(module, n) for n in names if isinstance(getattr(module, n, None), type)]


def unknown_params(params: dict, cls: type, where: str = "") -> list[str]:
    """Every parameter (nested ones as a[b][c]) that the TypedDict `cls` does not declare."""
    module = inspect.getmodule(cls)
    annotations = cls.__annotations__
    unknown = []
    for key, value in params.items():
        name = f"{where}[{key}]" if where else key
        if key not in annotations:
            unknown.append(name)
            continue
        inner = _referenced(annotations[key], module)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict) and inner:
                # Any of the hashes the annotation allows will do (a Union of two shapes).
                found = [unknown_params(item, option, name) for option in inner]
                unknown.extend(min(found, key=len))
    return unknown


SDK_ENDPOINTS = _sdk_endpoints()


def test_the_sdks_endpoints_are_read_from_its_services():
    assert _params_class("POST", "/v1/payment_intents").__name__ == "PaymentIntentCreateParams"
    assert _params_class("POST", "/v1/payment_intents/pi_1/cancel").__name__ == "PaymentIntentCancelParams"
    assert _params_class("GET", "/v1/account").__name__ == "AccountRetrieveCurrentParams"


def test_a_parameter_the_sdk_does_not_know_is_found_at_any_depth():
    params = {"amount": 100, "currency": "usd", "invented": 1,
              "shipping": {"name": "Ada", "address": {"city": "Paris", "planet": "Earth"}},
              "metadata": {"anything": "goes"}}

    assert unknown_params(params, _params_class("POST", "/v1/payment_intents")) == [
        "invented", "shipping[address][planet]"]


# -- 1. every call our code makes ----------------------------------------------------------------

STRIPE_DOOR = Path(stripe_api.__file__).resolve()


def _wrappers_that_call_stripe() -> set[str]:
    tree = ast.parse(STRIPE_DOOR.read_text())
    return {func.name for func in tree.body if isinstance(func, ast.FunctionDef)
            and any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "client"
                    for n in ast.walk(func))}


@pytest.fixture
def our_calls(stripe_emulator, monkeypatch):
    """Every request billing/stripe_api.py's client sends, with the wrapper that sent it: the
    client's requestor is watched (the request still goes to the emulator unchanged)."""
    calls = []
    stripe_api._client.cache_clear()
    original = stripe.StripeClient.__init__

    def watched_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        requestor = self._requestor
        send = requestor.request

        def request(method, url, params=None, options=None, **kw):
            frame = next(f for f in inspect.stack() if Path(f.filename).resolve() == STRIPE_DOOR)
            calls.append((frame.function, method.upper(), url, dict(params or {})))
            return send(method, url, params, options, **kw)

        requestor.request = request

    monkeypatch.setattr(stripe.StripeClient, "__init__", watched_init)
    yield calls
    stripe_api._client.cache_clear()


def run_every_path_that_calls_stripe(django_capture_on_commit_callbacks):
    """Each service that calls Stripe, as the app runs it."""
    # Checkout, the customer paying, the webhook settling, the confirmation noted on the payment.
    order = paid_order(email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        services.order_settle(order_id=order.id, actor="webhook", reason="payment_intent.succeeded")
    # A refund, then the sweep mirroring everything (and fetching the refunded charge again).
    services.order_refund(order_id=order.id, actor="support:ana", reason="asked")
    stripe_mirror_sync(since=0)
    # A checkout resumed long after its idempotency keys expired looks its payment up by search.
    old = OrderFactory(email="grace@example.com")
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    services.order_prepare_payment(order=Order.objects.get(pk=old.pk))
    # A payment left unfinished, canceled by support.
    unfinished = order_with_payment_intent(email="linus@example.com")
    services.order_payment_cancel(order_id=unfinished.id, actor="support:ana", reason="asked by phone")
    # A customer erased (their payments listed and their personal fields cleared at Stripe). Their
    # second order is what makes their Stripe Customer (decision 0034).
    OrderFactory(email="edsger@example.com")
    erased = paid_order(email="edsger@example.com")
    services.order_settle(order_id=erased.id, actor="webhook", reason="payment_intent.succeeded")
    services.order_refund(order_id=erased.id, actor="support:ana", reason="before erasure")
    customer_erase(email="edsger@example.com", actor="support:ana")
    # The statement prefix; the webhook endpoint made at Stripe.
    statement_prefix_refresh()
    call_command("stripe_webhook_endpoint", create=True, stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_every_parameter_backstop_sends_is_one_the_sdk_knows(our_calls, stripe_emulator, settings,
                                                             django_capture_on_commit_callbacks):
    run_every_path_that_calls_stripe(django_capture_on_commit_callbacks)

    unknown = {f"{method} {url} ({wrapper}): {name}"
               for wrapper, method, url, params in our_calls
               for name in unknown_params(params, _params_class(method, url))}
    assert unknown == set()


@pytest.mark.django_db
def test_every_call_in_the_stripe_door_was_checked(our_calls, stripe_emulator, settings,
                                                    django_capture_on_commit_callbacks):
    run_every_path_that_calls_stripe(django_capture_on_commit_callbacks)

    assert _wrappers_that_call_stripe() - {wrapper for wrapper, *_ in our_calls} == set()


# -- 2. every object the emulator returns --------------------------------------------------------

# Fields the emulator returns that the SDK's classes do not annotate, each with its reason. Empty
# is the goal: a field here is one real Stripe (at the SDK's version) does not send.
NOT_IN_THE_SDK: dict[tuple[str, str], str] = {}


def _annotations(cls) -> dict:
    merged = {}
    for klass in reversed(cls.__mro__):
        merged.update(getattr(klass, "__annotations__", {}))
    return merged


def _classes_in(annotation, owner) -> list[type]:
    """The StripeObject classes an annotation allows: inner classes, and resources named in a
    ForwardRef ("Charge") or a ListObject[...]."""
    found = []
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, stripe.StripeObject) and arg is not stripe.ListObject:
            found.append(arg)
        elif isinstance(arg, (typing.ForwardRef, str)):
            text = arg.__forward_arg__ if isinstance(arg, typing.ForwardRef) else arg
            for name in re.findall(r"\b[A-Z]\w*\b", text):
                cls = getattr(stripe, name, None) or getattr(owner, name, None)
                if isinstance(cls, type) and issubclass(cls, stripe.StripeObject):
                    found.append(cls)
        elif typing.get_args(arg):
            found.extend(_classes_in(arg, owner))
    return found


def invented_fields(obj: dict, cls: type, where: str) -> list[str]:
    """Fields of `obj` (and of every object inside it) that the SDK class does not annotate."""
    annotations = _annotations(cls)
    invented = []
    for key, value in obj.items():
        name = f"{where}.{key}"
        if key not in annotations:
            if (cls.__name__, key) not in NOT_IN_THE_SDK:
                invented.append(name)
            continue
        if "UntypedStripeObject" in str(annotations[key]):  # metadata and other free-form hashes
            continue
        items = value.get("data", []) if isinstance(value, dict) and value.get("object") == "list" else (
            value if isinstance(value, list) else [value])
        for item in items:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("object"), str) and item["object"] != "list":
                item_cls = get_object_class("V1", item["object"])
                invented.extend(invented_fields(item, item_cls, name))
                continue
            options = _classes_in(annotations[key], cls)
            if options:
                found = [invented_fields(item, option, name) for option in options]
                invented.extend(min(found, key=len))
    return invented


def as_json(obj) -> dict:
    return json.loads(str(obj))


def emulator_objects() -> list[dict]:
    """One of each kind of object, in each state Backstop meets, as the emulator returns them."""
    customer = stripe.Customer.create(email="ada@example.com", name="Ada Lovelace", metadata={"a": "b"},
                                      address={"line1": "1 Rue", "city": "Paris", "country": "FR"})
    paid = stripe.PaymentIntent.create(amount=2000, currency="usd", customer=customer.id, confirm=True,
                                       payment_method="pm_card_visa", payment_method_types=["card"],
                                       statement_descriptor_suffix="ORDER 1", metadata={"order_id": "1"},
                                       expand=["latest_charge.refunds"])
    refund = stripe.Refund.create(payment_intent=paid.id, amount=500, reason="requested_by_customer")
    try:
        stripe.PaymentIntent.create(amount=2000, currency="usd", confirm=True,
                                    payment_method="pm_card_chargeDeclined", payment_method_types=["card"])
    except stripe.CardError as exc:
        declined = exc.json_body["error"]["payment_intent"]
    three_ds = stripe.PaymentIntent.create(amount=2000, currency="usd", confirm=True,
                                           payment_method="pm_card_threeDSecure2Required",
                                           payment_method_types=["card"], return_url="https://shop.test/done")
    canceled = stripe.PaymentIntent.cancel(
        stripe.PaymentIntent.create(amount=2000, currency="usd", automatic_payment_methods={"enabled": True}).id)
    disputed = stripe.PaymentIntent.create(amount=2000, currency="usd", confirm=True,
                                           payment_method="pm_card_createDispute", payment_method_types=["card"])
    charge = stripe.Charge.retrieve(paid.latest_charge.id, expand=["refunds"])
    endpoint = stripe.WebhookEndpoint.create(url="https://shop.test/hook", enabled_events=["*"],
                                             api_version=stripe.api_version)
    objects = [as_json(o) for o in (
        customer, paid, refund, three_ds, canceled, disputed, charge, endpoint,
        stripe.PaymentMethod.retrieve(paid.payment_method),
        stripe.BalanceTransaction.retrieve(charge.balance_transaction),
        stripe.Charge.retrieve(stripe.PaymentIntent.retrieve(disputed.id).latest_charge),
        stripe.Account.retrieve(),
    )] + [declined]
    objects += [as_json(d) for d in stripe.Dispute.list().data]
    objects += [as_json(e) for e in stripe.Event.list(limit=100).data]
    return objects


def test_the_emulator_returns_every_kind_of_object_backstop_reads(emulator):
    kinds = {obj["object"] for obj in emulator_objects()}

    assert kinds >= {"account", "balance_transaction", "charge", "customer", "dispute", "event",
                     "payment_intent", "payment_method", "refund", "webhook_endpoint"}


def test_every_field_the_emulator_returns_is_one_the_sdk_knows(emulator):
    invented = sorted({field for obj in emulator_objects()
                       for field in invented_fields(obj, get_object_class("V1", obj["object"]), obj["object"])})

    assert invented == [], "\n".join(invented)


def test_a_field_the_sdk_does_not_know_is_found_at_any_depth():
    payment_intent = {"id": "pi_1", "object": "payment_intent", "invented": 1,
                      "automatic_payment_methods": {"enabled": True, "made_up": "x"},
                      "metadata": {"anything": "goes"}}

    assert invented_fields(payment_intent, stripe.PaymentIntent, "payment_intent") == [
        "payment_intent.invented", "payment_intent.automatic_payment_methods.made_up"]


def test_every_allowed_difference_has_a_reason():
    assert all(reason.strip() for reason in NOT_IN_THE_SDK.values())
