"""Stripe's documented test cards and test PaymentMethod ids, and what each one does.

Outcomes follow https://docs.stripe.com/testing: the decline cards fail with the documented
``code`` / ``decline_code``; 4000002500003155 asks for 3-D Secure; 4000000000000259 succeeds and is
then disputed; 4000000000000341 can be attached to a customer but every charge on it fails.
"""

import hashlib
from dataclasses import dataclass

SUCCEED = "succeed"
DECLINE = "decline"
AUTHENTICATE = "authenticate"
DISPUTE = "dispute"


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str
    seller_message: str
    advice_code: str | None
    network_decline_code: str
    param: str | None = None


GENERIC_DECLINE = Decline(
    "card_declined",
    "generic_decline",
    "Your card was declined.",
    "The bank did not return any further details with this decline.",
    "try_again_later",
    "01",
)
INSUFFICIENT_FUNDS = Decline(
    "card_declined",
    "insufficient_funds",
    "Your card has insufficient funds.",
    "The bank returned the decline code `insufficient_funds`.",
    "try_again_later",
    "51",
)
EXPIRED_CARD = Decline(
    "expired_card",
    "expired_card",
    "Your card has expired.",
    "The bank returned the decline code `expired_card`.",
    "do_not_try_again",
    "54",
    param="exp_month",
)
INCORRECT_CVC = Decline(
    "incorrect_cvc",
    "incorrect_cvc",
    "Your card's security code is incorrect.",
    "The bank returned the decline code `incorrect_cvc`.",
    "confirm_card_data",
    "N7",
    param="cvc",
)


@dataclass(frozen=True)
class CardBehaviour:
    outcome: str = SUCCEED
    decline: Decline | None = None


BEHAVIOURS = {
    "4000000000000002": CardBehaviour(DECLINE, GENERIC_DECLINE),
    "4000000000009995": CardBehaviour(DECLINE, INSUFFICIENT_FUNDS),
    "4000000000000069": CardBehaviour(DECLINE, EXPIRED_CARD),
    "4000000000000127": CardBehaviour(DECLINE, INCORRECT_CVC),
    "4000000000000341": CardBehaviour(DECLINE, GENERIC_DECLINE),
    "4000002500003155": CardBehaviour(AUTHENTICATE),
    "4000002760003184": CardBehaviour(AUTHENTICATE),
    "4000000000000259": CardBehaviour(DISPUTE),
}

# Stripe's test PaymentMethod ids: usable from a server, where raw numbers are refused.
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequired": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_createDispute": "4000000000000259",
}
BEHAVIOURS["4000000000003220"] = CardBehaviour(AUTHENTICATE)

DEBIT_CARDS = {"4000056655665556"}


def behaviour(number: str) -> CardBehaviour:
    return BEHAVIOURS.get(number, CardBehaviour())


def brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or number[:2] == "22":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith(("6011", "65")):
        return "discover"
    if number.startswith("35"):
        return "jcb"
    if number[:2] in {"30", "36", "38"}:
        return "diners"
    return "unknown"


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(number)):
        d = int(digit)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def fingerprint(number: str) -> str:
    # Stable per card number, like Stripe's, and never reversible to the number.
    digest = hashlib.sha256(f"backstop-emulator:{number}".encode()).hexdigest()
    return digest[:16]


def card_details(number: str, exp_month: int, exp_year: int, cvc_given: bool) -> dict:
    """The ``card`` hash of a PaymentMethod."""
    card_brand = brand(number)
    return {
        "brand": card_brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass" if cvc_given else None,
        },
        "country": "US",
        "display_brand": card_brand,
        "exp_month": exp_month,
        "exp_year": exp_year,
        "fingerprint": fingerprint(number),
        "funding": "debit" if number in DEBIT_CARDS else "credit",
        "generated_from": None,
        "last4": number[-4:],
        "networks": {"available": [card_brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }
