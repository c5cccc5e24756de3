"""``python -m capimport [options] (script.py | -m module | -c code) [args...]``.

Runs a program under enforcement and behaves like ``python`` itself for it:
``sys.argv``, ``__main__``, ``sys.path[0]``, exit codes, ``SystemExit``,
uncaught exceptions (through ``sys.excepthook``, with capimport's own frames
left out of the traceback), stdin and stdout.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Optional, Sequence

USAGE = """\
usage: python -m capimport [--config FILE] [--mode enforce|warn|record] [--log FILE] [--strict]
                           (script.py | -m module | -c code) [args ...]
       python -m capimport (audit | generate | diff | why) ...   (as capimport audit ...)

Run a Python program so that every installed distribution can do only what
its capability manifest allows.

options:
  --config FILE   configuration file (default: CAPIMPORT_CONFIG, then a capimport.toml or
                  a pyproject.toml with [tool.capimport] found upward from the script's
                  folder and the working directory)
  --mode MODE     enforce: deny what is not granted; warn: report each violation once and
                  let it through; record: log every act to --log (default: the configured
                  mode; warn when there is no configuration)
  --log FILE      append one JSON object per act (record) or per violation (enforce, warn);
                  default in record mode: capimport-record.jsonl
  --strict        distributions cannot import modules for capabilities they lack
  -h, --help      show this help and exit
  --version       show capimport's version and exit
"""


#: ``capimport``'s own commands: ``python -m capimport audit`` runs ``capimport audit`` unless a
#: file of that name is there to run (then it is the program, as ``python audit`` would run it).
SUBCOMMANDS = ("audit", "generate", "diff", "why")


class UsageError(Exception):
    pass


def parse(argv: Sequence[str]) -> dict:
    """Split capimport's options from the program and its arguments."""
    opts: dict = {"config": None, "mode": None, "log": None, "strict": None}
    i = 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            opts["help"] = True
            return opts
        if arg == "--version":
            opts["version"] = True
            return opts
        if arg == "--strict":
            opts["strict"] = True
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if name in ("--config", "--mode", "--log"):
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"{name} needs a value")
                value = argv[i + 1]
                i += 1
            key = name[2:]
            if key == "mode" and value not in ("enforce", "warn", "record"):
                raise UsageError(f"--mode must be enforce, warn or record; got {value!r}")
            opts[key] = value
            i += 1
            continue
        if arg == "--":
            i += 1
            if i >= len(argv):
                raise UsageError("no program to run after --")
            opts["kind"], opts["target"], opts["args"] = "script", argv[i], argv[i + 1:]
            return opts
        if arg in ("-m", "-c"):
            if i + 1 >= len(argv):
                raise UsageError(f"Argument expected for the {arg} option")
            opts["kind"] = "module" if arg == "-m" else "code"
            opts["target"], opts["args"] = argv[i + 1], argv[i + 2:]
            return opts
        if arg.startswith("-m") and len(arg) > 2:
            opts["kind"], opts["target"], opts["args"] = "module", arg[2:], argv[i + 1:]
            return opts
        if arg.startswith("-c") and len(arg) > 2:
            opts["kind"], opts["target"], opts["args"] = "code", arg[2:], argv[i + 1:]
            return opts
        if arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option {arg}")
        opts["kind"], opts["target"], opts["args"] = "script", arg, argv[i + 1:]
        return opts
    raise UsageError("no program given: pass a script, -m module or -c code")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the program described by *argv*; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        opts = parse(argv)
    except UsageError as exc:
        sys.stderr.write(USAGE.split("\n\n")[0] + "\n")
        sys.stderr.write(f"capimport: error: {exc}\n")
        return 2
    if opts.get("help"):
        sys.stdout.write(USAGE)
        return 0
    if opts.get("version"):
        from . import __version__
        sys.stdout.write(f"capimport {__version__}\n")
        return 0

    kind, target = opts["kind"], opts["target"]
    script = None
    if kind == "script":
        if target == "-":
            kind, script = "stdin", None
        else:
            script = target
            if not os.path.exists(script) and argv[:1] == [target] and target in SUBCOMMANDS:
                from .cli import main as cli_main   # python -m capimport audit: as capimport audit
                return cli_main(argv)
            if not os.path.exists(script):
                sys.stderr.write(f"{sys.executable}: can't open file {os.path.abspath(script)!r}: "
                                 f"[Errno 2] No such file or directory\n")
                return 2
    _set_path0(kind, script)

    from .errors import ConfigError
    from .policy import load_policy
    try:
        policy = load_policy(opts["config"], script=script)
    except ConfigError as exc:
        sys.stderr.write("capimport: refusing to start: the configuration has errors\n")
        for diagnostic in exc.diagnostics:
            sys.stderr.write(f"  {diagnostic}\n")
        return 2
    for warning in policy.warnings:
        sys.stderr.write(f"capimport: {warning}\n")

    from . import enforcer as _enforcer
    mode = opts["mode"] or policy.mode
    no_config = not policy.config.found
    app_dirs = [os.path.dirname(os.path.realpath(script))] if script else [os.getcwd()]
    try:
        enforcer = _enforcer.enable(policy, mode, strict=opts["strict"], log=opts["log"],
                                    live_warnings=not no_config, app_dirs=app_dirs)
    except OSError as exc:
        sys.stderr.write(f"capimport: cannot start: {exc}\n")
        return 2
    if mode == "warn" or no_config:
        import atexit
        atexit.register(enforcer.reporter.print_summary, no_config=no_config)

    if kind == "script":
        sys.argv[:] = [script] + list(opts["args"])
    elif kind == "code":
        sys.argv[:] = ["-c"] + list(opts["args"])
    elif kind == "stdin":
        sys.argv[:] = ["-"] + list(opts["args"])
    else:
        sys.argv[:] = ["-m"] + list(opts["args"])  # runpy puts the module's path in argv[0]
    return _run(kind, target, script)


def _set_path0(kind: str, script: Optional[str]) -> None:
    """``sys.path[0]`` as ``python`` would set it for the program (not for ``-m capimport``)."""
    if getattr(sys.flags, "safe_path", False):  # -P, Python 3.11+
        return
    if kind == "script":
        entry = os.path.dirname(os.path.realpath(script))  # type: ignore[arg-type]
    elif kind == "module":
        entry = os.getcwd()
    else:
        entry = ""
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.insert(0, entry)


def _run(kind: str, target: str, script: Optional[str]) -> int:
    main_module = types.ModuleType("__main__")
    main_module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main_module
    try:
        if kind == "module":
            import runpy
            runpy._run_module_as_main(target, alter_argv=True)  # type: ignore[attr-defined]
        elif kind == "code":
            code = compile(target, "<string>", "exec")
            exec(code, main_module.__dict__)
        elif kind == "stdin":
            code = compile(sys.stdin.read(), "<stdin>", "exec")
            exec(code, main_module.__dict__)
        else:
            _run_script(script, main_module)  # type: ignore[arg-type]
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException as exc:  # the program's uncaught exception
        _print_uncaught(exc)
        if isinstance(exc, KeyboardInterrupt):
            return 130
        return 1
    return 0


def _run_script(script: str, main_module: types.ModuleType) -> None:
    path = os.path.abspath(script)
    if os.path.isdir(path) or not path.endswith((".py", ".pyw")) and _is_zip(path):
        import runpy
        runpy.run_path(path, run_name="__main__")
        return
    from importlib.machinery import SourceFileLoader
    loader = SourceFileLoader("__main__", path)
    source = loader.get_data(path)
    code = compile(source, path, "exec", dont_inherit=True)
    main_module.__dict__.update(__file__=path, __loader__=loader, __spec__=None, __package__=None,
                                __cached__=None)
    exec(code, main_module.__dict__)


def _is_zip(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
    except Exception:
        pass
    return 1


def _print_uncaught(exc: BaseException) -> None:
    """Report like the interpreter: through sys.excepthook, without capimport's frames."""
    tb = exc.__traceback__
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    while tb is not None and (tb.tb_frame.f_code.co_filename.startswith(here)
                              or tb.tb_frame.f_code.co_filename == "<frozen runpy>"):
        tb = tb.tb_next
    exc.__traceback__ = tb  # the default hook prints the exception's own traceback
    try:
        sys.excepthook(type(exc), exc, tb)
    except Exception:
        import traceback
        traceback.print_exception(type(exc), exc, tb)
    try:
        sys.stderr.flush()
    except Exception:
        pass
