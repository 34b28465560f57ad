"""The console's front page: one search box and the queue of what needs a person."""

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import path

from support import selectors


class StripeMirrorActionsForSuperusers:
    """dj-stripe's admin actions (re-sync, "sync all instances") are a superuser's, not support's.

    They call Stripe inside the request (a full sync, and a WebhookEndpoint row made on the way), and
    dj-stripe's own confirmation URL checks staff status only, not permissions: a view-only support
    person could run them. Mixed into every dj-stripe ModelAdmin as it registers (SupportAdminSite.register).
    """

    def get_actions(self, request):
        return super().get_actions(request) if request.user.is_superuser else {}

    def get_urls(self):
        from djstripe.admin.views import ConfirmCustomAction

        def superusers_only(request, *args, **kwargs):
            if not request.user.is_superuser:
                raise PermissionDenied
            return ConfirmCustomAction.as_view()(request, *args, **kwargs)

        theirs = [url for url in super().get_urls() if getattr(url, "name", None) != "djstripe_custom_action"]
        return [path("action/<str:action_name>/<str:model_name>/", self.admin_site.admin_view(superusers_only),
                     name="djstripe_custom_action"), *theirs]


class SupportAdminSite(admin.AdminSite):
    site_header = "Backstop support"
    site_title = "Backstop support"
    index_title = "Support console"
    index_template = "support/console_index.html"

    # With STAFF_TWO_FACTOR on (production), the console also wants the code from the person's
    # authenticator app (django-otp), and a session signed in without one cannot see it.
    # One answer for every wrong part (support/forms.py), and a used code says so.
    @property
    def login_form(self):
        from support.forms import StaffLoginForm

        return StaffLoginForm if settings.STAFF_TWO_FACTOR else None

    @property
    def login_template(self):
        return "support/login.html" if settings.STAFF_TWO_FACTOR else None

    def register(self, model_or_iterable, admin_class=None, **options):
        if admin_class is not None and admin_class.__module__.startswith("djstripe."):
            admin_class = type(admin_class.__name__, (StripeMirrorActionsForSuperusers, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)

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
            # Computed live, so it shows even when the worker that would raise the alert is down.
            "sweep_down": selectors.sweep_notice(),
            **(extra_context or {}),
        }
        return super().index(request, context)

