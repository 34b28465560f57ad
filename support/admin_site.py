"""The console's front page: one search box and the queue of what needs a person."""

from django.conf import settings
from django.contrib import admin
from django_otp.admin import OTPAdminAuthenticationForm

from support import selectors


class SupportAdminSite(admin.AdminSite):
    site_header = "Backstop support"
    site_title = "Backstop support"
    index_title = "Support console"
    index_template = "support/console_index.html"

    # With STAFF_TWO_FACTOR on (production), the console also wants the code from the person's
    # authenticator app (django-otp), and a session signed in without one cannot see it.
    @property
    def login_form(self):
        return OTPAdminAuthenticationForm if settings.STAFF_TWO_FACTOR else None

    @property
    def login_template(self):
        return "otp/admin111/login.html" if settings.STAFF_TWO_FACTOR else None

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        return not settings.STAFF_TWO_FACTOR or request.user.is_verified()

    def index(self, request, extra_context=None):
        query = request.GET.get("q", "").strip()[:200]
        can_see_orders = request.user.has_perm("billing.view_order")
        context = {
            "q": query,
            "results": selectors.console_search(query) if query and can_see_orders else None,
            "attention": selectors.needs_attention() if can_see_orders else [],
            **(extra_context or {}),
        }
        return super().index(request, context)

