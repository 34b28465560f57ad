"""Transactional email retried front-loaded: seconds, then minutes, for a day (decision 0028). An hour-long
outage of the email provider used to delay a confirmation by about 1 h 42 m, and a send was given up after
about 4 h 43 m."""

from datetime import timedelta
from itertools import accumulate

import pytest
from django.utils import timezone

from outbox import services
from outbox.models import OutboundEmail
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

DISPATCHER_PERIOD = timedelta(minutes=1)  # outbox/schedules.py: the dispatcher sends what is due each minute


def tries_after(first_try=timedelta(0)):
    """When each retry of one email comes due, from its first try."""
    return [first_try + timedelta(seconds=total) for total in accumulate(services.EMAIL_RETRY_DELAYS)]


@pytest.fixture
def email_provider_down(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2


def owed_email():
    order = OrderFactory()
    return OutboundEmail.objects.create(about=order, kind="status_link", recipient=order.email,
                                        next_attempt_at=timezone.now())


def test_a_refused_email_is_tried_again_within_seconds(email_provider_down):
    email = owed_email()

    services.outbound_email_send(email_id=email.id)

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.PENDING
    assert email.next_attempt_at <= timezone.now() + timedelta(seconds=15)


def test_the_first_retries_come_within_minutes():
    assert tries_after()[2] <= timedelta(minutes=2)
    assert tries_after()[4] <= timedelta(minutes=10)


def test_an_hour_long_outage_delays_an_email_by_at_most_about_ten_minutes_past_its_end():
    outage = timedelta(hours=1)

    first_try_after = next(due for due in tries_after() if due >= outage)

    assert first_try_after - outage <= timedelta(minutes=10)
    assert first_try_after + DISPATCHER_PERIOD <= timedelta(hours=1, minutes=11)


def test_an_email_is_tried_for_a_day_before_a_person_is_asked_to_look():
    last_try = tries_after()[-1]

    assert timedelta(days=1) <= last_try <= timedelta(days=1, hours=1)


def test_after_the_days_last_try_the_email_is_handed_to_a_person(email_provider_down):
    email = owed_email()
    OutboundEmail.objects.filter(pk=email.pk).update(attempts=len(services.EMAIL_RETRY_DELAYS))

    services.outbound_email_send(email_id=email.id)

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
