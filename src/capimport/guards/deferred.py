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
Threads and timers are covered by the enforcer itself (``Thread.start``).

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
from .boundary import Accountable

_get_ident = threading.get_ident


def _capture(guard, frame):
    """The registering chain, or () when only the application and the stdlib are involved."""
    if guard.plain(frame):
        return ()
    try:
        chain = guard.enforcer.capture(frame)
    except Exception:
        from ..attribution import UNKNOWN, Link
        return (Link(UNKNOWN, "", None, 0),)  # fail closed
    if all(link.origin == APP for link in chain):
        return ()
    return chain


def wrap(guard, func, frame):
    if func is None or isinstance(func, Accountable) or not callable(func):
        return func
    chain = _capture(guard, frame)
    if not chain:
        return func
    return Accountable(func, chain, guard.enforcer.inherited)


def _clean_task(guard, func):
    """For executor tasks: run with exactly the submitter's chain (possibly none)."""
    chain = () if guard.plain(sys._getframe(2)) else _capture(guard, sys._getframe(2))
    return Accountable(func, chain, guard.enforcer.inherited)


def install(guard) -> list:
    done = []
    import atexit
    import codecs
    import os
    import signal
    import weakref

    getframe = sys._getframe

    # atexit --------------------------------------------------------------------------
    if not getattr(atexit.register, "_capimport_guard", False):
        real_register, real_unregister = atexit.register, atexit.unregister
        registered: dict = {}

        def register(func, *args, **kwargs):
            wrapped = wrap(guard, func, getframe(1))
            if wrapped is not func:
                registered.setdefault(id(func), []).append(wrapped)
                real_register(wrapped, *args, **kwargs)
                return func
            return real_register(func, *args, **kwargs)

        def unregister(func):
            for wrapped in registered.pop(id(func), ()):
                real_unregister(wrapped)
            return real_unregister(func)

        register._capimport_guard = unregister._capimport_guard = True
        atexit.register, atexit.unregister = register, unregister
        done.append("atexit")

    # weakref.finalize ------------------------------------------------------------------
    finalize = weakref.finalize
    if not getattr(finalize, "_capimport_guard", False):
        class Finalize(finalize):
            _capimport_guard = True
            __slots__ = ()

            def __init__(self, obj, func, /, *args, **kwargs):
                super().__init__(obj, wrap(guard, func, getframe(1)), *args, **kwargs)

        Finalize.__name__ = Finalize.__qualname__ = "finalize"
        Finalize.__module__ = "weakref"
        weakref.finalize = Finalize
        done.append("weakref.finalize")

    # signal.signal ---------------------------------------------------------------------
    if not getattr(signal.signal, "_capimport_guard", False):
        real_signal, real_getsignal = signal.signal, signal.getsignal

        def unwrap(handler):
            return handler.func if isinstance(handler, Accountable) else handler

        @functools.wraps(real_signal)
        def signal_(signalnum, handler):
            return unwrap(real_signal(signalnum, wrap(guard, handler, getframe(1))))

        @functools.wraps(real_getsignal)
        def getsignal(signalnum):
            return unwrap(real_getsignal(signalnum))

        signal_._capimport_guard = getsignal._capimport_guard = True
        signal.signal, signal.getsignal = signal_, getsignal
        done.append("signal.signal")

    # os.register_at_fork ---------------------------------------------------------------
    real_at_fork = getattr(os, "register_at_fork", None)
    if real_at_fork is not None and not getattr(real_at_fork, "_capimport_guard", False):
        def register_at_fork(**kwargs):
            frame = getframe(1)
            return real_at_fork(**{k: wrap(guard, v, frame) for k, v in kwargs.items()})

        register_at_fork._capimport_guard = True
        os.register_at_fork = register_at_fork
        done.append("os.register_at_fork")

    # codecs.register --------------------------------------------------------------------
    if not getattr(codecs.register, "_capimport_guard", False):
        real_codecs_register = codecs.register

        def codecs_register(search_function):
            return real_codecs_register(wrap(guard, search_function, getframe(1)))

        codecs_register._capimport_guard = True
        codecs.register = codecs_register
        done.append("codecs.register")

    # concurrent.futures and asyncio, now or when first imported -------------------------
    from ..importguard import POST_IMPORT

    def patch_futures(module):
        targets = [c for c in (getattr(module, "ThreadPoolExecutor", None),) if c is not None]
        for cls in targets:
            real_submit = cls.submit
            if getattr(real_submit, "_capimport_guard", False):
                continue

            def submit(self, fn, /, *args, _real=real_submit, **kwargs):
                return _real(self, _clean_task(guard, fn), *args, **kwargs)

            submit._capimport_guard = True
            cls.submit = submit
            done.append(f"{cls.__name__}.submit")

    def patch_asyncio_events(module):
        Handle = getattr(module, "Handle", None)
        if Handle is None or getattr(Handle.__init__, "_capimport_guard", False):
            return
        real_init = Handle.__init__

        def __init__(self, callback, args, loop, context=None):
            frame = getframe(1)
            real_init(self, wrap(guard, callback, frame), args, loop, context)

        __init__._capimport_guard = True
        Handle.__init__ = __init__
        done.append("asyncio.Handle")

    if "concurrent.futures.thread" in sys.modules:
        patch_futures(sys.modules["concurrent.futures.thread"])
    else:
        POST_IMPORT.setdefault("concurrent.futures.thread", patch_futures)
    done.append(f"module attributes ({patch_modules(guard)} modules)")
    if "asyncio.events" in sys.modules:
        patch_asyncio_events(sys.modules["asyncio.events"])
    else:
        POST_IMPORT.setdefault("asyncio.events", patch_asyncio_events)
    return done


# ----------------------------------------------------------------------------- monkeypatching


def _needs_wrap(value) -> bool:
    """A callable with no Python frame of its own (or one compiled from a string)."""
    if isinstance(value, type) or not callable(value):
        return False
    if isinstance(value, _FunctionType):
        return value.__code__.co_filename[:1] == "<"
    return not isinstance(value, Accountable)


import types as _types  # noqa: E402

_FunctionType = _types.FunctionType
_GUARDED_MODULE: list = []


def module_class(guard):
    """The ModuleType subclass whose ``__setattr__`` keeps a distribution's patches accountable."""
    if _GUARDED_MODULE:
        return _GUARDED_MODULE[0]
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
