"""Migration 0016 gives the events written before kinds existed their kind and their staff user.

The rows below are written as the old code wrote them (its exact sentences, no kind, support's actor
as `support:<email>`); the migration's function then runs over them as `migrate` would.
"""

import functools
import importlib

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from billing.models import OrderEvent, OrderState
from tests.factories import OrderFactory, StaffFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("billing.migrations.0016_orderevent_kinds_from_history")


@functools.cache  # rendering the historical models takes seconds: once per run
def apps_at_0016():
    """The models as the migration sees them (billing's emails were still billing's then)."""
    loader = MigrationLoader(connection)
    return loader.project_state(("billing", "0016_orderevent_kinds_from_history")).apps
S = OrderState

# (actor, from_state, to_state, the old sentence, the kind it must get)
OLD_ROWS = [
    ("checkout", "", S.PENDING, "Order created for $249.00", "created"),
    ("checkout", "", S.PENDING, "Renewal order created for $249.00", "created"),
    ("sweep", "", S.PENDING, "Order recreated from Stripe's records: Stripe holds $249.00 for BK-1 but our "
                             "database had no such order", "recreated"),
    ("checkout", "", "", "Payment set up with Stripe", "payment_set_up"),
    ("sweep", "", "", "Linked to its Stripe payment, found by the sweep", "payment_linked"),
    ("webhook", S.PENDING, S.PAID, "Stripe confirmed the payment (payment_intent.succeeded)", "state_changed"),
    ("webhook", S.PAID, S.ACTIVE, "Access granted until 2027-12-05 (payment_intent.succeeded)", "access_granted"),
    ("webhook", S.PAID, S.ACTIVE, "Access granted from 2027-12-05 (after the plan already paid for) until "
                                  "2028-12-05", "access_granted"),
    ("webhook", "", "", "Money held without service: customer told, automatic refund at 2026-12-08 14:00 UTC "
                        "unless the order is finished first", "money_held"),
    ("support:ann@backstop.localhost", S.ACTIVE, S.REFUND_PENDING, "Refund of $249.00 requested: asked by email",
     "refund_requested"),
    ("support:ann@backstop.localhost", "", "", "Partial refund of $50.00 requested: goodwill", "refund_requested"),
    ("support:ann@backstop.localhost", "", "", "Stripe did not confirm the refund of $249.00: timeout",
     "refund_failed"),
    ("support:ann@backstop.localhost", "", "", "Stripe accepted the refund of $249.00 (pending)", "refund_accepted"),
    ("webhook", "", "", "Stripe shows $50.00 refunded in total (charge.refunded)", "refund_recorded"),
    ("webhook", S.REFUND_PENDING, S.REFUNDED, "Stripe shows the payment fully refunded (charge.refunded)",
     "state_changed"),
    ("support:ann@backstop.localhost", S.NEEDS_REVIEW, S.PAID,
     "Accepted $248.00 as Stripe took it for the $249.00 order: customer agreed", "accepted_amount"),
    ("support:ann@backstop.localhost", S.PENDING, S.CANCELED,
     "Canceled before any payment was started (customer asked)", "payment_canceled"),
    ("sweep", S.PENDING, S.CANCELED, "No payment was started within a day; nothing was charged", "payment_canceled"),
    ("system", "", "", "Time moved up after an earlier payment was refunded: now 2026-12-05 to 2027-12-05",
     "time_moved"),
    ("support:ann@backstop.localhost", "", "", "Access extended by 7 days: paid time now ends 2027-12-12 "
                                               "(was 2027-12-05): outage", "access_extended"),
    ("system", "", "", "Email sent: Order confirmation to buyer@example.com", "email_sent"),
    ("system", "", "", "Email bounced: Order confirmation to buyer@example.com mailbox full", "email_bounced"),
    ("system", "", "", "Order confirmation already sent on 2026-12-01 by Stripe's record of it; not sent again "
                       "(our database was restored from before)", "email_already_sent"),
    ("support:ann@backstop.localhost", "", "", "Asked to resend: Order confirmation to buyer@example.com",
     "resend_asked"),
    ("support:ann@backstop.localhost", "", "", "Sign-in link sent to buyer@example.com: as you asked.",
     "signin_link_sent"),
    ("support:ann@backstop.localhost", "", "", "Replied to the customer's email: Re: my order", "replied"),
    ("support:ann@backstop.localhost", "", "", "Took the case, from Bob Jones", "case_taken"),
    ("system", "", "", "Team alerted: BK-1: refund of $249.00 not confirmed by Stripe", "team_alerted"),
    ("customer", "", "", "Signed in to their account with a sign-in link", "signed_in"),
    ("customer", "", "", "Turned off renewal reminders (the email's link)", "reminders_off"),
    ("system", "", "", "Something an old version wrote that nothing recognises", "legacy"),
]


def _old_row(order, actor, from_state, to_state, reason):
    return OrderEvent.objects.create(order=order, kind="legacy", actor=actor, from_state=from_state,
                                     to_state=to_state, reason=reason)


def test_each_old_sentence_gets_its_kind():
    order = OrderFactory()
    rows = [(_old_row(order, actor, was, now, reason), kind) for actor, was, now, reason, kind in OLD_ROWS]

    migration.forwards(apps_at_0016(), None)

    kinds = dict(OrderEvent.objects.filter(order=order).values_list("id", "kind"))
    assert [(row.reason, kinds[row.id]) for row, _ in rows] == [(row.reason, kind) for row, kind in rows]


def test_a_support_actor_becomes_the_staff_user_it_names():
    ann = StaffFactory(email="ann@backstop.localhost")
    order = OrderFactory()
    event = _old_row(order, "support:ann@backstop.localhost", "", "", "Took the case")

    migration.forwards(apps_at_0016(), None)

    event.refresh_from_db()
    assert event.actor_user == ann


def test_a_support_actor_naming_nobody_on_staff_keeps_no_user():
    order = OrderFactory()
    event = _old_row(order, "support:gone@backstop.localhost", "", "", "Took the case")

    migration.forwards(apps_at_0016(), None)

    event.refresh_from_db()
    assert (event.kind, event.actor_user) == ("case_taken", None)


def test_rows_that_name_no_person_keep_no_user():
    order = OrderFactory()
    event = _old_row(order, "webhook", S.PENDING, S.PAID, "Stripe confirmed the payment")

    migration.forwards(apps_at_0016(), None)

    event.refresh_from_db()
    assert event.actor_user is None


def test_an_old_resend_keeps_which_email_it_was_as_data():
    order = OrderFactory()
    event = _old_row(order, "support:ann@backstop.localhost", "", "",
                     "Asked to resend: Order confirmation to buyer@example.com")

    migration.forwards(apps_at_0016(), None)

    event.refresh_from_db()
    assert event.data == {"email_kind": "confirmation", "recipient": "buyer@example.com"}
