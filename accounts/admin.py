from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from accounts.api_keys import api_key_revoke
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


# djangorestframework-api-key registers its own admin; this one adds a Revoke action, so keys for
# the access API are listed and revoked in the console as well as by `manage.py access_api_key`.
# Model permissions as everywhere: superusers, or whoever is given the API-key permissions.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(APIKey)
class AccessAPIKeyAdmin(APIKeyModelAdmin):
    actions = ["revoke"]

    @admin.action(description="Revoke the selected keys (they stop working, for good)", permissions=["change"])
    def revoke(self, request, queryset):
        keys = [api_key_revoke(prefix=key.prefix) for key in queryset]
        self.message_user(request, f"Revoked {len(keys)} key{'s' if len(keys) != 1 else ''}: "
                                   + ", ".join(f"{key.prefix} ({key.name})" for key in keys), messages.SUCCESS)
