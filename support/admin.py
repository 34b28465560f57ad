from django.contrib import admin

from support.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Cases raised to the team; the console's queue (a later issue) builds on these."""

    list_display = ["created_at", "kind", "summary", "order", "notified_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["summary", "key", "order__reference", "order__email"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    list_select_related = ["order"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
