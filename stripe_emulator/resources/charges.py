"""Charge: created by confirming a PaymentIntent; retrieve, update, list, search."""

from ..app import Context
from ..cards import Decline
from ..events import emit, emit_if_changed
from ..ids import new_id
from ..params import Params, merge_metadata
from . import balance_transactions
from .account import statement_prefix
from .common import get_or_404, list_page, search_page, search_total_count

SEARCH_FIELDS = {"amount", "billing_details", "created", "currency", "customer", "disputed",
                 "metadata", "payment_method_details", "refunded", "status", "payment_intent"}

APPROVED = {
    "advice_code": None,
    "network_advice_code": None,
    "network_decline_code": None,
    "network_status": "approved_by_network",
    "reason": None,
    "risk_level": "normal",
    "risk_score": 32,
    "seller_message": "Payment complete.",
    "type": "authorized",
}


def statement_descriptor(prefix: str, suffix: str | None) -> str:
    if suffix:
        return f"{prefix}* {suffix}".upper()[:22]
    return prefix


def _outcome(decline: Decline | None) -> dict:
    if decline is None:
        return APPROVED
    return {
        "advice_code": decline.advice_code,
        "network_advice_code": None,
        "network_decline_code": decline.network_decline_code,
        "network_status": "declined_by_network",
        "reason": decline.decline_code,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": decline.seller_message,
        "type": "issuer_declined",
    }


def _card_details(pm: dict, amount: int, succeeded: bool, three_d_secure: bool) -> dict:
    card = pm["card"]
    return {
        "card": {
            "amount_authorized": amount if succeeded else None,
            "authorization_code": "123456" if succeeded else None,
            "brand": card["brand"],
            "checks": card["checks"],
            "country": card["country"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "extended_authorization": {"status": "disabled"},
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": card["last4"],
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": card["brand"],
            "network_token": {"used": False},
            "network_transaction_id": "100000000000001" if succeeded else None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": (
                {
                    "authentication_flow": "challenge",
                    "electronic_commerce_indicator": "05",
                    "exemption_indicator": None,
                    "result": "authenticated",
                    "result_reason": None,
                    "transaction_id": "00000000-0000-0000-0000-000000000000",
                    "version": "2.2.0",
                }
                if three_d_secure
                else None
            ),
            "wallet": None,
        },
        "type": "card",
    }


def create_for_payment_intent(ctx: Context, pi: dict, pm: dict, decline: Decline | None,
                              three_d_secure: bool) -> dict:
    """One charge attempt for a PaymentIntent; succeeded unless ``decline`` is given."""
    succeeded = decline is None
    amount = pi["amount"]
    charge_id = new_id("ch")
    charge = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": statement_descriptor(statement_prefix(ctx.emu),
                                                                pi["statement_descriptor_suffix"]),
        "captured": succeeded,
        "created": ctx.now(),
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if succeeded else decline.code,
        "failure_message": None if succeeded else decline.message,
        "fraud_details": {},
        "livemode": False,
        "metadata": pi["metadata"],
        "on_behalf_of": None,
        "outcome": _outcome(decline),
        "paid": succeeded,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": _card_details(pm, amount, succeeded, three_d_secure),
        "radar_options": {},
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{ctx.api_base}/_emulator/receipts/{charge_id}" if succeeded else None,
        "refunded": False,
        "review": None,
        "shipping": pi["shipping"],
        "source": None,
        "source_transfer": None,
        "statement_descriptor": pi["statement_descriptor"],
        "statement_descriptor_suffix": pi["statement_descriptor_suffix"],
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": pi["transfer_group"],
    }
    if succeeded:
        txn = balance_transactions.create(
            ctx,
            amount=amount,
            currency=pi["currency"],
            fee=balance_transactions.card_fee(amount),
            source=charge_id,
            kind="charge",
            reporting_category="charge",
            description=pi["description"],
            fee_description="Stripe processing fees",
        )
        charge["balance_transaction"] = txn["id"]
    ctx.emu.store.insert("charge", charge)
    emit(ctx, "charge.succeeded" if succeeded else "charge.failed", charge)
    return charge


# -- handlers ----------------------------------------------------------------------------------


def retrieve(ctx: Context, params: Params, charge_id: str) -> dict:
    params.finish()
    return get_or_404(ctx, "charge", charge_id)


def update(ctx: Context, params: Params, charge_id: str) -> dict:
    charge = get_or_404(ctx, "charge", charge_id)
    changes = {}
    for name in ("description", "receipt_email", "transfer_group"):
        if name in params:
            changes[name] = params.string(name)
    metadata = params.metadata()
    fraud_details = params.mapping("fraud_details")
    params.accept("shipping")
    params.finish()
    table = ctx.emu.store["charge"]
    before = dict(charge)
    index_before = table.index_snapshot(charge)
    charge.update(changes)
    charge["metadata"] = merge_metadata(charge["metadata"], metadata)
    if fraud_details is not None:
        charge["fraud_details"] = {**charge["fraud_details"], **fraud_details}
    table.reindex(charge, index_before)
    emit_if_changed(ctx, "charge.updated", charge, before)
    return charge


def list_charges(ctx: Context, params: Params) -> dict:
    equals = {
        "customer": params.string("customer"),
        "payment_intent": params.string("payment_intent"),
        "transfer_group": params.string("transfer_group"),
    }
    page = list_page(ctx, "charge", params, "/v1/charges", equals=equals)
    params.finish()
    return page


def search(ctx: Context, params: Params) -> dict:
    result = search_page(ctx, "charge", params, "/v1/charges/search", SEARCH_FIELDS, "charges")
    params.finish()
    if "total_count" in ctx.expand:
        search_total_count(ctx, "charge", result, params.data, SEARCH_FIELDS, "charges")
    return result


ROUTES = [
    ("GET", r"/v1/charges", list_charges),
    ("GET", r"/v1/charges/search", search),
    ("GET", r"/v1/charges/(?P<charge_id>[^/]+)", retrieve),
    ("POST", r"/v1/charges/(?P<charge_id>[^/]+)", update),
]
