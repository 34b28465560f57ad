"""Put a plan on sale, or change one: the first plan of an installation comes from here.

    manage.py setup_plan annual --name Annual --amount 249.00 --currency usd --months 12
    manage.py setup_plan annual ... --off-sale     # stop selling it; its orders keep it

Running it again with other values changes the plan for checkouts from then on; every order keeps
the amount it was charged. Checkout offers the cheapest plan on sale.
"""

import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.models import Plan
from billing.money import ZERO_DECIMAL, format_money
from billing.services import plan_set

STRIPE_MINIMUM = 50  # minor units; Plan's own check (plan_amount_min)


def minor_units(raw: str, currency: str) -> int:
    try:
        amount = Decimal(raw.strip())
    except InvalidOperation:
        raise CommandError(f"--amount takes a number such as 249.00, not {raw!r}.") from None
    if not amount.is_finite():
        raise CommandError(f"--amount takes a number such as 249.00, not {raw!r}.")
    decimals = 0 if currency in ZERO_DECIMAL else 2
    units = amount.scaleb(decimals)
    if units != units.to_integral_value():
        raise CommandError(f"--amount {raw} has more decimals than {currency} allows ({decimals}).")
    if units < STRIPE_MINIMUM:
        minimum = Decimal(STRIPE_MINIMUM).scaleb(-decimals)
        raise CommandError(f"--amount {raw} is below Stripe's minimum charge ({minimum}).")
    return int(units)


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("code", help="A short name for the plan in URLs and Stripe's metadata, e.g. annual.")
        parser.add_argument("--name", required=True, help="What customers read, e.g. Annual.")
        parser.add_argument("--amount", required=True, help="The price in the currency's units, e.g. 249.00.")
        parser.add_argument("--currency", required=True, help="Three-letter ISO code, e.g. usd.")
        parser.add_argument("--months", required=True, type=int, help="How long one payment gives access.")
        parser.add_argument("--off-sale", action="store_true", help="Stop selling it (its orders keep it).")

    def handle(self, *args, code, name, amount, currency, months, off_sale, **options):
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code) or len(code) > Plan._meta.get_field("code").max_length:
            raise CommandError(f"{code!r} is not a plan code: use lower-case letters, digits and hyphens.")
        currency = currency.strip().lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise CommandError(f"--currency takes a three-letter ISO code such as usd or eur, not {currency!r}.")
        if months < 1:
            raise CommandError(f"--months must be at least 1, not {months}.")
        if not name.strip():
            raise CommandError("--name must not be empty: customers read it on every page and email.")
        try:
            plan, created = plan_set(code=code, name=name.strip(), amount_cents=minor_units(amount, currency),
                                     currency=currency, duration_months=months, on_sale=not off_sale)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"Plan {plan.code} {'created' if created else 'updated'}: {plan.name}, "
            f"{format_money(plan.amount_cents, plan.currency)} for {plan.duration_months} "
            f"month{'s' if plan.duration_months != 1 else ''}, {'on sale' if plan.is_active else 'off sale'}.")
