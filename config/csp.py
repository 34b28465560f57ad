"""django-csp's middleware, plus the origin our Stripe.js comes from when it is not Stripe's.

settings.CONTENT_SECURITY_POLICY allows Stripe's own hosts. The demo and the tests load the local
emulator's Stripe.js stand-in (STRIPE_JS_URL), which calls and frames the origin it was loaded
from, and the server may be pointed at another API base (STRIPE_API_BASE): those origins are read
from settings for each response, so the policy always matches the Stripe the page was rendered
for. In production both are unset or Stripe's, and nothing is added.
"""

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.conf import settings

STRIPE_ORIGINS = {"https://js.stripe.com", "https://api.stripe.com"}


def stripe_origins_elsewhere() -> list[str]:
    """Origins of STRIPE_JS_URL and STRIPE_API_BASE that are not Stripe's own."""
    urls = (getattr(settings, "STRIPE_JS_URL", None), getattr(settings, "STRIPE_API_BASE", None))
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in urls if url}
    return sorted(origins - STRIPE_ORIGINS)


class CSPMiddleware(DjangoCSPMiddleware):
    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only=report_only)
        elsewhere = stripe_origins_elsewhere()
        if elsewhere and not report_only:
            parts.update = {"script-src": elsewhere, "connect-src": elsewhere, "frame-src": elsewhere,
                            **(parts.update or {})}
        return parts
