"""The frame that ends the stack walk for deferred code (this file is registered as a bottom).

:class:`Accountable` runs a callable a distribution scheduled as if from the
bottom of a fresh stack whose only history is the registering chain: the
frames of whoever happens to be running when the callback fires (the
application, for a finalizer or a signal handler) are not part of the act.
Nothing else may live in this file: every frame of its code ends the walk.

It is a tuple ``(func, chain, inherited)``, so that nobody can swap the
chain of a wrapper they can reach (an ``Accountable`` planted on a module is
visible to everyone).
"""

from __future__ import annotations

import threading

_get_ident = threading.get_ident


class Accountable(tuple):
    """A callable that runs ``self[0]`` with ``self[1]`` as the thread's inherited chain (replacing it)."""

    __slots__ = ()

    def __new__(cls, func, chain, inherited):
        return tuple.__new__(cls, (func, tuple(chain), inherited))

    def __call__(self, *args, **kwargs):
        func, chain, inherited = self
        tid = _get_ident()
        saved = inherited.get(tid)
        inherited[tid] = chain
        try:
            return func(*args, **kwargs)
        finally:
            if saved is None:
                inherited.pop(tid, None)
            else:
                inherited[tid] = saved

    @property
    def func(self):
        return self[0]

    def __repr__(self):
        return f"<capimport accountable {self[0]!r}>"

    def __eq__(self, other):
        return self[0] == (other[0] if isinstance(other, Accountable) else other)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self[0])
