from django.contrib import admin, messages

from billing import services, stripe_api
from billing.errors import BillingError
from billing.models import Order, OrderEvent, OutboundEmail, Plan, ReconcileRun


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "price_display", "duration_months", "is_active"]
    readonly_fields = ["created_at"]


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fields = ["created_at", "actor", "from_state", "to_state", "reason", "stripe_ids"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OutboundEmailInline(admin.TabularInline):
    model = OutboundEmail
    fields = ["kind", "recipient", "status", "attempts", "sent_at", "esp_message_id", "last_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "email", "amount_display", "state", "card_last4", "created_at", "paid_at"]
    list_filter = ["state"]
    search_fields = ["reference", "email", "card_last4", "stripe_payment_intent_id", "stripe_charge_id",
                     "stripe_customer_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [OrderEventInline, OutboundEmailInline]
    actions = ["settle_with_stripe"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Check with Stripe and finish (safe to repeat)")
    def settle_with_stripe(self, request, queryset):
        actor = f"support:{request.user.email}"
        for order in queryset:
            try:
                order = services.order_settle(order_id=order.id, actor=actor, reason="support asked to check")
            except (BillingError, stripe_api.StripeError) as exc:
                self.message_user(request, f"{order.reference}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{order.reference}: {order.get_state_display()}", messages.SUCCESS)


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
