import logging

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from sesame.utils import get_user

from accounts.forms import CustomerPasswordResetForm
from accounts.models import normalize_email
from accounts.selectors import account_overview
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
    login(request, user, backend="sesame.backends.ModelBackend")
    return redirect("accounts:home")


@never_cache  # the account page shows the customer's email address and orders
@login_required
def home(request):
    return render(request, "accounts/home.html", account_overview(request.user))
