"""Refund: full or partial, by charge or by payment_intent; over-refunds are refused."""

from ..app import Context
from ..errors import StripeError, invalid
from ..events import emit, emit_if_changed, previous_attributes
from ..ids import new_id
from ..params import Params, merge_metadata
from . import balance_transactions
from .common import get_or_404, list_page


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def create(ctx: Context, params: Params) -> dict:
    charge_id = params.string("charge")
    pi_id = params.string("payment_intent")
    amount = params.integer("amount", minimum=1)
    reason = params.enum("reason", ("duplicate", "fraudulent", "requested_by_customer"))
    metadata = params.metadata()
    params.accept("refund_application_fee", "reverse_transfer", "instructions_email", "origin",
                  "currency", "customer")
    params.finish()
    if charge_id is None and pi_id is None:
        raise invalid(
            "One of the following params should be provided for this request: payment_intent or "
            "charge."
        )
    if pi_id is not None:
        pi = get_or_404(ctx, "payment_intent", pi_id, param="payment_intent")
        if pi["status"] != "succeeded" or pi["latest_charge"] is None:
            raise StripeError(
                400,
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        if charge_id is not None and charge_id != pi["latest_charge"]:
            raise StripeError(400, f"Charge {charge_id} does not belong to PaymentIntent {pi_id}.",
                              param="charge")
        charge_id = pi["latest_charge"]
    charge = get_or_404(ctx, "charge", charge_id, param="charge")
    if charge["status"] != "succeeded":
        raise StripeError(400, f"Charge {charge_id} has not succeeded and cannot be refunded.",
                          param="charge")
    if charge["disputed"]:
        raise StripeError(400, f"Charge {charge_id} has been charged back; cannot issue a refund.",
                          code="charge_disputed", param="charge")
    if charge["refunded"]:
        raise StripeError(400, f"Charge {charge_id} has already been refunded.",
                          code="charge_already_refunded", param="charge")
    remaining = charge["amount"] - charge["amount_refunded"]
    if amount is None:
        amount = remaining
    if amount > remaining:
        raise StripeError(
            400,
            f"Refund amount ({_dollars(amount)}) is greater than unrefunded amount on charge "
            f"({_dollars(remaining)})",
            code="amount_too_large",
            param="amount",
        )
    refund_id = new_id("re")
    txn = balance_transactions.create(
        ctx,
        amount=-amount,
        currency=charge["currency"],
        fee=0,
        source=refund_id,
        kind="refund",
        reporting_category="refund",
        description="REFUND FOR CHARGE" + (f" ({charge['description']})"
                                          if charge["description"] else ""),
        fee_description="",
    )
    refund = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn["id"],
        "charge": charge_id,
        "created": ctx.now(),
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {
            "card": {"reference_status": "pending", "reference_type": "acquirer_reference_number",
                     "type": "refund"},
            "type": "card",
        },
        "metadata": {k: v for k, v in (metadata or {}).items() if v != ""},
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    ctx.emu.store.insert("refund", refund)
    before = dict(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    emit(ctx, "refund.created", refund)
    emit(ctx, "charge.refunded", charge, previous_attributes(before, charge))
    return refund


FAILURE_REASONS = ("lost_or_stolen_card", "expired_or_canceled_card", "declined", "unknown")


def fail(ctx: Context, refund: dict, failure_reason: str) -> dict:
    """The card's bank sent the refund back (Stripe's test card 4000000000005126 does this "some
    time later"): the refund is `failed`, the money is in the balance again and the charge counts it
    as not refunded, so it may be refunded again. Stripe says so with `charge.refund.updated`."""
    if refund["status"] not in ("succeeded", "pending"):
        raise StripeError(400, f"Refund {refund['id']} is {refund['status']} and cannot fail.")
    if failure_reason not in FAILURE_REASONS:
        raise StripeError(400, f"Invalid failure_reason: must be one of {', '.join(FAILURE_REASONS)}")
    charge = get_or_404(ctx, "charge", refund["charge"])
    txn = balance_transactions.create(
        ctx, amount=refund["amount"], currency=refund["currency"], fee=0, source=refund["id"],
        kind="refund_failure", reporting_category="refund_failure", description="REFUND FAILURE",
        fee_description="",
    )
    before_refund = dict(refund)
    refund.update(status="failed", failure_reason=failure_reason, failure_balance_transaction=txn["id"])
    before_charge = dict(charge)
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = False
    emit(ctx, "charge.refund.updated", refund, previous_attributes(before_refund, refund))
    emit(ctx, "refund.updated", refund, previous_attributes(before_refund, refund))
    emit(ctx, "refund.failed", refund, previous_attributes(before_refund, refund))
    emit(ctx, "charge.updated", charge, previous_attributes(before_charge, charge))
    return refund


def retrieve(ctx: Context, params: Params, refund_id: str) -> dict:
    params.finish()
    return get_or_404(ctx, "refund", refund_id)


def update(ctx: Context, params: Params, refund_id: str) -> dict:
    refund = get_or_404(ctx, "refund", refund_id)
    metadata = params.metadata()
    params.finish()
    before = dict(refund)
    refund["metadata"] = merge_metadata(refund["metadata"], metadata)
    emit_if_changed(ctx, "refund.updated", refund, before)
    return refund


def list_refunds(ctx: Context, params: Params) -> dict:
    equals = {"charge": params.string("charge"), "payment_intent": params.string("payment_intent")}
    page = list_page(ctx, "refund", params, "/v1/refunds", equals=equals)
    params.finish()
    return page


ROUTES = [
    ("POST", r"/v1/refunds", create),
    ("GET", r"/v1/refunds", list_refunds),
    ("GET", r"/v1/refunds/(?P<refund_id>[^/]+)", retrieve),
    ("POST", r"/v1/refunds/(?P<refund_id>[^/]+)", update),
]
