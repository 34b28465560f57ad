import pytest

from accounts.services import renewal_reminders_stop
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
