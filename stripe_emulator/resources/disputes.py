"""Dispute: raised right after a successful charge on the dispute test card."""

from ..app import Context
from ..errors import invalid
from ..events import emit, emit_if_changed, previous_attributes, snapshot
from ..ids import new_id
from ..params import Params, merge_metadata
from . import balance_transactions
from .common import get_or_404, list_page

DISPUTE_FEE = 1500
RESPONSE_WINDOW = 7 * 24 * 60 * 60

EVIDENCE_FIELDS = (
    "access_activity_log", "billing_address", "cancellation_policy",
    "cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
    "customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
    "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
    "product_description", "receipt", "refund_policy", "refund_policy_disclosure",
    "refund_refusal_explanation", "service_date", "service_documentation", "shipping_address",
    "shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
    "uncategorized_file", "uncategorized_text",
)


def create_for_charge(ctx: Context, charge: dict) -> dict:
    # Nobody's API request raises a dispute: the cardholder's bank does.
    automatic = ctx.emu.context(api_base=ctx.api_base, emit_events=ctx.emit_events,
                                 fixed_now=ctx.fixed_now)
    now = ctx.now()
    dispute_id = new_id("du")
    txn = balance_transactions.create(
        ctx,
        amount=-charge["amount"],
        currency=charge["currency"],
        fee=DISPUTE_FEE,
        source=dispute_id,
        kind="adjustment",
        reporting_category="dispute",
        description=f"Chargeback withdrawal for {charge['id']}",
        fee_description="Dispute fee",
    )
    evidence = dict.fromkeys(EVIDENCE_FIELDS)
    evidence["enhanced_evidence"] = {}
    dispute = {
        "id": dispute_id,
        "object": "dispute",
        "amount": charge["amount"],
        # API 2026-08-26 has the list only (stripe-python's Dispute annotates no balance_transaction).
        "balance_transactions": [snapshot(txn)],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": {
            "due_by": now + RESPONSE_WINDOW,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": charge["payment_method_details"]["card"]["brand"],
                "case_type": "chargeback",
                "network_reason_code": "10.4",
            },
            "type": "card",
        },
        "reason": "fraudulent",
        "status": "needs_response",
    }
    ctx.emu.store.insert("dispute", dispute)
    before = dict(charge)
    charge["disputed"] = True
    emit(automatic, "charge.dispute.created", dispute)
    emit(automatic, "charge.dispute.funds_withdrawn", dispute)
    emit(automatic, "charge.updated", charge, previous_attributes(before, charge))
    return dispute


def retrieve(ctx: Context, params: Params, dispute_id: str) -> dict:
    params.finish()
    return get_or_404(ctx, "dispute", dispute_id)


def update(ctx: Context, params: Params, dispute_id: str) -> dict:
    dispute = get_or_404(ctx, "dispute", dispute_id)
    evidence = params.mapping("evidence")
    metadata = params.metadata()
    submit = params.boolean("submit", default=True)
    params.finish()
    if dispute["status"] in ("won", "lost"):
        raise invalid(f"This dispute is already closed ({dispute['status']}).")
    before = dict(dispute)
    if evidence:
        unknown = set(evidence) - set(EVIDENCE_FIELDS)
        if unknown:
            name = sorted(unknown)[0]
            raise invalid(f"Received unknown parameter: evidence[{name}]",
                          param=f"evidence[{name}]", code="parameter_unknown")
        dispute["evidence"] = {**dispute["evidence"], **evidence}
        details = dict(dispute["evidence_details"])
        details["has_evidence"] = True
        if submit:
            details["submission_count"] += 1
            dispute["status"] = "under_review"
        dispute["evidence_details"] = details
    dispute["metadata"] = merge_metadata(dispute["metadata"], metadata)
    emit_if_changed(ctx, "charge.dispute.updated", dispute, before)
    return dispute


def close(ctx: Context, params: Params, dispute_id: str) -> dict:
    params.finish()
    dispute = get_or_404(ctx, "dispute", dispute_id)
    if dispute["status"] not in ("lost", "won"):
        dispute["status"] = "lost"
        emit(ctx, "charge.dispute.closed", dispute)
    return dispute


def list_disputes(ctx: Context, params: Params) -> dict:
    equals = {"charge": params.string("charge"), "payment_intent": params.string("payment_intent")}
    page = list_page(ctx, "dispute", params, "/v1/disputes", equals=equals)
    params.finish()
    return page


ROUTES = [
    ("GET", r"/v1/disputes", list_disputes),
    ("GET", r"/v1/disputes/(?P<dispute_id>[^/]+)", retrieve),
    ("POST", r"/v1/disputes/(?P<dispute_id>[^/]+)", update),
    ("POST", r"/v1/disputes/(?P<dispute_id>[^/]+)/close", close),
]
