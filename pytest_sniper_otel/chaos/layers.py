"""Attribute overrides that overlapping faults can add and remove in any order.

Two faults on the same knob (two drifts, two queue limits) may be rolled back in either
order. Saving "the value before me" and restoring it on rollback is wrong when they
overlap: the first one out restores the base while the second is still active, and the
second then restores the first's value for good. Instead each fault pushes a layer; the
attribute shows the newest layer, and the base once the last layer is gone.
"""

from __future__ import annotations

import weakref
from typing import Any

_MISSING = object()


class _Stack:
    def __init__(self, base: Any) -> None:
        self.base = base
        self.layers: list[tuple[object, Any]] = []  # (fault, value), oldest first

    def top(self) -> Any:
        return self.layers[-1][1] if self.layers else self.base


# id(owner) -> (a reference to the owner, its stacks). By id: knob holders are often
# dataclasses, which are unhashable. The entry goes when the owner is collected.
_STACKS: dict[int, tuple[Any, dict[str, _Stack]]] = {}


def _stacks(owner: Any, create: bool = False) -> dict[str, _Stack] | None:
    key = id(owner)
    entry = _STACKS.get(key)
    if entry is not None and entry[0]() is owner:
        return entry[1]
    if not create:
        return None
    try:
        ref: Any = weakref.ref(owner, lambda _: _STACKS.pop(key, None))
    except TypeError:  # not weak-referenceable: keep it alive while it has layers
        ref = lambda: owner  # noqa: E731
    stacks: dict[str, _Stack] = {}
    _STACKS[key] = (ref, stacks)
    return stacks


def base(owner: Any, attribute: str) -> Any:
    """The value ``attribute`` had before any fault touched it."""
    stacks = _stacks(owner)
    stack = stacks.get(attribute) if stacks is not None else None
    return getattr(owner, attribute) if stack is None else stack.base


def push(owner: Any, attribute: str, fault: object, value: Any) -> None:
    """Show ``value`` in ``owner.attribute`` until ``fault`` pops it."""
    stacks = _stacks(owner, create=True)
    assert stacks is not None
    stack = stacks.get(attribute)
    if stack is None:
        stack = stacks[attribute] = _Stack(getattr(owner, attribute))
    stack.layers = [(f, v) for f, v in stack.layers if f is not fault]
    stack.layers.append((fault, value))
    setattr(owner, attribute, stack.top())


def update(owner: Any, attribute: str, fault: object, value: Any) -> None:
    """Change ``fault``'s layer in place (a ramp); shown only if it is the newest."""
    stacks = _stacks(owner)
    stack = stacks.get(attribute) if stacks is not None else None
    if stack is None:
        return
    stack.layers = [(f, value if f is fault else v) for f, v in stack.layers]
    setattr(owner, attribute, stack.top())


def pop(owner: Any, attribute: str, fault: object) -> None:
    """Remove ``fault``'s layer; the attribute shows the newest remaining one, or the base."""
    stacks = _stacks(owner)
    stack = stacks.get(attribute) if stacks is not None else None
    if stacks is None or stack is None:
        return
    stack.layers = [(f, v) for f, v in stack.layers if f is not fault]
    setattr(owner, attribute, stack.top())
    if not stack.layers:
        del stacks[attribute]
        if not stacks:
            _STACKS.pop(id(owner), None)
