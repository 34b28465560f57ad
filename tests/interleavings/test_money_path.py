"""Every actor of the money path, interleaved at random (hypothesis' RuleBasedStateMachine).

The rules are the actors: customers checking out, paying (or being declined), reloading their
status page, buying another year and pressing Refund me now, leaving the bank's 3-D Secure check
(or finishing or failing it later); Stripe's webhooks delivered, duplicated, lost or reordered; the
sweep; support's Recover, Refund, Extend, Cancel payment attempt and Accept (of an amount Stripe
took differently); an hour passing; the held-money deadline passing; the year's-end reminders; a
database restore to an earlier snapshot; the product behind the shop going down and coming back
while access webhooks are delivered to it; a stranger in a second browser checking out with a
customer's address (with and without a hand-added `buy_again=1`), paying, pressing "Go to your
account" and trying the account and password pages. After every step the invariants that must
hold at every moment are checked, and at the end of each example the nets are run to rest and the
promises are checked: every succeeded Backstop charge has
exactly one order that ends active or refunded, nothing is charged, refunded or emailed twice,
every access change reaches the product at least once, in order per customer, and no payment
attempt is left unfinished in Stripe (the sweep canceled it). At every moment, no unpaid order is
called paid, "processing" or left without a way to pay; no session is signed in to an account it
did not prove (the stranger's only way in is the one click to an account its own order made, with
nothing of anyone else's on it); no customer account has a password nobody proved the address for;
an accepted order was granted once, holds no money and shows Stripe's amounts. Whenever the
stranger reads its status page or receipt, neither shows another payment's dates or the account's
company or VAT number.

Each example starts from a clean database (a savepoint rolled back at teardown) and a reset
emulator. A restore rolls the database back to a savepoint taken earlier in the example while
Stripe and the customers' inboxes keep everything, exactly as a real restore would.

`make interleavings` runs thousands (INTERLEAVINGS_EXAMPLES); CI runs a short form.
"""

import collections
import contextlib
import html
import itertools
import json
import os
import uuid
from datetime import timedelta

import pytest
import stripe
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts import webhooks as access_webhooks
from accounts.models import AccessDelivery, Entitlement
from billing import selectors as billing_selectors
from billing import services, stripe_api
from billing.email_kinds import ONCE_PER_ORDER
from billing.errors import BillingError
from billing.models import Order, OrderState
from billing.tokens import order_from_status_token, order_status_token
from config import failpoints
from outbox import services as outbox_services
from outbox.models import OutboundEmail
from support import selectors as support_selectors
from support import services as support_services
from support.models import Alert, InboundMessage, SupportReply
from tests.accounts.receiver import SECRET as PRODUCT_SECRET
from tests.accounts.receiver import Receiver
from tests.factories import PlanFactory

S = OrderState
EMAILS = ["ada@example.com", "grace@example.com"]
# The last one asks for the bank's 3-D Secure check, which the customer may finish, fail or leave.
CARDS = ["pm_card_visa", "pm_card_visa", "pm_card_mastercard", "pm_card_chargeDeclined",
         "pm_card_authenticationRequired"]
WEBHOOK_SECRET = "whsec_interleavings"
EXPECTED = (BillingError, stripe_api.StripeError, stripe.StripeError, support_services.AlreadyDone, ValueError)
# A named crash point armed to raise stands for the process dying there: its open transaction
# rolls back, nothing after it in that request or task runs, and the nets must finish the job.
CRASHED = (failpoints.FailpointError,)
ONCE = {str(kind) for kind in ONCE_PER_ORDER}
REPORT = os.environ.get("INTERLEAVINGS_REPORT", "")
# How often the rarer actors reached the states they exist for, printed with the result (pytest -s).
REACHED = collections.Counter()
# What a customer keeps on their account for receipts: a stranger's pages must never show it.
COMPANY, VAT = "Lovelace Analytics Ltd", "GB999999973"
# Orders with money on them or on its way: each one is somebody's payment on the account.
MONEY_MOVED = [S.PROCESSING, S.PAID, S.ACTIVE, S.NEEDS_REVIEW, S.DISPUTED, S.REFUND_PENDING, S.REFUNDED]


class MoneyPath(RuleBasedStateMachine):
    orders = Bundle("orders")
    stranger_orders = Bundle("stranger_orders")
    staff = None  # set per test run by the fixture
    product = None  # the product's webhook endpoint (tests/accounts/receiver.py), per test run
    examples = 0

    def __init__(self):
        super().__init__()
        type(self).examples += 1
        stripe_api_control().reset()
        cache.clear()
        mail.outbox = []
        self.clean = transaction.savepoint()
        self.snapshots: list[str] = []
        self.events_seen: set[str] = set()
        self.inbox: list[dict] = []  # Stripe events not delivered yet, oldest first
        self.client = Client()
        self.stranger = Client()  # a second browser, its own session, typing customers' addresses
        self.stranger_references: set[str] = set()
        services.stripe_webhook_endpoint_ensure(secret=WEBHOOK_SECRET, uuid=django_settings().STRIPE_WEBHOOK_UUID,
                                                url="http://testserver/stripe/webhook/", livemode=False)
        self.plan = PlanFactory()
        self.written = 0
        self.product.verified.clear()
        self.product.down = False

    def teardown(self):
        disarm()
        try:
            self.converge()
            self.check_promises()
        finally:
            transaction.savepoint_rollback(self.clean)

    # --- helpers -----------------------------------------------------------------------------

    def act(self, func, *args, **kwargs):
        """Run one actor's step as production runs it: its own transaction, then what it queued."""
        with capture_on_commit():
            try:
                return func(*args, **kwargs)
            except EXPECTED + CRASHED:
                return None
            finally:
                self.collect_events()

    def collect_events(self):
        fresh = []
        for event in stripe.Event.list(limit=100).auto_paging_iter():
            if event.id in self.events_seen:
                break
            self.events_seen.add(event.id)
            fresh.append(json.loads(str(event)))
        self.inbox.extend(reversed(fresh))

    def deliver(self, event: dict):
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
        path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": django_settings().STRIPE_WEBHOOK_UUID})
        with capture_on_commit():
            try:
                response = self.client.post(path, data=payload, content_type="application/json",
                                            HTTP_STRIPE_SIGNATURE=header)
            except CRASHED:
                self.inbox.append(event)  # the web worker died before answering: Stripe sends it again
                return
            finally:
                self.collect_events()
        assert response.status_code in (200, 503), response.content  # 503: Stripe will deliver it again

    def browse(self, browser, method, path, data=None):
        """One request of a browser, as production serves it; None if its process died."""
        with capture_on_commit():
            try:
                return getattr(browser, method)(path, data)
            except CRASHED:
                return None
            finally:
                self.collect_events()

    def sweep(self, *args, strict=False):
        """One pass as cron runs it. A pass that died at a crash point is recorded as failed by the
        command (it says so and exits non-zero); cron runs it again. With nothing armed (`strict`,
        when the nets come to rest) any failure is a bug."""
        with capture_on_commit():
            try:
                call_command("reconcile", *args, verbosity=0)
            except (*CRASHED, RuntimeError, CommandError):
                if strict or not os.environ.get(failpoints.ENV):
                    raise
            finally:
                self.collect_events()

    def converge(self):
        """What the nets do given time: every webhook arrives, the sweep runs, deadlines pass."""
        disarm()
        while self.inbox:
            self.deliver(self.inbox.pop(0))
        for _ in range(3):
            Order.objects.filter(held_since__isnull=False).update(
                refund_deadline_at=timezone.now() - timedelta(seconds=1))
            # A send interrupted after the ESP accepted it (the named window) is looked at again
            # only after EMAIL_CLAIM_TIMEOUT: let that time pass too.
            OutboundEmail.objects.filter(status=OutboundEmail.Status.SENDING).update(
                claimed_at=timezone.now() - outbox_services.EMAIL_CLAIM_TIMEOUT - timedelta(seconds=1))
            # An hour passes for every attempt left unfinished: the sweep cancels it in Stripe.
            an_hour_passes_for_unfinished_attempts()
            self.sweep(strict=True)
            while self.inbox:
                self.deliver(self.inbox.pop(0))
        # The product is back, and the access webhook dispatcher runs as often as its backoff needs.
        self.product.down = False
        for _ in range(3):
            access_webhooks.access_deliveries_dispatch_due(now=timezone.now() + timedelta(days=1))

    # --- customers ---------------------------------------------------------------------------

    @rule(target=orders, email=st.sampled_from(EMAILS), browser=st.sampled_from(["tab-a", "tab-b", ""]))
    def checkout(self, email, browser):
        def start():
            order = services.order_create(plan=self.plan, email=email, full_name="Ada Lovelace", browser_key=browser)
            services.order_prepare_payment(order=order)
            return order.reference

        return self.act(start) or ""

    @rule(reference=orders, card=st.sampled_from(CARDS))
    def pay(self, reference, card):
        order = Order.objects.filter(reference=reference).first()
        if order is None or not order.stripe_payment_intent_id:
            return
        pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
        if pi.status not in ("requires_payment_method", "requires_confirmation"):
            return
        self.act(stripe.PaymentIntent.confirm, pi.id, payment_method=card, return_url="http://testserver/return")

    @rule(target=orders, email=st.sampled_from(EMAILS))
    def buy_another_year(self, email):
        # A customer whose plan still runs pays for another year; it must start where theirs ends.
        if not Entitlement.objects.filter(user__email=email, revoked_at=None).exists():
            return ""
        return self.buy(email)

    def buy(self, email):
        """Check out, pay with a card that works, and come back to the status page (it settles)."""
        reference = self.checkout(email=email, browser="")
        order = Order.objects.filter(reference=reference).first()
        if order is None or not order.stripe_payment_intent_id:
            return reference
        self.act(stripe.PaymentIntent.confirm, order.stripe_payment_intent_id, payment_method="pm_card_visa",
                 return_url="http://testserver/return")
        self.reload_status_page(reference)
        return reference

    @initialize(target=orders, history=st.sampled_from(["", "active", "refunded"]))
    def ada_may_have_bought_before(self, history):
        # The customer whose address a stranger may type: her plan runs, or she was refunded. Her
        # account keeps a company and VAT number for her receipts.
        if not history:
            return ""
        reference = self.buy(EMAILS[0])
        get_user_model().objects.filter(email=EMAILS[0]).update(company_name=COMPANY, vat_number=VAT)
        order = Order.objects.filter(reference=reference, state=S.ACTIVE).first()
        if history == "refunded" and order is not None:
            self.act(services.order_refund, order_id=order.id, actor="customer", reason="The customer asked")
        return reference

    @rule(reference=orders)
    def reload_status_page(self, reference):
        order = Order.objects.filter(reference=reference).first()
        if order is not None:
            with capture_on_commit():
                try:
                    response = self.client.get(reverse("billing:status-api",
                                                       kwargs={"token": order_status_token(order)}))
                except CRASHED:
                    return  # the customer saw an error page and will reload
                finally:
                    self.collect_events()
            assert response.status_code in (200, 429), response.status_code

    @rule(reference=orders)
    def refund_me_now(self, reference):
        order = Order.objects.filter(reference=reference).first()
        if order is not None:
            with capture_on_commit():
                try:
                    response = self.client.post(reverse("billing:refund-now",
                                                        kwargs={"token": order_status_token(order)}))
                except CRASHED:
                    return
                finally:
                    self.collect_events()
            assert response.status_code in (302, 404), response.status_code

    # --- Stripe's webhooks -----------------------------------------------------------------------

    @precondition(lambda self: self.inbox)
    @rule()
    def webhook_delivered(self):
        self.deliver(self.inbox.pop(0))

    @precondition(lambda self: self.inbox)
    @rule()
    def webhook_duplicated(self):
        self.deliver(self.inbox[0])

    @precondition(lambda self: self.inbox)
    @rule()
    def webhook_lost(self):
        self.inbox.pop(0)

    @precondition(lambda self: len(self.inbox) > 1)
    @rule()
    def webhooks_reordered(self):
        self.deliver(self.inbox.pop())

    # --- the nets, support, time -----------------------------------------------------------------

    @rule()
    def the_sweep_runs(self):
        self.sweep()

    @rule(reference=orders)
    def support_recovers(self, reference):
        order = Order.objects.filter(reference=reference).first()
        if order is not None:
            self.act(support_services.order_recover, order_id=order.id, user=self.staff)

    @rule(reference=orders, finished=st.booleans())
    def the_customer_answers_the_bank_check(self, reference, finished):
        order = Order.objects.filter(reference=reference).first()
        if order is None or not order.stripe_payment_intent_id:
            return
        pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
        if pi.status == "requires_action":
            answer = stripe_api_control().complete_3ds if finished else stripe_api_control().fail_3ds
            self.act(answer, pi.id, pi.client_secret)

    @rule()
    def an_hour_passes_for_unfinished_attempts(self):
        an_hour_passes_for_unfinished_attempts()

    @rule(reference=orders)
    def support_cancels_the_payment_attempt(self, reference):
        order = Order.objects.filter(reference=reference).first()
        if order is not None:
            self.act(support_services.order_payment_attempt_cancel, order_id=order.id, user=self.staff)

    @rule(target=orders, email=st.sampled_from(EMAILS))
    def stripe_takes_another_amount(self, email):
        # The amount was changed in Stripe's dashboard before the customer paid: $248 for $249.
        reference = self.checkout(email=email, browser="")
        order = Order.objects.filter(reference=reference).first()
        if order is not None and order.stripe_payment_intent_id:
            pi = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
            if pi.status in ("requires_payment_method", "requires_confirmation"):
                self.act(stripe.PaymentIntent.modify, pi.id, amount=order.amount_cents - 100)
                self.pay(reference, "pm_card_visa")
                self.reload_status_page(reference)
        return reference

    @precondition(lambda self: Order.objects.filter(state=S.NEEDS_REVIEW).exists())
    @rule(twice=st.booleans())
    def support_accepts_what_stripe_took(self, twice):
        order = Order.objects.filter(state=S.NEEDS_REVIEW).order_by("id").first()
        if order is None:
            return
        key, seen = uuid.uuid4(), support_selectors.order_case_version(order.id)
        REACHED.update([f"support pressed Accept on an order held {order.attention_reason[:40]!r}"])
        for _ in range(2 if twice else 1):  # a double click sends the same form twice
            self.act(support_services.order_accept_by_support, order_id=order.id, user=self.staff, key=key,
                     reason="A discount we gave by phone", seen=seen)

    @rule(reference=orders, partial=st.booleans(), twice=st.booleans())
    def support_refunds(self, reference, partial, twice):
        order = Order.objects.filter(reference=reference).first()
        if order is None or order.state not in (S.PAID, S.ACTIVE, S.NEEDS_REVIEW):
            return
        key, seen = uuid.uuid4(), support_selectors.order_case_version(order.id)
        amount = 1000 if partial else None
        for _ in range(2 if twice else 1):  # a double click sends the same form twice
            self.act(support_services.order_refund_by_support, order_id=order.id, user=self.staff, key=key,
                     reason="The customer asked", amount_cents=amount, seen=seen)

    @rule(reference=orders, colleagues=st.sampled_from([1, 2]))
    def support_extends(self, reference, colleagues):
        # With two: both colleagues loaded the case at the same moment and each pressed Extend.
        order = Order.objects.filter(reference=reference).first()
        if order is not None:
            seen = support_selectors.order_case_version(order.id)
            for _ in range(colleagues):
                self.act(support_services.entitlement_extend, order_id=order.id, user=self.staff, days=30,
                         reason="Goodwill after an outage", key=uuid.uuid4(), seen=seen)

    @rule(email=st.sampled_from(EMAILS), verified=st.booleans())
    def customer_writes_to_support(self, email, verified):
        self.written += 1
        self.act(support_services.inbound_message_receive, message_id=f"pm-{self.written}", from_email=email,
                 from_name="Ada Lovelace", subject="Where is my account?", text="I paid but cannot sign in.",
                 sender_authenticated=verified, rfc_message_id=f"<m{self.written}@mail.example.com>")

    @rule(colleagues=st.sampled_from([1, 2]))
    def support_sends_the_reply(self, colleagues):
        message = InboundMessage.objects.filter(status=InboundMessage.Status.OPEN).order_by("?").first()
        if message is None:
            return
        seen = support_selectors.inbound_case_version(message)
        for _ in range(colleagues):  # two people answering the same email from pages loaded together
            self.act(support_services.inbound_message_reply_send, message_id=message.id, user=self.staff,
                     key=uuid.uuid4(), subject=message.draft_subject or "Re: your email",
                     body=message.draft_body or "Hello", seen=seen)

    @rule()
    def held_money_deadline_passes(self):
        Order.objects.filter(held_since__isnull=False).update(refund_deadline_at=timezone.now() - timedelta(seconds=1))
        self.sweep()

    @rule(email=st.sampled_from(EMAILS), days_left=st.sampled_from([29, 6, 0]))
    def the_year_nearly_ends(self, email, days_left):
        # Time passes for one customer: their paid time moves so that `days_left` remain, end to end.
        entitlements = list(Entitlement.objects.filter(user__email=email, revoked_at=None).order_by("ends_at"))
        if not entitlements:
            return
        shift = entitlements[-1].ends_at - (timezone.now() + timedelta(days=days_left, hours=1))
        for entitlement in entitlements:
            entitlement.starts_at -= shift
            entitlement.ends_at -= shift
            entitlement.save(update_fields=["starts_at", "ends_at"])
        with capture_on_commit(), contextlib.suppress(CRASHED):  # the next hourly run picks it up
            call_command("renewal_reminders", verbosity=0)

    @rule(point=st.sampled_from(failpoints.POINTS))
    def a_process_will_crash_at(self, point):
        # The next time any actor reaches `point`, its process dies there (once).
        os.environ[failpoints.ALLOW_ENV] = "1"
        os.environ[failpoints.ENV] = f"{point}=1*raise"
        failpoints.reset()

    # --- a stranger, in a second browser, with a customer's address ----------------------------

    @rule(targets=(orders, stranger_orders), email=st.sampled_from(EMAILS), buy_again=st.booleans(),
          pays=st.booleans())
    def a_stranger_checks_out_with_a_customers_address(self, email, buy_again, pays):
        form = {"email": email, "full_name": "A Stranger", "nonce": str(uuid.uuid4()), "email_confirmed": "1"}
        if buy_again:
            form["buy_again"] = "1"  # added to the form by hand
        response = self.browse(self.stranger, "post", reverse("billing:checkout"), form)
        if response is None or response.status_code != 302:
            return ""  # "this address already has the plan", or held back: no card form
        order = order_from_status_token(resolve(response.url).kwargs["token"])
        REACHED.update([f"the stranger got a card form (buy_again={buy_again})"])
        self.stranger_references.add(order.reference)
        if pays:  # and on the thank-you page, "Go to your account"
            self.pay(order.reference, "pm_card_visa")
            self.the_stranger_reads(order.reference, "billing:status")
            self.the_stranger_presses_go_to_your_account(order.reference)
        return order.reference

    @rule(reference=stranger_orders)
    def the_stranger_presses_go_to_your_account(self, reference):
        order = Order.objects.filter(reference=reference).first()
        if order is None:
            return
        response = self.browse(self.stranger, "post", reverse("billing:status-signin",
                                                              kwargs={"token": order_status_token(order)}))
        if response is not None and response.url == reverse("accounts:home"):
            # Signed in by the one click, this moment: to an account the stranger may be in.
            user = get_user_model().objects.get(pk=self.stranger.session["_auth_user_id"])
            assert self.the_stranger_may_be_in(user), f"one click signed the stranger in as {user.email}"
        self.browse(self.stranger, "get", reverse("accounts:home"))

    @rule()
    def the_stranger_tries_to_set_a_password(self):
        self.browse(self.stranger, "get", reverse("accounts:password_change"))
        password = "a stranger's pass phrase 42"
        self.browse(self.stranger, "post", reverse("accounts:password_change"),
                    {"old_password": "", "new_password1": password, "new_password2": password})

    @rule(reference=stranger_orders, page=st.sampled_from(["billing:status", "billing:receipt"]))
    def the_stranger_reads(self, reference, page):
        order = Order.objects.filter(reference=reference).first()
        if order is None:
            return
        response = self.browse(self.stranger, "get", reverse(page, kwargs={"token": order_status_token(order)}))
        if response is None or response.status_code != 200:
            return
        order.refresh_from_db()  # as the page showed it (reading it may have settled it)
        text = html.unescape(response.content.decode())
        REACHED.update([f"the stranger read {page} of a {order.state} order, account made by others: "
                            f"{order.user_id is not None and not self.the_stranger_may_be_in(order.user)}"])
        for secret in self.not_for_the_stranger(order):
            assert secret not in text, f"{page} of {reference} shows the stranger {secret!r}"

    def not_for_the_stranger(self, order) -> set[str]:
        """The account's company and VAT number, and the end of every payment on it that is not
        the stranger's (today's date and the order's own payment day excepted: those are its own)."""
        secrets = {COMPANY, VAT}
        if order.user_id is not None:
            others = Entitlement.objects.filter(user_id=order.user_id, revoked_at=None).exclude(
                order__reference__in=self.stranger_references)
            secrets |= {billing_selectors.customer_day(e.ends_at) for e in others}
        own = {billing_selectors.customer_day(moment) for moment in (timezone.now(), order.paid_at) if moment}
        return secrets - own

    def the_stranger_may_be_in(self, user) -> bool:
        """A browser that proved nothing may be signed in only to an account one of its own orders
        made, with no password and no payment or time on it that is anyone else's."""
        if user.is_staff or user.has_usable_password():
            return False
        mine = self.stranger_references
        payments = Order.objects.filter(Q(email=user.email) | Q(user_id=user.id)).filter(
            Q(paid_at__isnull=False) | Q(state__in=MONEY_MOVED))
        if not payments.exists() or payments.exclude(reference__in=mine).exists():
            return False
        if Entitlement.objects.filter(user_id=user.id).exclude(order__reference__in=mine).exists():
            return False
        return Order.objects.filter(reference__in=mine, email=user.email, created_at__lte=user.date_joined).exists()

    # --- the product behind the shop ------------------------------------------------------------

    @initialize(down=st.booleans())
    def the_product_starts_up_or_down(self, down):
        # Down from the start in half the examples, so a customer's changes pile up to be sent in order.
        self.product.down = down

    @rule(down=st.booleans())
    def the_product_goes_down_or_comes_back(self, down):
        self.product.down = down

    @rule()
    def the_access_webhook_dispatcher_runs(self):
        # Later than any backoff: whatever is pending is due.
        self.act(access_webhooks.access_deliveries_dispatch_due, now=timezone.now() + timedelta(hours=2))

    @rule()
    def snapshot_taken(self):
        self.snapshots.append(transaction.savepoint())

    @precondition(lambda self: self.snapshots)
    @rule()
    def database_restored_to_the_last_snapshot(self):
        # Stripe, the webhooks in flight and the customers' inboxes keep what happened since.
        transaction.savepoint_rollback(self.snapshots.pop())
        self.sweep("--since", "all")

    # --- what holds at every moment ----------------------------------------------------------------

    @invariant()
    def an_order_has_at_most_one_entitlement_and_one_of_each_once_email(self):
        assert not Entitlement.objects.values("order").annotate(n=Count("id")).filter(n__gt=1).exists()
        owed = (OutboundEmail.objects.filter(kind__in=ONCE).values("about_type", "about_id", "kind")
                .annotate(n=Count("id")))
        assert not owed.filter(n__gt=1).exists()

    @invariant()
    def an_active_order_has_its_entitlement_and_its_confirmation(self):
        for order in Order.objects.filter(state=S.ACTIVE):
            assert Entitlement.objects.filter(order=order, revoked_at=None).count() == 1, order.reference
            assert order.emails.filter(kind="confirmation").count() == 1, order.reference

    @invariant()
    def no_unpaid_order_is_called_paid_or_left_without_a_way_on(self):
        for order in Order.objects.filter(state__in=[S.PENDING, S.FAILED]):
            status = billing_selectors.order_customer_status(order)
            assert not status.charged, (order.reference, status)
            assert status.pay_label, (order.reference, status)
        assert not Order.objects.filter(state=S.PROCESSING, payment_status__in=services.UNFINISHED_PAYMENT).exists()

    @invariant()
    def a_customers_paid_periods_never_overlap(self):
        for user_id in Entitlement.objects.filter(revoked_at=None).values_list("user", flat=True).distinct():
            periods = list(Entitlement.objects.filter(user_id=user_id, revoked_at=None).order_by("starts_at")
                           .values_list("starts_at", "ends_at"))
            for (_, end), (start, _) in itertools.pairwise(periods):
                assert start >= end - timedelta(seconds=1), periods

    @invariant()
    def nobody_is_emailed_the_same_once_per_order_email_twice(self):
        sent = [(m.metadata.get("order_reference"), m.tags[0]) for m in mail.outbox
                if getattr(m, "tags", None) and m.tags[0] in ONCE]
        assert len(sent) == len(set(sent)), sent

    @invariant()
    def a_support_email_gets_one_reply_however_many_press_send(self):
        assert not SupportReply.objects.values("message").annotate(n=Count("id")).filter(n__gt=1).exists()
        assert not InboundMessage.objects.filter(status=InboundMessage.Status.OPEN, replies__isnull=False).exists()

    @invariant()
    def nobody_is_signed_in_to_an_account_they_did_not_prove(self):
        if "_auth_user_id" not in self.stranger.session:
            return
        # Signed in is what the next request is served as (a one-click session ends there once
        # someone else's payment lands on the account).
        response = self.browse(self.stranger, "get", reverse("accounts:home"))
        if response is not None and response.status_code == 200:
            user = response.wsgi_request.user
            REACHED.update(["the stranger is signed in to an account its own order made"])
            assert self.the_stranger_may_be_in(user), f"the stranger is signed in as {user.email}"

    @invariant()
    def no_customer_has_a_password_nobody_proved_the_address_for(self):
        # Nobody in this machine opens a link or knows a password: no first password may be set.
        customers = get_user_model().objects.filter(is_staff=False)
        assert not [user.email for user in customers if user.has_usable_password()]

    @invariant()
    def an_accepted_order_is_granted_once_holds_no_money_and_shows_stripes_amounts(self):
        accepts = Order.objects.filter(events__from_state=S.NEEDS_REVIEW, events__to_state=S.PAID)
        assert not accepts.values("id").annotate(n=Count("id")).filter(n__gt=1).exists()
        assert not Order.objects.filter(state=S.ACTIVE, held_since__isnull=False).exists()
        for order in Order.objects.filter(state__in=[S.PAID, S.ACTIVE], amount_received_cents__isnull=False):
            assert (order.amount_cents, order.currency) == (order.amount_received_cents, order.received_currency), \
                order.reference

    @invariant()
    def nothing_is_refunded_beyond_what_was_taken(self):
        for order in Order.objects.filter(amount_received_cents__isnull=False):
            refunded = order.refunds.aggregate(total=Sum("amount_cents"))["total"] or 0
            assert refunded <= order.amount_received_cents, order.reference
            assert order.amount_refunded_cents <= order.amount_received_cents, order.reference

    # --- what is promised once the nets have run ----------------------------------------------------

    def check_promises(self):
        by_reference: dict[str, list] = {}
        for pi in stripe.PaymentIntent.list(limit=100).auto_paging_iter():
            reference = (pi.metadata or {}).get("reference")
            if pi.status == "succeeded" and reference:
                by_reference.setdefault(reference, []).append(pi)
        for reference, intents in by_reference.items():
            assert len(intents) == 1, f"{reference} charged {len(intents)} times"
            orders = list(Order.objects.filter(reference=reference))
            assert len(orders) == 1, f"{reference}: {len(orders)} orders for one charge"
            order = orders[0]
            assert order.state in (S.ACTIVE, S.REFUNDED), f"{reference} ended {order.state}"
            if order.state == S.ACTIVE:
                assert order.amount_cents == intents[0].amount_received, f"{reference}: not Stripe's amount"
            if order.state == S.ACTIVE:
                confirmation = order.emails.get(kind="confirmation")
                received = [m for m in mail.outbox if getattr(m, "metadata", {}).get("order_reference") == reference
                            and getattr(m, "tags", None) and m.tags[0] == "confirmation"]
                assert len(received) == 1, f"{reference}: the customer got {len(received)} confirmations"
                if confirmation.status != OutboundEmail.Status.SENT:
                    # The one window: the ESP accepted it and we died before recording it. Never
                    # sent again; a person is told (decision 0003).
                    assert confirmation.status == OutboundEmail.Status.UNCERTAIN, f"{reference}: {confirmation.status}"
                    assert Alert.objects.filter(email=confirmation, resolved_at=None).exists(), reference
            assert order.events.filter(to_state=order.state).exists(), f"{reference}: no event explains {order.state}"
        for order in Order.objects.filter(state__in=[S.PENDING, S.FAILED, S.PROCESSING],
                                          stripe_payment_intent_id__isnull=False):
            status = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).status
            assert status not in services.UNFINISHED_PAYMENT, f"{order.reference}: left {status} after the nets ran"
        charged = {ref for ref, intents in by_reference.items()}
        assert not Order.objects.filter(state__in=[S.ACTIVE, S.PAID]).exclude(reference__in=charged).exists()
        self.check_access_reached_the_product()

    def check_access_reached_the_product(self):
        """Every access change is a delivery row (written with the change), every row was taken by
        the product, and each customer's were first taken in the order they happened."""
        rows = list(AccessDelivery.objects.order_by("id"))
        assert [r.event_id for r in rows if r.status != AccessDelivery.Status.DELIVERED] == []
        first_seen = self.product.first_seen()
        for user_id in {r.user_id for r in rows}:
            theirs = [r.event_id for r in rows if r.user_id == user_id]
            assert [event_id for event_id in first_seen if event_id in theirs] == theirs, user_id
            granted = sum(r.event_type == "access.granted" for r in rows if r.user_id == user_id)
            revoked = sum(r.event_type == "access.revoked" for r in rows if r.user_id == user_id)
            assert granted == Entitlement.objects.filter(user_id=user_id).count(), user_id
            assert revoked == Entitlement.objects.filter(user_id=user_id, revoked_at__isnull=False).count(), user_id
        assert self.product.refused == []


# --- plumbing ------------------------------------------------------------------------------------

_emulator = {}


def stripe_api_control():
    return _emulator["control"]


def django_settings():
    from django.conf import settings as django_settings

    return django_settings


def an_hour_passes_for_unfinished_attempts():
    """ABANDONED_PAYMENT_AFTER passes for every payment attempt settle saw unfinished, and for those
    it never read (timed from the order's creation until it does; Stripe's creation time after)."""
    long_ago = timezone.now() - django_settings().ABANDONED_PAYMENT_AFTER - timedelta(seconds=1)
    Order.objects.filter(payment_status__in=services.UNFINISHED_PAYMENT).update(payment_status_at=long_ago)
    Order.objects.filter(payment_status="", stripe_payment_intent_id__isnull=False).update(created_at=long_ago)


def disarm():
    os.environ.pop(failpoints.ENV, None)
    failpoints.reset()


def capture_on_commit():
    return _emulator["capture"](execute=True)


def _profile() -> settings:
    """The suite's short form is the same 8 examples every run (CI must not fail at random);
    `make interleavings` sets INTERLEAVINGS_EXAMPLES and explores new ones each time."""
    examples = os.environ.get("INTERLEAVINGS_EXAMPLES")
    return settings(max_examples=int(examples or "8"), derandomize=examples is None,
                    stateful_step_count=int(os.environ.get("INTERLEAVINGS_STEPS", "25")),
                    deadline=None, suppress_health_check=list(HealthCheck),
                    database=None if examples is None else DirectoryBasedExampleDatabase(".hypothesis/interleavings"))


@pytest.mark.django_db
def test_every_interleaving_of_the_actors_keeps_every_promise(stripe_emulator, settings,
                                                              django_capture_on_commit_callbacks):
    settings.RECONCILE_GRACE = timedelta(0)
    # The stranger's pages are rendered: their static files by name, so no collectstatic is needed first.
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    _emulator.update(control=stripe_emulator.control, capture=django_capture_on_commit_callbacks)
    MoneyPath.staff = support_services.support_staff_ensure(email="amy@backstop.localhost", password="x" * 20,
                                                            refunds=True)
    MoneyPath.examples = 0
    REACHED.clear()
    MoneyPath.product = Receiver().start()
    settings.ACCESS_WEBHOOK_URL, settings.ACCESS_WEBHOOK_SECRET = MoneyPath.product.url, PRODUCT_SECRET
    try:
        run_state_machine_as_test(MoneyPath, settings=_profile())
    except BaseException:
        _report(f"{MoneyPath.examples} examples, 1 violation")
        raise
    finally:
        MoneyPath.product.stop()
    _report(f"{MoneyPath.examples} examples, 0 violations")
    print(dict(REACHED))


def _report(line: str):
    print(line)
    if REPORT:
        with open(REPORT, "w") as handle:
            handle.write(line + "\n")
