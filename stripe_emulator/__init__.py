"""A local, stdlib-only emulator of the subset of the Stripe API that Backstop and dj-stripe use.

Run it with ``python -m stripe_emulator --port 12111``; see docs/emulator.md. Nothing in here
imports Django: the emulator is a separate program that the official ``stripe`` SDK talks to over
HTTP.
"""

API_VERSION = "2026-08-26.dahlia"  # the version stripe-python 15.6.2 pins
DEFAULT_SECRET_KEY = "sk_test_51BackstopEmulatorLocalKey0000000000"
DEFAULT_PUBLISHABLE_KEY = "pk_test_51BackstopEmulatorLocalKey0000000000"
