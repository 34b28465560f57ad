"""The single account behind the emulator's keys (GET /v1/account) and Connect's account list."""

from ..app import ACCOUNT_ID, Context
from ..errors import missing
from ..params import Params

ACCOUNT_EMAIL = "payments@backstop.invalid"


def statement_prefix(emu) -> str:
    """The prefix on every card charge's statement line, as the account's settings have it."""
    account = emu.store["account"].get(ACCOUNT_ID)
    return account["settings"]["card_payments"]["statement_descriptor_prefix"]


def set_statement_prefix(emu, prefix: str) -> dict:
    """As changing it in the Dashboard does (the API cannot change one's own account)."""
    account = emu.store["account"].get(ACCOUNT_ID)
    account["settings"]["card_payments"]["statement_descriptor_prefix"] = prefix
    account["settings"]["payments"]["statement_descriptor"] = prefix
    return account


def build_account(emu) -> dict:
    no_requirements = {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }
    return {
        "id": ACCOUNT_ID,
        "object": "account",
        "business_profile": {
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": "5734",
            "minority_owned_business_designation": None,
            "name": "Backstop (Stripe emulator)",
            "product_description": None,
            "support_address": None,
            "support_email": ACCOUNT_EMAIL,
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": None,
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "US",
        "created": emu.clock.now(),
        "default_currency": "usd",
        "details_submitted": True,
        "email": ACCOUNT_EMAIL,
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/accounts/{ACCOUNT_ID}/external_accounts",
        },
        "future_requirements": dict(no_requirements),
        "metadata": {},
        "payouts_enabled": True,
        "requirements": dict(no_requirements),
        "settings": {
            "bacs_debit_payments": {"display_name": None, "service_user_number": None},
            "branding": {"icon": None, "logo": None, "primary_color": None,
                         "secondary_color": None},
            "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": True},
                "statement_descriptor_prefix": emu.config.statement_prefix,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": "Backstop", "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": "offer"},
            "payments": {
                "statement_descriptor": emu.config.statement_prefix,
                "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
            "sepa_debit_payments": {},
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": "standard",
    }


def retrieve_own(ctx: Context, params: Params) -> dict:
    return ctx.emu.store["account"].get(ACCOUNT_ID)


def retrieve(ctx: Context, params: Params, account_id: str) -> dict:
    account = ctx.emu.store["account"].get(account_id)
    if account is None:
        raise missing("account", account_id)
    return account


def list_connected(ctx: Context, params: Params) -> dict:
    # The platform's own account is never in this list (it holds connected accounts only), and
    # the emulator has none: an empty, well-formed page.
    params.integer("limit")
    params.accept("starting_after", "ending_before", "created")
    return {"object": "list", "data": [], "has_more": False, "url": "/v1/accounts"}


ROUTES = [
    ("GET", r"/v1/account", retrieve_own),
    ("GET", r"/v1/accounts", list_connected),
    ("GET", r"/v1/accounts/(?P<account_id>[^/]+)", retrieve),
]
