from django.contrib import admin
from django.urls import include, path

from accounts import urls as accounts_urls
from accounts.api import AccessAPI
from accounts.product import ProductHome
from billing import account_urls as billing_account_urls
from billing.webhooks import stripe_webhook
from config import health
from config.esp_webhooks import esp_webhook_urls
from support import monitoring

# dj-stripe's one URL (djstripe/urls.py), answered by billing/webhooks.py instead of its view. Same
# path, namespace and name, so reverse("djstripe:djstripe_webhook_by_uuid", ...) still finds it.
djstripe_urls = (
    [path("webhook/<uuid:uuid>/", stripe_webhook, name="djstripe_webhook_by_uuid")],
    "djstripe",
)

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("metrics", monitoring.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("stripe/", include(djstripe_urls)),
    # The account: accounts' pages (sign-in, passwords) and billing's (plan, payments, receipts,
    # reminders), one namespace, so accounts never imports billing.
    path("account/", include((accounts_urls.urlpatterns + billing_account_urls.urlpatterns, "accounts"))),
    # The product's door (docs/integrating.md): the demo product page, and the API a separate product asks.
    path("app/", ProductHome.as_view(), name="app"),
    path("api/v1/access/", AccessAPI.as_view(), name="access-api-v1"),
    # Only the configured email provider's webhooks (ANYMAIL_ESP), with the shared secret.
    path("anymail/", include(esp_webhook_urls())),
    path("", include("billing.urls")),
]

handler500 = "config.errors.server_error"
