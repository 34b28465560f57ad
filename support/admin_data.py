"""The console's data duties on orders: Export a customer's data, Erase a customer for good.

Thin callers of support/selectors/customer_data.py and billing/services/erasure.py, each behind
its own permission (billing.export_customer, billing.erase_customer), which the Support group does
not have unless someone grants it.
"""

import json

from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.response import TemplateResponse

from accounts.models import normalize_email
from billing import stripe_api
from billing.errors import BillingError, ErasureRefused
from billing.services.erasure import customer_erase, customer_erasure_plan
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

    def has_erase_customer_permission(self, request):
        return request.user.has_perm("billing.erase_customer")

    @admin.action(description="Erase the customer for good…", permissions=["erase_customer"])
    def erase_customer(self, request, queryset):
        """A page that says what goes, then the erasure once the person types the address."""
        email = _one_address(self, request, queryset)
        if email is None:
            return None
        error = ""
        typed = request.POST.get("confirm_email")
        if typed is not None:
            if normalize_email(typed) != email:
                error = "The address typed is not theirs: nothing was erased."
            else:
                try:
                    record = customer_erase(email=email, actor=f"support:{request.user.email}")
                except ErasureRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return None
                except (BillingError, stripe_api.StripeError) as exc:
                    self.message_user(request, f"Erasure not finished (press Erase again to finish): {exc}",
                                      messages.ERROR)
                    return None
                self.message_user(request, f"Erased: the orders kept for bookkeeping now say {record.placeholder}.",
                                  messages.SUCCESS)
                return None
        return TemplateResponse(request, "support/customer_erase_confirm.html", {
            **self.admin_site.each_context(request), "title": "Erase a customer", "email": email,
            "plan": customer_erasure_plan(email), "error": error,
            "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
        })
