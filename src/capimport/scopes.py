"""Scope patterns: parsing, normalising, matching and comparing them.

A scope narrows a capability the way Deno's ``--allow-read=PATH`` does. There
are four kinds, chosen by the capability (``capabilities.SCOPE_KIND``):

* ``path`` (fs, fs-readonly): an absolute path or glob after ``~`` and ``$VAR``
  expansion (a pattern whose variable is unset matches nothing); relative patterns are relative to the directory of the file that
  declares them. A pattern grants the path it names and everything below it.
  ``*`` and ``?`` stay inside one path segment, ``**`` crosses segments. The
  literal part of a pattern is resolved through symlinks when it is parsed and
  every checked path is resolved before matching, so ``..`` and links cannot
  step outside a scope.
* ``host`` (net): ``host[:port]``; host is a name, an IP address, ``[v6]``,
  ``*`` or ``*.domain`` (subdomains only); a missing port means any port.
* ``env`` (env, env-readonly): a variable name or a glob such as ``AWS_*``.
* ``program`` (process): a bare program name (matches the executable's file
  name) or an absolute path (matches the resolved executable), globs allowed.

Sets of patterns are compared conservatively: when the code cannot prove that
one pattern lies inside another it answers "no", so an intersection may come
out narrower than the exact one, never wider.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import _socket
from typing import Iterable, Mapping, Optional

from ._values import FrozenValue

GLOB_CHARS = frozenset("*?[")
_ENV_NAME = re.compile(r"^[A-Za-z_*?][A-Za-z0-9_*?]*$")
_HOSTNAME = re.compile(r"^(\*|(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*)$")
_VAR = re.compile(r"\$(\w+|\{[^}]*\})")


class ScopeError(ValueError):
    """A scope pattern that does not parse; the message says why."""


class ScopePattern(FrozenValue):
    """One normalised pattern. ``value`` is what is matched; ``text`` is what the user wrote.

    Equality, hash and order look at ``(kind, value)`` only: two spellings of one
    pattern are the same pattern. A hand-written frozen class, not a
    ``@dataclass``: importing ``dataclasses`` would cost every start ~17 ms
    (see :mod:`capimport._values`).
    """

    __slots__ = ("kind", "value", "text")
    kind: str
    value: str
    text: str

    def __init__(self, kind: str, value: str, text: str = "") -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "text", text)

    def _key(self) -> tuple:
        return (self.kind, self.value)

    def __lt__(self, other: object):
        if other.__class__ is self.__class__:
            return self._key() < other._key()  # type: ignore[attr-defined]
        return NotImplemented

    def __le__(self, other: object):
        if other.__class__ is self.__class__:
            return self._key() <= other._key()  # type: ignore[attr-defined]
        return NotImplemented

    def __gt__(self, other: object):
        if other.__class__ is self.__class__:
            return self._key() > other._key()  # type: ignore[attr-defined]
        return NotImplemented

    def __ge__(self, other: object):
        if other.__class__ is self.__class__:
            return self._key() >= other._key()  # type: ignore[attr-defined]
        return NotImplemented

    def __str__(self) -> str:
        return self.text or self.value

    @property
    def is_glob(self) -> bool:
        return any(ch in GLOB_CHARS for ch in self.value)


def has_glob(text: str) -> bool:
    return any(ch in GLOB_CHARS for ch in text)


# --------------------------------------------------------------------------- parsing


def parse_pattern(kind: str, text: object, *, base_dir: Optional[str] = None,
                  environ: Optional[Mapping[str, str]] = None) -> ScopePattern:
    """Parse one pattern of *kind*; raises ScopeError with a reason when malformed."""
    if not isinstance(text, str):
        raise ScopeError(f"a scope pattern must be a string, not {type(text).__name__}")
    if not text.strip() or text != text.strip():
        raise ScopeError(f"scope pattern {text!r} is empty or has surrounding spaces")
    if "\x00" in text:
        raise ScopeError("scope pattern contains a NUL byte")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ScopeError(f"this capability takes no scope")
    value = parser(text, base_dir, os.environ if environ is None else environ)
    return ScopePattern(kind, value, text)


#: Prefix of the value of a pattern whose ``$VAR`` is unset: it matches nothing
#: (no real path or name contains NUL) and is covered only by itself.
UNSET = "\x00unset:"


def _expand(text: str, environ: Mapping[str, str]) -> Optional[str]:
    """*text* with ``$VAR`` and a leading ``~`` expanded; None when a variable is unset."""
    try:
        expanded = _expand_vars(text, environ)
    except _Unset:
        return None
    return _expand_user(expanded, environ) if expanded.startswith("~") else expanded


def _parse_path(text: str, base_dir: Optional[str], environ: Mapping[str, str]) -> str:
    expanded = _expand(text, environ)
    if expanded is None:
        return UNSET + text
    if not os.path.isabs(expanded):
        expanded = os.path.join(base_dir or os.getcwd(), expanded)
    expanded = os.path.normpath(expanded)
    if expanded.startswith("//"):
        expanded = "/" + expanded.lstrip("/")
    return _resolve_literal_prefix(expanded)


class _Unset(Exception):
    """A ``$VAR`` in a pattern is not set: the pattern then matches nothing (fail closed)."""


def _expand_vars(text: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1).strip("{}")
        if not name or not (name[0].isalpha() or name[0] == "_"):
            raise ScopeError(f"${{{name}}} is not a variable name")
        if not environ.get(name):
            raise _Unset(name)
        return environ[name]

    return _VAR.sub(replace, text)


def _expand_user(text: str, environ: Mapping[str, str]) -> str:
    head, sep, rest = text.partition("/")
    if head != "~":
        raise ScopeError("only ~ (the current user's home) is supported, not ~user")
    home = environ.get("HOME") or os.path.expanduser("~")
    return home.rstrip("/") + sep + rest if rest or sep else home


def _resolve_literal_prefix(path: str) -> str:
    """Resolve symlinks in the part of *path* before the first glob segment."""
    parts = path.split("/")
    literal = []
    for part in parts:
        if has_glob(part):
            break
        literal.append(part)
    head = "/".join(literal) or "/"
    resolved = os.path.realpath(head)
    tail = parts[len(literal):]
    return "/".join([resolved.rstrip("/")] + tail) if tail else resolved


def _parse_host(text: str, base_dir: Optional[str], environ: Mapping[str, str]) -> str:
    host, port = split_host_port(text.strip().lower())
    if port != "*":
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ScopeError(f"port {port!r} is not a number from 0 to 65535 or *")
        port = str(int(port))
    host = host.rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        import ipaddress   # parsing only: matching compares packed addresses (ipv6_packed)

        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ScopeError(f"{host!r} is not an IPv6 address") from None
    elif not _HOSTNAME.match(host):
        raise ScopeError(f"{host!r} is not a host name, IP address, '*' or '*.domain'")
    return f"{_bracket(host)}:{port}"


def split_host_port(text: str) -> tuple[str, str]:
    """Split ``host[:port]``, ``[v6]:port`` or a bare IPv6 address into (host, port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ScopeError(f"{text!r} has an unclosed '['")
        rest = text[end + 1:]
        if rest and not rest.startswith(":"):
            raise ScopeError(f"{text!r}: expected ':port' after ']'")
        return text[1:end], (rest[1:] or "*")
    if text.count(":") > 1:
        return text, "*"
    host, _, port = text.partition(":")
    return host, port or "*"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _parse_env(text: str, base_dir: Optional[str], environ: Mapping[str, str]) -> str:
    if not _ENV_NAME.match(text):
        raise ScopeError(f"{text!r} is not an environment variable name or glob (letters, digits, _, * and ?)")
    return text


def _parse_program(text: str, base_dir: Optional[str], environ: Mapping[str, str]) -> str:
    expanded = _expand(text, environ)
    if expanded is None:
        return UNSET + text
    if "/" not in expanded:
        return expanded
    if not os.path.isabs(expanded):
        raise ScopeError(f"program {text!r} must be a bare name or an absolute path")
    return _resolve_literal_prefix(os.path.normpath(expanded))


_PARSERS = {"path": _parse_path, "host": _parse_host, "env": _parse_env, "program": _parse_program}


# --------------------------------------------------------------------------- matching


@functools.lru_cache(maxsize=4096)
def _path_regex(pattern: str) -> re.Pattern:
    """A regex for a path glob that also matches everything below a match."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"(?!/)[{body}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    prefix = "".join(out).rstrip("/") if pattern != "/" else ""
    return re.compile(prefix + "(?:/.*)?", re.DOTALL)


def path_matches(pattern: str, path: str) -> bool:
    """True when the resolved absolute *path* is *pattern* or lies below it."""
    if not has_glob(pattern):
        if pattern == "/":
            return path.startswith("/")
        return path == pattern or path.startswith(pattern.rstrip("/") + "/")
    return _path_regex(pattern).fullmatch(path) is not None


def resolve_path(path: str, cwd: Optional[str] = None) -> str:
    """The absolute, symlink-free form of *path*, the form scopes are matched against."""
    if not os.path.isabs(path):
        path = os.path.join(cwd or os.getcwd(), path)
    return os.path.realpath(path)


def ipv6_packed(text: str) -> Optional[bytes]:
    """The 16 bytes of IPv6 address *text*, None when it is not one (``"fe80::1%eth0"`` is not).

    The C library's parser, not ``ipaddress``: deciding a connection must not import a module
    (the import would itself be decided), and ``ipaddress`` costs a millisecond of every start.
    """
    try:
        return _socket.inet_pton(_socket.AF_INET6, text)
    except (OSError, ValueError, TypeError):
        return None


def is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 address (an IPv6 zone, ``%eth0``, ignored), False for a name."""
    host = host.split("%")[0]
    try:
        _socket.inet_pton(_socket.AF_INET, host)
    except (OSError, ValueError, TypeError):
        return ipv6_packed(host) is not None
    return True


def host_matches(pattern: str, host: str, port: Optional[int]) -> bool:
    """True when ``host:port`` falls under a normalised ``host[:port]`` pattern.

    *port* ``None`` stands for a lookup with no port (a DNS query), which any
    port pattern for the host allows.
    """
    p_host, p_port = split_host_port(pattern)
    if p_port != "*" and port is not None and str(port) != p_port:
        return False
    host = host.lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if p_host == "*":
        return True
    if p_host.startswith("*."):
        return host.endswith(p_host[1:]) and len(host) > len(p_host) - 1
    if ":" in p_host and ":" in host:
        packed = ipv6_packed(p_host)
        return packed is not None and packed == ipv6_packed(host.split("%")[0])
    return host == p_host


def env_matches(pattern: str, name: str) -> bool:
    """True when the variable *name* matches *pattern* (case-sensitive, as POSIX is)."""
    return name == pattern or (has_glob(pattern) and fnmatch.fnmatchcase(name, pattern))


def program_matches(pattern: str, executable: str) -> bool:
    """True when *executable* (a resolved absolute path, or a name) matches *pattern*."""
    if "/" in pattern:
        return path_matches(pattern, executable) if has_glob(pattern) else executable == pattern
    return fnmatch.fnmatchcase(os.path.basename(executable), pattern)


def pattern_matches(pattern: ScopePattern, target: object) -> bool:
    """Match a target of the pattern's kind: a path, (host, port), a name, an executable."""
    if pattern.kind == "path":
        return path_matches(pattern.value, str(target))
    if pattern.kind == "host":
        host, port = target  # type: ignore[misc]
        return host_matches(pattern.value, host, port)
    if pattern.kind == "env":
        return env_matches(pattern.value, str(target))
    if pattern.kind == "program":
        return program_matches(pattern.value, str(target))
    return False


# --------------------------------------------------------------------------- comparing


def covers(outer: ScopePattern, inner: ScopePattern) -> bool:
    """True when every target *inner* matches is matched by *outer* (conservative)."""
    if outer.kind != inner.kind:
        return False
    if outer.value == inner.value:
        return True
    return _COVERS[outer.kind](outer.value, inner.value)


def _covers_path(outer: str, inner: str) -> bool:
    if not has_glob(inner):
        return path_matches(outer, inner)
    # inner is a glob: outer must grant the whole tree below inner's literal prefix.
    prefix = inner.split("/")
    literal = []
    for part in prefix:
        if has_glob(part):
            break
        literal.append(part)
    return path_matches(outer, "/".join(literal) or "/")


def _covers_host(outer: str, inner: str) -> bool:
    o_host, o_port = split_host_port(outer)
    i_host, i_port = split_host_port(inner)
    if o_port != "*" and o_port != i_port:
        return False
    if o_host == "*" or o_host == i_host:
        return True
    if o_host.startswith("*."):
        return i_host.endswith(o_host[1:]) and i_host != o_host[1:].lstrip(".") and i_host != "*"
    return False


def _covers_env(outer: str, inner: str) -> bool:
    if not has_glob(inner):
        return fnmatch.fnmatchcase(inner, outer)
    # inner is a glob: only a trailing-star prefix pattern can be shown to cover it.
    if outer.endswith("*") and not has_glob(outer[:-1]):
        return inner.startswith(outer[:-1])
    return False


def _covers_program(outer: str, inner: str) -> bool:
    if has_glob(inner):
        if "/" in outer or "/" not in inner:
            return "/" in outer and "/" in inner and _covers_path(outer, inner)
        return outer == "*"
    return program_matches(outer, inner)


_COVERS = {"path": _covers_path, "host": _covers_host, "env": _covers_env, "program": _covers_program}


# --------------------------------------------------------------------------- sets of patterns
#
# A scope is either ``None`` (unscoped: everything in the capability's class)
# or a frozenset of patterns. An empty frozenset grants nothing.

Scope = Optional[frozenset]


def scope_union(a: Scope, b: Scope) -> Scope:
    if a is None or b is None:
        return None
    return minimise(a | b)


def scope_intersection(a: Scope, b: Scope) -> Scope:
    """The pairwise meets of the two sets (each meet exact where one pattern can say it)."""
    if a is None:
        return b
    if b is None:
        return a
    met = {m for p in a for q in b for m in (meet(p, q),) if m is not None}
    return minimise(frozenset(met))


def meet(p: ScopePattern, q: ScopePattern) -> Optional[ScopePattern]:
    """A pattern for what both match, or None when that cannot be shown (conservative).

    The narrower pattern when one covers the other; for hosts also the exact
    combination of host and port (``*:443`` and ``x.org`` meet in ``x.org:443``).
    """
    if covers(q, p):
        return p
    if covers(p, q):
        return q
    if p.kind == q.kind == "host":
        value = _meet_host(p.value, q.value)
        return ScopePattern("host", value, value) if value else None
    return None


def _meet_host(a: str, b: str) -> Optional[str]:
    a_host, a_port = split_host_port(a)
    b_host, b_port = split_host_port(b)
    if a_port == "*" or a_port == b_port:
        port = b_port
    elif b_port == "*":
        port = a_port
    else:
        return None
    if _covers_host(f"{_bracket(a_host)}:*", f"{_bracket(b_host)}:*"):
        host = b_host
    elif _covers_host(f"{_bracket(b_host)}:*", f"{_bracket(a_host)}:*"):
        host = a_host
    else:
        return None
    return f"{_bracket(host)}:{port}"


def scope_issubset(a: Scope, b: Scope) -> bool:
    if b is None:
        return True
    if a is None:
        return False
    return all(any(covers(q, p) for q in b) for p in a)


def scope_allows(scope: Scope, target: object) -> bool:
    if scope is None:
        return True
    return any(pattern_matches(p, target) for p in scope)


def minimise(patterns: Iterable[ScopePattern]) -> frozenset:
    """Drop patterns that another pattern in the set already covers."""
    items = sorted(set(patterns))
    kept = [p for p in items
            if not any(q != p and covers(q, p) and not covers(p, q) for q in items)]
    return frozenset(kept)
