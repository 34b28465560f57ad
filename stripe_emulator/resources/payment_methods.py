"""PaymentMethod (cards only): created from raw numbers (publishable key, as Stripe.js does), or
from Stripe's test ids such as ``pm_card_visa`` (each use makes a new PaymentMethod)."""

from ..app import Context
from ..cards import TEST_PAYMENT_METHODS, card_details, luhn_valid
from ..errors import StripeError, invalid, missing
from ..events import emit
from ..ids import new_id
from ..params import Params, merge_metadata, to_int
from .common import get_or_404, list_page

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")

RAW_CARD_REFUSED = (
    "Sending credit card numbers directly to the Stripe API is generally unsafe. We suggest you "
    "use test tokens that map to the test card you are using, see https://stripe.com/docs/testing."
    " To enable raw card data APIs in test mode, see "
    "https://support.stripe.com/questions/enabling-access-to-raw-card-data-apis."
)


def address(value, param: str) -> dict | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param=param)
    unknown = set(value) - set(ADDRESS_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise invalid(f"Received unknown parameter: {param}[{name}]", param=f"{param}[{name}]",
                      code="parameter_unknown")
    return {field: value.get(field) or None for field in ADDRESS_FIELDS}


def shipping(value, *, delivery: bool = False) -> dict | None:
    """A ``shipping`` hash; a PaymentIntent's also carries the delivery fields."""
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise invalid("Invalid object: shipping must be a hash", param="shipping")
    result = {"address": address(value.get("address"), "shipping[address]")}
    for field in ("carrier", "name", "phone", "tracking_number") if delivery else ("name", "phone"):
        result[field] = value.get(field) or None
    return result


def billing_details(value, param: str = "billing_details") -> dict:
    value = value or {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param=param)
    return {
        "address": address(value.get("address"), f"{param}[address]")
        or dict.fromkeys(ADDRESS_FIELDS),
        "email": value.get("email") or None,
        "name": value.get("name") or None,
        "phone": value.get("phone") or None,
        "tax_id": None,
    }


def _build(ctx: Context, number: str, exp_month: int, exp_year: int, cvc_given: bool,
           details: dict, metadata: dict | None) -> dict:
    pm = {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": details,
        "card": card_details(number, exp_month, exp_year, cvc_given),
        "created": ctx.now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata or {},
        "type": "card",
    }
    ctx.emu.store.insert("payment_method", pm)
    ctx.emu.store.private[pm["id"]] = {"number": number}
    return pm


def from_test_id(ctx: Context, test_id: str) -> dict:
    number = TEST_PAYMENT_METHODS[test_id]
    year = ctx.now() // 31_556_952 + 1970
    return _build(ctx, number, 12, year + 1, True, billing_details(None), None)


def from_card_data(ctx: Context, card: dict, details: dict, metadata: dict | None,
                   param: str = "card") -> dict:
    """A PaymentMethod from raw card fields; only Stripe.js (a publishable key) may send them."""
    if not ctx.publishable:
        raise StripeError(402, RAW_CARD_REFUSED, type="invalid_request_error")
    number = str(card.get("number", "")).replace(" ", "")
    if not number:
        raise invalid("Missing required param: card[number].", param=f"{param}[number]",
                      code="parameter_missing")
    if not luhn_valid(number):
        raise StripeError(402, "Your card number is incorrect.", type="card_error",
                          code="incorrect_number", param="number")
    exp_month = to_int(card.get("exp_month", ""), f"{param}[exp_month]")
    exp_year = to_int(card.get("exp_year", ""), f"{param}[exp_year]")
    if exp_year < 100:
        exp_year += 2000
    if not 1 <= exp_month <= 12:
        raise StripeError(402, "Your card's expiration month is invalid.", type="card_error",
                          code="invalid_expiry_month", param="exp_month")
    if exp_year < ctx.now() // 31_556_952 + 1970:
        raise StripeError(402, "Your card's expiration year is invalid.", type="card_error",
                          code="invalid_expiry_year", param="exp_year")
    cvc = str(card.get("cvc", ""))
    if cvc and not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise StripeError(402, "Your card's security code is invalid.", type="card_error",
                          code="invalid_cvc", param="cvc")
    return _build(ctx, number, exp_month, exp_year, bool(cvc), details, metadata)


def resolve(ctx: Context, pm_id: str, param: str = "payment_method") -> dict:
    """An existing PaymentMethod, or a new one for a Stripe test id such as ``pm_card_visa``."""
    if pm_id in TEST_PAYMENT_METHODS:
        return from_test_id(ctx, pm_id)
    pm = ctx.emu.store["payment_method"].get(pm_id)
    if pm is None:
        raise missing("PaymentMethod", pm_id, param=param)
    return pm


def number_of(ctx: Context, pm: dict) -> str:
    return ctx.emu.store.private[pm["id"]]["number"]


def attach(ctx: Context, pm: dict, customer_id: str) -> dict:
    if pm["customer"] == customer_id:
        return pm
    if pm["customer"] is not None:
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    table = ctx.emu.store["payment_method"]
    before = table.index_snapshot(pm)
    pm["customer"] = customer_id
    table.reindex(pm, before)
    emit(ctx, "payment_method.attached", pm)
    return pm


# -- handlers ----------------------------------------------------------------------------------


def create(ctx: Context, params: Params) -> dict:
    params.enum("type", ("card",), required=True)
    card = params.mapping("card")
    details = billing_details(params.mapping("billing_details"))
    metadata = params.metadata()
    params.accept("allow_redisplay", "radar_options", "payment_user_agent", "time_on_page",
                  "guid", "muid", "sid", "referrer", "key")
    params.finish()
    if card is None:
        raise invalid("Missing required param: card.", param="card", code="parameter_missing")
    if "token" in card:
        raise invalid("Card tokens are not emulated; use a test PaymentMethod id such as "
                      "pm_card_visa.", param="card[token]")
    return from_card_data(ctx, card, details, metadata)


def retrieve(ctx: Context, params: Params, pm_id: str) -> dict:
    params.finish()
    return get_or_404(ctx, "payment_method", pm_id)


def update(ctx: Context, params: Params, pm_id: str) -> dict:
    pm = get_or_404(ctx, "payment_method", pm_id)
    details = params.mapping("billing_details")
    metadata = params.metadata()
    card = params.mapping("card")
    params.accept("allow_redisplay")
    params.finish()
    if details is not None:
        merged = {**pm["billing_details"]}
        for key in ("email", "name", "phone"):
            if key in details:
                merged[key] = details[key] or None
        if "address" in details:
            merged["address"] = address(details["address"], "billing_details[address]")
        pm["billing_details"] = merged
    if card:
        new_card = dict(pm["card"])
        for key in ("exp_month", "exp_year"):
            if key in card:
                new_card[key] = to_int(card[key], f"card[{key}]")
        pm["card"] = new_card
    pm["metadata"] = merge_metadata(pm["metadata"], metadata)
    emit(ctx, "payment_method.updated", pm)
    return pm


def attach_handler(ctx: Context, params: Params, pm_id: str) -> dict:
    customer_id = params.string("customer", required=True)
    params.finish()
    get_or_404(ctx, "customer", customer_id, param="customer")
    pm = resolve(ctx, pm_id, param="payment_method")
    return attach(ctx, pm, customer_id)


def detach_handler(ctx: Context, params: Params, pm_id: str) -> dict:
    params.finish()
    pm = get_or_404(ctx, "payment_method", pm_id)
    if pm["customer"] is None:
        raise invalid("The payment method you provided is not attached to a customer so "
                      "detachment is impossible.", param="payment_method")
    table = ctx.emu.store["payment_method"]
    before = table.index_snapshot(pm)
    pm["customer"] = None
    table.reindex(pm, before)
    emit(ctx, "payment_method.detached", pm)
    return pm


def list_for_customer(ctx: Context, params: Params, customer_id: str | None = None) -> dict:
    if customer_id is None:
        customer_id = params.string("customer")
        url = "/v1/payment_methods"
    else:
        get_or_404(ctx, "customer", customer_id)
        url = f"/v1/customers/{customer_id}/payment_methods"
    kind = params.string("type")
    params.accept("allow_redisplay")
    if customer_id is None:
        # Without a customer Stripe lists nothing useful for card payment methods.
        page = list_page(ctx, "payment_method", params, url,
                         predicate=lambda pm: pm["customer"] is not None)
    else:
        page = list_page(ctx, "payment_method", params, url, equals={"customer": customer_id})
    params.finish()
    if kind is not None and kind != "card":
        page["data"] = []
        page["has_more"] = False
    return page


def retrieve_for_customer(ctx: Context, params: Params, customer_id: str, pm_id: str) -> dict:
    params.finish()
    pm = get_or_404(ctx, "payment_method", pm_id)
    if pm["customer"] != customer_id:
        raise missing("PaymentMethod", pm_id)
    return pm


ROUTES = [
    ("POST", r"/v1/payment_methods", create),
    ("GET", r"/v1/payment_methods", list_for_customer),
    ("GET", r"/v1/payment_methods/(?P<pm_id>[^/]+)", retrieve),
    ("POST", r"/v1/payment_methods/(?P<pm_id>[^/]+)", update),
    ("POST", r"/v1/payment_methods/(?P<pm_id>[^/]+)/attach", attach_handler),
    ("POST", r"/v1/payment_methods/(?P<pm_id>[^/]+)/detach", detach_handler),
    ("GET", r"/v1/customers/(?P<customer_id>[^/]+)/payment_methods", list_for_customer),
    ("GET", r"/v1/customers/(?P<customer_id>[^/]+)/payment_methods/(?P<pm_id>[^/]+)",
     retrieve_for_customer),
]
