"""The pull sync: the one writer of dj-stripe's mirror of payments, refunds and disputes.

Webhooks settle orders but do not mirror (docs/decisions/0009-webhooks-settle-the-mirror-pulls.md),
and they can be lost anyway (a crash, a deploy, Stripe giving up). Each sweep first lists,
through Stripe's list APIs, the PaymentIntents, Charges, Refunds and Disputes created since a
stored high-water mark (minus an overlap, because Stripe's lists are eventually consistent), and
mirrors every one that is new or changed with dj-stripe's own `sync_from_stripe_data`. The cost
grows with new activity, not with history: a quiet minute is four empty list calls.

A refund or a dispute changes its charge without creating one, so the charge behind each new
refund or dispute is fetched again; that is how a refund made in Stripe's dashboard reaches the
mirror, and from there the sweep's query.
"""

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from djstripe import models as djstripe_models

from billing import stripe_api
from billing.models import StripeSyncCursor
from config.failpoints import failpoint

logger = logging.getLogger(__name__)

MODELS = {
    "payment_intents": djstripe_models.PaymentIntent,
    "charges": djstripe_models.Charge,
    "refunds": djstripe_models.Refund,
    "disputes": djstripe_models.Dispute,
}
# Objects created up to this long before the high-water mark are listed again: an object can
# appear in Stripe's lists a little after its `created` time, and clocks differ.
OVERLAP = timedelta(minutes=5)
# With no high-water mark yet (a new installation), how far back the first sync reads.
FIRST_SYNC_WINDOW = timedelta(days=3)
# Objects written per resource per pass. A long catch-up (a restore, `--since 30d`) then advances
# the high-water mark pass by pass instead of running past the task timeout and starting over.
MAX_MIRRORED_PER_PASS = 2000
# And at most this long writing, across resources: the sweep runs as a task that is killed after
# 60 s (Q_CLUSTER's timeout), and a killed pass saves no high-water mark. Under heavy load a
# minute's purchases can take longer than that to mirror; each pass then saves what it did and
# the next one continues, so the mirror catches up instead of starting over.
TIME_BUDGET_SECONDS = 30


# A pass's memo of the owner account, per thread: two passes at once (the sweep, `reconcile` by
# hand, two threads of a test) never see each other's memo, and none outlives its pass.
_pass = threading.local()
_install = threading.Lock()


def _owner_account(api_key):
    memo = getattr(_pass, "owner_accounts", None)
    if memo is None:  # outside a pass (a webhook, dj-stripe's own commands): dj-stripe's way
        return _ask_owner_account(api_key)
    if api_key not in memo:
        memo[api_key] = _ask_owner_account(api_key)
    return memo[api_key]


_ask_owner_account = None


@contextlib.contextmanager
def _owner_account_once_per_pass():
    """dj-stripe looks up the Stripe account that owns every object it mirrors, and every object
    that one refers to (a charge's customer, payment method, balance transaction): an API key row
    and its account, in a transaction of their own, four statements each time, about twenty per
    purchase. One pass mirrors objects of one account with one key, so it asks once per key here.

    dj-stripe's lookup is replaced once, for good, by one that reads this thread's memo during a
    pass and asks as dj-stripe does otherwise: swapping it in and out around each pass let two
    passes at once restore each other's memo and keep a stale account for ever."""
    global _ask_owner_account
    with _install:
        if _ask_owner_account is None:
            _ask_owner_account = djstripe_models.Account.get_or_retrieve_for_api_key
            djstripe_models.Account.get_or_retrieve_for_api_key = staticmethod(_owner_account)
    _pass.owner_accounts = {}
    try:
        yield
    finally:
        _pass.owner_accounts = None


@dataclass
class SyncResult:
    listed: dict = field(default_factory=dict)
    mirrored: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)


def stripe_mirror_sync(*, since: int | None = None, dry_run: bool = False) -> SyncResult:
    """List each resource from its high-water mark (or from `since`, Unix time) and mirror it.

    With `dry_run`, Stripe is read and nothing is written: `mirrored` counts what would change.
    An error on one object is recorded and the rest go on; the high-water mark then stays where
    it was for that resource, so the next run reads the same window again.
    """
    with _owner_account_once_per_pass():
        return _sync(since=since, dry_run=dry_run)


def _sync(*, since: int | None, dry_run: bool) -> SyncResult:
    result = SyncResult()
    charges_to_refresh: set[str] = set()
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    # Out of time counts only once the pass has written something: however slow Stripe or this
    # machine is, every pass moves the mirror on by at least one object, never zero for ever.
    for resource in stripe_api.LISTABLE:
        if sum(result.mirrored.values()) and time.monotonic() > deadline:
            break  # out of time: the next pass lists this resource from its mark
        cursor = StripeSyncCursor.objects.filter(resource=resource).values_list("created_gte", flat=True).first()
        start = since if since is not None else (
            cursor - int(OVERLAP.total_seconds()) if cursor is not None
            else int(time.time() - FIRST_SYNC_WINDOW.total_seconds()))
        listed, changed, newest, failed = 0, 0, cursor or 0, False
        try:
            objects = list(stripe_api.list_created_since(resource, start))
        except stripe_api.StripeError as exc:
            result.errors.append(f"listing {resource}: {exc}")
            continue
        mirrored = _mirrored_data(MODELS[resource], [obj.id for obj in objects])
        # Oldest first: a charge's PaymentIntent is mirrored before the charge that points to it,
        # and a pass cut short (MAX_MIRRORED_PER_PASS, TIME_BUDGET_SECONDS) leaves the mark where it stopped.
        for obj in reversed(objects):
            out_of_time = (changed or sum(result.mirrored.values())) and time.monotonic() > deadline
            if changed >= MAX_MIRRORED_PER_PASS or out_of_time:
                logger.info("Pull sync: %s stopped after %s written this pass; the next pass continues",
                            resource, changed)
                break
            listed += 1
            if listed % 1000 == 0:
                logger.info("Pull sync: %s %s of %s read", resource, listed, len(objects))
            newest = max(newest, obj.created)
            data = json.loads(str(obj))
            if _fingerprint(mirrored.get(obj.id)) == _fingerprint(data):
                continue
            if resource in ("refunds", "disputes") and data.get("charge"):
                charges_to_refresh.add(_id(data["charge"]))
            changed += 1
            if dry_run:
                continue
            try:
                MODELS[resource].sync_from_stripe_data(_storable(obj))
            except Exception as exc:  # one bad object must not stop the net
                failed = True
                logger.exception("Could not mirror %s %s", resource, obj.id)
                result.errors.append(f"mirroring {obj.id}: {exc}")
        result.listed[resource] = listed
        result.mirrored[resource] = changed
        if not dry_run and not failed and newest:
            StripeSyncCursor.objects.update_or_create(resource=resource, defaults={"created_gte": newest})
        failpoint("sweep.after_sync_page")
    refreshed = 0
    for charge_id in sorted(charges_to_refresh):
        if dry_run:
            refreshed += 1
            continue
        try:
            djstripe_models.Charge.sync_from_stripe_data(_storable(stripe_api.charge_retrieve(charge_id)))
            refreshed += 1
        except Exception as exc:
            logger.exception("Could not refresh charge %s", charge_id)
            result.errors.append(f"refreshing {charge_id}: {exc}")
    result.mirrored["charges_refreshed"] = refreshed
    return result


def _storable(obj):
    """The object without NUL characters, which PostgreSQL cannot hold in text or JSON: Stripe
    accepts them (a card's billing name typed in the browser), and one object the mirror could
    not store would keep the high-water mark where it is, failing every later pass."""
    def clean(value):
        if isinstance(value, str):
            return value.replace("\x00", "")
        if isinstance(value, dict):
            return {clean(key): clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    text = str(obj)  # JSON, where a NUL is always written as \u0000
    if "\\u0000" not in text:
        return obj
    return type(obj).construct_from(clean(json.loads(text)), obj.api_key, stripe_account=obj.stripe_account)


def _id(value):
    return value.get("id") if isinstance(value, dict) else value


def _fingerprint(data: dict | None):
    """The object with expanded references reduced to their ids: dj-stripe stores some objects
    as fetched with `expand`, the list API returns ids, and that alone is not a change."""
    if not data:
        return None
    return {key: _id(value) if isinstance(value, dict) and "object" in value else value
            for key, value in data.items()}


def _mirrored_data(model, ids: list[str]) -> dict:
    found = {}
    for start in range(0, len(ids), 500):
        found.update(model.objects.filter(id__in=ids[start:start + 500]).values_list("id", "stripe_data"))
    return found
