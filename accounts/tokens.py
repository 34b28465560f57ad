"""Signed links that act on an account without signing in. Django's signing, not a home-made scheme.

The one-click "stop these reminders" link (RFC 8058's List-Unsubscribe) is signed with a plain
Signer: it never expires and survives password changes. Mail programs show their Unsubscribe
button on every message in the inbox, including last year's, and the big mailbox providers expect
that button to keep working; a link that expired would leave the customer no quick way out, and an
expired opt-out is how reminders get marked as spam. The link can do exactly one thing, turn
reminder emails off, which the customer can undo on their account page, so someone holding a
forwarded copy gains nothing worth an expiry. It carries the account's id only (no address).
"""

from django.contrib.auth import get_user_model
from django.core import signing

_reminders_off_signer = signing.Signer(salt="accounts.renewal-reminders-off")


def reminders_off_token(user) -> str:
    return _reminders_off_signer.sign(str(user.pk))


def user_from_reminders_off_token(token: str):
    """The account a "stop reminders" link was made for, or None if the link is broken."""
    try:
        pk = int(_reminders_off_signer.unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    return get_user_model().objects.filter(pk=pk).first()
