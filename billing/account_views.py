"""The account page's billing (plan, payments, receipts, the receipt details and renewal reminders)
and the one-click "stop renewal reminders" link. Their URLs are in the accounts namespace
(config/urls.py puts billing/account_urls.py beside accounts/urls.py under /account/)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.forms import ReceiptDetailsForm, ReminderSettingsForm
from accounts.tokens import user_from_reminders_off_token
from accounts.views import one_click_fits
from billing.renewals import reminders_unsubscribe
from billing.selectors import account_made_by_orders, account_overview
from billing.views import SESSION_ORDERS


def one_click_session_fits(request) -> bool:
    """Is the account of this one-click session still wholly this browser's own doing (every payment
    on it one of its orders, no password set)? accounts.views.one_click_fits asks it; BillingConfig
    hands it over in ready()."""
    return account_made_by_orders(request.user, request.session.get(SESSION_ORDERS, []))


def _home(request, *, details_form=None, reminders_form=None):
    return render(request, "accounts/home.html", {
        **account_overview(request.user),
        "details_form": details_form or ReceiptDetailsForm(instance=request.user),
        "reminders_form": reminders_form or ReminderSettingsForm(instance=request.user),
    })


@never_cache  # the account page shows the customer's email address and orders
@login_required
@one_click_fits
def home(request):
    return _home(request)


@never_cache
@login_required
@one_click_fits
@require_http_methods(["POST"])
def receipt_details(request):
    """The company name and VAT number printed on the customer's receipts."""
    form = ReceiptDetailsForm(request.POST, instance=request.user)
    if not form.is_valid():
        return _home(request, details_form=form)
    form.save()
    # Receipts keep the details they were issued with (frozen on each order at checkout).
    if form.cleaned_data["company_name"] or form.cleaned_data["vat_number"]:
        messages.success(request, "Saved. The receipts of your next payments show these details; receipts "
                                  "already issued stay as they were issued.")
    else:
        messages.success(request, "Saved. The receipts of your next payments show no company or VAT number; "
                                  "receipts already issued stay as they were issued.")
    return redirect("accounts:home")


@never_cache
@login_required
@one_click_fits
@require_http_methods(["POST"])
def reminder_settings(request):
    form = ReminderSettingsForm(request.POST, instance=request.user)
    if not form.is_valid():
        return _home(request, reminders_form=form)
    if form.cleaned_data["renewal_reminders"]:
        form.save()
        messages.success(request, "Saved. We'll email you before your plan ends.")
    else:
        reminders_unsubscribe(user=request.user, via="their account page")  # support sees it on the timeline
        messages.success(request, "Saved. We won't email you before your plan ends; it still ends on its "
                                  "date and nothing renews by itself.")
    return redirect("accounts:home")


# --- One-click "stop renewal reminders" (RFC 8058) -----------------------------------------------


@csrf_exempt  # the mail program POSTs with no session and no CSRF token: the signed link is the proof
@never_cache  # the address carries the account's signed link
@require_http_methods(["GET", "HEAD", "POST"])
def reminders_off(request, token):
    """The link in the List-Unsubscribe header and at the foot of renewal emails.

    A POST (the mail program's Unsubscribe button, or the button on this page) turns renewal
    reminders off. A GET only shows that button: mail scanners open every link in a message, and
    opening a link must never change anything.
    """
    user = user_from_reminders_off_token(token)
    if user is None:
        return render(request, "accounts/reminders_off.html", {"broken": True}, status=400)
    done = request.method == "POST"
    if done:
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        reminders_unsubscribe(user=user, via="their mail program's Unsubscribe button" if one_click
                              else "the link in a renewal email")
    return render(request, "accounts/reminders_off.html", {"done": done, "off": not user.renewal_reminders})
