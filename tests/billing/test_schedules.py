from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

pytestmark = pytest.mark.django_db


def test_setup_schedules_declares_the_outbox_dispatcher_once_however_often_it_runs():
    call_command("setup_schedules", stdout=StringIO())
    call_command("setup_schedules", stdout=StringIO())

    assert Schedule.objects.filter(func="outbox.tasks.dispatch_due_emails").count() == 1
