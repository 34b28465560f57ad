from django.contrib import admin, messages

from billing import services, stripe_api
from billing.errors import BillingError
from billing.models import Order, OrderEvent, OutboundEmail, Plan


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
