"""Attribute overrides that overlapping faults can add and remove in any order.

Two faults on the same knob (two drifts, two queue limits) may be rolled back in either
order. Saving "the value before me" and restoring it on rollback is wrong when they
overlap: the first one out restores the base while the second is still active, and the
second then restores the first's value for good. Instead each fault pushes a layer; the
attribute shows the newest layer, and the base once the last layer is gone.

A layer pushed with ``on_read`` is counted: each read of the attribute while that layer
shows calls it, so a fault counts the occurrences its value governed (a score taken with a
drifted knob, a span offered to a shrunk queue), not merely that it was set. To see reads
of a plain attribute the owner gets, while it has layers, a class of its own: a subclass
of its class, named alike, whose property on that attribute counts and returns the layer.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any


class _Layer:
    __slots__ = ("fault", "on_read", "value")

    def __init__(self, fault: object, value: Any, on_read: Callable[[], None] | None) -> None:
        self.fault = fault
        self.value = value
        self.on_read = on_read


class _Stack:
    def __init__(self, base: Any) -> None:
        self.base = base
        self.layers: list[_Layer] = []  # oldest first

    def top(self) -> Any:
        return self.layers[-1].value if self.layers else self.base


class _Owner:
    """An object with layers: its stacks, and its own class while reads are counted."""

    def __init__(self, ref: Callable[[], Any]) -> None:
        self.ref = ref
        self.stacks: dict[str, _Stack] = {}
        self.original_class: type | None = None


# id(owner) -> its layers. By id: knob holders are often dataclasses, which are unhashable.
# The entry goes when the owner is collected.
_OWNERS: dict[int, _Owner] = {}


def _owner(owner: Any, create: bool = False) -> _Owner | None:
    key = id(owner)
    entry = _OWNERS.get(key)
    if entry is not None and entry.ref() is owner:
        return entry
    if not create:
        return None
    try:
        ref: Any = weakref.ref(owner, lambda _: _OWNERS.pop(key, None))
    except TypeError:  # not weak-referenceable: keep it alive while it has layers
        ref = lambda: owner  # noqa: E731
    entry = _OWNERS[key] = _Owner(ref)
    return entry


def base(owner: Any, attribute: str) -> Any:
    """The value ``attribute`` had before any fault touched it."""
    entry = _owner(owner)
    stack = entry.stacks.get(attribute) if entry is not None else None
    return getattr(owner, attribute) if stack is None else stack.base


def push(
    owner: Any, attribute: str, fault: object, value: Any, *,
    on_read: Callable[[], None] | None = None,
) -> None:
    """Show ``value`` in ``owner.attribute`` until ``fault`` pops it; with ``on_read``,
    call it at each read of the attribute while this layer shows."""
    entry = _owner(owner, create=True)
    assert entry is not None
    if on_read is not None:
        try:
            _count_reads(owner, entry, attribute)
        except TypeError:
            if not entry.stacks:
                _OWNERS.pop(id(owner), None)
            raise
    stack = entry.stacks.get(attribute)
    if stack is None:
        stack = entry.stacks[attribute] = _Stack(getattr(owner, attribute))
    stack.layers = [layer for layer in stack.layers if layer.fault is not fault]
    stack.layers.append(_Layer(fault, value, on_read))
    setattr(owner, attribute, stack.top())


def update(owner: Any, attribute: str, fault: object, value: Any) -> None:
    """Change ``fault``'s layer in place (a ramp); shown only if it is the newest."""
    entry = _owner(owner)
    stack = entry.stacks.get(attribute) if entry is not None else None
    if stack is None:
        return
    for layer in stack.layers:
        if layer.fault is fault:
            layer.value = value
    setattr(owner, attribute, stack.top())


def pop(owner: Any, attribute: str, fault: object) -> None:
    """Remove ``fault``'s layer; the attribute shows the newest remaining one, or the base."""
    entry = _owner(owner)
    stack = entry.stacks.get(attribute) if entry is not None else None
    if entry is None or stack is None:
        return
    stack.layers = [layer for layer in stack.layers if layer.fault is not fault]
    setattr(owner, attribute, stack.top())
    if not stack.layers:
        del entry.stacks[attribute]
        if not entry.stacks:
            if entry.original_class is not None:
                owner.__class__ = entry.original_class
            _OWNERS.pop(id(owner), None)


def _count_reads(owner: Any, entry: _Owner, attribute: str) -> None:
    """Route reads of ``owner.attribute`` through the owner's own class (made on first use)."""
    if entry.original_class is None:
        cls = type(owner)
        refused = f"cannot count reads of {cls.__name__}.{attribute}"
        if not hasattr(owner, "__dict__"):
            raise TypeError(f"{refused}: its instances keep no __dict__")
        try:
            metaclass: Any = type(cls)  # an ABC's is ABCMeta
            counted = metaclass(cls.__name__, (cls,), {
                "__slots__": (), "__module__": cls.__module__, "__qualname__": cls.__qualname__,
            })
            owner.__class__ = counted
        except TypeError as exc:  # a built-in type (SimpleNamespace...) or a final class
            raise TypeError(f"{refused} ({exc}); give it a class of your own") from None
        entry.original_class = cls
    counted_class = type(owner)
    if attribute in vars(counted_class):
        return
    stacks = entry.stacks
    owner_id = id(owner)

    def read(obj: Any) -> Any:
        # a copy made while the owner had layers shares its class but not its layers
        stack = stacks.get(attribute) if id(obj) == owner_id else None
        if stack is None or not stack.layers:
            try:
                return obj.__dict__[attribute]
            except KeyError:  # a class attribute the instance never set
                return getattr(super(counted_class, obj), attribute)
        layer = stack.layers[-1]
        if layer.on_read is not None:
            layer.on_read()
        return layer.value

    def write(obj: Any, value: Any) -> None:
        obj.__dict__[attribute] = value

    setattr(counted_class, attribute, property(read, write))
