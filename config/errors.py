from django.conf import settings
from django.http import HttpResponseServerError
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token


@requires_csrf_token
def server_error(request):
    # No request context processors here: whatever broke may be one of them.
    try:
        body = loader.render_to_string("500.html", {"SUPPORT_EMAIL": settings.SUPPORT_EMAIL})
    except Exception:
        body = "<h1>Something went wrong on our side</h1><p>You have not been charged twice. Please try again.</p>"
    return HttpResponseServerError(body)
