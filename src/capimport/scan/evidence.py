"""Uses -> evidence: what one use record of the analyser means, through the API table.

:func:`evidence_of` looks the used name up in :mod:`capimport.table.apis` and
turns the folded arguments into the capability (``open``'s mode decides
between ``fs`` and ``fs-readonly``), the literal scope (a path, a host, an
environment variable, a program) and the marks (own file, ``__main__``,
platform and Python conditions) of each :class:`~capimport.scan.model.Evidence`.
"""

from __future__ import annotations

import os
from typing import Optional

from ..capabilities import ENV_READONLY, FS, FS_READONLY
from ..table import apis as table
from ..table.events import WRITE_FLAGS_NAMES
from .model import MISSING, OWN, STAR, UNKNOWN, Evidence, Flags, Ref, _names_self, _plain_str


def _arg(args: tuple, kwargs: tuple, pos: Optional[int], kw: Optional[str]):
    """The folded argument at *pos* / *kw*; MISSING when absent, UNKNOWN when it cannot be told."""
    for name, value in kwargs:
        if name == kw:
            return value
    if pos is not None:
        for i, value in enumerate(args):
            if value is STAR:
                return UNKNOWN
            if i == pos:
                return value
    if any(name == "**" for name, _ in kwargs):
        return UNKNOWN
    return MISSING


def _mode_capability(mode: table.Mode, args: tuple, kwargs: tuple) -> Optional[str]:
    value = _arg(args, kwargs, mode.pos, mode.kw)
    if value is MISSING:
        value = mode.default
    kind = mode.kind
    if kind == "flags":
        return _flags_capability(value)
    if kind == "sqlite":
        if isinstance(value, str) and not isinstance(value, Ref):
            if value in (":memory:", "") or "mode=memory" in value:
                return None
            return FS_READONLY if "mode=ro" in value else FS
        return FS
    if kind == "inplace":
        return FS_READONLY if value is False or value == 0 or value is None else FS
    if not isinstance(value, str) or isinstance(value, Ref):
        return FS
    if kind == "open":
        return FS if any(ch in value for ch in "wax+") else FS_READONLY
    if kind == "zip":
        return FS_READONLY if value == "r" else FS
    if kind == "tar":
        return FS_READONLY if value.startswith("r") else FS
    if kind == "dbm":
        return FS_READONLY if value.startswith("r") else FS
    return FS


def _flags_capability(value) -> str:
    parts = value if isinstance(value, Flags) else (value,)
    write_bits = 0
    for flag in WRITE_FLAGS_NAMES:
        write_bits |= getattr(os, flag, 0)
    for part in parts:
        if isinstance(part, Ref):
            name = str(part)
            if not name.startswith("os.O_"):
                return FS
            if name[3:] in WRITE_FLAGS_NAMES:
                return FS
        elif isinstance(part, int) and not isinstance(part, bool):
            if part & write_bits:
                return FS
        else:
            return FS
    return FS_READONLY


def _scope_texts(use: table.Use, args: tuple, kwargs: tuple) -> Optional[tuple]:
    kind = use.kind
    if kind is None:
        return None
    if kind == "const":
        return tuple(use.const) or None
    value = _arg(args, kwargs, use.pos, use.kw)
    if kind == "path":
        text = _path_text(value)
    elif kind == "env":
        text = value if _plain_str(value) and _is_env_name(value) else None
    elif kind == "url":
        text = _url_host(value) if _plain_str(value) else None
    elif kind == "host":
        text = None
        if _plain_str(value) and value and "/" not in value and " " not in value:
            port = _arg(args, kwargs, *use.port[:2]) if use.port else MISSING
            if port is MISSING and use.port:
                port = use.port[2]
            text = f"{_bracket(value)}:{port}" if isinstance(port, int) and not isinstance(port, bool) else value
    elif kind == "addr":
        text = None
        if isinstance(value, tuple) and len(value) >= 2 and _plain_str(value[0]) and value[0]:
            port = value[1]
            text = f"{_bracket(value[0])}:{port}" if isinstance(port, int) and not isinstance(port, bool) \
                else value[0]
    elif kind == "program":
        text = None
        shell = _arg(args, kwargs, None, "shell")
        if shell is MISSING or shell is False:
            first = value[0] if isinstance(value, tuple) and value else value
            if _plain_str(first) and first and not any(ch.isspace() for ch in first) and (
                    "/" not in first or first.startswith("/")):
                text = first
    else:
        text = None
    return (text,) if text else None


def _is_env_name(text: str) -> bool:
    return bool(text) and (text[0].isalpha() or text[0] == "_") and all(ch.isalnum() or ch == "_" for ch in text)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _path_text(value) -> Optional[str]:
    if isinstance(value, Ref):
        return "/dev/null" if str(value) == "os.devnull" else None
    if not isinstance(value, str) or not value or "\x00" in value:
        return None
    if any(ch in value for ch in "*?[$"):
        return None
    if value == "~" or value.startswith("~/") or value.startswith("/"):
        return os.path.normpath(value) if value.startswith("/") else value.rstrip("/") or value
    return None


def _url_host(text: str) -> Optional[str]:
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.scheme not in ("http", "https", "ftp", "ws", "wss"):
        return None
    port = port or {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}[parts.scheme]
    return f"{_bracket(host)}:{port}"


def _api_label(key: str, form: str, mode: Optional[table.Mode], args: tuple, kwargs: tuple) -> str:
    label = key[len("builtins."):] if key.startswith("builtins.") else key
    if form == "getitem":
        return f"{label}[...]"
    if form == "setitem":
        return f"{label}[...] ="
    if form == "delitem":
        return f"del {label}[...]"
    if form == "contains":
        return f"... in {label}"
    if form == "call" and mode is not None:
        value = _arg(args, kwargs, mode.pos, mode.kw)
        if _plain_str(value) and mode.kind != "sqlite":
            return f"{label}({mode.kw}={value!r})"
    return label


def _given(args: tuple, kwargs: tuple, pos: Optional[int], kw: Optional[str]) -> bool:
    """Whether the argument at *pos* / *kw* is certainly given, and not a literal None."""
    for name, value in kwargs:
        if name == kw:
            return value is not None
    if pos is not None and pos < len(args) and STAR not in args[: pos + 1]:
        return args[pos] is not None
    return False


def evidence_of(record: tuple, value: str, file: str, own: frozenset = frozenset()) -> list:
    """The evidence one use record gives, for the (external) qualified *value*.

    *own* holds the distribution's top-level package names and its name (with
    ``_`` for ``-``): uses that read its own installed files are marked ``own``
    (and do not count, see :meth:`Evidence.counts`).
    """
    _, form, args, kwargs, line, col, function, hint = record[:8]
    marks = record[8] if len(record) > 8 else None
    platform, python, main, own_receiver = "", "", "", False
    if marks is not None:
        platform = "&".join(t for t in marks[0] if "?" not in t and not t.startswith("py:"))
        python = ",".join(t[3:] for t in marks[0] if t.startswith("py:"))
        main, own_receiver = marks[1], marks[2]
    if value == table.ENVIRON_FILE_USE:
        return [Evidence(ENV_READONLY, file, line, col, f"path {args[0]!r} (a process's environment)",
                         function, None, False, False, main, platform, python)]
    key, entry = table.lookup(value)
    if entry is None:
        return []
    exact = key == table.normalise(value)
    if not exact and form == "call":
        form, args, kwargs = "ref", (), ()
    if form in ("getitem", "setitem", "delitem", "contains"):
        if not exact or entry.getitem is None:
            form = "ref"
    out = []
    if form in ("getitem", "setitem", "delitem", "contains"):
        capability = entry.getitem if form in ("getitem", "contains") else entry.setitem
        key_value = args[0] if args else UNKNOWN
        scope = (key_value,) if _plain_str(key_value) and _is_env_name(key_value) else None
        out.append(Evidence(capability, file, line, col, _api_label(key, form, None, args, kwargs),  # type: ignore[arg-type]
                            function, scope, hint, False, main, platform, python))
        return out
    api = _api_label(key, form, entry.mode, args, kwargs)
    if hint:
        api += " (by method name)"
    for use in entry.uses:
        if use.when is not None and form == "call" and _arg(args, kwargs, None, use.when) is MISSING:
            continue
        if use.unless is not None and form == "call" and _given(args, kwargs, *use.unless):
            continue
        if use.free_if_none and form == "call" and _arg(args, kwargs, use.pos, use.kw) is None:
            continue
        if use.kind == "own":
            mine = own_receiver or (form == "call" and _names_self(_arg(args, kwargs, use.pos, use.kw), own))
            out.append(Evidence(use.capability, file, line, col, api, function, None, hint, mine, main, platform,
                                python))
            continue
        capability = use.capability
        if capability == table.MODE:
            capability = _mode_capability(entry.mode, args, kwargs) if (form == "call" and entry.mode) else FS
            if capability is None:
                continue
        mine = own_receiver or (form == "call" and use.kind == "path"
                                and _arg(args, kwargs, use.pos, use.kw) is OWN)
        scope = _scope_texts(use, args, kwargs) if form == "call" or use.kind == "const" else None
        out.append(Evidence(capability, file, line, col, api, function, scope, hint, mine, main, platform, python))
        if capability in (FS, FS_READONLY) and scope and any(table.ENVIRON_FILE.match(s) for s in scope):
            out.append(Evidence(ENV_READONLY, file, line, col, api, function, None, hint, False, main, platform,
                                python))
    return out
