import logging

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from sesame.utils import get_user

from accounts.forms import CustomerPasswordResetForm, ReceiptDetailsForm, ReminderSettingsForm
from accounts.models import normalize_email
from accounts.selectors import account_overview
from accounts.tokens import user_from_reminders_off_token
from billing.renewals import reminders_unsubscribe
from config.client_ip import client_ip
from config.ratelimit import over_limit

logger = logging.getLogger(__name__)

# Password links asked for, per client address and per email address. Someone who forgot their
# password asks once or twice; above this we still show "check your email" and send nothing.
PASSWORD_RESET_RATE_PER_CLIENT = "10/h"
PASSWORD_RESET_RATE_PER_EMAIL = "3/h"


class PasswordResetView(auth_views.PasswordResetView):
    """Django's "email me a link" page, limited, sending through the outbox (the form's save()).

    The answer is the same page whether the address has an account, has been limited or not.
    """

    template_name = "accounts/password_reset.html"
    form_class = CustomerPasswordResetForm

    def form_valid(self, form):
        email = normalize_email(form.cleaned_data["email"])
        if (over_limit(self.request, group="password-reset:client", rate=PASSWORD_RESET_RATE_PER_CLIENT)
                or over_limit(self.request, group="password-reset:email", rate=PASSWORD_RESET_RATE_PER_EMAIL,
                              value=email)):
            logger.warning("Password link rate limited for %s from %s", email, client_ip(self.request))
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


@never_cache
def signin(request):
    """One-click sign-in from an email link; an old or broken link gets a calm way forward."""
    user = get_user(request)
    # Staff accounts never sign in by link: the console has its own door (password, lockout,
    # second factor), and a forwarded customer email must not open it.
    if user is None or user.is_staff:
        return render(request, "accounts/signin_expired.html", status=400)
    if user.has_usable_password():
        # Every email says links stop once a password is set; this one was made after it was.
        return render(request, "accounts/signin_password_set.html")
    login(request, user, backend="sesame.backends.ModelBackend")
    return redirect("accounts:home")


def _home(request, *, details_form=None, reminders_form=None):
    return render(request, "accounts/home.html", {
        **account_overview(request.user),
        "details_form": details_form or ReceiptDetailsForm(instance=request.user),
        "reminders_form": reminders_form or ReminderSettingsForm(instance=request.user),
    })


@never_cache  # the account page shows the customer's email address and orders
@login_required
def home(request):
    return _home(request)


@never_cache
@login_required
@require_http_methods(["POST"])
def receipt_details(request):
    """The company name and VAT number printed on the customer's receipts."""
    form = ReceiptDetailsForm(request.POST, instance=request.user)
    if not form.is_valid():
        return _home(request, details_form=form)
    form.save()
    if form.cleaned_data["company_name"] or form.cleaned_data["vat_number"]:
        messages.success(request, "Saved. Your receipts show these details.")
    else:
        messages.success(request, "Saved. Your receipts show no company or VAT number.")
    return redirect("accounts:home")


@never_cache
@login_required
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


class PasswordChangeView(auth_views.PasswordChangeView):
    """Signed in, no trip to the inbox: change the password (the old one, then the new), or, for a
    customer who has only ever signed in by emailed link, set a first one."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:home")

    def get_form_class(self):
        return PasswordChangeForm if self.request.user.has_usable_password() else SetPasswordForm

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs, first_password=not self.request.user.has_usable_password())

    def form_valid(self, form):
        first = not self.request.user.has_usable_password()
        response = super().form_valid(form)  # saves it and keeps this session signed in
        messages.success(self.request, _password_saved(first=first))
        return response


def _password_saved(*, first: bool) -> str:
    if first:
        return ("Your password is saved. From now on, sign in with your email address and this password; "
                "the one-click links in our emails no longer sign you in.")
    return "Your new password is saved. Use it the next time you sign in."


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The emailed password link: choose a password, and be signed in with it."""

    template_name = "accounts/password_reset_confirm.html"
    post_reset_login = True
    # Named, because AUTHENTICATION_BACKENDS lists three (axes, Django's, sesame's) and login()
    # must record one: the password backend, the way in from now on.
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"
    success_url = reverse_lazy("accounts:home")

    def form_valid(self, form):
        staff = self.user.is_staff
        if staff:
            # Staff sign in only at the console's door (password, lockout, second factor).
            self.post_reset_login = False
        response = super().form_valid(form)
        if not staff:
            messages.success(self.request, _password_saved(first=True))
        return response

    def get_success_url(self):
        return reverse("accounts:password_reset_complete") if self.user.is_staff else super().get_success_url()


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
