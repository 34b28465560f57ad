"""Inbound support email: which orders the customer is writing about (orders_mentioned), what may be
told to the sender (inbound_sender_owns), and whether they asked for a way in (signin_link_request)."""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Case, Q, Value, When
from django.utils import timezone
from djstripe import models as djstripe_models

from accounts.models import normalize_email
from billing.models import Order
from billing.statement import statement_prefix

# Only this much of a body is read, and every pattern is linear: each token is anchored and every
# repeat has a small bound (issue 15: `[*xX]{2,}\D{0,12}` took 66 s on 20,000 characters).
INBOUND_SCAN_LIMIT = 20_000
_REFERENCE_RE = re.compile(r"\bBK-?([0-9A-HJKMNP-TV-Z]{4})-?([0-9A-HJKMNP-TV-Z]{4})\b")
# The bank statement's "<the Stripe account's prefix>* 7F3K9QX2", whatever the prefix.
_STATEMENT_RE = re.compile(r"\*\s{0,3}([0-9A-HJKMNP-TV-Z]{8})\b")
_LAST4_RE = re.compile(r"(?:\bending(?:\s{1,3}in)?|\bends\s{1,3}(?:in|with)|\blast\s{0,3}(?:4|four)(?:\s{1,3}digits)?"
                       r"(?:\s{1,3}(?:are|is))?|(?<![*x•])[*x•]{2,16})[^\d*x•]{0,12}(\d{4})\b", re.IGNORECASE)
_AMOUNT_RE = re.compile(r"(?:\$|\bUSD\s?)\s?(\d{1,5}(?:[.,]\d{2})?)")
# A PaymentIntent or Charge id as Stripe prints it (a receipt, the customer's bank, Stripe's email).
_STRIPE_ID_RE = re.compile(r"\b((?:pi|ch)_[A-Za-z0-9]{8,64})\b")
# "Was I charged?", "Have I been charged twice", "Did you charge my card?", "Am I being billed?"
_ASKS_IF_CHARGED_RE = re.compile(
    r"\b(?:was|were|am|have|has|did|is)\s{1,3}(?:i|we|you|my\s{1,3}card|it)\s{1,3}(?:been\s{1,3}|being\s{1,3})?"
    r"(?:charged?|billed?|bill)\b|\bcharged\s{0,3}\?", re.IGNORECASE)


@dataclass(frozen=True)
class InboundTokens:
    references: frozenset[str]
    last4s: frozenset[str]
    amounts_cents: frozenset[int]
    stripe_ids: frozenset[str] = frozenset()
    asks_if_charged: bool = False  # the draft then answers that first (order_replies' question="charged")


def inbound_tokens(*, subject: str, text: str) -> InboundTokens:
    """What a support email quotes that can point to an order: the subject, and only the first
    INBOUND_SCAN_LIMIT characters of the body."""
    text = f"{subject[:300]}\n{text[:INBOUND_SCAN_LIMIT]}"
    upper = text.upper()
    references = {a + b for a, b in _REFERENCE_RE.findall(upper)} | set(_STATEMENT_RE.findall(upper))
    # Without its "*" when the prefix is known (read from Stripe by a search or a command; an
    # inbound email never waits on Stripe for it).
    if prefix := statement_prefix(ask_stripe=False):
        references |= set(re.findall(rf"\b{re.escape(prefix)}\s{{0,3}}([0-9A-HJKMNP-TV-Z]{{8}})\b", upper))
    return InboundTokens(
        references=frozenset(f"BK-{r[:4]}-{r[4:]}" for r in references),
        last4s=frozenset(_LAST4_RE.findall(text)),
        amounts_cents=frozenset(round(float(a.replace(",", ".")) * 100) for a in _AMOUNT_RE.findall(text)),
        stripe_ids=frozenset(_STRIPE_ID_RE.findall(text)),
        asks_if_charged=bool(_ASKS_IF_CHARGED_RE.search(text)),
    )


def _quoted_stripe_ids(tokens: InboundTokens):
    """Orders a quoted PaymentIntent or Charge id names: by the order's own ids, or by the mirrored
    charge's PaymentIntent (the order may not know its charge yet)."""
    pis = [i for i in tokens.stripe_ids if i.startswith("pi_")]
    charges = [i for i in tokens.stripe_ids if i.startswith("ch_")]
    mirrored = djstripe_models.Charge.objects.filter(id__in=charges).values("payment_intent_id")
    return (Q(stripe_payment_intent_id__in=pis) | Q(stripe_charge_id__in=charges)
            | Q(stripe_payment_intent_id__in=mirrored))


def orders_mentioned(*, from_email: str, subject: str, text: str, limit: int = 10) -> list[Order]:
    """Candidate orders for a support email: the sender's own first, then any the text points to
    by strong evidence, newest first: its reference or statement code, or a Stripe PaymentIntent or
    Charge id. A card's last 4 and an amount are shared by thousands of strangers: they never link
    an order on their own, only pick among the sender's own (which their address links already).
    Candidates are for support's eyes: whether the sender may hear about one is `inbound_sender_owns`."""
    tokens = inbound_tokens(subject=subject, text=text)
    own = Q(email=normalize_email(from_email))
    match = own | Q(reference__in=tokens.references)
    if tokens.stripe_ids:
        match |= _quoted_stripe_ids(tokens)
    orders = (Order.objects.filter(match).select_related("plan")
              .annotate(senders=Case(When(own, then=Value(0)), default=Value(1)))
              .order_by("senders", "-created_at"))
    return list(orders[:limit])


def inbound_sender_owns(order: Order, *, from_email: str, sender_authenticated: bool) -> bool:
    """May a reply to this sender carry this order's details? Only when the sender is the order's
    own address and the provider's envelope checks back the From (see support/inbound.py)."""
    return sender_authenticated and bool(from_email) and normalize_email(order.email) == normalize_email(from_email)


def inbound_order_links(message) -> list[dict]:
    """The orders linked to a support email, each with whose it is and why it is linked, for the
    case page: the sender's own (their address), or someone else's that the email quotes."""
    tokens = inbound_tokens(subject=message.subject, text=message.body)
    sender = normalize_email(message.from_email) if message.from_email else ""
    links = []
    for order in message.orders.select_related("plan").order_by("-created_at"):
        senders = bool(sender) and normalize_email(order.email) == sender
        quoted = [words for words, hit in (
            ("its reference", order.reference in tokens.references),
            ("its Stripe payment id", order.stripe_payment_intent_id in tokens.stripe_ids),
            ("its Stripe charge id", order.stripe_charge_id in tokens.stripe_ids)) if hit]
        if not quoted and any(i.startswith("ch_") for i in tokens.stripe_ids):
            quoted = ["its Stripe charge id"]  # matched through the mirrored charge's PaymentIntent
        if senders:
            why = "The sender's order (their address" + (f"; the email also quotes {' and '.join(quoted)})"
                                                          if quoted else ")")
            if not message.sender_authenticated:
                why += "; the provider could not confirm the From, so the draft shares nothing of it"
        elif quoted:
            why = f"Not the sender's: the email quotes {' and '.join(quoted)}; it is {order.email}'s"
        else:  # a case matched before inbound mail needed strong evidence (a card's last 4 and an amount)
            why = f"Not the sender's, and nothing in the email proves it is theirs; it is {order.email}'s"
        links.append({"order": order, "senders": senders, "why": why})
    links.sort(key=lambda link: not link["senders"])
    return links


# --- Sign-in links: did the customer ask? ------------------------------------------------------

# An email from the customer this recent may be what a sign-in link answers ("as you asked").
SIGNIN_REQUEST_DAYS = 14


def signin_link_request(order: Order):
    """The customer's newest email on this case that may ask for a way in: from the order's own,
    verified address, in the last SIGNIN_REQUEST_DAYS. None if there is none."""
    since = timezone.now() - timedelta(days=SIGNIN_REQUEST_DAYS)
    for message in order.inbound_messages.filter(received_at__gte=since).order_by("-received_at")[:20]:
        if inbound_sender_owns(order, from_email=message.from_email, sender_authenticated=message.sender_authenticated):
            return message
    return None
