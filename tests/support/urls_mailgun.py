"""The project's ESP webhook routes as an installation with ANYMAIL_ESP=mailgun builds them."""

from django.urls import include, path

from config.esp_webhooks import esp_webhook_urls

urlpatterns = [path("anymail/", include(esp_webhook_urls("mailgun")))]
