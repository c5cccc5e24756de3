"""Run-time enforcement: the single decision point every guard calls.

:func:`enable` loads (or takes) a :class:`~capimport.policy.Policy`, installs
the audit hook (:mod:`capimport.hook`) and the import guard
(:mod:`capimport.importguard`), and from then on every relevant act is
decided by :meth:`Enforcer.decide`:

1. walk the stack into a chain of acting origins
   (:func:`capimport.attribution.walk`; a thread's chain continues with the
   chain of the code that started it);
2. pick the origins that are accountable (:func:`capimport.attribution.accountable`);
3. ask each one's effective grant (a distribution may always read its own
   installed files);
4. ``enforce``: raise :class:`~capimport.errors.CapabilityError` before the
   act has any effect; ``warn``: report each distinct violation once and let
   it through; ``record``: let everything through and log every act.

Guards added elsewhere (environment reads, ``os.stat``, private C helpers)
call :func:`check` and get exactly the same attribution, modes and messages.
If deciding fails for any reason, enforce mode denies (fail closed).
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
import types
from importlib.machinery import ModuleSpec
from typing import Iterable, Optional

from . import bytecode
from . import hook as _hook
from .attribution import (APP, CAPIMPORT, CAPIMPORT_DEPENDENCIES, IMPORT, STDLIB, LINECACHE, LOGGING, TRANSPARENT,
                          UNKNOWN, Acting, Link, OriginMap, accountable, walk)
from .capabilities import CAPABILITIES, FFI, FS, FS_READONLY, IMPLIES
from .errors import CapabilityError, CapabilityImportError
from .report import Reporter, Violation, describe_target, safe_repr
from .scopes import is_ip, scope_allows
from .table.events import ENV_READONLY, EVENTS

#: The api of every environment-variable read the environment guard decides.
ENVIRON_API = "os.environ"

MODES = ("enforce", "warn", "record")
_MISSING = object()

_lock = threading.Lock()
_active: Optional["Enforcer"] = None


def active() -> Optional["Enforcer"]:
    """The enforcer running in this process, or None."""
    return _active


class Enforcer:
    """Policy, mode and bookkeeping for one process. Create it through :func:`enable`."""

    def __init__(self, policy, mode: str, *, strict: Optional[bool] = None, log: Optional[str] = None,
                 live_warnings: bool = True, app_dirs: Iterable[str] = (), stream=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.policy = policy
        self.mode = mode
        self.strict = policy.config.strict if strict is None else bool(strict)
        project = policy.config.project_dir
        app_dists = [name for name, dist in policy.distributions.items()
                     if project and dist.editable_project == os.path.realpath(project)]
        dirs = list(app_dirs) + ([project] if project else [])
        self.origins = OriginMap(policy.distributions, app_distributions=app_dists, app_dirs=dirs)
        self.origins.prepare()  # read every RECORD and editable mapping now, not inside the hook
        self.reporter = Reporter(mode, log_path=log, live_warnings=live_warnings, stream=stream)
        self._scopes: dict[str, dict] = {}
        self._dependents: dict[str, frozenset] = {}
        self._parents_of: Optional[dict] = None   # the graph's child -> parents index (dependents)
        self.inherited: dict[int, tuple] = {}
        self._depth: dict[int, int] = {}
        self.hook = None
        self._looked_up: list = []
        self._resolved: dict = {}
        self.guard_rules: dict = {}  # event -> rule(event, args, frame), from capimport.guards
        self.tamper_spec: dict = {}  # the native core's copy of what the tamper rules compare against
        self.import_callables = import_callables()  # taken again once the guards replace _imp's
        self.bytecode = bytecode.Held()  # as the interpreter started (the cache prefix: anyone can set sys's)
        self.compiling: list = []  # name objects of capimport's own compiles (bytecode.expected_code)
        self.native = False  # True once capimport._core decides the audited acts
        self._core = None    # capimport._core then: the guards' decisions and walks go through it too
        self.no_config = not policy.config.found
        try:
            self.cwd = os.getcwd()
        except OSError:
            self.cwd = "/"

    # -- grants -----------------------------------------------------------------------

    def grant_of(self, origin: str):
        if origin == APP:
            return self.policy.app
        if origin == UNKNOWN:
            return self.policy.config.default
        return self.policy.grant_for(origin)

    def scopes_of(self, origin: str) -> dict:
        found = self._scopes.get(origin)
        if found is None:
            found = self._scopes[origin] = self.grant_of(origin).as_dict()
        return found

    def dependents(self, origin: str) -> frozenset:
        found = self._dependents.get(origin)
        if found is None:
            if origin in (APP, UNKNOWN) or origin not in self.policy.distributions:
                found = frozenset()
            else:
                graph = self.policy.graph
                if self._parents_of is None:   # one index for every distribution's closure
                    self._parents_of = graph.parents_index(optional=True)
                found = frozenset(graph.dependents_closure(origin, optional=True, parents_of=self._parents_of))
            self._dependents[origin] = found
        return found

    def holds(self, origin: str, capability: str, target) -> tuple[bool, bool]:
        """``(allowed, scoped)``: *scoped* is True when the origin holds the capability elsewhere."""
        scopes = self.scopes_of(origin)
        scope = scopes.get(capability, _MISSING)
        if scope is None:
            return True, False
        value = target.get()
        if _hook.skip_target(value):
            return True, False
        if scope is not _MISSING and (value is None or scope_allows(scope, value)):
            return True, False
        if capability == FS_READONLY and isinstance(value, str) and (
                (origin in self.policy.distributions and self.origins.owns(origin, value))
                or self.origins.standard_library_file(value)):
            return True, False
        if capability == FS and _hook.mapped_semaphore(value):
            return True, False
        if capability == "net" and scope is not _MISSING and self._named_address(scope, value):
            return True, False
        return False, scope is not _MISSING

    # -- host names behind socket addresses ---------------------------------------------

    def note_lookup(self, host) -> None:
        """Remember a host name the program looked up (its addresses may be connected to next)."""
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if isinstance(host, str) and host and not is_ip(host):
            names = self._looked_up
            if host not in names:
                names.append(host)
                if len(names) > 256:
                    del names[:64]

    def _named_address(self, scope, value) -> bool:
        """True when *value* is ``(ip, port)`` of a host name the scope allows.

        A grant scoped to ``api.example.com:443`` must allow ``connect(('93.184.216.34', 443))``
        after the lookup of that name: the address is matched through the names the scope
        lists and the names the program looked up, resolved forward (cached per process).
        """
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
                and is_ip(value[0])):
            return False
        ip, port = value
        candidates = list(self._looked_up)
        for pattern in scope:
            host = pattern.value.rsplit(":", 1)[0] if not pattern.value.startswith("[") else ""
            if host and "*" not in host and not is_ip(host):
                candidates.append(host)
        for name in dict.fromkeys(candidates):
            if scope_allows(scope, (name, port)) and ip in self._addresses_of(name):
                return True
        return False

    def _addresses_of(self, name: str) -> frozenset:
        found = self._resolved.get(name)
        if found is None:
            import _socket
            try:
                infos = _socket.getaddrinfo(name, None)
                found = frozenset(info[4][0].split("%")[0] for info in infos)
            except (OSError, UnicodeError, ValueError):
                found = frozenset()
            self._resolved[name] = found
        return found

    # -- the walk's privileged frames -------------------------------------------------

    def _privileged(self, kind: str, frame, checks) -> bool:
        if any(capability == ENV_READONLY and api == ENVIRON_API for capability, _, api in checks):
            # No privilege covers an environment variable: linecache calling a planted loader's
            # get_source, or a logging handler running a planted filter, would read it for the
            # planter. The walk goes on to whoever is behind them.
            return False
        if kind == IMPORT:
            # Only while importing (import_entered in _core.c): a distribution calling one of the
            # import system's helpers gets no privilege from it. Its own acts only (privileged_ok
            # in _core.c); any other is a planted callable's.
            if not self._import_entered(frame):
                return False
            held = None   # _runs_held_callable(frame), asked only for an act neither read nor write
            for index, (capability, target, api) in enumerate(checks):
                if capability == FS_READONLY and api != "open":
                    continue   # metadata: stat, listdir, getcwd
                if capability == ENV_READONLY:   # /proc/<pid>/environ: no privilege covers it
                    if _hook.skip_target(target.get()):
                        continue
                    return False
                covered = False
                if capability == FS_READONLY:   # module files, or an extension's init reading (as its owner)
                    covered = _import_reads_module(frame, target.get()) or self._init_reads(frame)
                    if isinstance(covered, Acting):
                        return covered
                elif capability == FS:   # the bytecode cache of the source it compiled (capimport.bytecode)
                    bytecode.write_instead(frame, self.bytecode, checks, self.compiling)   # raises when it did
                    covered = bytecode.makes_cache_folder(frame, self.bytecode, checks, index)
                if not covered:   # inside _call_with_frames_removed: a module's body or init?
                    held = self._runs_held_callable(frame) if held is None else held
                    covered = held in (_HELD_EXEC, _HELD_BUILTIN) and capability == FFI   # ctypes's dlopen
                    if held == _HELD_MAKER:
                        covered = self._made_module_acts(frame)
                        if isinstance(covered, Acting):
                            return covered
                        covered = covered and capability == FFI   # the interpreter's own: as its bodies
                if not covered:
                    return Link(UNKNOWN, "", None, 0)   # planted where it calls others (privileged_ok in _core.c)
            return True
        if kind == LINECACHE:
            # linecache reads Python source for tracebacks, and stats candidate files to find it:
            # contents only of .py files, metadata of anything.
            for capability, target, api in checks:
                if capability not in (FS_READONLY, ENV_READONLY):
                    return False
                if capability == FS_READONLY and api == "open":
                    value = target.get()
                    if not (isinstance(value, str) and value.endswith((".py", ".pyw"))):
                        return False
            return True
        if kind == LOGGING:
            handler = frame.f_locals.get("self")
            base = getattr(handler, "_capimport_path", None)
            if not isinstance(base, str):
                return False
            for capability, target, _ in checks:
                if capability not in (FS, FS_READONLY, ENV_READONLY):
                    return False
                value = target.get()
                if capability == ENV_READONLY:
                    continue
                if not (isinstance(value, str) and (value == base or value.startswith(base + ".")
                                                    or value == os.path.dirname(base))):
                    return False
            return True
        return False

    def _init_reads(self, frame):
        """A read the import system's frames make for an extension module's init (``init_reads``
        in ``_core.c``): the first ``_call_with_frames_removed`` outward, with only the import
        system's, the standard library's and capimport's frames between, runs a held ``_imp`` maker. Then an
        :class:`Acting` link for the owner of the module it makes; else False. Which loader's
        ``get_data`` reads decides nothing (anyone can build one on another's module file)."""
        while frame is not None:
            origin = self.origins.origin(frame.f_code.co_filename)
            if origin == IMPORT and frame.f_code.co_name == "_call_with_frames_removed":
                if self._runs_held_callable(frame) != _HELD_MAKER:
                    return False
                acts = self._made_module_acts(frame)
                return acts if isinstance(acts, Acting) else False
            if origin not in (IMPORT, STDLIB, CAPIMPORT):   # capimport's: its gates on _imp's makers
                return False
            frame = frame.f_back
        return False

    def _runs_held_callable(self, frame) -> int:
        """What ``_call_with_frames_removed`` (*frame*) calls among the callables held since
        install (``runs_held_callable`` in ``_core_tamper.h``): ``_HELD_EXEC`` (a module's body),
        ``_HELD_BUILTIN`` or ``_HELD_MAKER`` (``_imp`` making a builtin or an extension module), or
        0 (anything else: anyone can replace those with a partial)."""
        if frame.f_code.co_name != "_call_with_frames_removed":
            return 0
        callable_ = frame.f_locals.get("f")
        for index, held in enumerate(self.import_callables):
            if callable_ is held:
                return _HELD_EXEC if index == 0 else _HELD_BUILTIN if index < 3 else _HELD_MAKER
        return 0

    def _made_module_acts(self, frame):
        """An act inside a held ``_imp`` maker is the init of the module it makes or runs
        (``made_module_acts`` in ``_core.c``): True for the standard library's and capimport's
        extension modules (which the caller privileges for ffi only, as their bodies), an
        :class:`Acting` link for the owner of any other module's file, False (code nobody owns)
        when no file names one."""
        args = frame.f_locals.get("args")
        first = args[0] if type(args) is tuple and args else None
        spec = _own_attribute(first, "__spec__") if type(first) is types.ModuleType else first
        origin_file = _own_attribute(spec, "origin") if type(spec) is ModuleSpec else None
        if type(origin_file) is not str:
            return False
        origin = self.origins.origin(origin_file)
        if origin in (STDLIB, CAPIMPORT):
            return True
        if origin in TRANSPARENT:
            return False
        return Acting(Link(origin, origin_file, None, 0))

    _IMPORT_ENTRIES = frozenset({"_find_and_load", "_gcd_import", "_handle_fromlist", "_find_spec", "_load", "_exec"})

    def _import_entered(self, frame) -> bool:
        """True when the import system's frames from *frame* outward (with the standard library's
        and capimport's among them) reach one of its entry points before any other code: a
        distribution calling one of its helpers directly gets no privilege from it."""
        origin_of = self.origins.origin
        while frame is not None:
            code = frame.f_code
            origin = origin_of(code.co_filename)
            if origin == IMPORT and code.co_name in self._IMPORT_ENTRIES:
                return True
            if origin not in (IMPORT, STDLIB, CAPIMPORT):
                return False
            frame = frame.f_back
        return False

    # -- deciding ---------------------------------------------------------------------

    def chain_for(self, frame, checks=()) -> Optional[list]:
        """The acting chain from *frame* outward (None: a privileged frame allows the act)."""
        if self.native:   # the core walks: no Python classifies a file name (os.getcwd, realpath)
            found = self._core.chain(frame, True)
            return None if found is None else [Link(*entry) for entry in found]
        inherited = self.inherited.get(threading.get_ident(), ())
        return walk(frame, self.origins, lambda kind, f: self._privileged(kind, f, checks), inherited)

    def internal(self, fn, *args):
        """Run capimport's own *fn* marked as deciding on this thread: the Python guards let the
        calls inside it through instead of judging them as the acting distribution's."""
        tid = threading.get_ident()
        depth = self._depth.get(tid, 0)
        self._depth[tid] = depth + 1
        try:
            return fn(*args)
        finally:
            if depth:
                self._depth[tid] = depth
            else:
                self._depth.pop(tid, None)

    def capture(self, frame):
        """The current chain, frame-free, for code that will run later (a thread).

        With the native core it is an opaque ``capimport._core.Chain`` token (read only by the
        core: :class:`inherit`, the thread patch and the deferred guards hand it back), else a
        tuple of links.
        """
        return self.internal(self._capture, frame)

    def _capture(self, frame):
        if self.native:
            # A token the core walked from this very call (transparent capimport frames lead to
            # *frame*): it cannot be forged, and only the core's accountable callables read it.
            return self._core.capture()
        chain = walk(frame, self.origins, lambda kind, f: False, self.inherited.get(threading.get_ident(), ()))
        return tuple(link.frozen() for link in (chain or ()))

    def decide(self, checks: list, frame, describe, *, import_name: Optional[str] = None,
               chain: Optional[list] = None) -> None:
        """Decide one act: *checks* is ``[(capability, Lazy target, api name)]``.

        *chain* (the fallback's tamper rules only) names the parties instead of the walk from
        *frame*: the owner of the code an import executes answers for what the code claims.
        """
        if self.native:
            return self._decide_in_core(checks, frame, describe, import_name)
        tid = threading.get_ident()
        depth = self._depth.get(tid, 0)
        if depth:
            # An act raised while this thread is deciding another one is capimport's own
            # work (reading distribution metadata, importing a helper). Code of the acting
            # distribution never runs inside a decision: path-like arguments are converted
            # before it starts, and messages use safe_repr.
            return
        self._depth[tid] = depth + 1
        try:
            self._decide(checks, frame, describe, import_name, chain)
        except (CapabilityError, CapabilityImportError, bytecode.CacheWritten):
            raise
        except Exception as exc:  # fail closed
            api = checks[0][2] if checks else "?"
            if self.mode == "enforce":
                raise CapabilityError(f"capimport: internal error while deciding {api}: {exc!r}; "
                                      f"denied (fail closed)", api=api) from None
            self.reporter.internal_error(f"while deciding {api}: {exc!r}")
        finally:
            if depth:
                self._depth[tid] = depth
            else:
                self._depth.pop(tid, None)

    def _decide_in_core(self, checks, frame, describe, import_name) -> None:
        """The native core decides (walk, grants, report); a strict-mode import gets its ImportError."""
        from .native import core_item

        items = [core_item(capability, target, api) for capability, target, api in checks]
        try:
            self._core.check(items, frame, describe)
        except CapabilityError as exc:
            if import_name is None:
                raise
            raise CapabilityImportError(str(exc), name=import_name, distribution=exc.distribution,
                                        capability=exc.capability) from None

    def _decide(self, checks, frame, describe, import_name, chain=None) -> None:
        chain = self.chain_for(frame, checks) if chain is None else chain
        if chain is None:
            return
        if not chain:
            chain = [Link(APP, "", None)]
        links = accountable(chain, self.dependents)
        recording = self.mode == "record"
        violations: list[Violation] = []
        for capability, target, api in checks:
            for link in links:
                ok, scoped = self.holds(link.origin, capability, target)
                if recording and link.origin != APP:
                    if not _hook.skip_target(target.get()):
                        self.reporter.recorded(self._violation(link, chain, capability, target, api,
                                                               describe, scoped, allowed=ok))
                    continue
                if not ok:
                    violations.append(self._violation(link, chain, capability, target, api, describe, scoped))
        if not violations or recording:
            return
        if self.mode == "warn":
            for violation in violations:
                self.reporter.warned(violation)
            return
        first = violations[0]
        self.reporter.denied(first)
        message = first.message("enforce")
        if import_name is not None:
            raise CapabilityImportError(message, name=import_name, distribution=first.origin,
                                        capability=first.capability)
        raise CapabilityError(message, distribution=first.origin, capability=first.capability,
                              api=first.api_name, target=checks[0][1].get() if checks else None)

    # -- messages ---------------------------------------------------------------------

    def _violation(self, link: Link, chain: list, capability: str, target, api: str, describe,
                   scoped: bool, allowed: bool = False) -> Violation:
        origin = link.origin
        dist = self.policy.distributions.get(origin)
        version = dist.version if dist is not None else ""
        value = target.get()
        scope = describe_target(capability, value)
        location = f"{self.origins.relative(link.filename, origin)}:{link.line()}" if link.filename else "?"
        called_from = ""
        index = next((i for i, item in enumerate(chain) if item is link), -1)
        outer = chain[index + 1:] if index >= 0 else []
        caller = next((item for item in outer if item.origin == APP), outer[0] if outer else None)
        if caller is None and link.frame is not None:
            caller = self._display_caller(link.frame)
        if caller is not None and caller.filename:
            called_from = f"{self.origins.relative(caller.filename, caller.origin)}:{caller.line()}"
        via = ""
        actor = next((item for item in chain[:index] if item.origin != origin and item.filename), None)
        if actor is not None:   # the act was another's: name it, or the message points at a plain call
            via = f"{self._named(actor.origin)} at {self.origins.relative(actor.filename, actor.origin)}:{actor.line()}"
        if origin == APP:
            display = "the application"
        elif origin == UNKNOWN:
            display = "code no distribution owns"
        else:
            display = f"'{origin}' {version}".strip()
        try:
            call = describe() if callable(describe) else str(describe or api)
        except Exception:
            call = api
        return Violation(origin=origin, version=version, capability=capability, api=call, api_name=api,
                         scope=scope, location=location, called_from=called_from,
                         hint=self.hint(origin, capability, scope, scoped), display=display,
                         scoped=scoped, allowed=allowed, via=via)

    def _named(self, origin: str) -> str:
        """An origin as messages name it: 'rich', the application, code no distribution owns."""
        return "the application" if origin == APP else (
            "code no distribution owns" if origin == UNKNOWN else f"'{origin}'")

    def _display_caller(self, frame) -> Optional[Link]:
        """For messages only: the application frame beyond the walk's end (an import statement)."""
        own = self.origins.origin(frame.f_code.co_filename)
        frame = frame.f_back
        while frame is not None:
            filename = frame.f_code.co_filename
            origin = self.origins.origin(filename)
            if origin == APP and origin != own:
                return Link(origin, filename, frame)
            frame = frame.f_back
        return None

    def _rel(self, path: str) -> str:
        if not path:
            return path
        try:
            rel = os.path.relpath(path, self.cwd)
        except ValueError:
            return path
        return path if rel.startswith("../..") else rel

    def hint(self, origin: str, capability: str, scope: str, scoped: bool) -> str:
        config = self.policy.config
        config_file = self._rel(config.path) if config.path else "pyproject.toml"
        if origin == APP:
            if scoped:
                return f"widen the application's scope in {config_file}: [tool.capimport] app"
            names = _toml_names(list(self.policy.app.names) + [capability])
            return f"grant it in {config_file}: [tool.capimport] app = {names}"
        if origin == UNKNOWN:
            return (f"code in site-packages that no distribution's RECORD lists gets the 'default' grant "
                    f"([tool.capimport] default in {config_file})")
        graph = self.policy.graph
        if origin in self.policy.distributions and origin not in set(graph.nodes):
            extras = graph.optional_requirers(origin)
            via = f"; it is an optional dependency of {', '.join(extras[:3])}" if extras else ""
            return (f"it is installed but the application does not depend on it, so it holds nothing{via}: "
                    f"add it (or the extra that pulls it in) to [project.dependencies] in {config_file}")
        declared = self.policy.declared_for(origin)
        manifest = self.policy.declarations.get(origin)
        if declared.allows(capability) and not scoped:
            return (f"its manifest declares '{capability}' but the packages that depend on it do not pass "
                    f"it on; see: capimport why {origin} {capability}")
        if manifest is not None and manifest.source == "config":
            if scoped and scope == "*":
                return f"grant it unscoped in {config_file} [tool.capimport.packages] {origin}: {capability} = true"
            if scoped:
                return f"widen its scope in {config_file} [tool.capimport.packages] {origin}: {capability} = [\"{scope}\"]"
            return f"grant it in {config_file} [tool.capimport.packages]: " \
                   f"{origin} = {_toml_names(list(declared.names) + [capability])}"
        if manifest is not None and manifest.source == "manifests" and manifest.path:
            where = self._rel(manifest.path)
        else:
            folder = config.manifests_dir or os.path.join(config.project_dir or self.cwd, "manifests")
            where = self._rel(os.path.join(folder, f"{origin}.toml"))
        if scoped and scope == "*":
            return f"grant it unscoped in {where}: remove '{capability}' from [scopes]"
        if scoped:
            return f"widen its scope in {where}: [scopes] {capability} = [..., \"{scope}\"]"
        return f"grant it in {where}: capabilities = {_toml_names(list(declared.names) + [capability])}"

    # -- the native core's callbacks -------------------------------------------------------

    def native_report(self, kind: str, event: str, args: tuple, chain: list, items: list):
        """Word a verdict the native core reached: *kind* is ``deny``, ``warn`` or ``record``.

        *chain* is ``[(origin, filename, frame, lineno)]``, *items* is
        ``[(link index, capability, target, api, scoped, allowed)]``. For a
        denial it returns the exception the core raises; whatever happens
        here, the core denies (it words the denial itself if this fails).
        """
        # Wording is capimport's own work (os.getcwd for relative names, the environment).
        return self.internal(self._native_report, kind, event, args, chain, items)

    def _native_report(self, kind: str, event: str, args: tuple, chain: list, items: list):
        links = [Link(origin, filename, frame, lineno) for origin, filename, frame, lineno in chain]
        # An audit event is worded from its table entry; a gate's call (os.stat, ...) from the
        # arguments the gate chose to show.
        if args is None:   # a Python guard's decision: *event* words the act (a str or a callable)
            describe = event if callable(event) else (lambda: event)
        else:              # an audit event, or a gate's call (os.stat, ...) with the arguments it shows
            describe = lambda: (describe_event(event, args) if event in EVENTS  # noqa: E731
                                else f"{event}({', '.join(safe_repr(a) for a in args)})")
        violations = [self._violation(links[index], links, capability, _Known(target), api, describe, scoped,
                                      allowed=allowed)
                      for index, capability, target, api, scoped, allowed in items]
        if kind == "record":
            for violation in violations:
                self.reporter.recorded(violation)
            return None
        if kind == "warn":
            for violation in violations:
                self.reporter.warned(violation)
            return None
        first = violations[0]
        self.reporter.denied(first)
        return CapabilityError(first.message("enforce"), distribution=first.origin, capability=first.capability,
                               api=first.api_name, target=items[0][2])

    # -- events -----------------------------------------------------------------------

    def handle_event(self, event: str, args: tuple) -> None:
        """Called by the audit hook for every relevant event."""
        rule = self.guard_rules.get(event)
        if rule is not None:
            if rule(event, args, sys._getframe(1).f_back) is DECIDED or event not in EVENTS:
                return
        try:
            checks = _hook.checks_for(event, args)
        except Exception as exc:
            checks = None
            error = exc
        if checks is None:
            if self.mode == "enforce":
                raise CapabilityError(f"capimport: cannot read the arguments of {event}: {error!r}; "
                                      f"denied (fail closed)", api=event)
            self.reporter.internal_error(f"cannot read the arguments of {event}: {error!r}")
            return
        if not checks:
            return
        if event in _LOOKUPS:
            self.note_lookup(args[_LOOKUPS[event]] if len(args) > _LOOKUPS[event] else None)
        frame = sys._getframe(1).f_back  # the hook's caller (None when C code acts with no Python frame)
        self.decide(checks, frame, lambda: describe_event(event, args))

    def close(self) -> None:
        self.reporter.close()


#: A guard rule's answer when the event's act was decided already (guards.tamper's vouched events).
DECIDED = "decided already"

#: Events that look a host name up, and the index of the name in their arguments.
_LOOKUPS = {"socket.getaddrinfo": 0, "socket.gethostbyname": 0, "http.client.connect": 1}


class _Known:
    """A target the native core already computed (the shape of :class:`capimport.hook.Lazy`)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


#: What ``_call_with_frames_removed`` runs: a module's body, ``_imp`` making an extension or a
#: builtin module (``HELD_*`` in ``_core.c``).
_HELD_EXEC, _HELD_MAKER, _HELD_BUILTIN = 1, 2, 3


def import_callables() -> tuple:
    """What the import system's own acts run through, as they are now: ``builtins.exec`` first (a
    module's body), then ``_imp``'s makers of builtin and extension modules (the guards' gates once
    installed). An act inside ``_call_with_frames_removed`` calling anything else is planted."""
    import _imp
    makers = ("create_builtin", "exec_builtin", "create_dynamic", "exec_dynamic")
    return (builtins.__dict__["exec"],) + tuple(getattr(_imp, name, None) for name in makers)


#: What the import system reads as a module: source, bytecode, an extension module (extension
#: suffixes end in .so or .pyd on every platform CPython builds for).
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pyw")


def _own_attribute(obj, name: str):
    """*name* from a module's or a spec's own ``__dict__`` (``own_attribute`` in ``_core_tamper.h``)."""
    own = getattr(obj, "__dict__", None) if type(obj) in (types.ModuleType, ModuleSpec) else None
    return own.get(name) if type(own) is dict else None


def _import_reads_module(frame, path) -> bool:
    """The import system's read privilege covers module files and zipimport reading an archive for
    an import, not for a ``get_data`` caller (``import_reads_module`` in ``_core.c``): a planted
    finder can point a standard loader anywhere."""
    zipped = asked = False
    while frame is not None and frame.f_code.co_filename == "<frozen zipimport>":
        zipped = True
        asked = asked or frame.f_code.co_name == "get_data"
        frame = frame.f_back
    if zipped:
        return not asked
    return isinstance(path, str) and path.endswith(_MODULE_SUFFIXES)


def _toml_names(names: list) -> str:
    unique = [c for c in CAPABILITIES if c in set(names)]
    implied = {i for c in unique for i in IMPLIES.get(c, ())}
    shown = [c for c in unique if c not in implied]
    return "[" + ", ".join(f'"{c}"' for c in shown) + "]"


def describe_event(event: str, args: tuple) -> str:
    """``api(args)`` for messages, showing only the arguments that carry the scope."""
    spec = EVENTS.get(event)
    if spec is None:
        return event
    shown = []
    if event == "open":
        shown = [args[0]] + ([args[1]] if len(args) > 1 and args[1] is not None else [])
    else:
        for scope in spec.scope:
            for index in scope[1:]:
                if isinstance(index, int) and index < len(args) and (scope[0] != "path" or index == scope[1]):
                    shown.append(args[index])
                    if scope[0] in ("path", "addr", "env", "program", "glob", "sqlite", "socket"):
                        break
        if event == "subprocess.Popen" and len(args) > 1:
            shown = [args[1]]
        elif event == "os.system" and args:
            shown = [args[0]]
        elif event == "fcntl.ioctl" and len(args) > 1 and isinstance(args[1], int):
            request = _hook.TERMINAL_INPUT_NAMES.get(args[1], f"{args[1]:#x}")
            return f"{spec.api}({safe_repr(args[0])}, {request})"
        elif event == "socket.__new__" and len(args) > 3:
            return f"{spec.api}({_const('AF_', args[1])}, {_const('SOCK_', args[2])})"
        elif event == "capimport.ctypes_data" and args and isinstance(args[0], type):
            return f"{spec.api} ({_TYPE_NAME.__get__(args[0])}(...))"   # the C getter: no metaclass code runs
    return f"{spec.api}({', '.join(safe_repr(a) for a in shown)})"


_TYPE_NAME = type.__dict__["__name__"]


def _const(prefix: str, value) -> str:
    import _socket
    if prefix == "SOCK_" and isinstance(value, int):
        value &= 0xF  # without SOCK_CLOEXEC / SOCK_NONBLOCK
    for name in dir(_socket):
        if name.startswith(prefix) and getattr(_socket, name) == value and name not in ("AF_UNSPEC",):
            return f"socket.{name}"
    return safe_repr(value)


# ----------------------------------------------------------------------------- public API


def check(capability: str, target=None, api: str = "", *, frame=None, call: Optional[str] = None,
          import_name: Optional[str] = None) -> None:
    """Decide whether the code calling this may exercise *capability* on *target*.

    The single decision point for guards outside the audit hook. *target* is
    a path (resolved here), ``(host, port)``, a variable name, a program, or
    None for the capability as a whole. *frame* is where the walk starts
    (default: the caller's caller, i.e. the code that called the guarded
    API). Raises :class:`CapabilityError` in enforce mode
    (:class:`CapabilityImportError` when *import_name* is given); does
    nothing when enforcement is off.
    """
    enforcer = _active
    if enforcer is None:
        return
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    if frame is None:
        frame = sys._getframe(1).f_back
    lazy = _hook.Lazy(_normalise, capability, target)
    enforcer.decide([(capability, lazy, api or capability)], frame, call or api or capability,
                    import_name=import_name)


def _normalise(capability: str, target):
    if target is None:
        return None
    if capability in (FS, FS_READONLY):
        return _hook.path_target(target)
    if capability == "process":
        return _hook.program_target(target)
    if capability in ("env", ENV_READONLY):
        return _hook.env_target(target)
    return target


def capture(frame=None) -> tuple:
    """The acting chain at *frame* (default: the caller's caller), for deferred code to inherit."""
    enforcer = _active
    if enforcer is None:
        return ()
    return enforcer.capture(frame if frame is not None else sys._getframe(1).f_back)


class inherit:
    """Context manager: code run inside acts on behalf of *chain* (from :func:`capture`) too."""

    def __init__(self, chain: tuple):
        self.chain = chain
        self.saved = None

    def __enter__(self):
        enforcer = _active
        if enforcer is not None and enforcer.native:
            enforcer._core.push(self.chain)   # appended to this thread's walks until __exit__
            return self
        if enforcer is not None and self.chain:
            tid = threading.get_ident()
            self.saved = enforcer.inherited.get(tid)
            enforcer.inherited[tid] = self.chain + (self.saved or ())
        return self

    def __exit__(self, *exc):
        enforcer = _active
        if enforcer is not None and enforcer.native:
            enforcer._core.pop(self.chain)
            return False
        if enforcer is not None and self.chain:
            tid = threading.get_ident()
            if self.saved is None:
                enforcer.inherited.pop(tid, None)
            else:
                enforcer.inherited[tid] = self.saved
        return False


def run_as(parties: tuple, fn, /, *args, **kwargs):
    """Run a task another process sent as its submitter's *parties* (origin names) would.

    A process pool pickles each task (the callable and its arguments) to a worker whose stack
    is the standard library's (or, forked, the stack of whoever started the pool), so a builtin
    a distribution submits (``os.system``) would run there as the application. capimport sends
    the submitter's parties along, as a call of this module-level function, which pickles by
    name. The task runs as an accountable callable: the parties stand in for the frames that
    run it, and the chain of whoever calls this function joins them, so a forged list only adds
    parties that must hold a capability, never removes one.
    """
    enforcer = _active
    if enforcer is None:
        return fn(*args, **kwargs)
    names = tuple(name if type(name) is str else UNKNOWN for name in parties)
    if enforcer.native:   # the core joins this call's own chain to the token (core_accountable)
        task = enforcer._core.accountable(fn, enforcer._core.parties(names))
    else:
        from .guards.boundary import Accountable
        known = enforcer.policy.distributions
        links = tuple(Link(name if name == APP or name in known else UNKNOWN, "", None, 0) for name in names)
        task = Accountable(fn, links + tuple(enforcer.capture(sys._getframe(1)) or ()), enforcer.inherited)
    return task(*args, **kwargs)


def party_names(chain) -> tuple:
    """The origin names of a chain from :meth:`Enforcer.capture` (a core token or links)."""
    if hasattr(chain, "links"):
        return tuple(link[0] for link in chain.links())
    return tuple(link.origin for link in chain)


# ----------------------------------------------------------------------------- deferred code


def _patch_threading(enforcer: Enforcer) -> None:
    """A thread inherits the chain of the code that started it."""
    Thread = threading.Thread
    if getattr(Thread.start, "_capimport", False):
        return
    original_start = Thread.start
    original_inner = Thread._bootstrap_inner  # type: ignore[attr-defined]

    def start(self):
        try:
            self._capimport_chain = enforcer.capture(sys._getframe(1))
        except Exception:
            self._capimport_chain = (Link(UNKNOWN, "", None, 0),)  # fail closed
        return original_start(self)

    def _bootstrap_inner(self):
        chain = getattr(self, "_capimport_chain", None)
        if enforcer.native and chain is not None:
            return enforcer._core.accountable(original_inner, chain)(self)
        tid = threading.get_ident()
        if chain:
            enforcer.inherited[tid] = chain
        try:
            original_inner(self)
        finally:
            enforcer.inherited.pop(tid, None)

    start._capimport = True  # type: ignore[attr-defined]
    start.__wrapped__ = original_start  # type: ignore[attr-defined]
    Thread.start = start
    Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]


def patch_logging(module) -> None:
    """Creating a logging FileHandler is an ``fs`` act of its creator; the handler may then write there."""
    FileHandler = getattr(module, "FileHandler", None)
    if FileHandler is None or getattr(FileHandler.__init__, "_capimport", False):
        return
    original = FileHandler.__init__

    def __init__(self, filename, *args, **kwargs):
        path = os.path.realpath(os.path.abspath(os.fspath(filename)))
        check(FS, path, "logging.FileHandler", frame=sys._getframe(1),
              call=f"logging.FileHandler({safe_repr(os.fspath(filename))})")
        self._capimport_path = path
        enforcer = _active
        if enforcer is not None and enforcer.native:
            from .native import core
            core().register_log_file(self, path)
        original(self, filename, *args, **kwargs)

    __init__._capimport = True  # type: ignore[attr-defined]
    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    FileHandler.__init__ = __init__


# ----------------------------------------------------------------------------- enable


def enable(config=None, mode: Optional[str] = None, **options) -> Enforcer:
    """Start enforcement in this process. It cannot be switched off or weakened afterwards.

    *config* is a configuration file path, a :class:`~capimport.policy.Policy`,
    or None to discover one. *mode* overrides the configured mode. Options:
    ``strict`` (bool), ``log`` (path of the JSON-lines log), ``script``
    (for configuration discovery), ``live_warnings`` (bool), ``paths``.
    """
    global _active
    from .policy import Policy, load_policy

    with _lock:
        if _active is not None:
            if (mode is None or mode == _active.mode) and config is None and not options:
                return _active
            raise RuntimeError(f"capimport: enforcement is already on in this process "
                               f"(mode {_active.mode!r}); it cannot be switched off or changed")
        if isinstance(config, Policy):
            policy = config
        else:
            policy = load_policy(config, script=options.get("script"), paths=options.get("paths"))
        chosen = mode or policy.mode
        log = options.get("log")
        if chosen == "record" and not log:
            log = os.path.abspath(_record_default())
        enforcer = Enforcer(policy, chosen, strict=options.get("strict"), log=log,
                            live_warnings=options.get("live_warnings", True),
                            app_dirs=options.get("app_dirs", ()), stream=options.get("stream"))
        # Warm what the decision path needs so that deciding never imports.
        if sys.platform == "win32":
            import shutil  # noqa: F401   (hook.which uses it there)
        _patch_threading(enforcer)
        from . import importguard
        importguard.install(enforcer)
        if "logging" in sys.modules:
            patch_logging(sys.modules["logging"])
        from . import guards  # hardening: routes that raise no audit event (issue 4)
        guards.install(enforcer)
        from . import native
        installed = native.install(enforcer)
        enforcer._core = native.core() if installed else None
        enforcer.native = installed
        if not enforcer.native:
            enforcer.hook = _hook.install(enforcer.handle_event, _hook.WATCHED | frozenset(enforcer.guard_rules))
        _active = enforcer
        return enforcer


def _record_default() -> str:
    from .report import DEFAULT_RECORD_LOG
    return DEFAULT_RECORD_LOG
