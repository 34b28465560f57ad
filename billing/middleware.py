"""Every web request answers a person (or Stripe's webhook, which waits too): Stripe calls made
while serving it give up sooner than the worker's (billing/stripe_api.py, `someone_waiting`)."""

from billing import stripe_api


def stripe_someone_waiting(get_response):
    def middleware(request):
        with stripe_api.someone_waiting():
            return get_response(request)

    return middleware
