"""The order page as a case: permissions, the buttons, the confirmation before a refund."""

import uuid
from io import StringIO

import pytest
import stripe
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing import services as billing_services
from billing.models import Order, OrderEvent, OrderState
from support.models import Note
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def staff(client, *, refunds=True, email="ana@backstop.localhost"):
    call_command("support_staff", email, password="a long pass phrase 42", refunds=refunds, stdout=StringIO())
    assert client.login(email=email, password="a long pass phrase 42")
    return client


def case_url(order, action=None):
    if action is None:
        return reverse("admin:billing_order_change", args=[order.pk])
    return reverse(f"admin:billing_order_{action}", args=[order.pk])


def active_order():
    return billing_services.order_settle(order_id=paid_order().id, actor="webhook")


def test_the_demo_support_login_can_open_orders(client):
    call_command("demo_setup", "--support-password", "demo-password-1", stdout=StringIO())
    order = OrderFactory()
    assert client.login(email="support@backstop.localhost", password="demo-password-1")

    assert client.get(reverse("admin:billing_order_changelist")).status_code == 200
    assert client.get(case_url(order)).status_code == 200


def test_support_staff_is_idempotent_and_sets_the_refund_right(django_user_model):
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", refunds=True,
                 stdout=StringIO())
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())

    user = django_user_model.objects.get(email="ana@backstop.localhost")
    assert django_user_model.objects.filter(is_staff=True).count() == 1
    assert not user.has_perm("support.refund_order")
    assert user.has_perm("support.recover_order")


def test_support_staff_refuses_a_weak_password():
    with pytest.raises(CommandError, match="too weak"):
        call_command("support_staff", "ana@backstop.localhost", password="123", stdout=StringIO())


def test_the_case_page_says_what_happened_and_recommends_recover(client, stripe_emulator):
    order = paid_order()  # charged; nothing settled it

    page = staff(client).get(case_url(order)).content.decode()

    assert f"Charged {order.amount_display}" in page
    assert "never activated" in page
    assert 'class="button recommended" id="case-recover"' in page
    assert "public_id" not in page
    assert "checkout_nonce" not in page
    assert 'name="_save"' not in page


def test_recover_finishes_the_order_as_that_support_person(client, stripe_emulator):
    order = paid_order()

    staff(client).post(case_url(order, "recover"), {"key": str(uuid.uuid4())})

    order.refresh_from_db()
    assert order.state == OrderState.ACTIVE
    assert order.events.get(to_state="active").actor == "support:ana@backstop.localhost"


def test_a_get_to_an_action_does_nothing(client, stripe_emulator):
    order = paid_order()

    staff(client).get(case_url(order, "recover"))

    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_a_forged_action_post_without_the_csrf_token_is_refused(stripe_emulator):
    from django.test import Client

    order = paid_order()
    client = staff(Client(enforce_csrf_checks=True))

    response = client.post(case_url(order, "recover"), {"key": str(uuid.uuid4())})

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_refund_asks_for_confirmation_with_the_amount_and_its_effect_first(client, stripe_emulator):
    order = active_order()

    page = staff(client).get(case_url(order, "refund")).content.decode()

    assert "Refund $249.00" in page
    assert "access ends at once" in page
    assert not stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data


def test_a_confirmed_refund_submitted_twice_refunds_once(client, stripe_emulator):
    order = active_order()
    form = {"key": str(uuid.uuid4()), "amount": "249.00", "confirmed_amount": "24900", "reason": "Asked by email"}
    staff(client)

    client.post(case_url(order, "refund"), form)
    client.post(case_url(order, "refund"), form)

    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1
    assert order.events.get(to_state="refunded").actor == "support:ana@backstop.localhost"


def test_a_refund_from_the_console_names_the_staff_member_on_its_events(client, stripe_emulator):
    order = active_order()
    staff(client)

    client.post(case_url(order, "refund"), {"key": str(uuid.uuid4()), "amount": "249.00",
                                            "confirmed_amount": "24900", "reason": "Asked by email"})

    requested = order.events.get(kind=OrderEvent.Kind.REFUND_REQUESTED)
    assert requested.actor_user.email == "ana@backstop.localhost"
    assert requested.data == {"amount_cents": 24900, "currency": "usd", "full": True, "note": "Asked by email"}
    assert order.events.get(to_state="refunded").actor_user.email == "ana@backstop.localhost"


def test_a_changed_amount_is_confirmed_again_before_anything_is_refunded(client, stripe_emulator):
    order = active_order()

    form = {"key": str(uuid.uuid4()), "amount": "49.00", "confirmed_amount": "24900", "reason": "Goodwill"}

    page = staff(client).post(case_url(order, "refund"), form).content.decode()

    assert "Refund $49.00" in page
    assert "keeps their access" in page
    assert not stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data


def test_a_person_without_the_refund_right_is_not_offered_it_and_cannot_post_it(client, stripe_emulator):
    order = active_order()
    staff(client, refunds=False)

    page = client.get(case_url(order)).content.decode()
    response = client.post(case_url(order, "refund"), {
        "key": str(uuid.uuid4()), "amount": "249.00", "confirmed_amount": "24900", "reason": "x"})

    assert 'id="case-refund"' not in page
    assert response.status_code == 403
    assert not stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data


def test_resend_sends_the_confirmation_again_once_per_click(
    client, stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = active_order()
    key = str(uuid.uuid4())
    staff(client)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(case_url(order, "resend"), {"key": key, "kind": "confirmation"})
        client.post(case_url(order, "resend"), {"key": key, "kind": "confirmation"})

    assert [m.to for m in mailoutbox if m.to == [order.email]] == [[order.email], [order.email]]
    assert order.emails.filter(kind="confirmation").count() == 1


def test_a_note_appears_on_the_timeline_with_its_author(client, stripe_emulator):
    order = OrderFactory()
    staff(client)

    client.post(case_url(order, "note"), {"key": str(uuid.uuid4()), "body": "Customer called, all good."})

    assert Note.objects.get(order=order).author.email == "ana@backstop.localhost"
    assert "Customer called, all good." in client.get(case_url(order)).content.decode()


def test_extend_access_moves_the_end_date_and_records_why(client, stripe_emulator):
    order = active_order()
    before = order.entitlement.ends_at

    seen = staff(client).get(case_url(order)).context["case_version"]
    client.post(case_url(order, "extend"), {"key": str(uuid.uuid4()), "days": "30", "reason": "Outage", "seen": seen})

    order = Order.objects.get(pk=order.pk)
    assert (order.entitlement.ends_at - before).days == 30
    assert order.events.filter(reason__contains="Access extended by 30 days").exists()


def test_the_prefilled_reply_names_the_customer_amount_and_reference(client, stripe_emulator):
    order = active_order()

    page = staff(client).get(case_url(order)).content.decode()

    assert order.reference in page
    assert "your {plan}" not in page
    assert f"Your payment of {order.amount_display}" in page


def test_a_customer_cannot_reach_the_console(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())

    response = client.get(reverse("admin:billing_order_changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_when_stripe_cannot_be_reached_the_case_page_never_says_no_payment(client, stripe_emulator, emulator_control):
    order = paid_order()
    emulator_control.fail_next(method="GET", path="/v1/payment_intents/", count=10, status=500)

    page = staff(client).get(case_url(order)).content.decode()

    assert "Stripe could not be reached" in page
    assert "No payment taken" not in page


def test_send_sign_in_link_emails_the_customer_a_working_link(
    client, stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    from django.test import Client

    order = active_order()
    staff(client)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(case_url(order, "signin_link"), {"key": str(uuid.uuid4()), "reason": "Your account is ready."})

    (message,) = [m for m in mailoutbox if m.subject == "Your sign-in link for Backstop"]
    link = next(line for line in message.body.splitlines() if "/account/signin/" in line).strip()
    customer = Client()
    assert customer.get(link.replace("http://testserver", "")).status_code == 302
    assert int(customer.session["_auth_user_id"]) == order.user_id
    assert order.events.filter(reason__startswith="Sign-in link sent").exists()


def test_a_customer_signing_in_with_their_link_shows_on_the_order_timeline(client, stripe_emulator):
    from django.test import Client
    from sesame.utils import get_query_string

    order = active_order()
    Client().get(reverse("accounts:signin") + get_query_string(order.user))

    page = staff(client).get(case_url(order)).content.decode()

    assert "Signed in to their account with a sign-in link" in page


def test_the_refund_form_for_one_of_two_stacked_years_says_what_access_remains(client, stripe_emulator):
    from django.utils import timezone

    first = billing_services.order_settle(order_id=paid_order(email="ana@example.com").id, actor="customer")
    second = billing_services.order_settle(order_id=paid_order(email="ana@example.com").id, actor="customer")

    page = staff(client).get(case_url(second, "refund")).content.decode()

    until = f"{timezone.localtime(first.entitlement.ends_at):%b %-d, %Y}"
    assert f"the customer keeps access until {until}" in page
    assert "access ends at once" not in page


def test_the_case_and_refund_form_show_what_stripe_took_beside_what_the_order_asked(client, stripe_emulator):
    order = paid_order(email="bo@example.com", amount_cents=24800)
    Order.objects.filter(pk=order.pk).update(amount_cents=24900)
    billing_services.order_settle(order_id=order.id, actor="webhook")

    admin = staff(client)
    case = admin.get(reverse("admin:billing_order_change", args=[order.id])).content.decode()
    form = admin.get(reverse("admin:billing_order_refund", args=[order.id])).content.decode()

    assert "Stripe took $248.00; the order asked $249.00" in case
    assert 'value="248.00"' in form  # the default is what can still be refunded
    assert "Stripe took $248.00 (the order asked $249.00)" in form
