"""Frozen records: the syntax tree's (Record), the IR's and the plan's (Node).

A subclass declares its fields as annotations with defaults, as a dataclass does;
a Node is constructed by keyword only. Plain classes rather than a validation library's models:
`synthc check` runs on every keystroke and commit, and importing such a library and building
its validators was a third of the process's time.

- A Node's construction converts what JSON cannot tell apart, once: an int given for a float field is
  a float, a list given for a tuple field is a tuple. So a plan's JSON, and its hash, do not
  depend on how the compiler happened to spell a value.
- Records are immutable (`copy(**changes)` makes a changed one), compare by value and hash.
- `dump()` gives plain data (tuples as lists, dates as ISO text in JSON mode), with the fields
  declared `field(exclude=True)` left out, and those with `exclude_if` when it holds.
- `load(data)` builds a node from such data, checking every value against its declared type;
  a mismatch is a ValueError that names where it is.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:
    from typing_extensions import dataclass_transform

_MISSING: Any = object()


def _hashable(value: Any) -> Any:
    """A value as something hash() takes: a dict, list or set (a cell's key, a JSON Schema) as
    its canonical JSON text, so a record hashes whatever plain data it holds and equal records
    hash equal."""
    if not isinstance(value, (dict, list, set)):
        return value
    return json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
_R = TypeVar("_R", bound="Record")
_N = TypeVar("_N", bound="Node")


class _FieldSpec:
    __slots__ = ("default", "exclude", "exclude_if")

    def __init__(self, default: Any, exclude: bool, exclude_if: Callable[[Any], bool] | None):
        self.default, self.exclude, self.exclude_if = default, exclude, exclude_if


def field(*, default: Any = _MISSING, exclude: bool = False,
          exclude_if: Callable[[Any], bool] | None = None) -> Any:
    """A field's default and how it is dumped: `exclude` never, `exclude_if(value)` when true."""
    return _FieldSpec(default, exclude, exclude_if)


def _to_float(v: Any) -> Any:
    return float(v) if type(v) is int else v


def _to_int(v: Any) -> Any:
    return int(v) if type(v) is float and v.is_integer() else v


def _to_tuple(v: Any) -> Any:
    return tuple(v) if type(v) is list else v


def _to_floats(v: Any) -> Any:
    return tuple(float(x) if type(x) is int else x for x in v) if isinstance(v, (list, tuple)) else v


def _json_conversion(annotation: str) -> Callable[[Any], Any] | None:
    """What a Node's construction does to a value of this declared type (annotations stay text)."""
    bare = annotation.replace(" | None", "")
    if bare == "float":
        return _to_float
    if bare == "int":
        return _to_int
    if bare == "tuple[float, ...]":
        return _to_floats
    if bare.startswith("tuple["):
        return _to_tuple
    return None


class Record:
    """Immutable fields declared as annotations, as a dataclass has them, without the code a
    dataclass compiles for each class (most of the time it takes to import the syntax tree).
    Subclasses that a type checker should see as dataclasses carry `dataclass_transform`."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _convert: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    _excluded: ClassVar[frozenset[str]] = frozenset()
    _exclude_if: ClassVar[dict[str, Callable[[Any], bool]]] = {}

    @staticmethod
    def _conversion(annotation: str) -> Callable[[Any], Any] | None:
        """What construction does to a value of a field declared with this type."""
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        defaults, convert = dict(cls._defaults), dict(cls._convert)
        excluded, exclude_if = set(cls._excluded), dict(cls._exclude_if)
        for name, annotation in inspect.get_annotations(cls).items():  # its own, as text
            if not isinstance(annotation, str):
                raise TypeError(f"{cls.__name__}: a record's module needs `from __future__ import annotations`")
            if annotation.startswith("ClassVar"):
                continue
            if name not in fields:
                fields.append(name)
            value = cls.__dict__.get(name, _MISSING)
            if isinstance(value, _FieldSpec):
                if value.exclude:
                    excluded.add(name)
                if value.exclude_if is not None:
                    exclude_if[name] = value.exclude_if
                value = value.default
            if name in cls.__dict__:
                delattr(cls, name)  # the instance holds every field; no class attribute shadows it
            if value is _MISSING:
                defaults.pop(name, None)
            else:
                defaults[name] = value
            conversion = cls._conversion(annotation)
            if conversion is None:
                convert.pop(name, None)
            else:
                convert[name] = conversion
                if value is not _MISSING:
                    defaults[name] = conversion(value)
        cls._fields, cls._defaults, cls._convert = tuple(fields), defaults, convert
        cls._excluded, cls._exclude_if = frozenset(excluded), exclude_if

    def __init__(self, *args: Any, **values: Any) -> None:
        cls = type(self)
        if args:
            if len(args) > len(cls._fields):
                raise TypeError(f"{cls.__name__} takes {len(cls._fields)} values, {len(args)} given")
            for name, value in zip(cls._fields, args):
                if name in values:
                    raise TypeError(f"{cls.__name__} is given `{name}` twice")
                values[name] = value
        own = self.__dict__
        for name in cls._fields:
            value = values.pop(name, _MISSING)
            if value is _MISSING:
                value = cls._defaults.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{cls.__name__} needs `{name}`")
            else:
                conversion = cls._convert.get(name)
                if conversion is not None:
                    value = conversion(value)
            own[name] = value
        if values:
            raise TypeError(f"{cls.__name__} has no field {', '.join(f'`{n}`' for n in sorted(values))}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use .copy({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *map(_hashable, self.__dict__.values())))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self._fields if n not in self._excluded)
        return f"{type(self).__name__}({shown})"

    def copy(self: _R, **changes: Any) -> _R:
        """This node with some fields changed (converted as at construction)."""
        return type(self)(**{**self.__dict__, **changes})


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Node(Record):
    """The base of every IR and plan node: keyword construction with conversions, dump, load."""

    @staticmethod
    def _conversion(annotation: str) -> Callable[[Any], Any] | None:
        return _json_conversion(annotation)

    def dump(self, mode: Literal["python", "json"] = "python", exclude: frozenset[str] | set[str] = frozenset(),
             exclude_none: bool = False) -> dict[str, Any]:
        """Plain data: nested nodes as dicts; in JSON mode tuples as lists and dates as text.
        `exclude` leaves out fields of this node only."""
        return _dump_node(self, mode == "json", exclude_none, exclude)

    @classmethod
    def load(cls: type[_N], data: Any) -> _N:
        """A node from plain data (as dump wrote it), every value checked against its type."""
        return _load(cls, data, cls.__name__)


# ---- dumping ------------------------------------------------------------------------------------
def _dump_node(node: Node, json: bool, exclude_none: bool, exclude: frozenset[str] | set[str] = frozenset()
               ) -> dict[str, Any]:
    cls = type(node)
    out: dict[str, Any] = {}
    values = node.__dict__
    for name in cls._fields:
        if name in cls._excluded or name in exclude:
            continue
        value = values[name]
        test = cls._exclude_if.get(name)
        if test is not None and test(value):
            continue
        if value is None and exclude_none:
            continue
        out[name] = _dump(value, json, exclude_none)
    return out


def _dump(value: Any, json: bool, exclude_none: bool) -> Any:
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    if isinstance(value, Node):
        return _dump_node(value, json, exclude_none)
    if t is tuple or t is list:
        items = []
        for v in value:  # a loop, not a comprehension: one frame less per level of a deep check
            items.append(_dump(v, json, exclude_none))
        return items if json or t is list else tuple(items)
    if t is dict:
        return {k: _dump(v, json, exclude_none) for k, v in value.items()}
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat() if json else value
    if isinstance(value, (set, frozenset)):
        return [_dump(v, json, exclude_none) for v in value] if json else value
    if json:
        raise TypeError(f"cannot write a {t.__name__} as JSON")
    return value


# ---- loading ------------------------------------------------------------------------------------
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type[Node]) -> dict[str, Any]:
    """The declared types of a node's fields, resolved once, when a plan is first loaded."""
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = typing.get_type_hints(cls)  # each class's annotations in its own module
        hints = _HINTS[cls] = {n: resolved[n] for n in cls._fields}
    return hints


_TAGS: dict[type, dict[str, Any]] = {}


def _tags(cls: type[Node]) -> dict[str, Any]:
    """The fields that tell a node class apart in a union: single-valued Literals (kind, method).
    Found once per class; a plan's every typed value and expression asks."""
    tags = _TAGS.get(cls)
    if tags is None:
        tags = _TAGS[cls] = {n: get_args(t)[0] for n, t in _hints(cls).items()
                             if get_origin(t) is Literal and len(get_args(t)) == 1}
    return tags


def _load(cls: type[_N], data: Any, where: str) -> _N:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object ({cls.__name__}), got {_kind(data)}")
    unknown = set(data) - set(cls._fields)
    if unknown:
        raise ValueError(f"{where}: unknown field {', '.join(f'`{n}`' for n in sorted(unknown))}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for name in cls._fields:
        if name in data:
            values[name] = _value(hints[name], data[name], f"{where}.{name}")
        elif name not in cls._defaults:
            raise ValueError(f"{where}: `{name}` is missing")
    return cls(**values)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _value(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if tp is type(None):
        if value is not None:
            raise ValueError(f"{where}: expected null, got {_kind(value)}")
        return None
    if tp is bool or tp is str:
        if type(value) is not tp:
            raise ValueError(f"{where}: expected {tp.__name__}, got {_kind(value)}")
        return value
    if tp is int:
        if type(value) is float and value.is_integer():
            return int(value)
        if type(value) is not int:
            raise ValueError(f"{where}: expected an integer, got {_kind(value)}")
        return value
    if tp is float:
        if type(value) not in (int, float):
            raise ValueError(f"{where}: expected a number, got {_kind(value)}")
        return float(value)
    if origin is Literal:
        if value not in get_args(tp) or type(value) is bool:
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise ValueError(f"{where}: expected one of {allowed}, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, Node):
        return _load(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {_kind(value)}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            items = []
            for i, v in enumerate(value):  # a loop: one frame less per level of a deep check
                items.append(_value(args[0], v, f"{where}[{i}]"))
            return tuple(items)
        if len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {_kind(value)}")
        key_type, item_type = get_args(tp)
        return {_value(key_type, k, where): _value(item_type, v, f"{where}[{k!r}]") for k, v in value.items()}
    if origin is types.UnionType or origin is typing.Union:
        return _union(get_args(tp), value, where)
    raise TypeError(f"{where}: no loader for {tp!r}")


def _union(options: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in options:
        return None
    nodes = [o for o in options if isinstance(o, type) and issubclass(o, Node)]
    if nodes and isinstance(value, dict):
        for option in nodes:
            tags = _tags(option)
            if tags and all(value.get(k) == v for k, v in tags.items()):
                return _load(option, value, where)
        wanted = " or ".join(sorted({str(_tags(o)) for o in nodes}))
        raise ValueError(f"{where}: matches none of {wanted}")
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _value(option, value, where)
        except ValueError as e:
            problems.append(str(e))
    raise ValueError(problems[0] if len(problems) == 1 else f"{where}: {_kind(value)} fits none of its types")
