"""The outbox moves from billing to outbox/ (outbox 0001 and 0002, billing 0017, support 0009): rows
written at billing 0016, as the old code wrote them, are all there afterwards, each about its order, and
the confirmation still cannot be owed twice. Runs the real migrations backwards and forwards once for
the module: the first test's fixture writes the old rows, migrates, and keeps what the new code reads
(each test's database is emptied after it)."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from billing.models import Order
from outbox.models import OutboundEmail
from support.models import Alert, SupportReply

ACCOUNTS = ("accounts", "0005_access_ended_deliveries")
BEFORE = [ACCOUNTS, ("billing", "0016_orderevent_kinds_from_history"), ("support", "0008_alert_sweep_down"),
          ("outbox", None)]
AFTER = [ACCOUNTS, ("billing", "0017_outboundemail_moves_to_outbox"), ("support", "0009_emails_in_the_outbox"),
         ("outbox", "0002_about_any_object")]
SENT_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([target for target in targets if target[1] is not None]).apps


def write_old_rows(apps) -> dict:
    """Emails as billing 0016 stored them, with support's alert and reply pointing at two of them."""
    Plan_, Order_, Email = (apps.get_model("billing", name) for name in ("Plan", "Order", "OutboundEmail"))
    User_ = apps.get_model("accounts", "User")
    Alert_, Reply, Inbound = (apps.get_model("support", name) for name in ("Alert", "SupportReply", "InboundMessage"))
    plan = Plan_.objects.create(code="year-before-the-move", name="One year", amount_cents=24900, duration_months=12)
    order = Order_.objects.create(plan=plan, email="ada@example.com", amount_cents=24900, currency="usd",
                                  reference="BK-AAAA-BBBB")
    ana = User_.objects.create(email="ana@example.com", password="!")
    staff = User_.objects.create(email="staff@backstop.localhost", password="!", is_staff=True)
    rows = {
        "confirmation": Email.objects.create(order=order, kind="confirmation", recipient=order.email, status="sent",
                                             sent_at=SENT_AT, esp_message_id="pm-1", stripe_noted_at=SENT_AT),
        "status_link": Email.objects.create(order=order, kind="status_link", recipient=order.email,
                                            facts={"order_ids": [order.id]}),
        "renewal": Email.objects.create(order=order, kind="renewal_reminder", recipient=order.email,
                                        dedupe_key="renewal:1:30d"),
        "password": Email.objects.create(user=ana, kind="password_reset", recipient=ana.email),
        "reply": Email.objects.create(kind="support_reply", recipient="someone@example.com", subject="Re: hello",
                                      body="Hello", in_reply_to="<m-1@example.com>"),
    }
    Alert_.objects.create(kind="email", key="email:1", order=order, email=rows["confirmation"],
                          summary="confirmation could not be sent")
    message = Inbound.objects.create(message_id="in-1", from_email="someone@example.com", subject="hello")
    Reply.objects.create(message=message, email=rows["reply"], user=staff)
    return {"order": order.id, **{name: row.id for name, row in rows.items()}}


def read_new_rows(ids: dict) -> dict:
    order = Order.objects.get(pk=ids["order"])
    emails = OutboundEmail.objects.in_bulk()
    try:
        with transaction.atomic():
            OutboundEmail.objects.create(about=order, kind="confirmation", recipient=order.email)
        second_confirmation = "accepted"
    except IntegrityError:
        second_confirmation = "refused"
    return {"ids": ids, "emails": emails, "about_order": sorted(order.emails.values_list("id", flat=True)),
            "second_confirmation": second_confirmation,
            "alert_email": Alert.objects.get(key="email:1").email_id,
            "reply_email": SupportReply.objects.get().email_id}


_moved: dict = {}


@pytest.fixture
def moved(transactional_db):
    if not _moved:
        try:
            ids = write_old_rows(migrate(BEFORE))
        finally:
            migrate(AFTER)
            # Whatever happened, the database is left as every other test expects it: every app at its
            # latest migration (those after AFTER's too: billing 0018, support 0010, ...).
            migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        _moved.update(read_new_rows(ids))
    return _moved


def test_every_email_about_the_order_is_there_after_the_move(moved):
    ids = moved["ids"]

    assert moved["about_order"] == sorted(ids[name] for name in ("confirmation", "status_link", "renewal"))
    assert moved["emails"][ids["status_link"]].facts == {"order_ids": [ids["order"]]}


def test_a_sent_confirmation_keeps_when_it_went_and_its_note_in_stripe(moved):
    email = moved["emails"][moved["ids"]["confirmation"]]

    assert (email.status, email.sent_at, email.esp_message_id, email.followed_up_at) == (
        "sent", SENT_AT, "pm-1", SENT_AT)


def test_the_confirmation_gets_the_key_that_refuses_a_second_one(moved):
    email = moved["emails"][moved["ids"]["confirmation"]]

    assert email.dedupe_key == f"billing.order:{moved['ids']['order']}:confirmation"
    assert moved["second_confirmation"] == "refused"


def test_keys_the_old_code_gave_and_emails_that_may_repeat_keep_theirs(moved):
    emails, ids = moved["emails"], moved["ids"]

    assert (emails[ids["renewal"]].dedupe_key, emails[ids["status_link"]].dedupe_key) == ("renewal:1:30d", None)


def test_the_password_link_stays_about_its_account(moved):
    email = moved["emails"][moved["ids"]["password"]]

    assert (email.user_id is not None, email.about_type_id, email.about_id) == (True, None, None)


def test_a_reply_to_someone_with_no_order_stays_about_nothing(moved):
    email = moved["emails"][moved["ids"]["reply"]]

    assert (email.about_id, email.user_id, email.in_reply_to) == (None, None, "<m-1@example.com>")


def test_supports_alerts_and_replies_still_point_at_their_emails(moved):
    assert (moved["alert_email"], moved["reply_email"]) == (moved["ids"]["confirmation"], moved["ids"]["reply"])
