"""Money is integer minor units plus an ISO currency code; this is the one place it becomes text."""

# Currencies whose minor unit is not 1/100 (Stripe's list of zero-decimal currencies, subset).
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
                "vuv", "xaf", "xof", "xpf"}
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}


def format_money(amount_cents: int, currency: str) -> str:
    currency = currency.lower()
    symbol = SYMBOLS.get(currency)
    sign, amount = ("-" if amount_cents < 0 else ""), abs(amount_cents)
    if currency in ZERO_DECIMAL:
        number = f"{amount:,}"
    else:
        number = f"{amount // 100:,}.{amount % 100:02d}"
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {currency.upper()}"
