"""Two people, one inbox: the team's feed, what a colleague did, the case's version (so an action
on a stale page is refused), who else has the case open, who claimed it, and the first-response wait."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.timesince import timesince

from billing.models import OrderEvent
from support.models import ActionReceipt, CaseClaim, CaseView
from support.selectors.common import _when
from support.selectors.timeline import event_words

# --- The team's feed: the console's recent actions, each said of the person who did it ------------

# Claims logged before the feed spoke in the third person ("You are on this case", as the person
# who pressed was told), read as they should be by everyone else.
_FEED_SECOND_PERSON = [
    (re.compile(r"You are on this case \(taken from (.{1,200}?)\)\.?"), r"took the case over from \1"),
    (re.compile(r"You are on this case\.?"), "took the case"),
    (re.compile(r"You are no longer on this case\.?"), "left the case"),
]
_FEED_VERBS = ("took the case", "left the case")


def team_feed(*, limit: int = 15) -> list[dict]:
    """The whole team's recent console actions (the admin log the console's buttons write), newest
    first, each as a line about the person: "Ana Ruiz took the case", "Sam Lee · Marked answered"."""
    lines = []
    for entry in LogEntry.objects.select_related("user", "content_type").order_by("-action_time")[:limit]:
        message = entry.get_change_message()
        for pattern, third_person in _FEED_SECOND_PERSON:
            if pattern.fullmatch(message):
                message = pattern.sub(third_person, message)
                break
        name = _person(entry.user)
        text = f"{name} {message}" if message.startswith(_FEED_VERBS) else f"{name} · {message}"
        lines.append({"entry": entry, "text": text})
    return lines


# --- Two people, one inbox: what a colleague did, the case's version, the wait ------------------

# A colleague who viewed, acted on or replied to a case this recently is named on it.
COLLEAGUE_WINDOW_MINUTES = 10
# What a console action's receipt says a person did.
ACTION_WORDS = {"refund": "refunded money", "accept": "accepted what Stripe took", "extend": "extended access",
                "note": "added a note",
                "signin_link": "sent a sign-in link", "reply": "sent a reply"}


def _person(user) -> str:
    return user.get_full_name() if user is not None else "someone"


def _actor_name(event: OrderEvent) -> str:
    """The staff member who acted, by name; any other actor (webhook, sweep) as it is."""
    if event.actor_user_id is not None:
        return _person(event.actor_user)
    return f"the {event.actor}" if event.actor in ("webhook", "sweep", "checkout") else event.actor


def _parse_version(seen: str) -> tuple[int, int] | None:
    first, _, second = (seen or "").partition(".")
    return (int(first), int(second)) if first.isdigit() and second.isdigit() else None


def _order_changes_qs(order_id: int):
    # What a person acting on the case must have seen: state changes and what support did. The
    # outbox's own "Email sent" lines and the like do not make a page out of date.
    events = OrderEvent.objects.filter(Q(order_id=order_id) & (~Q(to_state="") | Q(actor_user__isnull=False)))
    return events, ActionReceipt.objects.filter(order_id=order_id)


def order_case_version(order_id: int) -> str:
    """What an order's case page was showing, carried by its forms: "<last event>.<last receipt>"."""
    events, receipts = _order_changes_qs(order_id)
    return (f"{events.aggregate(m=Max('id'))['m'] or 0}."
            f"{receipts.aggregate(m=Max('id'))['m'] or 0}")


def order_case_changes(order_id: int, *, seen: str, user, except_key=None) -> list[str]:
    """What changed on the case since the page showing `seen` was loaded, newest first, in words."""
    version = _parse_version(seen)
    if version is None:
        return ["the page was loaded by an older console (reload it)"]
    events, receipts = _order_changes_qs(order_id)
    changes, people = [], set()
    # A console button's receipt says best what a colleague did; other events (the webhook, the
    # sweep, a Recover) by what they recorded.
    for receipt in receipts.filter(id__gt=version[1]).exclude(key=except_key).select_related("user").order_by("-id"):
        people.add(receipt.user_id)
        who = "you (on another page)" if receipt.user_id == user.id else _person(receipt.user)
        changes.append(f"{who} {ACTION_WORDS.get(receipt.action, 'resent an email')} at {_when(receipt.created_at)}")
    for event in (events.filter(id__gt=version[0]).exclude(actor_user_id__in=people).select_related("actor_user")
                  .order_by("-id")[:5]):
        who = "you (on another page)" if event.actor_user_id == user.id else _actor_name(event)
        changes.append(f"{who}: {event_words(event)[:160]} at {_when(event.created_at)}")
    return changes


def inbound_case_version(message) -> str:
    """What a support email's page was showing: "<last reply>.<answered or not>"."""
    last = message.replies.order_by("-id").values_list("id", flat=True).first() or 0
    return f"{last}.{int(message.status == message.Status.ANSWERED)}"


def inbound_case_changes(message, *, seen: str, user) -> list[str]:
    """A second reply must not go out because two people answered the same email at once."""
    version = _parse_version(seen)
    if version is None:
        return ["the page was loaded by an older console (reload it)"]
    changes = []
    for reply in message.replies.filter(id__gt=version[0]).select_related("user").order_by("-id"):
        who = "you (on another page)" if reply.user_id == user.id else _person(reply.user)
        changes.append(f"{who} sent a reply at {_when(reply.created_at)}")
    if not changes and not version[1] and message.status == message.Status.ANSWERED:
        who = "you (on another page)" if message.answered_by_id == user.id else _person(message.answered_by)
        changes.append(f"{who} marked it answered at {_when(message.answered_at)}")
    return changes


def case_colleagues(*, user, order=None, message=None, now: datetime | None = None) -> list[str]:
    """Who else viewed, acted on or replied to this case in the last minutes: said before a
    second reply or refund goes out."""
    now = now or timezone.now()
    since = now - timedelta(minutes=COLLEAGUE_WINDOW_MINUTES)

    def ago(moment):
        return "just now" if now - moment < timedelta(minutes=1) else f"{timesince(moment, now)} ago"

    case = {"order": order} if order is not None else {"message": message}
    lines = []
    if order is not None:
        for event in (order.events.filter(actor_user__isnull=False, created_at__gte=since)
                      .exclude(actor_user=user).select_related("actor_user").order_by("-id")[:5]):
            lines.append(f"{_actor_name(event)}: {event_words(event)[:160]} ({ago(event.created_at)})")
        for note in order.notes.filter(created_at__gte=since).exclude(author=user).select_related("author")[:3]:
            lines.append(f"{_person(note.author)} added a note ({ago(note.created_at)})")
    else:
        for reply in message.replies.filter(created_at__gte=since).exclude(user=user).select_related("user"):
            lines.append(f"{_person(reply.user)} sent a reply ({ago(reply.created_at)})")
        if message.answered_by_id not in (None, user.id) and message.answered_at and message.answered_at >= since:
            lines.append(f"{_person(message.answered_by)} marked it answered ({ago(message.answered_at)})")
    for view in (CaseView.objects.filter(**case, viewed_at__gte=since).exclude(user=user)
                 .select_related("user").order_by("-viewed_at")[:5]):
        lines.append(f"{_person(view.user)} has it open or had it open ({ago(view.viewed_at)})")
    return lines


@dataclass(frozen=True)
class FirstResponse:
    due: datetime
    breached: bool  # the first reply came, or is still coming, after `due`


def first_response(message, *, now: datetime | None = None) -> FirstResponse:
    """When the customer's first reply is due (SUPPORT_FIRST_RESPONSE after they wrote), and
    whether it was (or still is) late."""
    due = message.received_at + settings.SUPPORT_FIRST_RESPONSE
    return FirstResponse(due=due, breached=(message.answered_at or now or timezone.now()) > due)


_CASE_URL_RE = re.compile(r"^/admin/(?:billing/order|support/(inboundmessage))/(\d+)/change/$")


def queue_claims(urls) -> dict[str, str]:
    """"<name> is on it" for the queue's cases, keyed by their console URL (how it names them)."""
    orders, messages = set(), set()
    for url in urls:
        found = _CASE_URL_RE.match(url or "")
        if found:
            (messages if found.group(1) else orders).add(int(found.group(2)))
    claims = {}
    for claim in CaseClaim.objects.filter(Q(order_id__in=orders) | Q(message_id__in=messages)).select_related("user"):
        url = (f"/admin/billing/order/{claim.order_id}/change/" if claim.order_id
               else f"/admin/support/inboundmessage/{claim.message_id}/change/")
        claims[url] = f"{_person(claim.user)} is on it"
    return claims
