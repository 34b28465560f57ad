"""The console's front page: one search box and the queue of what needs a person."""

from django.contrib import admin

from support import selectors


class SupportAdminSite(admin.AdminSite):
    site_header = "Backstop support"
    site_title = "Backstop support"
    index_title = "Support console"
    index_template = "support/console_index.html"

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

