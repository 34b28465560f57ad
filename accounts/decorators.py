"""The door to the product, for views in this same Django project: `@access_required` for a
function view, `AccessRequiredMixin` for a class-based one. Both ask one question,
`accounts.access.has_access(user)`, and answer everyone else the same way:

- not signed in: to the sign-in page, and back here after (as `login_required` does);
- signed in without paid access: a plain page (403) that says whether their plan ended or was
  closed, or that they have none, with the way on: Renew on their account page, or buy the plan.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from accounts.access import has_access
from accounts.models import Entitlement

NO_ACCESS_TEMPLATE = "app/no_access.html"


def no_access_response(request):
    """What a signed-in person without paid access sees instead of the product."""
    user = request.user
    last = Entitlement.objects.filter(user=user).select_related("plan").order_by("-ends_at").first()
    context = {
        "last": last,
        # Billing's orders of this account, through the relation: a payment may be on its way.
        "has_orders": user.orders.exists(),
    }
    return render(request, NO_ACCESS_TEMPLATE, context, status=403)


def _door(request):
    """None to let the request in; otherwise the response that sends it elsewhere."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not has_access(request.user):
        return no_access_response(request)
    return None


def access_required(view):
    """Only people with paid access reach `view`; see the module docstring for everyone else."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return _door(request) or view(request, *args, **kwargs)

    return wrapped


class AccessRequiredMixin:
    """The same door for a class-based view; put it first among the bases."""

    def dispatch(self, request, *args, **kwargs):
        return _door(request) or super().dispatch(request, *args, **kwargs)
