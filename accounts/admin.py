from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import AccessDelivery, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["full_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]}),
    ]


@admin.register(AccessDelivery)
class AccessDeliveryAdmin(admin.ModelAdmin):
    """Each access event sent to the product (accounts/webhooks.py): what, for whom, and how its
    delivery went. Read-only: the rows are the record; the dispatcher retries what is pending."""

    list_display = ["created_at", "event_type", "email", "status", "attempts", "last_response", "next_attempt_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["email", "event_id"]
    ordering = ["-id"]
    fields = ["event_id", "event_type", "email", "user", "status", "attempts", "next_attempt_at", "last_attempt_at",
              "last_response", "delivered_at", "created_at", "payload"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
