"""The year's end: reminders before a plan ends, the email on the day, the one-click opt-out.

Plans here end at midnight (UTC, the site's zone) a whole number of days from today, so "in 7
days" is exact whatever time of day the suite runs, and the real clock can drive the command.
"""

from datetime import UTC, datetime, time, timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from accounts.models import Entitlement
from accounts.tokens import reminders_off_token
from billing.email_kinds import Kind as EmailKind
from billing.models import OrderEvent, OrderState
from billing.renewals import reminders_send
from billing.tokens import user_from_renew_token
from config.env import env_durations
from outbox.models import OutboundEmail
from outbox.services import outbound_email_queue
from tests.factories import OrderFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

Kind = EmailKind


def midnight(days_from_today: int) -> datetime:
    return datetime.combine(timezone.localdate() + timedelta(days=days_from_today), time(0), tzinfo=UTC)


def plan_ending(days_from_today: int, *, user=None, state=OrderState.ACTIVE, revoked=False) -> Entitlement:
    """A paid year for `user` (a new customer by default) that ends at midnight that many days on."""
    user = user or UserFactory()
    ends_at = midnight(days_from_today)
    starts_at = ends_at - timedelta(days=365)
    order = OrderFactory(user=user, email=user.email, state=state, paid_at=starts_at)
    return Entitlement.objects.create(user=user, order=order, plan=order.plan, starts_at=starts_at, ends_at=ends_at,
                                      revoked_at=timezone.now() if revoked else None,
                                      revoked_reason="refund requested" if revoked else "")


@pytest.fixture
def run_reminders(django_capture_on_commit_callbacks):
    """`manage.py renewal_reminders` as cron runs it; the outbox sends after commit (tasks inline)."""

    def run(*args):
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("renewal_reminders", *args, stdout=out)
        return out.getvalue()

    return run


def html_of(message) -> str:
    (html, mimetype), = message.alternatives
    assert mimetype == "text/html"
    return html


def renew_link_in(text: str) -> str:
    return next(word for word in text.split() if "?renew=" in word)


def test_a_plan_ending_in_30_days_gets_one_reminder_however_often_the_command_runs(run_reminders, mailoutbox):
    entitlement = plan_ending(30)

    run_reminders()
    run_reminders()

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [entitlement.user.email]
    assert "ends in 30 days" in mailoutbox[0].subject
    assert list(OutboundEmail.objects.values_list("kind", "dedupe_key", "about_id")) == [
        (Kind.RENEWAL_REMINDER, f"renewal:{entitlement.id}:30d", entitlement.order_id)]


def test_seven_days_before_the_end_a_second_reminder_follows_the_first(run_reminders, mailoutbox):
    entitlement = plan_ending(7)
    reminders_send(now=entitlement.ends_at - timedelta(days=29))  # the 30-day one, three weeks ago

    run_reminders()

    assert list(OutboundEmail.objects.order_by("id").values_list("dedupe_key", flat=True)) == [
        f"renewal:{entitlement.id}:30d", f"renewal:{entitlement.id}:7d"]
    assert "ends in 7 days" in mailoutbox[-1].subject


def test_on_the_day_the_plan_ends_the_customer_gets_one_plan_ended_email(run_reminders, mailoutbox):
    entitlement = plan_ending(0)

    run_reminders()
    run_reminders()

    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == f"Your Annual plan ended on {entitlement.ends_at:%B %-d, %Y}"
    assert OutboundEmail.objects.get().dedupe_key == f"plan-ended:{entitlement.id}"


def test_a_missed_window_sends_only_the_latest_reminder_with_the_true_days_left(run_reminders, mailoutbox):
    entitlement = plan_ending(5)  # the job did not run while the 30-day and the 7-day marks passed

    run_reminders()

    assert len(mailoutbox) == 1
    assert OutboundEmail.objects.get().dedupe_key == f"renewal:{entitlement.id}:7d"
    assert "ends in 5 days" in mailoutbox[0].subject
    assert "ends in 5 days" in mailoutbox[0].body
    assert "30 days" not in mailoutbox[0].body


def test_a_plan_that_ended_days_ago_gets_nothing(run_reminders, mailoutbox):
    plan_ending(-3)

    run_reminders()

    assert mailoutbox == []


def test_a_plan_with_more_than_30_days_left_gets_nothing_yet(run_reminders, mailoutbox):
    plan_ending(32)

    run_reminders()

    assert mailoutbox == []


def test_a_renewed_plan_gets_no_reminder(run_reminders, mailoutbox):
    first = plan_ending(7)
    renewal = OrderFactory(user=first.user, email=first.user.email, state=OrderState.ACTIVE, paid_at=timezone.now())
    Entitlement.objects.create(user=first.user, order=renewal, plan=renewal.plan, starts_at=first.ends_at,
                               ends_at=first.ends_at + timedelta(days=365))

    run_reminders()

    assert mailoutbox == []
    assert not OutboundEmail.objects.exists()


def test_a_refunded_plan_gets_no_reminder(run_reminders, mailoutbox):
    plan_ending(7, state=OrderState.REFUNDED, revoked=True)

    run_reminders()

    assert mailoutbox == []


def test_a_revoked_plan_gets_no_reminder(run_reminders, mailoutbox):
    plan_ending(7, revoked=True)

    run_reminders()

    assert mailoutbox == []


def test_a_customer_who_turned_reminders_off_gets_none(run_reminders, mailoutbox):
    plan_ending(7, user=UserFactory(renewal_reminders=False))
    plan_ending(0, user=UserFactory(renewal_reminders=False))

    run_reminders()

    assert mailoutbox == []


def test_staff_get_no_reminders(run_reminders, mailoutbox):
    plan_ending(7, user=StaffFactory())

    run_reminders()

    assert mailoutbox == []


def test_a_dry_run_lists_who_would_be_emailed_and_sends_nothing(run_reminders, mailoutbox):
    entitlement = plan_ending(7)

    output = run_reminders("--dry-run", "-v", "2")

    assert entitlement.order.reference in output
    assert "Dry run: would owe 1 reminder(s)" in output
    assert mailoutbox == []
    assert not OutboundEmail.objects.exists()


def test_two_attempts_to_owe_the_same_email_make_one_row():
    entitlement = plan_ending(7)
    key = f"renewal:{entitlement.id}:7d"

    first = outbound_email_queue(kind=Kind.RENEWAL_REMINDER, about=entitlement.order, dedupe_key=key)
    second = outbound_email_queue(kind=Kind.RENEWAL_REMINDER, about=entitlement.order, dedupe_key=key)

    assert first is not None
    assert second is None
    assert OutboundEmail.objects.filter(dedupe_key=key).count() == 1


def test_the_reminder_says_when_the_plan_ends_what_renewing_costs_and_that_nothing_is_charged_otherwise(
        run_reminders, mailoutbox):
    entitlement = plan_ending(30)
    end = f"{entitlement.ends_at:%B %-d, %Y}"

    run_reminders()

    message = mailoutbox[0]
    assert message.subject == f"Your Annual plan ends in 30 days, on {end}"
    for body in (message.body, html_of(message)):
        assert f"ends in 30 days, on {end}" in " ".join(body.replace("<strong>", "").replace("</strong>", "").split())
        assert "no automatic renewal: nothing will be charged unless you renew" in body
        assert "one payment of $249.00" in body.replace("<strong>", "").replace("</strong>", "")
        assert f"adds 12 months after {end}, so no days are lost" in body
        assert entitlement.order.reference in body
        assert reverse("accounts:reminders_off", kwargs={"token": reminders_off_token(entitlement.user)}) in body


def test_the_plan_ended_email_says_it_ended_and_how_to_renew(run_reminders, mailoutbox):
    entitlement = plan_ending(0)
    end = f"{entitlement.ends_at:%B %-d, %Y}"

    run_reminders()

    message = mailoutbox[0]
    for body in (message.body, html_of(message)):
        flat = " ".join(body.replace("<strong>", "").replace("</strong>", "").split())
        assert f"Your Annual plan ended on {end}." in flat
        assert "no automatic renewal: nothing will be charged unless you renew" in flat
        assert "one payment of $249.00 for 12 months, starting on the day you pay" in flat
        assert "?renew=" in body


def test_the_renew_link_carries_a_valid_renew_token_for_the_customer(run_reminders, mailoutbox, settings):
    entitlement = plan_ending(7)

    run_reminders()

    link = renew_link_in(mailoutbox[0].body)
    assert link.startswith(settings.SITE_URL + reverse("billing:checkout") + "?renew=")
    assert user_from_renew_token(parse_qs(urlsplit(link).query)["renew"][0]) == entitlement.user
    assert f'href="{link.replace("&", "&amp;")}"' in html_of(mailoutbox[0])


def test_renewal_emails_carry_one_click_list_unsubscribe_headers(run_reminders, mailoutbox, settings):
    entitlement = plan_ending(7)
    plan_ending(0)
    off_url = settings.SITE_URL + reverse("accounts:reminders_off",
                                          kwargs={"token": reminders_off_token(entitlement.user)})

    run_reminders()

    assert len(mailoutbox) == 2
    for message in mailoutbox:
        assert message.extra_headers["List-Unsubscribe"].startswith(f"<{settings.SITE_URL}/account/reminders/off/")
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    reminder = next(m for m in mailoutbox if m.to == [entitlement.user.email])
    assert reminder.extra_headers["List-Unsubscribe"] == f"<{off_url}>"


def test_other_emails_carry_no_list_unsubscribe_header(mailoutbox, django_capture_on_commit_callbacks):
    entitlement = plan_ending(100)

    with django_capture_on_commit_callbacks(execute=True):
        outbound_email_queue(kind=Kind.STATUS_LINK, about=entitlement.order)

    assert "List-Unsubscribe" not in mailoutbox[0].extra_headers


def test_the_one_click_post_without_a_session_or_csrf_token_turns_reminders_off():
    entitlement = plan_ending(7)
    url = reverse("accounts:reminders_off", kwargs={"token": reminders_off_token(entitlement.user)})

    response = Client(enforce_csrf_checks=True).post(url, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert "Renewal reminders are off" in response.text
    assert "account page" in response.text
    entitlement.user.refresh_from_db()
    assert entitlement.user.renewal_reminders is False
    assert OrderEvent.objects.filter(order=entitlement.order, actor="customer",
                                     reason__contains="Turned off renewal reminders").exists()


def test_opening_the_opt_out_link_changes_nothing_and_offers_a_button(client):
    entitlement = plan_ending(7)
    url = reverse("accounts:reminders_off", kwargs={"token": reminders_off_token(entitlement.user)})

    response = client.get(url)

    assert response.status_code == 200
    assert 'id="reminders-off"' in response.text
    assert "no-store" in response["Cache-Control"]
    entitlement.user.refresh_from_db()
    assert entitlement.user.renewal_reminders is True


def test_a_broken_opt_out_link_changes_nothing(client):
    entitlement = plan_ending(7)
    token = reminders_off_token(entitlement.user)

    response = client.post(reverse("accounts:reminders_off", kwargs={"token": token[:-2] + "xx"}))

    assert response.status_code == 400
    entitlement.user.refresh_from_db()
    assert entitlement.user.renewal_reminders is True


def test_after_the_one_click_opt_out_no_more_reminders_are_sent(client, run_reminders, mailoutbox):
    entitlement = plan_ending(7)
    client.post(reverse("accounts:reminders_off", kwargs={"token": reminders_off_token(entitlement.user)}))

    run_reminders()

    assert mailoutbox == []


def test_setup_schedules_installs_the_hourly_renewal_reminders_that_send_them(
        mailoutbox, django_capture_on_commit_callbacks):
    call_command("setup_schedules", stdout=StringIO())
    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(func="billing.tasks.renewal_reminders")
    plan_ending(7)

    with django_capture_on_commit_callbacks(execute=True):
        counts = import_string(schedule.func)()

    assert schedule.schedule_type == Schedule.HOURLY
    assert counts["reminders"] == 1
    assert len(mailoutbox) == 1


def test_renewal_reminders_setting_reads_durations_longest_first(monkeypatch):
    monkeypatch.setenv("RENEWAL_REMINDERS", "7d, 30d,36h")

    assert env_durations("RENEWAL_REMINDERS", "30d,7d") == [
        timedelta(days=30), timedelta(days=7), timedelta(hours=36)]


def test_a_malformed_renewal_reminders_setting_refuses_to_start_with_one_line(monkeypatch):
    monkeypatch.setenv("RENEWAL_REMINDERS", "30 days")

    with pytest.raises(ImproperlyConfigured, match=r"^RENEWAL_REMINDERS must be durations .* not '30 days'\.$"):
        env_durations("RENEWAL_REMINDERS", "30d,7d")
