"""The account page's billing pages, in the accounts namespace beside accounts/urls.py (config/urls.py
joins them under /account/), so their names stay accounts:home, accounts:reminders_off, ..."""

from django.urls import path

from billing import account_views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("receipt-details/", account_views.receipt_details, name="receipt_details"),
    path("reminders/", account_views.reminder_settings, name="reminders"),
    path("reminders/off/<str:token>/", account_views.reminders_off, name="reminders_off"),
]
