"""Money as people read it. Amounts are integers in the currency's minor unit."""

# ISO 4217 currencies without a minor unit (Stripe's list): 1500 jpy is ¥1,500.
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                "vnd", "vuv", "xaf", "xof", "xpf"}  # fmt: skip
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}


def format_money(amount: int, currency: str) -> str:
    """9000 usd → "$90.00", 9050 usd → "$90.50", 1500 jpy → "¥1,500", 900 chf →
    "9.00 CHF": always the cents a card statement and Stripe Checkout show, so the page,
    checkout and email write a price the same way. Integer arithmetic, no float."""
    code = currency.lower()
    symbol = SYMBOLS.get(code)
    if code in ZERO_DECIMAL:
        number = f"{amount:,}"
    else:
        sign = "-" if amount < 0 else ""
        units, cents = divmod(abs(amount), 100)
        number = f"{sign}{units:,}.{cents:02d}"
    return f"{symbol}{number}" if symbol else f"{number} {code.upper()}"
