"""Your brand: the product's name (SITE_NAME) and the sign-off (SUPPORT_SIGNATURE) in every page,
email, receipt, alert and the console's header; "Backstop" only when nobody configured otherwise.

"Backstop" is matched as written: the emulator's statement line ("BACKSTOP* ...") is Stripe's
account setting printed on the card statement, and host names (backstop.localhost) are the
deployment's, not words a customer reads.
"""

import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from accounts.emails import PASSWORD_RESET
from accounts.models import Entitlement
from billing import services
from billing.email_kinds import Kind as BillingKind
from billing.models import OrderState
from billing.tokens import order_status_token
from config.errors import server_error, unavailable_page
from outbox import kinds
from outbox.models import OutboundEmail
from outbox.services import outbound_email_queue
from support import alerts as support_alerts
from support.emails import SUPPORT_REPLY
from support.models import Alert
from support.selectors import order_replies
from tests.billing.helpers import order_with_payment_intent, paid_order
from tests.factories import OrderFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
NAME = "Acme Notes"

# Every kind of email, from the apps that send them.
ALL_KINDS = [*BillingKind.values, PASSWORD_RESET, SUPPORT_REPLY]


def build_message(email: OutboundEmail):
    return kinds.get(email.kind).build(email)


@pytest.fixture
def acme(settings):
    settings.SITE_NAME = NAME
    settings.SUPPORT_SIGNATURE = "Acme Notes support"
    settings.SELLER_NAME = "Acme Notes Ltd"
    return settings


def assert_acme(*texts):
    for text in texts:
        assert "Backstop" not in text
    assert any(NAME in text for text in texts)


# --- The templates ---------------------------------------------------------------------------

def test_no_template_writes_the_product_name_itself():
    written = [f"{path.relative_to(ROOT)}:{number}"
               for path in (ROOT / "templates").rglob("*") if path.is_file()
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if "Backstop" in re.sub(r"\{#.*?#\}", "", line)]

    assert written == []


# --- Every email the outbox sends ------------------------------------------------------------

def _midnight(days_from_today: int) -> datetime:
    return datetime.combine(timezone.localdate() + timedelta(days=days_from_today), time(0), tzinfo=UTC)


def _customer_order(*, with_password: bool = True, **fields):
    """A paid year that ends in seven days, bought by an account (with or without a password)."""
    user = UserFactory(password="correct horse battery staple" if with_password else None)
    if not with_password:
        user.set_unusable_password()
        user.save()
    ends_at = _midnight(7)
    order = OrderFactory(user=user, email=user.email, state=OrderState.ACTIVE, paid_at=ends_at - timedelta(days=365),
                         **fields)
    Entitlement.objects.create(user=user, order=order, plan=order.plan, starts_at=order.paid_at, ends_at=ends_at)
    return order


def _owed(kind, *, with_password: bool = True, **fields) -> OutboundEmail:
    order = _customer_order(with_password=with_password)
    if kind == PASSWORD_RESET:
        return outbound_email_queue(kind=kind, user=order.user)
    if kind == BillingKind.ACCESS_EXTENDED:
        fields["facts"] = {"days": 30, "ends_at": (_midnight(37)).isoformat()}
    if kind == SUPPORT_REPLY:
        # A person's reply as the console drafts it: the words of the first draft, unsigned by name.
        draft = order_replies(order, agent_name="", status_url="https://example.com/s", wrote=True)[0]
        fields.update(subject=draft.subject, body=draft.body)
    return outbound_email_queue(kind=kind, about=order, **fields)


def _texts(message) -> list[str]:
    return [message.subject, message.body, *(content for content, _type in getattr(message, "alternatives", []))]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_email_names_the_configured_site_and_never_backstop(acme, kind):
    message = build_message(_owed(kind))

    assert_acme(*_texts(message))


@pytest.mark.parametrize("sent_by", ["", "Ana from our support team"])
@pytest.mark.parametrize("with_password", [True, False])
def test_every_form_of_the_sign_in_email_names_the_configured_site(acme, with_password, sent_by):
    message = build_message(_owed(BillingKind.SIGNIN_LINK, with_password=with_password, sent_by=sent_by,
                                  send_reason="You asked us to." if sent_by else ""))

    assert_acme(*_texts(message))


def test_emails_sign_off_with_the_site_name_by_default():
    message = build_message(_owed(BillingKind.CONFIRMATION))

    assert "\nBackstop\n" in message.body
    assert "Backstop · <a href" in message.alternatives[0][0]


def test_support_reply_drafts_sign_with_the_support_signature(acme):
    order = _customer_order()

    drafts = order_replies(order, agent_name="", status_url="https://example.com/s", wrote=True)

    assert drafts
    assert all(draft.body.rstrip().endswith("Acme Notes support") for draft in drafts)


def test_support_reply_drafts_are_signed_by_the_backstop_team_by_default():
    drafts = order_replies(_customer_order(), agent_name="", status_url="https://example.com/s", wrote=True)

    assert drafts[0].body.rstrip().endswith("The Backstop team")


# --- Every page a customer sees --------------------------------------------------------------

def _get(client, url, status=200) -> str:
    response = client.get(url)
    assert response.status_code == status, url
    return response.content.decode()


def _settled_order():
    return services.order_settle(order_id=paid_order().id, actor="customer")


PAGES = {
    "home": lambda client: _get(client, reverse("billing:home")),
    "checkout": lambda client: _get(client, reverse("billing:checkout")),
    "find my order": lambda client: _get(client, reverse("billing:lookup")),
    "sign in": lambda client: _get(client, reverse("accounts:login")),
    "password link": lambda client: _get(client, reverse("accounts:password_reset")),
    "password link sent": lambda client: _get(client, reverse("accounts:password_reset_done")),
    "password saved": lambda client: _get(client, reverse("accounts:password_reset_complete")),
    "not found": lambda client: _get(client, "/no-such-page/", status=404),
}


@pytest.mark.parametrize("name", PAGES)
def test_every_page_anyone_can_open_names_the_configured_site(acme, client, name):
    OrderFactory()  # a plan on sale

    assert_acme(PAGES[name](client))


def test_the_pay_page_names_the_configured_site(acme, client, stripe_emulator):
    order = order_with_payment_intent()

    page = _get(client, reverse("billing:pay", kwargs={"token": order_status_token(order)}))

    # The emulator's publishable key happens to spell the project's name: configuration, not words.
    assert_acme(page.replace(acme.STRIPE_PUBLISHABLE_KEY, "pk_test_…"))


def test_the_status_page_names_the_configured_site(acme, client, stripe_emulator):
    page = _get(client, reverse("billing:status", kwargs={"token": order_status_token(_settled_order())}))

    assert_acme(page)
    assert f'data-site-name="{NAME}"' in page  # the title the page's script writes as the order moves


def test_the_receipt_page_and_pdf_name_the_configured_site(acme, client, stripe_emulator):
    token = order_status_token(_settled_order())

    page = _get(client, reverse("billing:receipt", kwargs={"token": token}))
    pdf = client.get(reverse("billing:receipt-pdf", kwargs={"token": token}))

    assert_acme(page)
    words = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert_acme(words, PdfReader(io.BytesIO(pdf.content)).metadata.author)


@pytest.mark.parametrize("url_name", ["accounts:home", "accounts:password_change", "app"])
def test_the_signed_in_pages_name_the_configured_site(acme, client, url_name):
    client.force_login(_customer_order().user)

    assert_acme(_get(client, reverse(url_name)))


def test_the_product_page_without_access_names_the_configured_site(acme, client):
    client.force_login(UserFactory())

    assert_acme(_get(client, reverse("app"), status=403))


def test_the_error_pages_name_the_configured_site(acme):
    assert_acme(server_error(RequestFactory().get("/")).content.decode())
    assert_acme(unavailable_page())


# --- The team: console and alerts ------------------------------------------------------------

def test_the_console_header_and_title_name_the_configured_site(acme, settings):
    settings.STAFF_TWO_FACTOR = False
    client = Client()
    client.force_login(StaffFactory(is_superuser=True))

    page = _get(client, reverse("admin:index"))

    assert "<title>Support console | Acme Notes support</title>" in page
    assert ">Acme Notes support<" in page
    assert "Backstop" not in page


def test_the_console_header_says_backstop_by_default(settings):
    settings.STAFF_TWO_FACTOR = False
    client = Client()
    client.force_login(StaffFactory(is_superuser=True))

    assert ">Backstop support<" in _get(client, reverse("admin:index"))


def test_an_alert_email_names_the_configured_site(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        support_alerts.alert_raise(kind=Alert.Kind.HELD_MONEY, key="held-money:1",
                                     summary="BK-0000-0000: $249.00 held without service")

    assert mail.outbox[0].subject.startswith("[Acme Notes] ")
    assert_acme(mail.outbox[0].subject, mail.outbox[0].body)


def test_the_daily_digest_names_the_configured_site(acme):
    body = support_alerts.daily_digest_send()

    assert mail.outbox[-1].subject.startswith("[Acme Notes] Daily digest")
    assert_acme(mail.outbox[-1].subject, body)


# --- Settings from the environment -----------------------------------------------------------

def _settings_under(env: dict) -> list[str]:
    """The brand settings as a process started with `env` reads them."""
    names = ["SITE_NAME", "SUPPORT_SIGNATURE", "SELLER_NAME", "DEFAULT_FROM_EMAIL", "OTP_TOTP_ISSUER"]
    base = {k: v for k, v in os.environ.items() if k not in ("SITE_NAME", "SUPPORT_SIGNATURE", "SELLER_NAME",
                                                              "DEFAULT_FROM_EMAIL")}
    code = ("import django; django.setup(); from django.conf import settings; "
            f"print('\\n'.join(str(getattr(settings, n)) for n in {names!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**base, "DJANGO_SETTINGS_MODULE": "tests.settings", **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_site_name_from_the_environment_names_the_sender_signature_seller_and_authenticator():
    assert _settings_under({"SITE_NAME": NAME}) == [
        NAME, "The Acme Notes team", NAME, "Acme Notes <hello@backstop.localhost>", "Acme Notes support"]


def test_without_site_name_everything_is_backstop_as_before():
    assert _settings_under({}) == [
        "Backstop", "The Backstop team", "Backstop Demo Ltd", "Backstop <hello@backstop.localhost>",
        "Backstop support"]
