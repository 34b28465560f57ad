"""Customer-facing pages. Each view gathers input, calls one service or selector, and renders."""

import logging
import uuid
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import normalize_email
from accounts.periods import add_months
from accounts.proof import address_proved, one_click_mark, signed_in_with_proof
from accounts.selectors import access_until
from billing import receipts, selectors, services, stripe_api
from billing.errors import BillingError, PaymentSetupFailed
from billing.forms import CheckoutForm, OrderLookupForm
from billing.models import OrderState, Plan
from billing.selectors import (
    account_made_by_orders,
    order_customer_status,
    order_for_page,
    order_needs_settle,
    payment_intent_from_mirror,
)
from billing.tokens import order_from_status_token, order_status_token, user_from_renew_token
from config.client_ip import client_ip
from config.queries import by_unique_key
from config.ratelimit import over_limit, retry_after, try_again_words

logger = logging.getLogger(__name__)

# The status page polls every couple of seconds; Stripe is asked at most this often per order.
SETTLE_THROTTLE_SECONDS = services.SETTLE_TURN_SECONDS
# How long a customer's page waits for the webhook's (or another request's) read of Stripe before
# saying "checking" (and polling): short, as a waiting page holds a web thread others need.
WAIT_FOR_OTHER_SETTLE = 0.5
PAYABLE_STATES = services.PAYABLE
Outcome = services.CheckoutOutcomeKind

# Rate limits (django-ratelimit, counted in the shared cache; config/ratelimit.py), per client
# address (config/client_ip.py), per client and email address together, and per email address only
# for what that address receives. A person who mistypes, reloads, goes back or retries stays far
# below them; a script making orders, Stripe calls or emails to strangers does not. Nobody else's
# requests count against a customer's own: an address alone never blocks its owner's checkout, and
# a customer who proved the address (signed in, a Renew link) is not counted at all.
# Checkout: each valid submission (an order and a Stripe Customer + PaymentIntent, or a reused one).
CHECKOUT_RATE_PER_CLIENT = "20/h"
CHECKOUT_RATE_PER_CLIENT_AND_EMAIL = "10/h"
# The status page and its API together. One open page polls every 2 s (30 a minute), so this is
# four tabs' worth; above it the page answers from what we know without asking Stripe, and the API
# answers 429, which status.js treats like a dropped connection ("Reconnecting…") and retries.
STATUS_RATE_PER_CLIENT = "120/m"
# "Find my order", and checkout's "this address already bought it" email: each can email an
# address someone else typed. Lookups are counted per client, per client and address, and per
# address (every lookup for it, whatever it has: the count says nothing about who bought), so no one
# floods an inbox. A lookup sends at most one email (all the address's orders in it), so the
# per-address count is the only cap on lookups' emails and a lookup it lets through always sends.
LOOKUP_RATE_PER_CLIENT = "10/h"
LOOKUP_RATE_PER_CLIENT_AND_EMAIL = "3/h"
LOOKUP_RATE_PER_EMAIL = "5/d"
ALREADY_YOURS_RATE_PER_EMAIL = "3/h"


def _current_plan():
    return Plan.objects.filter(is_active=True).order_by("amount_cents").first()


def home(request):
    return render(request, "billing/home.html", {"plan": _current_plan()})


# The orders this browser created, so its own pages may say more than a stranger's would.
SESSION_ORDERS = "billing:orders"
# A random id for this browser, stored on its orders: two tabs' checkouts find each other. A signed
# cookie of its own rather than the session, so that opening the checkout writes nothing to the
# database: the session starts when there is something to keep (the first order), one INSERT.
BROWSER_COOKIE = "backstop_browser"
# Addresses this browser has shown it reads (signed in, or a Renew link): their pages may say
# until when the plan runs.
SESSION_VERIFIED = "billing:verified"


def _remember_order(request, order):
    orders = [o for o in request.session.get(SESSION_ORDERS, []) if o != order.public_id.hex]
    request.session[SESSION_ORDERS] = [*orders, order.public_id.hex][-10:]


def _is_own_order(request, order) -> bool:
    return order.public_id.hex in request.session.get(SESSION_ORDERS, [])


def _browser_key(request) -> str:
    """This browser's id: the one its cookie carries, or a new one (given to it by _keep_browser_key)."""
    return request.get_signed_cookie(BROWSER_COOKIE, default="", salt=BROWSER_COOKIE) or uuid.uuid4().hex


def _keep_browser_key(response, browser_key):
    response.set_signed_cookie(BROWSER_COOKIE, browser_key, salt=BROWSER_COOKIE, max_age=settings.SESSION_COOKIE_AGE,
                               secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")
    return response


def _verified_customer(request):
    """The customer whose address this browser has proved it reads: a valid Renew link (from
    their own inbox), or signed in as them by link or password. The thank-you page's one-click
    sign-in proves nothing (accounts.proof). Staff never shop from the console's session."""
    token = request.POST.get("renew") or request.GET.get("renew")
    if token:
        user = user_from_renew_token(token)
        if user is not None:
            return user
    if signed_in_with_proof(request) and not request.user.is_staff:
        return request.user
    return None


def _address_proved(request, email) -> bool:
    """Has this session proved it reads `email`? (A Renew link or a sign-in at checkout, a link we
    emailed there, the account's password.) Typing it, or having paid with it, proves nothing."""
    email = normalize_email(email)
    if email in request.session.get(SESSION_VERIFIED, []) or address_proved(request, email):
        return True
    return signed_in_with_proof(request) and not request.user.is_staff and request.user.email == email


def _owns_account(request, user) -> bool:
    """Is this account wholly made by this browser's own orders (it paid for everything on it, and
    nobody set a password)? Then its dates are this browser's own to see, and it may enter it with
    one click (selectors.account_made_by_orders); that is still no proof of the address."""
    return account_made_by_orders(user, request.session.get(SESSION_ORDERS, []))


def _account_for(email):
    return by_unique_key(get_user_model().objects.filter(email=normalize_email(email)))


def _may_see_account(request, email) -> bool:
    """May this session see the plan dates of the account of `email`? If it proved the address, or
    everything on that account is its own doing."""
    return _address_proved(request, email) or _owns_account(request, _account_for(email))


def _verify_address(request, email):
    verified = [e for e in request.session.get(SESSION_VERIFIED, []) if e != email]
    request.session[SESSION_VERIFIED] = [*verified, email][-5:]


def _renewal(request, email, plan, *, paying=None):
    """For an address this browser has proved: until when its plan runs, and until when after
    one more payment (purchases stack end to end). None if nothing runs or nothing is proved.
    `paying`: the unpaid order the page asks to pay for, which cannot have made an account."""
    email = normalize_email(email)
    proved = _address_proved(request, email)
    own = [o for o in request.session.get(SESSION_ORDERS, []) if paying is None or o != paying.public_id.hex]
    if not own and not proved:
        return None  # no payment of this browser's can have made the account: not read
    user = _account_for(email)  # once, for both questions
    if user is None or not (proved or _owns_account(request, user)):
        return None
    until = access_until(user)
    if until is None:
        return None
    return {"until": until, "new_until": add_months(until, plan.duration_months), "months": plan.duration_months}


@never_cache  # its answers carry the customer's email address
@require_http_methods(["GET", "POST"])
def checkout(request):
    plan = _current_plan()
    if plan is None:
        raise Http404("Nothing on sale")
    # Given now, so that two tabs rendered from here share it when they submit.
    browser_key = _browser_key(request)
    return _keep_browser_key(_checkout(request, plan, browser_key), browser_key)


def _checkout(request, plan, browser_key):
    customer = _verified_customer(request)
    initial = {"nonce": uuid.uuid4(), "renew": request.GET.get("renew", "")}
    if customer is not None:
        _verify_address(request, customer.email)
        initial.update(email=customer.email, full_name=customer.full_name)
    form = CheckoutForm(request.POST or None, initial=initial)
    setup_failed = False
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        outcome = services.checkout_decide(
            plan=plan, email=email, full_name=form.cleaned_data["full_name"], nonce=form.cleaned_data["nonce"],
            buy_again=form.cleaned_data["buy_again"], address_proved=_address_proved(request, email),
            own_order_ids=request.session.get(SESSION_ORDERS, []), customer=customer,
            browser_key=browser_key, retry_after=_checkout_retry_after(request, email))
        match outcome.kind:
            case Outcome.RATE_LIMITED:
                form.add_error(None, "We've had a lot of checkouts from your connection in the last hour, so "
                                     "we've paused new ones from here for a while. You have not been charged. "
                                     f"Please try again {try_again_words(outcome.retry_after)}, or write to "
                                     f"{settings.SUPPORT_EMAIL} and a person will help.")
                return render(request, "billing/checkout.html", {"plan": plan, "form": form}, status=429)
            case Outcome.RESUME_PAYMENT:
                return redirect("billing:pay", token=order_status_token(outcome.order))
            case Outcome.OFFER_MORE_TIME:
                return _offer_more_time(request, form, plan, outcome.order)
            case Outcome.ALREADY_BOUGHT:
                return _already_bought(request, form, plan, outcome)
            case Outcome.PAY:
                _remember_order(request, outcome.order)
                return _hand_to_pay_page(outcome.order, outcome.payment_intent)
            case Outcome.SETUP_FAILED:
                _remember_order(request, outcome.order)
                setup_failed = True
    suggestion = getattr(form, "suggestion", None)
    # Only an address the form accepted is looked up (what was typed may be anything, NUL bytes included).
    shown_email = (getattr(form, "cleaned_data", {}).get("email") if form.is_bound else form["email"].value()) or ""
    return render(request, "billing/checkout.html", {
        "plan": plan, "form": form, "setup_failed": setup_failed, "suggestion": suggestion,
        "renewal": _renewal(request, shown_email, plan) if shown_email else None,
    })


def _checkout_retry_after(request, email) -> int | None:
    """Seconds until this client may check out again for `email`, or None. Counted per client and
    per client and address together, never per address alone (anyone can type an address); a
    customer who proved the address is never held back."""
    email = normalize_email(email)
    if _address_proved(request, email):
        return None
    retry = (retry_after(request, group="checkout:client", rate=CHECKOUT_RATE_PER_CLIENT)
             or retry_after(request, group="checkout:client-email", rate=CHECKOUT_RATE_PER_CLIENT_AND_EMAIL,
                            value=email, per_client=True))
    if retry:
        logger.warning("Checkout rate limited for %s from %s", email, client_ip(request))
    return retry


def _already_yours_email_over_limit(request, email) -> bool:
    return over_limit(request, group="already-yours:email", rate=ALREADY_YOURS_RATE_PER_EMAIL,
                      value=normalize_email(email))


def _offer_more_time(request, form, plan, earlier):
    """The customer's plan still runs: before any card form, say what one more payment buys."""
    return render(request, "billing/more_time.html", {
        "plan": plan, "form": form, "order": earlier, "renewal": _renewal(request, earlier.email, plan)})


def _already_bought(request, form, plan, outcome):
    """This address already has the plan (or a payment for it in progress): say so instead of
    offering a second card form. A stranger typing someone's address learns only that we have
    emailed that address; the order's own link goes to its owner's inbox, or to its own browser."""
    earlier, own = outcome.order, outcome.own
    emailed = False
    # Counted here, only when a notice would go: the owner's own checkouts use up none of it.
    if not own and not _already_yours_email_over_limit(request, earlier.email):
        emailed = services.order_already_yours_send(order=earlier)
    return render(request, "billing/already_bought.html", {
        "plan": plan, "form": form, "own": own, "order": earlier, "emailed": emailed,
        "status": order_customer_status(earlier, proved=outcome.proved) if own else None,
        "status_url": reverse("billing:status", kwargs={"token": order_status_token(earlier)}) if own else None,
    })


# Checkout has just made (or read) the order's PaymentIntent and redirects to the pay page, which
# would ask Stripe for it again a moment later. It hands the page what it has instead, once, in a
# short-lived signed cookie on the customer's own browser (never in our database): as fresh as the
# page's own read would be, since the page is the one place that shows the client secret a payment
# needs. A reload, another tab or a later visit asks Stripe as before.
HANDED_PAYMENT_COOKIE = "backstop_handed_payment"
HANDED_PAYMENT_SECONDS = 60


def _hand_to_pay_page(order, payment_intent):
    token = order_status_token(order)
    response = redirect("billing:pay", token=token)
    response.set_signed_cookie(
        HANDED_PAYMENT_COOKIE, f"{order.public_id.hex}:{payment_intent.status}:{payment_intent.client_secret}",
        salt=HANDED_PAYMENT_COOKIE, max_age=HANDED_PAYMENT_SECONDS,
        path=reverse("billing:pay", kwargs={"token": token}),
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")
    return response


def _handed_to_pay_page(request, order):
    """What checkout read of this order's PaymentIntent a moment ago, or None (see above)."""
    handed = request.get_signed_cookie(HANDED_PAYMENT_COOKIE, default="", salt=HANDED_PAYMENT_COOKIE,
                                       max_age=HANDED_PAYMENT_SECONDS)
    order_hex, _, rest = handed.partition(":")
    status, _, client_secret = rest.partition(":")
    if order_hex != order.public_id.hex or not client_secret:
        return None
    return SimpleNamespace(status=status, client_secret=client_secret)


@never_cache  # the payment's client secret and the customer's email address
def pay(request, token):
    response = _pay_page(request, token)
    if HANDED_PAYMENT_COOKIE in request.COOKIES:  # used once
        response.delete_cookie(HANDED_PAYMENT_COOKIE, path=request.path, samesite="Lax")
    return response


def _pay_page(request, token):
    order = order_from_status_token(token)
    if order is None:
        raise Http404("No such order")
    status_url = reverse("billing:status", kwargs={"token": token})
    if order.state not in PAYABLE_STATES:
        return redirect(status_url)
    try:
        payment_intent = _handed_to_pay_page(request, order) or services.order_prepare_payment(order=order)
    except PaymentSetupFailed:
        # With a PaymentIntent already made, the customer may have paid on an earlier visit: then
        # "not charged" would be a guess, and we never guess about money.
        return render(request, "billing/pay_unavailable.html", {
            "order": order, "status_url": status_url, "maybe_paid": bool(order.stripe_payment_intent_id),
        }, status=503)
    if payment_intent.status in ("succeeded", "processing", "canceled"):
        return redirect(status_url)
    return render(request, "billing/pay.html", {
        "order": order,
        "client_secret": payment_intent.client_secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "status_url": status_url,
        "return_url": request.build_absolute_uri(status_url),
        "status_api_url": reverse("billing:status-api", kwargs={"token": token}),
        "renewal": _renewal(request, order.email, order.plan, paying=order),
    })


def _settle_if_behind(order, *, reason, stripe_said: str = ""):
    """The customer is looking: if Stripe may know more than we do, ask before we speak.

    Returns the order and whether what it says is Stripe's word as of a moment ago. Stripe is
    asked at most once per SETTLE_THROTTLE_SECONDS per order; a request inside that window uses
    the answer the previous one stored, and if that one has not finished (or died on the way,
    a killed worker), the page says "checking" rather than guess.

    `stripe_said`: the `redirect_status` a customer returning from the payment step brings. An answer
    stored a moment ago that is behind it (a declined card's, when the next card went through) was
    read before this payment: Stripe is asked again, whatever the window.
    """
    if not order_needs_settle(order):
        return order, True
    if not services.settle_turn_take(order_id=order.id):
        # Another path answered a moment ago, or is asking Stripe about this order now: its answer, if quick.
        if not (services.settle_answered(order_id=order.id)
                or services.settle_answer_wait(order_id=order.id, seconds=WAIT_FOR_OTHER_SETTLE)):
            return order, False
        stored = order_for_page(order.id)
        if not _behind_the_customer(stored, stripe_said):
            return stored, True
    try:
        order = services.order_settle(order_id=order.id, actor="customer", reason=reason, order=order)
    except stripe_api.StripeError as exc:
        # Stripe unreachable: show what we know; the page keeps polling and the sweep follows up.
        logger.warning("Settle from the status page failed for %s: %s", order.reference, exc)
        mirrored = payment_intent_from_mirror(order.stripe_payment_intent_id)
        if mirrored is not None and mirrored.status == "succeeded":
            # We know we have their money and cannot finish now: say so, to them and to the team.
            held = services.order_hold_money(order_id=order.id, actor="customer",
                                             reason=f"Payment received; Stripe unreachable while finishing: {exc}")
            return held, True
        return order, False
    services.settle_answered_mark(order_id=order.id)
    return order, True


def _behind_the_customer(order, stripe_said: str) -> bool:
    """Stripe told the returning customer the payment went through (or is on its way), and the
    order, as another path settled it a moment ago, says nothing was taken."""
    if stripe_said == "succeeded":
        return order.state in (OrderState.PENDING, OrderState.FAILED, OrderState.PROCESSING)
    if stripe_said == "processing":
        return order.state in (OrderState.PENDING, OrderState.FAILED)
    return False


@never_cache  # the status token and the customer's email address
def status(request, token):
    order = order_from_status_token(token)
    if order is None:
        raise Http404("No such order")
    returned = "payment_intent" in request.GET or "redirect_status" in request.GET
    if over_limit(request, group="status:client", rate=STATUS_RATE_PER_CLIENT):
        # Too many status requests from here: say what we know, and ask Stripe for nobody.
        checked = not order_needs_settle(order)
    else:
        order, checked = _settle_if_behind(
            order, reason="customer returned from payment" if returned else "customer opened the status page",
            stripe_said=request.GET.get("redirect_status", "") if returned else "")
    own_account = _owns_account(request, order.user)
    proved = own_account or _address_proved(request, order.email)
    one_click = _is_own_order(request, order) and not request.user.is_authenticated and (
        order.state != OrderState.ACTIVE or own_account)
    return render(request, "billing/status.html", {
        "order": order,
        "status": order_customer_status(order, checked=checked, proved=proved),
        "status_api_url": reverse("billing:status-api", kwargs={"token": token}),
        "pay_url": reverse("billing:pay", kwargs={"token": token}),
        "refund_url": reverse("billing:refund-now", kwargs={"token": token}),
        "signin_url": reverse("billing:status-signin", kwargs={"token": token}),
        "own_order": _is_own_order(request, order),
        # The browser that paid may go in with one click only to the account this order created.
        "one_click": one_click,
        "added_to_account": order.state == OrderState.ACTIVE and not proved,
        # Whether a password is set says something about the account: only to whom proved the address.
        "has_password": proved and order.user is not None and order.user.has_usable_password(),
    })


@require_http_methods(["POST"])
def status_signin(request, token):
    """Sign the buyer in from the thank-you page: only in the browser that bought it, and only to
    an account this very order created (no password, no other payment, not staff:
    selectors.account_made_by_orders). Any other account is reached with the emailed link or its
    password, whoever typed its address at checkout. The session is marked as entered by one click,
    which proves nothing about the address (accounts.proof). A second year bought in the same
    browser keeps the account its own (every payment on it is this browser's)."""
    order = order_from_status_token(token)
    if order is None:
        raise Http404("No such order")
    if order.state == OrderState.ACTIVE and _is_own_order(request, order) and _owns_account(request, order.user):
        login(request, order.user, backend="django.contrib.auth.backends.ModelBackend")
        one_click_mark(request, order.public_id.hex)
        return redirect("accounts:home")
    return redirect("billing:status", token=token)


@require_http_methods(["POST"])
def refund_now(request, token):
    """The customer whose money we hold without service takes it back now instead of waiting."""
    order = order_from_status_token(token)
    if order is None:
        raise Http404("No such order")
    if order_customer_status(order, checked=True).refund_offer:
        try:
            services.order_refund(order_id=order.id, actor="customer", reason=(
                "You asked for your money back while we were still setting up your account, so we "
                "refunded you in full."))
        except (BillingError, stripe_api.StripeError) as exc:
            # The order says refund_pending and the sweep retries it; the status page says so.
            logger.warning("Customer refund for %s not confirmed yet: %s", order.reference, exc)
    return redirect("billing:status", token=token)


@never_cache
@require_http_methods(["GET", "POST"])
def lookup(request):
    form = OrderLookupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = normalize_email(form.cleaned_data["email"])
        if _address_proved(request, email):
            # Its owner, proved (signed in, a Renew or sign-in link): never held back by others'
            # requests, and may be told plainly when nothing went (the address is theirs).
            if services.order_status_links_send(email=email, card_last4=form.cleaned_data["last4"]):
                return render(request, "billing/lookup_sent.html", {"last4": form.cleaned_data["last4"]})
            return render(request, "billing/lookup.html", {"form": form, "capped": "proved"})
        # Counted per client first, so a client held back uses up nothing of the address's own count.
        client_retry = (retry_after(request, group="lookup:client", rate=LOOKUP_RATE_PER_CLIENT)
                        or retry_after(request, group="lookup:client-email", rate=LOOKUP_RATE_PER_CLIENT_AND_EMAIL,
                                       value=email, per_client=True))
        address_retry = None if client_retry else retry_after(request, group="lookup:email",
                                                               rate=LOOKUP_RATE_PER_EMAIL, value=email)
        if client_retry or address_retry:
            # Nothing sent, and the page says so. Both counts are of requests, whatever the address
            # has, so this answer says nothing about who has bought.
            logger.warning("Order lookup rate limited for %s from %s", email, client_ip(request))
            return render(request, "billing/lookup.html", {
                "form": form, "capped": "address" if address_retry else "client",
                "try_again": try_again_words(client_retry or address_retry)}, status=429)
        # One email at most, and only the request limits above hold it back: the page below is true
        # (its words allow an address with no orders, which gets none).
        services.order_status_links_send(email=email, card_last4=form.cleaned_data["last4"])
        # Same answer whether or not the address has orders, so the page reveals nothing about who has bought.
        return render(request, "billing/lookup_sent.html", {"last4": form.cleaned_data["last4"]})
    return render(request, "billing/lookup.html", {"form": form})


class OrderStatusAPI(APIView):
    """What the status page polls: the customer-facing status, never internal details."""

    authentication_classes = []
    permission_classes = []

    def get(self, request, token):
        if over_limit(request, group="status:client", rate=STATUS_RATE_PER_CLIENT):
            # status.js keeps what it showed, says "Reconnecting…" and asks again on its rhythm.
            return Response({"detail": "Too many requests; this page will update by itself."}, status=429,
                            headers={"Retry-After": "10", "Cache-Control": "no-store"})
        order = order_from_status_token(token)
        if order is None:
            return Response({"detail": "Not found."}, status=404)
        order, checked = _settle_if_behind(order, reason="status page")
        # Django's request: this API authenticates nobody itself, but the page's session may have proved the address.
        page_request = request._request
        proved = _owns_account(page_request, order.user) or _address_proved(page_request, order.email)
        body = order_customer_status(order, checked=checked, proved=proved).as_dict()
        body["reference"] = order.reference
        return Response(body, headers={"Cache-Control": "no-store"})


def _receipt_or_404(request, token):
    order = order_from_status_token(token)
    document = (selectors.order_receipt(order, proved=_may_see_account(request, order.email))
                if order is not None else None)
    if document is None:
        raise Http404("No payment to give a receipt for")
    return document


@never_cache  # the customer's name, company and email address
def receipt(request, token):
    return render(request, "billing/receipt.html", {
        "receipt": _receipt_or_404(request, token),
        "pdf_url": reverse("billing:receipt-pdf", kwargs={"token": token}),
    })


@never_cache
def receipt_pdf(request, token):
    document = _receipt_or_404(request, token)
    response = HttpResponse(receipts.receipt_pdf(document), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="receipt-{document.reference}.pdf"'
    return response
