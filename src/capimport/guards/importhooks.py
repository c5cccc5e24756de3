"""Route 4: callables planted where the import system calls them.

The import system's frames are privileged for loading modules, and what code
run from them does is charged to whoever triggered the import. A
distribution that puts a callable with no Python frame of its own (a
builtin, a ``functools.partial``, code compiled from a string) on
``sys.path_hooks``, as a ``sys.meta_path`` finder's ``find_spec``, or as a
finder in ``sys.path_importer_cache`` would have it run later as the
*application's* act: ``partial(shutil.copytree, src)`` as a ``find_spec``
writes wherever the next import names.

These are plain lists and dicts (no event when they change), so at every
``import`` event, before the import system reads them, :func:`sanitize`
replaces each such entry with one that runs it charged to the ``default``
grant (an unknown origin: who planted it is not known, so it gets what code
no manifest covers gets; fail closed). Finders and hooks written in Python
keep their own frames and are left alone, as are classes (``zipimporter``).
A compiled finder shipped by a distribution is charged to that distribution.
Looking an entry over reads class and instance dictionaries only: no code of
the entry runs inside the hook.
"""

from __future__ import annotations

import sys
import types

from ..attribution import UNKNOWN, Link
from .boundary import Accountable
from .deferred import _needs_wrap

_FINDER_METHODS = ("find_spec", "find_module")


#: Python function -> whether it counts as planted: reading ``__code__`` raises an audit event,
#: so each function is judged once (until any function's ``__code__`` is replaced: :func:`forget`).
_VERDICTS: dict = {}


def _planted(value) -> bool:
    """A callable with no Python frame of its own, or compiled from a string; the import
    system's own frozen functions (``<frozen importlib._bootstrap_external>``) are not."""
    if value is None or type(value) is ChargedHook:
        return False
    function = getattr(value, "__func__", value) if isinstance(value, types.MethodType) else value
    if type(function) is types.FunctionType:
        verdict = _VERDICTS.get(function)
        if verdict is None:
            filename = function.__code__.co_filename
            verdict = _VERDICTS[function] = filename[:1] == "<" and not filename.startswith("<frozen ")
        return verdict
    return _needs_wrap(value)


def forget(event=None, args=(), frame=None) -> None:
    """A function's ``__code__`` was replaced (an ``object.__setattr__`` event): judge again."""
    if event is None or (len(args) > 1 and args[1] == "__code__"):
        _VERDICTS.clear()
_GETSET = type(type.__dict__["__dict__"])


def _on_class(cls: type, name: str):
    """*name* as the class defines or inherits it (``object`` excluded), static/classmethods unwrapped."""
    for base in cls.__mro__:
        if base is object:
            break
        value = base.__dict__.get(name)
        if value is not None:
            return getattr(value, "__func__", value) if isinstance(value, (staticmethod, classmethod)) else value
    return None


def _computed_dict(cls: type) -> bool:
    """True when reading an instance's ``__dict__`` would run the class's own code."""
    return any(type(base.__dict__.get("__dict__", _PLAIN_DICT)) is not _GETSET for base in cls.__mro__)


def _class_planted(cls: type, memo: dict) -> bool:
    """True when instances of *cls* find with planted methods, or their ``__dict__`` is computed
    (reading it would run the entry's own code inside the hook: treated as planted)."""
    verdict = memo.get(cls)
    if verdict is None:
        verdict = memo[cls] = _computed_dict(cls) or any(_planted(_on_class(cls, name)) for name in _FINDER_METHODS)
    return verdict


def _planted_finder(finder, memo: dict) -> bool:
    """A finder whose ``find_spec``/``find_module`` is planted; read from dictionaries only."""
    if isinstance(finder, Charged):
        return False
    if isinstance(finder, type):   # a class used as a finder (PathFinder, BuiltinImporter)
        key = ("class", finder)
        if key not in memo:
            memo[key] = any(_planted(_on_class(finder, name)) for name in _FINDER_METHODS)
        return memo[key]
    verdict = memo.get(type(finder))
    if verdict is None:
        verdict = _class_planted(type(finder), memo)
    if verdict:
        return True
    try:
        own = _getattribute(finder, "__dict__")
    except AttributeError:
        return False
    if type(own) is not dict:
        return False
    if "find_spec" in own and _planted(own["find_spec"]):
        return True
    return "find_module" in own and _planted(own["find_module"])


def _find_spec_of(finder):
    """The callable a finder is asked with, for :func:`_chain_for` (dictionaries only)."""
    try:
        own = object.__getattribute__(finder, "__dict__")
    except AttributeError:
        own = {}
    if type(own) is dict and "find_spec" in own:
        return own["find_spec"]
    return _on_class(finder if isinstance(finder, type) else type(finder), "find_spec")


_PLAIN_DICT = type.__dict__["__dict__"]
_getattribute = object.__getattribute__


class Charged:
    """A finder that asks the planted one inside an :class:`Accountable` (its acts: *chain*'s)."""

    __slots__ = ("_finder", "_chain", "_inherited")

    def __init__(self, finder, chain, inherited):
        self._finder, self._chain, self._inherited = finder, chain, inherited

    # A meta_path finder is asked find_spec(name, path, target), a path entry's finder
    # find_spec(name, target): the arguments are passed on as they come.
    def find_spec(self, fullname, *args, **kwargs):
        find = getattr(self._finder, "find_spec", None)
        if find is None:
            return None
        return _charged(find, self._chain, self._inherited, fullname, *args, **kwargs)

    def find_module(self, fullname, *args, **kwargs):
        find = getattr(self._finder, "find_module", None)
        if find is None:
            return None
        return _charged(find, self._chain, self._inherited, fullname, *args, **kwargs)

    def invalidate_caches(self):
        invalidate = getattr(self._finder, "invalidate_caches", None)
        if invalidate is not None:
            _charged(invalidate, self._chain, self._inherited)

    def __repr__(self):
        return f"<capimport charged finder {self._finder!r}>"


_LOADER_METHODS = ("create_module", "exec_module", "load_module")


def _loader_planted(loader, memo: dict) -> bool:
    """A loader whose import-time methods are planted (dictionaries only, as for finders)."""
    if loader is None or isinstance(loader, (ChargedLoader, type)):
        return False
    cls = type(loader)
    key = ("loader", cls)
    verdict = memo.get(key)
    if verdict is None:
        verdict = memo[key] = _computed_dict(cls) or any(_planted(_on_class(cls, name)) for name in _LOADER_METHODS)
    if verdict:
        return True
    try:
        own = _getattribute(loader, "__dict__")
    except AttributeError:
        return False
    return type(own) is dict and any(name in own and _planted(own[name]) for name in _LOADER_METHODS)


class ChargedLoader:
    """A loader that runs the planted one's import-time methods inside an :class:`Accountable`;
    anything else (``get_source``, ``is_package``...) is the original's."""

    def __init__(self, loader, chain, inherited):
        self._loader, self._chain, self._inherited = loader, chain, inherited

    def _call(self, name, *args):
        method = getattr(self._loader, name, None)
        if method is None:
            raise AttributeError(name)
        return _charged(method, self._chain, self._inherited, *args)

    def create_module(self, spec):
        if getattr(self._loader, "create_module", None) is None:
            return None
        return self._call("create_module", spec)

    def exec_module(self, module):
        return self._call("exec_module", module)

    def load_module(self, fullname):
        return self._call("load_module", fullname)

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def __repr__(self):
        return f"<capimport charged loader {self._loader!r}>"


def charge_planted_loader(spec, enforcer):
    """*spec* with a planted loader replaced by a :class:`ChargedLoader` (called by the import guard)."""
    loader = getattr(spec, "loader", None)
    if not _loader_planted(loader, {}):
        return False
    methods = [_on_class(type(loader), name) for name in _LOADER_METHODS]
    if not _computed_dict(type(loader)):
        try:
            own = _getattribute(loader, "__dict__")
        except AttributeError:   # a loader with __slots__
            own = None
        if type(own) is dict:
            methods = [own[name] for name in _LOADER_METHODS if name in own] + methods
    planted = next((method for method in methods if _planted(method)), None)
    spec.loader = ChargedLoader(loader, _chain_for(planted, enforcer), _charging(enforcer))
    return True


def _charged(fn, chain, charging, *args, **kwargs):
    """Call *fn* as *chain* (the Python fallback; *charging* is its chain table), or, with the
    native core (*chain* None, *charging* the core), as code nobody owns together with whoever is
    importing: the core mints that chain itself, so no one can name a better-granted owner for a
    planted builtin."""
    if chain is None:
        return charging.accountable(fn, charging.capture(unowned=True))(*args, **kwargs)
    return Accountable(fn, chain, charging)(*args, **kwargs)


def _charging(enforcer):
    """What :func:`_charged` needs besides the chain: the core, or the fallback's chain table."""
    return enforcer._core if enforcer.native else enforcer.inherited


class ChargedHook:
    """A planted path hook, called as code nobody owns together with whoever imports (native core)."""

    __slots__ = ("_hook", "_core")

    def __init__(self, hook, core):
        self._hook, self._core = hook, core

    def __call__(self, *args, **kwargs):
        return _charged(self._hook, None, self._core, *args, **kwargs)


def _charged_callable(fn, chain, inherited):
    if chain is None:
        return ChargedHook(fn, inherited)
    return Accountable(fn, chain, inherited)


def _chain_for(value, enforcer) -> tuple:
    """Who a planted entry acts as: the distribution whose compiled code it calls, else the
    unknown origin (the ``default`` grant). None with the native core (see :func:`_charged`).

    Reading the owner from ``__module__`` and ``__file__`` trusts attributes a distribution can
    set; the native core does not, and charges a planted builtin to code nobody owns.
    """
    if enforcer.native:
        return None
    owner = getattr(value, "func", value)   # a partial: what it calls
    bound = getattr(owner, "__self__", None)
    if isinstance(bound, types.ModuleType):
        module = bound
    elif bound is not None:
        module = sys.modules.get(getattr(type(bound), "__module__", None) or "")
    else:
        module = sys.modules.get(getattr(owner, "__module__", None) or "")
    filename = getattr(module, "__file__", None)
    if isinstance(filename, str):
        origin = enforcer.origins.origin(filename)
        if origin in enforcer.policy.distributions:
            return (Link(origin, filename, None, 0),)
    return (Link(UNKNOWN, "", None, 0),)


def sanitize(enforcer) -> int:
    """Replace planted import hooks and finders with charged ones; returns how many."""
    inherited = _charging(enforcer)
    memo: dict = {}
    count = 0
    hooks = sys.path_hooks
    if isinstance(hooks, list):
        for i, hook in enumerate(list(hooks)):
            if _planted(hook):
                hooks[i] = _charged_callable(hook, _chain_for(hook, enforcer), inherited)
                count += 1
    meta = sys.meta_path
    if isinstance(meta, list):
        for i, finder in enumerate(list(meta)):
            if _planted_finder(finder, memo):
                meta[i] = Charged(finder, _chain_for(_find_spec_of(finder), enforcer), inherited)
                count += 1
    cache = sys.path_importer_cache
    if isinstance(cache, dict):
        planted = [key for key, finder in cache.items() if finder is not None and _planted_finder(finder, memo)]
        for key in planted:
            finder = cache[key]
            cache[key] = Charged(finder, _chain_for(_find_spec_of(finder), enforcer), inherited)
            count += 1
    return count
