"""The kinds of email the outbox sends, as the apps above it register them in their AppConfig.ready().

The outbox knows how to owe, claim, send, retry and record an email; what an email of a kind says,
and what happens around it (a line on an order's timeline, a note at Stripe), belongs to the app that
sends it. Each app registers its kinds when Django starts, the way each declares its schedules, so the
outbox imports none of them (docs/decisions/0022-outbox-beneath-the-apps.md).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


class UnknownEmailKind(LookupError):
    """No app registered this kind: nothing would know how to write the email."""


@dataclass(frozen=True)
class EmailKind:
    name: str  # stored in OutboundEmail.kind
    label: str  # what the console and the timeline call it
    # The message for one row: a function of the OutboundEmail returning an EmailMultiAlternatives.
    build: Callable
    # At most one email of this kind per thing it is about (an order's confirmation): the outbox
    # gives each such row the unique dedupe_key "<app.model>:<id>:<kind>", so the database refuses a
    # second one.
    once_per_subject: bool = False
    # What a row of this kind is about: "object" (e.g. an order), "account" (a user, e.g. the
    # password link) or "optional" (an object or nothing, e.g. a reply to someone with no order).
    about: str = "object"
    # Called in the transaction that marks the row sent (e.g. a line on the order's timeline).
    on_sent: Callable | None = None
    # Called after that transaction, outside it (e.g. a call to Stripe): returns True once done;
    # False leaves it for the dispatcher to call again (OutboundEmail.followed_up_at).
    after_sent: Callable | None = None
    # Called when the ESP reports the email bounced, was rejected or complained about:
    # on_undelivered(email, event_type=..., description=...).
    on_undelivered: Callable | None = None

    def __post_init__(self):
        if self.about not in ("object", "account", "optional"):
            raise ImproperlyConfigured(f"Email kind {self.name}: about must be object, account or optional.")
        if self.once_per_subject and self.about != "object":
            raise ImproperlyConfigured(f"Email kind {self.name}: once per subject needs a subject (about=object).")


_registry: dict[str, EmailKind] = {}


def register(*kinds: EmailKind) -> None:
    """Make these kinds known; an app calls it from its AppConfig.ready()."""
    for kind in kinds:
        known = _registry.get(kind.name)
        if known is not None and known != kind:
            raise ImproperlyConfigured(f"Email kind {kind.name!r} is registered twice, differently.")
        _registry[kind.name] = kind


def get(name: str) -> EmailKind:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownEmailKind(f"No app registered the email kind {name!r} (outbox.kinds.register in its "
                               "AppConfig.ready()).") from None


def find(name: str) -> EmailKind | None:
    return _registry.get(name)


def label(name: str) -> str:
    """The kind's label; the bare name for a kind no app registers (e.g. an old row's)."""
    kind = _registry.get(name)
    return kind.label if kind is not None else name


def once_per_subject() -> list[str]:
    return sorted(name for name, kind in _registry.items() if kind.once_per_subject)


def with_follow_up() -> list[str]:
    return sorted(name for name, kind in _registry.items() if kind.after_sent is not None)


def registered() -> list[EmailKind]:
    return sorted(_registry.values(), key=lambda kind: kind.name)
