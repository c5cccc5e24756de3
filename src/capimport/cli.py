"""The ``capimport`` command: audit, why, run (and the inference commands).

Exit codes, as in pip and ruff: 0 success, 1 a check failed, 2 bad input
(configuration or manifest errors, bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .errors import ConfigError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capimport",
        description="Capability manifests for every installed Python distribution.",
        epilog="Run an application under enforcement with: python -m capimport app.py")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    audit = commands.add_parser("audit", help="what every distribution can do, and why",
                                description="List every installed distribution with its declared and "
                                            "effective capabilities and a status.")
    _common(audit)
    audit.add_argument("--format", choices=("table", "json"), default="table")
    audit.add_argument("--check", action="store_true",
                       help="exit 1 when a distribution is unreviewed, self-declared or stale")
    audit.add_argument("--verbose", "-v", action="store_true", help="show manifests, dependents and evidence")

    why = commands.add_parser("why", help="the dependency paths that grant DIST a capability",
                              description="Explain a distribution's effective capabilities: the paths from "
                                          "the application that grant each, and the edge that cuts each "
                                          "capability it declares but does not get.")
    _common(why)
    why.add_argument("dist", metavar="DIST")
    why.add_argument("capability", metavar="CAP", nargs="?")

    run = commands.add_parser("run", help="run a program under enforcement (same as python -m capimport)",
                              add_help=False)
    run.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--config", metavar="FILE", help="configuration file (default: discovered)")
    sub.add_argument("--path", metavar="DIR", action="append",
                     help="audit the distributions in DIR instead of this interpreter's (repeatable)")


def _version() -> str:
    from . import __version__
    return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        from .runner import main as run_main
        return run_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        for diagnostic in error.diagnostics:
            print(f"capimport: {diagnostic}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK


def _policy(args: argparse.Namespace):
    from .policy import load_policy
    policy = load_policy(args.config, paths=args.path)
    for warning in policy.warnings:
        print(f"capimport: {warning}", file=sys.stderr)
    return policy


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit import audit_rows, check_failed, render_json, render_table
    policy = _policy(args)
    rows = audit_rows(policy)
    print(render_json(policy, rows) if args.format == "json" else render_table(policy, rows, verbose=args.verbose))
    if args.check:
        failed = check_failed(rows)
        for row in failed:
            print(f"capimport: check failed: {row.display_name} {row.version} is {row.status}", file=sys.stderr)
        return EXIT_CHECK_FAILED if failed else EXIT_OK
    return EXIT_OK


def cmd_why(args: argparse.Namespace) -> int:
    from .capabilities import is_capability, suggest
    from .why import explain
    if args.capability is not None and not is_capability(args.capability):
        hint = suggest(args.capability)
        print(f"capimport: unknown capability {args.capability!r}" + (f"; did you mean {hint!r}?" if hint else ""),
              file=sys.stderr)
        return EXIT_BAD_INPUT
    policy = _policy(args)
    try:
        lines = explain(policy, args.dist, args.capability)
    except KeyError:
        print(f"capimport: {args.dist!r} is not installed here", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(lines))
    return EXIT_OK


COMMANDS = {"audit": cmd_audit, "why": cmd_why}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
