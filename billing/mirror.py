"""The pull sync: the one writer of dj-stripe's mirror of payments, refunds and disputes.

Webhooks settle orders but do not mirror (docs/decisions/0009-webhooks-settle-the-mirror-pulls.md),
and they can be lost anyway (a crash, a deploy, Stripe giving up). Each sweep first lists,
through Stripe's list APIs, the PaymentIntents, Charges, Refunds and Disputes created since a
stored high-water mark (minus an overlap, because Stripe's lists are eventually consistent), and
mirrors every one that is new or changed with dj-stripe's own conversion: new ones fifty to a
transaction, in one INSERT per kind of row, a changed one with `sync_from_stripe_data`
(docs/decisions/0031-mirror-without-look-ups.md). The cost grows with new activity, not
with history: a quiet minute is four empty list calls.

A refund or a dispute changes its charge without creating one, so the charge behind each new
refund or dispute is fetched again; that is how a refund made in Stripe's dashboard reaches the
mirror, and from there the sweep's query.
"""

import contextlib
import functools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import models, router, transaction
from django.db.models.signals import post_save, pre_save
from djstripe import models as djstripe_models
from djstripe.models.base import StripeModel
from djstripe.settings import djstripe_settings

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


# A pass's memo, per thread: the owner account, and which rows the mirror holds. Two passes at
# once (the sweep, `reconcile` by hand, two threads of a test) never see each other's memo, and
# none outlives its pass.
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
_dj_stripe_get_or_create = None


@contextlib.contextmanager
def _pass_memo():
    """dj-stripe looks up the Stripe account that owns every object it mirrors, and every object
    that one refers to (a charge's customer, payment method, balance transaction): an API key row
    and its account, in a transaction of their own, four statements each time, about twenty per
    purchase. One pass mirrors objects of one account with one key, so it asks once per key here.

    dj-stripe also looks up every object a mirrored one refers to, one `SELECT` each, and creates
    the missing ones in a savepoint after a second `SELECT`: about twenty statements per purchase.
    A pass asks once per resource which of them the mirror holds (`_Rows`) and answers those
    look-ups from that (see `_get_or_create`).

    dj-stripe's two methods are replaced once, for good, by ones that read this thread's memo
    during a pass and behave as dj-stripe's otherwise: swapping them in and out around each pass
    let two passes at once restore each other's memo and keep a stale account for ever."""
    global _ask_owner_account, _dj_stripe_get_or_create
    with _install:
        if _ask_owner_account is None:
            _ask_owner_account = djstripe_models.Account.get_or_retrieve_for_api_key
            djstripe_models.Account.get_or_retrieve_for_api_key = staticmethod(_owner_account)
        if _dj_stripe_get_or_create is None:
            _dj_stripe_get_or_create = StripeModel.__dict__["_get_or_create_from_stripe_object"].__func__
            StripeModel._get_or_create_from_stripe_object = classmethod(_get_or_create)
    _pass.owner_accounts = {}
    _pass.rows = None
    _pass.pending = None
    try:
        yield
    finally:
        _pass.owner_accounts = None
        _pass.rows = None
        _pass.pending = None


class _Rows:
    """What this thread knows the mirror holds during a batch: rows other transactions committed
    (asked once per resource, `known`), ids asked about and not found (`absent`), and rows this
    batch's transaction wrote (`written`, kept only once that transaction commits: a rolled-back
    batch must not leave rows in the memo that no longer exist)."""

    def __init__(self):
        self.known: dict[type, dict] = {}
        self.absent: dict[type, set] = {}
        self.written: dict[type, dict] = {}

    def find(self, model, id_):
        return self.written.get(model, {}).get(id_) or self.known.get(model, {}).get(id_)

    def is_absent(self, model, id_) -> bool:
        return id_ in self.absent.get(model, ()) and id_ not in self.written.get(model, {})

    def wrote(self, instance):
        self.written.setdefault(type(instance), {})[instance.id] = instance

    def commit(self):
        for model, rows in self.written.items():
            self.known.setdefault(model, {}).update(rows)
            self.absent.get(model, set()).difference_update(rows)
        self.written = {}

    def ask(self, model, ids):
        """One query for the rows of `model` among `ids` not known yet. Only the ids are read:
        anything else on a row is read lazily if dj-stripe ever looks (it does not here)."""
        known = self.known.setdefault(model, {})
        ids = sorted(set(ids) - set(known))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found = {row.id: row for row in model.objects.filter(id__in=chunk).only("djstripe_id", "id")}
            known.update(found)
            self.absent.setdefault(model, set()).update(set(chunk) - set(found))


def _get_or_create(cls, data, field_name="id", refetch=True, current_ids=None, pending_relations=None,
                   save=True, stripe_account=None, api_key=djstripe_settings.STRIPE_SECRET_KEY):
    """dj-stripe's `_get_or_create_from_stripe_object`, answered from the batch's memo where it
    can be: a referenced row the mirror holds is not looked up again, and a referenced object
    Stripe sent in full (expanded) that the mirror lacks is written with dj-stripe's own
    conversion and hooks, without a second look-up or a savepoint. If another transaction wrote
    that row meanwhile, the `INSERT` fails and the whole batch is mirrored again object by object
    the way dj-stripe does (`_mirror_batch`). Anything else goes to dj-stripe's own method."""
    rows = getattr(_pass, "rows", None)
    value = data.get(field_name)
    id_ = _id(value)
    if rows is None or field_name == "id" or not id_:
        return _dj_stripe_get_or_create(cls, data, field_name, refetch, current_ids, pending_relations, save,
                                        stripe_account, api_key)
    found = rows.find(cls, id_)
    if found is not None:
        return found, False
    if isinstance(value, dict) and rows.is_absent(cls, id_) and save:
        return _insert(cls, value, rows, current_ids=current_ids, pending_relations=pending_relations,
                       stripe_account=stripe_account, api_key=api_key), True
    return _dj_stripe_get_or_create(cls, data, field_name, refetch, current_ids, pending_relations, save,
                                    stripe_account, api_key)


def _insert(model, data, rows, *, current_ids=None, pending_relations=None, stripe_account=None,
            api_key=None):
    """dj-stripe's `_create_from_stripe_object` for an object known to be missing from the
    mirror: the same conversion and hooks, without a `SELECT` first. In a batch the row is kept
    for the batch's `INSERT` of its kind (`_Pending`); otherwise it is saved at once."""
    api_key = api_key or djstripe_settings.STRIPE_SECRET_KEY
    current_ids = current_ids if current_ids is not None else {data["id"]}
    pending_relations = pending_relations if pending_relations is not None else []
    record = model._stripe_object_to_record(data, current_ids=current_ids, pending_relations=pending_relations,
                                            stripe_account=stripe_account, api_key=api_key)
    instance = model(**record)
    instance._attach_objects_hook(model, data, api_key=api_key, current_ids=current_ids)
    rows.wrote(instance)
    after = functools.partial(instance._attach_objects_post_save_hook, model, data, api_key=api_key,
                              pending_relations=pending_relations)
    pending = getattr(_pass, "pending", None)
    if pending is not None:
        pending.add(instance, after)
    else:
        instance.save(force_insert=True)
        after()
    return instance


class _Pending:
    """A batch's new rows, written with one `INSERT` per kind (`bulk_create`) instead of one each.

    A row refers to others by their Stripe id, but Django saves a row only once the rows it refers
    to have been saved: so rows are written in rounds, a row one round after the latest of the
    new rows it refers to (a card after its customer, a PaymentIntent after both). Then, row by
    row in the order they were made, what `save()` and dj-stripe would have done next: Django's
    `post_save` (billing/mirror_erasure.py listens) and dj-stripe's post-save hook."""

    def __init__(self):
        self.made: list = []  # (instance, after), in the order they were made

    def add(self, instance, after):
        instance._mirror_round = max((getattr(related, "_mirror_round", 0) + 1 for related in self._related(instance)
                                      if related.pk is None), default=0)
        self.made.append((instance, after))

    @staticmethod
    def _related(instance):
        for f in instance._meta.concrete_fields:
            if f.is_relation and f.is_cached(instance):
                related = f.get_cached_value(instance)
                if related is not None:
                    yield related

    def write(self):
        made, self.made = self.made, []
        rounds: dict[int, dict[type, list]] = {}
        for instance, _after in made:
            rounds.setdefault(instance._mirror_round, {}).setdefault(type(instance), []).append(instance)
        for round_ in sorted(rounds):
            for model, instances in rounds[round_].items():
                for instance in instances:
                    pre_save.send(sender=model, instance=instance, raw=False, using=router.db_for_write(model),
                                  update_fields=None)
                model.objects.bulk_create(instances)
        for instance, after in made:
            post_save.send(sender=type(instance), instance=instance, created=True, update_fields=None, raw=False,
                           using=instance._state.db)
            after()


@functools.cache
def _references(model) -> list:
    """The fields through which an object of this kind refers to others dj-stripe mirrors with it."""
    return [f for f in model._meta.concrete_fields
            if isinstance(f, models.ForeignKey) and issubclass(f.related_model, StripeModel)
            and not f.name.startswith("djstripe_")]


def _ask_referenced(rows: _Rows, model, objects: list[dict]):
    """Which rows the mirror holds among those `objects` refer to (and the objects they carry in
    full refer to): one query per kind of row."""
    wanted: dict[type, set] = {}
    for data in objects:
        for ref in _references(model):
            value = data.get(ref.name)
            if not value:
                continue
            wanted.setdefault(ref.related_model, set()).add(_id(value))
            if isinstance(value, dict):
                for inner in _references(ref.related_model):
                    if value.get(inner.name):
                        wanted.setdefault(inner.related_model, set()).add(_id(value[inner.name]))
    for kind, ids in wanted.items():
        rows.ask(kind, ids)


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
    with _pass_memo():
        return _sync(since=since, dry_run=dry_run)


# Objects mirrored in one transaction: one BEGIN and COMMIT for many objects, and a failure
# (another pass wrote one of its rows first) costs redoing this many one by one.
BATCH_SIZE = 50


def _mirror_batch(model, batch: list, rows: _Rows, result: SyncResult) -> bool:
    """Mirror `batch` ((object, new?) pairs) in one transaction; if anything in it fails, roll it
    back and mirror each object on its own the way dj-stripe does. True if every object is
    mirrored."""
    _pass.rows = rows
    try:
        with transaction.atomic():
            _pass.pending = _Pending()
            for obj, new in batch:
                if new:
                    _insert(model, obj, rows)
            _pass.pending.write()
            # A changed object is saved by dj-stripe as it goes, so what it refers to is too.
            _pass.pending = None
            for obj, new in batch:
                if not new:
                    model.sync_from_stripe_data(obj)
        rows.commit()
        return True
    except Exception:  # a row another pass wrote first, or one bad object: each on its own below
        rows.written = {}
        rows.absent = {}  # what was missing may not be any more: dj-stripe looks again from here on
        logger.info("Pull sync: a batch of %s failed; mirroring its objects one by one", model.__name__,
                    exc_info=True)
    finally:
        _pass.rows = None
        _pass.pending = None
    ok = True
    for obj, _new in batch:
        try:
            model.sync_from_stripe_data(obj)
        except Exception as exc:  # one bad object must not stop the net
            ok = False
            logger.exception("Could not mirror %s", obj.id)
            result.errors.append(f"mirroring {obj.id}: {exc}")
    return ok


# A charge refers to its PaymentIntent, customer and card by id; dj-stripe fetches from Stripe, one
# call each, whichever the mirror lacks. That happens when the payment began after the pass listed
# PaymentIntents (a minute's purchases take a few seconds to mirror, and customers keep buying):
# such a charge, created this recently, waits for the next pass, which lists them first.
WAIT_FOR_NEXT_PASS_SECONDS = 60
_CHARGE_REFERENCES = {"payment_intent": djstripe_models.PaymentIntent, "customer": djstripe_models.Customer,
                      "payment_method": djstripe_models.PaymentMethod}


def _waits_for_next_pass(rows: _Rows, model, data: dict) -> bool:
    """A charge of the last minute (by this machine's clock, so a Stripe clock far off ours never
    holds one back for long) that refers to something neither mirrored nor listed by this pass."""
    if model is not djstripe_models.Charge or abs(time.time() - data["created"]) > WAIT_FOR_NEXT_PASS_SECONDS:
        return False
    return any(_id(data.get(name)) and rows.find(kind, _id(data[name])) is None
               for name, kind in _CHARGE_REFERENCES.items())


def _write(model, batch: list, rows: _Rows, result: SyncResult, waiting: list) -> bool:
    """Mirror a batch of (object, data, new?), but for charges that wait for the next pass (their
    `created` added to `waiting`). False if anything failed."""
    _ask_referenced(rows, model, [data for _obj, data, _new in batch])
    now = []
    for obj, data, new in batch:
        if _waits_for_next_pass(rows, model, data):
            waiting.append(data["created"])
        else:
            now.append((obj, new))
    return _mirror_batch(model, now, rows, result) if now else True


def _sync(*, since: int | None, dry_run: bool) -> SyncResult:
    result = SyncResult()
    charges_to_refresh: set[str] = set()
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    rows = _Rows()
    # Out of time counts only once the pass has written something: however slow Stripe or this
    # machine is, every pass moves the mirror on by at least one object, never zero for ever.
    for resource in stripe_api.LISTABLE:
        if sum(result.mirrored.values()) and time.monotonic() > deadline:
            break  # out of time: the next pass lists this resource from its mark
        model = MODELS[resource]
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
        mirrored = _mirrored_data(model, [obj.id for obj in objects])
        batch, waiting = [], []
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
            obj = _storable(obj)
            data = json.loads(str(obj))
            if _fingerprint(mirrored.get(obj.id)) == _fingerprint(data):
                continue
            if resource in ("refunds", "disputes") and data.get("charge"):
                charges_to_refresh.add(_id(data["charge"]))
            changed += 1
            if dry_run:
                continue
            batch.append((obj, data, obj.id not in mirrored))
            if len(batch) >= BATCH_SIZE:
                failed = not _write(model, batch, rows, result, waiting) or failed
                batch = []
        if batch:
            failed = not _write(model, batch, rows, result, waiting) or failed
        result.listed[resource] = listed
        result.mirrored[resource] = changed - len(waiting)
        if waiting:  # the next pass lists them again: its window starts before the oldest one
            newest = min(newest, *waiting)
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
