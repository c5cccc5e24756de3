"""The C scope matching (src/capimport/_core_match.h) against its Python reference.

Each C leaf must give the answer of the Python function it ports, on every
input; where the Python raises (a glob that ``re`` rejects, an invalid IPv6
address ...), the C must answer "no match" (fail closed). The few places
where the header documents a deliberate difference ("PARITY:" in the header)
are tested for erring on the safe side only.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import sys
import warnings

import _socket
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from capimport import hook, scopes

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RAISED = object()


def ref(function, *args):
    """The Python reference's answer, or RAISED; re's FutureWarnings ignored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return function(*args)
        except Exception:
            return RAISED


def ipaddress_is_ip(host: str) -> bool:
    """What the standard library calls an address (a zone, ``%eth0``, aside): the meaning the C core
    keeps (``scopes.is_ip`` keeps it too: tests/test_scopes.py)."""
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def ipaddress_same_v6(address: ipaddress.IPv6Address, host: str) -> bool:
    try:
        return ipaddress.IPv6Address(host.split("%")[0]) == address
    except ValueError:
        return False


def same(c_answer, py_answer):
    """The C answer agrees: equal, or "no match" where Python raised."""
    if py_answer is RAISED:
        return c_answer is False
    return c_answer is bool(py_answer) and isinstance(c_answer, bool)


# --------------------------------------------------------------------------- alphabets

NON_ASCII = ["é", "İ", "ß", "ﬀ", "Σ", "\U0001f600", "\udc80"]
GLOB_PIECES = ["*", "**", "?", "[", "]", "!", "^", "-", "/", "\\", ".", "a", "b", "z", "0", "&", "~", "|",
               "(", ")", "$", "+", "{", "}", "#", " ", "\n", "[!", "[]", "[^", "a-z", "z-a", "--"] + NON_ASCII
TEXT_CHARS = ["/", "a", "b", "z", "0", "A", ".", "-", "]", "[", "!", "^", "\\", "*", "?", "&", "|", "\n",
              " ", "(", "$"] + NON_ASCII
texts = st.lists(st.sampled_from(TEXT_CHARS), max_size=10).map("".join)


@st.composite
def glob_and_text(draw, pieces=GLOB_PIECES, slash=True):
    """A glob and a text: random, or the glob with its wildcards filled in (so often a match)."""
    parts = draw(st.lists(st.sampled_from(pieces), max_size=8))
    if slash and draw(st.booleans()):
        parts.insert(0, "/")
    pattern = "".join(parts)
    if draw(st.integers(0, 3)) == 0:
        return pattern, draw(texts)
    out = []
    for part in parts:
        if part in ("*", "**"):
            out.append(draw(texts))
        elif part in ("?", "[", "]", "!", "^", "[!", "[]", "[^", "a-z", "z-a", "--") and draw(st.booleans()):
            out.append(draw(st.sampled_from(TEXT_CHARS)))
        else:
            out.append(part)
    text = "".join(out)
    if slash and draw(st.booleans()):
        text += draw(st.sampled_from(["/", "/x", "/x/y", "x", "//"]))
    return pattern, text


# --------------------------------------------------------------------------- paths

PATH_CASES = [
    ("/", "/"), ("/", "/a"), ("/", "a"), ("/", ""), ("", ""), ("", "/a"), ("//", "/a"), ("/a/", "/a"),
    ("/a", "/a/b"), ("/a", "/ab"), ("/a/*", "/a/b"), ("/a/*", "/a/b/c"), ("/a/*", "/a"), ("/a/*", "/a/"),
    ("/a/**", "/a"), ("/a/**", "/a/b/c"), ("/a/**/c", "/a/c"), ("/a/**/c", "/a/b/c/d"), ("**", ""),
    ("**", "anything"), ("*", "/"), ("*", ""), ("***", "a/b"), ("/a/?", "/a/b"), ("/a/?", "/a//"),
    ("/a/[]", "/a/]"), ("/a/[]a]", "/a/]a"), ("/a/[]a]", "/a/]"), ("/a/[]]", "/a/]]"), ("/a/[!]", "/a/x"),
    ("/a/[!]a]", "/a/x"), ("/a/[^]", "/a/]"), ("/a/[][a-z]", "/a/]"), ("/a/[][a-z]", "/a/b"),
    ("/a/[][a-z]x", "/a/(x"), ("[]*", "]/"), ("[]*]", "]/"), ("[]*]", "*"), ("[]?]", "?"), ("[]**]", "/x"),
    ("/a/[z-a]", "/a/b"), ("/a/[a-]", "/a/-"), ("/a/[-a]", "/a/-"), ("/a/[!-]", "/a/x"), ("/a/[!/]", "/a//"),
    ("/a/[/]", "/a//"), ("/a/[\\]", "/a/\\"), ("/a/[a\\]", "/a/\\"), ("/a/[\\-]", "/a/-"), ("/a/[b", "/a/[b"),
    ("/a/[[]", "/a/["), ("/a/[&&]", "/a/&"), ("/a/[a--]", "/a/-"), ("/a/[--z]", "/a/x"), ("/a/[!a-c]", "/a/d"),
    ("/a/[é-ﬀ]", "/a/ß"), ("/a/[ß]", "/a/ss"), ("/a/[^a]", "/a/b"), ("/a/[|]", "/a/|"), ("/a/[~~]", "/a/~"),
    ("/a/[a-z]*", "/a/bcd"), ("/a/[]-a]", "/a/^"), ("/a/.", "/a/x"), ("/a/\n", "/a/\n"), ("/a/*", "/a/\n"),
    ("/a/[!]]", "/a/x"), ("/é/*", "/é/İ"), ("/a/(b)", "/a/(b)"), ("/a+/{1}$", "/a+/{1}$"), ("/a/[]-]", "/a/-"),
    ("/a/[!]-]", "/a/b"), ("/a/[[:alpha:]]", "/a/a]"), ("/*/", "/x"), ("/x//", "/x/y"), ("/[]/", "/]"),
    ("/a/[^/]", "/a/x"), ("[]-]", "-"), ("/a/[!]/", "/a/]"), ("/a/[]/]", "/a/]"),
]


@pytest.mark.parametrize("pattern, path", PATH_CASES)
def test_path_matches_cases(leaf, pattern, path):
    assert same(leaf("path_matches", pattern, path), ref(scopes.path_matches, pattern, path))


@SETTINGS
@given(glob_and_text())
def test_path_matches(leaf, case):
    pattern, path = case
    assert same(leaf("path_matches", pattern, path), ref(scopes.path_matches, pattern, path))


def test_path_matches_hostile_globs_are_fast(leaf):
    # Exponential for a backtracking matcher, linear-ish here (O(len(text) * len(pattern))).
    pattern = "/" + "*a" * 200 + "b"
    assert leaf("path_matches", pattern, "/" + "a" * 3000) is False
    assert leaf("path_matches", "/" + "**a" * 200 + "b", "/" + "a/" * 1500) is False
    assert leaf("fnmatchcase", "a" * 3000, "*a" * 200 + "b") is False
    assert leaf("path_matches", "/" + "[" * 5000, "/" + "[" * 5000) is True


def test_path_matches_non_str(leaf):
    assert leaf("path_matches", b"/a", "/a") is False
    assert leaf("path_matches", "/a", None) is False
    assert leaf("path_matches", ["/"], ["/"]) is False   # Python: True (list == list); C: only str


# --------------------------------------------------------------------------- fnmatch

FNMATCH_CASES = [
    ("", ""), ("a", ""), ("", "*"), ("abc", "a*c"), ("a\nc", "a?c"), ("a\nc", "a*c"), ("]", "[]]"),
    ("a", "[]a]"), ("]", "[!]]"), ("b", "[!]]"), ("[", "["), ("[a", "[a"), ("!", "[!]"), ("x", "[!]"),
    ("", "[]"), ("]", "[]"), ("a", "[z-a]"), ("a", "[!z-a]"), ("-", "[a-]"), ("-", "[-a]"), ("-", "[--z]"),
    ("a", "[a--]"), ("-", "[a--]"), ("b", "[a-c-e]"), ("d", "[a-c-e]"), ("-", "[a-c-e]"), ("\\", "[\\]"),
    ("\\", "[a-\\]"), ("^", "[^]"), ("^", "[^a]"), ("b", "[^a]"), ("[", "[[]"), ("&", "[&&]"), ("~", "[~~]"),
    ("|", "[||]"), ("b", "[!a-c]"), ("d", "[!a-c]"), ("ß", "[é-ﬀ]"), ("-", "[!-]"), ("a", "[!-]"),
    ("!", "[!!]"), ("b", "[!z-ab]"), ("a", "[!z-ab]"), ("-", "[]-]"), ("^", "[]-a]"), ("x", "[!]-]"),
    ("x", "[z-a-x]"), ("y", "[c-a-b-x]"), ("a", "[b-a-c]"), ("-", "[!--]"), ("a", "*[!]"), ("ab", "a**b"),
    ("a/b", "a*b"), ("a", "[\\-a]"), ("-", "[\\--]"), ("a", "[a-a]"), ("b", "[\\-\\]"),
]


#: The core implements CPython 3.11's fnmatch, which drops empty ranges (``[z-a]``); older
#: versions read them differently. Scopes with brackets are rare (env patterns cannot have
#: them), and the core's reading of one is no wider than 3.11's.
FNMATCH_311 = pytest.mark.skipif(sys.version_info < (3, 11),
                                 reason="the core implements 3.11's fnmatch; this Python's differs")


@FNMATCH_311
@pytest.mark.parametrize("name, pattern", FNMATCH_CASES)
def test_fnmatchcase_cases(leaf, name, pattern):
    assert same(leaf("fnmatchcase", name, pattern), ref(fnmatch.fnmatchcase, name, pattern))


@FNMATCH_311
@SETTINGS
@given(glob_and_text(GLOB_PIECES + ["[a-c-e]", "[!a-]", "-]", "[]-"], slash=False))
def test_fnmatchcase(leaf, case):
    pattern, name = case
    assert same(leaf("fnmatchcase", name, pattern), ref(fnmatch.fnmatchcase, name, pattern))


@SETTINGS
@given(st.text(st.sampled_from("[]!^-\\az&|~é"), max_size=9), st.text(st.sampled_from("[]!^-\\az&|~éb"), max_size=2))
def test_fnmatchcase_classes(leaf, pattern, name):
    # dense in class syntax: ranges, merged empty ranges, "]" first, "!" ...
    assert same(leaf("fnmatchcase", name, pattern), ref(fnmatch.fnmatchcase, name, pattern))


ENV_PIECES = ["A", "B", "_", "1", "*", "?", "[", "]", "!", "-", "a", "é", "AWS_", "Σ"]


@SETTINGS
@given(glob_and_text(ENV_PIECES, slash=False))
@example(("AWS_*", "AWS_KEY"))
@example(("[", "["))
@example(("A[", "A["))
def test_env_matches(leaf, case):
    pattern, name = case
    assert same(leaf("env_matches", pattern, name), ref(scopes.env_matches, pattern, name))


PROGRAM_CASES = [
    ("python3", "/usr/bin/python3"), ("python*", "/usr/bin/python3.11"), ("python", "/usr/bin/python3"),
    ("/usr/bin/python3", "/usr/bin/python3"), ("/usr/bin/*", "/usr/bin/git"), ("/usr/bin/*", "/usr/bin/a/b"),
    ("/usr/**", "/usr/bin/a/b"), ("git", "git"), ("g?t", "/x/get"), ("[!a]*", "/x/bin"), ("*", "/"),
    ("*", ""), ("", "/x/"), ("/a", "/a/b"), ("/a/[]", "/a/]"), ("x/*", "x/y"), ("[]/]", "/"),
]


@pytest.mark.parametrize("pattern, executable", PROGRAM_CASES)
def test_program_matches_cases(leaf, pattern, executable):
    assert same(leaf("program_matches", pattern, executable), ref(scopes.program_matches, pattern, executable))


@SETTINGS
@given(glob_and_text())
def test_program_matches(leaf, case):
    pattern, executable = case
    assert same(leaf("program_matches", pattern, executable), ref(scopes.program_matches, pattern, executable))


# --------------------------------------------------------------------------- IP addresses

IP_CASES = [
    "", "%", "%eth0", "1.2.3.4", "1.2.3.4%x", "01.2.3.4", "1.2.3.04", "0.0.0.0", "00.0.0.0", "255.255.255.255",
    "256.1.1.1", "1.2.3", "1.2.3.4.5", "1..3.4", "1.2.3.4.", ".1.2.3", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n",
    "١.٢.٣.٤", "1.2.3.1000", "0x1.2.3.4", "1e2.1.1.1", "+1.2.3.4", "1.2.3.4/32", "::", ":::", "::1", "::1%lo",
    "::1%", "1::", "1:", ":1", "::1:", ":1::", "1::2::3", "FE80::1", "fe80::1%eth0", "::ffff:1.2.3.4",
    "::ffff:01.2.3.4", "::1.2.3.4", "1.2.3.4::", "::1.2.3", "::1.2.3.4.5", "::256.1.1.1", "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6::7:8", "1:2:3:4:5::7:8",
    "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6::1.2.3.4",
    "12345::", "01234::", "0000:0000:0000:0000:0000:0000:255.255.255.255", "ABCD::EF01", "abcd::efg1",
    "::1.2.3.4:5", "::ffff:1.2.3.4%x", "1.2.3.4%", "fe80::1%%", "::\x00", "1.2.3.4\x00", "::1 ", " ::1",
    "[::1]", "::ffff:1a.2.3.4", "::12345.1.1.1", "::ff:", "::٠", "1:2:3:4:5:6:7:8%1", "::0.0.0.0",
]


@pytest.mark.parametrize("host", IP_CASES)
def test_is_ip_cases(leaf, host):
    assert same(leaf("is_ip", host), ref(ipaddress_is_ip, host))


IP_PIECES = ["0", "1", "9", "a", "f", "F", "g", "00", "01", "255", "256", "ffff", "12345", ":", "::", ".",
             "%", "1.2.3.4", "x", " ", "٣", "/"]


@SETTINGS
@given(st.lists(st.sampled_from(IP_PIECES), max_size=12).map("".join))
def test_is_ip(leaf, host):
    assert same(leaf("is_ip", host), ref(ipaddress_is_ip, host))


@SETTINGS
@given(st.lists(st.sampled_from(IP_PIECES + ["::ffff:", "1:2:3:4:5:6:", "abcd:"]), max_size=10).map("".join))
def test_is_ip_v6_shaped(leaf, host):
    assert same(leaf("is_ip", host), ref(ipaddress_is_ip, host))


# --------------------------------------------------------------------------- hosts

HOST_CASES = [
    ("example.com:*", "example.com", 443), ("example.com:*", "EXAMPLE.COM.", None), ("example.com:443", "example.com", 80),
    ("example.com:443", "example.com", 443), ("example.com:443", "example.com", None), ("*.example.com:*", "example.com", 1),
    ("*.example.com:*", "a.example.com", 1), ("*.example.com:*", ".example.com", 1), ("*.example.com:*", "aexample.com", 1),
    ("*:*", "anything", 1), ("*:443", "x", 80), ("[::1]:8080", "::1", 8080), ("[::1]:8080", "[::1]", 8080),
    ("[::1]:*", "0:0:0:0:0:0:0:1", None), ("[::1]:*", "::1%lo", None), ("[::1%lo]:*", "::1%lo", None),
    ("[::1]:*", "::0001", None), ("[::1]:*", "::00001", None), ("[::ffff:1.2.3.4]:*", "::ffff:102:304", 1),
    ("[::ffff:102:304]:*", "::FFFF:1.2.3.4", 1), ("10.0.0.1:*", "10.0.0.1", 5), ("10.0.0.1:*", "010.0.0.1", 5),
    ("[::1]:*", "[::1].", None), ("[::1]", "::1", 1), ("[::1]:", "::1", 1), ("[::1]x", "::1", 1), ("[::1", "::1", 1),
    ("::1", "::1", 1), ("a:b:c", "a:b:c", 1), ("a:", "a", 7), ("x:1", "x", True), ("x:1", "x", False),
    ("x:443", "x", "443"), ("x:443", "x", 443.0), ("x:-1", "x", -1), ("x:0", "x", 0),
    ("x:99999999999999999999", "x", 99999999999999999999), ("x:-99999999999999999999", "x", -99999999999999999999),
    ("x:099999999999999999999", "x", 99999999999999999999), ("x:99999999999999999999", "x", 99999999999999999998),
    ("i̇:*", "İ", None), ("i:*", "İ", None), ("σ:*", "Σ", None), ("ς:*", "Σ", None), ("aς:*", "AΣ", None),
    ("aσb:*", "AΣB", None), ("aς.:*", "AΣ.", None), ("aς:*", "AΣ.", None), ("aσ.b:*", "AΣ.B", None),
    ("*.ς:*", "x.Σ", None), ("ß:*", "ẞ", None), ("ﬀ:*", "ﬀ", None), ("é:*", "É", None), ("*:*", None, 1),
    ("a:*", 5, None), ("[]:*", "[]", None), ("[]:*", "", None), ("*.:*", "a.", None), ("*.:*", "a..", None),
    ("[:*", "[", None), ("]:*", "]", None), ("[fe80::1]:*", "fe80::1%eth0", None), ("[::1]:*", "[::1%x]", None),
]


@pytest.mark.parametrize("pattern, host, port", HOST_CASES)
def test_host_matches_cases(leaf, pattern, host, port):
    assert same(leaf("host_matches", pattern, host, port), ref(scopes.host_matches, pattern, host, port))


HOST_PIECES = ["a", "B", "example", "com", ".", "*", "*.", "[", "]", ":", "::", "1", "0", "f", "ffff", "%", "-",
               "_", "1.2.3.4", "İ", "Σ", "ß", "é", "ς", "σ", "ﬀ", " "]
host_texts = st.lists(st.sampled_from(HOST_PIECES), max_size=8).map("".join)
ports = st.one_of(st.none(), st.integers(-2, 70000), st.sampled_from([0, 1, 80, 443, True, False, "443", 2**70]))


@st.composite
def host_case(draw):
    text = draw(host_texts)
    try:
        pattern = scopes._parse_host(text, None, {})     # a normalised pattern, as the policy holds
    except scopes.ScopeError:
        pattern = text if draw(st.booleans()) else "example.com:*"
    p_host, p_port = scopes.split_host_port(pattern) if ref(scopes.split_host_port, pattern) is not RAISED \
        else (pattern, "*")
    host = draw(st.one_of(host_texts, st.sampled_from([p_host, p_host.upper(), p_host + ".", f"[{p_host}]",
                                                      "x" + p_host[1:], "a.b" + p_host[1:]])))
    port = draw(st.one_of(ports, st.just(int(p_port)) if p_port.isdecimal() and p_port.isascii() else ports))
    return pattern, host, port


@SETTINGS
@given(host_case())
def test_host_matches(leaf, case):
    pattern, host, port = case
    assert same(leaf("host_matches", pattern, host, port), ref(scopes.host_matches, pattern, host, port))


@SETTINGS
@given(st.integers(0, 2**128 - 1), st.sampled_from(["compressed", "exploded", "upper", "zone", "v4", "zeros"]),
       st.booleans())
def test_host_matches_ipv6_spellings(leaf, number, spelling, same_address):
    address = ipaddress.IPv6Address(number)
    other = address if same_address else ipaddress.IPv6Address(number ^ 1)
    host = {"compressed": other.compressed, "exploded": other.exploded, "upper": other.compressed.upper(),
            "zone": other.compressed + "%eth0", "zeros": other.exploded.replace(":0", ":00000", 1),
            "v4": other.exploded[:30] + str(ipaddress.IPv4Address(int(other) & 0xFFFFFFFF))}[spelling]
    pattern = f"[{address.compressed}]:*"
    assert same(leaf("host_matches", pattern, host, None), ref(scopes.host_matches, pattern, host, None))
    assert scopes.host_matches(pattern, host, None) is ipaddress_same_v6(address, host)


@SETTINGS
@given(st.lists(st.sampled_from(IP_PIECES + ["::ffff:", "1:2:3:4:5:6:"]), max_size=10).map("".join),
       st.sampled_from(["::1", "::", "::ffff:1.2.3.4", "1::", "1:2:3:4:5:6:7:8", "::1:0:0:0"]))
def test_host_matches_ipv6_parsing(leaf, host, p_host):
    pattern = f"[{p_host}]:*"
    assert same(leaf("host_matches", pattern, host, None), ref(scopes.host_matches, pattern, host, None))
    pattern = f"[{host}]:*"
    assert same(leaf("host_matches", pattern, p_host, None), ref(scopes.host_matches, pattern, p_host, None))


# --------------------------------------------------------------------------- str.lower (hosts)


def test_lower_every_code_point(leaf):
    # Py_UNICODE_TOLOWER and the U+0130 rule give str.lower() for every code point but the sigma.
    chars = [chr(c) for c in range(0x110000) if c != 0x3A3]
    for start in range(0, len(chars), 1 << 16):
        chunk = "".join(chars[start:start + (1 << 16)])
        assert leaf("lower", chunk) == chunk.lower()


CONTEXT = ([chr(c) for c in range(128)] + [chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)]
           + [chr(c) for c in range(0x391, 0x3CF) if c not in (0x3A2, 0x3AA, 0x3AB)]
           + ["\u0130"] + [chr(c) for c in range(0x300, 0x370)])


def test_lower_sigma_known_contexts(leaf):
    # Wherever the C decides a sigma's context (ASCII, Latin-1 and Greek letters), it is exact.
    for c in CONTEXT:
        for text in (c + "Σ", "A" + c + "Σ", c + c + "Σ", "AΣ" + c, "AΣ" + c + "B", "AΣ" + c + c + "B",
                     "Σ" + c, c + "Σ" + c, "A" + c + "Σ" + c + "B"):
            assert leaf("lower", text) == text.lower(), text
            pattern = text.lower() + ":*"
            assert same(leaf("host_matches", pattern, text, None), ref(scopes.host_matches, pattern, text, None))


@SETTINGS
@given(st.text(st.sampled_from(["Σ", "A", "a", ".", "'", ":", "-", "1", "\u0345", "\u02b0", "̈", "é", "\u0387",
                                "ª", "σ", "ς", "İ", "Ω"]), max_size=8))
def test_lower_sigma_unknown_contexts_fail_closed(leaf, text):
    # Elsewhere the C says None (its sigma then matches nothing), never a wrong answer.
    got = leaf("lower", text)
    assert got is None or got == text.lower()
    pattern = text.lower() + ":*"
    assert same(leaf("host_matches", pattern, text, None), ref(scopes.host_matches, pattern, text, None)) \
        or (got is None and leaf("host_matches", pattern, text, None) is False)


# --------------------------------------------------------------------------- ports

PORT_CASES = [None, 0, 1, 443, -1, 2**70, True, False, "443", "0443", "", " 443", "443 ", "http", "https", "ssh",
              "www", "domain", "HTTP", "nonexistent", "ftp-data", "٤٤٣", "²", "1²", "⁴⁴³", "１２３", "1" * 5000,
              "é", "ht\x00tp", "\udc80", b"443", b"http", b"\xffhttp", b"ht\xe9", b"", b"ht\x00tp", b"\xd9\xa4",
              bytearray(b"80")]


@pytest.mark.parametrize("port", PORT_CASES)
def test_port_cases(leaf, port):
    expected = ref(hook._port, port)
    try:
        got = leaf("port", port)
    except (ValueError, TypeError):
        got = RAISED
    if isinstance(port, bytearray):      # not bytes: str(bytearray(...)) in Python; C fails closed
        assert got == -1
        return
    assert got is RAISED if expected is RAISED else (got == expected and type(got) is type(expected))


@SETTINGS
@given(st.one_of(st.text(st.sampled_from("0123456789٤²ab-_ é\x00"), max_size=6),
                 st.binary(max_size=6), st.integers(), st.none()))
def test_port(leaf, port):
    expected = ref(hook._port, port)
    try:
        got = leaf("port", port)
    except (ValueError, TypeError):
        got = RAISED
    assert got is RAISED if expected is RAISED else (got == expected and type(got) is type(expected))


def test_port_services_agree_with_socket(leaf):
    for name in ("http", "https", "ssh", "smtp", "domain", "ntp", "imaps", "www", "x-no-such-service"):
        try:
            expected = _socket.getservbyname(name)
        except OSError:
            expected = None
        assert leaf("port", name) == expected


def test_port_other_objects_fail_closed(leaf):
    class Weird:
        def __str__(self):
            raise AssertionError("the C never calls Python code")

    # Python would run __str__; the C answers -1, which only a "*" port pattern allows.
    assert leaf("port", Weird()) == -1
    assert leaf("port", 443.0) == -1
    assert leaf("host_matches", "x:*", "x", -1) is True
    assert leaf("host_matches", "x:443", "x", -1) is False


def test_port_objects_compared_by_type(leaf):
    # PARITY (safe side): Python compares str(port) with the pattern's port; the C compares
    # only an exact int (its digits) or an exact str, and finds anything else unequal.
    assert ref(scopes.host_matches, "x:True", "x", True) is True
    assert leaf("host_matches", "x:True", "x", True) is False
    assert leaf("host_matches", "x:443.0", "x", 443.0) is False
    assert leaf("host_matches", "x:*", "x", True) is True


def test_subclasses_are_read_not_called(leaf):
    class Tricky(str):
        def lower(self):
            raise AssertionError

        def __str__(self):
            raise AssertionError

        def startswith(self, *args):
            raise AssertionError

    assert leaf("path_matches", Tricky("/a"), Tricky("/a/b")) is True
    assert leaf("host_matches", Tricky("x:443"), Tricky("X"), 443) is True
    assert leaf("host_matches", "x:443", "x", Tricky("443")) is False    # str(port) would run __str__
    assert leaf("env_matches", Tricky("A*"), Tricky("AB")) is True
    assert leaf("port", Tricky("443")) == 443


def test_leaf_arguments(leaf):
    with pytest.raises(TypeError):
        leaf("path_matches", "/a")
    with pytest.raises(TypeError):
        leaf("is_ip", "a", "b")
