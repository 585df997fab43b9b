"""Records (frozen dataclasses) to JSON-ready dicts and back, driven by their type hints.

Every file the bridge reads back (take sidecars, the job journal) may have been edited by anyone, so
`decode` checks each value as strictly as the typed reads (`bridge.untrusted.typed_reads`) do: the type
its hint names, numbers finite and in the field's range, text and lists within their lengths. It only
builds the types the record's hints name (never one the input names) and raises ValueError naming the
field's path (`span.start_sample`, `lineage.take`) for anything the bridge would not have written.

What a record keeps on disk besides its fields' types is data: field metadata (`on_disk(...)`: the key,
ranges, what a missing key reads as, a typed read or a stand-in type) and a class attribute `ON_DISK`
(`RecordShape`: its version, keys derived for readers, cross-field checks).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bridge.untrusted import typed_reads as checked

T = TypeVar("T")

_KEY = "on_disk"
_ABSENT: Any = object()  # a key that is not in the file


@dataclass(frozen=True)
class StoredAs:
    """A field kept on disk as another type: `to` makes that value, `back(value, name)` rebuilds the
    field's own, raising ValueError that names `name`. The stored type is checked like any field's first."""

    type: Any
    to: Callable[[Any], Any]
    back: Callable[[Any, str], Any]


@dataclass(frozen=True)
class FieldRule:
    """How one field is kept on disk; every rule is optional.

    key: where the value is when not at the field's name; dots nest (`span.start_sample`).
    fallback_key: read when `key` is missing (a file written before the field existed).
    absent: what a missing key reads as; by default the field's own default, and with neither, a missing
    key reads as null (an error unless the field is optional).
    null_is_absent: a null reads as `absent` too.
    lo, hi: the range of every number in the value (list items and mapping values included).
    max_chars, max_items: the longest text and list in the value.
    choices: the only texts allowed.
    read: a typed read `read(value, name)` used instead of the type's own (for a value other than null).
    stored_as: the value is kept as another type (a `StoredAs`).
    flatten: a nested record whose keys sit beside the record's own; when optional, it is there when any
    of its keys is.
    """

    key: str | None = None
    fallback_key: str | None = None
    absent: Any = _ABSENT
    null_is_absent: bool = False
    lo: float | None = None
    hi: float | None = None
    max_chars: int | None = 4096
    max_items: int = 1024
    choices: tuple[str, ...] | None = None
    read: Callable[[Any, str], Any] | None = None
    stored_as: StoredAs | None = None
    flatten: bool = False


def on_disk(**rules: Any) -> dict[str, FieldRule]:
    """Field metadata holding a `FieldRule`, as in `field(metadata=on_disk(lo=0, hi=2))`."""
    return {_KEY: FieldRule(**rules)}


@dataclass(frozen=True)
class RecordShape:
    """What a record class adds to its fields on disk (its class attribute `ON_DISK`).

    version: written first under "version"; a file must hold one of `reads_versions` (default: this one).
    unversioned: the version of a file without the key (written before records were versioned); None:
    such a file is refused.
    derived: keys written for people and other tools (dots nest), ignored when read back unless named in
    `agree`, whose values must equal what the record read derives.
    check: cross-field rules for a record read back; raises ValueError naming the fields.
    """

    version: int | None = None
    reads_versions: tuple[int, ...] = ()
    unversioned: int | None = None
    derived: Callable[[Any], Mapping[str, Any]] | None = None
    agree: tuple[str, ...] = ()
    check: Callable[[Any], None] | None = None


_PLAIN = RecordShape()
_NO_RULE = FieldRule()


def encode(record: Any) -> dict[str, Any]:
    """A record as a JSON-ready dict: its version, its fields at their keys, its derived keys."""
    shape = _shape(type(record))
    out: dict[str, Any] = {} if shape.version is None else {"version": shape.version}
    for f, rule, _ in _fields(type(record)):
        value = getattr(record, f.name)
        if rule.flatten:
            if value is not None:
                for key, item in encode(value).items():
                    _put(out, key, item)
        else:
            _put(out, rule.key or f.name, _encode_value(value, rule))
    if shape.derived is not None:
        for key, item in shape.derived(record).items():
            _put(out, key, _encode_value(item, _NO_RULE))
    return out


def decode(cls: type[T], data: Any, *, what: str) -> T:
    """A record of class `cls` read from untrusted `data`; ValueError `what: <field path> ...` otherwise."""
    checked.mapping(data, what)
    try:
        return _decode_record(cls, data, "")
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


# --- encoding -----------------------------------------------------------------------------------------


def _encode_value(value: Any, rule: FieldRule) -> Any:
    if value is None:
        return None
    if rule.stored_as is not None:
        return _encode_value(rule.stored_as.to(value), _NO_RULE)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_encode_value(v, rule) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode_value(v, rule) for k, v in value.items()}
    return value


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    *outer, last = key.split(".")
    for part in outer:
        out = out.setdefault(part, {})
    if isinstance(value, dict) and isinstance(out.get(last), dict):
        for k, v in value.items():  # a flattened record's group beside the record's own (both under "span")
            _put(out[last], k, v)
    else:
        out[last] = value


# --- decoding -----------------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _get(data: Mapping[str, Any], key: str, path: str) -> Any:
    """The value at a dotted key; _ABSENT when it, or a group holding it, is missing or null."""
    *outer, last = key.split(".")
    where = path
    for part in outer:
        where = _join(where, part)
        found = data.get(part)
        if found is None:
            return _ABSENT
        data = checked.mapping(found, where)
    return data.get(last, _ABSENT)


def _decode_record(cls: type[T], data: Mapping[str, Any], path: str) -> T:
    shape = _shape(cls)
    if shape.version is not None:
        _check_version(data, shape, path)
    values = {}
    for f, rule, hint in _fields(cls):
        if rule.flatten:
            inner = _optional_arm(hint)
            if inner is not hint and not any(_get(data, k, path) is not _ABSENT for k in _keys(inner)):
                values[f.name] = None
            else:
                values[f.name] = _decode_record(inner, data, path)
            continue
        where = _join(path, rule.key or f.name)
        raw = _get(data, rule.key or f.name, path)
        if raw is _ABSENT and rule.fallback_key is not None:
            raw, where = _get(data, rule.fallback_key, path), _join(path, rule.fallback_key)
        if raw is _ABSENT or (raw is None and rule.null_is_absent):
            default = _default(f, rule)
            if default is not _ABSENT:
                values[f.name] = default
                continue
            raw = None
        values[f.name] = _decode_value(hint, raw, where, rule)
    record = cls(**values)
    if shape.derived is not None and shape.agree:
        derived = shape.derived(record)
        for key in shape.agree:
            found, expected = _get(data, key, path), _encode_value(derived[key], _NO_RULE)
            if found != expected or type(found) is not type(expected):
                shown = None if found is _ABSENT else found
                raise ValueError(f"{_join(path, key)} {shown!r} disagrees with the record's {expected!r}")
    if shape.check is not None:
        shape.check(record)
    return record


def _check_version(data: Mapping[str, Any], shape: RecordShape, path: str) -> None:
    reads = shape.reads_versions or (shape.version,)
    found = data.get("version", _ABSENT)
    if found is _ABSENT:
        found = shape.unversioned
    if type(found) is not int or found not in reads:  # true == 1 and 2.0 == 2: not versions
        listed = " and ".join(str(v) for v in reads)
        raise ValueError(
            f"{_join(path, 'version')} {found!r}; this bridge reads version{'s' * (len(reads) > 1)} {listed}"
        )


def _default(f: dataclasses.Field, rule: FieldRule) -> Any:
    if rule.absent is not _ABSENT:
        return copy.copy(rule.absent)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _ABSENT


def _decode_value(hint: Any, raw: Any, name: str, rule: FieldRule) -> Any:
    inner = _optional_arm(hint)
    if inner is not hint:
        if raw is None:
            return None
        hint = inner
    if rule.stored_as is not None:
        stored = _decode_value(rule.stored_as.type, raw, name, dataclasses.replace(rule, stored_as=None))
        return rule.stored_as.back(stored, name)
    if rule.read is not None:
        return rule.read(raw, name)
    if hint is Any:
        return raw
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _decode_record(hint, checked.mapping(raw, name), name)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint, raw, name)
    if hint is bool:
        if type(raw) is not bool:
            raise ValueError(f"{name} must be true or false, got {type(raw).__name__}")
        return raw
    if hint is int:
        return checked.integer(raw, name, lo=_whole(rule.lo), hi=_whole(rule.hi))
    if hint is float:
        number = checked.number(raw, name)
        if (rule.lo is not None and number < rule.lo) or (rule.hi is not None and number > rule.hi):
            raise ValueError(f"{name} {number} is outside [{rule.lo}, {rule.hi}]")
        return number
    if hint is str:
        if rule.choices is not None:
            return checked.one_of(raw, name, rule.choices)
        return checked.text(raw, name, max_chars=rule.max_chars)
    if hint is Path:
        return Path(checked.text(raw, name, max_chars=rule.max_chars))
    if origin in (tuple, list):
        return _sequence(hint, origin, raw, name, rule)
    if origin in (dict, Mapping):
        return _mapping(hint, raw, name, rule)
    raise TypeError(f"{name}: the record codec cannot read a {hint!r}")  # a record declared with an unknown type


def _enum(hint: type[enum.Enum], raw: Any, name: str) -> enum.Enum:
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        try:
            return hint(raw)
        except ValueError:
            pass
    shown = repr(raw)[:40] if isinstance(raw, (str, int, float)) else type(raw).__name__
    raise ValueError(f"{name} {shown} is not one of {', '.join(str(m.value) for m in hint)}")


def _sequence(hint: Any, origin: type, raw: Any, name: str, rule: FieldRule) -> Any:
    args = typing.get_args(hint)
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"{name} must be a list, got {type(raw).__name__}")
    if origin is tuple and args and args[-1] is not Ellipsis:  # a fixed shape: (host, port)
        if len(raw) != len(args):
            raise ValueError(f"{name} must be a list of {len(args)} items, got {len(raw)}")
        return tuple(_decode_value(a, v, f"{name}[{i}]", rule) for i, (a, v) in enumerate(zip(args, raw)))
    if len(raw) > rule.max_items:
        raise ValueError(f"{name} has over {rule.max_items} items")
    item = args[0] if args else Any
    items = [_decode_value(item, v, f"{name}[{i}]", rule) for i, v in enumerate(raw)]
    return tuple(items) if origin is tuple else items


def _mapping(hint: Any, raw: Any, name: str, rule: FieldRule) -> dict[Any, Any]:
    key_type, value_type = typing.get_args(hint) or (str, Any)
    out = {}
    for key, value in checked.mapping(raw, name).items():
        if not isinstance(key, str):
            raise ValueError(f"{name}: key {key!r} is not text")
        if key_type is int:  # JSON keys are text: whole numbers are written as digits
            if not (key.isascii() and key.isdigit()) or len(key) > 6:
                raise ValueError(f"{name}: {key[:20]!r} is not a whole number")
            out[int(key)] = _decode_value(value_type, value, f"{name}[{key}]", rule)
        elif key_type is str:
            out[key] = _decode_value(value_type, value, f"{name}[{key[:40]!r}]", rule)
        else:
            raise TypeError(f"{name}: the record codec cannot read mapping keys of {key_type!r}")
    return out


def _whole(bound: float | None) -> int | None:
    return None if bound is None else int(bound) if math.isfinite(bound) else None


# --- the classes' declarations, read once ---------------------------------------------------------------


def _shape(cls: type) -> RecordShape:
    return getattr(cls, "ON_DISK", _PLAIN)


def _optional_arm(hint: Any) -> Any:
    """X for `X | None`; the hint itself otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(arms) == 1 and len(typing.get_args(hint)) == 2:
            return arms[0]
        raise TypeError(f"the record codec reads `X | None` unions only, not {hint!r}")
    return hint


@functools.cache
def _fields(cls: type) -> tuple[tuple[dataclasses.Field, FieldRule, Any], ...]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a record (a dataclass)")
    hints = typing.get_type_hints(cls)
    return tuple((f, f.metadata.get(_KEY, _NO_RULE), hints[f.name]) for f in dataclasses.fields(cls))


@functools.cache
def _keys(cls: type) -> tuple[str, ...]:
    """The keys a (flattened) record's fields are kept at."""
    keys: list[str] = []
    for f, rule, hint in _fields(cls):
        keys.extend(_keys(_optional_arm(hint)) if rule.flatten else [rule.key or f.name])
    return tuple(keys)
