"""BalanceTransaction: one per successful charge, per refund and per dispute."""

from ..app import Context
from ..ids import new_id
from ..params import Params
from .common import get_or_404, list_page

AVAILABLE_AFTER = 2 * 24 * 60 * 60  # the default two-day payout schedule


def card_fee(amount: int) -> int:
    # US standard pricing: 2.9% + 30 cents.
    return round(amount * 0.029) + 30


def create(ctx: Context, *, amount: int, currency: str, fee: int, source: str, kind: str,
           reporting_category: str, description: str | None, fee_description: str) -> dict:
    now = ctx.now()
    txn = {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now + AVAILABLE_AFTER,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": (
            [{"amount": fee, "application": None, "currency": currency,
              "description": fee_description, "type": "stripe_fee"}]
            if fee else []
        ),
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": "pending",
        "type": kind,
    }
    ctx.emu.store.insert("balance_transaction", txn)
    return txn


def retrieve(ctx: Context, params: Params, txn_id: str) -> dict:
    params.finish()
    return get_or_404(ctx, "balance_transaction", txn_id)


def list_transactions(ctx: Context, params: Params) -> dict:
    source = params.string("source")
    kind = params.string("type")
    params.accept("currency", "payout")
    page = list_page(ctx, "balance_transaction", params, "/v1/balance_transactions",
                     equals={"source": source, "type": kind})
    params.finish()
    return page


ROUTES = [
    ("GET", r"/v1/balance_transactions", list_transactions),
    ("GET", r"/v1/balance_transactions/(?P<txn_id>[^/]+)", retrieve),
]
