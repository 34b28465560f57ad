"""PaymentIntent: create, retrieve, update, confirm, cancel, list, search, and 3-D Secure.

Confirming runs the card's test behaviour (see cards.py): a charge that succeeds, a decline (402,
the PaymentIntent goes back to ``requires_payment_method`` and may be confirmed again), or
``requires_action`` with a redirect to the emulator's 3-D Secure page, resolved by
``/_emulator/3ds/<id>/complete`` or ``/fail``.
"""

import contextlib

from ..app import Context
from ..cards import AUTHENTICATE, DECLINE, DISPUTE, behaviour
from ..errors import StripeError, doc_url, invalid
from ..events import emit, snapshot
from ..ids import new_id, random_string
from ..params import Params, merge_metadata
from . import charges, disputes, payment_methods
from .common import get_or_404, list_page, search_page, search_total_count

SEARCH_FIELDS = {"amount", "created", "currency", "customer", "metadata", "status"}
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation",
              "requires_action", "processing")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")

# Real parameters the emulator accepts and ignores (no behaviour to emulate for cards).
IGNORED_CREATE = ("application_fee_amount", "on_behalf_of", "transfer_data", "radar_options",
                  "payment_method_configuration", "mandate", "mandate_data", "off_session",
                  "error_on_requires_action", "use_stripe_sdk", "confirmation_token",
                  "payment_method_options", "excluded_payment_method_types", "hooks",
                  "amount_details", "payment_details")
IGNORED_CONFIRM = ("mandate", "mandate_data", "off_session", "error_on_requires_action",
                   "use_stripe_sdk", "payment_method_options", "radar_options",
                   "confirmation_token", "expected_payment_method_type", "client_context",
                   "payment_details", "setup_future_usage_options")

# What a publishable key may see of a PaymentIntent (Stripe hides the merchant-side fields).
PUBLIC_FIELDS = (
    "id", "object", "amount", "amount_details", "automatic_payment_methods", "canceled_at",
    "cancellation_reason", "capture_method", "client_secret", "confirmation_method", "created",
    "currency", "description", "excluded_payment_method_types", "last_payment_error",
    "livemode", "next_action", "payment_method", "payment_method_configuration_details",
    "payment_method_types", "processing", "receipt_email", "setup_future_usage", "shipping",
    "source", "status",
)


# With automatic_payment_methods, Stripe offers what the Dashboard enables; a new account has cards
# and Link on. The emulator lists them as Stripe would, and runs cards only (its Payment Element
# says so): Backstop asks for cards explicitly (docs/decisions/0029-cards-only.md).
DASHBOARD_METHODS = ["card", "link"]
EMULATED_METHODS = ("card",)


def _method_types(params: Params) -> list[str] | None:
    types = params.array("payment_method_types")
    if types is None:
        return None
    unknown = [t for t in types if t not in EMULATED_METHODS]
    if not types or unknown:
        raise invalid(f"The payment method type {(unknown or [''])[0]!r} is not emulated; only card "
                      "payments are (their delayed states are not).", param="payment_method_types")
    return types


def public_view(pi: dict) -> dict:
    return {field: pi.get(field) for field in PUBLIC_FIELDS}


def _currency(params: Params, required: bool) -> str | None:
    currency = params.string("currency", required=required)
    if currency is None:
        return None
    if len(currency) != 3 or not currency.isalpha():
        raise invalid(f"Invalid currency: {currency}.", param="currency")
    return currency.lower()


def _amount(params: Params, required: bool) -> int | None:
    amount = params.integer("amount", required=required, minimum=1)
    if amount is not None and amount < 50:
        raise invalid("Amount must be at least $0.50 usd", param="amount",
                      code="amount_too_small")
    if amount is not None and amount > 99_999_999:
        raise invalid("Amount must be no more than $999,999.99", param="amount",
                      code="amount_too_large")
    return amount


class ConfirmRequest:
    """The confirm-time parameters, read (and validated) before anything changes."""

    def __init__(self, ctx: Context, params: Params):
        self.payment_method = params.string("payment_method")
        self.payment_method_data = params.mapping("payment_method_data")
        self.return_url = params.string("return_url")
        self.receipt_email = params.string("receipt_email") if "receipt_email" in params else ...
        self.setup_future_usage = (
            params.enum("setup_future_usage", ("on_session", "off_session"))
            if "setup_future_usage" in params else ...
        )
        self.shipping = payment_methods.shipping(params.raw("shipping"), delivery=True) if "shipping" in params else ...
        if self.payment_method and self.payment_method_data:
            raise invalid("You may only specify one of these parameters: payment_method, "
                          "payment_method_data.", param="payment_method_data")
        if self.payment_method_data is not None:
            kind = self.payment_method_data.get("type")
            if kind != "card":
                raise invalid("Only payment_method_data[type]=card is emulated.",
                              param="payment_method_data[type]")
            if not isinstance(self.payment_method_data.get("card"), dict):
                raise invalid("Missing required param: payment_method_data[card].",
                              param="payment_method_data[card]", code="parameter_missing")

    def payment_method_object(self, ctx: Context, pi: dict) -> dict | None:
        if self.payment_method is not None:
            return payment_methods.resolve(ctx, self.payment_method)
        if self.payment_method_data is not None:
            data = self.payment_method_data
            details = payment_methods.billing_details(
                data.get("billing_details"), "payment_method_data[billing_details]"
            )
            metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else None
            return payment_methods.from_card_data(
                ctx, data["card"], details, metadata, param="payment_method_data[card]"
            )
        if pi["payment_method"] is not None:
            return ctx.emu.store["payment_method"].get(pi["payment_method"])
        return None


def confirm(ctx: Context, pi: dict, request: ConfirmRequest) -> dict:
    if pi["status"] not in CONFIRMABLE:
        raise _unexpected_state(pi, "confirm")
    pm = request.payment_method_object(ctx, pi)
    if pm is None:
        raise StripeError(
            400,
            "You cannot confirm this PaymentIntent because it's missing a payment method. To "
            "confirm the PaymentIntent with "
            f"{pi['customer'] or 'a customer'}, specify a payment method attached to this "
            "customer along with the customer ID.",
            code="payment_intent_unexpected_state",
            payment_intent=snapshot(pi),
        )
    if request.receipt_email is not ...:
        pi["receipt_email"] = request.receipt_email
    if request.setup_future_usage is not ...:
        pi["setup_future_usage"] = request.setup_future_usage
    if request.shipping is not ...:
        pi["shipping"] = request.shipping
    private = ctx.emu.store.private.setdefault(pi["id"], {})
    if request.return_url is not None:
        private["return_url"] = request.return_url
    pi["payment_method"] = pm["id"]
    pi["last_payment_error"] = None
    pi["next_action"] = None
    card = behaviour(payment_methods.number_of(ctx, pm))
    if card.outcome == AUTHENTICATE and private.get("authenticated_pm") != pm["id"]:
        pi["status"] = "requires_action"
        pi["next_action"] = {
            "redirect_to_url": {
                "return_url": private.get("return_url"),
                "url": f"{ctx.api_base}/_emulator/3ds/{pi['id']}?client_secret="
                f"{pi['client_secret']}",
            },
            "type": "redirect_to_url",
        }
        emit(ctx, "payment_intent.requires_action", pi)
        return pi
    return attempt_charge(ctx, pi, pm, three_d_secure=card.outcome == AUTHENTICATE)


def attempt_charge(ctx: Context, pi: dict, pm: dict, three_d_secure: bool = False) -> dict:
    card = behaviour(payment_methods.number_of(ctx, pm))
    decline = card.decline if card.outcome == DECLINE else None
    charge = charges.create_for_payment_intent(ctx, pi, pm, decline, three_d_secure)
    pi["latest_charge"] = charge["id"]
    if decline is not None:
        pi["status"] = "requires_payment_method"
        pi["payment_method"] = None
        pi["last_payment_error"] = {
            "advice_code": decline.advice_code,
            "charge": charge["id"],
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": doc_url(decline.code),
            "message": decline.message,
            "network_decline_code": decline.network_decline_code,
            "param": decline.param,
            "payment_method": snapshot(pm),
            "type": "card_error",
        }
        emit(ctx, "payment_intent.payment_failed", pi)
        raise StripeError(
            402,
            decline.message,
            type="card_error",
            code=decline.code,
            decline_code=decline.decline_code,
            advice_code=decline.advice_code,
            param=decline.param,
            charge=charge["id"],
            payment_intent=snapshot(public_view(pi) if ctx.publishable else pi),
            payment_method=snapshot(pm),
        )
    pi["status"] = "succeeded"
    pi["amount_received"] = pi["amount"]
    emit(ctx, "payment_intent.succeeded", pi)
    if pi["setup_future_usage"] and pi["customer"] and pm["customer"] is None:
        payment_methods.attach(ctx, pm, pi["customer"])
    if card.outcome == DISPUTE:
        disputes.create_for_charge(ctx, charge)
    return pi


def _unexpected_state(pi: dict, action: str) -> StripeError:
    if pi["status"] == "succeeded" and action != "cancel":  # a cancel names the status, as for any other
        message = (f"You cannot {action} this PaymentIntent because it has already succeeded "
                   "after being previously confirmed.")
    else:
        message = (f"You cannot {action} this PaymentIntent because it has a status of "
                   f"{pi['status']}.")
        if action == "cancel":
            message += (" Only a PaymentIntent with one of the following statuses may be "
                        f"canceled: {', '.join(CANCELABLE)}.")
    return StripeError(400, message, code="payment_intent_unexpected_state",
                       payment_intent=snapshot(pi))


# -- handlers ----------------------------------------------------------------------------------


def create(ctx: Context, params: Params) -> dict:
    amount = _amount(params, required=True)
    currency = _currency(params, required=True)
    automatic = params.mapping("automatic_payment_methods")
    types = _method_types(params)
    customer_id = params.string("customer")
    capture_method = params.enum("capture_method", ("automatic", "automatic_async", "manual"))
    confirmation_method = params.enum("confirmation_method", ("automatic", "manual"))
    do_confirm = params.boolean("confirm", default=False)
    description = params.string("description")
    metadata = params.metadata()
    receipt_email = params.string("receipt_email")
    setup_future_usage = params.enum("setup_future_usage", ("on_session", "off_session"))
    shipping = payment_methods.shipping(params.raw("shipping"), delivery=True)
    descriptor = params.string("statement_descriptor")
    suffix = params.string("statement_descriptor_suffix")
    transfer_group = params.string("transfer_group")
    request = ConfirmRequest(ctx, params)
    params.accept(*IGNORED_CREATE)
    params.finish()
    if automatic is not None and types is not None:
        raise invalid("You may only specify one of these parameters: automatic_payment_methods, "
                      "payment_method_types.", param="automatic_payment_methods")
    if capture_method == "manual":
        raise invalid("capture_method=manual is not emulated (Backstop captures automatically).",
                      param="capture_method")
    if request.payment_method_data is not None and not do_confirm:
        raise invalid("You can only specify `payment_method_data` when `confirm` is true.",
                      param="payment_method_data")
    if request.return_url is not None and not do_confirm:
        raise invalid("You can only specify `return_url` when `confirm` is true.",
                      param="return_url")
    if suffix is not None and len(suffix) > 22:
        raise invalid("The statement descriptor suffix must be at most 22 characters.",
                      param="statement_descriptor_suffix")
    if customer_id is not None:
        get_or_404(ctx, "customer", customer_id, param="customer")
    automatic_enabled = None
    if automatic is not None:
        automatic_enabled = {
            "allow_redirects": automatic.get("allow_redirects", "always"),
            "enabled": automatic.get("enabled") in ("true", True),
        }
    elif types is None:
        # Since 2023-08-16 a PaymentIntent without payment_method_types uses automatic methods.
        automatic_enabled = {"allow_redirects": "always", "enabled": True}
    pi_id = new_id("pi")
    pi = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic_enabled,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method or "automatic_async",
        "client_secret": f"{pi_id}_secret_{random_string(25)}",
        "confirmation_method": confirmation_method or "automatic",
        "created": ctx.now(),
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {k: v for k, v in (metadata or {}).items() if v != ""},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {"installments": None, "mandate_options": None, "network": None,
                     "request_three_d_secure": "automatic"},
        },
        "payment_method_types": list(DASHBOARD_METHODS) if types is None else types,
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": shipping,
        "source": None,
        "statement_descriptor": descriptor,
        "statement_descriptor_suffix": suffix,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": transfer_group,
    }
    if request.payment_method is not None:
        pm = payment_methods.resolve(ctx, request.payment_method)
        pi["payment_method"] = pm["id"]
        pi["status"] = "requires_confirmation"
        request.payment_method = pm["id"]
    ctx.emu.store.insert("payment_intent", pi)
    emit(ctx, "payment_intent.created", pi)
    if do_confirm:
        confirm(ctx, pi, request)
    return pi


def _check_client_secret(ctx: Context, params: Params, pi: dict) -> None:
    secret = params.string("client_secret")
    if not ctx.publishable:
        return
    if secret is None:
        raise invalid("Missing required param: client_secret.", param="client_secret",
                      code="parameter_missing")
    if secret != pi["client_secret"]:
        raise invalid("The client_secret provided does not match the client_secret associated "
                      "with the PaymentIntent.", param="client_secret")


def retrieve(ctx: Context, params: Params, pi_id: str) -> dict:
    pi = get_or_404(ctx, "payment_intent", pi_id)
    _check_client_secret(ctx, params, pi)
    params.finish()
    return public_view(pi) if ctx.publishable else pi


def update(ctx: Context, params: Params, pi_id: str) -> dict:
    pi = get_or_404(ctx, "payment_intent", pi_id)
    amount = _amount(params, required=False)
    currency = _currency(params, required=False)
    changes = {}
    for name in ("description", "receipt_email", "statement_descriptor",
                 "statement_descriptor_suffix", "transfer_group"):
        if name in params:
            changes[name] = params.string(name)
    if "setup_future_usage" in params:
        changes["setup_future_usage"] = params.enum("setup_future_usage",
                                                    ("on_session", "off_session"))
    if "shipping" in params:
        changes["shipping"] = payment_methods.shipping(params.raw("shipping"), delivery=True)
    if "payment_method_types" in params:
        changes["payment_method_types"] = _method_types(params)
    customer_id = params.string("customer")
    pm_id = params.string("payment_method")
    metadata = params.metadata()
    params.accept("payment_method_options", "payment_method_data", "application_fee_amount",
                  "capture_method", "transfer_data", "payment_method_configuration",
                  "excluded_payment_method_types", "amount_details", "payment_details")
    params.finish()
    money_fields = {"amount", "currency", "customer", "payment_method", "payment_method_types"}
    touches_money = (amount is not None or currency is not None or customer_id is not None
                     or pm_id is not None or "payment_method_types" in changes)
    if touches_money and pi["status"] in ("succeeded", "canceled", "processing"):
        raise StripeError(
            400,
            f"This PaymentIntent's {', '.join(sorted(money_fields & set(params.data)))} could "
            f"not be updated because it has a status of {pi['status']}. You may only update the "
            "amount of a PaymentIntent with one of the following statuses: "
            "requires_payment_method, requires_confirmation, requires_action.",
            code="payment_intent_unexpected_state",
            payment_intent=snapshot(pi),
        )
    if customer_id is not None:
        get_or_404(ctx, "customer", customer_id, param="customer")
    pm = payment_methods.resolve(ctx, pm_id) if pm_id is not None else None
    table = ctx.emu.store["payment_intent"]
    index_before = table.index_snapshot(pi)
    pi.update(changes)
    if amount is not None:
        pi["amount"] = amount
    if currency is not None:
        pi["currency"] = currency
    if customer_id is not None:
        pi["customer"] = customer_id
    if pm is not None:
        pi["payment_method"] = pm["id"]
        pi["status"] = "requires_confirmation"
    pi["metadata"] = merge_metadata(pi["metadata"], metadata)
    table.reindex(pi, index_before)
    return pi


def confirm_handler(ctx: Context, params: Params, pi_id: str) -> dict:
    pi = get_or_404(ctx, "payment_intent", pi_id)
    _check_client_secret(ctx, params, pi)
    request = ConfirmRequest(ctx, params)
    params.accept(*IGNORED_CONFIRM)
    if ctx.publishable:
        # Stripe.js adds tracking fields to payment_method_data; they change nothing here.
        params.accept("key", "_stripe_version", "_stripe_account")
    params.finish()
    confirm(ctx, pi, request)
    return public_view(pi) if ctx.publishable else pi


def cancel(ctx: Context, params: Params, pi_id: str) -> dict:
    pi = get_or_404(ctx, "payment_intent", pi_id)
    reason = params.enum("cancellation_reason", CANCELLATION_REASONS)
    params.finish()
    if pi["status"] not in CANCELABLE:
        raise _unexpected_state(pi, "cancel")
    pi["status"] = "canceled"
    pi["canceled_at"] = ctx.now()
    pi["cancellation_reason"] = reason
    pi["next_action"] = None
    emit(ctx, "payment_intent.canceled", pi)
    return pi


def list_intents(ctx: Context, params: Params) -> dict:
    customer_id = params.string("customer")
    params.accept("customer_account")
    page = list_page(ctx, "payment_intent", params, "/v1/payment_intents",
                     equals={"customer": customer_id})
    params.finish()
    return page


def search(ctx: Context, params: Params) -> dict:
    result = search_page(ctx, "payment_intent", params, "/v1/payment_intents/search",
                         SEARCH_FIELDS, "payment_intents")
    params.finish()
    if "total_count" in ctx.expand:
        search_total_count(ctx, "payment_intent", result, params.data, SEARCH_FIELDS,
                           "payment_intents")
    return result


# -- 3-D Secure challenge (driven by the emulator's challenge page, not by Stripe's API) ---------


def complete_authentication(ctx: Context, pi: dict) -> dict:
    if pi["status"] != "requires_action":
        raise _unexpected_state(pi, "authenticate")
    pm = ctx.emu.store["payment_method"].get(pi["payment_method"])
    ctx.emu.store.private.setdefault(pi["id"], {})["authenticated_pm"] = pm["id"]
    pi["next_action"] = None
    # A decline after authentication leaves the PaymentIntent to be confirmed again.
    with contextlib.suppress(StripeError):
        attempt_charge(ctx, pi, pm, three_d_secure=True)
    return pi


def fail_authentication(ctx: Context, pi: dict) -> dict:
    if pi["status"] != "requires_action":
        raise _unexpected_state(pi, "authenticate")
    pm = ctx.emu.store["payment_method"].get(pi["payment_method"])
    pi["status"] = "requires_payment_method"
    pi["next_action"] = None
    pi["payment_method"] = None
    pi["last_payment_error"] = {
        "code": "payment_intent_authentication_failure",
        "doc_url": doc_url("payment_intent_authentication_failure"),
        "message": "The provided PaymentMethod has failed authentication. You can provide "
        "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent "
        "again.",
        "payment_method": snapshot(pm),
        "type": "invalid_request_error",
    }
    emit(ctx, "payment_intent.payment_failed", pi)
    return pi


ROUTES = [
    ("POST", r"/v1/payment_intents", create),
    ("GET", r"/v1/payment_intents", list_intents),
    ("GET", r"/v1/payment_intents/search", search),
    ("GET", r"/v1/payment_intents/(?P<pi_id>[^/]+)", retrieve),
    ("POST", r"/v1/payment_intents/(?P<pi_id>[^/]+)", update),
    ("POST", r"/v1/payment_intents/(?P<pi_id>[^/]+)/confirm", confirm_handler),
    ("POST", r"/v1/payment_intents/(?P<pi_id>[^/]+)/cancel", cancel),
]

# The only calls a publishable key may make (what Stripe.js needs for the Payment Element).
PUBLISHABLE_ROUTES = {retrieve, confirm_handler}
