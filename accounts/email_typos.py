"""Catch a mistyped email domain before the customer pays ("ana@gmial.con" → "ana@gmail.com").

A confirmation, a receipt and a sign-in link all go to this address; a typo here is a customer
with a charge and no way in. We only ever suggest: the customer may keep what they typed.
"""

# The domains most of our customers use; a near miss of one of these is almost always a typo.
COMMON_DOMAINS = [
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com", "hotmail.co.uk",
    "hotmail.fr", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com",
    "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "comcast.net", "verizon.net",
    "att.net", "sbcglobal.net", "btinternet.com", "orange.fr", "free.fr", "mail.com", "yandex.ru",
]


def suggest_email(email: str) -> str | None:
    """The address with its domain corrected, or None when it looks right (or is unknown)."""
    local, at, domain = email.rpartition("@")
    domain = domain.lower()
    if not at or not local or domain in COMMON_DOMAINS:
        return None
    best, best_distance = None, 3
    for candidate in COMMON_DOMAINS:
        # Only a candidate closer than the best so far matters, and the distance is at least the
        # difference in length: most addresses are near none of these, and the comparison is the
        # checkout form's largest cost when each candidate is compared in full.
        if abs(len(candidate) - len(domain)) >= best_distance:
            continue
        distance = _edit_distance(domain, candidate, give_up_at=best_distance)
        if distance < best_distance:
            best, best_distance = candidate, distance
    # Short domains are each other's near misses (me.com, msn.com): only suggest for one slip there.
    if best is None or (best_distance == 2 and len(best) < 8):
        return None
    return f"{local}@{best}"


def _edit_distance(a: str, b: str, give_up_at: int) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    neighbours ("gmial") each count one. Once every prefix alignment costs `give_up_at` or more
    (the smallest value in a row never falls in later rows), returns `give_up_at`."""
    previous2, previous = None, list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = char_a != char_b
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) >= give_up_at:
            return give_up_at
        previous2, previous = previous, current
    return previous[-1]
