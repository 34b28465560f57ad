"""A support person works a case in a real browser: landing page → case → resolved."""

import os
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from billing.models import Order, OrderState
from tests.billing.helpers import paid_order
from tests.browser import strict_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set to a folder to refresh the screenshots in docs/support-workflow.md.
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


def shot(page, name):
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture
def console_page(chromium, app_server):
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", refunds=True,
                 name="Ana", stdout=StringIO())
    with strict_page(chromium, width=1280, height=900) as page:
        page.goto(app_server.url + "/admin/login/")
        page.get_by_label("Email").fill("ana@backstop.localhost")
        page.get_by_label("Password").fill("a long pass phrase 42")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/admin/")
        yield page


def test_a_charged_customer_without_access_is_resolved_in_two_clicks_from_the_landing_page(
    console_page, app_server, emulator_control
):
    emulator_control.pause_webhooks()  # lost, as in a crash: nothing but a person or the sweep finishes it
    order = paid_order(email="ada@example.com", full_name="Ada Lovelace")
    console_page.goto(app_server.url + "/admin/")
    console_page.get_by_role("searchbox", name="Search").fill("ada@")
    console_page.get_by_role("button", name="Search").click()
    shot(console_page, "landing")

    console_page.get_by_role("link", name=order.reference).first.click()  # click 1: open the case
    expect(console_page.locator("#case-diagnosis")).to_contain_text("never activated")
    console_page.locator("#case-recover").click()  # click 2: Recover

    expect(console_page.locator("#case-state")).to_have_attribute("data-state", "active")
    shot(console_page, "order")
    reply = console_page.locator("#reply-active")
    expect(reply).to_contain_text("Hello Ada")
    expect(reply).to_contain_text(order.reference)
    assert Order.objects.get(pk=order.pk).state == OrderState.ACTIVE


def test_a_refund_confirmed_twice_in_the_browser_refunds_once(console_page, app_server):
    import stripe

    from billing import services

    order = services.order_settle(order_id=paid_order().id, actor="webhook")
    console_page.goto(f"{app_server.url}/admin/billing/order/{order.pk}/refund/")
    console_page.get_by_label("Why").fill("The customer asked by email.")

    console_page.locator("#refund-submit").dblclick()

    # The second click's page may come back while the first is still with Stripe ("refund in
    # progress"); the case page does not poll, so look again until the refund has settled.
    case = console_page.locator("#case-state")
    expect(case).to_be_visible()
    for _ in range(40):
        if case.get_attribute("data-state") == "refunded":
            break
        console_page.wait_for_timeout(250)
        console_page.reload()
    expect(case).to_have_attribute("data-state", "refunded")
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1


def test_the_case_page_fits_a_phone(chromium, app_server):
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())
    order = paid_order()
    with strict_page(chromium, width=390, height=844) as page:
        page.goto(app_server.url + "/admin/login/")
        page.get_by_label("Email").fill("ana@backstop.localhost")
        page.get_by_label("Password").fill("a long pass phrase 42")
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{app_server.url}/admin/billing/order/{order.pk}/change/")

        width = page.evaluate("document.documentElement.scrollWidth")

        assert width <= 400
        expect(page.locator("#case-recover")).to_be_visible()


def test_the_order_list_fits_a_1280_pixel_screen_with_the_state_visible(console_page, app_server):
    from tests.factories import OrderFactory

    for _ in range(3):
        OrderFactory(email="a.rather.long.customer.address@example-company.com", full_name="Ada Lovelace")

    console_page.goto(app_server.url + "/admin/billing/order/")

    assert console_page.evaluate("document.documentElement.scrollWidth") <= 1280
    expect(console_page.locator("th.column-state")).to_be_visible()
    expect(console_page.locator("td.field-state").first).to_have_text("Awaiting payment")


# --- Issue 15: reply from the console, two colleagues on one case, the draft on any screen ------


def sign_in(browser, app_server, email, name, *, width=1280, height=900):
    """A support person's own browser (a fresh context), signed in to the console."""
    call_command("support_staff", email, password="a long pass phrase 42", refunds=True, name=name,
                 stdout=StringIO())
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(app_server.url + "/admin/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long pass phrase 42")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    return page


def support_email_about(order, *, subject="Charged but no account"):
    from support import services
    from support.models import InboundMessage

    message = services.inbound_message_receive(
        message_id="postmark-1", from_email=order.email, from_name="Ada Lovelace", subject=subject,
        text="Hi, I paid yesterday and never got anything. " * 20, sender_authenticated=True,
        rfc_message_id="<CAF=ada-1@mail.example.com>")
    message.orders.add(order)
    # A long unbroken line, as drafts with a status link have: it must wrap, not run off the screen.
    InboundMessage.objects.filter(pk=message.pk).update(
        draft_subject="Re: Charged but no account",
        draft_body="Hello Ada,\n\nYour order page: https://backstop.localhost/orders/status/" + "x" * 160
                   + "\n\n" + "We're looking at your order now and will write again within the hour. " * 3)
    return message


def test_send_reply_in_the_browser_sends_a_threaded_reply_and_answers_the_email(console_page, app_server):
    from outbox.models import OutboundEmail
    from support.models import InboundMessage
    from tests.factories import OrderFactory

    order = OrderFactory(email="ada@example.com", full_name="Ada Lovelace")
    message = support_email_about(order)
    console_page.goto(f"{app_server.url}/admin/support/inboundmessage/{message.pk}/change/")

    console_page.locator("#reply-body").fill("Hello Ada,\n\nYour account is ready.\n\nAna")
    console_page.get_by_role("button", name="Send reply", exact=True).click()

    expect(console_page.locator("#inbound-status")).to_have_attribute("data-status", "answered")
    expect(console_page.locator(".messagelist")).to_contain_text("Reply sent to ada@example.com")
    email = OutboundEmail.objects.get(kind="support_reply")
    assert email.status == OutboundEmail.Status.SENT
    assert email.subject == "Re: Charged but no account"
    [sent] = [text for text in app_server.emails() if "Your account is ready." in text]
    assert "In-Reply-To: <CAF=ada-1@mail.example.com>" in sent
    assert "References: <CAF=ada-1@mail.example.com>" in sent
    assert "Subject: Re: Charged but no account" in sent
    assert InboundMessage.objects.get(pk=message.pk).answered_by.email == "ana@backstop.localhost"
    console_page.goto(f"{app_server.url}/admin/billing/order/{order.pk}/change/")
    expect(console_page.locator("#case-timeline")).to_contain_text("Reply from support to ada@example.com")
    # Named as the staff member who replied (the event's actor_user), not as an address.
    expect(console_page.locator("#case-timeline li", has_text="Replied to the customer's email")).to_contain_text(
        "Ana")
    expect(console_page.locator("#case-timeline")).not_to_contain_text("support:ana@backstop.localhost")


def test_two_colleagues_on_one_case_see_each_other_and_extend_once(chromium, app_server):
    from accounts.models import Entitlement

    order = services_active_order()
    before = Entitlement.objects.get(order=order).ends_at
    case = f"{app_server.url}/admin/billing/order/{order.pk}/change/"
    ana = sign_in(chromium, app_server, "ana@backstop.localhost", "Ana Ruiz")
    ben = sign_in(chromium, app_server, "ben@backstop.localhost", "Ben Okafor")
    try:
        ana.goto(case)
        ben.goto(case)
        expect(ben.locator("#case-colleagues")).to_contain_text("Ana Ruiz has it open")
        shot(ben, "colleagues")

        for page in (ana, ben):
            page.get_by_label("Why", exact=True).fill("Two days of outage")
        ana.locator("#case-extend").click()
        expect(ana.locator(".messagelist")).to_contain_text("Access extended to")
        ben.locator("#case-extend").click()

        expect(ben.locator(".messagelist")).to_contain_text("Nothing was done: since you opened this case, "
                                                            "Ana Ruiz extended access")
        assert Entitlement.objects.get(order=order).ends_at == before + timedelta(days=30)
    finally:
        ana.context.close()
        ben.context.close()


def services_active_order():
    from billing import services

    return services.order_settle(order_id=paid_order().id, actor="webhook")


@pytest.mark.parametrize("width", [1100, 390])
def test_the_reply_draft_fits_the_screen(chromium, app_server, width):
    from tests.factories import OrderFactory

    message = support_email_about(OrderFactory(email="ada@example.com"))
    page = sign_in(chromium, app_server, "ana@backstop.localhost", "Ana Ruiz", width=width, height=900)
    try:
        page.goto(f"{app_server.url}/admin/support/inboundmessage/{message.pk}/change/")
        draft = page.locator("#reply-body")
        expect(draft).to_be_visible()
        shot(page, f"inbound-{width}")

        box = draft.bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert draft.evaluate("el => el.scrollWidth <= el.clientWidth")  # its lines wrap inside it
    finally:
        page.context.close()
