"""Route 1: reading the environment, which raises no audit event.

CPython keeps the environment it started with in one dict of bytes
(``posix.environ``), which is also ``os.environ._data`` and
``os.environb._data``. This guard takes that dict away from every name a
package can reach. ``os.environ`` and ``os.environb`` keep their identity
(modules that hold them keep working); their class is swapped for a subclass
whose reads and writes go through the guard. ``posix.environ`` becomes
``os.environb``; ``_data`` is a property that hands an unscoped
``env-readonly`` holder a snapshot.

With the native core (:func:`_install_native`) the dict moves into C memory
(``_core_environ.h``) and the subclass's methods are the core's C: each call
decides from the caller's own frame, and no Python of capimport's stands in
between to be rebound. Without it (the pure-Python fallback), the dict is a
local variable of a suspended generator (the *vault*): its frame is
reachable only through ``gi_frame``/``gc.get_referents`` (both audited,
denied to distributions without ``ffi`` by :mod:`capimport.guards.tamper`),
and every request the vault serves decides first, with the frame that sent
the request, so that reaching the vault through a closure (``__closure__``
raises no event) gains nothing.

Semantics for a distribution without the grant, in ``enforce`` mode: a name
it may not read looks unset (``KeyError``, ``None``, absent from iteration)
and the denial is reported once per name; ``env-readonly`` scoped to
``AWS_*`` shows exactly the ``AWS_*`` names. Hiding rather than raising keeps
the standard library working on a package's behalf (``tempfile`` asks for
``TMPDIR``) while revealing nothing. ``warn`` and ``record`` show everything
and report. Setting and deleting need ``env``, decided once before
``posix.putenv``/``unsetenv`` run; their own audit event is that same act
(vouched for, :meth:`Guard.vouch`), so warn and record report it once.

``/proc/self/environ`` and ``/proc/<pid>/environ`` are decided by the audit
hook's ``open`` rule (an ``env-readonly`` act on the whole environment).
"""

from __future__ import annotations

import os
import sys
from collections.abc import ItemsView, KeysView, ValuesView

from ..capabilities import ENV, ENV_READONLY
from ..enforcer import ENVIRON_API
from ..errors import CapabilityError
from ..hook import Lazy

_getframe = sys._getframe


def _make_vault(data: dict, guard):
    """A started generator holding *data*; ``send((op, key, value))`` serves one request.

    Nothing inside the vault writes a report or a warning (a replaced
    ``sys.__stderr__`` would run package code while the vault's frame, and so
    the environment, is on the stack): it answers ``(status, reply, notes)``
    and the caller reports the notes once the vault has yielded.
    """

    import posix

    def vault(_getframe=_getframe, _fsdecode=os.fsdecode, _dict=dict, _list=list,
              _KeyError=KeyError, _putenv=posix.putenv, _unsetenv=posix.unsetenv, _vouch=guard.vouch):
        store = data
        request = None
        while request is None:
            try:
                request = yield None
            except BaseException:   # thrown in: it must not leave with this frame in its traceback
                request = None
        while True:
            op, key, value = request
            frame = _getframe(1)      # whoever sent the request (capimport's frames are transparent)
            reply = None
            notes = []
            report_hidden = notes.append
            try:
                # None: capimport's own work, only the application and the stdlib, or a
                # privileged frame: nothing to decide.
                links = None if guard.busy(frame) else guard.acting(frame, _READ)
                if op == "get":
                    raw = store.get(key)
                    if raw is not None and links and not _visible(guard, links, _fsdecode(key), frame,
                                                                  report_hidden, "read"):
                        raw = None
                    reply = raw
                elif op == "items":
                    pairs = _list(store.items())
                    if links:
                        pairs = _filter(guard, links, pairs, frame, report_hidden)
                    reply = pairs
                elif op == "raw":
                    if links:
                        guard.decide(ENV_READONLY, "*", "os.environ._data", frame,
                                     "os.environ._data (the whole environment)")
                    reply = _dict(store)
                elif op == "set":   # decided once: putenv's own event is this act (guard.vouch)
                    guard.decide(ENV, _fsdecode(key), "os.environ", frame, f"os.environ[{_fsdecode(key)!r}] = ...")
                    _vouch("os.putenv")
                    try:
                        _putenv(key, value)
                    finally:
                        _vouch(None)
                    store[key] = value
                elif op == "del":   # reply: whether it was set (KeyError otherwise), told only to an env holder
                    guard.decide(ENV, _fsdecode(key), "os.environ", frame, f"del os.environ[{_fsdecode(key)!r}]")
                    _vouch("os.unsetenv")
                    try:
                        _unsetenv(key)
                    finally:
                        _vouch(None)
                    reply = store.pop(key, None) is not None
                frame = None
                request = yield ("ok", reply, notes)
            except BaseException as exc:  # hand every failure (a denial) to the caller
                exc.__traceback__ = None
                frame = None
                request = yield ("error", exc, notes)

    gens = tuple(vault() for _ in range(16))   # one per concurrent reader (see guards._base.make_vault)
    for gen in gens:
        gen.send(None)
    return gens


#: The act a read is, for the walk: no privileged frame covers it (Enforcer._privileged).
_READ = [(ENV_READONLY, Lazy(lambda: "*"), ENVIRON_API)]


def _visible(guard, links, name: str, frame, report_hidden, verb: str) -> bool:
    """True when every accountable link may read *name*; reports (or raises) otherwise."""
    if guard.holds(links, ENV_READONLY, name):
        return True
    report_hidden((links, name))
    return guard.mode != "enforce"   # warn and record: shown, and reported by the caller


def _filter(guard, links, pairs, frame, report_hidden):
    if guard.mode != "enforce":
        if guard.lacks_entirely(links, ENV_READONLY) is not None or not guard.holds(links, ENV_READONLY, "*"):
            report_hidden((links, "*"))
        return pairs
    if guard.holds(links, ENV_READONLY, "*") and guard.lacks_entirely(links, ENV_READONLY) is None:
        # "*" as a name only matches an unscoped grant or a "*" pattern: everything is visible.
        return pairs
    out = []
    for key, value in pairs:
        name = os.fsdecode(key)
        if guard.holds(links, ENV_READONLY, name):
            out.append((key, value))
    if len(out) < len(pairs):
        report_hidden((links, "*"))
    return out


def install(guard) -> dict:
    """Move the environment out of reach and swap the classes of ``os.environ``/``os.environb``.

    With the native core the environment moves into C memory and the classes' methods are the
    core's (:func:`_install_native`); the vault below is the pure-Python fallback's.
    """
    import posix

    environ = os.environ
    environb = getattr(os, "environb", None)
    if getattr(type(environ), "_capimport_guard", False):
        return {}
    data = environ.__dict__["_data"]
    if guard.core is not None:
        return _install_native(guard.core, posix, environ, environb, data)
    encoding = sys.getfilesystemencoding()
    enforcer = guard.enforcer
    hidden_seen: set = set()

    def report(notes, frame):
        for links, name in notes:
            if guard.mode != "enforce":
                guard.decide(ENV_READONLY, name, "os.environ", frame,
                             f"os.environ[{name!r}]" if name != "*" else "iterating os.environ")
            else:
                report_hidden(links, name, frame)

    def report_hidden(links, name, frame):
        # The first accountable link that may not read *name* (one holding a narrower scope
        # counts: "widen its scope" must name the grant that is short).
        link = next((item for item in links if not guard.holds([item], ENV_READONLY, name)), links[0])
        key = (link.origin, name)
        if key in hidden_seen:
            return
        hidden_seen.add(key)
        describe = f"os.environ[{name!r}]" if name != "*" else "iterating os.environ"
        try:
            if enforcer.native:
                # The core decides again and words the denial (its wording runs as capimport's
                # own work, which Python here could not claim); the name stays hidden either way.
                try:
                    guard.decide(ENV_READONLY, name, "os.environ", frame, describe)
                except CapabilityError:
                    pass
                return
            chain = guard.internal(enforcer.chain_for, frame, ()) or [link]
            violation = guard.internal(enforcer._violation, link, chain, ENV_READONLY, _Fixed(name), "os.environ",
                                       describe, guard.lacks_entirely([link], ENV_READONLY) is None)
            enforcer.reporter.denied(violation)   # logged, and shown once on stderr
        except Exception:  # reporting must never reveal or crash
            pass

    vaults = _make_vault(data, guard)
    import time
    _sleep = time.sleep

    def call(op, key=None, value=None, _vaults=vaults, _ValueError=ValueError):
        for _ in range(50000):
            for gen in _vaults:
                if gen.gi_running:
                    continue
                try:
                    status, reply, notes = gen.send((op, key, value))
                except _ValueError:  # another thread took it between the test and the send
                    continue
                break
            else:
                _sleep(0.0002)   # every vault is busy in some thread: wait for one
                continue
            break
        else:
            raise PermissionError("capimport: the environment vault stayed busy; denied (fail closed)")
        if notes:
            report(notes, _getframe(1))
        if status == "error":
            raise reply
        return reply

    def enc_str(key, _str=str, _encoding=encoding):
        if not isinstance(key, _str):
            raise TypeError("str expected, not %s" % type(key).__name__)
        return _str.encode(_str.__str__(key), _encoding, "surrogateescape")

    def dec_str(value, _encoding=encoding):
        return bytes.decode(value, _encoding, "surrogateescape")

    def enc_bytes(key):
        if not isinstance(key, bytes):
            raise TypeError("bytes expected, not %s" % type(key).__name__)
        return b"".join([key])

    def same(value):
        return value

    def make_class(base, enc_key, dec_key, enc_value, dec_value, name):
        class Items(ItemsView):
            def __iter__(self):
                for key, value in call("items"):
                    yield dec_key(key), dec_value(value)

        class Values(ValuesView):
            def __iter__(self):
                for _, value in call("items"):
                    yield dec_value(value)

        class Guarded(base):
            _capimport_guard = True

            def __getitem__(self, key):
                raw = call("get", enc_key(key))
                if raw is None:
                    raise KeyError(key) from None
                return dec_value(raw)

            def get(self, key, default=None):
                raw = call("get", enc_key(key))
                return default if raw is None else dec_value(raw)

            def __contains__(self, key):
                try:
                    return call("get", enc_key(key)) is not None
                except TypeError:
                    return False

            def __iter__(self):
                for key, _ in call("items"):
                    yield dec_key(key)

            def __len__(self):
                return len(call("items"))

            def keys(self):
                return KeysView(self)

            def items(self):
                return Items(self)

            def values(self):
                return Values(self)

            def copy(self):
                return {dec_key(k): dec_value(v) for k, v in call("items")}

            def __repr__(self):
                inner = ", ".join(f"{dec_key(k)!r}: {dec_value(v)!r}" for k, v in call("items"))
                return f"environ({{{inner}}})"

            def __setitem__(self, key, value):
                call("set", enc_key(key), enc_value(value))   # decides 'env', then putenv and stores

            def __delitem__(self, key):
                if not call("del", enc_key(key)):   # decides 'env', then unsetenv and forgets
                    raise KeyError(key)

            @property
            def _data(self):
                return call("raw")

            @_data.setter
            def _data(self, value):
                raise AttributeError("capimport: os.environ's storage cannot be replaced")

        Guarded.__name__ = Guarded.__qualname__ = name
        Guarded.__module__ = "os"
        return Guarded

    def enc_value_str(value, _str=str, _encoding=encoding):
        if not isinstance(value, _str):
            raise TypeError("str expected, not %s" % type(value).__name__)
        return _str.encode(_str.__str__(value), _encoding, "surrogateescape")

    environ_cls = make_class(type(environ), enc_str, dec_str, enc_value_str, dec_str, "_Environ")
    environ.__dict__.pop("_data", None)
    environ.__class__ = environ_cls
    if environb is not None:
        environb_cls = make_class(type(environb), enc_bytes, same, enc_bytes, same, "_Environ")
        environb.__dict__.pop("_data", None)
        environb.__class__ = environb_cls
    if getattr(posix, "environ", None) is data:
        posix.environ = environb if environb is not None else environ
    data = None  # noqa: F841 - the vault's frame holds the only reference now
    return {"vaults": vaults}


def _install_native(core, posix, environ, environb, data) -> dict:
    """The environment as two views of one store in C memory (``_core_environ.h``).

    The views' methods go on the classes themselves. They are C instancemethods: they bind to
    the instance as Python functions do, and ``os.environ.get(name)`` runs the core's C straight
    from the caller's frame, with no Python of capimport's in between to rebind.
    """
    text, raw = core.environment(data, posix.putenv, posix.unsetenv)
    for mapping, view in ((environ, text), (environb, raw)):
        if mapping is not None:
            mapping.__dict__.pop("_data", None)
            mapping.__class__ = _view_class(type(mapping), view)
    if getattr(posix, "environ", None) is data:
        posix.environ = environb if environb is not None else environ
    return {"views": (text, raw)}


def _view_class(base: type, view: dict) -> type:
    """A subclass of ``os._Environ`` whose reads and writes are *view*'s methods, decided in C."""

    class Items(ItemsView):
        __slots__ = ()
        __iter__ = view["items_iter"]

    class Values(ValuesView):
        __slots__ = ()
        __iter__ = view["values_iter"]

    def items(self):
        return Items(self)

    def values(self):
        return Values(self)

    def keys(self):
        return KeysView(self)

    def _refuse(self, value):
        raise AttributeError("capimport: os.environ's storage cannot be replaced")

    namespace = {
        "_capimport_guard": True, "__module__": "os", "__qualname__": "_Environ",
        "__getitem__": view["getitem"], "get": view["get"], "__contains__": view["contains"],
        "__iter__": view["iter"], "__len__": view["len"], "copy": view["copy"], "__repr__": view["repr"],
        "__setitem__": view["setitem"], "__delitem__": view["delitem"],
        "items": items, "values": values, "keys": keys, "_data": property(view["data"], _refuse),
    }
    return type("_Environ", (base,), namespace)


class _Fixed:
    """A Lazy-compatible constant target (for building a report)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value
