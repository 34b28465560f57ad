"""Counters that must survive a flood of other keys: rate limits and the task cluster's heartbeat.

Probing found Django's database cache culling live keys past 300 entries: 500 password requests for
other addresses let one address receive 6, then 9 links an hour (limit 3), and /readyz counted no
cluster while one ran. IPv6 clients count per /64, IPv4 clients behind a dual-stack socket per
address.
"""

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from django_q.status import Stat, Status
from django_ratelimit.core import get_usage

from config.client_ip import client_ip
from config.ratelimit import over_limit
from outbox.models import OutboundEmail
from tests.factories import UserFactory
from tests.ratelimits import counting_afresh

pytestmark = pytest.mark.django_db


def ask_for_a_link(email, address):
    return Client(REMOTE_ADDR=address).post(reverse("accounts:password_reset"), {"email": email})


def password_links_to(email):
    return OutboundEmail.objects.filter(kind="password_reset", recipient=email).count()


def flood_with_other_counters(count):
    request = RequestFactory().get("/", REMOTE_ADDR="10.9.9.9")
    for i in range(count):
        over_limit(request, group="tests:flood", rate="100/h", value=f"someone{i}@example.com")


def test_a_flood_of_other_addresses_does_not_reset_one_addresses_password_link_limit():
    UserFactory(email="victim@example.com")
    counting_afresh(rate="5/d", value="victim@example.com")
    for i in range(5):
        ask_for_a_link("victim@example.com", f"10.0.4.{i}")

    # As the probe did it: 500 requests for other addresses, each from its own client.
    for i in range(500):
        ask_for_a_link(f"other{i}@example.com", f"10.{1 + i // 250}.{i % 250}.1")
    for i in range(6):
        ask_for_a_link("victim@example.com", f"10.0.5.{i}")

    assert password_links_to("victim@example.com") == 5


def test_the_cache_purges_expired_rows_but_keeps_every_live_one():
    cache = caches["default"]
    cache.set("expired-long-ago", 1, timeout=-1)  # written already expired
    flood_with_other_counters(400)
    cache._purged_at = None  # as in a process that has not purged in PURGE_EVERY_SECONDS

    cache.set("one-more", 1)  # the write purges

    assert _rows("expired-long-ago") == 0
    assert cache.get("one-more") == 1
    first = get_usage(RequestFactory().get("/"), group="tests:flood", rate="100/h",
                      key=lambda _group, _request: "someone0@example.com")
    assert first["count"] == 1


def test_a_process_purges_expired_rows_at_most_once_a_period():
    cache = caches["default"]
    cache.set("purges-now", 1)
    cache.set("expired-long-ago", 1, timeout=-1)

    cache.set("one-more", 1)  # within PURGE_EVERY_SECONDS of the last purge: no purge, no count

    assert _rows("expired-long-ago") == 1
    assert cache.get("expired-long-ago") is None


def test_adding_a_key_that_lives_keeps_its_value_and_says_so():
    cache = caches["default"]
    assert cache.add("counter", 1, timeout=60)

    assert not cache.add("counter", 7, timeout=60)
    assert cache.get("counter") == 1


def test_adding_over_an_expired_key_writes_it():
    cache = caches["default"]
    cache.set("counter", 5, timeout=-1)

    assert cache.add("counter", 1, timeout=60)
    assert cache.get("counter") == 1


def test_adding_inside_a_transaction_leaves_the_transaction_usable():
    from django.db import transaction

    cache = caches["default"]
    with transaction.atomic():
        assert cache.add("counter", 1, timeout=60)
        assert not cache.add("counter", 2, timeout=60)
        cache.set("other", 3)
        assert OutboundEmail.objects.count() == 0  # the transaction still answers

    assert cache.get("counter") == 1
    assert cache.get("other") == 3


def test_readyz_still_sees_a_running_cluster_after_a_flood_of_rate_limit_counters(client, settings):
    settings.METRICS_TOKEN = "token"  # /readyz's details are the token holder's
    # What a running qcluster writes twice a second: its Stat under a key of the shared cache.
    get_broker().set_stat(Stat.get_key("cluster-under-test"),
                          SignedPackage.dumps(Status(pid=1, cluster_id="cluster-under-test"), True), 30)

    flood_with_other_counters(400)

    assert client.get("/readyz", headers={"Authorization": "Bearer token"}).json()["task_queue"]["clusters"] == 1


@pytest.mark.parametrize(("rate_limited_from", "then_from"), [
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"),
    ("2001:db8:1:2::1", "2001:db8:1:2:abcd::1"),
])
def test_ipv6_clients_count_per_64(rate_limited_from, then_from):
    counting_afresh(rate="10/h", value="2001:db8:1:2::")
    for _ in range(10):
        ask_for_a_link("nobody@example.com", rate_limited_from)
    UserFactory(email="ana@example.com")

    ask_for_a_link("ana@example.com", then_from)  # same /64: over the limit, nothing sent

    assert password_links_to("ana@example.com") == 0


def test_another_ipv6_64_is_another_client():
    counting_afresh(rate="10/h", value="2001:db8:1:2::")
    for _ in range(10):
        ask_for_a_link("nobody@example.com", "2001:db8:1:2::1")
    UserFactory(email="ana@example.com")

    ask_for_a_link("ana@example.com", "2001:db8:1:3::1")

    assert password_links_to("ana@example.com") == 1


def test_ipv4_clients_of_a_dual_stack_server_count_as_their_own_ipv4_address():
    request = RequestFactory().get("/", REMOTE_ADDR="::ffff:198.51.100.7")

    assert client_ip(request) == "198.51.100.7"


def test_ipv4_clients_of_a_dual_stack_server_do_not_share_one_counter():
    counting_afresh(rate="10/h", value="198.51.100.7")
    for _ in range(10):
        ask_for_a_link("nobody@example.com", "::ffff:198.51.100.7")
    UserFactory(email="ana@example.com")

    ask_for_a_link("ana@example.com", "::ffff:198.51.100.8")

    assert password_links_to("ana@example.com") == 1


def _rows(key):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM backstop_cache WHERE cache_key = %s", [caches["default"].make_key(key)])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_counting_an_existing_key_outside_a_transaction_takes_two_statements():
    cache = caches["default"]
    cache.add("tests:count", 4, timeout=3600)

    with CaptureQueriesContext(connection) as queries:
        assert cache.incr("tests:count") == 5

    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SELECT", "UPDATE"]
    assert cache.get("tests:count") == 5


def test_counting_inside_a_transaction_still_counts():
    cache = caches["default"]
    cache.add("tests:count-in-transaction", 1, timeout=3600)

    assert cache.incr("tests:count-in-transaction", 2) == 3
    assert cache.get("tests:count-in-transaction") == 3


def test_counting_a_missing_key_says_it_is_missing():
    with pytest.raises(ValueError, match="not found"):
        caches["default"].incr("tests:never-added")
