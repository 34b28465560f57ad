"""The support timeline says each event from its kind and data, and names the staff member who acted."""

import pytest

from billing.models import OrderEvent
from billing.services import history
from support import selectors, services
from support.selectors.timeline import event_words
from tests.factories import OrderFactory, StaffFactory

pytestmark = pytest.mark.django_db
K = OrderEvent.Kind


def test_the_timeline_names_the_staff_member_who_took_the_case():
    ana = StaffFactory(full_name="Ana Ruiz")
    order = OrderFactory()

    services.case_claim(user=ana, order_id=order.id)

    entries = [(entry.title, entry.detail) for entry in selectors.order_timeline(order) if entry.kind == "event"]
    assert ("Ana Ruiz", "Took the case") in entries


def test_an_event_is_said_from_its_data_whatever_sentence_was_stored():
    order = OrderFactory()
    event = history._record(order, K.REFUND_REQUESTED, actor="system", reason="wording of another day",
                            data={"amount_cents": 5000, "currency": "usd", "full": False, "note": "goodwill"})

    assert event_words(event) == "Partial refund of $50.00 requested: goodwill"


def test_an_event_from_before_kinds_is_said_in_its_stored_sentence():
    order = OrderFactory()
    event = history._record(order, K.LEGACY, actor="system", reason="Something an old version wrote")

    assert event_words(event) == "Something an old version wrote"


def test_an_event_whose_kind_lacks_its_facts_is_said_in_its_stored_sentence():
    order = OrderFactory()
    event = history._record(order, K.REFUND_ACCEPTED, actor="system",
                            reason="Stripe accepted the refund of $249.00 (pending)")

    assert event_words(event) == "Stripe accepted the refund of $249.00 (pending)"


def test_a_resend_is_found_by_its_kind_not_its_sentence():
    order = OrderFactory()
    ana = StaffFactory()
    history._record(order, K.RESEND_ASKED, actor="support:x", user=ana, reason="Reworded one day",
                    data={"email_kind": "confirmation", "recipient": order.email})

    assert order.events.filter(kind=K.RESEND_ASKED, data__email_kind="confirmation", actor_user=ana).exists()
