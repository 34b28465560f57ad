"""The nets watch themselves: a sweep failing twice in a row, or not finishing for five minutes, raises
one alert to the team and tops the console until it recovers; case pages never promise what it is not doing."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from billing.models import ReconcileRun
from billing.reconcile import reconcile_run
from support import alerts, tasks
from support.models import Alert
from tests.billing.helpers import paid_order

pytestmark = pytest.mark.django_db

DOWN = Alert.Kind.SWEEP_DOWN


@pytest.fixture(autouse=True)
def no_grace(settings):
    settings.RECONCILE_GRACE = timedelta(0)


@pytest.fixture
def charge_list_failing(emulator_control):
    """Stripe's charge list answers 500, every time, until the test says otherwise."""
    emulator_control.fail_next(method="GET", path="/v1/charges", count=1000, status=500)
    yield emulator_control
    emulator_control.clear_faults()


def landing(console) -> str:
    return console.get(reverse("admin:index")).content.decode()


def test_one_failed_sweep_after_a_clean_one_raises_no_alert(stripe_emulator, emulator_control):
    reconcile_run()
    emulator_control.fail_next(method="GET", path="/v1/charges", count=1000, status=500)

    run = reconcile_run()

    emulator_control.clear_faults()
    assert run.status == ReconcileRun.Status.ERRORS
    assert not Alert.objects.filter(kind=DOWN).exists()


def test_a_sweep_that_fails_twice_in_a_row_raises_one_alert_to_the_team(
    stripe_emulator, charge_list_failing, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.SUPPORT_TEAM_EMAILS = ["team@backstop.localhost"]

    with django_capture_on_commit_callbacks(execute=True):
        runs = [reconcile_run() for _ in range(5)]

    assert {run.status for run in runs} == {ReconcileRun.Status.ERRORS}
    (alert,) = Alert.objects.filter(kind=DOWN)
    assert alert.resolved_at is None
    assert "The sweep is failing: its last 2 passes finished with errors" in alert.summary
    assert "listing charges" in alert.details
    assert [m.to for m in mailoutbox] == [["team@backstop.localhost"]]


def test_the_alert_resolves_when_a_sweep_finishes_cleanly_again(stripe_emulator, charge_list_failing):
    reconcile_run()
    reconcile_run()
    charge_list_failing.clear_faults()

    run = reconcile_run()

    assert run.status == ReconcileRun.Status.OK
    assert Alert.objects.get(kind=DOWN).resolved_at is not None


def test_a_second_outage_is_a_second_alert(stripe_emulator, emulator_control):
    for _ in range(2):
        emulator_control.fail_next(method="GET", path="/v1/charges", count=1000, status=500)
        reconcile_run()
        reconcile_run()
        emulator_control.clear_faults()
        reconcile_run()

    assert Alert.objects.filter(kind=DOWN).count() == 2
    assert not Alert.objects.filter(kind=DOWN, resolved_at__isnull=True).exists()


def test_a_failing_sweep_tops_the_console_landing_page_until_it_recovers(console, stripe_emulator,
                                                                         charge_list_failing):
    reconcile_run()
    reconcile_run()

    page = landing(console)

    assert page.index('id="sweep-down"') < page.index('role="search"')
    assert "The sweep is failing" in page
    assert "Recover would fail the same way" in page
    assert "press Recover on each case" not in page
    charge_list_failing.clear_faults()
    reconcile_run()
    assert 'id="sweep-down"' not in landing(console)


def test_a_sweep_that_has_not_finished_for_five_minutes_is_alerted_by_the_watchdog(console):
    ReconcileRun.objects.create(started_at=timezone.now() - timedelta(minutes=20), status=ReconcileRun.Status.OK,
                                finished_at=timezone.now() - timedelta(minutes=20))
    ReconcileRun.objects.create(started_at=timezone.now() - timedelta(minutes=19))  # stuck, RUNNING for ever

    tasks.watch_sweep()
    tasks.watch_sweep()

    (alert,) = Alert.objects.filter(kind=DOWN, resolved_at__isnull=True)
    assert alert.summary.startswith("The sweep is stuck: a pass started at")
    assert "The sweep is stuck" in landing(console)


def test_a_pass_that_failed_outright_counts_as_a_failure_like_one_with_errors():
    now = timezone.now()
    ReconcileRun.objects.create(started_at=now - timedelta(minutes=3), finished_at=now - timedelta(minutes=3),
                                status=ReconcileRun.Status.OK)
    ReconcileRun.objects.create(started_at=now - timedelta(minutes=2), finished_at=now - timedelta(minutes=2),
                                status=ReconcileRun.Status.FAILED, errors=["sweep: OperationalError: gone"])
    ReconcileRun.objects.create(started_at=now - timedelta(minutes=1), finished_at=now - timedelta(minutes=1),
                                status=ReconcileRun.Status.ERRORS, errors=["sync: listing charges: 500"])

    tasks.watch_sweep()

    (alert,) = Alert.objects.filter(kind=DOWN)
    assert "its last 2 passes" in alert.summary
    assert "Newest error: sync: listing charges: 500." in alert.details


def test_a_sweep_that_never_ran_is_on_the_landing_page(console):
    assert "The sweep has never run" in landing(console)


def test_a_recent_clean_sweep_shows_nothing_and_resolves_the_watchdogs_alert(console):
    ReconcileRun.objects.create(started_at=timezone.now() - timedelta(minutes=12), status=ReconcileRun.Status.OK,
                                finished_at=timezone.now() - timedelta(minutes=12))
    tasks.watch_sweep()
    ReconcileRun.objects.create(started_at=timezone.now(), status=ReconcileRun.Status.OK, finished_at=timezone.now())

    tasks.watch_sweep()

    assert Alert.objects.get(kind=DOWN).resolved_at is not None
    assert 'id="sweep-down"' not in landing(console)


def test_the_watchdog_has_its_own_schedule_beside_the_sweep():
    call_command("setup_schedules", stdout=StringIO())

    assert Schedule.objects.filter(func="support.tasks.watch_sweep", minutes=1).count() == 1
    assert Schedule.objects.filter(func="billing.tasks.reconcile").count() == 1
    assert Schedule.objects.filter(func="support.tasks.send_daily_digest").count() == 1


def test_a_case_page_never_promises_the_sweep_while_it_is_failing(console, stripe_emulator, charge_list_failing):
    order = paid_order()  # charged; nothing finished it
    reconcile_run()
    reconcile_run()

    page = console.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert "The sweep finishes such orders every minute" not in page
    assert "The sweep is failing" in page
    assert "press Recover now" in page


def test_a_case_page_says_the_sweep_will_finish_it_while_the_sweep_is_healthy(console, stripe_emulator, settings):
    settings.RECONCILE_GRACE = timedelta(minutes=5)  # so this sweep leaves the order alone
    order = paid_order()
    reconcile_run()

    page = console.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert "The sweep finishes such orders every minute" in page


# --- A fresh start, and words a person can act on ---------------------------------------------

def test_a_fresh_start_raises_no_alarm_before_the_first_pass_has_had_its_chance(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.watch_sweep()  # the watch's schedule came first: the sweep has never run
    assert not Alert.objects.filter(kind=DOWN).exists()

    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()
        tasks.watch_sweep()

    assert not Alert.objects.filter(kind=DOWN).exists()
    assert mailoutbox == []


def test_a_sweep_that_never_ran_is_an_alarm_once_the_start_grace_has_passed(mailoutbox,
                                                                           django_capture_on_commit_callbacks):
    tasks.watch_sweep()
    cache.set(alerts.WATCHING_SINCE_KEY, timezone.now() - alerts.ALERT_START_GRACE - timedelta(seconds=1), None)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.watch_sweep()

    (alert,) = Alert.objects.filter(kind=DOWN)
    assert alert.summary == "The sweep has never run"
    assert len(mailoutbox) == 1


def test_passes_failing_in_the_first_minutes_are_an_alarm_at_once(stripe_emulator, charge_list_failing):
    reconcile_run()
    reconcile_run()

    assert Alert.objects.filter(kind=DOWN, resolved_at__isnull=True).count() == 1


def test_the_sweep_alert_says_what_is_safe_and_what_to_do_while_stripe_fails(
    stripe_emulator, charge_list_failing, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()
        reconcile_run()

    body = mailoutbox[0].body
    assert "What is happening: the sweep" in body
    assert "What is safe: nothing is lost" in body
    assert "status.stripe.com" in body
    assert "do not press Recover on every case while Stripe is failing" in body
    assert "press Recover on each case" not in body


def test_the_team_hears_the_sweep_is_working_again(stripe_emulator, charge_list_failing, mailoutbox,
                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()
        reconcile_run()
    charge_list_failing.clear_faults()

    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()

    assert len(mailoutbox) == 2
    assert mailoutbox[1].subject.startswith("[Backstop] Resolved: The sweep is failing")
    assert "the sweep finished a clean pass again" in mailoutbox[1].body


def test_with_stripe_and_the_email_provider_down_chat_hears_of_the_sweep_and_then_its_all_clear(
    stripe_emulator, charge_list_failing, settings, chat_webhook, email_provider_down,
    django_capture_on_commit_callbacks
):
    url, chat = chat_webhook
    settings.ALERT_WEBHOOK_URL, settings.SUPPORT_TEAM_EMAILS = url, ["team@backstop.localhost"]
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()
        reconcile_run()

    assert len(chat) == 1
    assert "The sweep is failing" in chat[0]["text"]

    charge_list_failing.clear_faults()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the provider is back too
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_run()
    tasks.watch_sweep()  # and a minute later, whatever each channel still owes

    assert len(chat) == 2
    assert "the sweep finished a clean pass again" in chat[1]["text"]
    assert mail.outbox == []  # email never announced the outage, so it owes neither it nor its all-clear
