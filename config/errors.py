from django.conf import settings
from django.http import HttpResponseServerError
from django.template import loader
from django.utils.html import escape
from django.views.decorators.csrf import requires_csrf_token

from config.context_processors import brand

# When even the template cannot be rendered: the same facts, in plain HTML.
FALLBACK_500 = (
    '<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>Something went wrong</title><h1>Something went wrong on our side</h1>"
    "<p>If you were paying, your card may or may not have been charged. If it was, you'll get an email from us, "
    "usually within minutes, and you never lose that money: if we can't finish your order, we refund it automatically."
    "</p>"
    '<p><a href="/orders/lookup/">Find my order</a> · Questions? Write to {support} and a person will answer.</p>'
)


@requires_csrf_token
def server_error(request):
    # No request context processors here: whatever broke may be one of them.
    support_email = getattr(settings, "SUPPORT_EMAIL", "")
    try:
        # The nonce lets the page's one inline script (what Stripe told the browser, and a retry)
        # run under the Content-Security-Policy; reading it adds it to this response's header.
        # (django-csp's lazy nonce is falsy until read: str() reads it.)
        nonce = getattr(request, "csp_nonce", None)
        nonce = str(nonce) if nonce is not None else ""
        body = loader.render_to_string("500.html", {**brand(), "SUPPORT_EMAIL": support_email,
                                                         "CSP_NONCE": nonce})
    except Exception:
        body = FALLBACK_500.format(support=escape(support_email))
    return HttpResponseServerError(body)


def unavailable_page() -> str:
    """The static page a reverse proxy serves while the app is down (templates/50x.html).

    Rendered once per deploy by `manage.py render_50x`, with the support address and the site's name
    and nothing from a request: the result is plain HTML that needs nothing from Django.
    """
    return loader.render_to_string("50x.html", {**brand(), "SUPPORT_EMAIL": settings.SUPPORT_EMAIL})
