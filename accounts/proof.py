"""What this browser session has proved about an email address.

An address typed into a form is a claim. A session proves it reads an address by opening a link
we sent there (a sign-in link, a password link, a Renew link) or by signing in with the account's
password. The one-click sign-in on the thank-you page (billing's status_signin) proves nothing:
it only lets the browser that paid into the account its own order created, and such a session may
not set the account's first password or see what a later payment brings
(docs/decisions/0013-access-is-proved.md).
"""

from accounts.models import normalize_email

# The addresses this session proved it reads through a link we emailed or the account's password.
SESSION_PROVED = "accounts:proved"
# Set when the session was signed in by the thank-you page's one click: the public id of the order
# whose account it is. Such a session has not proved the address.
SESSION_ONE_CLICK = "accounts:one_click"


def address_prove(request, email: str) -> None:
    """Record that this session proved it reads `email` (a link we sent there, or its password)."""
    email = normalize_email(email)
    proved = [e for e in request.session.get(SESSION_PROVED, []) if e != email]
    request.session[SESSION_PROVED] = [*proved, email][-5:]
    request.session.pop(SESSION_ONE_CLICK, None)


def address_proved(request, email: str) -> bool:
    return normalize_email(email) in request.session.get(SESSION_PROVED, [])


def one_click_mark(request, order_public_id: str) -> None:
    request.session[SESSION_ONE_CLICK] = order_public_id


def one_click_order(request) -> str | None:
    """The order whose account this session entered by one click, if that is how it signed in."""
    return request.session.get(SESSION_ONE_CLICK)


def signed_in_with_proof(request) -> bool:
    """Signed in some way other than the thank-you page's one click (a link, the password)."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and not one_click_order(request))


# Whether a session signed in by one click may still use its account. Whose orders made the account
# is billing's to say: BillingConfig.ready() hands its check over here, so accounts asks without
# importing billing. Until then (billing not loaded) no one-click session fits.
_one_click_check = None


def one_click_check_set(check) -> None:
    """`check(request) -> bool`: billing's answer for a signed-in one-click session."""
    global _one_click_check
    _one_click_check = check


def one_click_still_fits(request) -> bool:
    """Is the account of this one-click session still wholly what this browser's payments made?"""
    return _one_click_check is not None and _one_click_check(request)
