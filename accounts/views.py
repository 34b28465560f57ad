from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from sesame.utils import get_user

from accounts.selectors import account_overview


def signin(request):
    """One-click sign-in from an email link; an old or broken link gets a calm way forward."""
    user = get_user(request)
    if user is None:
        return render(request, "accounts/signin_expired.html", status=400)
    login(request, user, backend="sesame.backends.ModelBackend")
    return redirect("accounts:home")


@login_required
def home(request):
    return render(request, "accounts/home.html", account_overview(request.user))
