import pytest

from accounts.services import customer_account_ensure, renewal_reminders_stop
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_stopping_renewal_reminders_saves_them_off_on_the_user_row():
    user = UserFactory(renewal_reminders=True)

    renewal_reminders_stop(user=user)

    user.refresh_from_db()
    assert user.renewal_reminders is False


def test_stopping_renewal_reminders_says_they_were_on_only_the_first_time():
    user = UserFactory(renewal_reminders=True)

    assert [renewal_reminders_stop(user=user), renewal_reminders_stop(user=user)] == [True, False]


def test_a_first_payment_makes_one_account_for_its_address_and_a_second_finds_it():
    first = customer_account_ensure(email="ada@example.com", full_name="Ada")

    again = customer_account_ensure(email="ada@example.com", full_name="Ada Lovelace")

    assert again.pk == first.pk


def test_the_account_a_payment_finds_is_handed_back_as_stored_with_its_own_name_and_password():
    customer = UserFactory(email="ada@example.com", full_name="Ada")
    customer.set_password("correct horse battery")
    customer.save()

    found = customer_account_ensure(email="ada@example.com", full_name="Someone typing Ada's address")

    assert found.full_name == "Ada"
    assert found.check_password("correct horse battery")
