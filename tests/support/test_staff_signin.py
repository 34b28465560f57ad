"""The console's door: sign-in links never open it, wrong passwords lock it, a second factor guards it."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from sesame.utils import get_query_string

from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long pass phrase 42"


def support_person(**options):
    out = StringIO()
    call_command("support_staff", "ana@backstop.localhost", password=PASSWORD, stdout=out, **options)
    return out.getvalue()


def admin_login(client, password=PASSWORD, **extra):
    return client.post(reverse("admin:login"), {"username": "ana@backstop.localhost", "password": password,
                                                "next": "/admin/", **extra})


def test_a_sign_in_link_never_signs_in_a_staff_account(client):
    staff = StaffFactory()

    response = client.get(reverse("accounts:signin") + get_query_string(staff))

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302


def test_repeated_wrong_passwords_lock_the_console_login_even_for_the_right_one(client, settings):
    settings.AXES_ENABLED = True
    support_person()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, password="wrong guess")

    response = admin_login(client)

    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


def test_a_lockout_for_one_address_does_not_lock_the_person_out_elsewhere(client, settings):
    from django.test import Client

    settings.AXES_ENABLED = True
    support_person()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, password="wrong guess")

    response = admin_login(Client(REMOTE_ADDR="10.0.0.7"))

    assert response.status_code == 302


def test_with_two_factor_on_a_password_alone_does_not_open_the_console(client, settings):
    settings.STAFF_TWO_FACTOR = True
    support_person(totp=True)

    admin_login(client)

    assert client.get(reverse("admin:index")).status_code == 302


def test_with_two_factor_the_code_from_the_app_opens_the_console(client, settings):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.STAFF_TWO_FACTOR = True
    support_person(totp=True)
    device = TOTPDevice.objects.get(user__email="ana@backstop.localhost")

    admin_login(client, otp_device=device.persistent_id, otp_token=f"{totp(device.bin_key):06d}")

    assert client.get(reverse("admin:index")).status_code == 200


def test_support_staff_prints_the_authenticator_setup_link_once():
    first = support_person(totp=True)
    second = support_person(totp=True)

    assert "otpauth://totp/" in first
    assert "otpauth://" not in second
