"""Alerts to the team: one per case, by email and an optional chat webhook, each channel delivered and
retried on its own, and ended with an all-clear on every channel that announced it."""

from datetime import timedelta

import pytest
from django.core import mail
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone

from billing.models import ReconcileRun
from outbox.models import OutboundEmail
from outbox.services import outbound_email_send
from support import alerts, tasks
from support.models import Alert, AlertDelivery
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def raise_alert(key="held-money:1", **fields):
    fields.setdefault("kind", Alert.Kind.HELD_MONEY)
    fields.setdefault("summary", "BK-0000-0000: $249.00 held without service")
    return alerts.alert_raise(key=key, **fields)


def test_an_alert_is_emailed_to_the_team_once_however_often_it_is_raised(
    settings, django_capture_on_commit_callbacks
):
    settings.SUPPORT_TEAM_EMAILS = ["ana@backstop.localhost", "ben@backstop.localhost"]

    with django_capture_on_commit_callbacks(execute=True):
        raise_alert()
        raise_alert()

    assert Alert.objects.count() == 1
    assert [m.to for m in mail.outbox] == [["ana@backstop.localhost", "ben@backstop.localhost"]]
    assert "$249.00 held without service" in mail.outbox[0].subject


def test_an_alert_is_posted_to_the_chat_webhook_when_one_is_configured(
    settings, chat_webhook, django_capture_on_commit_callbacks
):
    url, received = chat_webhook
    settings.ALERT_WEBHOOK_URL = url

    with django_capture_on_commit_callbacks(execute=True):
        raise_alert()

    assert len(received) == 1
    assert "$249.00 held without service" in received[0]["text"]


def test_an_alert_about_an_order_appears_on_its_timeline():
    order = OrderFactory()

    raise_alert(key=f"held-money:{order.id}", order=order)

    assert order.events.filter(reason__startswith="Team alerted:").count() == 1


def email_provider_back(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def both_channels(settings, chat_webhook):
    url, received = chat_webhook
    settings.ALERT_WEBHOOK_URL = url
    settings.SUPPORT_TEAM_EMAILS = ["team@backstop.localhost"]
    return received


def make_due(alert):
    AlertDelivery.objects.filter(alert=alert, next_attempt_at__isnull=False).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))


def delivery(alert, channel) -> AlertDelivery:
    return AlertDelivery.objects.get(alert=alert, channel=channel)


def test_with_the_email_provider_down_the_chat_hears_of_an_alert_at_once(
    settings, chat_webhook, email_provider_down, django_capture_on_commit_callbacks
):
    received = both_channels(settings, chat_webhook)

    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert()

    assert len(received) == 1
    assert "$249.00 held without service" in received[0]["text"]
    assert delivery(alert, "chat").sent_at is not None
    by_email = delivery(alert, "email")
    assert (by_email.sent_at, by_email.attempts) == (None, 1)
    assert "ConnectionRefused" in by_email.last_error
    assert by_email.next_attempt_at > timezone.now()


def test_a_channel_that_failed_is_retried_on_its_own_without_repeating_the_other(
    settings, chat_webhook, email_provider_down, django_capture_on_commit_callbacks
):
    received = both_channels(settings, chat_webhook)
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert()
    email_provider_back(settings)
    make_due(alert)

    sent = alerts.alerts_notify_due()

    assert sent == 1
    assert [m.to for m in mail.outbox] == [["team@backstop.localhost"]]
    assert len(received) == 1
    alert.refresh_from_db()
    assert alert.notified_at is not None


def test_a_lost_notification_task_is_made_up_by_a_later_pass(settings, chat_webhook):
    received = both_channels(settings, chat_webhook)
    alert = raise_alert()  # its task never runs (no commit here)
    make_due(alert)

    sent = alerts.alerts_notify_due()

    assert sent == 2
    assert len(mail.outbox) == 1
    assert len(received) == 1


def test_when_an_alert_resolves_every_channel_that_announced_it_gets_an_all_clear(
    settings, chat_webhook, django_capture_on_commit_callbacks
):
    received = both_channels(settings, chat_webhook)
    order = OrderFactory()
    with django_capture_on_commit_callbacks(execute=True):
        raise_alert(key=f"held-money:{order.id}", order=order)

    with django_capture_on_commit_callbacks(execute=True):
        resolved = alerts.alerts_resolve(order=order, kinds=[Alert.Kind.HELD_MONEY])

    assert resolved == 1
    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject.startswith("[Backstop] Resolved: BK-0000-0000")
    assert len(received) == 2
    assert "Resolved after" in received[1]["text"]


def test_an_alert_raised_and_resolved_before_it_was_sent_is_never_sent(
    settings, chat_webhook, django_capture_on_commit_callbacks
):
    received = both_channels(settings, chat_webhook)
    order = OrderFactory()

    with django_capture_on_commit_callbacks(execute=True):
        raise_alert(key=f"held-money:{order.id}", order=order)
        alerts.alerts_resolve(order=order, kinds=[Alert.Kind.HELD_MONEY])
    alerts.alerts_notify_due()

    assert mail.outbox == []
    assert received == []
    assert not AlertDelivery.objects.filter(next_attempt_at__isnull=False).exists()


def test_an_all_clear_goes_only_to_the_channels_that_announced_the_alert(
    settings, chat_webhook, email_provider_down, django_capture_on_commit_callbacks
):
    received = both_channels(settings, chat_webhook)
    order = OrderFactory()
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert(key=f"held-money:{order.id}", order=order)  # chat hears; email is down
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alerts_resolve(order=order, kinds=[Alert.Kind.HELD_MONEY])
    email_provider_back(settings)
    make_due(alert)

    alerts.alerts_notify_due()

    assert mail.outbox == []  # the team never had the alert by email: no all-clear there either
    assert len(received) == 2
    assert delivery(alert, "chat").cleared_at is not None
    assert delivery(alert, "email").next_attempt_at is None


def test_a_channel_that_keeps_failing_is_tried_for_about_a_day(settings):
    total = timedelta(seconds=sum(alerts.ALERT_RETRY_DELAYS))

    assert timedelta(hours=23) <= total <= timedelta(hours=25)
    assert alerts.ALERT_RETRY_DELAYS[0] <= 60


def test_a_channel_that_was_unconfigured_since_the_alert_owes_nothing_more(settings):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/nobody-listens"
    alert = raise_alert()
    settings.ALERT_WEBHOOK_URL = None
    make_due(alert)

    alerts.alerts_notify_due()

    chat = delivery(alert, "chat")
    assert (chat.sent_at, chat.next_attempt_at) == (None, None)
    assert chat.last_error == "The channel is no longer configured."


@pytest.mark.parametrize("kind", Alert.Kind.values)
def test_every_kind_of_alert_has_its_own_words_for_a_tired_person(kind):
    get_template(f"support/alerts/{kind}.txt")  # not the generic fallback
    alert = Alert.objects.create(kind=kind, key=f"{kind}:1", summary="Something the nets saw", details="A fact")

    _, body = alerts.alert_message(alert)

    for part in ("What is happening", "What to do"):
        assert part in body
    assert "Something the nets saw" in body


@pytest.mark.parametrize("kind", Alert.Kind.values)
def test_every_kind_of_alert_has_an_all_clear_that_says_how_long_it_lasted(kind):
    alert = Alert.objects.create(kind=kind, key=f"{kind}:1", summary="Something the nets saw")
    Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(minutes=42))
    alert.refresh_from_db()
    alert.resolved_at = timezone.now()

    title, body = alerts.alert_message(alert)

    assert title == "Resolved: Something the nets saw"
    assert "Resolved after 42\xa0minutes" in body


# --- A dead email provider --------------------------------------------------------------------

def owed_email(**fields):
    order = OrderFactory()
    return OutboundEmail.objects.create(about=order, kind="status_link", recipient=order.email,
                                        next_attempt_at=timezone.now(), **fields)


def test_a_dead_email_provider_is_told_by_chat_and_shown_on_the_console_then_ended(
    console, settings, chat_webhook, email_provider_down, django_capture_on_commit_callbacks
):
    received = both_channels(settings, chat_webhook)
    emails = [owed_email(), owed_email()]  # two confirmations owed
    for _ in range(3):  # the outbox's first three tries, the provider refusing each
        for email in emails:
            outbound_email_send(email_id=email.id)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.watch_sweep()

    assert len(received) == 1
    assert "Email is not going out: 2 customer emails waiting" in received[0]["text"]
    assert "Connection refused" in received[0]["text"] or "ConnectionRefused" in received[0]["text"]
    assert not AlertDelivery.objects.filter(channel="email").exists()  # email is what broke
    page = console.get(reverse("admin:index")).content.decode()
    assert 'id="email-down"' in page
    assert "Nothing needs a person right now" not in page

    email_provider_back(settings)
    for email in emails:
        outbound_email_send(email_id=email.id)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.watch_sweep()

    assert len(received) == 2
    assert "Resolved after" in received[1]["text"]
    assert "no customer email is waiting to go out any more" in received[1]["text"]
    assert 'id="email-down"' not in console.get(reverse("admin:index")).content.decode()


def test_one_failed_send_is_not_yet_an_email_outage(settings, chat_webhook, email_provider_down):
    both_channels(settings, chat_webhook)
    outbound_email_send(email_id=owed_email().id)

    tasks.watch_sweep()

    assert not Alert.objects.filter(kind=Alert.Kind.EMAIL_DOWN).exists()


def test_an_email_waiting_past_outbox_alert_after_is_an_outage_even_untried(settings):
    settings.OUTBOX_ALERT_AFTER = timedelta(minutes=5)
    email = owed_email()
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(minutes=6))

    alert = alerts.email_watch()

    assert alert.kind == Alert.Kind.EMAIL_DOWN
    assert alert.summary == "1 customer email waiting, the oldest for 6\xa0minutes"
    assert "task worker" in alert.details


def test_without_chat_an_email_outage_is_emailed_for_when_email_works_again(settings, email_provider_down):
    settings.ALERT_WEBHOOK_URL = None
    settings.SUPPORT_TEAM_EMAILS = ["team@backstop.localhost"]
    email = owed_email()
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(minutes=6))

    alert = alerts.email_watch()

    assert list(alert.deliveries.values_list("channel", flat=True)) == ["email"]


def test_the_daily_digest_lists_what_the_nets_fixed_and_what_is_still_open(settings):
    settings.SUPPORT_TEAM_EMAILS = ["team@backstop.localhost"]
    now = timezone.now()
    ReconcileRun.objects.create(started_at=now - timedelta(hours=2), status=ReconcileRun.Status.OK,
                                counts={"settled": 2, "adopted": 1, "sync_charges": 40})
    ReconcileRun.objects.create(started_at=now - timedelta(hours=1), status=ReconcileRun.Status.OK,
                                counts={"settled": 1})
    raise_alert(summary="BK-1111-2222: $249.00 held without service")

    body = alerts.daily_digest_send(now=now)

    assert "settled: 3" in body
    assert "adopted: 1" in body
    assert "sync" not in body.split("Fixed by the nets")[1].split("Open cases")[0]
    assert "BK-1111-2222" in body
    assert mail.outbox[-1].subject == "[Backstop] Daily digest: 4 fixed, 1 open"


def test_the_alerts_page_in_the_console_shows_each_channels_record(console, settings, email_provider_down):
    settings.SUPPORT_TEAM_EMAILS = ["team@backstop.localhost"]
    alert = raise_alert()
    alerts.alert_notify(alert_id=alert.id)

    page = console.get(reverse("admin:support_alert_change", args=[alert.pk])).content.decode()

    assert "Email to SUPPORT_TEAM_EMAILS" in page
    assert "Connection refused" in page or "ConnectionRefused" in page
