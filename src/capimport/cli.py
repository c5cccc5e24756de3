"""The ``capimport`` command: audit, why, run (and the inference commands).

Exit codes, as in pip and ruff: 0 success, 1 a check failed, 2 bad input
(configuration or manifest errors, bad arguments).
"""

from __future__ import annotations

import argparse
import os
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
    audit.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    audit.add_argument("--check", action="store_true",
                       help="exit 1 when a distribution is unreviewed, self-declared or stale, or when its "
                            "inferred or recorded use exceeds its effective grant")
    audit.add_argument("--verbose", "-v", action="store_true", help="show manifests, dependents and evidence")
    _scan_options(audit)

    generate = commands.add_parser("generate", help="write manifests to review, from inference and records",
                                   description="Write manifests/<name>.toml for every distribution in the "
                                               "graph: the bundled reviewed manifest when there is one, "
                                               "static inference otherwise. Regenerating keeps comments and "
                                               "hand edits and never removes a capability.")
    _common(generate)
    generate.add_argument("dists", metavar="DIST", nargs="*", help="only these distributions")
    generate.add_argument("--out", metavar="DIR", help="manifests folder (default: the configured one, else ./manifests)")
    generate.add_argument("--inline", action="store_true",
                          help="write [tool.capimport.packages] entries into the configuration file instead")
    generate.add_argument("--dry-run", action="store_true", help="print a unified diff, write nothing")
    generate.add_argument("--from-record", metavar="FILE", action="append",
                          help="merge what record mode observed (JSON lines; repeatable)")
    _scan_options(generate, record=False)

    diff = commands.add_parser("diff", help="capabilities gained and lost between two audits",
                               description="Compare two `capimport audit --format json` outputs (or a saved "
                                           "baseline against this environment): the review an upgrade needs.")
    _common(diff)
    diff.add_argument("old", metavar="OLD.json")
    diff.add_argument("new", metavar="NEW.json", nargs="?", help="default: audit this environment now")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--check", action="store_true", help="exit 1 when any capability was gained")
    _scan_options(diff, record=False)

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


def _scan_options(sub: argparse.ArgumentParser, record: bool = True) -> None:
    if record:
        sub.add_argument("--record", metavar="FILE", action="append",
                         help="also check what record mode observed (JSON lines; repeatable)")
    sub.add_argument("--no-scan", action="store_true", help="skip static inference")
    sub.add_argument("--all", action="store_true", dest="scan_all",
                     help="also scan distributions the application does not depend on (they hold nothing)")
    sub.add_argument("--no-cache", action="store_true", help="rescan instead of using the scan cache")
    sub.add_argument("--jobs", "-j", type=int, metavar="N", help="processes for scanning (default: CPU count)")


def _scan(args: argparse.Namespace, policy) -> dict:
    """Static inference (cached) for the distributions the application can reach, or {} with --no-scan.

    An unreachable distribution holds nothing, so what its code could do changes no
    grant and no gate; ``--all`` scans it anyway.
    """
    if getattr(args, "no_scan", False):
        return {}
    from .scan import TerminalProgress, scan_all
    reachable = set(policy.graph.nodes)
    wanted = {name: dist for name, dist in policy.distributions.items()
              if getattr(args, "scan_all", False) or name in reachable}
    return scan_all(wanted, jobs=args.jobs, progress=TerminalProgress(), use_cache=not args.no_cache)


def _records(paths) -> list:
    from .record import read_records
    return [o for path in (paths or ()) for o in read_records(path)]


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
    from .auditdiff import attach_inference
    policy = _policy(args)
    rows = audit_rows(policy)
    results, records = _scan(args, policy), _records(args.record)
    problems = attach_inference(rows, policy, results, records)
    if args.format == "sarif":
        import json
        from .sarif import to_sarif
        print(json.dumps(to_sarif(problems), indent=2))
    else:
        print(render_json(policy, rows) if args.format == "json" else render_table(policy, rows, verbose=args.verbose))
    if args.check:
        failed = check_failed(rows)
        for row in failed:
            print(f"capimport: check failed: {row.display_name} {row.version} is {row.status}", file=sys.stderr)
        for problem in problems:
            if problem.kind == "narrowed":
                print(f"capimport: note: {problem}", file=sys.stderr)
            elif problem.kind != "stale":
                print(f"capimport: check failed: {problem}", file=sys.stderr)
        return EXIT_CHECK_FAILED if failed else EXIT_OK
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate
    policy = _policy(args)
    records = _records(args.from_record)
    inline = None
    if args.inline:
        inline = policy.config.path or os.path.join(os.getcwd(), "pyproject.toml")
    result = generate(policy, _scan(args, policy), out_dir=args.out, inline=inline, dry_run=args.dry_run,
                      records=records, names=args.dists or None)
    if args.dry_run:
        sys.stdout.write(result.diff)
        print(f"capimport: {len(result.written)} file(s) would change", file=sys.stderr)
    else:
        for path in result.written:
            print(f"wrote {os.path.relpath(path)}")
        print(f"capimport: {len(result.written)} written, {len(result.unchanged)} unchanged", file=sys.stderr)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    import json
    from .auditdiff import diff_audits, gained_anything, load_audit, render_diff
    old = load_audit(args.old)
    if args.new:
        new = load_audit(args.new)
    else:
        from .audit import audit_rows, render_json
        from .auditdiff import attach_inference
        policy = _policy(args)
        rows = audit_rows(policy)
        attach_inference(rows, policy, _scan(args, policy))
        new = json.loads(render_json(policy, rows))
    report = diff_audits(old, new)
    print(json.dumps(report, indent=2) if args.format == "json" else render_diff(report))
    return EXIT_CHECK_FAILED if args.check and gained_anything(report) else EXIT_OK


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


COMMANDS = {"audit": cmd_audit, "why": cmd_why, "generate": cmd_generate, "diff": cmd_diff}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
