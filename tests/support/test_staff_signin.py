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


def a_code(device):
    from django_otp.oath import totp

    return f"{totp(device.bin_key):06d}"


def ana_device():
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.get(user__email="ana@backstop.localhost")


def login_page_without_csrf(response):
    import re

    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def test_every_spelling_of_one_address_counts_toward_the_same_lockout(client, settings):
    settings.AXES_ENABLED = True
    support_person()
    spellings = ["ANA@backstop.localhost", " ana@backstop.localhost ", "Ana@Backstop.Localhost"]
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": spellings[attempt % len(spellings)],
                                             "password": "wrong guess", "next": "/admin/"})

    response = admin_login(client)

    assert response.status_code == 429


def test_a_locked_address_is_not_unlocked_by_typing_it_in_capitals(client, settings):
    settings.AXES_ENABLED = True
    support_person()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, password="wrong guess")

    response = client.post(reverse("admin:login"), {"username": "ANA@BACKSTOP.LOCALHOST", "password": PASSWORD,
                                                    "next": "/admin/"})

    assert response.status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302


def test_with_two_factor_a_right_password_without_a_code_looks_like_a_wrong_password(client, settings):
    settings.STAFF_TWO_FACTOR = True
    support_person(totp=True)

    wrong_password = admin_login(client, password="wrong guess", otp_token="")
    no_code = admin_login(client, otp_token="")

    assert "do not match" in wrong_password.content.decode()
    assert login_page_without_csrf(no_code) == login_page_without_csrf(wrong_password)


def test_with_two_factor_a_right_password_with_a_wrong_code_looks_like_a_wrong_password(client, settings):
    settings.STAFF_TWO_FACTOR = True
    support_person(totp=True)
    wrong_code = f"{(int(a_code(ana_device())) + 1) % 1000000:06d}"

    wrong_password = admin_login(client, password="wrong guess", otp_token=wrong_code)
    right_password = admin_login(client, otp_token=wrong_code)

    assert login_page_without_csrf(right_password) == login_page_without_csrf(wrong_password)
    assert client.get(reverse("admin:index")).status_code == 302


def test_with_two_factor_a_code_used_once_already_says_so_the_second_time(client, settings):
    from django.test import Client

    settings.STAFF_TWO_FACTOR = True
    support_person(totp=True)
    code = a_code(ana_device())
    assert admin_login(client, otp_token=code).status_code == 302

    again = Client()
    response = admin_login(again, otp_token=code)

    assert response.status_code == 200
    assert "already been used" in response.content.decode()
    assert again.get(reverse("admin:index")).status_code == 302


def test_the_customer_login_refuses_a_staff_account_as_it_refuses_a_wrong_password(client):
    support_person()
    form = {"username": "ana@backstop.localhost", "password": PASSWORD}

    wrong = client.post(reverse("accounts:login"), {**form, "password": "wrong guess"})
    right = client.post(reverse("accounts:login"), form)

    assert right.status_code == 200
    assert login_page_without_csrf(right) == login_page_without_csrf(wrong)
    assert "_auth_user_id" not in client.session


def djstripe_changelist(client):
    return client.get(reverse("admin:djstripe_customer_changelist"))


def test_a_support_person_is_not_offered_dj_stripes_sync_actions(client):
    support_person()
    client.login(email="ana@backstop.localhost", password=PASSWORD)

    page = djstripe_changelist(client).content.decode()

    assert "_sync_all_instances" not in page
    assert "_resync_instances" not in page


def test_a_support_person_cannot_run_dj_stripes_sync_all_through_its_action_url(client):
    from djstripe.models import WebhookEndpoint

    support_person()
    client.login(email="ana@backstop.localhost", password=PASSWORD)
    endpoints = WebhookEndpoint.objects.count()
    url = reverse("admin:djstripe_custom_action", args=["_sync_all_instances", "customer"])

    response = client.post(url, {"_selected_action": "_sync_all_instances"})

    assert response.status_code == 403
    assert WebhookEndpoint.objects.count() == endpoints


def test_a_superuser_is_still_offered_dj_stripes_sync_actions(client, django_user_model):
    django_user_model.objects.create_superuser(email="root@backstop.localhost", password=PASSWORD)
    client.login(email="root@backstop.localhost", password=PASSWORD)

    page = djstripe_changelist(client).content.decode()

    assert "_sync_all_instances" in page
