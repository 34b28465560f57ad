"""The console's front page: one search box and the queue of what needs a person."""

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.urls import path

from billing.statement import statement_prefix
from support import selectors
from support.forms import StaffLoginForm
from support.monitoring import email_outage
from support.timefmt import console_time


class StripeMirrorActionsForSuperusers:
    """dj-stripe's admin actions (re-sync, "sync all instances") are a superuser's, not support's.

    They call Stripe inside the request (a full sync, and a WebhookEndpoint row made on the way), and
    dj-stripe's own confirmation URL checks staff status only, not permissions: a view-only support
    person could run them. Mixed into every dj-stripe ModelAdmin as it registers (SupportAdminSite.register).
    """

    def get_actions(self, request):
        return super().get_actions(request) if request.user.is_superuser else {}

    def get_urls(self):
        # Imported here: dj-stripe's admin package registers its models on admin.site when imported,
        # and admin.site is this module's SupportAdminSite, not defined yet while this module loads.
        from djstripe.admin.views import ConfirmCustomAction

        def superusers_only(request, *args, **kwargs):
            if not request.user.is_superuser:
                raise PermissionDenied
            return ConfirmCustomAction.as_view()(request, *args, **kwargs)

        theirs = [url for url in super().get_urls() if getattr(url, "name", None) != "djstripe_custom_action"]
        return [path("action/<str:action_name>/<str:model_name>/", self.admin_site.admin_view(superusers_only),
                     name="djstripe_custom_action"), *theirs]


class ConsoleTimeColumns:
    """Date-time columns of a changelist in the console's one format, with its zone ("Dec 1, 2026
    22:09 UTC", support/timefmt.py), not Django's locale format ("Dec. 1, 2026, 10:09 p.m.", zone
    unsaid). Mixed into every ModelAdmin as it registers (SupportAdminSite.register)."""

    def _console_time_of(self, name):
        """The column or read-only field that shows date-time field `name`; anything else as given."""
        if not isinstance(name, str) or name in (self.list_editable or ()):
            return name
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return name
        if not isinstance(field, models.DateTimeField):
            return name
        # One callable per field: Django matches read-only fields and links by identity.
        shown = self.__dict__.setdefault("_console_times", {})
        if name not in shown:
            def show(obj):
                return console_time(getattr(obj, name)) or self.get_empty_value_display()

            show.__name__ = name  # keeps Django's CSS classes (column-created_at, field-created_at)
            shown[name] = admin.display(description=field.verbose_name, ordering=name)(show)
        return shown[name]

    def get_list_display(self, request):
        return [self._console_time_of(name) for name in super().get_list_display(request)]


class ConsoleTimes(ConsoleTimeColumns):
    """…and the read-only date-time fields of the change page too (every field of a view-only page)."""

    def get_readonly_fields(self, request, obj=None):
        return [self._console_time_of(name) for name in super().get_readonly_fields(request, obj)]

    def get_fieldsets(self, request, obj=None):
        readonly = set(super().get_readonly_fields(request, obj))
        view_only = obj is not None and not self.has_change_permission(request, obj)

        def shown(name):
            if isinstance(name, (list, tuple)):
                return type(name)(shown(each) for each in name)
            return self._console_time_of(name) if view_only or name in readonly else name

        return [(title, {**options, "fields": shown(options["fields"])})
                for title, options in super().get_fieldsets(request, obj)]


# Our own apps' admins get the console's times on their change pages too; dj-stripe's (the mirror)
# in their columns only: their change pages rebuild the field list from the read-only fields by name.
OUR_APPS = ("accounts", "billing", "support")


class SupportAdminSite(admin.AdminSite):
    index_title = "Support console"

    # Read on each page (not at import), so the console says the SITE_NAME the settings hold.
    @property
    def site_header(self):
        return f"{settings.SITE_NAME} support"

    @property
    def site_title(self):
        return self.site_header
    index_template = "support/console_index.html"

    # With STAFF_TWO_FACTOR on (production), the console also wants the code from the person's
    # authenticator app (django-otp), and a session signed in without one cannot see it.
    # One answer for every wrong part (support/forms.py), and a used code says so.
    @property
    def login_form(self):
        return StaffLoginForm if settings.STAFF_TWO_FACTOR else None

    @property
    def login_template(self):
        return "support/login.html" if settings.STAFF_TWO_FACTOR else None

    def register(self, model_or_iterable, admin_class=None, **options):
        if admin_class is not None:
            app = admin_class.__module__.split(".")[0]
            mixins = (ConsoleTimes,) if app in OUR_APPS else (ConsoleTimeColumns,)
            if app == "djstripe":
                mixins += (StripeMirrorActionsForSuperusers,)
            admin_class = type(admin_class.__name__, (*mixins, admin_class), {"__module__": admin_class.__module__})
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
            "date_hint": selectors.console_date_hint(query) if query and can_see_orders else None,
            "team_feed": selectors.team_feed(),
            "attention": selectors.needs_attention() if can_see_orders else [],
            # Computed live, so it shows even when the worker that would raise the alert is down.
            "sweep_down": selectors.sweep_notice(),
            "email_down": email_outage(),
            # Known once a search or `manage.py stripe_statement_prefix` has read it from Stripe: the
            # landing page never waits on Stripe for it (it must work while Stripe is down).
            "statement_prefix": statement_prefix(ask_stripe=False),
            **(extra_context or {}),
        }
        return super().index(request, context)

