"""The seven capabilities, what implies what, and what kind of scope each takes.

This is data that every other part reads (the manifest parser, unification,
the run-time hook, the scanner), so it lives in one small module with no
dependencies.
"""

from __future__ import annotations

from typing import Optional

FS = "fs"
FS_READONLY = "fs-readonly"
ENV = "env"
ENV_READONLY = "env-readonly"
NET = "net"
PROCESS = "process"
FFI = "ffi"

#: Every capability, in the order they are displayed.
CAPABILITIES: tuple[str, ...] = (FS, FS_READONLY, ENV, ENV_READONLY, NET, PROCESS, FFI)

#: A capability implies the ones listed here: holding ``fs`` means holding
#: ``fs-readonly`` over the same scope.
IMPLIES: dict[str, tuple[str, ...]] = {FS: (FS_READONLY,), ENV: (ENV_READONLY,)}

#: The kind of scope each capability takes; ``None`` means it takes none.
SCOPE_KIND: dict[str, Optional[str]] = {
    FS: "path",
    FS_READONLY: "path",
    ENV: "env",
    ENV_READONLY: "env",
    NET: "host",
    PROCESS: "program",
    FFI: None,
}

#: One line per capability, for help texts and error messages.
DESCRIPTIONS: dict[str, str] = {
    FS: "create, write, truncate, delete, rename, chmod files and directories",
    FS_READONLY: "open files for reading, stat, list, walk, glob, read links",
    ENV: "set and delete environment variables",
    ENV_READONLY: "read environment variables",
    NET: "sockets: connect, bind, listen, send, DNS lookups",
    PROCESS: "run programs and new interpreters, fork, exec, kill",
    FFI: "ctypes, cffi, loading shared libraries and compiled extensions",
}


def is_capability(name: object) -> bool:
    """True when *name* is one of the seven capability names."""
    return isinstance(name, str) and name in SCOPE_KIND


def suggest(name: str) -> Optional[str]:
    """The capability name closest to a misspelt *name*, if one is close."""
    aliases = {"network": NET, "subprocess": PROCESS, "filesystem": FS, "file": FS,
               "read": FS_READONLY, "environment": ENV_READONLY, "ctypes": FFI,
               "fs_readonly": FS_READONLY, "env_readonly": ENV_READONLY,
               "fs-read": FS_READONLY, "env-read": ENV_READONLY}
    lowered = name.lower().strip()
    if lowered in aliases:
        return aliases[lowered]
    import difflib   # only for a misspelt name in a configuration

    close = difflib.get_close_matches(lowered, CAPABILITIES, n=1, cutoff=0.5)
    return close[0] if close else None


def implied_by(name: str) -> tuple[str, ...]:
    """The capabilities that imply *name* (itself excluded)."""
    return tuple(cap for cap, implied in IMPLIES.items() if name in implied)
