"""Accounts' reads for the apps above."""

from accounts.access import access_until  # noqa: F401  (the one definition; billing and the pages read it here)
