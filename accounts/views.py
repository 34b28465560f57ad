import functools
import logging

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from sesame.utils import get_user

from accounts.emails import PASSWORD_RESET
from accounts.forms import CustomerLoginForm, CustomerPasswordResetForm
from accounts.models import normalize_email
from accounts.proof import address_prove, address_proved, one_click_order, one_click_still_fits
from config.client_ip import client_ip
from config.ratelimit import retry_after, try_again_words
from outbox.services import outbound_email_queue

logger = logging.getLogger(__name__)

# Password links asked for: per client, per client and address together, and per address (every
# request for it, whether or not it has an account, so the count reveals nothing). Someone who
# forgot their password asks once or twice; when a limit holds a request back, nothing is sent and
# the page says so and when to try again.
PASSWORD_RESET_RATE_PER_CLIENT = "10/h"
PASSWORD_RESET_RATE_PER_CLIENT_AND_EMAIL = "3/h"
PASSWORD_RESET_RATE_PER_EMAIL = "5/d"


def _password_link_retry_after(request, email) -> tuple[str, int] | None:
    """Whether a limit holds back a password link for `email` from this request: (which, seconds).
    A session that proved the address (a link we sent there, its password) is never held back."""
    if address_proved(request, email):
        return None
    retry = (retry_after(request, group="password-reset:client", rate=PASSWORD_RESET_RATE_PER_CLIENT)
             or retry_after(request, group="password-reset:client-email", rate=PASSWORD_RESET_RATE_PER_CLIENT_AND_EMAIL,
                            value=email, per_client=True))
    if retry:
        return "client", retry
    # Counted only for requests the client limits let through: one busy client cannot use it up alone
    # faster than its own limits allow.
    retry = retry_after(request, group="password-reset:email", rate=PASSWORD_RESET_RATE_PER_EMAIL, value=email)
    return ("address", retry) if retry else None


class PasswordResetView(auth_views.PasswordResetView):
    """Django's "email me a link" page, limited, sending through the outbox (the form's save()).

    The answer is the same page whether the address has an account or not; when a limit held the
    request back, it says that nothing was sent and when to try again (the limits count requests,
    whatever the address has).
    """

    template_name = "accounts/password_reset.html"
    form_class = CustomerPasswordResetForm

    def form_valid(self, form):
        email = normalize_email(form.cleaned_data["email"])
        capped = _password_link_retry_after(self.request, email)
        if capped:
            logger.warning("Password link rate limited for %s from %s", email, client_ip(self.request))
            return render(self.request, self.template_name, {
                "form": form, "capped": capped[0], "try_again": try_again_words(capped[1])}, status=429)
        return super().form_valid(form)


class LoginView(auth_views.LoginView):
    """The shop's password sign-in. Knowing the account's password proves the address."""

    template_name = "accounts/login.html"
    authentication_form = CustomerLoginForm

    def form_valid(self, form):
        response = super().form_valid(form)
        address_prove(self.request, form.get_user().email)
        return response


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
    address_prove(request, user.email)  # the link came to the address: it may set a first password
    return redirect("accounts:home")


def one_click_fits(view):
    """A session the thank-you page signed in by one click sees the account only while everything
    on it is still this browser's own doing (billing's check, accounts.proof.one_click_still_fits):
    once someone else's payment is on it or a password is set, the session ends and the way in is
    the emailed link or the password."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if (one_click_order(request) and request.user.is_authenticated
                and not one_click_still_fits(request)):
            logout(request)
            messages.info(request, "Please sign in with the link we emailed to your address, or with your "
                                   "password: this browser's quick sign-in from the payment page has ended.")
            return redirect("accounts:login")
        return view(request, *args, **kwargs)

    return wrapped


class PasswordChangeView(auth_views.PasswordChangeView):
    """Signed in: change the password (the old one, then the new), or set a first one, which only a
    session that proved the address may do (it opened a sign-in or password link sent there). A
    session signed in any other way (the thank-you page's one click: whoever typed the address
    could have paid) is offered a password link by email instead."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:home")

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return one_click_fits(super().dispatch)(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def _first_needs_link(self) -> bool:
        user = self.request.user
        return not user.has_usable_password() and not address_proved(self.request, user.email)

    def get(self, request, *args, **kwargs):
        if self._first_needs_link():
            return render(request, self.template_name, {"first_password": True, "needs_link": True})
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if self._first_needs_link():
            return render(request, self.template_name, {"first_password": True, "needs_link": True}, status=403)
        return super().post(request, *args, **kwargs)

    def get_form_class(self):
        return PasswordChangeForm if self.request.user.has_usable_password() else SetPasswordForm

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs, first_password=not self.request.user.has_usable_password())

    def form_valid(self, form):
        first = not self.request.user.has_usable_password()
        response = super().form_valid(form)  # saves it and keeps this session signed in
        messages.success(self.request, _password_saved(first=first))
        return response


@never_cache
@login_required
@require_http_methods(["POST"])
def password_link(request):
    """Email the signed-in account's own address a password link (the password reset's email), for a
    session that may not set the first password itself. Limited like the reset page."""
    email = request.user.email
    capped = _password_link_retry_after(request, email)
    if capped:
        return render(request, "accounts/password_change.html", {
            "first_password": True, "needs_link": True, "capped": capped[0],
            "try_again": try_again_words(capped[1])}, status=429)
    outbound_email_queue(user=request.user, kind=PASSWORD_RESET)
    return render(request, "accounts/password_change.html", {"first_password": True, "needs_link": True,
                                                             "link_sent": True})


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
            # The link came to the address (post_reset_login signed this session in with it).
            address_prove(self.request, self.user.email)
            messages.success(self.request, _password_saved(first=True))
        return response

    def get_success_url(self):
        return reverse("accounts:password_reset_complete") if self.user.is_staff else super().get_success_url()
