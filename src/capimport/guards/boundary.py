"""The frame that ends the stack walk for deferred code (this file is registered as a bottom).

:class:`Accountable` runs a callable a distribution scheduled as if from the
bottom of a fresh stack whose only history is the registering chain: the
frames of whoever happens to be running when the callback fires (the
application, for a finalizer or a signal handler) are not part of the act.
Nothing else may live in this file: every frame of its code ends the walk.
"""

from __future__ import annotations

import threading

_get_ident = threading.get_ident


class Accountable:
    """A callable that runs *func* with *chain* as the thread's inherited chain (replacing it)."""

    __slots__ = ("func", "chain", "inherited", "__weakref__")

    def __init__(self, func, chain, inherited):
        self.func = func
        self.chain = chain
        self.inherited = inherited

    def __call__(self, *args, **kwargs):
        tid = _get_ident()
        inherited = self.inherited
        saved = inherited.get(tid)
        inherited[tid] = self.chain
        try:
            return self.func(*args, **kwargs)
        finally:
            if saved is None:
                inherited.pop(tid, None)
            else:
                inherited[tid] = saved

    def __repr__(self):
        return f"<capimport accountable {self.func!r}>"

    def __eq__(self, other):
        return self.func == (other.func if isinstance(other, Accountable) else other)

    def __hash__(self):
        return hash(self.func)


