"""One module per Stripe resource; each exposes its handlers through ``ROUTES``."""
