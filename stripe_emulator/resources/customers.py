"""Customer: create, retrieve, update, delete, list; ``sources`` is an (empty) includable list."""

from ..app import Context
from ..errors import invalid
from ..events import emit, emit_if_changed
from ..ids import new_id, random_string
from ..params import Params, merge_metadata
from . import payment_methods
from .common import get_or_404, list_page

ACCEPTED_BUT_IGNORED = (
    "cash_balance", "coupon", "promotion_code", "source", "tax", "tax_id_data", "test_clock",
    "validate", "next_invoice_sequence", "invoice_prefix", "balance",
)


def _read_fields(params: Params) -> dict:
    fields = {}
    for name in ("email", "name", "description", "phone"):
        if name in params:
            fields[name] = params.string(name)
    if "address" in params:
        fields["address"] = payment_methods.address(params.raw("address"), "address")
    if "shipping" in params:
        fields["shipping"] = payment_methods.shipping(params.raw("shipping"))
    if "preferred_locales" in params:
        fields["preferred_locales"] = params.array("preferred_locales") or []
    if "tax_exempt" in params:
        fields["tax_exempt"] = params.enum("tax_exempt", ("none", "exempt", "reverse"))
    return fields


def _invoice_settings(ctx: Context, params: Params, current: dict) -> dict | None:
    value = params.mapping("invoice_settings")
    if value is None:
        return None
    settings = dict(current)
    if "default_payment_method" in value:
        pm_id = value["default_payment_method"] or None
        if pm_id is not None:
            pm = get_or_404(ctx, "payment_method", pm_id,
                            param="invoice_settings[default_payment_method]")
            pm_id = pm["id"]
        settings["default_payment_method"] = pm_id
    if "footer" in value:
        settings["footer"] = value["footer"] or None
    return settings


def create(ctx: Context, params: Params) -> dict:
    fields = _read_fields(params)
    metadata = params.metadata()
    pm_id = params.string("payment_method")
    settings_param = "invoice_settings" in params
    params.accept(*ACCEPTED_BUT_IGNORED)
    now = ctx.now()
    customer = {
        "id": new_id("cus", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": random_string(8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {k: v for k, v in (metadata or {}).items() if v != ""},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    customer.update(fields)
    pm = None
    if pm_id is not None:
        pm = payment_methods.resolve(ctx, pm_id)
        if pm["customer"] is not None:
            raise invalid("The payment method you provided has already been attached to a "
                          "customer.", param="payment_method")
    if settings_param:
        customer["invoice_settings"] = _invoice_settings(ctx, params, customer["invoice_settings"])
    params.finish()
    ctx.emu.store.insert("customer", customer)
    emit(ctx, "customer.created", customer)
    if pm is not None:
        payment_methods.attach(ctx, pm, customer["id"])
    return customer


def _deleted(customer_id: str) -> dict:
    return {"id": customer_id, "object": "customer", "deleted": True}


def retrieve(ctx: Context, params: Params, customer_id: str) -> dict:
    params.finish()
    if ctx.emu.store.private.get(customer_id, {}).get("deleted"):
        return _deleted(customer_id)
    return get_or_404(ctx, "customer", customer_id)


def update(ctx: Context, params: Params, customer_id: str) -> dict:
    customer = get_or_404(ctx, "customer", customer_id)
    fields = _read_fields(params)
    metadata = params.metadata()
    settings = _invoice_settings(ctx, params, customer["invoice_settings"])
    default_source = params.string("default_source")
    params.accept(*ACCEPTED_BUT_IGNORED)
    params.finish()
    if default_source is not None:
        raise invalid(f"No such source: '{default_source}'", param="default_source",
                      code="resource_missing")
    table = ctx.emu.store["customer"]
    before = dict(customer)
    index_before = table.index_snapshot(customer)
    customer.update(fields)
    customer["metadata"] = merge_metadata(customer["metadata"], metadata)
    if settings is not None:
        customer["invoice_settings"] = settings
    table.reindex(customer, index_before)
    emit_if_changed(ctx, "customer.updated", customer, before)
    return customer


def delete(ctx: Context, params: Params, customer_id: str) -> dict:
    params.finish()
    customer = get_or_404(ctx, "customer", customer_id)
    emit(ctx, "customer.deleted", customer)
    ctx.emu.store["customer"].delete(customer_id)
    ctx.emu.store.private[customer_id] = {"deleted": True}
    return _deleted(customer_id)


def list_customers(ctx: Context, params: Params) -> dict:
    email = params.string("email")
    params.accept("test_clock")
    page = list_page(ctx, "customer", params, "/v1/customers", equals={"email": email})
    params.finish()
    return page


def list_sources(ctx: Context, params: Params, customer_id: str) -> dict:
    # Backstop uses PaymentMethods only; legacy sources exist for dj-stripe's sync, always empty.
    get_or_404(ctx, "customer", customer_id)
    params.accept("object", "limit", "starting_after", "ending_before")
    params.finish()
    return {"object": "list", "data": [], "has_more": False,
            "url": f"/v1/customers/{customer_id}/sources"}


ROUTES = [
    ("POST", r"/v1/customers", create),
    ("GET", r"/v1/customers", list_customers),
    ("GET", r"/v1/customers/(?P<customer_id>[^/]+)", retrieve),
    ("POST", r"/v1/customers/(?P<customer_id>[^/]+)", update),
    ("DELETE", r"/v1/customers/(?P<customer_id>[^/]+)", delete),
    ("GET", r"/v1/customers/(?P<customer_id>[^/]+)/sources", list_sources),
]
