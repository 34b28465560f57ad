"""Stripe's wire format for requests: form-encoded, with brackets for nesting.

``metadata[order_id]=7&expand[]=customer&expand[1]=latest_charge&items[0][price]=x`` decodes to
``{"metadata": {"order_id": "7"}, "expand": ["customer", "latest_charge"],
"items": [{"price": "x"}]}``.
stripe-python sends indexed arrays (``expand[0]``); Stripe.js and curl users send ``expand[]``.
"""

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")

# Hashes whose keys are user data, so digit-only keys must stay keys rather than become an array.
_FREE_FORM_HASHES = {"metadata"}


def parse_form(text: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        parts = _split_key(raw_key)
        _insert(root, parts, value, raw_key)
    return _finalize(root, None)


def _split_key(raw_key: str) -> list[str]:
    head, bracket, _ = raw_key.partition("[")
    if not bracket:
        return [raw_key]
    rest = raw_key[len(head):]
    parts = _KEY_PART.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        raise invalid(f"Invalid parameter name: {raw_key}", param=head)
    return [head, *parts]


def _insert(node: dict, parts: list[str], value: str, raw_key: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            # "expand[]": append, represented as the next integer key until finalised.
            part = str(len(node))
        if last:
            if isinstance(node.get(part), dict):
                raise invalid(f"Invalid hash: {raw_key} is both a hash and a value", param=parts[0])
            node[part] = value
        else:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise invalid(f"Invalid hash: {raw_key} is both a value and a hash", param=parts[0])
            node = child


def _finalize(value: Any, key: str | None) -> Any:
    if not isinstance(value, dict):
        return value
    if key not in _FREE_FORM_HASHES and value and all(k.isdigit() for k in value):
        return [_finalize(value[k], None) for k in sorted(value, key=int)]
    return {k: _finalize(v, k) for k, v in value.items()}


class Params:
    """Typed access to decoded params that remembers what was read, so that anything the endpoint
    never looked at can be refused with Stripe's ``parameter_unknown`` error."""

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self._used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def accept(self, *names: str) -> None:
        """Real Stripe parameters the emulator accepts but does not act on."""
        self._used.update(names)

    def raw(self, name: str, default: Any = None) -> Any:
        self._used.add(name)
        return self.data.get(name, default)

    def string(
        self, name: str, *, required: bool = False, empty_is_none: bool = True
    ) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise missing_param(name)
            return None
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {value!r}", param=name)
        if value == "" and empty_is_none:
            return None
        if len(value) > 5000:
            raise invalid(f"Invalid string: {name} must be at most 5000 characters", param=name)
        return value

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise missing_param(name)
            return None
        number = to_int(value, name)
        if minimum is not None and number < minimum:
            raise invalid(
                f"This value must be greater than or equal to {minimum}.",
                param=name,
                code="parameter_invalid_integer",
            )
        return number

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.raw(name)
        if value is None or value == "":
            return default
        return to_bool(value, name)

    def enum(self, name: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in choices:
            raise invalid(
                f"Invalid {name}: must be one of {', '.join(choices)}",
                param=name,
                code="parameter_invalid_empty" if value == "" else None,
            )
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.raw(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {name} must be a hash", param=name)
        return value

    def array(self, name: str) -> list[Any] | None:
        value = self.raw(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            # A single value where an array is expected: Stripe refuses it.
            raise invalid(f"Invalid array: {name} must be an array", param=name)
        if isinstance(value, dict):
            raise invalid(f"Invalid array: {name} must be an array", param=name)
        return value

    def metadata(self, name: str = "metadata") -> dict[str, str] | None:
        """``None`` when absent; ``{}`` when unset with ``metadata=``; otherwise the new keys, where
        an empty string value means "delete this key" (applied by ``merge_metadata``)."""
        value = self.raw(name)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid("Invalid object: metadata must be a hash", param=name)
        if len(value) > 50:
            raise invalid("Invalid metadata: at most 50 keys are allowed", param=name)
        for key, item in value.items():
            if not isinstance(item, str):
                raise invalid(f"Invalid metadata value for {key}", param=f"{name}[{key}]")
            if len(key) > 40:
                raise invalid(
                    "Metadata keys can have a maximum length of 40 characters.",
                    param=f"{name}[{key}]",
                )
            if len(item) > 500:
                raise invalid(
                    "Metadata values can have a maximum length of 500 characters.",
                    param=f"{name}[{key}]",
                )
        return value

    def finish(self) -> None:
        for name in self.data:
            if name not in self._used:
                raise invalid(
                    f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
                )


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    if update is None:
        return current
    if update == {}:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def missing_param(name: str):
    return invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")


def to_int(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")


def to_bool(value: Any, name: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid(f"Invalid boolean: {value}", param=name)
