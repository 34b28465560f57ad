"""Issue 15, items 4 and 5: reply and resolve from the console, and two colleagues on one case."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import Entitlement
from billing.models import OrderEvent
from outbox.models import OutboundEmail
from support import selectors, services
from support.models import CaseClaim, CaseView, InboundMessage
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long pass phrase 42"


def staff_user(email="ana@backstop.localhost", name="Ana Ruiz", refunds=False):
    from django.contrib.auth import get_user_model

    call_command("support_staff", email, password=PASSWORD, name=name, refunds=refunds, stdout=StringIO())
    return get_user_model().objects.get(email=email)


@pytest.fixture
def ana(client):
    user = staff_user()
    client.force_login(user)
    return client


@pytest.fixture
def ben():
    from django.test import Client

    client = Client()
    client.force_login(staff_user("ben@backstop.localhost", "Ben Okafor"))
    return client


def support_email(*, order=None, sender="ada@example.com", subject="Charged but no account", verified=True,
                  rfc_message_id="<CAF=abc123@mail.example.com>"):
    message = services.inbound_message_receive(
        message_id=str(uuid.uuid4()), from_email=sender, from_name="Ada Lovelace", subject=subject,
        text="Hi, I paid yesterday and never got anything.", sender_authenticated=verified,
        rfc_message_id=rfc_message_id)
    if order is not None:
        message.orders.add(order)
    InboundMessage.objects.filter(pk=message.pk).update(
        draft_subject=services.reply_subject(subject), draft_body="Hello Ada,\n\nWe're on it.\n\nAna")
    message.refresh_from_db()
    return message


def page_url(message, action=None):
    if action is None:
        return reverse("admin:support_inboundmessage_change", args=[message.pk])
    return reverse(f"admin:support_inboundmessage_{action}", args=[message.pk])


def reply_form(client, message, **fields):
    page = client.get(page_url(message))
    context = page.context
    return {"subject": context["reply"]["subject"], "body": context["reply"]["body"],
            "key": str(context["action_key"]), "seen": context["case_version"], **fields}


def send(client, message, form, capture):
    with capture(execute=True):
        return client.post(page_url(message, "reply"), form)


# --- Reply and resolve -----------------------------------------------------------------------


def test_mark_answered_is_one_button_on_the_message_page(ana):
    message = support_email()

    assert 'id="inbound-mark-answered"' in ana.get(page_url(message)).content.decode()
    ana.post(page_url(message, "answered"))

    message.refresh_from_db()
    assert message.status == InboundMessage.Status.ANSWERED
    assert message.answered_by.email == "ana@backstop.localhost"


def test_the_draft_is_an_editable_subject_and_body_with_a_send_button(ana):
    message = support_email()

    page = ana.get(page_url(message)).content.decode()

    assert 'name="subject" id="reply-subject" value="Re: Charged but no account"' in page
    assert '<textarea name="body" id="reply-body"' in page
    assert "readonly" not in page.split('id="reply-body"')[1].split(">")[0]
    assert 'id="reply-send"' in page


def test_send_reply_sends_the_edited_words_threaded_to_the_sender_and_marks_it_answered(
        ana, mailoutbox, django_capture_on_commit_callbacks):
    order = OrderFactory(email="ada@example.com")
    message = support_email(order=order)
    form = reply_form(ana, message, body="Hello Ada,\n\nYour account is ready now.\n\nAna")

    send(ana, message, form, django_capture_on_commit_callbacks)

    [sent] = mailoutbox
    assert sent.to == ["ada@example.com"]
    assert sent.subject == "Re: Charged but no account"
    assert sent.body == "Hello Ada,\n\nYour account is ready now.\n\nAna"
    assert sent.extra_headers["In-Reply-To"] == "<CAF=abc123@mail.example.com>"
    assert sent.extra_headers["References"] == "<CAF=abc123@mail.example.com>"
    email = OutboundEmail.objects.get(kind="support_reply")
    assert (email.status, email.about) == (OutboundEmail.Status.SENT, order)
    message.refresh_from_db()
    assert message.status == InboundMessage.Status.ANSWERED
    assert message.answered_by.email == "ana@backstop.localhost"


def test_a_sent_reply_is_on_the_orders_timeline_with_who_sent_it(ana, django_capture_on_commit_callbacks):
    order = OrderFactory(email="ada@example.com")
    message = support_email(order=order)

    send(ana, message, reply_form(ana, message), django_capture_on_commit_callbacks)

    assert order.events.filter(actor="support:ana@backstop.localhost",
                               reason__startswith="Replied to the customer's email").exists()
    titles = [entry.title for entry in selectors.order_timeline(order)]
    assert "Email: Reply from support to ada@example.com" in titles


def test_a_reply_to_a_re_subject_says_re_once(ana, mailoutbox, django_capture_on_commit_callbacks):
    message = support_email(subject="RE: Re: my order")

    send(ana, message, reply_form(ana, message), django_capture_on_commit_callbacks)

    assert mailoutbox[0].subject == "Re: my order"


def test_a_double_clicked_send_reply_sends_one_email(ana, mailoutbox, django_capture_on_commit_callbacks):
    message = support_email()
    form = reply_form(ana, message)

    send(ana, message, form, django_capture_on_commit_callbacks)
    send(ana, message, form, django_capture_on_commit_callbacks)

    assert len(mailoutbox) == 1
    assert message.replies.count() == 1


def test_a_reply_to_someone_with_no_order_still_goes_out(ana, mailoutbox, django_capture_on_commit_callbacks):
    message = support_email(sender="someone@example.net")

    send(ana, message, reply_form(ana, message), django_capture_on_commit_callbacks)

    assert mailoutbox[0].to == ["someone@example.net"]
    assert OutboundEmail.objects.get(kind="support_reply").about is None


def test_a_reply_to_an_unverified_sender_is_about_no_order(ana, django_capture_on_commit_callbacks):
    order = OrderFactory(email="ada@example.com")
    message = support_email(order=order, verified=False)

    send(ana, message, reply_form(ana, message), django_capture_on_commit_callbacks)

    assert OutboundEmail.objects.get(kind="support_reply").about is None
    assert not order.events.filter(reason__startswith="Replied").exists()


def test_a_second_reply_after_a_colleague_answered_is_refused_and_keeps_the_words(
        ana, ben, mailoutbox, django_capture_on_commit_callbacks):
    message = support_email()
    anas_form = reply_form(ana, message, body="Ana's words")
    send(ben, message, reply_form(ben, message), django_capture_on_commit_callbacks)

    response = send(ana, message, anas_form, django_capture_on_commit_callbacks)

    page = response.content.decode()
    assert len(mailoutbox) == 1
    assert "Nothing was sent" in page
    assert "Ben Okafor sent a reply" in page
    assert "Ana&#x27;s words" in page


def test_a_reply_after_reading_the_colleagues_reply_is_sent_when_pressed_again(
        ana, ben, mailoutbox, django_capture_on_commit_callbacks):
    message = support_email()
    send(ben, message, reply_form(ben, message), django_capture_on_commit_callbacks)

    send(ana, message, reply_form(ana, message, body="One more thing"), django_capture_on_commit_callbacks)

    assert [m.body for m in mailoutbox][-1] == "One more thing"


def test_a_person_without_the_reply_right_cannot_send(client, django_capture_on_commit_callbacks):
    from tests.factories import StaffFactory

    viewer = StaffFactory()
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_inboundmessage"))
    client.force_login(viewer)
    message = support_email()

    response = send(client, message, {"subject": "Re: x", "body": "x", "key": str(uuid.uuid4()), "seen": "0.0"},
                    django_capture_on_commit_callbacks)

    assert response.status_code == 403
    assert not OutboundEmail.objects.exists()


def test_the_inbound_webhook_keeps_the_emails_own_message_id_for_threading(client):
    import base64
    import json

    payload = {"From": "ada@example.com", "FromFull": {"Email": "ada@example.com", "Name": "Ada"},
               "To": "support@backstop.localhost", "Subject": "Help", "MessageID": "postmark-uuid-1",
               "TextBody": "Hi", "Headers": [{"Name": "Message-ID", "Value": "<CAF=xyz@mail.example.com>"}],
               "Date": "Thu, 26 Nov 2026 14:05:32 +0000"}
    auth = base64.b64encode(b"esp:hook-secret").decode()
    client.post(reverse("anymail:postmark_inbound_webhook"), data=json.dumps(payload),
                content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}")

    message = InboundMessage.objects.get()
    assert message.message_id == "postmark-uuid-1"
    assert message.rfc_message_id == "<CAF=xyz@mail.example.com>"


# --- Two people at once ------------------------------------------------------------------------


def test_claiming_a_message_shows_who_is_on_it_on_the_page_and_in_the_queue(ana):
    message = support_email()

    ana.post(page_url(message, "claim"))

    assert "Ana Ruiz is on it" in ana.get(page_url(message)).content.decode()
    assert "Ana Ruiz is on it" in ana.get(reverse("admin:index")).content.decode()


def test_claiming_an_order_case_shows_who_is_on_it_and_a_colleague_can_take_it_over(ana, ben):
    order = OrderFactory()

    ana.post(reverse("admin:billing_order_claim", args=[order.pk]))
    ben.post(reverse("admin:billing_order_claim", args=[order.pk]))

    assert "Ben Okafor is on it" in ana.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()
    assert order.events.filter(actor="support:ben@backstop.localhost", reason="Took the case, from Ana Ruiz").exists()


def test_the_holder_can_let_go_of_a_case(ana):
    message = support_email()
    ana.post(page_url(message, "claim"))

    ana.post(page_url(message, "claim"), {"release": "1"})

    assert not CaseClaim.objects.exists()


def test_a_colleague_who_has_the_case_open_is_named_on_it(ana, ben):
    order = OrderFactory()
    ben.get(reverse("admin:billing_order_change", args=[order.pk]))

    page = ana.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert 'id="case-colleagues"' in page
    assert "Ben Okafor has it open or had it open (just now)" in page


def test_what_a_colleague_did_on_an_order_in_the_last_minutes_is_named_on_it(ana, ben):
    order = active_with_access()
    context = ben.get(reverse("admin:billing_order_change", args=[order.pk])).context
    ben.post(reverse("admin:billing_order_extend", args=[order.pk]), {
        "key": str(context["action_key"]), "seen": context["case_version"], "days": "30", "reason": "Outage"})

    page = ana.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert "Ben Okafor: Access extended by 30 days" in page


def test_a_colleague_seen_more_than_ten_minutes_ago_is_not_named(ana, ben):
    order = OrderFactory()
    ben.get(reverse("admin:billing_order_change", args=[order.pk]))
    CaseView.objects.update(viewed_at=timezone.now() - timedelta(minutes=11))
    page = ana.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()

    assert 'id="case-colleagues"' not in page


def test_a_colleagues_reply_is_named_on_the_message(ana, ben, django_capture_on_commit_callbacks):
    message = support_email()
    send(ben, message, reply_form(ben, message), django_capture_on_commit_callbacks)

    page = ana.get(page_url(message)).content.decode()

    assert "Ben Okafor sent a reply (just now)" in page
    assert "Ben Okafor marked it answered" in page


def test_my_own_views_warn_nobody_and_a_view_is_written_at_most_once_a_minute(ana):
    order = OrderFactory()
    user = staff_user()
    services.case_view_record(user=user, order_id=order.id)
    first = CaseView.objects.get().viewed_at

    services.case_view_record(user=user, order_id=order.id, now=first + timedelta(seconds=30))
    assert CaseView.objects.get().viewed_at == first
    services.case_view_record(user=user, order_id=order.id, now=first + timedelta(seconds=61))
    assert CaseView.objects.get().viewed_at == first + timedelta(seconds=61)
    assert selectors.case_colleagues(user=user, order=order) == []


def active_with_access():
    from accounts.models import User

    customer = User.objects.create_user(email="ada@example.com", password=None)
    order = OrderFactory(email="ada@example.com", user=customer, state="active", paid_at=timezone.now())
    Entitlement.objects.create(user=customer, order=order, plan=order.plan, starts_at=timezone.now(),
                               ends_at=timezone.now() + timedelta(days=365))
    return order


def test_two_colleagues_pressing_extend_on_their_own_page_loads_extend_once(ana, ben):
    order = active_with_access()
    before = Entitlement.objects.get(order=order).ends_at
    url = reverse("admin:billing_order_extend", args=[order.pk])
    forms = []
    for client in (ana, ben):
        context = client.get(reverse("admin:billing_order_change", args=[order.pk])).context
        forms.append({"key": str(context["action_key"]), "seen": context["case_version"], "days": "30",
                      "reason": "Outage"})

    ana.post(url, forms[0])
    response = ben.post(url, forms[1], follow=True)

    assert Entitlement.objects.get(order=order).ends_at == before + timedelta(days=30)
    assert "Nothing was done: since you opened this case, Ana Ruiz extended access at" in response.content.decode()


def test_a_refund_after_a_colleague_acted_on_the_case_is_refused_before_stripe_is_asked():
    order = active_with_access()
    ana, ben = staff_user(refunds=True), staff_user("ben@backstop.localhost", "Ben Okafor", refunds=True)
    seen = selectors.order_case_version(order.id)
    services.entitlement_extend(order_id=order.id, user=ana, days=7, reason="Outage", key=uuid.uuid4(), seen=seen)

    with pytest.raises(services.CaseChanged, match="Ana Ruiz extended access"):
        services.order_refund_by_support(order_id=order.id, user=ben, key=uuid.uuid4(), reason="asked", seen=seen)
    assert not OrderEvent.objects.filter(order=order, reason__contains="Refund").exists()


def test_an_extend_form_without_the_case_version_is_refused():
    order = active_with_access()

    with pytest.raises(services.CaseChanged, match="older console"):
        services.entitlement_extend(order_id=order.id, user=staff_user(), days=7, reason="x", key=uuid.uuid4(),
                                    seen="")


# --- First response, and the team's own recent actions -------------------------------------------


def test_an_email_past_the_first_response_target_comes_first_in_the_queue(settings):
    settings.SUPPORT_FIRST_RESPONSE = timedelta(hours=4)
    held = OrderFactory(state="needs_review", paid_at=timezone.now(), amount_received_cents=24900)
    late = support_email(sender="late@example.com")
    InboundMessage.objects.filter(pk=late.pk).update(received_at=timezone.now() - timedelta(hours=5))
    support_email(sender="fresh@example.com")

    queue = selectors.needs_attention()

    assert queue[0].url == page_url(late)
    assert queue[0].breached
    assert [item.kind for item in queue[1:]] == ["held_money", "inbound"]
    assert held.reference in queue[1].title


def test_each_email_shows_how_long_the_customer_has_waited_against_the_target(ana, settings):
    settings.SUPPORT_FIRST_RESPONSE = timedelta(hours=4)
    message = support_email()
    InboundMessage.objects.filter(pk=message.pk).update(received_at=timezone.now() - timedelta(hours=5))

    page = ana.get(page_url(message)).content.decode()
    queue = ana.get(reverse("admin:index")).content.decode()

    assert "Waiting 5\xa0hours" in page
    assert "a first reply within 4\xa0hours" in page
    assert 'id="inbound-late">overdue by 1\xa0hour' in page
    assert "first reply overdue by 1\xa0hour" in queue


def test_the_first_response_target_is_four_hours_unless_set():
    from django.conf import settings

    target = settings.SUPPORT_FIRST_RESPONSE

    assert target == timedelta(hours=4)


def test_the_teams_recent_actions_are_on_the_landing_page(ana, ben):
    order = active_with_access()
    context = ben.get(reverse("admin:billing_order_change", args=[order.pk])).context
    ben.post(reverse("admin:billing_order_extend", args=[order.pk]), {
        "key": str(context["action_key"]), "seen": context["case_version"], "days": "30", "reason": "Outage"})

    page = ana.get(reverse("admin:index")).content.decode()

    assert LogEntry.objects.filter(user__email="ben@backstop.localhost", object_id=str(order.pk)).exists()
    assert "The team's recent actions" in page
    assert "Ben Okafor · Access extended to" in page
    assert "None available" not in page


# --- At the same moment (real threads, real transactions) --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_colleagues_extending_at_the_same_moment_extend_once():
    from tests.billing.helpers import at_once

    order = active_with_access()
    before = Entitlement.objects.get(order=order).ends_at
    ana, ben = staff_user(), staff_user("ben@backstop.localhost", "Ben Okafor")
    seen = selectors.order_case_version(order.id)
    people = iter([ana, ben])

    def extend():
        services.entitlement_extend(order_id=order.id, user=next(people), days=30, reason="Outage",
                                    key=uuid.uuid4(), seen=seen)

    errors = at_once(extend)

    assert [type(e) for e in errors] == [services.CaseChanged]
    assert Entitlement.objects.get(order=order).ends_at == before + timedelta(days=30)


@pytest.mark.django_db(transaction=True)
def test_a_send_reply_submitted_twice_at_the_same_moment_sends_one_email(mailoutbox):
    from tests.billing.helpers import at_once

    message = support_email()
    ana = staff_user()
    form = {"subject": "Re: Charged but no account", "body": "Hello", "key": uuid.uuid4(),
            "seen": selectors.inbound_case_version(message)}

    errors = at_once(lambda: services.inbound_message_reply_send(message_id=message.id, user=ana, **form))

    assert [type(e) for e in errors] == [services.AlreadyDone]
    assert message.replies.count() == 1
    assert OutboundEmail.objects.filter(kind="support_reply").count() == 1
