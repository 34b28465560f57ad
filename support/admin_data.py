"""The console's data duties on orders: Export a customer's data, Erase a customer for good.

Thin callers of support/selectors/customer_data.py and support/services_erasure.py, each behind
its own permission (billing.export_customer, billing.erase_customer), which the Support group does
not have unless someone grants it.
"""

import json

from django.contrib import admin, messages
from django.http import HttpResponse

from support.selectors.customer_data import customer_data


def _one_address(model_admin, request, queryset) -> str | None:
    addresses = sorted(set(queryset.values_list("email", flat=True)))
    if len(addresses) != 1:
        model_admin.message_user(request, "Choose the orders of one customer (one email address).", messages.ERROR)
        return None
    return addresses[0]


class CustomerDataActions:
    """Admin actions for OrderAdmin: the customer is the address of the orders chosen."""

    def has_export_customer_permission(self, request):
        return request.user.has_perm("billing.export_customer")

    @admin.action(description="Export the customer's data (JSON)", permissions=["export_customer"])
    def export_customer_data(self, request, queryset):
        email = _one_address(self, request, queryset)
        if email is None:
            return None
        document = customer_data(email)
        response = HttpResponse(json.dumps(document, indent=2, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="customer-data.json"'
        return response
