import pytest
from django.contrib.auth import authenticate, get_user_model
from django.db import IntegrityError

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_the_email_address_is_the_login_whatever_its_capitals():
    User.objects.create_user(email="Ada@Example.com", password="a strong passphrase")

    assert authenticate(email="ADA@example.COM", password="a strong passphrase") is not None


def test_two_accounts_cannot_share_an_address_that_differs_only_in_capitals():
    User.objects.create_user(email="ada@example.com")

    with pytest.raises(IntegrityError):
        User.objects.create(email="ada@example.com")


def test_the_database_refuses_an_address_stored_with_capitals():
    with pytest.raises(IntegrityError):
        User.objects.create(email="Ada@example.com")


def test_a_customer_created_without_a_password_cannot_sign_in_with_one():
    user = User.objects.create_user(email="nopass@example.com")

    assert not user.has_usable_password()


def test_staff_factory_makes_console_users():
    assert UserFactory(is_staff=True).is_staff
