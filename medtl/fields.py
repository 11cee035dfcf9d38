"""One validation mechanism for the config dataclasses (torch-free).

Types and choices are read from the dataclass annotations (``int``, ``float``, ``bool``, ``str``,
``Literal[...]``, ``X | None``, nested configs); value rules (ranges, names from a registry) are
declared once per field with :func:`setting`. Every problem is one ValueError line naming the
field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Rule:
    """A check on a value beyond its type: ``ok(value)`` and how to say what is allowed."""

    ok: Callable[[Any], bool]
    allowed: str
    lo: float | None = None  # the bounds of a range (for forms), with whether they are excluded
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False


def between(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Rule:
    """A range rule: ``between(0, 1, hi_open=True)`` allows ``[0, 1)``; one bound = at least / at most."""

    def ok(v) -> bool:
        above = lo is None or (v > lo if lo_open else v >= lo)
        below = hi is None or (v < hi if hi_open else v <= hi)
        return above and below

    if lo is not None and hi is not None:
        text = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    elif lo is not None:
        text = f"{'above' if lo_open else 'at least'} {lo}"
    else:
        text = f"{'below' if hi_open else 'at most'} {hi}"
    return Rule(ok, text, lo, hi, lo_open, hi_open)


def one_of(choices: Callable[[], typing.Iterable[str]], what: str = "") -> Rule:
    """Names from a registry, read when checked (so adding a record needs no edit here)."""
    return Rule(lambda v: v in tuple(choices()), f"one of {', '.join(choices())}{what}")


def setting(default: Any = dataclasses.MISSING, *, rule: Rule | None = None, help: str = "", **kw) -> Any:  # noqa: A002
    """A dataclass field with its value rule and help text declared beside it."""
    return dataclasses.field(default=default, metadata={"rule": rule, "help": help}, **kw)


def bad(name: str, value: Any, allowed: str) -> ValueError:
    """The one message shape: ``lr must be a number in (0, 1]. Got '0.1'``."""
    return ValueError(f"{name} must be {allowed}. Got {value!r}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is tuple:  # tuple[X, ...]: every item an X
        args = typing.get_args(tp)
        return isinstance(value, tuple) and all(_is(v, args[0]) for v in value)
    if origin is dict:  # dict[K, V]: every key a K, every value a V
        kt, vt = typing.get_args(tp)
        return isinstance(value, dict) and all(_is(k, kt) and _is(v, vt) for k, v in value.items())
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in typing.get_args(tp))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return type(value) is bool
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:  # JSON writes 1.0 as 1: a whole number is a valid float
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is Any:
        return True
    return isinstance(value, tp)


def describe(tp: Any) -> str:
    """What a type allows, in words (``one of gap, flatten``, ``a whole number or None``)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if origin is Literal:
        return f"one of {', '.join(map(str, typing.get_args(tp)))}"
    if origin is tuple:
        return f"a list of {describe(typing.get_args(tp)[0]).removeprefix('a ')}s"
    if origin is dict:
        kt, vt = typing.get_args(tp)
        return f"a mapping of {describe(kt).removeprefix('a ')} to {describe(vt)}"
    names = {type(None): "None", bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    return names.get(tp, f"a {getattr(tp, '__name__', tp)}")


def _allowed(tp: Any, rule: Rule | None) -> str:
    if rule is None:
        return describe(tp)
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    some = [a for a in args if a is not type(None)]
    text = " or ".join(describe(a) for a in some) + f" {rule.allowed}"
    return text + (" or None" if len(some) < len(args) else "")


def optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; any other annotation -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        some = tuple(a for a in args if a is not type(None))
        if len(some) < len(args):
            return functools.reduce(operator.or_, some), True
    return tp, False


def literal_choices(tp: Any) -> tuple:
    """The choices of a ``Literal`` annotation (also inside ``X | None``); ``()`` for any other."""
    base, _ = optional(tp)
    return typing.get_args(base) if typing.get_origin(base) is Literal else ()


def flag_type(cls: type, name: str) -> type:
    """The type a command-line value of a field is parsed as (``Literal`` and ``X | None``: its base type)."""
    tp = _hints(cls)[name]
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType, Literal) else (tp,)
    some = [a if isinstance(a, type) else type(a) for a in args if a is not type(None)]
    return some[0] if len({*some}) == 1 else str


def choices(cls: type, name: str) -> tuple:
    """The ``Literal`` choices of a field (for forms and flags); ``()`` for a field that is not one."""
    return literal_choices(_hints(cls)[name])


def check_value(cls: type, name: str, value: Any) -> None:
    """Check one would-be value of field ``name`` of ``cls`` (a form checks a control as it is typed)."""
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is None:
        raise ValueError(f"{cls.__name__} has no field {name!r}")
    check(name, value, _hints(cls)[name], f.metadata.get("rule"))


def check(name: str, value: Any, tp: Any, rule: Rule | None = None) -> None:
    """Raise the one-line ValueError when ``value`` is not of annotation ``tp`` or breaks ``rule``
    (None passes the rule: whether None is allowed is the annotation's business)."""
    if not _is(value, tp):
        raise bad(name, value, _allowed(tp, rule))
    if rule is not None and value is not None and not rule.ok(value):
        raise bad(name, value, rule.allowed)


def check_fields(obj: Any) -> None:
    """Check every field of a dataclass instance against its annotation and declared rule."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        check(f.name, getattr(obj, f.name), hints[f.name], f.metadata.get("rule"))
