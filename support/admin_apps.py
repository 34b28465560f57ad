"""The admin app, with the support console as its default site. Kept apart from admin_site.py:
INSTALLED_APPS imports this before the app registry is ready, so it imports nothing heavy."""

from django.contrib.admin.apps import AdminConfig


class SupportAdminConfig(AdminConfig):
    default_site = "support.admin_site.SupportAdminSite"
