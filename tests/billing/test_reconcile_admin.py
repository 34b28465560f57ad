"""The sweep's runs and the team's alerts are visible in the admin."""

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import ReconcileRun
from support.models import Alert
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_list_of_sweeps_shows_what_each_found_and_fixed(admin_client):
    ReconcileRun.objects.create(started_at=timezone.now(), status=ReconcileRun.Status.OK, duration_ms=42,
                                counts={"settled": 2, "adopted": 1, "sync_charges": 9})

    page = admin_client.get(reverse("admin:billing_reconcilerun_changelist"))

    assert page.status_code == 200
    assert b"adopted 1, settled 2" in page.content


def test_a_sweep_record_cannot_be_edited(admin_client):
    run = ReconcileRun.objects.create(started_at=timezone.now(), status=ReconcileRun.Status.OK)

    page = admin_client.get(reverse("admin:billing_reconcilerun_change", args=[run.pk]))

    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def test_alerts_are_listed_for_the_team(admin_client):
    Alert.objects.create(kind=Alert.Kind.DISPUTE, key="dispute:1", summary="BK-1234-5678: disputed")

    page = admin_client.get(reverse("admin:support_alert_changelist"))

    assert b"BK-1234-5678: disputed" in page.content
