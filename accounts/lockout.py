"""Who django-axes counts a failed sign-in against: the address as we store it, not as typed."""

from django.conf import settings

from accounts.models import normalize_email


def lockout_username(request, credentials=None):
    """`ANA@x.com `, `ana@x.com` and `Ana@X.com` are one account, so one counter (AXES_USERNAME_CALLABLE).

    Without this each spelling had its own count of wrong guesses, and a capitalised spelling got in
    while the exact one was locked. Reads the field as axes itself would: credentials, else the POST."""
    field = settings.AXES_USERNAME_FORM_FIELD
    value = credentials.get(field) if credentials else getattr(request, "POST", {}).get(field)
    return normalize_email(value) if isinstance(value, str) else value
