from django.contrib import admin
from django.urls import include, path

from config import health

admin.site.site_header = "Backstop support"
admin.site.site_title = "Backstop support"
admin.site.index_title = "Support console"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("account/", include("accounts.urls")),
    path("anymail/", include("anymail.urls")),
    path("", include("billing.urls")),
]

handler500 = "config.errors.server_error"
