"""In-memory tables with the indexes that make list pages constant work.

Every table keeps its rows ordered by ``(created, seq)`` (``seq`` is a global insertion counter that
breaks ties inside one second), plus one such ordered list per indexed field value (for example
every charge of one customer). A list request picks the narrowest index, bisects it for the
``created`` range and the pagination cursor, and walks at most one page of rows from there.

Objects are plain dicts, rendered as JSON as they are. Nested values are never mutated in place:
updates assign a new value to the top-level key, so an object can share sub-dicts with others.
"""

import bisect
from collections.abc import Callable, Iterable
from typing import Any

Key = tuple[int, int]

TABLES: dict[str, tuple[str, ...]] = {
    # kind: indexed fields ("metadata" indexes each (key, value) pair)
    "account": (),
    "customer": ("email", "metadata"),
    "payment_method": ("customer",),
    "payment_intent": ("customer", "metadata"),
    "charge": ("customer", "payment_intent", "metadata"),
    "refund": ("charge", "payment_intent"),
    "balance_transaction": ("source", "type"),
    "dispute": ("charge", "payment_intent"),
    "event": ("type",),
    "webhook_endpoint": (),
}


def _index_values(obj: dict, field: str) -> set:
    value = obj.get(field)
    if value is None:
        return set()
    if field == "metadata":
        return set(value.items())
    if isinstance(value, dict):  # an expanded reference
        value = value.get("id")
    return {value}


class Table:
    def __init__(self, kind: str, indexed: tuple[str, ...]):
        self.kind = kind
        self.indexed = indexed
        self.rows: dict[str, dict] = {}
        self.keys: dict[str, Key] = {}
        self.order: list[Key] = []
        self.by_key: dict[Key, str] = {}
        self.indexes: dict[str, dict[Any, list[Key]]] = {field: {} for field in indexed}

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, object_id: str) -> dict | None:
        return self.rows.get(object_id)

    def insert(self, obj: dict, seq: int) -> None:
        key = (obj["created"], seq)
        object_id = obj["id"]
        self.rows[object_id] = obj
        self.keys[object_id] = key
        self.by_key[key] = object_id
        _sorted_insert(self.order, key)
        for field in self.indexed:
            for value in _index_values(obj, field):
                _sorted_insert(self.indexes[field].setdefault(value, []), key)

    def index_snapshot(self, obj: dict) -> dict[str, set]:
        return {field: _index_values(obj, field) for field in self.indexed}

    def reindex(self, obj: dict, before: dict[str, set]) -> None:
        """Move ``obj`` between index lists after an update changed indexed fields."""
        key = self.keys[obj["id"]]
        for field in self.indexed:
            after = _index_values(obj, field)
            for value in before[field] - after:
                keys = self.indexes[field].get(value, [])
                position = bisect.bisect_left(keys, key)
                if position < len(keys) and keys[position] == key:
                    del keys[position]
            for value in after - before[field]:
                _sorted_insert(self.indexes[field].setdefault(value, []), key)

    def delete(self, object_id: str) -> None:
        obj = self.rows.pop(object_id)
        key = self.keys.pop(object_id)
        del self.by_key[key]
        _sorted_remove(self.order, key)
        for field in self.indexed:
            for value in _index_values(obj, field):
                _sorted_remove(self.indexes[field].get(value, []), key)

    def candidates(self, equals: dict[str, Any]) -> tuple[list[Key], dict[str, Any]]:
        """The narrowest ordered key list for the equality filters, and the filters left over."""
        best: list[Key] | None = None
        best_field = None
        for field, value in equals.items():
            if field in self.indexes:
                keys = self.indexes[field].get(value, [])
                if best is None or len(keys) < len(best):
                    best, best_field = keys, field
        if best is None:
            return self.order, dict(equals)
        rest = {f: v for f, v in equals.items() if f != best_field}
        return best, rest

    def page(
        self,
        *,
        equals: dict[str, Any] | None = None,
        created: dict[str, int] | None = None,
        predicate: Callable[[dict], bool] | None = None,
        limit: int = 10,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[dict], bool]:
        """One page, newest first, and whether more rows exist beyond it."""
        keys, rest = self.candidates(equals or {})
        lo, hi = _created_bounds(keys, created or {})
        if starting_after is not None:
            hi = min(hi, bisect.bisect_left(keys, self.keys[starting_after]))
        if ending_before is not None:
            lo = max(lo, bisect.bisect_right(keys, self.keys[ending_before]))
        if ending_before is not None and starting_after is None:
            # The page just newer than the cursor: walk upwards from it, then flip.
            found = self._walk(keys, range(lo, hi), rest, predicate, limit + 1)
            has_more = len(found) > limit
            return list(reversed(found[:limit])), has_more
        found = self._walk(keys, range(hi - 1, lo - 1, -1), rest, predicate, limit + 1)
        return found[:limit], len(found) > limit

    def _walk(
        self,
        keys: list[Key],
        positions: Iterable[int],
        rest: dict[str, Any],
        predicate: Callable[[dict], bool] | None,
        want: int,
    ) -> list[dict]:
        found = []
        for position in positions:
            obj = self.rows[self.by_key[keys[position]]]
            if rest and any(obj.get(field) != value for field, value in rest.items()):
                continue
            if predicate is not None and not predicate(obj):
                continue
            found.append(obj)
            if len(found) >= want:
                break
        return found

    def clear(self) -> None:
        self.__init__(self.kind, self.indexed)


def _created_bounds(keys: list[Key], created: dict[str, int]) -> tuple[int, int]:
    lo, hi = 0, len(keys)
    if "gte" in created:
        lo = max(lo, bisect.bisect_left(keys, (created["gte"],)))
    if "gt" in created:
        lo = max(lo, bisect.bisect_left(keys, (created["gt"] + 1,)))
    if "lte" in created:
        hi = min(hi, bisect.bisect_left(keys, (created["lte"] + 1,)))
    if "lt" in created:
        hi = min(hi, bisect.bisect_left(keys, (created["lt"],)))
    if "eq" in created:
        lo = max(lo, bisect.bisect_left(keys, (created["eq"],)))
        hi = min(hi, bisect.bisect_left(keys, (created["eq"] + 1,)))
    return lo, hi


def _sorted_insert(keys: list[Key], key: Key) -> None:
    # Almost every insert is the newest row: append without a search.
    if not keys or keys[-1] < key:
        keys.append(key)
    else:
        bisect.insort(keys, key)


def _sorted_remove(keys: list[Key], key: Key) -> None:
    position = bisect.bisect_left(keys, key)
    if position < len(keys) and keys[position] == key:
        del keys[position]


class Store:
    def __init__(self):
        self.tables = {kind: Table(kind, indexed) for kind, indexed in TABLES.items()}
        self.seq = 0
        # Emulator-only facts that are not part of any Stripe object (the card number behind a
        # PaymentMethod, a webhook endpoint's delivery state, ...), keyed by object id.
        self.private: dict[str, dict] = {}

    def __getitem__(self, kind: str) -> Table:
        return self.tables[kind]

    def insert(self, kind: str, obj: dict) -> dict:
        self.seq += 1
        self.tables[kind].insert(obj, self.seq)
        return obj

    def counts(self) -> dict[str, int]:
        return {kind: len(table) for kind, table in self.tables.items()}

    def clear(self, keep: Callable[[str, dict], bool] | None = None) -> None:
        kept = []
        if keep is not None:
            for kind, table in self.tables.items():
                kept.extend((kind, obj, self.private.get(obj["id"])) for obj in table.rows.values()
                            if keep(kind, obj))
        for table in self.tables.values():
            table.clear()
        self.private = {}
        for kind, obj, private in kept:
            self.insert(kind, obj)
            if private is not None:
                self.private[obj["id"]] = private

    def dump(self) -> dict:
        return {
            "seq": self.seq,
            "tables": {
                kind: [[table.keys[object_id][1], obj] for object_id, obj in table.rows.items()]
                for kind, table in self.tables.items()
            },
            "private": self.private,
        }

    def load(self, data: dict) -> None:
        for table in self.tables.values():
            table.clear()
        for kind, rows in data["tables"].items():
            for seq, obj in sorted(rows, key=lambda row: row[0]):
                self.tables[kind].insert(obj, seq)
        self.seq = data["seq"]
        self.private = data.get("private", {})
