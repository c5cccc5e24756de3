"""Route 4: code scheduled now and run later, from a stack that no longer shows who scheduled it.

A Python function a distribution schedules keeps its identity when it runs
(its own frames are on the stack). What loses it is a callable with no
Python frame of its own: a builtin (``os.remove``), a ``functools.partial``
of one, a bound builtin method. So every registration API below records the
registering chain (:func:`capimport.enforcer.capture`) and runs the callable
with that chain as the thread's inherited chain: whatever a distribution
schedules runs with no more than that distribution holds.

Covered: ``atexit.register``, ``weakref.finalize``, ``signal.signal``,
``os.register_at_fork``, ``concurrent.futures`` ``Executor.submit`` (and so
``map`` and asyncio's ``run_in_executor``), asyncio ``Handle`` (``call_soon``,
``call_later``, ``call_at``, ``call_soon_threadsafe``), ``codecs.register``.
Threads and timers are covered by the enforcer itself (``Thread.start``) and, with the
native core, by ``_thread.start_new_thread``'s gate underneath it.

Registration by the application or the standard library alone is not
wrapped (``guard.plain``), so their callables keep their identity and cost
nothing; an executor's worker thread runs each task with the chain of the
task's submitter, not of whoever happened to start the worker.
"""

from __future__ import annotations

import functools
import sys
import threading

from ..attribution import APP
from ._base import builtin_shaped
from .boundary import Accountable

_get_ident = threading.get_ident


def _accountable_types() -> tuple:
    try:
        from .._core import Accountable as NativeAccountable
    except ImportError:  # pragma: no cover - exercised where no compiler built it
        return (Accountable,)
    return (Accountable, NativeAccountable)


_ACCOUNTABLE_TYPES = _accountable_types()


def _capture(guard, frame):
    """The registering chain, or () when only the application and the stdlib are involved."""
    enforcer = guard.enforcer
    if enforcer.native:   # one walk: the token says whether anyone but the application acts
        chain = enforcer.capture(frame)   # the core's token: fails loudly rather than open
        return chain if any(link[0] != APP for link in chain.links()) else ()
    if guard.plain(frame):
        return ()
    try:
        chain = enforcer.capture(frame)
    except Exception:
        from ..attribution import UNKNOWN, Link
        return (Link(UNKNOWN, "", None, 0),)  # fail closed
    if all(link.origin == APP for link in chain):
        return ()
    return chain


def accountable(guard, func, chain):
    """*func* run with *chain* standing in for whoever runs it: the core's C callable (which
    nobody can build with a chain of their choosing), or the Python fallback."""
    enforcer = guard.enforcer
    if enforcer.native:
        return enforcer._core.accountable(func, chain if chain else enforcer._core.capture())
    return Accountable(func, chain, enforcer.inherited)


def is_accountable(value) -> bool:
    return isinstance(value, _ACCOUNTABLE_TYPES)


def wrap(guard, func, frame):
    if func is None or is_accountable(func) or not callable(func):
        return func
    chain = _capture(guard, frame)
    if not chain:
        return func
    return accountable(guard, func, chain)


def _through_vault(guard, key, original, checker, public_name, wraps=None):
    """Register *original* in the vault; return the public function that reaches it only via *checker*."""
    from ._base import register

    register(guard.vault, key, original, checker)
    invoke = guard.invoke

    def public(*args, **kwargs):
        return invoke(key, args, kwargs)

    public.__name__ = public.__qualname__ = public_name
    public.__doc__ = getattr(wraps or original, "__doc__", None)
    public._capimport_guard = True
    return public


def _vault_method(guard, cls, name: str, key: str, checker, done: list, label: str) -> None:
    """``cls.name`` replaced by a function that reaches the original only via the vault and
    *checker* (once: a second call finds it guarded)."""
    if cls is None or getattr(getattr(cls, name), "_capimport_guard", False):
        return
    setattr(cls, name, _through_vault(guard, f"{key}#{id(cls)}", getattr(cls, name), checker, name))
    done.append(label)


def _wrapping(guard, positions=(), names=(), frameless=False):
    """A checker that wraps the callables at *positions* / keyword *names* with the registrant's
    chain (*frameless*: only those with no Python frame of their own, as :func:`_needs_wrap` says)."""

    def wrapped(value, frame):
        return wrap(guard, value, frame) if not frameless or _needs_wrap(value) else value

    def check(frame, args, kwargs):
        if positions:
            args = list(args)
            for i in positions:
                if i < len(args):
                    args[i] = wrapped(args[i], frame)
            args = tuple(args)
        if names and kwargs:
            kwargs = {k: (wrapped(v, frame) if k in names else v) for k, v in kwargs.items()}
        return args, kwargs

    return check


#: The registration APIs of C modules, as (module, attribute, index of the callable, its keyword
#: names, options of the gate). ``signal.getsignal`` registers nothing; its gate is there so that
#: no alias reaches the original (a distribution's handler comes back as its wrapper, which runs
#: as the distribution). ``frameless``: only callables with no Python frame of its own are
#: wrapped (the hook is called often, and a Python function keeps its identity anyway);
#: ``rest``: every positional callable from the index on.
REGISTRATIONS = (
    ("atexit", "register", 0, (), {}),
    ("signal", "signal", 1, ("handler",), {}),
    ("signal", "getsignal", -1, (), {}),
    ("os", "register_at_fork", -1, ("before", "after_in_child", "after_in_parent"), {}),
    ("_thread", "start_new_thread", 0, (), {}),
    ("_thread", "start_new", 0, (), {}),   # the same C function, a separate builtin object
    ("codecs", "register", 0, (), {}),
    # an error handler by name, "strict" and "surrogateescape" included: called by whoever decodes
    ("codecs", "register_error", 1, (), {}),
    # called by whoever first iterates (or finalizes) an asynchronous generator
    ("sys", "set_asyncgen_hooks", 0, ("firstiter", "finalizer"), {"frameless": True, "rest": True}),
    # called by whoever drops the last reference to the object (weakref.ref: the core's type gate)
    ("_weakref", "proxy", 1, (), {"frameless": True}),
)


def install(guard) -> list:
    """Put each registration API behind the core's gates, or (the fallback) behind the vault."""
    if guard.core is not None:
        return _install_native(guard)
    return _install_fallback(guard)


def _install_native(guard) -> list:
    """Each registration API becomes a ``wrap`` gate (``_core_gate.h``): C that wraps the callable
    in an ``Accountable`` carrying the registrant's chain, then calls the original, which it holds
    in C memory. No Python of capimport's decides whether to wrap, so none can be rebound."""
    import importlib

    from .native import replace_everywhere

    core = guard.core
    done = []
    for module_name, attribute, index, names, options in REGISTRATIONS:
        module = importlib.import_module(module_name)
        original = getattr(module, attribute, None)
        if original is None or getattr(original, "_capimport_guard", False):
            continue
        api = f"{module_name.lstrip('_')}.{attribute}"
        gate = core.gate(original, "wrap", api, index=index, names=names, name=attribute, **options)
        replace_everywhere(module, attribute, gate, original)   # guards.install sweeps the aliases
        done.append(api)

    import weakref
    core.gate_weakref(weakref.ref)   # a type: its instance maker wraps a frameless callback
    done.append("weakref.ref")

    def method(cls, name, api, index, names=(), always=False):
        original = cls.__dict__.get(name)
        if original is None or getattr(original, "_capimport_guard", False):
            return
        gate = core.gate(original, "wrap", api, index=index, names=names, name=name, always=always)
        setattr(cls, name, core.method(gate))
        done.append(api)

    # The first finalizer registers finalize's own exit hook with atexit: capimport's, made here,
    # so that it is not wrapped with whichever distribution happens to make the first one (the
    # application's finalizers would run at exit as that distribution).
    weakref.finalize(_ExitHookOwner(), int).detach()
    method(weakref.finalize, "__init__", "weakref.finalize", 2)

    def patch_futures(module):
        cls = getattr(module, "ThreadPoolExecutor", None)
        if cls is not None:   # the task runs with exactly its submitter's chain, not the worker's
            method(cls, "submit", "ThreadPoolExecutor.submit", 1, always=True)

    def patch_asyncio_events(module):
        cls = getattr(module, "Handle", None)
        if cls is not None:   # Handle(callback, args, loop, context): runs as whoever scheduled it,
            # not as whoever runs the loop's thread (always: the application's callback too)
            method(cls, "__init__", "asyncio.Handle", 1, names=("callback",), always=True)

    _when_imported({"concurrent.futures.thread": patch_futures, "asyncio.events": patch_asyncio_events,
                    "concurrent.futures.process": _process_pool_patch(guard, done)})
    done.append(f"module attributes ({patch_modules(guard)} modules)")
    return done


def _when_imported(patches: dict) -> None:
    """Run each module's patch now if it is loaded, else when it is first imported."""
    from ..importguard import POST_IMPORT

    for name, patch in patches.items():
        if name in sys.modules:
            patch(sys.modules[name])
        else:
            POST_IMPORT.setdefault(name, patch)


def _process_pool_patch(guard, done: list):
    """A process pool's task runs in a worker whose stack is the standard library's: its work item
    carries the submitter's parties, and the worker runs it through :func:`~capimport.enforcer.run_as`
    (picklable by name, so a builtin or a mypyc-compiled function still pickles as itself).

    ``_WorkItem`` is what ``submit`` (and so ``map``) makes; its ``__init__`` reaches the original
    only through the vault."""
    from ..enforcer import party_names, run_as

    def check_work_item(frame, args, kwargs):
        # (self, future, fn, args, kwargs)
        if len(args) == 5 and not kwargs:
            chain = _capture(guard, frame)
            if chain:
                item, future, fn, call_args, call_kwargs = args
                args = (item, future, run_as, (party_names(chain), fn) + tuple(call_args), call_kwargs)
        return args, kwargs

    def patch(module):
        _vault_method(guard, getattr(module, "_WorkItem", None), "__init__", f"{module.__name__}._WorkItem.__init__",
                      check_work_item, done, "ProcessPoolExecutor tasks")

    return patch


class _ExitHookOwner:
    """Something to finalize (a plain object cannot be weakly referenced)."""


def _install_fallback(guard) -> list:
    """Put each registration API behind the vault (its original is never in a closure)."""
    done = []
    import atexit
    import codecs
    import os
    import signal
    import weakref

    # atexit: register keeps returning the caller's function; unregister finds its wrappers.
    if not getattr(atexit.register, "_capimport_guard", False):
        registered: dict = {}
        original_register = atexit.register

        def remember(result_func):
            return result_func

        def check_register(frame, args, kwargs):
            if not args:
                return args, kwargs
            func = args[0]
            wrapped = wrap(guard, func, frame)
            if wrapped is not func:
                registered.setdefault(id(func), []).append(wrapped)
            return (wrapped,) + tuple(args[1:]), kwargs

        public_register = _through_vault(guard, "atexit.register", original_register, check_register, "register")

        def register(func, *args, **kwargs):
            public_register(func, *args, **kwargs)
            return func

        original_unregister = atexit.unregister
        public_unregister = _through_vault(guard, "atexit.unregister", original_unregister,
                                           lambda f, a, k: (a, k), "unregister")

        def unregister(func):
            for wrapped in registered.pop(id(func), ()):
                public_unregister(wrapped)
            return public_unregister(func)

        atexit.register = builtin_shaped(register, original_register)
        atexit.unregister = builtin_shaped(unregister, original_unregister)
        done.append("atexit")

    # weakref.finalize: its __init__, on the real class (no subclass whose base would be the original).
    finalize = weakref.finalize
    init = finalize.__dict__.get("__init__")
    if init is not None and not getattr(init, "_capimport_guard", False):
        finalize.__init__ = _through_vault(guard, "weakref.finalize.__init__", init, _wrapping(guard, (2,)),
                                           "__init__")
        done.append("weakref.finalize")

    # signal.signal: getsignal shows the handler that was installed, not its wrapper.
    if not getattr(signal.signal, "_capimport_guard", False):
        public_signal = _through_vault(guard, "signal.signal", signal.signal, _wrapping(guard, (1,), ("handler",)),
                                       "signal")
        public_getsignal = _through_vault(guard, "signal.getsignal", signal.getsignal, lambda f, a, k: (a, k),
                                          "getsignal")

        def unwrap(handler):
            return handler.func if is_accountable(handler) else handler

        def signal_(signalnum, handler):
            return unwrap(public_signal(signalnum, handler))

        def getsignal(signalnum):
            return unwrap(public_getsignal(signalnum))

        original_signal, original_getsignal = signal.signal, signal.getsignal
        signal.signal = builtin_shaped(signal_, original_signal)
        signal.getsignal = builtin_shaped(getsignal, original_getsignal)
        done.append("signal.signal")

    real_at_fork = getattr(os, "register_at_fork", None)
    if real_at_fork is not None and not getattr(real_at_fork, "_capimport_guard", False):
        os.register_at_fork = builtin_shaped(_through_vault(
            guard, "os.register_at_fork", real_at_fork,
            _wrapping(guard, (), ("before", "after_in_child", "after_in_parent")), "register_at_fork"), real_at_fork)
        done.append("os.register_at_fork")

    # _thread.start_new_thread: Thread.start's own helper, and a way to start a thread with no
    # Thread object (3.11 raises no event for it): the function runs as whoever started it.
    import _thread
    import threading
    start_new = _thread.start_new_thread
    if not getattr(start_new, "_capimport_guard", False):
        from .native import replace_everywhere   # guards.install sweeps the aliases once, after this
        public = builtin_shaped(_through_vault(guard, "_thread.start_new_thread", start_new,
                                               _wrapping(guard, (0,)), "start_new_thread"), start_new)
        replace_everywhere(_thread, "start_new_thread", public, start_new)
        if getattr(_thread, "start_new", None) is start_new:
            _thread.start_new = public
        if getattr(threading, "_start_new_thread", None) is start_new:
            threading._start_new_thread = public
        done.append("_thread.start_new_thread")

    import _weakref
    from .native import replace_everywhere   # guards.install sweeps the aliases once, after this
    for module, attribute, checker in (
            (codecs, "register", _wrapping(guard, (0,))),
            (codecs, "register_error", _wrapping(guard, (1,))),
            (sys, "set_asyncgen_hooks", _wrapping(guard, (0, 1), ("firstiter", "finalizer"), frameless=True)),
            (_weakref, "proxy", _wrapping(guard, (1,), frameless=True))):
        original = getattr(module, attribute, None)
        if original is None or getattr(original, "_capimport_guard", False):
            continue
        api = f"{module.__name__.lstrip('_')}.{attribute}"
        public = builtin_shaped(_through_vault(guard, api, original, checker, attribute), original)
        replace_everywhere(module, attribute, public, original)
        done.append(api)

    # concurrent.futures and asyncio, now or when first imported -------------------------

    def check_submit(frame, args, kwargs):
        # (self, fn, *args): the task runs with exactly its submitter's chain, not the worker's.
        if len(args) > 1:
            args = (args[0], accountable(guard, args[1], _capture(guard, frame))) + tuple(args[2:])
        return args, kwargs

    def patch_futures(module):
        _vault_method(guard, getattr(module, "ThreadPoolExecutor", None), "submit",
                      f"{module.__name__}.ThreadPoolExecutor.submit", check_submit, done, "ThreadPoolExecutor.submit")

    def patch_asyncio_events(module):
        # Handle(callback, args, loop, context): the callback runs as whoever scheduled it.
        _vault_method(guard, getattr(module, "Handle", None), "__init__", "asyncio.Handle.__init__",
                      _wrapping(guard, (1,)), done, "asyncio.Handle")

    _when_imported({"concurrent.futures.thread": patch_futures})
    done.append(f"module attributes ({patch_modules(guard)} modules)")
    _when_imported({"asyncio.events": patch_asyncio_events,
                    "concurrent.futures.process": _process_pool_patch(guard, done)})
    return done


# ----------------------------------------------------------------------------- monkeypatching


def _needs_wrap(value) -> bool:
    """A callable with no Python frame of its own (or one compiled from a string)."""
    if isinstance(value, type) or not callable(value):
        return False
    function = getattr(value, "__func__", value) if isinstance(value, _MethodType) else value
    if isinstance(function, _FunctionType):
        return function.__code__.co_filename[:1] == "<"   # its own frames name where it came from
    return not is_accountable(value)


import types as _types  # noqa: E402

_FunctionType = _types.FunctionType
_MethodType = _types.MethodType
_GUARDED_MODULE: list = []


def module_class(guard):
    """The ModuleType subclass whose ``__setattr__`` keeps a distribution's patches accountable.

    With the native core its ``__setattr__`` is a ``wrap`` gate around ``ModuleType``'s own (only
    callables with no Python frame of their own are wrapped, as :func:`_needs_wrap` says).
    """
    if _GUARDED_MODULE:
        return _GUARDED_MODULE[0]
    core = guard.core
    if core is not None:
        setattr_gate = core.gate(_types.ModuleType.__setattr__, "wrap", "module attribute", index=2,
                                 frameless=True, name="__setattr__")
        module = type("module", (_types.ModuleType,), {"__slots__": (), "__module__": "builtins",
                                                       "__setattr__": core.method(setattr_gate)})
        _GUARDED_MODULE.append(module)
        return module
    getframe = sys._getframe
    base_setattr = _types.ModuleType.__setattr__

    class module(_types.ModuleType):
        __slots__ = ()

        def __setattr__(self, name, value):
            if _needs_wrap(value):
                frame = getframe(1)
                if not guard.plain(frame):
                    value = wrap(guard, value, frame)
            base_setattr(self, name, value)

    module.__module__ = "builtins"
    _GUARDED_MODULE.append(module)
    return module


def guard_module_object(guard, module) -> bool:
    cls = module_class(guard)
    if type(module) is _types.ModuleType:
        try:
            module.__class__ = cls
            return True
        except TypeError:
            return False
    return False


def patch_modules(guard) -> int:
    """Every module loaded now; modules imported later are patched as they execute (tamper's exec rule)."""
    return sum(guard_module_object(guard, m) for m in list(sys.modules.values()) if m is not None)


# ----------------------------------------------------------------------------- gc.callbacks

#: The list ``gc.callbacks`` names once guarded (each re-made ``gc`` module is given it too).
_GC_NAMED: list = []


def guard_gc(guard, module) -> int:
    """Keep the collector's own list of callbacks away from everyone (``_core_callbacks.h``).

    The collector calls ``gc.callbacks``'s entries at every collection, from whatever stack
    triggered it; a list raises no event when it changes, so a planted builtin or partial would
    run as the application. ``gc.callbacks`` now names another list, copied into the collector's
    at each call; an entry with no Python frame of its own runs charged to code nobody owns
    together with whoever triggered the collection. A ``gc`` module made again (``del
    sys.modules["gc"]``) names the same list; the collector's is only ever read here, once.
    """
    if _GC_NAMED:
        module.callbacks = _GC_NAMED[0]
        return 0
    called = module.callbacks
    if type(called) is not list:
        raise RuntimeError("capimport: gc.callbacks is not the collector's list")
    named: list = []
    if guard.core is not None:
        guard.core.guard_gc_callbacks(called, named)
    else:
        _guard_gc_fallback(guard, called, named)
    _GC_NAMED.append(named)
    module.callbacks = named
    return 1


def _guard_gc_fallback(guard, called: list, named: list) -> None:
    """The pure-Python copy (route 7 is open here anyway: capimport's Python can be reached).

    A collection can start inside one of the fallback's decisions (any allocation triggers one),
    and an act raised while a thread decides is taken as capimport's own work: a planted entry
    is then left out of that collection (fail closed) instead of run charged.
    """
    from ..attribution import UNKNOWN, Link

    charged = (Link(UNKNOWN, "", None, 0),)
    enforcer = guard.enforcer
    inherited, deciding = enforcer.inherited, enforcer._depth
    named.extend(called)

    def copy(phase, info):
        inside = deciding.get(_get_ident(), 0) > 0
        entries = []
        for entry in list.copy(named):
            if _gc_entry_planted(entry):
                if inside:
                    continue
                entry = Accountable(entry, charged, inherited)
            entries.append(entry)
        called[1:] = entries

    called[:] = [copy]


_MRO = type.__dict__["__mro__"]


def _gc_entry_planted(entry) -> bool:
    """The fallback's twin of the core's ``gc_entry_planted``: types and class dicts only."""
    kind = type(entry)
    if kind in _ACCOUNTABLE_TYPES:
        return False
    function = entry.__func__ if kind is _MethodType else entry
    if type(function) is not _FunctionType:
        if isinstance(entry, type) or kind is _MethodType:
            return True
        function = next((klass.__dict__["__call__"] for klass in _MRO.__get__(kind)
                         if "__call__" in klass.__dict__), None)
        if type(function) is not _FunctionType:
            return True
    filename = function.__code__.co_filename
    return filename[:1] == "<" and not filename.startswith("<frozen ")
