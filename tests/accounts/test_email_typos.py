"""The domain suggestion compares a typed domain with each common one only as far as it can still
be the nearest: it suggests exactly what comparing every candidate in full would."""

from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.email_typos import COMMON_DOMAINS, suggest_email


def _full_distance(a: str, b: str) -> int:
    previous2, previous = None, list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _suggestion_comparing_every_candidate(email: str) -> str | None:
    local, at, domain = email.rpartition("@")
    domain = domain.lower()
    if not at or not local or domain in COMMON_DOMAINS:
        return None
    best, best_distance = None, 3
    for candidate in COMMON_DOMAINS:
        distance = _full_distance(domain, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    if best is None or (best_distance == 2 and len(best) < 8):
        return None
    return f"{local}@{best}"


LETTERS = "abcdefghijklmnopqrstuvwxyz.-"


@st.composite
def typed_domains(draw):
    """A common domain with up to three slips (a letter dropped, doubled, changed or swapped with
    the next), or any short run of letters."""
    if draw(st.booleans()):
        return draw(st.text(alphabet=LETTERS, max_size=18))
    domain = list(draw(st.sampled_from(COMMON_DOMAINS)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, max(len(domain) - 1, 0)))
        slip = draw(st.sampled_from(["drop", "double", "change", "swap"]))
        if not domain:
            break
        if slip == "drop":
            del domain[at]
        elif slip == "double":
            domain.insert(at, domain[at])
        elif slip == "change":
            domain[at] = draw(st.sampled_from(LETTERS))
        elif at + 1 < len(domain):
            domain[at], domain[at + 1] = domain[at + 1], domain[at]
    return "".join(domain)


@settings(max_examples=500, deadline=None)
@given(typed_domains())
def test_the_suggestion_is_the_one_comparing_every_common_domain_in_full_would_make(domain):
    email = f"ana@{domain}"

    assert suggest_email(email) == _suggestion_comparing_every_candidate(email)
