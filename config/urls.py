from django.contrib import admin
from django.urls import include, path

from billing.webhook_guard import stripe_webhook
from config import health

admin.site.site_header = "Backstop support"
admin.site.site_title = "Backstop support"
admin.site.index_title = "Support console"

# dj-stripe's one URL (djstripe/urls.py), with billing/webhook_guard.py in front of its view. Same
# path, namespace and name, so reverse("djstripe:djstripe_webhook_by_uuid", ...) still finds it.
djstripe_urls = (
    [path("webhook/<uuid:uuid>/", stripe_webhook, name="djstripe_webhook_by_uuid")],
    "djstripe",
)

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("stripe/", include(djstripe_urls)),
    path("account/", include("accounts.urls")),
    path("anymail/", include("anymail.urls")),
    path("", include("billing.urls")),
]

handler500 = "config.errors.server_error"
