"""Alerts to the team: raised once per case, announced on every channel on its own (email to
SUPPORT_TEAM_EMAILS, chat through ALERT_WEBHOOK_URL), and ended with an all-clear on each channel
that announced it. The nets' own health (the sweep, outgoing email) is watched here too.

Each channel is an AlertDelivery row with its own attempts and next try: with the email provider
down, chat still hears at once, and email catches up when it can. An alert that resolves before a
channel announced it is never sent there: the team hears of what is (or was, with its all-clear),
never of what already ended unseen. The words are templates chosen by kind
(templates/support/alerts/), written for a person woken at night: what is happening, what is safe,
what to do and what not to do.
"""

import json
import logging
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string, select_template
from django.utils import timezone
from django.utils.timesince import timesince

from billing.models import ReconcileRun
from billing.queue import enqueue_after_commit
from billing.selectors import SWEEP_FAILURES_ALERT, sweep_health
from billing.services.history import event_team_alerted
from support.models import Alert, AlertDelivery
from support.monitoring import email_outage
from support.selectors import sweep_notice

logger = logging.getLogger(__name__)

Channel = AlertDelivery.Channel

ALERT_WEBHOOK_TIMEOUT_SECONDS = 5
# Seconds before each retry of one channel, then it gives up (logged as an error; the alert stays
# open in the console and the daily digest): soon at first, then every quarter hour, for a day.
ALERT_RETRY_DELAYS = [30, 60, 120, 300, 600] + [900] * 95
# How long the task worker gets to show the sweep working after a fresh start before "the sweep
# has never run" or "has not finished a pass" is an alarm: the schedule is checked once a minute,
# and a first pass against a real Stripe account copies its history into the mirror, which can take
# minutes; past SWEEP_STALE_AFTER_MINUTES (5) with room for that first pass. Passes that finish with
# errors are alarmed at once: those are real.
ALERT_START_GRACE = timedelta(minutes=10)
WATCHING_SINCE_KEY = "backstop:alerts:watching-since"


# --- Raising and resolving ----------------------------------------------------------------------

def _channels_for(kind: str) -> list[str]:
    """The channels configured now that this kind goes to. Email being down is told by chat: an
    email saying so could only arrive once it is over (by email only when there is no chat)."""
    channels = []
    if settings.SUPPORT_TEAM_EMAILS and not (kind == Alert.Kind.EMAIL_DOWN and settings.ALERT_WEBHOOK_URL):
        channels.append(Channel.EMAIL)
    if settings.ALERT_WEBHOOK_URL:
        channels.append(Channel.CHAT)
    return channels


def alert_raise(*, kind: str, key: str, summary: str, details: str = "", order=None, email=None) -> Alert:
    """Tell the team about one case, once: the first call creates and notifies, later ones find it.

    Runs in the caller's transaction (often under an order lock), so the notification itself is
    sent after commit by the worker; if that is lost, the sweep and the watch send what is owed.
    """
    existing = Alert.objects.filter(key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            alert = Alert.objects.create(kind=kind, key=key, summary=summary[:300], details=details,
                                         order=order, email=email)
            # Owed now; the task below sends it at once, a later pass if that task is lost.
            retry_at = timezone.now() + timedelta(seconds=ALERT_RETRY_DELAYS[0])
            AlertDelivery.objects.bulk_create([AlertDelivery(alert=alert, channel=channel, next_attempt_at=retry_at)
                                               for channel in _channels_for(kind)])
    except IntegrityError:  # raised a moment ago by another path
        return Alert.objects.get(key=key)
    if order is not None:
        event_team_alerted(order, alert_kind=kind, summary=alert.summary)
    logger.info("Alert %s raised (%s): %s", alert.id, kind, alert.summary)
    enqueue_after_commit("support.tasks.notify_alert", alert.id, task_name=f"alert-{alert.id}")
    return alert


def _resolve(alerts, *, now) -> int:
    """Resolve these open alerts; each channel that announced one owes its all-clear, and a channel
    that never did owes nothing any more."""
    ids = list(alerts.filter(resolved_at__isnull=True).values_list("id", flat=True))
    if not ids:
        return 0
    resolved = Alert.objects.filter(id__in=ids, resolved_at__isnull=True).update(resolved_at=now)
    deliveries = AlertDelivery.objects.filter(alert_id__in=ids, cleared_at__isnull=True)
    deliveries.filter(sent_at__isnull=True).update(next_attempt_at=None)
    deliveries.filter(sent_at__isnull=False).update(next_attempt_at=now + timedelta(seconds=ALERT_RETRY_DELAYS[0]),
                                                    attempts=0, last_error="")
    for alert_id in ids:
        logger.info("Alert %s resolved", alert_id)
        enqueue_after_commit("support.tasks.notify_alert", alert_id, task_name=f"alert-{alert_id}-resolved")
    return resolved


def alerts_resolve(*, order, kinds: list[str]) -> int:
    return _resolve(Alert.objects.filter(order=order, kind__in=kinds), now=timezone.now())


# --- Sending, channel by channel ----------------------------------------------------------------

def alert_message(alert: Alert) -> tuple[str, str]:
    """The title and the words for an alert as it stands: raised, or resolved (its all-clear),
    from the kind's template (templates/support/alerts/<kind>.txt, <kind>_resolved.txt)."""
    resolved = alert.resolved_at is not None
    suffix = "_resolved" if resolved else ""
    template = select_template([f"support/alerts/{alert.kind}{suffix}.txt", f"support/alerts/default{suffix}.txt"])
    site_url = settings.SITE_URL.rstrip("/")
    context = {
        "alert": alert, "site_name": settings.SITE_NAME, "console_url": f"{site_url}/admin/",
        "case_url": f"{site_url}/admin/billing/order/{alert.order_id}/change/" if alert.order_id else "",
        "lasted": timesince(alert.created_at, alert.resolved_at) if resolved else "",
    }
    body = template.render(context).strip() + "\n"
    title = f"Resolved: {alert.summary}" if resolved else f"{alert.get_kind_display()}: {alert.summary}"
    return title, body


def _send_email(title: str, body: str):
    send_mail(subject=f"[{settings.SITE_NAME}] {title}"[:200], message=body,
              from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=settings.SUPPORT_TEAM_EMAILS)


def _send_chat(title: str, body: str):
    # Slack-compatible ({"text": ...}); most chat tools' incoming webhooks take it.
    text = render_to_string("support/alerts/chat.txt", {"site_name": settings.SITE_NAME, "title": title,
                                                         "body": body}).strip()
    request = urllib.request.Request(  # noqa: S310 - an https URL from our own settings
        settings.ALERT_WEBHOOK_URL, method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"text": text}).encode())
    with urllib.request.urlopen(request, timeout=ALERT_WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
        response.read()


SENDERS = {Channel.EMAIL: _send_email, Channel.CHAT: _send_chat}
CONFIGURED = {Channel.EMAIL: lambda: bool(settings.SUPPORT_TEAM_EMAILS),
              Channel.CHAT: lambda: bool(settings.ALERT_WEBHOOK_URL)}


def alert_delivery_attempt(*, delivery_id: int) -> AlertDelivery | None:
    """Send what one channel owes for its alert (the announcement, or the all-clear), once.

    At least once rather than at most once: a duplicate alert costs a person a glance, a lost one
    can cost a customer their money. Returns None when nothing was owed (or another worker has it).
    """
    with transaction.atomic():
        delivery = (AlertDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(pk=delivery_id, next_attempt_at__isnull=False).select_related("alert").first())
        if delivery is None:
            return None
        alert = delivery.alert
        now = timezone.now()
        announced = delivery.sent_at is not None
        if alert.resolved_at is not None and not announced:
            # Raised and resolved before this channel ever told anyone: nothing to announce, nothing to end.
            delivery.next_attempt_at = None
            delivery.save(update_fields=["next_attempt_at"])
            logger.info("Alert %s resolved before it went out by %s: not sent", alert.id, delivery.channel)
            return delivery
        if not CONFIGURED[delivery.channel]():
            delivery.next_attempt_at = None
            delivery.last_error = "The channel is no longer configured."
            delivery.save(update_fields=["next_attempt_at", "last_error"])
            logger.warning("Alert %s: %s is no longer configured; not sent", alert.id, delivery.channel)
            return delivery
        what = "all-clear" if announced else "announcement"
        delivery.attempts += 1
        try:
            SENDERS[delivery.channel](*alert_message(alert))
        except Exception as exc:  # that channel is down: it tries again on its own, the others are not held up
            delivery.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            if delivery.attempts > len(ALERT_RETRY_DELAYS):
                delivery.next_attempt_at = None
                logger.error("Alert %s: %s by %s gave up after %s attempts: %s", alert.id, what, delivery.channel,
                             delivery.attempts, exc)
            else:
                delivery.next_attempt_at = now + timedelta(seconds=ALERT_RETRY_DELAYS[delivery.attempts - 1])
                logger.warning("Alert %s: %s by %s could not be sent (attempt %s, next at %s): %s", alert.id, what,
                               delivery.channel, delivery.attempts, f"{delivery.next_attempt_at:%H:%M:%S}", exc)
        else:
            if announced:
                delivery.cleared_at = now
            else:
                delivery.sent_at = now
                Alert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(notified_at=now)
            delivery.next_attempt_at = None
            delivery.attempts = 0
            delivery.last_error = ""
            delivery.delivered = True  # for the caller's count, not stored
            logger.info("Alert %s: %s sent by %s", alert.id, what, delivery.channel)
        delivery.save(update_fields=["sent_at", "cleared_at", "attempts", "next_attempt_at", "last_error"])
    return delivery


def alert_notify(*, alert_id: int) -> list[AlertDelivery]:
    """Send what every channel owes for one alert now, each on its own (the task after raise/resolve)."""
    owed = AlertDelivery.objects.filter(alert_id=alert_id, next_attempt_at__isnull=False).values_list("id", flat=True)
    return [delivery for delivery_id in list(owed) if (delivery := alert_delivery_attempt(delivery_id=delivery_id))]


def alerts_notify_due(*, limit: int = 100) -> int:
    """Send what channels still owe whose next try has come (a lost task, a channel that was down).
    Run after every sweep pass and by the watch every minute. Returns how many went out."""
    due = (AlertDelivery.objects.filter(next_attempt_at__lte=timezone.now())
           .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    sent = 0
    for delivery_id in list(due):
        delivery = alert_delivery_attempt(delivery_id=delivery_id)
        sent += bool(getattr(delivery, "delivered", False))
    return sent


# --- The nets watched -----------------------------------------------------------------------------

def _starting_up(now) -> bool:
    """True in the first ALERT_START_GRACE of a fresh installation: since its first sweep pass, or,
    before any, since the watch first ran (kept in the shared cache, like the worker's heartbeat)."""
    first_pass = ReconcileRun.objects.order_by("started_at").values_list("started_at", flat=True).first()
    if first_pass is None:
        cache.add(WATCHING_SINCE_KEY, now, None)
        first_seen = cache.get(WATCHING_SINCE_KEY) or now
    else:
        first_seen = first_pass
    return now - first_seen < ALERT_START_GRACE


def sweep_watch(*, now=None) -> Alert | None:
    """Watch the safety net itself: one alert to the team while the sweep is down (failing pass after
    pass, or not finishing at all), resolved once a pass finishes cleanly. Returns the open alert.

    Runs after every pass (support.receivers) and every minute on its own schedule
    (support/schedules.py), which keeps running when the sweep is stuck or never starts.
    """
    now = now or timezone.now()
    open_alerts = Alert.objects.filter(kind=Alert.Kind.SWEEP_DOWN, resolved_at__isnull=True)
    health = sweep_health(now=now)
    if health.failures == 0 and not health.stalled:
        _resolve(open_alerts, now=now)
        return None
    notice = sweep_notice(now=now, health=health)
    if notice is None:  # one failed pass after a clean one: not (yet) an outage
        return open_alerts.first()
    if health.failures < SWEEP_FAILURES_ALERT and not open_alerts.exists() and _starting_up(now):
        return None  # a fresh start: the first pass has not had its chance yet
    # An outage is one case from its start (the last clean pass) to its end, however it looks meanwhile.
    return alert_raise(kind=Alert.Kind.SWEEP_DOWN, key=notice.key, summary=notice.title, details=notice.facts)


def email_watch(*, now=None) -> Alert | None:
    """Watch outgoing email: one alert (by chat) while customers' emails are not going out, resolved
    once none waits too long or keeps failing. Every minute, beside the sweep's watch."""
    now = now or timezone.now()
    open_alerts = Alert.objects.filter(kind=Alert.Kind.EMAIL_DOWN, resolved_at__isnull=True)
    outage = email_outage(now=now)
    if outage is None:
        _resolve(open_alerts, now=now)
        return None
    if (alert := open_alerts.first()) is not None:
        return alert
    return alert_raise(kind=Alert.Kind.EMAIL_DOWN, key=outage.key, summary=outage.title, details=outage.detail)


# --- The daily digest -----------------------------------------------------------------------------

def daily_digest_send(*, now=None) -> str:
    """Email the team what the nets caught and fixed on their own in the last day, and what is open."""
    now = now or timezone.now()
    since = now - timedelta(days=1)
    runs = ReconcileRun.objects.filter(started_at__gte=since).exclude(status=ReconcileRun.Status.SKIPPED)
    totals: dict[str, int] = {}
    errors = 0
    for counts, run_errors in runs.values_list("counts", "errors"):
        for name, value in (counts or {}).items():
            totals[name] = totals.get(name, 0) + int(value)
        errors += len(run_errors or [])
    open_alerts = Alert.objects.filter(resolved_at__isnull=True).order_by("created_at")
    lines = [f"{settings.SITE_NAME}, the last 24 hours (to {now:%Y-%m-%d %H:%M} UTC)", "",
             f"Sweeps run: {runs.count()}, with {errors} errors.", "", "Fixed by the nets on their own:"]
    fixed = {name: value for name, value in sorted(totals.items()) if value and not name.startswith("sync_")}
    lines += [f"  {name.replace('_', ' ')}: {value}" for name, value in fixed.items()] or ["  nothing"]
    lines += ["", f"Open cases for a person: {open_alerts.count()}"]
    lines += [f"  - {alert.summary} (since {alert.created_at:%Y-%m-%d %H:%M} UTC)" for alert in open_alerts[:50]]
    body = "\n".join(lines) + "\n"
    send_mail(subject=f"[{settings.SITE_NAME}] Daily digest: {sum(fixed.values())} fixed, {open_alerts.count()} open",
              message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=settings.SUPPORT_TEAM_EMAILS)
    return body
