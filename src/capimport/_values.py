"""Two small bases for the value classes on the run-time import path, instead of ``@dataclass``.

``python -m capimport`` should cost the application as little start-up time as
possible, and ``import dataclasses`` pulls in ``inspect`` (with ``dis``,
``tokenize``, ``enum``...): about 17 ms of a ~90 ms start, spent only to
generate a few methods. So the classes the run-time layer loads (``Grant``,
``ScopePattern``, ``Manifest``, ``Config``, ``Policy``, ``Distribution``...)
write their ``__init__`` by hand and take the rest from here, with what
``@dataclass`` gave them:

* ``__slots__`` names the fields, in constructor order;
* ``_key()``, written by each class, is the tuple of the fields it compares;
* ``__eq__`` compares the keys of two instances of exactly the same class and
  returns ``NotImplemented`` for anything else;
* ``__repr__`` is ``ClassName(field=value, ...)`` over the fields, leaving out
  the private ones (a leading ``_``, as ``Distribution._files``);
* :class:`FrozenValue` hashes the key, refuses assignment and deletion with
  :class:`FrozenInstanceError`, and pickles and copies through its constructor;
  :class:`Value` stays mutable and unhashable (``__hash__`` is None).

Modules only ``capimport audit`` and ``generate`` load keep ``@dataclass``.
"""

from __future__ import annotations


class FrozenInstanceError(AttributeError):
    """Assignment to, or deletion of, a field of a frozen value (as ``dataclasses.FrozenInstanceError``)."""


class Value:
    """A mutable value class: equality over ``_key()``, a dataclass-style repr, no hash."""

    __slots__ = ()

    def _key(self) -> tuple:
        raise NotImplementedError

    def __eq__(self, other: object):
        if other.__class__ is self.__class__:
            return self._key() == other._key()  # type: ignore[attr-defined]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}"
                          for name in type(self).__slots__ if not name.startswith("_"))
        return f"{type(self).__qualname__}({shown})"


class FrozenValue(Value):
    """An immutable value class: as :class:`Value`, hashable, and set only in ``__init__``
    (through ``object.__setattr__``)."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._key())

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self):
        # pickle and copy would restore the slots with setattr, which is refused: rebuild instead.
        return type(self), tuple(getattr(self, name) for name in type(self).__slots__)
