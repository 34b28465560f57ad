"""Fire drills: real purchases, broken on purpose, timed until the customer is whole again.

Each drill buys the plan for a fresh address against the configured Stripe (the local emulator
or real Stripe in test mode), interrupts the purchase in one way, then watches the database
until the customer has an active account and exactly one confirmation email, sent. Nothing is
settled by the drill itself: whatever finishes the order is one of Backstop's nets (the webhook,
the sweep, the customer's status page), and the table says which.

- killed-after-charge: the checkout process is SIGKILLed right after Stripe charged the card,
  every webhook for the payment is lost and nobody comes back. Expected net: the sweep.
- lost-stripe-response: Stripe charges the card but the reply to the confirm is lost, so the
  client never learns it paid. Expected net: the webhook.
- webhooks-dropped: the payment succeeds, the customer closes the tab and every webhook for it
  is lost. Expected net: the sweep.
- order-row-deleted: the order row disappears after the charge, as in a restore from a backup.
  Expected net: the sweep, which recreates the order from Stripe's metadata (adoption).

Webhook faults exist only in the local emulator. Against real Stripe, `lost-stripe-response`
and `webhooks-dropped` are skipped, and `killed-after-charge` runs with webhooks delivered.

The drills leave real orders, accounts and emails behind (addresses `firedrill-…@example.com`):
run them on a demo or staging installation, never on production.
"""

import contextlib
import json
import select
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

import stripe
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.status import Stat

from accounts.models import Entitlement
from billing import services
from billing.email_kinds import Kind as EmailKind
from billing.models import Order, OrderState, Plan
from outbox.models import OutboundEmail
from stripe_emulator.testing import ControlClient, ControlError

POLL_SECONDS = 0.5
# Waiting for the child to charge: Django's start-up plus three Stripe calls.
CHILD_CHARGE_TIMEOUT = 60
# How long to wait for a django-q2 heartbeat before saying the cluster is not running.
HEARTBEAT_WAIT_SECONDS = 10
NEEDS_EMULATOR = "skipped: needs the emulator's fault API"


class NotReady(Exception):
    """The system the drills need is not running; the message says what to start."""


class DrillError(Exception):
    """The drill could not set up its failure (not a failure of the nets)."""


@dataclass
class Outcome:
    drill: str
    result: str  # ok | timeout | skipped: ... | error: ...
    expected: str
    reference: str = ""
    active_after: float | None = None
    email_after: float | None = None
    caught_by: str = ""
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.result != "ok" and not self.result.startswith("skipped")


# --- The Stripe under test ------------------------------------------------------------------


class StripeUnderTest:
    """The configured Stripe, plus the emulator's control API when it is the emulator."""

    def __init__(self):
        self.control = _emulator_control()
        # Webhook faults (pause, drop) are global in the emulator, so only one drill at a time
        # may be between "break it" and "charged"; the waiting afterwards runs in parallel.
        self.charge_lock = threading.Lock()

    @property
    def is_emulator(self) -> bool:
        return self.control is not None

    @contextlib.contextmanager
    def one_at_a_time(self, *, drop_webhooks: bool = False, hold_webhooks: bool = False):
        """Serialise a drill's charge; optionally hold its webhooks back, then drop or release them.

        Deliveries made while paused are held; `drop` then counts exactly those, so this drill's
        events are lost and nobody else's.
        """
        with self.charge_lock:
            if self.control is None or not (drop_webhooks or hold_webhooks):
                yield
                return
            self.control.pause_webhooks()
            try:
                yield
            finally:
                if drop_webhooks:
                    held = self.control.state()["webhooks"]["held"]
                    if held:
                        self.control.drop_webhooks(held)
                self.control.resume_webhooks()


def _emulator_control():
    """A control client if STRIPE_API_BASE is the local emulator, else None (real Stripe)."""
    if not settings.STRIPE_API_BASE:
        return None
    control = ControlClient(settings.STRIPE_API_BASE, timeout=10, token=settings.STRIPE_SECRET_KEY)
    try:
        control.state()
    except OSError:
        raise NotReady(f"Stripe at {settings.STRIPE_API_BASE} (STRIPE_API_BASE) does not answer: start the "
                       "emulator, or unset STRIPE_API_BASE to use real Stripe.") from None
    except (ControlError, ValueError):
        return None  # a Stripe-compatible server without the emulator's control API
    return control


def _stripe_client() -> stripe.StripeClient:
    # No retries: Stripe.js does not retry a confirm whose reply was lost, and neither do we.
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses={"api": base} if base else None,
                               max_network_retries=0)


def _checkout(plan: Plan, drill: str) -> Order:
    """What the checkout view does: the order first, then its Stripe Customer and PaymentIntent."""
    email = f"firedrill-{drill}-{uuid.uuid4().hex[:8]}@example.com"
    order = services.order_create(plan=plan, email=email, full_name="Fire Drill")
    services.order_prepare_payment(order=order)
    order.refresh_from_db()
    return order


def _pay(payment_intent_id: str):
    """Confirm at Stripe with the test Visa, as Stripe.js does when the customer clicks Pay."""
    return _stripe_client().v1.payment_intents.confirm(
        payment_intent_id,
        params={"payment_method": "pm_card_visa", "return_url": f"{settings.SITE_URL}/firedrill/return"},
    )


# --- The drills -------------------------------------------------------------------------------
# Each one charges and breaks something, and returns (reference, t0, note); t0 is the charge.


def drill_killed_after_charge(stripe_side: StripeUnderTest, plan: Plan):
    """A child process checks out and pays, then is SIGKILLed before it can settle."""
    note = "" if stripe_side.is_emulator else "webhooks delivered (real Stripe)"
    with stripe_side.one_at_a_time(drop_webhooks=True):
        reference = _run_child_until_charged(plan, "killed-after-charge")
        t0 = timezone.now()
    return reference, t0, note


def drill_lost_stripe_response(stripe_side: StripeUnderTest, plan: Plan):
    with stripe_side.one_at_a_time():
        order = _checkout(plan, "lost-stripe-response")
        pi_id = order.stripe_payment_intent_id
        stripe_side.control.lose_response_next(method="POST", path=f"/v1/payment_intents/{pi_id}/confirm")
        try:
            _pay(pi_id)
        except stripe.APIConnectionError:
            pass  # the customer's page shows a network error; they give up
        else:
            raise DrillError("the confirm's response was not lost")
        t0 = timezone.now()
    return order.reference, t0, ""


def drill_webhooks_dropped(stripe_side: StripeUnderTest, plan: Plan):
    with stripe_side.one_at_a_time(drop_webhooks=True):
        order = _checkout(plan, "webhooks-dropped")
        payment_intent = _pay(order.stripe_payment_intent_id)
        t0 = timezone.now()
        if payment_intent.status != "succeeded":
            raise DrillError(f"the payment is {payment_intent.status}, not succeeded")
        # The customer closes the tab: no return to the site, no status page.
    return order.reference, t0, ""


def drill_order_row_deleted(stripe_side: StripeUnderTest, plan: Plan):
    # Webhooks are held until the row is gone, so that no net settles the order first. Against
    # real Stripe they cannot be held; deleting right after the charge nearly always wins.
    with stripe_side.one_at_a_time(hold_webhooks=True):
        order = _checkout(plan, "order-row-deleted")
        _pay(order.stripe_payment_intent_id)
        t0 = timezone.now()
        with transaction.atomic():
            # Events, emails and alerts go with it; no entitlement exists before the settle.
            Order.objects.filter(pk=order.pk).delete()
    return order.reference, t0, ""


# name: (function, needs the emulator, the net expected to catch it)
DRILLS = {
    "killed-after-charge": (drill_killed_after_charge, False, "sweep"),
    "lost-stripe-response": (drill_lost_stripe_response, True, "webhook"),
    "webhooks-dropped": (drill_webhooks_dropped, True, "sweep"),
    "order-row-deleted": (drill_order_row_deleted, False, "sweep"),
}


# --- The child process of killed-after-charge -------------------------------------------------

CHILD_CODE = (
    "import sys, django; django.setup(); "
    "from ops.firedrill import child_checkout; child_checkout(sys.argv[1], sys.argv[2])"
)


def _run_child_until_charged(plan: Plan, drill: str) -> str:
    """Start the child, wait for "charged <reference>", SIGKILL it; return the reference.

    The child inherits this process's environment, so it uses the same database and Stripe.
    """
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", CHILD_CODE, plan.code, drill], cwd=settings.BASE_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
        )
        try:
            ready, _, _ = select.select([child.stdout], [], [], CHILD_CHARGE_TIMEOUT)
            line = child.stdout.readline() if ready else ""
        finally:
            child.kill()  # SIGKILL: no cleanup, no settle, exactly like a crash
            child.wait()
            child.stdin.close()
            child.stdout.close()
        if not line.startswith("charged "):
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
            raise DrillError("the checkout process did not charge: " + (" / ".join(tail) or "no output"))
    return line.split()[1]


def child_checkout(plan_code: str, drill: str):
    """In the child: check out and pay, say so, then wait to be killed before settling."""
    order = _checkout(Plan.objects.get(code=plan_code), drill)
    payment_intent = _pay(order.stripe_payment_intent_id)
    if payment_intent.status != "succeeded":
        sys.exit(f"payment {payment_intent.id} is {payment_intent.status}")
    print(f"charged {order.reference}", flush=True)
    # The drill SIGKILLs us here, where the customer's return would settle the order. Should
    # the drill itself die first, stdin closes and we leave without settling all the same.
    sys.stdin.read()


# --- Watching for the customer to be whole ----------------------------------------------------


def wait_until_whole(reference: str, t0: datetime, *, timeout: float) -> dict:
    """Poll until the order is active with one entitlement and one sent confirmation email.

    Returns the Outcome fields that describe what happened; on timeout, result says what was
    missing at the end.
    """
    deadline = time.monotonic() + max(0.0, timeout - (timezone.now() - t0).total_seconds())
    while True:
        seen = _customer_state(reference)
        if seen["whole"]:
            return {"result": "ok", "active_after": (seen["active_at"] - t0).total_seconds(),
                    "email_after": (seen["sent_at"] - t0).total_seconds(), "caught_by": seen["caught_by"]}
        if time.monotonic() >= deadline:
            return {"result": "timeout", "note": seen["missing"], "caught_by": seen.get("caught_by", "")}
        time.sleep(POLL_SECONDS)


def _customer_state(reference: str) -> dict:
    order = Order.objects.filter(reference=reference).first()
    if order is None:
        return {"whole": False, "missing": "no order with this reference"}
    activated = order.events.filter(to_state=OrderState.ACTIVE).order_by("created_at", "id").first()
    entitlements = Entitlement.objects.filter(order=order, revoked_at__isnull=True).count()
    emails = list(order.emails.all())
    sent = [e for e in emails if e.kind == EmailKind.CONFIRMATION and e.status == OutboundEmail.Status.SENT]
    whole = order.state == OrderState.ACTIVE and activated and entitlements == 1 and len(emails) == 1 and sent
    if whole:
        return {"whole": True, "active_at": activated.created_at, "sent_at": sent[0].sent_at,
                "caught_by": activated.actor}
    described = ", ".join(f"{e.kind} {e.status}" for e in emails) or "none"
    return {"whole": False, "caught_by": activated.actor if activated else "",
            "missing": f"order {order.state}, {entitlements} entitlement(s), emails: {described}"}


# --- Running them -----------------------------------------------------------------------------


def preflight() -> Plan:
    """Fail fast, with one line saying what to start, if the nets cannot possibly run."""
    plan = Plan.objects.filter(is_active=True).order_by("amount_cents").first()
    if plan is None:
        raise NotReady("No plan is on sale: run `python manage.py demo_setup` (or create one in the admin).")
    if not Schedule.objects.filter(func="billing.tasks.reconcile").exclude(repeats=0).exists():
        raise NotReady("The sweep is not scheduled: run `python manage.py setup_schedules`, "
                       "and keep `python manage.py qcluster` running.")
    if Conf.SYNC:
        return plan  # tasks run inline in this process (the test settings): there is no cluster to ask
    deadline = time.monotonic() + HEARTBEAT_WAIT_SECONDS
    # A running cluster writes its status to the cache every half second, with a 3-second expiry.
    while not Stat.get_all():
        if time.monotonic() > deadline:
            raise NotReady("No django-q2 cluster is running (no heartbeat for "
                           f"{HEARTBEAT_WAIT_SECONDS} s): start `python manage.py qcluster`; without it "
                           "no webhook is acted on and the sweep never runs.")
        time.sleep(POLL_SECONDS)
    return plan


def run(names, *, timeout: float, plan: Plan, stripe_side: StripeUnderTest | None = None,
        say=print) -> list[Outcome]:
    """Run the named drills at once, one thread each; return their outcomes in the given order."""
    stripe_side = stripe_side or StripeUnderTest()
    say(f"Stripe: {'the local emulator' if stripe_side.is_emulator else 'real Stripe (no fault API)'} "
        f"at {settings.STRIPE_API_BASE or 'api.stripe.com'}; timeout {timeout:g} s per drill.")
    outcomes = {}

    def one(name):
        function, needs_emulator, expected = DRILLS[name]
        try:
            if needs_emulator and not stripe_side.is_emulator:
                outcomes[name] = Outcome(name, NEEDS_EMULATOR, expected)
                return
            reference, t0, note = function(stripe_side, plan)
            say(f"{name}: charged {reference}, waiting for a net to catch it")
            seen = wait_until_whole(reference, t0, timeout=timeout)
            note = "; ".join(filter(None, [note, seen.pop("note", "")]))
            outcome = outcomes[name] = Outcome(name, expected=expected, reference=reference, note=note, **seen)
            say(f"{name}: {_result_words(outcome)}")
        except Exception as exc:  # one broken drill must not hide the others' results
            outcomes[name] = Outcome(name, f"error: {exc.__class__.__name__}: {exc}", expected)
            say(f"{name}: {outcomes[name].result}")
        finally:
            connection.close()  # this thread's own connection

    # Daemon threads, so that Ctrl-C ends the run instead of waiting out every timeout.
    threads = [threading.Thread(target=one, args=(name,), name=f"firedrill-{name}", daemon=True) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [outcomes[name] for name in names]


def _result_words(outcome: Outcome) -> str:
    if outcome.result == "ok":
        return (f"active after {outcome.active_after:.1f} s, email after {outcome.email_after:.1f} s, "
                f"caught by {outcome.caught_by}")
    return f"{outcome.result} ({outcome.note})" if outcome.note else outcome.result


# --- Reporting --------------------------------------------------------------------------------


def _seconds(value):
    return "-" if value is None else f"{value:.1f} s"


def table(outcomes: list[Outcome]) -> str:
    header = ("drill", "result", "active after", "email after", "caught by", "expected")
    rows = [(o.drill, o.result, _seconds(o.active_after), _seconds(o.email_after), o.caught_by or "-", o.expected)
            for o in outcomes]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    right = {2, 3}  # numbers line up on the right

    def line(row):
        cells = [str(cell).rjust(width) if i in right else str(cell).ljust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    lines = [line(header), line(["-" * w for w in widths])] + [line(row) for row in rows]
    lines += [f"  {o.drill}: {o.note}" for o in outcomes if o.note]
    return "\n".join(lines)


def summary(outcomes: list[Outcome], *, timeout: float) -> str:
    failed = [o.drill for o in outcomes if o.failed]
    skipped = sum(1 for o in outcomes if o.result.startswith("skipped"))
    ran = len(outcomes) - skipped
    also = f"; {skipped} skipped" if skipped else ""
    if failed:
        return f"{len(failed)} of {ran} drills did not converge within {timeout:g} s: {', '.join(failed)}{also}."
    slowest = max((o for o in outcomes if o.result == "ok"), key=lambda o: o.email_after, default=None)
    if slowest is None:
        return f"No drill ran{also}."
    return (f"All {ran} drills converged: every customer active with one confirmation email, slowest "
            f"{slowest.drill} ({slowest.email_after:.1f} s){also}.")


def as_json(outcomes: list[Outcome]) -> str:
    return json.dumps([asdict(o) for o in outcomes], indent=2)
