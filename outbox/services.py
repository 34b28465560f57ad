"""The outbox: owe an email in the caller's transaction, send it at most once after commit, retry
and flag (docs/decisions/0003-outbox-at-most-once.md). What an email says and what happens around it
belongs to the app that registered its kind (outbox/kinds.py)."""

import logging
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.failpoints import failpoint
from config.queries import by_unique_key
from config.queue import enqueue_after_commit
from outbox import kinds
from outbox.models import OutboundEmail

logger = logging.getLogger(__name__)

SEND_TASK = "outbox.tasks.send_outbound_email"


def outbound_email_queue(*, kind: str, about=None, user=None, recipient: str = "",
                         dedupe_key: str | None = None, subject: str = "", body: str = "",
                         in_reply_to: str = "", sent_by: str = "", send_reason: str = "",
                         facts: dict | None = None) -> OutboundEmail | None:
    """Owe someone an email, in the caller's transaction; it is sent after commit.

    About an object (`about`, e.g. an order; the recipient defaults to its `email`), or about an
    account (`user`, e.g. the password link), as the kind's registration says; a reply carries its
    own `subject` and `body`, threaded under `in_reply_to`. With a `dedupe_key` (e.g.
    "renewal:<entitlement>:30d", or the outbox's own for a once-per-subject kind) the email is owed
    at most once for ever: if a row with that key exists, or another process inserts it at the same
    moment, nothing is added and None is returned. `sent_by` ("Ana from our support team") marks an
    email a person chose to send, with `send_reason` in the customer's words; the email then says who
    and why. `facts` are what the email states as decided now (e.g. an extension's days and new end).
    Raises UnknownEmailKind for a kind no app registered, ValueError for the wrong kind of subject.
    """
    spec = kinds.get(kind)
    _check_about(spec, about=about, user=user)
    fields = {"about": about, "user": user, "kind": kind, "next_attempt_at": timezone.now(),
              "recipient": recipient or (user.email if user is not None else about.email),
              "subject": subject[:300], "body": body, "in_reply_to": in_reply_to[:998],
              "sent_by": sent_by[:200], "send_reason": send_reason[:500], "facts": facts or {}}
    if dedupe_key is None:
        # A once-per-subject kind gets its key from OutboundEmail.save(); its callers check under their
        # own lock that it is not owed yet, so a second one is a bug that rolls their transaction back.
        email = OutboundEmail.objects.create(**fields)
    else:
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction survives a duplicate
                email = OutboundEmail.objects.create(**fields, dedupe_key=dedupe_key)
        except IntegrityError:
            if OutboundEmail.objects.filter(dedupe_key=dedupe_key).exists():
                return None
            raise
    enqueue_after_commit(SEND_TASK, email.id, task_name=f"email-{email.id}")
    return email


def outbound_email_record_sent(*, kind: str, about, recipient: str, sent_at, esp_message_id: str = "",
                               followed_up: bool = False) -> OutboundEmail:
    """Record an email as already sent without sending it (e.g. another record says it went: billing
    finds its note on the order's PaymentIntent after a database restore)."""
    spec = kinds.get(kind)
    _check_about(spec, about=about, user=None)
    now = timezone.now()
    return OutboundEmail.objects.create(
        about=about, kind=kind, recipient=recipient, status=OutboundEmail.Status.SENT, sent_at=sent_at,
        esp_message_id=esp_message_id[:255], followed_up_at=now if followed_up else None)


def _check_about(spec: kinds.EmailKind, *, about, user):
    if about is not None and user is not None:
        raise ValueError("An email is about a thing or an account, never both.")
    if spec.about == "object" and about is None:
        raise ValueError(f"A {spec.name} email is about something: give `about`.")
    if spec.about == "account" and user is None:
        raise ValueError(f"A {spec.name} email is about an account: give `user`.")
    if spec.about == "optional" and user is not None:
        raise ValueError(f"A {spec.name} email is about a thing or nothing, not an account.")


def outbound_email_requeue(*, email: OutboundEmail) -> bool:
    """Send a sent (or given-up) email again: the same row, so the same Message-ID. The caller holds
    the row locked (select_for_update) in its transaction; False if it is already on its way."""
    if email.status in OutboundEmail.STILL_TRYING:
        return False
    email.status = OutboundEmail.Status.PENDING
    email.attempts = 0
    email.next_attempt_at = timezone.now()
    email.last_error = ""
    email.save(update_fields=["status", "attempts", "next_attempt_at", "last_error"])
    enqueue_after_commit(SEND_TASK, email.id, task_name=f"email-{email.id}-resend")
    return True


# Seconds to wait before each retry of a failed send: seconds, then minutes, then every ten minutes
# until a day has passed; then we give up and support is told (docs/decisions/0028-alerts-per-channel-and-
# email-retries.md).
# An outage delays an email by at most ten minutes past its end; the dispatcher runs once a minute.
EMAIL_RETRY_DELAYS = [10, 30, 60, 120, 300] + [600] * 144
# A send that has not finished after this long was interrupted (worker killed mid-call).
EMAIL_CLAIM_TIMEOUT = timedelta(minutes=5)


def outbound_email_send(*, email_id: int) -> OutboundEmail | None:
    """Send one owed email at most once; failures are retried with backoff, then flagged.

    The row is claimed (pending -> sending, one conditional UPDATE) before the ESP is called and
    marked sent after. If the process dies in between we cannot know whether the ESP accepted
    it, so the dispatcher marks it `uncertain` for a person to check rather than risk a second
    copy (docs/decisions/0003-outbox-at-most-once.md).
    """
    # The claim is one conditional UPDATE, its own transaction: of two workers given the same row,
    # PostgreSQL lets one change `pending` to `sending` and the other finds it no longer pending.
    # It returns the row it claimed (RETURNING), so the row is not read again.
    email = _claim(email_id)
    if email is None:
        return None  # sent, being sent, or given up: nothing to do
    # Ours now: nobody else changes a `sending` row but the dispatcher, after EMAIL_CLAIM_TIMEOUT.

    try:
        _load_about(email)
        spec = kinds.get(email.kind)
        message = spec.build(email)
        message.send()
    except Exception as exc:  # the ESP, the network or a template: all retried the same way
        logger.warning("Email %s (%s) attempt %s failed: %s", email.id, email.kind, email.attempts, exc)
        with transaction.atomic():
            email = OutboundEmail.objects.select_for_update().get(pk=email_id)
            email.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            if email.attempts > len(EMAIL_RETRY_DELAYS):
                email.status = OutboundEmail.Status.FAILED
            else:
                email.status = OutboundEmail.Status.PENDING
                email.next_attempt_at = timezone.now() + timedelta(
                    seconds=EMAIL_RETRY_DELAYS[email.attempts - 1])
            email.save(update_fields=["last_error", "status", "next_attempt_at"])
        return email
    failpoint("outbox.after_esp_accepted")

    anymail_status = getattr(message, "anymail_status", None)
    with transaction.atomic():
        # The row claimed above, in memory with what the email was built from (its order): the
        # UPDATE below takes the row's lock, and only this worker changes a row while `sending`.
        email.status = OutboundEmail.Status.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        if anymail_status is not None:
            message_id = anymail_status.message_id
            email.esp_message_id = "" if message_id is None else str(message_id)
            email.esp_status = ",".join(sorted(anymail_status.status or []))
        email.save(update_fields=["status", "sent_at", "last_error", "esp_message_id", "esp_status"])
        if spec.on_sent is not None:
            spec.on_sent(email)
    if spec.after_sent is not None and email.followed_up_at is None:
        _follow_up(email, spec)
    return email


def _claim(email_id: int) -> OutboundEmail | None:
    """pending -> sending, one more attempt: the claimed row, or None if it was not pending."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # The model's columns by name, not `*`: a prepared statement whose result gains a column (a
    # migration run while this process was up) would fail with "cached plan must not change result type".
    columns = ", ".join(connection.ops.quote_name(f.column) for f in OutboundEmail._meta.concrete_fields)
    claimed = OutboundEmail.objects.raw(
        "UPDATE outbox_outboundemail SET status = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608
        f"WHERE id = %s AND status = %s RETURNING {columns}",  # the model's own column names, quoted
        [OutboundEmail.Status.SENDING, now, email_id, OutboundEmail.Status.PENDING])
    return next(iter(claimed), None)


def _load_about(email: OutboundEmail) -> None:
    """Read what the email is about with the rows it points to (an order's plan and account) in one
    query, instead of one query each when the email's build reads them."""
    if email.about_type_id is None or email.about_id is None:
        return
    model = ContentType.objects.get_for_id(email.about_type_id).model_class()  # cached after the first
    if model is None:
        return
    related = [f.name for f in model._meta.concrete_fields if f.is_relation]
    about = by_unique_key(model._base_manager.select_related(*related).filter(pk=email.about_id))
    if about is not None:
        email.about = about


def _follow_up(email: OutboundEmail, spec: kinds.EmailKind) -> bool:
    """The kind's step after sending, outside any transaction; recorded once it succeeds."""
    if not spec.after_sent(email):
        return False
    email.followed_up_at = timezone.now()
    OutboundEmail.objects.filter(pk=email.pk).update(followed_up_at=email.followed_up_at)
    return True


def outbound_emails_follow_up_due(*, limit: int = 20) -> int:
    """Finish the steps after sending that did not finish (e.g. Stripe was down, the worker killed)."""
    due = (OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT, followed_up_at__isnull=True,
                                        kind__in=kinds.with_follow_up(),
                                        sent_at__lt=timezone.now() - timedelta(minutes=1))
           .order_by("sent_at")[:limit])
    done = 0
    for email in due:
        if not _follow_up(email, kinds.get(email.kind)):
            break  # what it needs is down: the next run tries again
        done += 1
    return done


def outbound_email_dispatch_due(*, limit: int = 100) -> dict:
    """Periodic safety net for the outbox: send what is due, flag interrupted sends, finish follow-ups."""
    now = timezone.now()
    stuck = OutboundEmail.objects.filter(status=OutboundEmail.Status.SENDING,
                                         claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT)
    uncertain = stuck.update(status=OutboundEmail.Status.UNCERTAIN,
                             last_error="Sending was interrupted; check with the ESP before resending")
    due = list(OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    sent = 0
    for email_id in due:
        result = outbound_email_send(email_id=email_id)
        sent += bool(result and result.status == OutboundEmail.Status.SENT)
    return {"due": len(due), "sent": sent, "uncertain": uncertain, "followed_up": outbound_emails_follow_up_due()}


UNDELIVERED = {"bounced", "rejected", "failed", "complained"}


def outbound_email_record_esp_event(*, message_id: str, event_type: str, description: str = "") -> int:
    """What the ESP later tells us about a sent email (delivered, bounced, …); returns rows updated."""
    if not message_id:
        return 0
    email = OutboundEmail.objects.filter(esp_message_id=message_id).first()
    if email is None:
        return 0
    OutboundEmail.objects.filter(pk=email.pk).update(esp_status=event_type)
    spec = kinds.find(email.kind)
    if event_type in UNDELIVERED and spec is not None and spec.on_undelivered is not None:
        spec.on_undelivered(email, event_type=event_type, description=description)
    return 1
