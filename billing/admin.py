from django.contrib import admin

from billing.models import Plan, ReconcileRun

# The Order admin is the support console's case page: see support/admin.py.


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "price_display", "duration_months", "is_active"]
    readonly_fields = ["created_at"]


@admin.register(ReconcileRun)
class ReconcileRunAdmin(admin.ModelAdmin):
    """Each sweep, as the safety net's own log: what it looked at, found, did and could not do."""

    list_display = ["started_at", "status", "duration_ms", "found", "error_count", "host"]
    list_filter = ["status", "widened"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in ReconcileRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="found and fixed")
    def found(self, run):
        counts = {k: v for k, v in sorted((run.counts or {}).items()) if v and not k.startswith("sync_")
                  and k != "errors"}
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()) or "—"

    @admin.display(description="errors")
    def error_count(self, run):
        return len(run.errors or [])
