"""Events and value types to JSON and back, for the control server and remote consoles.

A remote console must receive the very event classes the in-process bus carries, so the
console's bridge runs unchanged. Every event and value type is a frozen dataclass with
type hints, so one generic codec covers them all: Decimals travel as strings (no float
rounding of money), datetimes as ISO 8601 with their offset, enums by value, nested
dataclasses as objects. The event's class name is its ``type``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.core import events as _events
from engine.core.model import ClosedTrade, Fill, MarketTick, Order, OrderIntent, Position, RuleValue

EVENT_TYPES: dict[str, type[_events.Event]] = {
    cls.__name__: cls
    for cls in vars(_events).values()
    if isinstance(cls, type) and issubclass(cls, _events.Event) and cls is not _events.Event
}
VALUE_TYPES = (MarketTick, Order, Fill, Position, OrderIntent, RuleValue, ClosedTrade)


class WireError(ValueError):
    """A message that does not decode into the type it claims."""


def to_json(value: Any) -> Any:
    """Any event, value type or plain container as JSON-ready data."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, enum.IntEnum) else value.name
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return str(value)


def event_to_json(ev: _events.Event) -> dict[str, Any]:
    return {"type": type(ev).__name__, **to_json(ev)}


def event_from_json(data: dict[str, Any]) -> _events.Event:
    name = data.get("type")
    cls = EVENT_TYPES.get(str(name))
    if cls is None:
        raise WireError(f"unknown event type {name!r}")
    return from_json(cls, data)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(hint: Any, data: Any) -> Any:
    """Decode ``data`` as the type ``hint`` (a dataclass, Decimal, datetime, enum, container...)."""
    if hint is Any:
        return data
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if data is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return from_json(option, data)
            except (WireError, ValueError, TypeError, ArithmeticError):
                continue
        raise WireError(f"{data!r} matches none of {hint}")
    if origin in (tuple, list):
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [from_json(item, v) for v in _as_list(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        key_t, val_t = (typing.get_args(hint) or (str, Any))[:2]
        if not isinstance(data, dict):
            raise WireError(f"expected an object, got {type(data).__name__}")
        return {from_json(key_t, k): from_json(val_t, v) for k, v in data.items()}
    if isinstance(hint, type):
        return _scalar_or_dataclass(hint, data)
    return data


def _as_list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise WireError(f"expected a list, got {type(data).__name__}")
    return data


def _scalar_or_dataclass(hint: type, data: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(data, dict):
            raise WireError(f"expected an object for {hint.__name__}")
        hints = _hints(hint)
        kwargs = {f.name: from_json(hints[f.name], data[f.name]) for f in dataclasses.fields(hint) if f.name in data}
        return hint(**kwargs)
    if data is None:
        raise WireError(f"null where a {hint.__name__} is required")
    if issubclass(hint, enum.IntEnum):
        return hint[data] if isinstance(data, str) else hint(data)
    if issubclass(hint, enum.Enum):
        return hint(data)
    if hint is Decimal:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            raise WireError(f"{data!r} is not a number")
        return Decimal(str(data))
    if hint is datetime:
        if not isinstance(data, str):
            raise WireError(f"{data!r} is not a time")
        return datetime.fromisoformat(data)
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise WireError(f"{data!r} is not a number")
        return float(data)
    if hint in (int, str, bool) and not isinstance(data, hint):
        raise WireError(f"{data!r} is not a {hint.__name__}")
    return data
