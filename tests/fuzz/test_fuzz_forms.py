"""Every public form and page, fed anything: a clear answer, nothing half-written, nothing leaked."""

from urllib.parse import quote

import pytest
import stripe
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import User
from billing import services
from billing.models import Order, OrderEvent
from billing.tokens import order_from_status_token, order_status_token
from outbox.models import OutboundEmail
from tests.billing.helpers import paid_order
from tests.factories import OrderFactory, PlanFactory, UserFactory
from tests.fuzz.conftest import assert_clean_answer, browser, fresh_counts
from tests.fuzz.strategies import form_data, hostile_text, token_text

pytestmark = pytest.mark.django_db

addresses = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))


def rows():
    return Order.objects.count(), OrderEvent.objects.count(), OutboundEmail.objects.count(), User.objects.count()


@pytest.fixture
def behind_a_proxy(settings):
    # Once per test, not per example: each assignment to pytest-django's `settings` stacks an override.
    settings.TRUSTED_PROXY_COUNT = 1


@pytest.fixture
def plan(db):
    return PlanFactory(is_active=True)


@given(data=form_data(["email", "full_name", "nonce", "email_confirmed", "buy_again", "renew"],
                      always=["email", "nonce"], email=st.emails(), nonce=st.uuids().map(str),
                      email_confirmed=st.just("on"), full_name=st.text(max_size=200)),
       renew=st.one_of(st.none(), hostile_text), address=addresses)
def test_checkout_answers_anything_clearly_and_makes_at_most_its_one_order(stripe_emulator, bystander, plan, data,
                                                                          renew, address):
    fresh_counts()
    existing = set(Order.objects.values_list("id", flat=True))
    url = reverse("billing:checkout") + (f"?renew={quote(renew)}" if renew is not None else "")

    response = assert_clean_answer(browser(address).post(url, data), sent=data)

    made = Order.objects.count() - len(existing)
    if response.status_code == 302 and "/pay/" in response.url:
        paying = order_from_status_token(response.url.split("/")[-3])
        # A new order, or the one an earlier submit of the same form (the same nonce) made.
        assert (made, paying.id in existing) in ((1, False), (0, True))
    else:
        assert response.status_code in (200, 400, 429)
        assert made == 0


@given(data=form_data(["email", "last4"], email=st.emails(), last4=st.from_regex(r"\A\d{4}\Z")),
       forwarded=st.one_of(st.none(), hostile_text), address=addresses)
def test_find_my_order_answers_anything_with_the_same_pages(bystander, behind_a_proxy, data, forwarded, address):
    fresh_counts()
    before = rows()
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}

    response = assert_clean_answer(browser(address).post(reverse("billing:lookup"), data, **headers), sent=data)

    assert response.status_code in (200, 429)
    assert rows() == before  # no order behind any of these addresses: nothing is sent


@given(data=form_data(["username", "password"], username=st.just("bystander.private@example.org")))
def test_the_login_form_answers_anything_without_signing_in(bystander, data):
    client = browser()

    response = assert_clean_answer(client.post(reverse("accounts:login"), data), sent=data)

    assert response.status_code in (200, 400, 429)
    assert "_auth_user_id" not in client.session


@given(data=form_data(["email"], email=st.emails()), forwarded=st.one_of(st.none(), hostile_text), address=addresses)
def test_the_password_link_form_answers_anything_and_sends_nothing_to_strangers(bystander, behind_a_proxy, data,
                                                                               forwarded, address):
    fresh_counts()
    before = rows()
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}

    response = assert_clean_answer(browser(address).post(reverse("accounts:password_reset"), data, **headers),
                                   sent=data)

    assert response.status_code in (200, 302)
    assert rows() == before


@given(uidb64=token_text, token=token_text,
       data=form_data(["new_password1", "new_password2"]), method=st.sampled_from(["get", "post"]))
def test_a_forged_password_link_changes_no_password(bystander, uidb64, token, data, method):
    user = bystander.user
    url = f"/account/password/reset/{quote(uidb64, safe='')}/{quote(token, safe='')}/"

    response = assert_clean_answer(getattr(browser(), method)(url, data))

    assert response.status_code in (200, 302, 404)
    user.refresh_from_db()
    assert user.check_password("correct horse battery staple")


@pytest.fixture
def customer(db):
    return UserFactory(email="fuzzer@example.com", full_name="Fuzz Customer")


def signed_in(user):
    client = browser()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@given(data=form_data(["company_name", "vat_number"], vat_number=st.from_regex(r"\A[A-Z]{2}\d{9}\Z")))
def test_receipt_details_save_all_or_nothing(bystander, customer, data):
    before = User.objects.values("company_name", "vat_number").get(pk=customer.pk)

    response = assert_clean_answer(signed_in(customer).post(reverse("accounts:receipt_details"), data))

    after = User.objects.values("company_name", "vat_number").get(pk=customer.pk)
    assert response.status_code in (200, 302)
    if response.status_code == 200:  # the form with its errors: nothing saved
        assert after == before
    assert len(after["company_name"]) <= 200
    assert len(after["vat_number"]) <= 50


@given(data=form_data(["renewal_reminders"], renewal_reminders=st.sampled_from(["on", ""])))
def test_the_reminder_setting_answers_anything(bystander, customer, data):
    response = assert_clean_answer(signed_in(customer).post(reverse("accounts:reminders"), data))

    assert response.status_code in (200, 302)


@given(data=form_data(["old_password", "new_password1", "new_password2"]))
def test_the_password_change_form_keeps_the_password_unless_it_was_valid(bystander, customer, data):
    response = assert_clean_answer(signed_in(customer).post(reverse("accounts:password_change"), data))

    customer.refresh_from_db()
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert customer.check_password("correct horse battery staple")


@given(token=token_text, data=form_data(["List-Unsubscribe"], **{"List-Unsubscribe": st.just("One-Click")}),
       method=st.sampled_from(["get", "post", "head"]))
def test_a_forged_reminders_off_link_changes_nobody(bystander, token, data, method):
    client = browser()
    url = f"/account/reminders/off/{quote(token, safe='')}/"

    response = assert_clean_answer(client.get(url, data) if method != "post" else client.post(url, data))

    assert response.status_code in (200, 400, 404)
    assert User.objects.get(pk=bystander.user.pk).renewal_reminders is True


@given(sesame=hostile_text)
def test_a_forged_sign_in_link_signs_nobody_in(bystander, sesame):
    client = browser()

    response = assert_clean_answer(client.get(reverse("accounts:signin"), {"sesame": sesame}))

    assert response.status_code in (200, 302, 400)
    assert "_auth_user_id" not in client.session


ORDER_PAGES = [("get", "billing:status"), ("get", "billing:pay"), ("get", "billing:receipt"),
               ("get", "billing:receipt-pdf"), ("get", "billing:status-api"), ("post", "billing:refund-now"),
               ("post", "billing:status-signin")]


@given(token=token_text, page=st.sampled_from(ORDER_PAGES),
       query=form_data(["payment_intent", "redirect_status", "format"], format=st.sampled_from(["json", "api", "xml"])))
def test_an_order_page_with_a_forged_token_shows_nothing(bystander, token, page, query):
    method, name = page
    url = reverse(name, kwargs={"token": "TOKEN"}).replace("TOKEN", quote(token, safe=""))
    fresh_counts()
    before = rows()

    response = assert_clean_answer(getattr(browser(), method)(url, query))

    assert response.status_code in (302, 404, 429)
    assert rows() == before


@pytest.fixture
def pending_order(stripe_emulator):
    return OrderFactory(email="someone.else@example.net", full_name="Someone Else")


@given(page=st.sampled_from(ORDER_PAGES),
       data=form_data(["payment_intent", "redirect_status", "amount", "reason", "format"],
                      format=st.sampled_from(["json", "api", "xml"])),
       accept=st.one_of(st.none(), hostile_text, st.sampled_from(["application/json", "text/html", "*/*", "x/y"])))
def test_an_order_page_answers_any_parameters_and_refunds_nothing(bystander, pending_order, page, data, accept):
    method, name = page
    url = reverse(name, kwargs={"token": order_status_token(pending_order)})
    fresh_counts()
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}

    response = assert_clean_answer(getattr(browser(), method)(url, data, **headers))

    assert response.status_code in (200, 302, 404, 406, 429, 503)
    pending_order.refresh_from_db()
    assert pending_order.amount_refunded_cents == 0
    assert not pending_order.events.filter(to_state__startswith="refund").exists()


FORM_PAGES = ["billing:checkout", "billing:lookup", "accounts:login", "accounts:password_reset"]
CONTENT_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data; boundary=fuzz", "multipart/form-data",
                 "application/json", "text/plain", "application/x-www-form-urlencoded; charset=utf-16",
                 "application/x-www-form-urlencoded; charset=nonsense"]


@given(page=st.sampled_from(FORM_PAGES), content_type=st.one_of(st.sampled_from(CONTENT_TYPES), hostile_text),
       body=st.one_of(st.binary(max_size=3000), hostile_text.map(str.encode),
                      st.just(b"--fuzz\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nx"),
                      st.just(b"&".join([b"f=1"] * 1500))))
def test_a_form_page_answers_any_raw_body_clearly_and_writes_nothing(stripe_emulator, bystander, plan, page,
                                                                      content_type, body):
    fresh_counts()
    before = rows()

    # generic(): the body goes out as these bytes (post() would re-encode it for the declared charset).
    response = assert_clean_answer(browser().generic("POST", reverse(page), body, content_type=content_type))

    assert response.status_code in (200, 302, 400, 413, 429)
    assert rows() == before


@pytest.fixture
def held_order(stripe_emulator):
    """Charged for another amount than the order says: settle holds the money and offers Refund me now."""
    order = paid_order(email="held.customer@example.net")
    Order.objects.filter(pk=order.pk).update(amount_cents=19900)
    return services.order_settle(order_id=order.id, actor="webhook")


@given(data=form_data(["amount", "amount_cents", "reason", "csrfmiddlewaretoken"]), times=st.integers(1, 3))
def test_refund_me_now_with_any_body_any_number_of_times_refunds_once_in_full(held_order, data, times):
    url = reverse("billing:refund-now", kwargs={"token": order_status_token(held_order)})

    for _ in range(times):
        assert_clean_answer(browser().post(url, data))

    refunds = stripe.Refund.list(payment_intent=held_order.stripe_payment_intent_id).data
    assert len(refunds) == 1
    assert refunds[0].amount == 24900  # all of what was charged, whatever the body said
    assert held_order.events.filter(to_state="refund_pending").count() == 1
