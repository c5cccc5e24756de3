"""Routes 6 and 7: forged identity and tampering with capimport, as audit-event rules.

With the native core these rules are C (``_core_tamper.h``; :func:`core_spec` hands it the
objects they compare against), and only two Python side effects that decide nothing stay
here (:func:`native_rules`). The Python rules below are the pure-Python fallback's.

The enforcer hands these events to :func:`rules` before its own table:

Tampering (route 7), each needs ``ffi`` (code that can do this can do anything):

* ``sys.addaudithook`` (a hook of one's own sees and can stall every event),
  ``sys.settrace``/``sys.setprofile`` (and ``threading.settrace``/
  ``setprofile``, which call them in each new thread);
* ``gc.get_objects``/``get_referrers``/``get_referents`` (they reach the
  policy, the vault and the originals of every guarded function);
* ``sys._current_frames`` (other threads' frames, including capimport's) and
  ``sys._current_exceptions`` (their exceptions, and through the tracebacks the frames);
* ``object.__getattr__`` on a vault generator (``gi_frame`` would expose the
  environment; see :mod:`capimport.guards.environ`);
* ``import`` of a second copy of a guarded C module (``del sys.modules[...]``
  then import again would hand out unguarded originals); a first import is
  guarded as it loads;
* the import guard missing from ``sys.meta_path`` or ``builtins.__import__``
  replaced: checked on every ``import``/``exec`` event; the original is put
  back and the import refused (fail closed).

Forged identity (route 6): the origin of code is the file its code object
names, so naming another file is forging:

* ``compile(source, filename)`` and ``code.__new__`` (``CodeType``,
  ``code.replace``) by a distribution, naming a file of the standard library,
  capimport or another distribution: denied (needs ``ffi``). Code naming any
  other path (which would read as the application's code, or nobody's) is
  marked as the distribution's, by identity, when it is run or bound
  (``exec``, ``FunctionType``, ``function.__code__ =``), so the code keeps the
  distribution's identity wherever it runs (this is what jinja2 does with
  template paths; it stays jinja2's) and the application's own code in that
  file stays the application's (``OriginMap.mark``);
* ``exec`` of a code object during an import whose ``co_filename`` names a
  file other than the one being imported (a sourceless ``.pyc`` with a false
  ``co_filename``): the module's own origin is used instead, by marking that
  code;
* ``marshal.loads`` by a distribution: allowed, but the code it yields is
  held to the same rule at ``exec``/``function.__new__``.
"""

from __future__ import annotations

import builtins
import os
import re
import sys

from ..attribution import APP, BOTTOM, CAPIMPORT, DYNAMIC, IMPORT, LINECACHE, LOGGING, STDLIB, UNKNOWN, Link
from ..capabilities import FFI
from ..enforcer import DECIDED
from ..errors import CapabilityError
from ..hook import Lazy
from ..table.events import FFI_EVENTS

_NONE = Lazy(lambda: None)

#: A process's memory as a file: opening it (read or write) needs ``ffi``. The native core
#: matches the same pattern in C (``cpaths_memory_file``) after resolving the path.
MEMORY_FILE_PATTERN = r"^/proc/(self|thread-self|\d+)(/task/\d+)?/(mem|map_files(/.*)?)$"
MEMORY_FILE = re.compile(MEMORY_FILE_PATTERN)

_FORGERY_TARGETS = frozenset({STDLIB, CAPIMPORT, IMPORT, LINECACHE, LOGGING})

#: Another distribution's files with these suffixes are data, not code: compiling code named
#: after one (jinja2 compiling a sphinx theme's ``layout.html``) makes the compiler's code, not a
#: forgery of the file's owner. Any other suffix (``.py``, ``.pyc``, a script of ``bin/`` with
#: none) counts as code, whose name decides elsewhere (fail closed). ``python_file_name`` in
#: ``_core_tamper.h`` is the same list.
DATA_FILE_SUFFIXES = (".html", ".htm", ".xml", ".txt", ".j2", ".jinja", ".jinja2", ".tmpl", ".tpl", ".mako",
                      ".md", ".rst", ".css", ".js", ".json", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sql",
                      ".svg", ".tex", ".csv")
_SPECIAL = frozenset({APP, UNKNOWN, STDLIB, CAPIMPORT, DYNAMIC, IMPORT, LINECACHE, LOGGING, BOTTOM})
_FunctionType = type(lambda: None)

import importlib.machinery as _machinery  # noqa: E402
import zipimport as _zipimport  # noqa: E402

#: The standard library's loaders that read a module's code from the file they name.
_FILE_LOADERS = (_machinery.SourceFileLoader, _machinery.SourcelessFileLoader)
_ZIP_LOADER = _zipimport.zipimporter

#: C modules whose only use is creating subinterpreters (names across 3.9-3.13). Denied at
#: import without ffi: CPython 3.12 crashes when a hook refuses PyInterpreterState_New itself.
SUBINTERPRETER_MODULES = frozenset({"_xxsubinterpreters", "_interpreters", "_xxinterpchannels",
                                    "_interpchannels", "_interpqueues"})

#: C modules that hand Python code raw memory and native calls without one audit event (cffi's
#: backend: ``load_library``, ``cast``, ``memmove``...). Loading one needs ``ffi`` in every mode,
#: as ``ctypes.dlopen`` does; whoever reaches an already loaded one is a documented gap.
FFI_BACKEND_MODULES = frozenset({"_cffi_backend"})

#: CPython's own test C modules (shipped with the interpreter, used only by its test suite):
#: they crash the interpreter and reach raw memory on purpose (``_testcapi``, the internal C API
#: of ``_testinternalcapi``). Loading one needs ``ffi``.
TEST_MODULES = frozenset({"_testcapi", "_testinternalcapi", "_testlimitedcapi", "_testbuffer",
                          "_testmultiphase", "_testsinglephase", "_testimportmultiple", "_testclinic",
                          "_testclinic_limited", "_testexternalinspection", "_ctypes_test", "_xxtestfuzz"})


def build(guard, vaults: tuple, guarded_modules: dict, meta_finder, real_import) -> dict:
    """The event -> rule(event, args, frame) table."""
    enforcer = guard.enforcer
    decide = enforcer.decide
    origins = enforcer.origins
    vault_ids = frozenset(id(v) for v in vaults)
    _getframe = sys._getframe

    def need_ffi(event, args, frame, api=None):
        decide([(FFI, _NONE, api or FFI_EVENTS.get(event, event))], frame, api or FFI_EVENTS.get(event, event))

    vouched_for = guard.vouched_for

    def on_tracer(event, args, frame):
        if not vouched_for(event):   # else raised inside the sys.settrace/setprofile gate's call
            need_ffi(event, args, frame)

    def on_vouchable(event, args, frame):
        """os.putenv/unsetenv: the environment vault's own call is the act it just decided."""
        return DECIDED if vouched_for(event) else None

    def on_getattr(event, args, frame):
        if args and id(args[0]) in vault_ids:
            need_ffi(event, args, frame, f"{args[1]} of capimport's environment vault")

    def actor(frame):
        links = guard.links(frame)
        return links[0].origin if links else None

    def rewriting_a_file_in_place(frame):
        """pytest's assertion rewriter loading a module: ``_rewrite_test`` compiles the source it
        just read from the module's own file, ``AssertionRewritingHook.exec_module`` runs that code
        (or its cached pyc) for the module whose spec names the file. Neither can be handed
        foreign code, and the code keeps its file's identity, which is right: it *is* that module.
        Forging these frames would itself need compile() or code.replace() naming pytest's file.
        """
        code = frame.f_code if frame is not None else None
        return (code is not None and code.co_name in ("_rewrite_test", "exec_module")
                and code.co_filename.replace(os.sep, "/").endswith("/_pytest/assertion/rewrite.py")
                and origins.origin(code.co_filename) == "pytest")

    def check_name(filename, frame, api, codes=()):
        """*filename* named by code made (compile, code.replace: *codes* empty, the code is not
        made yet) or run or bound (exec, FunctionType, ``__code__ =``: *codes*) at *frame*."""
        if guard.plain(frame):
            return  # only the application and the standard library: they may name any file
        if rewriting_a_file_in_place(frame):
            return
        if not isinstance(filename, str):
            try:
                filename = os.fsdecode(filename)
            except Exception:
                return
        who = actor(frame)
        if who is None or who in (APP,):
            return
        claimed = origins.origin(filename)
        if claimed == who or claimed == DYNAMIC:
            return
        if claimed in _FORGERY_TARGETS or (claimed not in (APP, UNKNOWN) and not filename.endswith(DATA_FILE_SUFFIXES)):
            decide([(FFI, _NONE, api)], frame, f"{api} naming {filename!r}, a file of {_label(claimed)}")
            return
        # A name that reads as the application's (or nobody's), or another distribution's data
        # file (jinja2 compiling a sphinx theme's template), forges no one's, but the code is
        # the distribution's: marked as it is run or bound (every way to run code passes there),
        # so that the application's own code in that file stays the application's.
        _mark_named(origins, codes, filename, who)

    ast_py = os.path.join(os.path.dirname(os.__file__), "ast.py")

    def on_compile(event, args, frame):
        if len(args) > 1 and any(args[1] is name for name in enforcer.compiling):
            return  # capimport compiling a source to check its bytecode cache (capimport.bytecode)
        if frame is not None and frame.f_code.co_name == "parse" and frame.f_code.co_filename == ast_py:
            return  # ast.parse makes a tree, not code: no identity to forge (linters parse others' files)
        if len(args) > 1:
            check_name(args[1], frame, "compile() with another's file name")

    def on_code_new(event, args, frame):
        if len(args) > 1:
            check_name(args[1], frame, "types.CodeType/code.replace with another's file name")

    from .deferred import guard_module_object

    clean_origins = (STDLIB, CAPIMPORT, APP, IMPORT, LINECACHE, LOGGING, BOTTOM)

    def patch_module(module):
        guard_module_object(guard, module)
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None)
        if isinstance(origin, str) and origins.origin(origin) in clean_origins:
            guard.bless(module.__dict__)

    def bless_main(frame):
        # The program itself: run by capimport's runner (its frames end the walk) or by runpy.
        code = frame.f_code if frame is not None else None
        if code is None:
            return
        if origins.origin(code.co_filename) == BOTTOM:
            main = sys.modules.get("__main__")
            if main is not None:
                guard.bless(main.__dict__)
        elif code.co_name == "_run_code" and origins.origin(code.co_filename) == STDLIB \
                and code.co_filename.endswith("runpy.py"):
            guard.bless(frame.f_locals.get("run_globals"))

    def on_exec(event, args, frame):
        integrity(frame)
        code = args[0] if args else None
        filename = getattr(code, "co_filename", None)
        if not isinstance(filename, str):
            return
        bless_main(frame)
        executing = _module_being_executed(frame)
        if executing is not None:
            module, loader = executing
            patch_module(module)
            if loader is not None:   # None: FrozenImporter runs the interpreter's own code
                judge_module_code(code, module, loader)
            return
        check_names(code, frame, "exec of code with another's file name")

    def judge_module_code(code, module, loader):
        """The import system executes *module*'s code (as ``judge_module_code`` in _core_tamper.h):
        the owner of the file the standard library's loader read, or the author of a loader that
        made the code, answers for what it names (decided for that party: the import system's
        privileged frames are all the stack has). A spec's origin vouches for nothing."""
        root = _file_loader_root(type(loader))
        author, where = _loader_author(loader, origins) if root is not None else (UNKNOWN, None)
        trusted = root is not None and author is None
        path, inside = "", None
        if trusted:
            path = vars(loader).get("archive" if root is _ZIP_LOADER else "path")
            path = path if type(path) is str else ""
            inside = path + "/" if root is _ZIP_LOADER and path else None
        real = origins._classify(path) if path else UNKNOWN   # afresh: /proc/self/fd/N may lead elsewhere now
        if trusted and real in (STDLIB, CAPIMPORT, IMPORT):
            return
        owner = real if trusted else author
        codes = code_tree(code)
        for name in _names(codes):
            claimed = origins.origin(name)
            if claimed == owner or (trusted and name == path):
                continue
            if inside and name.startswith(inside) and not _climbs(name):
                claimed = UNKNOWN   # a member of the archive: the archive owner's code
            if claimed == DYNAMIC and owner == APP:
                continue
            if claimed in _FORGERY_TARGETS or claimed == DYNAMIC or claimed not in (APP, UNKNOWN):
                enforcer.decide([(FFI, _NONE, "import of code with a false co_filename")], None,
                                f"import of {path!r} whose code names {name!r}, a file of {_label(claimed)}",
                                chain=[Link(owner, where or path, None)])
            elif owner == UNKNOWN or owner not in _SPECIAL:
                _mark_named(origins, codes, name, owner)   # reads as the application's: the owner's code

    def check_names(code, frame, api):
        """Every file name in *code* and the code nested in it (marshal builds any of them, and
        "<frozen importlib._bootstrap>" names the import system as surely as a path does)."""
        codes = code_tree(code)
        for name in _names(codes):
            if origins.origin(name) != DYNAMIC:
                check_name(name, frame, api, codes)

    def on_function_new(event, args, frame):
        check_names(args[0] if args else None, frame, "types.FunctionType with another's code")

    def on_setattr(event, args, frame):
        importhooks.forget(event, args, frame)
        if len(args) > 2 and args[1] == "__code__":   # a function given other code: as FunctionType
            check_names(args[2], frame, "function.__code__ = another's code")

    def integrity(frame):
        problems = []
        path = sys.meta_path
        if isinstance(path, list) and type(path) is not list:
            # A subclass can hide items from the import system (its own __iter__): a plain copy,
            # read with list's own C methods, takes its place.
            sys.meta_path = path = list.copy(path)
            while meta_finder in path:
                path.remove(meta_finder)
            problems.append("sys.meta_path was replaced by a list subclass")
        if isinstance(path, list) and path and path[0] is not meta_finder and meta_finder in path:
            # Another finder was inserted ahead (pytest's assertion rewriter, typeguard, beartype
            # do this): put the guard back in front; it delegates to the others after it.
            path.remove(meta_finder)
            path.insert(0, meta_finder)
        if not (isinstance(path, list) and path and path[0] is meta_finder):
            try:
                if isinstance(path, list):
                    while meta_finder in path:
                        path.remove(meta_finder)
                    path.insert(0, meta_finder)
                else:
                    sys.meta_path = [meta_finder] + list(path or ())
            except Exception:
                sys.meta_path = [meta_finder]
            problems.append("capimport's import guard was removed from sys.meta_path")
        if builtins.__dict__.get("__import__") is not real_import:
            builtins.__dict__["__import__"] = real_import
            problems.append("builtins.__import__ was replaced")
        if problems and not guard.busy():
            message = "; ".join(problems) + "; restored"
            enforcer.reporter.internal_error(f"tampering detected: {message}")
            if enforcer.mode == "enforce":
                raise CapabilityError(f"capimport: tampering detected: {message}; this import is refused "
                                      f"(fail closed)", capability=FFI, api="import")

    def on_import(event, args, frame):
        integrity(frame)
        importhooks.sanitize(enforcer)
        name = args[0] if args else None
        filename = args[1] if len(args) > 1 else None
        if filename is not None:
            native_import(name, filename, frame)
        if name in FFI_BACKEND_MODULES:
            need_ffi(event, args, _outside_import_system(frame), f"loading the cffi backend ({name})")
        if name in TEST_MODULES:
            need_ffi(event, args, _outside_import_system(frame), f"loading CPython's test C module {name}")
        if (filename is not None and name in guarded_modules) or name in SUBINTERPRETER_MODULES:
            # The import system's privilege covers loading modules, not re-creating guarded ones
            # nor handing out the means to start another interpreter.
            frame = _outside_import_system(frame)
            what = "subinterpreters" if name in SUBINTERPRETER_MODULES else "a second copy of the C module"
            need_ffi(event, args, frame, f"{what} ({name})" if name in SUBINTERPRETER_MODULES else f"{what} {name}")

    from ..errors import CapabilityImportError
    from . import importhooks

    proc_mem = MEMORY_FILE

    def on_open(event, args, frame):
        # Writing (even reading) this process's memory through /proc rewrites capimport itself: ffi.
        path = args[0] if args else None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or ("mem" not in path and "map_files" not in path and "/fd/" not in path):
            return
        real = guard.internal(os.path.realpath, path)
        if proc_mem.match(real) or proc_mem.match(path):
            decide([(FFI, _NONE, "open of /proc/<pid>/mem")], frame, f"open({path!r})")

    def native_import(name, filename, frame):
        if not enforcer.strict or not isinstance(filename, str):
            return
        owner = origins.origin(filename)
        if owner in (APP, STDLIB, CAPIMPORT, DYNAMIC, IMPORT, LINECACHE, LOGGING):
            return
        if guard.internal(enforcer.holds, owner, FFI, _NONE)[0]:
            return
        dist = enforcer.policy.distributions.get(owner)
        display = f"'{owner}' {dist.version}" if dist is not None else "code no distribution owns"
        message = (f"capimport: {display} ships compiled code ({os.path.basename(filename)}) and lacks 'ffi'; "
                   f"strict mode loads native extensions only for distributions granted 'ffi'")
        if enforcer.mode == "enforce":
            raise CapabilityImportError(message, name=name, distribution=owner, capability=FFI)
        enforcer.reporter.internal_error(message + " [allowed: " + enforcer.mode + " mode]")

    rules = {event: need_ffi for event in FFI_EVENTS}
    rules["sys.settrace"] = rules["sys.setprofile"] = on_tracer
    rules["os.putenv"] = rules["os.unsetenv"] = on_vouchable
    rules["open"] = on_open
    rules.update({
        "object.__getattr__": on_getattr,
        "compile": on_compile,
        "code.__new__": on_code_new,
        "exec": on_exec,
        "function.__new__": on_function_new,
        "import": on_import,
        "object.__setattr__": on_setattr,
    })
    return rules


def native_rules() -> dict:
    """The Python side of the tamper events when the core decides them (``_core_tamper.h``).

    Each event is listed so that the core's table has an entry for it (the core's rule runs
    first); the Python left only charges import hooks a distribution planted (route 4,
    :mod:`capimport.guards.importhooks`) and forgets a verdict when a function gets new code.
    """
    from . import importhooks
    from ..enforcer import active

    def on_import(event, args, frame):
        enforcer = active()
        if enforcer is not None:
            importhooks.sanitize(enforcer)

    rules = dict.fromkeys(("compile", "code.__new__", "function.__new__", "exec", "object.__getattr__"))
    rules["import"] = on_import
    rules["object.__setattr__"] = importhooks.forget
    return rules


def core_spec(guard, vaults: tuple, guarded_modules: set, meta_finder, real_import) -> dict:
    """What ``_core_tamper.h`` compares against, copied into C memory at install
    (:func:`capimport.native.build_spec` adds the per-origin labels)."""
    import importlib.machinery
    import zipimport

    from .deferred import module_class
    from .native import MODULES
    from ..errors import CapabilityImportError

    enforcer = guard.enforcer
    return {
        "meta_finder": meta_finder,
        "real_import": real_import,
        "builtins": builtins.__dict__,
        "vaults": tuple(vaults),
        "module_class": module_class(guard),
        "ast_file": os.path.join(os.path.dirname(os.__file__), "ast.py"),
        "file_loaders": (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader),
        "zip_loader": zipimport.zipimporter,
        "import_error": CapabilityImportError,
        "import_callables": enforcer.import_callables,
        "strict": bool(enforcer.strict),
        "guarded": tuple(sorted(guarded_modules)),
        "guardable": tuple(MODULES),
        "subinterpreters": tuple(sorted(SUBINTERPRETER_MODULES)),
        "ffi_backends": tuple(sorted(FFI_BACKEND_MODULES)),
        "test_modules": tuple(sorted(TEST_MODULES)),
    }


def code_tree(code) -> list:
    """*code* and every code object reachable through its constants, tuples and frozensets
    included (crafted bytecode can make a function of a code object indexed out of a constant
    tuple, with no event)."""
    CodeType = type(code_tree.__code__)
    if not isinstance(code, CodeType):
        return []
    codes, seen, queue = [], set(), [code]
    while queue:
        current = queue.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, CodeType):
            codes.append(current)
            queue.extend(current.co_consts)
        elif type(current) in (tuple, frozenset):
            queue.extend(current)
    return codes


def _names(codes: list) -> list:
    """The distinct ``co_filename`` (str) of *codes*, in order."""
    names: list = []
    for code in codes:
        name = code.co_filename
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _mark_named(origins, codes: list, filename: str, origin: str) -> None:
    """Each of *codes* named *filename* is *origin*'s, whatever the name reads as."""
    for code in codes:
        if code.co_filename == filename:
            origins.mark(code, origin)


#: capimport's own folder: the fallback's guarded ``_imp`` makers run the original inside
#: capimport's vault, so the ``import`` event they raise has capimport's frames innermost.
_CAPIMPORT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _outside_import_system(frame):
    """The first frame below the import system's own (and capimport's gates around ``_imp``):
    the code whose import this is. ``importlib.import_module`` raises no ``import`` event of
    its own; the only one comes from the maker, called through the gate."""
    while frame is not None and frame.f_code.co_filename.startswith(("<frozen importlib", "<frozen zipimport",
                                                                      _CAPIMPORT_DIR)):
        frame = frame.f_back
    return frame


def _module_being_executed(frame):
    """``(module, loader)`` when *frame* is the import system (or zipimport) executing a module's
    code in a loader's ``exec_module``, else None; *loader* is None for FrozenImporter's static
    ``exec_module``, which runs the interpreter's own frozen code."""
    depth = 0
    while frame is not None and depth < 4:
        code = frame.f_code
        if not code.co_filename.startswith(("<frozen importlib", "<frozen zipimport>")):
            return None   # exec called by code, not by the import system
        if code.co_name == "exec_module":
            local = frame.f_locals
            module = local.get("module")
            return None if module is None else (module, local.get("self"))
        frame = frame.f_back
        depth += 1
    return None


#: What decides which code a file loader hands over (as PRODUCING in _core_tamper.h).
_PRODUCING = frozenset({"get_code", "get_filename", "path_stats", "get_data", "source_to_code", "path",
                        "archive", "prefix"})


def _file_loader_root(cls: type):
    """The standard library's file loader (or zipimporter) *cls* derives from, or None."""
    for base in cls.__mro__:
        if base in _FILE_LOADERS or base is _ZIP_LOADER:
            return base
    return None


def _snapshot() -> dict:
    out = {}
    for root in _FILE_LOADERS + (_ZIP_LOADER,):
        for base in root.__mro__:
            if base is not object:
                out.setdefault(base, dict(vars(base)))
    return out


#: The standard library's loader classes as they were when capimport loaded.
_LOADER_CLASSES = _snapshot()


def _attribute_author(value, origins):
    func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    if isinstance(func, _FunctionType):
        code = func.__code__
        return origins.code_origin(code, origins.origin(code.co_filename)), code.co_filename
    return UNKNOWN, None


def _loader_author(loader, origins):
    """``(None, None)`` when every attribute that decides the code is the standard library's own,
    untouched since capimport loaded; else ``(author, file)`` of the first one that is not."""
    for key, value in getattr(loader, "__dict__", {}).items():
        if key in _PRODUCING and not isinstance(value, str):
            return _attribute_author(value, origins)
    for base in type(loader).__mro__:
        if base is object:
            break
        then = _LOADER_CLASSES.get(base)
        for key, value in vars(base).items():
            if key in _PRODUCING and (then is None or then.get(key) is not value):
                return _attribute_author(value, origins)
    return None, None


def _climbs(name: str) -> bool:
    return "/../" in name or "/./" in name or "//" in name or name.endswith(("/..", "/."))


def _label(origin: str) -> str:
    return {STDLIB: "the standard library", CAPIMPORT: "capimport", IMPORT: "the import system",
            LINECACHE: "the standard library", LOGGING: "the standard library"}.get(origin, f"'{origin}'")


def patch_threading_trace(guard) -> None:
    """``threading.settrace``/``setprofile`` store a tracer every new thread installs: needs ``ffi`` too
    (None, no tracer, is free)."""
    import threading

    decide = guard.enforcer.decide
    for name in ("settrace", "setprofile"):
        original = getattr(threading, name, None)
        if original is None or getattr(original, "_capimport_guard", False):
            continue

        def make(original=original, name=name):
            def guarded(func, *args, **kwargs):
                if func is not None and not guard.busy(sys._getframe(1)):   # None: no tracer
                    decide([(FFI, _NONE, f"threading.{name}")], sys._getframe(1), f"threading.{name}")
                return original(func, *args, **kwargs)
            guarded._capimport_guard = True
            guarded.__name__ = name
            return guarded

        setattr(threading, name, make())
