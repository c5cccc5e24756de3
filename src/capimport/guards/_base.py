"""What every guard shares: a bound decision function and the fast "nobody to check" test.

A guard wraps an API that raises no audit event. It must cost next to
nothing when only the application and the standard library are on the stack,
and decide exactly as the audit hook does otherwise. :class:`Guard` captures
the enforcer once (in a closure-held object, never looked up through a module
global that package code could rebind) and offers:

``busy(frame)``
    True while capimport itself is at work on this thread: with the native
    core, while the core runs capimport's Python (a report, a rewrite) and
    *frame* is capimport's (``_core.busy``, C state); in the pure-Python
    fallback, while the Python decision resolves paths (it calls
    ``os.lstat``/``readlink``/``getcwd``, which are guarded too). Those calls
    pass straight through.
``plain(frame)``
    The cheap test: True when no frame from the innermost outward can belong
    to a distribution and the thread inherited no chain. Each frame must run
    with the interpreter's builtins (modules loaded from a distribution get
    their own builtins dict from the import guard) *and* with the globals of
    a module known to be the standard library's, the application's or
    capimport's (registered with :meth:`bless` as such modules execute).
    About 50 ns a frame and no audit event, against about 290 ns for reading
    ``f_code``.
``decide(capability, target, api, frame, call)``
    The enforcer's single decision point, with a lazily computed target.
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
from typing import Optional

from ..attribution import APP, accountable
from ..hook import Lazy

_REAL_BUILTINS = builtins.__dict__
_get_ident = threading.get_ident
_getframe = sys._getframe


class Guard:
    """The enforcer, bound once; methods read no module globals that package code could swap."""

    __slots__ = ("enforcer", "mode", "_depth", "_inherited", "_decide", "_normalise", "vault", "invoke",
                 "clean_globals", "core", "vouched")

    def __init__(self, enforcer, normalise, core=None):
        self.enforcer = enforcer
        self.mode = enforcer.mode
        self._depth = enforcer._depth
        self._inherited = enforcer.inherited
        self._decide = enforcer.decide
        self._normalise = normalise
        self.vault = make_vault()
        self.clean_globals: dict = {}
        self.invoke = make_invoke(self.vault)
        #: capimport._core when the native core will decide: C functions are then replaced by its gates.
        self.core = core
        #: (thread, event): an act the fallback just decided, whose own audit event passes once
        #: (a sys.settrace gate's call, the environment vault's putenv). See :meth:`vouch`.
        self.vouched: list = [None, None]

    def vouch(self, event: Optional[str], _ident=_get_ident) -> None:
        """Set around one call whose audit *event* is the act just decided (None clears it)."""
        self.vouched[:] = (_ident() if event else None, event)

    def vouched_for(self, event: str, _ident=_get_ident) -> bool:
        """Whether *event* is the one vouched for on this thread; it passes once."""
        vouched = self.vouched
        if vouched[0] is None or vouched[1] != event or vouched[0] != _ident():
            return False
        vouched[0] = vouched[1] = None
        return True

    def busy(self, frame=None, _ident=_get_ident) -> bool:
        if self.enforcer.native:   # the core knows when it runs capimport's Python (C memory)
            return self.core.busy(frame)
        return bool(self._depth.get(_ident()))

    def plain(self, frame, _ident=_get_ident, _real=_REAL_BUILTINS) -> bool:
        if self.enforcer.native:   # the core's walk: only the application acts
            return all(entry[0] == APP for entry in self.core.chain(frame, False))
        if self._inherited.get(_ident()):
            return False
        clean = self.clean_globals
        while frame is not None:
            if frame.f_builtins is not _real:
                return False
            namespace = frame.f_globals
            known = clean.get(namespace.get("__name__"))
            # By identity: a distribution's own dict with a borrowed __name__ is not the module's.
            # (No id(): builtins.id raises an audit event on every call.)
            if known is None:
                return False
            if known[0] is not namespace:
                for other in known:
                    if other is namespace:
                        break
                else:
                    return False
            frame = frame.f_back
        return True

    def bless(self, namespace) -> None:
        """Mark *namespace* as the globals of standard-library, application or capimport code."""
        if isinstance(namespace, dict):
            name = namespace.get("__name__")
            known = self.clean_globals.get(name, ())
            if not any(d is namespace for d in known):
                self.clean_globals[name] = known + (namespace,)

    def decide(self, capability: str, target, api: str, frame, call=None) -> None:
        lazy = Lazy(self._normalise, capability, target)
        self._decide([(capability, lazy, api)], frame, call or api)

    def internal(self, fn, *args, _ident=_get_ident):
        """Run capimport's own *fn* marked as deciding, so guarded calls inside it pass through."""
        depth = self._depth
        tid = _ident()
        before = depth.get(tid, 0)
        depth[tid] = before + 1
        try:
            return fn(*args)
        finally:
            if before:
                depth[tid] = before
            else:
                depth.pop(tid, None)

    def links(self, frame, checks=()):
        """The accountable links for an act at *frame*; None when a privileged frame allows it
        (*checks* are the act's, for the privileges that depend on what is done)."""
        return self.internal(self._links, frame, checks)

    def _links(self, frame, checks=()):
        enforcer = self.enforcer
        chain = enforcer.chain_for(frame, checks)
        if chain is None:
            return None
        if not chain:
            return []
        return accountable(chain, enforcer.dependents)

    def acting(self, frame, checks=()):
        """The accountable links for an act at *frame*, or None when there is nothing to decide:
        only the application acts (:meth:`plain`), or a privileged frame allows it (*checks*, the
        act's, say which privileges apply). With the core, one walk answers both."""
        enforcer = self.enforcer
        if enforcer.native:
            chain = enforcer.chain_for(frame, checks)
            if chain is None or all(link.origin == APP for link in chain):
                return None
            return accountable(chain, enforcer.dependents)
        return None if self.plain(frame) else self.links(frame, checks)

    def holds(self, links, capability: str, target) -> bool:
        """True when every accountable link holds *capability* for *target* (no report)."""
        lazy = Lazy(lambda: target)
        holds = self.enforcer.holds
        return self.internal(lambda: all(holds(link.origin, capability, lazy)[0] for link in links))

    def lacks_entirely(self, links, capability: str):
        """The first link that holds *capability* for no target at all, or None."""
        for link in links:
            if capability not in self.enforcer.scopes_of(link.origin):
                return link
        return None


def caller(depth: int = 1):
    """The frame *depth* levels above the guard's caller (no nested event beyond one)."""
    return _getframe(depth + 1)


# ----------------------------------------------------------------------------- the originals


def make_vault(count: int = 16):
    """Started generators that hold the original functions and call them after a check.

    A guard must not keep the function it replaces where package code can
    reach it: a closure cell (``wrapper.__closure__``, no audit event) would
    hand out ``posix.stat`` or ``_posixsubprocess.fork_exec`` unguarded. The
    originals live in a table that only these generators' frames hold
    (reachable through ``gi_frame``/``gc`` alone, both denied without
    ``ffi``), keyed by name; each request runs the key's *checker* first,
    with the frame that sent the request, so sending to a vault directly
    gains nothing. There are several generators because deciding may itself
    call a guarded function (resolving a path calls ``os.lstat``): a nested
    call takes the next idle one. Checkers accept only exact
    ``str``/``bytes``/``int``/``tuple``/``list`` arguments where the original
    would call back into Python (``__fspath__``), so no package code runs
    while a vault's frame is on the stack. Exceptions leave without their
    traceback (whose frames would lead back here). An entry, once
    registered, is never replaced.
    """
    table: dict = {}

    def vault(_getframe=_getframe, _BaseException=BaseException):
        request = None
        while request is None:
            try:
                request = yield None
            except _BaseException:   # thrown in: it must not leave with this frame in its traceback
                request = None
        while True:
            reply = None
            entry = None
            frame = None
            try:
                op = request[0]
                if op == "call":
                    entry = table[request[1]]
                    frame = _getframe(1)
                    args, kwargs = entry[1](frame, request[2], request[3])
                    frame = None
                    result = entry[0](*args, **kwargs)
                    if entry[2] is not None:
                        result = entry[2](result, args)
                    reply = ("ok", result)
                    result = None
                elif op == "register" and request[1] not in table:
                    table[request[1]] = request[2]   # never replaced once set
            except BaseException as exc:  # a denial or the original's own error
                exc.__traceback__ = None
                reply = ("error", exc)
            entry = frame = None
            while True:
                try:
                    request = yield reply
                    break
                except _BaseException:   # thrown in (generator.throw): answered, never raised
                    reply = ("error", PermissionError("capimport: a guard vault takes requests only"))

    gens = tuple(vault() for _ in range(count))
    for gen in gens:
        gen.send(None)
    return gens


def make_invoke(vaults):
    """``invoke(key, args, kwargs)``: call the original behind *key* through an idle vault."""

    import time
    _sleep = time.sleep
    _monotonic = time.monotonic

    def invoke(key, args, kwargs, _vaults=vaults, _ValueError=ValueError):
        deadline = None
        while True:
            for gen in _vaults:
                if gen.gi_running:
                    continue
                try:
                    status, value = gen.send(("call", key, args, kwargs))
                except _ValueError:  # another thread took it between the test and the send
                    continue
                if status == "error":
                    raise value
                return value
            # Every vault is busy in some thread (preempted mid-decision): wait for one.
            if deadline is None:
                deadline = _monotonic() + 10
            elif _monotonic() > deadline:
                raise PermissionError("capimport: no guard vault became free; denied (fail closed)")
            _sleep(0.0002)

    return invoke


def exact_path(value) -> bool:
    """A path argument the original can use without calling back into Python."""
    t = type(value)
    return t is str or t is bytes or t is int


def exact_fspath(value):
    """``os.fspath(value)`` as an exact str or bytes: a subclass (matplotlib's ``FontPath(str)``)
    is copied with str's and bytes' own methods, so none of its overrides runs, and the guards
    and the original get the same text."""
    value = os.fspath(value)
    if type(value) is not str and isinstance(value, str):
        return str.__str__(value)
    if type(value) is not bytes and isinstance(value, bytes):
        return bytes.__getitem__(value, slice(None))
    return value


def register(vaults, key, original, checker, post=None) -> None:
    for gen in vaults:
        if not gen.gi_running:
            gen.send(("register", key, (original, checker, post)))
            return
    raise RuntimeError("capimport: no idle guard vault to register with")


def builtin_shaped(wrapper, original, name: Optional[str] = None):
    """*wrapper* as a module will hold it in place of the C function *original*.

    Like the builtin it replaces, it must not become a method when a class
    stores it as an attribute (``pathlib._NormalAccessor.stat = os.stat`` on
    3.9, ``start = _thread.start_new_thread`` in a class body), so it is a
    ``functools.partial`` (C-level, no ``__get__``) around the Python wrapper.
    """
    import functools

    public = functools.partial(wrapper)
    public.__name__ = name or getattr(original, "__name__", wrapper.__name__)
    public.__qualname__ = getattr(original, "__qualname__", public.__name__) if name is None else name
    public.__doc__ = getattr(original, "__doc__", None)
    public._capimport_guard = True
    return public


def put_in_type_dict(cls, entries: dict) -> None:
    """Write into a type's dict, an immutable type's too, and drop the type cache.

    Run through ``guard.internal`` (``gc.get_referents`` is capimport's own work here). The
    originals stay referenced from the vault or a gate, so nothing the interpreter still
    points to is freed.
    """
    import gc
    namespace = gc.get_referents(cls.__dict__)[0]
    namespace.update(entries)
    sys._clear_type_cache()
