"""A URLconf whose one page fails, to see the 500 page as a customer's browser gets it."""

from django.urls import path


def broken(request):
    raise RuntimeError("a bug")


urlpatterns = [path("orders/status/broken/", broken)]
handler500 = "config.errors.server_error"  # as config/urls.py
