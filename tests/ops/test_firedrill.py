"""`manage.py firedrill`: the drills' machinery on the test emulator, without waiting minutes.

No django-q2 cluster runs in tests (tasks run inline), so nothing runs the sweep on a schedule:
the drill that needs it gets it from a thread that calls it as the schedule would, only every
half second and without the grace period. Everything else is real: the emulator, PostgreSQL,
the live server receiving webhooks, and the child process that is SIGKILLed after the charge.
"""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import Order, OrderState
from billing.reconcile import reconcile_run
from billing.services import plan_ensure_default
from ops import firedrill
from tests.ports import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plan():
    return plan_ensure_default()


@pytest.fixture
def scheduled():
    call_command("setup_schedules", stdout=StringIO())


@pytest.fixture
def children_use_this_test(stripe_emulator, monkeypatch):
    """The drill's checkout child inherits the environment: point it at this test's database and emulator."""
    db = connection.settings_dict
    monkeypatch.setenv("DATABASE_URL", f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    monkeypatch.setenv("STRIPE_API_BASE", stripe_emulator.api_base)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")


@pytest.fixture
def sweeping(settings):
    """The sweep, running in the background as the schedule would run it."""
    settings.RECONCILE_GRACE = timedelta(0)
    stop = threading.Event()
    errors = []

    def loop():
        try:
            while not stop.wait(0.5):
                reconcile_run()
        except Exception as exc:  # reported by the test's teardown below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=loop)
    thread.start()
    yield
    stop.set()
    thread.join()
    assert errors == []


def firedrill_command(*args):
    out = StringIO()
    call_command("firedrill", *args, stdout=out)
    return out.getvalue()


def row_of(output, drill):
    return next(line.split() for line in output.splitlines() if line.startswith(drill + " "))


def test_it_refuses_to_start_when_the_sweep_is_not_scheduled(plan, stripe_emulator):
    with pytest.raises(CommandError, match=r"The sweep is not scheduled: run `python manage.py setup_schedules`"):
        firedrill_command()


def test_a_lost_stripe_response_is_caught_by_the_webhook_and_reported_in_the_table(
    plan, scheduled, stripe_webhooks_to_live_server
):
    output = firedrill_command("--drill", "lost-stripe-response", "--timeout", "15")

    _drill, result, *_times, caught_by, expected = row_of(output, "lost-stripe-response")
    assert (result, caught_by, expected) == ("ok", "webhook", "webhook")
    assert "All 1 drills converged" in output
    order = Order.objects.get(email__startswith="firedrill-lost-stripe-response-")
    assert order.state == OrderState.ACTIVE
    assert [(e.kind, e.status) for e in order.emails.all()] == [("confirmation", "sent")]


def test_a_checkout_killed_after_the_charge_with_every_webhook_lost_is_caught_by_the_sweep(
    plan, children_use_this_test, stripe_webhooks_to_live_server, emulator_control, sweeping
):
    [outcome] = firedrill.run(["killed-after-charge"], timeout=20, plan=plan, say=lambda line: None)

    assert (outcome.result, outcome.caught_by) == ("ok", "sweep"), outcome
    assert outcome.active_after <= outcome.email_after < 20
    order = Order.objects.get(reference=outcome.reference)
    # The child wrote the order and the payment, and was killed before it could settle.
    assert order.events.filter(actor="checkout", reason="Payment set up with Stripe").exists()
    assert not order.events.filter(actor="checkout", to_state=OrderState.ACTIVE).exists()
    outcomes = {d["outcome"] for d in emulator_control.webhook_deliveries()}
    assert outcomes == {"dropped"}


def test_a_drill_that_does_not_converge_fails_the_command_after_printing_the_table(plan, scheduled, stripe_emulator):
    out = StringIO()

    with pytest.raises(CommandError, match="1 of 1 drills did not converge within 2 s: webhooks-dropped"):
        call_command("firedrill", "--drill", "webhooks-dropped", "--timeout", "2", stdout=out)

    assert row_of(out.getvalue(), "webhooks-dropped")[1:4] == ["timeout", "-", "-"]
    assert "webhooks-dropped: order pending, 0 entitlement(s), emails: none" in out.getvalue()


def test_against_real_stripe_the_emulator_only_drills_are_skipped_not_failed(plan, scheduled, settings):
    settings.STRIPE_API_BASE = None  # real Stripe: no fault API (and nothing here calls it)

    output = firedrill_command("--drill", "lost-stripe-response", "--drill", "webhooks-dropped")

    assert "skipped: needs the emulator's fault API" in " ".join(row_of(output, "webhooks-dropped"))
    assert "No drill ran; 2 skipped." in output


def test_it_says_so_when_the_configured_stripe_does_not_answer(plan, scheduled, settings):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(CommandError, match=r"does not answer: start the emulator"):
        firedrill_command()


def test_it_refuses_to_start_when_no_task_cluster_is_running(plan, scheduled, stripe_emulator, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # as in production: tasks need a running qcluster
    monkeypatch.setattr(firedrill, "HEARTBEAT_WAIT_SECONDS", 1)

    with pytest.raises(CommandError, match=r"No django-q2 cluster is running .* start `python manage.py qcluster`"):
        firedrill_command()
