"""Messages, warn-once reporting, the record log and the exit summary.

Everything capimport tells the user about an act goes through here, so that
a denial, a warning and a record line say the same thing the same way.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Optional

from ._values import Value
from .attribution import APP, UNKNOWN

#: Where ``record`` mode appends when no ``--log`` is given.
DEFAULT_RECORD_LOG = "capimport-record.jsonl"


#: What a scoped grant lacks for an act with no single target (``*``): reading
#: ``/proc/self/environ`` reads every variable, whatever the scope names.
_EVERY = {"env": "every variable", "env-readonly": "every variable", "fs": "every path",
          "fs-readonly": "every path", "net": "every host", "process": "every program"}


class Violation(Value):
    """One accountable origin that lacks a capability for one act.

    A hand-written class, not a ``@dataclass``: importing ``dataclasses`` would
    cost every start ~17 ms (see :mod:`capimport._values`).
    """

    __slots__ = ("origin", "version", "capability", "api", "api_name", "scope", "location", "called_from",
                 "hint", "display", "scoped", "allowed", "via")
    origin: str                 # distribution name, APP or UNKNOWN
    version: str
    capability: str
    api: str                    # e.g. "socket.connect(('10.0.0.1', 443))"
    api_name: str               # e.g. "socket.connect"
    scope: str                  # the target as text ("10.0.0.1:443", a path, a name)
    location: str               # "evil_pkg/core.py:41"
    called_from: str            # "app.py:12"
    hint: str                   # how to grant it
    display: str                # "'evil-pkg' 0.3"
    scoped: bool                # the origin holds the capability, but not for this target
    allowed: bool               # for record lines: whether enforce mode would allow it
    via: str                    # where another origin did the act, when *origin* is a caller of it

    def __init__(self, origin: str, version: str, capability: str, api: str, api_name: str, scope: str,
                 location: str, called_from: str = "", hint: str = "", display: str = "",
                 scoped: bool = False, allowed: bool = False, via: str = "") -> None:
        self.origin = origin
        self.version = version
        self.capability = capability
        self.api = api
        self.api_name = api_name
        self.scope = scope
        self.location = location
        self.called_from = called_from
        self.hint = hint
        self.display = display
        self.scoped = scoped
        self.allowed = allowed
        self.via = via

    def _key(self) -> tuple:
        return (self.origin, self.version, self.capability, self.api, self.api_name, self.scope, self.location,
                self.called_from, self.hint, self.display, self.scoped, self.allowed, self.via)

    def message(self, mode: str = "enforce") -> str:
        if self.scoped:   # it holds the capability, for other targets: name the one it lacks
            target = _EVERY.get(self.capability, "every target") if self.scope == "*" else self.scope
            lacks = f"lacks '{self.capability}' for {target} in {self.api}"
        else:
            lacks = f"lacks '{self.capability}' for {self.api}"
        text = f"capimport: {self.display} {lacks} at {self.location}"
        if self.via:
            text += f", which called {self.via}"
        if self.called_from:
            text += f" (called from {self.called_from})"
        if mode == "warn":
            text += " [allowed: warn mode]"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def record(self) -> dict:
        return {"distribution": None if self.origin == APP else self.origin,
                "origin": "application" if self.origin == APP else
                          ("unknown" if self.origin == UNKNOWN else "distribution"),
                "version": self.version or None, "capability": self.capability,
                "scope": self.scope, "api": self.api_name, "call": self.api,
                "location": self.location, "via": self.via or None, "called_from": self.called_from or None,
                "allowed": self.allowed}


def describe_target(capability: str, target) -> str:
    """A target as scope text: a path, ``host:port``, a variable or program name."""
    if target is None:
        return "*"
    if isinstance(target, tuple) and len(target) == 2:
        host, port = target
        host = f"[{host}]" if ":" in str(host) and not str(host).startswith("/") else str(host)
        return host if port is None else f"{host}:{port}"
    return str(target)


class Reporter:
    """Warn-once bookkeeping, the JSON-lines log and the exit summary."""

    def __init__(self, mode: str, *, log_path: Optional[str] = None, live_warnings: bool = True,
                 stream=None):
        self.mode = mode
        self.live_warnings = live_warnings
        self.stream = stream
        self.seen: set = set()
        self.logged: set = set()
        self.summary: dict[str, dict[str, set]] = {}   # origin -> capability -> apis
        self.versions: dict[str, str] = {}
        self.denials = 0
        self.lock = threading.Lock()
        self.log_fd: Optional[int] = None
        self.log_path = log_path
        if log_path:
            # O_APPEND and one write(2) per line: a crash loses nothing already recorded.
            self.log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                                  0o644)

    def _err(self, text: str) -> None:
        stream = self.stream or sys.__stderr__ or sys.stderr
        try:
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # a closed stderr must not turn a warning into a crash
            pass

    def write_log(self, violation: Violation, *, dedupe: bool = True) -> None:
        if self.log_fd is None:
            return
        entry = violation.record()
        key = json.dumps(entry, sort_keys=True)
        with self.lock:
            if dedupe and key in self.logged:
                return
            self.logged.add(key)
        data = (json.dumps(entry) + "\n").encode("utf-8", "replace")
        try:
            os.write(self.log_fd, data)
        except OSError:
            pass

    def denied(self, violation: Violation) -> None:
        """A denial raises in the acting code; it is also shown once on stderr, because code
        that swallows the error (as malware does) would otherwise hide it."""
        key = ("denied", violation.origin, violation.capability, violation.api_name)
        with self.lock:
            self.denials += 1
            first = key not in self.seen
            self.seen.add(key)
        self.write_log(violation)
        if first and self.live_warnings:
            self._err(violation.message("enforce"))

    def warned(self, violation: Violation) -> None:
        key = (violation.origin, violation.capability, violation.api_name)
        with self.lock:
            first = key not in self.seen
            self.seen.add(key)
            self.versions[violation.origin] = violation.version
            self.summary.setdefault(violation.origin, {}).setdefault(violation.capability, set()).add(
                violation.api_name)
        self.write_log(violation)
        if first and self.live_warnings:
            self._err(violation.message("warn"))

    def recorded(self, violation: Violation) -> None:
        self.write_log(violation)

    def internal_error(self, text: str) -> None:
        key = ("internal", text)
        with self.lock:
            if key in self.seen:
                return
            self.seen.add(key)
        self._err(f"capimport: internal error: {text}")

    def exit_summary(self, *, no_config: bool) -> Optional[str]:
        """The text printed at exit after a run in warn mode with no configuration."""
        if not self.summary:
            if no_config:
                return ("capimport: no configuration found; ran in warn mode and every installed "
                        "distribution stayed within its declarations.")
            return None
        lines = ["capimport: " + ("no configuration found; ran in warn mode. " if no_config else "")
                 + f"{len(self.summary)} distribution(s) did what they are not declared for:"]
        for origin in sorted(self.summary):
            caps = self.summary[origin]
            name = "the application" if origin == APP else (
                "code no distribution owns" if origin == UNKNOWN else f"{origin} {self.versions.get(origin, '')}".strip())
            parts = [f"{cap} ({', '.join(sorted(apis)[:3])}{', ...' if len(apis) > 3 else ''})"
                     for cap, apis in sorted(caps.items())]
            lines.append(f"  {name}: {'; '.join(parts)}")
        lines.append("capimport: review them and write manifests with: capimport generate")
        return "\n".join(lines)

    def print_summary(self, *, no_config: bool) -> None:
        text = self.exit_summary(no_config=no_config)
        if text:
            self._err(text)

    def close(self) -> None:
        if self.log_fd is not None:
            try:
                os.close(self.log_fd)
            except OSError:
                pass
            self.log_fd = None


_TYPE_NAME = type.__dict__["__name__"]


def safe_repr(value, limit: int = 120) -> str:
    """repr() of plain data only: never runs code a distribution defined.

    Only identity tests and issubclass() of the real type: isinstance() reads a ``__class__``
    the object may define, ``type(v) in (...)`` compares with a metaclass's ``__eq__`` and
    ``type(v).__name__`` reads a metaclass's ``__name__``; this runs as capimport's own work.
    """
    t = type(value)
    if value is None or t is str or t is bytes or t is int or t is float or t is bool:
        text = repr(value)
    elif issubclass(t, (str, bytes, int, float)):
        # A subclass's __repr__ is the distribution's code: show the value with its base type's.
        base = next(b for b in (bool, int, float, str, bytes) if issubclass(t, b))
        text = base.__repr__(value)
    elif t is tuple or t is list:
        inner = ", ".join(safe_repr(v, limit) for v in value[:6])
        if len(value) > 6:
            inner += ", ..."
        text = f"({inner}{',' if len(value) == 1 else ''})" if t is tuple else f"[{inner}]"
    else:
        try:
            import pathlib
            if any(t is k for k in (pathlib.Path, pathlib.PosixPath, pathlib.PurePath, pathlib.PurePosixPath,
                                    pathlib.WindowsPath, pathlib.PureWindowsPath)):   # not a subclass's __str__
                return repr(str(value))
        except Exception:  # pragma: no cover
            pass
        text = f"<{_TYPE_NAME.__get__(t)}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."
