"""The console's one search box (console_search) and what it reads a query as: an amount as printed,
a day, both, a card's last 4, a reference or statement code, a Stripe id, an email or a name."""

import re
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils import timezone
from djstripe import models as djstripe_models

from billing import stripe_api
from billing.models import Order, StripeCustomer
from billing.money import format_money
from billing.statement import statement_code, statement_prefix
from support.selectors.common import OPEN_STATES, UNKNOWN
from support.selectors.money import OPEN_PAYMENT_LOOKBACK_DAYS, _recent, order_money
from support.selectors.timeline import stripe_dashboard_url
from support.timefmt import console_day_bounds, console_time, console_today

MIN_PARTIAL_SEARCH = 3


def charges_by_card_last4(last4s):
    """Mirrored charges paid with a card ending in one of these (the order may not know it yet).
    The expression matches support/migrations/0004's index on it."""
    return djstripe_models.Charge.objects.alias(
        last4=KT("stripe_data__payment_method_details__card__last4")).filter(last4__in=list(last4s))


# An amount as a bank statement or a customer writes it: "$248.00", "248", "248,00", "1,248.00",
# "1.248,00", "USD 248". The last "." or "," followed by one or two digits is the decimal point;
# any other separator groups thousands, and one kind only.
_AMOUNT_QUERY_RE = re.compile(r"(?P<whole>\d{1,3}(?:(?P<group>[,.])\d{3})(?:(?P=group)\d{3})*|\d{1,9})"
                              r"(?:(?P<point>[.,])(?P<fraction>\d{1,2}))?")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[a-z]{3,9})\.?"
_YEAR = r"(?P<year>\d{4})"
# ISO, and the forms with the month's name; never "12/01", which is Dec 1 to some and Jan 12 to others.
_DATE_QUERY_RES = [
    re.compile(rf"{_YEAR}-(?P<month_number>\d{{1,2}})-{_DAY}"),
    re.compile(rf"{_MONTH}\s{{0,3}}{_DAY}(?:,?\s{{1,3}}{_YEAR})?"),
    re.compile(rf"{_DAY}\s{{0,3}}{_MONTH}(?:,?\s{{1,3}}{_YEAR})?"),
]


def parse_amount_cents(text: str) -> int | None:
    """Cents for an amount as printed ("$248.00" → 24800), or None if the text is not one."""
    t = text.strip().upper().removeprefix("USD").removesuffix("USD").strip()
    t = t.removeprefix("$").removesuffix("$").strip()
    match = _AMOUNT_QUERY_RE.fullmatch(t)
    if not match or (match["group"] and match["group"] == match["point"]):
        return None
    whole = int(match["whole"].replace(",", "").replace(".", ""))
    if whole >= 10**9:  # beyond any price, and beyond dj-stripe's amount column (11 digits)
        return None
    return whole * 100 + int((match["fraction"] or "0").ljust(2, "0"))


def parse_console_date(text: str, *, today: date | None = None) -> date | None:
    """The day a typed date means ("2026-12-01", "Dec 1", "1 December 2026"), or None. A date
    without a year is the most recent one that is not in the future, in SUPPORT_TIME_ZONE."""
    t = text.strip().lower()
    for pattern in _DATE_QUERY_RES:
        match = pattern.fullmatch(t)
        if match:
            break
    else:
        return None
    groups = match.groupdict()
    if groups.get("month_number"):
        month = int(groups["month_number"])
    else:
        month = next((i + 1 for i, name in enumerate(_MONTHS) if name.startswith(groups["month"])), 0)
    day = int(groups["day"])
    if not 1 <= month <= 12:
        return None
    if groups.get("year"):
        try:
            return date(int(groups["year"]), month, day)
        except ValueError:
            return None
    today = today or console_today()
    for year in range(today.year, today.year - 8, -1):  # eight years always hold a February 29
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


_SLASHED_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?")


def console_date_hint(text: str, *, today: date | None = None) -> str | None:
    """What to say to a search for a date written with slashes, which the search does not read
    ("12/05" is Dec 5 to some and May 12 to others): each day it can be, and how to type it."""
    match = _SLASHED_DATE_RE.fullmatch(text.strip())
    if not match:
        return None
    first, second, year = int(match[1]), int(match[2]), match[3]
    readings = []
    for month, day in dict.fromkeys([(first, second), (second, first)]):  # month first, then day first
        name = f"{_MONTHS[month - 1][:3].title()} {day}" if 1 <= month <= 12 else ""
        if year:
            name += f", {int(year) + (2000 if len(year) == 2 else 0)}"
        found = parse_console_date(name, today=today) if name else None
        if found is not None:
            readings.append((name, found.isoformat()))
    if not readings:
        return None
    typed = text.strip()
    (name, iso), *other = readings
    if not other:
        return f"{typed} is {name} written with slashes: type {iso} or {name}."
    other_name, other_iso = other[0]
    return (f"{typed} could be {name} or {other_name}: type {iso} or {name} "
            f"(for {other_name}: {other_iso} or {other_name}).")


def _amount_and_day(q: str) -> tuple[int | None, date | None]:
    """An amount, a day, or both ("248 Dec 1", "Dec 1 $248.00"); (None, None) if neither."""
    day = parse_console_date(q)
    if day is not None:
        return None, day
    amount = parse_amount_cents(q)
    if amount is not None:
        return amount, None
    words = q.split()
    if len(words) >= 2:
        for amount_text, rest in ((words[0], words[1:]), (words[-1], words[:-1])):
            amount, day = parse_amount_cents(amount_text), parse_console_date(" ".join(rest))
            if amount is not None and day is not None:
                return amount, day
    return None, None


def _order_result(order: Order, detail: str = "", *, payment_intents: dict | None = None,
                  stripe_reads: list | None = None) -> dict:
    """One order in the search results, its money labelled as the case page labels it (order_money).
    An open order's payment is read from Stripe while `stripe_reads` (a one-item budget) lasts."""
    payment_intents = payment_intents if payment_intents is not None else {}
    pi = payment_intents.get(order.stripe_payment_intent_id)
    ask = pi is None and order.state in OPEN_STATES and bool(order.stripe_payment_intent_id) and _recent(order) and (
        stripe_reads is None or stripe_reads[0] > 0)
    if ask and stripe_reads is not None:
        stripe_reads[0] -= 1
    money = order_money(order, ask_stripe=ask, payment_intent=pi)
    if money.charged_at == UNKNOWN and stripe_reads is not None:
        stripe_reads[0] = 0  # Stripe is not answering: the rest of this search does not wait on it
    when = f"paid {console_time(order.paid_at)}" if order.paid_at else f"ordered {console_time(order.created_at)}"
    return {"kind": "order", "title": f"{order.reference} · {money.label}",
            "detail": f"{order.email} · {detail or when}"
            + (f" · card ending {order.card_last4}" if order.card_last4 and not detail else ""),
            "url": f"/admin/billing/order/{order.id}/change/"}


# A search reads Stripe for at most this many open orders (one call each, newest first); the others
# say they were not checked. Open orders are few: an unfinished attempt is canceled within the hour.
SEARCH_STRIPE_READS = 10


def _open_payments_by_card(last4: str, payment_intents: dict) -> list[int]:
    """Ids of recent open orders whose PaymentIntent's card ends in `last4`, read from Stripe (the
    order and the mirror may not know the card yet). Stores what it read in `payment_intents`."""
    since = timezone.now() - timedelta(days=OPEN_PAYMENT_LOOKBACK_DAYS)
    found = []
    for order in (Order.objects.filter(state__in=OPEN_STATES, stripe_payment_intent_id__isnull=False,
                                       card_last4="", created_at__gte=since)
                  .order_by("-created_at")[:SEARCH_STRIPE_READS]):
        try:
            pi = stripe_api.payment_intent_retrieve(order.stripe_payment_intent_id)
        except stripe_api.StripeError:
            break  # Stripe is not answering: one wait per search, not ten
        payment_intents[order.stripe_payment_intent_id] = pi
        charge = pi.get("latest_charge")
        card = ((charge.get("payment_method_details") or {}).get("card") or {}) if charge and not isinstance(
            charge, str) else {}
        if card.get("last4") == last4:
            found.append(order.id)
    return found


_ORDER_CODE = r"[0-9A-HJKMNP-TV-Z]{8}"


def _order_code(q: str, compact: str) -> str | None:
    """The 8 letters and digits of an order's reference ("BK-7F3K-9QX2") or of its bank statement
    line, whose prefix is the Stripe account's own ("ACME* 7F3K9QX2", or "ACME 7F3K9QX2")."""
    if re.fullmatch(_ORDER_CODE, compact):
        return compact
    if re.fullmatch(rf"BK{_ORDER_CODE}", compact):
        return compact[2:]
    if len(compact) > 8 and re.fullmatch(_ORDER_CODE, compact[-8:]):
        code = statement_code(q, None if "*" in q else statement_prefix())
        return code if re.fullmatch(_ORDER_CODE, code) else None
    return None


def console_search(query: str, *, limit: int = 50) -> list[dict]:
    """One box: email (part, any case), name, reference or statement code, card last 4 (also from
    a payment whose order is not finished), an amount as printed, a day, an amount on a day, or a
    Stripe id. Orders and the mirror, newest first."""
    q = query.strip()
    if not q:
        return []
    orders = Order.objects.none()
    charges = djstripe_models.Charge.objects.none()
    payment_intents: dict = {}  # what this search read from Stripe, by PaymentIntent id
    stripe_reads = [SEARCH_STRIPE_READS]
    compact = re.sub(r"[^0-9A-Za-z]", "", q).upper()
    if re.fullmatch(r"(pi|ch|cus|re|dp|du|py)_[0-9A-Za-z]+", q):
        # A cus_ is a person (decision 0015): every order of its address, also those never paid.
        person = StripeCustomer.objects.filter(stripe_customer_id=q).values("email")
        orders = Order.objects.filter(Q(stripe_payment_intent_id=q) | Q(stripe_charge_id=q) | Q(stripe_customer_id=q)
                                      | Q(email__in=person))
        charges = djstripe_models.Charge.objects.filter(Q(id=q) | Q(payment_intent_id=q) | Q(customer_id=q))
        if q.startswith("re_"):
            charges = djstripe_models.Charge.objects.filter(refunds__id=q)
        if q.startswith(("dp_", "du_")):
            charges = djstripe_models.Charge.objects.filter(disputes__id=q)
    elif re.fullmatch(r"\d{4}", q):
        from_stripe = _open_payments_by_card(q, payment_intents)
        orders = Order.objects.filter(Q(card_last4=q) | Q(id__in=from_stripe))
        charges = charges_by_card_last4([q])
    elif (found := _amount_and_day(q)) != (None, None):
        # Checked before references: "Dec 1 2026" and "2026-12-01" also have 8 letters and digits.
        # Each filter matches an index of support/migrations/0004 or 0006.
        cents, day = found
        orders, charges = Order.objects.all(), djstripe_models.Charge.objects.all()
        if cents is not None:
            orders = orders.filter(Q(amount_cents=cents) | Q(amount_received_cents=cents))
            # dj-stripe keeps the charge's amount in major units (dollars) in a column of its own.
            charges = charges.filter(amount=Decimal(cents) / 100)
        if day is not None:
            start, end = console_day_bounds(day)
            orders = orders.filter(Q(created_at__gte=start, created_at__lt=end)
                                   | Q(paid_at__gte=start, paid_at__lt=end))
            charges = charges.filter(created__gte=start, created__lt=end)
    elif (body := _order_code(q, compact)) and not q.isdigit() and "@" not in q:
        # A reference, or the code on the bank statement ("ACME* 7F3K9QX2"); a word that only
        # looks like one is still searched as a name.
        orders = Order.objects.filter(Q(reference=f"BK-{body[:4]}-{body[4:]}") | Q(full_name__icontains=q))
    elif len(q) < MIN_PARTIAL_SEARCH:
        # One or two letters match too little to use an index and too much to read; ask for more.
        return []
    else:
        orders = Order.objects.filter(Q(email__icontains=q) | Q(full_name__icontains=q))
    results = []
    found_pis = set()
    for order in orders.select_related("plan").order_by("-created_at")[:limit]:
        if order.stripe_payment_intent_id:
            found_pis.add(order.stripe_payment_intent_id)
        results.append(_order_result(order, payment_intents=payment_intents, stripe_reads=stripe_reads))
    # Most charges an amount or a day finds belong to orders already listed: only the others are
    # read whole (a mirrored charge's stripe_data is a few kB), and their orders in one query.
    unseen = [pk for pk, pi in charges.order_by("-created").values_list("pk", "payment_intent_id")[:limit]
              if pi not in found_pis]
    charges = list(djstripe_models.Charge.objects.filter(pk__in=unseen).order_by("-created")) if unseen else []
    by_pi = {o.stripe_payment_intent_id: o for o in Order.objects.select_related("plan").order_by().filter(
        stripe_payment_intent_id__in=[c.payment_intent_id for c in charges if c.payment_intent_id])}
    for charge in charges:
        if charge.payment_intent_id in found_pis:
            continue
        order = by_pi.get(charge.payment_intent_id)
        if order is not None:
            found_pis.add(order.stripe_payment_intent_id)
            results.append(_order_result(order, detail="found by its Stripe charge", payment_intents=payment_intents,
                                         stripe_reads=stripe_reads))
            continue
        data = charge.stripe_data or {}
        money = format_money(data.get("amount", 0), data.get("currency", "usd"))
        results.append({"kind": "charge", "title": f"Stripe charge {charge.id} · {money} · {charge.status} · no order",
                        "detail": f"{(data.get('billing_details') or {}).get('email') or ''} "
                        f"{(charge.metadata or {}).get('reference', '')} · {console_time(charge.created)}",
                        "url": stripe_dashboard_url(charge.id)})
    return results[:limit]
