/* _core_match.h: capimport's scope matching in C, for the native decision core.
 *
 * A port of capimport/scopes.py (path_matches, host_matches, env_matches,
 * program_matches), of fnmatch.fnmatchcase (Python 3.11), of enforcer._is_ip
 * and of hook._port. The Python functions stay the reference:
 * tests/native/test_core_match.py compares every function here with them.
 *
 * Why a port and not a call: the decision runs inside the audit hook, and the
 * Python versions call re, fnmatch and ipaddress, whose module globals any
 * imported code can rebind. Here:
 *
 *   - no Python code is ever called: only the C API on str/int/bytes objects
 *     (their code points or digits are read, no method of theirs is looked up,
 *     so a str subclass is matched by the text it holds, which is also what
 *     the os and socket functions hand to the system) and libc (inet_pton,
 *     getservbyname_r). No audit event is raised.
 *   - matching is on code points (PyUnicode_READ), like re on str.
 *   - there is no global mutable state; every buffer is allocated per call.
 *   - nothing recurses, and matching is O(len(text) * len(pattern)) whatever
 *     the pattern (see cm_run), so a hostile glob cannot blow up the stack
 *     or the time.
 *
 * Return convention of the cmatch_*_matches functions and cmatch_is_ip:
 * 1 = match, 0 = no match, -1 = an exception is set (MemoryError). Wherever
 * the Python reference raises (a malformed pattern that re rejects, a
 * non-str argument, an invalid IPv6 address ...) the answer is 0: the scope
 * grants nothing (fail closed). Where this port cannot reproduce Python
 * exactly it errs on the same side, answering 0 where Python might answer
 * True, never the reverse; each such place is marked "PARITY:" below.
 *
 * The includer has done `#define PY_SSIZE_T_CLEAN` and `#include <Python.h>`
 * (Python.h also defines _GNU_SOURCE, which getservbyname_r needs).
 */
#ifndef CAPIMPORT_CORE_MATCH_H
#define CAPIMPORT_CORE_MATCH_H

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ text views
 *
 * A read-only view of code points: either a str's own storage (never copied)
 * or a UCS4 buffer this file built. PyUnicode_KIND values are the widths in
 * bytes (1, 2, 4), so a view of a substring is data + start * kind.
 */
typedef struct {
    int kind;
    const void *data;
    Py_ssize_t len;
} cmatch_text;

#define CMATCH_CH(t, i) PyUnicode_READ((t)->kind, (t)->data, (i))

/* Beyond Unicode (max 0x10FFFF): a code point no str holds, written where this
 * port does not know which character Python would produce (see cm_lower). */
#define CMATCH_NO_CHAR ((Py_UCS4)0x110000)

static int
cmatch_view(PyObject *s, cmatch_text *t)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) {   /* legacy (wchar_t) strings only exist before 3.12 */
        return -1;
    }
#endif
    t->kind = PyUnicode_KIND(s);
    t->data = PyUnicode_DATA(s);
    t->len = PyUnicode_GET_LENGTH(s);
    return 0;
}

static cmatch_text
cmatch_ucs4(const Py_UCS4 *buf, Py_ssize_t len)
{
    cmatch_text t = {PyUnicode_4BYTE_KIND, buf, len};
    return t;
}

static cmatch_text
cmatch_sub(const cmatch_text *t, Py_ssize_t start, Py_ssize_t end)
{
    cmatch_text s = {t->kind, (const char *)t->data + start * t->kind, end - start};
    return s;
}

static int
cmatch_equal(const cmatch_text *a, const cmatch_text *b)
{
    if (a->len != b->len) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < a->len; i++) {
        if (CMATCH_CH(a, i) != CMATCH_CH(b, i)) {
            return 0;
        }
    }
    return 1;
}

/* t == the ASCII C string s */
static int
cmatch_equal_ascii(const cmatch_text *t, const char *s)
{
    Py_ssize_t n = (Py_ssize_t)strlen(s);
    if (t->len != n) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (CMATCH_CH(t, i) != (Py_UCS4)(unsigned char)s[i]) {
            return 0;
        }
    }
    return 1;
}

/* t[at:].startswith(s) for an ASCII C string s */
static int
cmatch_at_ascii(const cmatch_text *t, Py_ssize_t at, const char *s)
{
    for (Py_ssize_t i = 0; s[i]; i++) {
        if (at + i >= t->len || CMATCH_CH(t, at + i) != (Py_UCS4)(unsigned char)s[i]) {
            return 0;
        }
    }
    return 1;
}

/* str.find(ch, start): the first index >= start holding ch, or -1 */
static Py_ssize_t
cmatch_find(const cmatch_text *t, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end)
{
    for (Py_ssize_t i = start; i < end; i++) {
        if (CMATCH_CH(t, i) == ch) {
            return i;
        }
    }
    return -1;
}

/* scopes.has_glob: any of * ? [ */
static int
cmatch_has_glob(const cmatch_text *t)
{
    for (Py_ssize_t i = 0; i < t->len; i++) {
        Py_UCS4 c = CMATCH_CH(t, i);
        if (c == '*' || c == '?' || c == '[') {
            return 1;
        }
    }
    return 0;
}

/* n items of size bytes each, or NULL with MemoryError (also on overflow) */
static void *
cmatch_alloc(Py_ssize_t n, size_t size)
{
    if (n < 0 || (size_t)n > (size_t)PY_SSIZE_T_MAX / size) {
        PyErr_NoMemory();
        return NULL;
    }
    void *p = PyMem_Malloc(n ? (size_t)n * size : 1);
    if (p == NULL) {
        PyErr_NoMemory();
    }
    return p;
}

/* ------------------------------------------------------------------ the matcher
 *
 * Both kinds of glob are compiled to a "program": a sequence of elements, each
 * matching one character (optionally repeated: star) or asserting something
 * of the next character without consuming it. This is exactly the shape of
 * the regular expressions Python builds for them:
 *
 *   - scopes._path_regex: literals, ".", classes, "*" after one of those,
 *     the lookahead "(?!/)" and the final "(?:/.*)?" (modelled as the two
 *     elements "/" and ".*", with the state before them accepting as well);
 *   - fnmatch.translate: literals, ".", classes, "(?!)" and ".*". Its atomic
 *     groups "(?>.*?FIXED)" accept the same strings as ".*FIXED": FIXED is a
 *     fixed-length run and what follows the group starts with ".*" (or is the
 *     final ".*FIXED\Z"), so if a match uses a later occurrence of FIXED, the
 *     earliest one also leads to a match (the following ".*" absorbs the
 *     difference); the atomic group commits to that earliest one. So only
 *     the language matters, and a set-of-states simulation computes it.
 *
 * Greediness does not change what a fullmatch accepts, so cm_run need not
 * reproduce re's backtracking order.
 */
enum {
    CMATCH_LIT,         /* one given character */
    CMATCH_ANY,         /* any character (re.DOTALL ".") */
    CMATCH_SET,         /* a character class */
    CMATCH_NEVER,       /* "(?!)": matches nothing */
    CMATCH_NOT_SLASH,   /* "(?!/)": zero-width, the next character is not "/" (or the text ends) */
};

typedef struct {
    unsigned char op;
    unsigned char star;     /* repeated 0..n times ("*" after the item) */
    unsigned char negate;   /* CMATCH_SET: "[^...]" */
    Py_UCS4 ch;             /* CMATCH_LIT */
    Py_ssize_t first;       /* CMATCH_SET: its ranges are rng[first : first + count] */
    Py_ssize_t count;
} cmatch_elem;

typedef struct {
    Py_UCS4 lo, hi;
} cmatch_range;

typedef struct {
    cmatch_elem *elem;
    Py_ssize_t n, cap;
    cmatch_range *rng;
    Py_ssize_t nrng, caprng;
    Py_ssize_t accept_alt;  /* a state that also accepts at the end of the text, or -1 */
} cmatch_prog;

static void
cmatch_prog_init(cmatch_prog *p)
{
    memset(p, 0, sizeof(*p));
    p->accept_alt = -1;
}

static void
cmatch_prog_free(cmatch_prog *p)
{
    PyMem_Free(p->elem);
    PyMem_Free(p->rng);
    cmatch_prog_init(p);
}

/* Appends an element; NULL with MemoryError. */
static cmatch_elem *
cmatch_push(cmatch_prog *p, int op)
{
    if (p->n == p->cap) {
        Py_ssize_t cap = p->cap ? p->cap * 2 : 16;
        if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(cmatch_elem)) {
            PyErr_NoMemory();
            return NULL;
        }
        cmatch_elem *e = PyMem_Realloc(p->elem, (size_t)cap * sizeof(cmatch_elem));
        if (e == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        p->elem = e;
        p->cap = cap;
    }
    cmatch_elem *e = &p->elem[p->n++];
    memset(e, 0, sizeof(*e));
    e->op = (unsigned char)op;
    return e;
}

static int
cmatch_push_range(cmatch_prog *p, Py_UCS4 lo, Py_UCS4 hi)
{
    if (p->nrng == p->caprng) {
        Py_ssize_t cap = p->caprng ? p->caprng * 2 : 16;
        if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(cmatch_range)) {
            PyErr_NoMemory();
            return -1;
        }
        cmatch_range *r = PyMem_Realloc(p->rng, (size_t)cap * sizeof(cmatch_range));
        if (r == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        p->rng = r;
        p->caprng = cap;
    }
    p->rng[p->nrng].lo = lo;
    p->rng[p->nrng].hi = hi;
    p->nrng++;
    return 0;
}

static int
cmatch_elem_eats(const cmatch_prog *p, const cmatch_elem *e, Py_UCS4 c)
{
    switch (e->op) {
    case CMATCH_LIT:
        return c == e->ch;
    case CMATCH_ANY:
        return 1;
    case CMATCH_SET: {
        int in = 0;
        for (Py_ssize_t k = e->first; k < e->first + e->count; k++) {
            if (p->rng[k].lo <= c && c <= p->rng[k].hi) {
                in = 1;
                break;
            }
        }
        return in != e->negate;
    }
    default:        /* CMATCH_NEVER; CMATCH_NOT_SLASH consumes nothing */
        return 0;
    }
}

/* Adds state j (elements j.. still to match) to a state list for text position
 * pos, with every state reachable from it without consuming a character:
 * past a starred element (zero repeats) and past a "(?!/)" that holds at pos.
 * These moves only go forward, so a loop does it. seen[] stamps the states
 * already in this list (gen), so each is added once per position.
 * Returns 1 when a state from which acceptance is certain was reached. */
static int
cmatch_add(const cmatch_prog *p, const cmatch_text *t, Py_ssize_t pos, Py_ssize_t j, Py_ssize_t sure,
           Py_ssize_t *list, Py_ssize_t *count, Py_ssize_t *seen, Py_ssize_t gen)
{
    for (;;) {
        if (seen[j] == gen) {
            return 0;
        }
        seen[j] = gen;
        list[(*count)++] = j;
        if (j == p->n) {
            return 0;
        }
        if (j >= sure) {
            return 1;
        }
        const cmatch_elem *e = &p->elem[j];
        if (e->star || (e->op == CMATCH_NOT_SLASH && (pos == t->len || CMATCH_CH(t, pos) != '/'))) {
            j++;
            continue;
        }
        return 0;
    }
}

/* Does the program match the whole text? 1, 0, or -1 (MemoryError).
 *
 * A Thompson simulation: the set of states (0..n; state j = elements before j
 * matched) alive after each character. Each step visits each state at most
 * once (seen[]), so the time is O(len(text) * (n + 1)) and the memory
 * O(n), for any pattern: no backtracking, no recursion. It stops early when
 * no state is left, or when a state is reached from which only ".*"s remain
 * (they take whatever follows: the answer is 1). */
static int
cmatch_run(const cmatch_prog *p, const cmatch_text *t)
{
    Py_ssize_t m = p->n + 1;
    Py_ssize_t sure = p->n;     /* first state of the trailing run of ".*" elements */
    while (sure > 0 && p->elem[sure - 1].op == CMATCH_ANY && p->elem[sure - 1].star) {
        sure--;
    }
    if (sure == p->n) {
        sure = PY_SSIZE_T_MAX;  /* no trailing ".*": no state is sure */
    }
    Py_ssize_t *mem = cmatch_alloc(m, 3 * sizeof(Py_ssize_t));
    if (mem == NULL) {
        return -1;
    }
    Py_ssize_t *cur = mem, *nxt = mem + m, *seen = mem + 2 * m;
    for (Py_ssize_t j = 0; j < m; j++) {
        seen[j] = -1;
    }
    Py_ssize_t ncur = 0, gen = 0;
    int result = cmatch_add(p, t, 0, 0, sure, cur, &ncur, seen, gen);
    for (Py_ssize_t pos = 0; result == 0 && pos < t->len; pos++) {
        Py_UCS4 c = CMATCH_CH(t, pos);
        Py_ssize_t nnxt = 0;
        gen++;
        for (Py_ssize_t k = 0; k < ncur && result == 0; k++) {
            Py_ssize_t j = cur[k];
            if (j < p->n && cmatch_elem_eats(p, &p->elem[j], c)) {
                result = cmatch_add(p, t, pos + 1, p->elem[j].star ? j : j + 1, sure, nxt, &nnxt, seen, gen);
            }
        }
        Py_ssize_t *swap = cur;
        cur = nxt;
        nxt = swap;
        ncur = nnxt;
        if (ncur == 0) {
            break;  /* result is 0 here: nothing is alive */
        }
    }
    if (result == 0 && ncur > 0) {
        result = seen[p->n] == gen || (p->accept_alt >= 0 && seen[p->accept_alt] == gen);
    }
    PyMem_Free(mem);
    return result;
}

/* ------------------------------------------------------------------ reading re syntax
 *
 * Both generators below produce regular-expression text exactly as the Python
 * code does, and this part reads it back the way re's parser (re/_parser.py,
 * 3.11) does. Reading the text rather than building the elements directly is
 * what makes the odd cases come out right: a class "[]" or "[^]" does not end
 * at its own "]" (a "]" first in a class is a literal), so it runs on through
 * the text generated after it, up to the next "]"; or to the end of the text,
 * which re rejects.
 *
 * re reads the text as tokens: a backslash and the character after it, or one
 * character. The generators only ever put a backslash before a backslash or
 * before a punctuation character (re.escape, doubled backslashes), which re
 * reads as that character, in and out of classes; any other escape means this
 * port misread something, and is refused (fail closed).
 */

/* The next token at *pos: 1 (ch, *escaped set), 0 at the end, -1 for an escape
 * that is not a plain literal (also a backslash at the very end). */
static int
cmatch_token(const cmatch_text *r, Py_ssize_t *pos, Py_UCS4 *ch, int *escaped)
{
    if (*pos >= r->len) {
        return 0;
    }
    Py_UCS4 c = CMATCH_CH(r, *pos);
    if (c != '\\') {
        *ch = c;
        *escaped = 0;
        (*pos)++;
        return 1;
    }
    if (*pos + 1 >= r->len) {
        return -1;
    }
    c = CMATCH_CH(r, *pos + 1);
    if (c < 128 && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
        return -1;  /* \d, \1, \x41 ...: never generated */
    }
    *ch = c;
    *escaped = 1;
    *pos += 2;
    return 1;
}

/* A character class, *pos just after its "[", as re/_parser.py reads one:
 * an optional "^"; then items until a "]" that is not the first item; an item
 * is a character or "a-b" (a range, which must not be reversed); a "-" just
 * before the closing "]" is a literal. Returns 1 and sets *e (a CMATCH_SET), 0 if
 * re would reject the class (unterminated, reversed range), -1 on MemoryError.
 * The FutureWarnings re gives for "[[", "--", "&&", "~~", "||" change nothing. */
static int
cmatch_parse_class(cmatch_prog *p, const cmatch_text *r, Py_ssize_t *pos, cmatch_elem *e)
{
    int negate = 0;
    memset(e, 0, sizeof(*e));
    if (*pos < r->len && CMATCH_CH(r, *pos) == '^') {   /* a bare "^" token, not "\^" */
        negate = 1;
        (*pos)++;
    }
    Py_ssize_t first = p->nrng, items = 0;
    for (;;) {
        Py_UCS4 lo, hi;
        int esc, rc = cmatch_token(r, pos, &lo, &esc);
        if (rc <= 0) {
            return 0;   /* unterminated character set, or bad escape */
        }
        if (!esc && lo == ']' && items > 0) {
            break;
        }
        if (*pos < r->len && CMATCH_CH(r, *pos) == '-') {  /* a bare "-" token: a potential range */
            (*pos)++;
            rc = cmatch_token(r, pos, &hi, &esc);
            if (rc <= 0) {
                return 0;
            }
            if (!esc && hi == ']') {    /* "a-]": a and "-", and the class ends */
                if (cmatch_push_range(p, lo, lo) < 0 || cmatch_push_range(p, '-', '-') < 0) {
                    return -1;
                }
                items += 2;
                break;
            }
            if (hi < lo) {
                return 0;   /* re.error: bad character range */
            }
            if (cmatch_push_range(p, lo, hi) < 0) {
                return -1;
            }
        }
        else if (cmatch_push_range(p, lo, lo) < 0) {
            return -1;
        }
        items++;
    }
    e->op = CMATCH_SET;
    e->negate = (unsigned char)negate;
    e->first = first;
    e->count = p->nrng - first;
    return 1;
}

/* ------------------------------------------------------------------ path globs */

/* re.escape (3.11) puts a backslash before exactly these. */
static int
cmatch_re_special(Py_UCS4 c)
{
    return c < 128 && c != 0 && strchr("()[]{}?*+-|^$\\.&~# \t\n\r\v\f", (int)c) != NULL;
}

/* scopes._path_regex(pattern) as text: a new PyMem buffer of *len code points.
 *   "**" -> ".*"   "*" -> "[^/]*"   "?" -> "[^/]"
 *   "[" -> "(?!/)[" body "]", body = the raw text up to the first "]" after
 *          the "[" (find("]", i + 1), so "[]" has an empty body), backslashes
 *          doubled, a leading "!" made "^"; with no such "]", an escaped "["
 *   anything else: re.escape(ch)
 * then trailing "/"s stripped (unless the pattern is "/", whose prefix is
 * empty) and "(?:/.*)?" appended. At most 5 code points per pattern code
 * point ("*"), plus 8. */
static Py_UCS4 *
cmatch_path_regex(const cmatch_text *pat, Py_ssize_t *len)
{
    static const char tail[] = "(?:/.*)?";
    Py_ssize_t n = pat->len;
    if (n > (PY_SSIZE_T_MAX - 16) / 5) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_UCS4 *out = cmatch_alloc(5 * n + 16, sizeof(Py_UCS4));
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t w = 0;
#define CMATCH_PUTS(s) do { for (const char *q_ = (s); *q_; q_++) out[w++] = (Py_UCS4)(unsigned char)*q_; } while (0)
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = CMATCH_CH(pat, i);
        if (ch == '*' && i + 1 < n && CMATCH_CH(pat, i + 1) == '*') {
            CMATCH_PUTS(".*");
            i++;
        }
        else if (ch == '*') {
            CMATCH_PUTS("[^/]*");
        }
        else if (ch == '?') {
            CMATCH_PUTS("[^/]");
        }
        else if (ch == '[') {
            Py_ssize_t end = cmatch_find(pat, ']', i + 1, n);
            if (end < 0) {
                CMATCH_PUTS("\\[");
                continue;
            }
            CMATCH_PUTS("(?!/)[");
            for (Py_ssize_t k = i + 1; k < end; k++) {
                Py_UCS4 b = CMATCH_CH(pat, k);
                if (k == i + 1 && b == '!') {
                    out[w++] = '^';
                }
                else if (b == '\\') {
                    CMATCH_PUTS("\\\\");
                }
                else {
                    out[w++] = b;
                }
            }
            out[w++] = ']';
            i = end;
        }
        else {
            if (cmatch_re_special(ch)) {
                out[w++] = '\\';
            }
            out[w++] = ch;
        }
    }
    if (cmatch_equal_ascii(pat, "/")) {
        w = 0;
    }
    while (w > 0 && out[w - 1] == '/') {
        w--;
    }
    CMATCH_PUTS(tail);
#undef CMATCH_PUTS
    *len = w;
    return out;
}

/* Reads the text of cmatch_path_regex into elements, as re does (see above):
 * 1 compiled, 0 re would raise (no match), -1 MemoryError. Only the shapes
 * the generator emits outside classes are accepted; anything else (which
 * cannot occur) is refused rather than guessed at. */
static int
cmatch_parse_path_regex(cmatch_prog *p, const cmatch_text *r)
{
    Py_ssize_t pos = 0;
    while (pos < r->len) {
        Py_UCS4 c = CMATCH_CH(r, pos);
        cmatch_elem *e;
        if (c == '(') {
            if (cmatch_at_ascii(r, pos, "(?!/)")) {
                if ((e = cmatch_push(p, CMATCH_NOT_SLASH)) == NULL) {
                    return -1;
                }
                pos += 5;
                continue;
            }
            if (cmatch_at_ascii(r, pos, "(?:/.*)?") && pos + 8 == r->len) {
                /* the optional tail: the state before it accepts too */
                p->accept_alt = p->n;
                if ((e = cmatch_push(p, CMATCH_LIT)) == NULL) {
                    return -1;
                }
                e->ch = '/';
                if ((e = cmatch_push(p, CMATCH_ANY)) == NULL) {
                    return -1;
                }
                e->star = 1;
                pos += 8;
                continue;
            }
            return 0;
        }
        if (c == '*') {
            /* repeats the item before it; re rejects "nothing to repeat" and "multiple repeat" */
            if (p->n == 0 || p->elem[p->n - 1].star || p->elem[p->n - 1].op == CMATCH_NOT_SLASH) {
                return 0;
            }
            p->elem[p->n - 1].star = 1;
            pos++;
            continue;
        }
        if (c == ')' || c == '?' || c == '+' || c == '{' || c == '|' || c == '^' || c == '$') {
            return 0;   /* syntax the generator never emits bare */
        }
        if (c == '.') {
            if (cmatch_push(p, CMATCH_ANY) == NULL) {
                return -1;
            }
            pos++;
            continue;
        }
        if (c == '[') {
            cmatch_elem set;
            pos++;
            int rc = cmatch_parse_class(p, r, &pos, &set);
            if (rc <= 0) {
                return rc;
            }
            if ((e = cmatch_push(p, CMATCH_SET)) == NULL) {
                return -1;
            }
            *e = set;
            continue;
        }
        Py_UCS4 ch;
        int esc;
        if (cmatch_token(r, &pos, &ch, &esc) <= 0) {
            return 0;
        }
        if ((e = cmatch_push(p, CMATCH_LIT)) == NULL) {
            return -1;
        }
        e->ch = ch;
    }
    return 1;
}

/* scopes.path_matches: *path* is *pattern* or lies below it; globs: * and ?
 * within a segment, ** across, [...] a class that never matches "/". */
static int
cmatch_path_matches(PyObject *pattern, PyObject *path)
{
    cmatch_text pat, txt;
    if (!PyUnicode_Check(pattern) || !PyUnicode_Check(path)) {
        return 0;   /* Python raises (TypeError) */
    }
    if (cmatch_view(pattern, &pat) < 0 || cmatch_view(path, &txt) < 0) {
        return -1;
    }
    if (!cmatch_has_glob(&pat)) {
        if (cmatch_equal_ascii(&pat, "/")) {
            return txt.len > 0 && CMATCH_CH(&txt, 0) == '/';
        }
        if (cmatch_equal(&txt, &pat)) {
            return 1;
        }
        /* path.startswith(pattern.rstrip("/") + "/") */
        Py_ssize_t stem = pat.len;
        while (stem > 0 && CMATCH_CH(&pat, stem - 1) == '/') {
            stem--;
        }
        if (txt.len <= stem || CMATCH_CH(&txt, stem) != '/') {
            return 0;
        }
        cmatch_text a = cmatch_sub(&pat, 0, stem), b = cmatch_sub(&txt, 0, stem);
        return cmatch_equal(&a, &b);
    }
    Py_ssize_t rlen;
    Py_UCS4 *rbuf = cmatch_path_regex(&pat, &rlen);
    if (rbuf == NULL) {
        return -1;
    }
    cmatch_text r = cmatch_ucs4(rbuf, rlen);
    cmatch_prog prog;
    cmatch_prog_init(&prog);
    int rc = cmatch_parse_path_regex(&prog, &r);
    PyMem_Free(rbuf);
    if (rc == 1) {
        rc = cmatch_run(&prog, &txt);
    }
    cmatch_prog_free(&prog);
    return rc;
}

/* ------------------------------------------------------------------ fnmatch (3.11) */

/* Appends one character of a class to a fnmatch "stuff" buffer, escaped as
 * translate() escapes it: backslash doubled; "-" escaped (inside chunks); and
 * re.sub(r'([&~|])', r'\\\1') on the result. dash: escape "-" too. */
static Py_ssize_t
cmatch_stuff_put(Py_UCS4 *buf, Py_ssize_t w, Py_UCS4 c, int dash)
{
    if (c == '\\' || c == '&' || c == '~' || c == '|' || (dash && c == '-')) {
        buf[w++] = '\\';
    }
    buf[w++] = c;
    return w;
}

/* The class body translate() builds for pat[i:j] (the text between "[" and
 * its "]"), without the tests for empty and "!" that follow. The rule with
 * "-": the body is cut into chunks at the hyphens that make ranges (searched
 * from i+1, or i+2 after "!", and 3 on after each cut: "a-b-c" has the cuts
 * at 1 and 3, "a--b" only at 1); an empty last chunk gives its hyphen to the
 * chunk before; then, from the last pair down, a reversed pair (the previous
 * chunk's last char > this chunk's first) is merged, dropping both chars and
 * the hyphen: an empty range is removed. Each comparison sees original chars
 * (a chunk is changed only by the merge with its left neighbour, after its
 * own merges were decided, and the middle chunks have at least 2 chars, so
 * their first char survives), so the merges are decided first and applied
 * while writing. Every character of pat[i:j] is written at most twice (a
 * cut hyphen once, or twice when it moves into the last chunk), so buf needs
 * room for 2*(j-i). cs/ce: room for j-i+1 chunks; merged: the same.
 * Returns the length written. */
static Py_ssize_t
cmatch_fnmatch_stuff(const cmatch_text *pat, Py_ssize_t i, Py_ssize_t j, Py_UCS4 *buf, Py_ssize_t *cs,
                     Py_ssize_t *ce, unsigned char *merged)
{
    Py_ssize_t w = 0;
    if (cmatch_find(pat, '-', i, j) < 0) {
        for (Py_ssize_t k = i; k < j; k++) {
            w = cmatch_stuff_put(buf, w, CMATCH_CH(pat, k), 0);
        }
        return w;
    }
    Py_ssize_t nch = 0, start = i;
    Py_ssize_t k = (CMATCH_CH(pat, i) == '!') ? i + 2 : i + 1;
    for (;;) {
        Py_ssize_t kk = k < j ? cmatch_find(pat, '-', k, j) : -1;
        if (kk < 0) {
            break;
        }
        cs[nch] = start;
        ce[nch] = kk;
        nch++;
        start = kk + 1;
        k = kk + 3;
    }
    int dash_last = 0;      /* chunks[-1] += '-' */
    if (start < j) {
        cs[nch] = start;
        ce[nch] = j;
        nch++;
    }
    else {
        dash_last = 1;      /* nch >= 1 here: a "-" was found, so a chunk was cut */
    }
    merged[0] = 0;
    for (Py_ssize_t m = 1; m < nch; m++) {
        merged[m] = CMATCH_CH(pat, ce[m - 1] - 1) > CMATCH_CH(pat, cs[m]);
    }
    for (Py_ssize_t m = 0; m < nch; m++) {
        int drop_first = merged[m];
        int drop_last = m + 1 < nch && merged[m + 1];
        if (m > 0 && !merged[m]) {
            buf[w++] = '-';     /* the hyphen of a range */
        }
        for (Py_ssize_t q = cs[m]; q < ce[m]; q++) {
            if ((q == cs[m] && drop_first) || (q == ce[m] - 1 && drop_last)) {
                continue;
            }
            w = cmatch_stuff_put(buf, w, CMATCH_CH(pat, q), 1);
        }
        if (m == nch - 1 && dash_last) {
            w = cmatch_stuff_put(buf, w, '-', 1);
        }
    }
    return w;
}

/* fnmatch.translate(pattern) of Python 3.11, as elements: "*" (runs of them
 * as one) -> ".*", "?" -> ".", "[" with a closing "]" -> a class (the "]"
 * may come first, or after "!"), an unclosed "[" -> literal "[", anything
 * else literal. 1 compiled, 0 re would raise, -1 MemoryError. */
static int
cmatch_compile_fnmatch(cmatch_prog *p, const cmatch_text *pat)
{
    Py_ssize_t n = pat->len;
    if (n > (PY_SSIZE_T_MAX - 8) / 2) {
        PyErr_NoMemory();
        return -1;
    }
    Py_UCS4 *buf = cmatch_alloc(2 * n + 8, sizeof(Py_UCS4));
    Py_ssize_t *cuts = cmatch_alloc(n + 2, 2 * sizeof(Py_ssize_t));
    unsigned char *merged = cmatch_alloc(n + 2, 1);
    int rc = -1;
    if (buf == NULL || cuts == NULL || merged == NULL) {
        goto done;
    }
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 c = CMATCH_CH(pat, i);
        cmatch_elem *e;
        i++;
        if (c == '*') {
            if (p->n == 0 || !(p->elem[p->n - 1].op == CMATCH_ANY && p->elem[p->n - 1].star)) {
                if ((e = cmatch_push(p, CMATCH_ANY)) == NULL) {
                    goto done;
                }
                e->star = 1;
            }
            continue;
        }
        if (c == '?') {
            if (cmatch_push(p, CMATCH_ANY) == NULL) {
                goto done;
            }
            continue;
        }
        if (c == '[') {
            Py_ssize_t j = i;
            if (j < n && CMATCH_CH(pat, j) == '!') {
                j++;
            }
            if (j < n && CMATCH_CH(pat, j) == ']') {
                j++;
            }
            while (j < n && CMATCH_CH(pat, j) != ']') {
                j++;
            }
            if (j >= n) {
                if ((e = cmatch_push(p, CMATCH_LIT)) == NULL) {
                    goto done;
                }
                e->ch = '[';
                continue;
            }
            /* stuff = buf[1:]; buf[0] is kept for the backslash that may go before it,
             * and 2*n + 8 leaves room for the closing "]" */
            Py_ssize_t w = cmatch_fnmatch_stuff(pat, i, j, buf + 1, cuts, cuts + n + 2, merged);
            Py_UCS4 *stuff = buf + 1;
            i = j + 1;
            if (w == 0) {           /* empty range: never match */
                if (cmatch_push(p, CMATCH_NEVER) == NULL) {
                    goto done;
                }
                continue;
            }
            if (w == 1 && stuff[0] == '!') {   /* negated empty range: any character */
                if (cmatch_push(p, CMATCH_ANY) == NULL) {
                    goto done;
                }
                continue;
            }
            if (stuff[0] == '!') {
                stuff[0] = '^';
            }
            else if (stuff[0] == '^' || stuff[0] == '[') {
                stuff = buf;
                stuff[0] = '\\';
                w++;
            }
            stuff[w++] = ']';
            cmatch_text cls = cmatch_ucs4(stuff, w);
            Py_ssize_t pos = 0;
            cmatch_elem set;
            int r = cmatch_parse_class(p, &cls, &pos, &set);
            if (r < 0) {
                goto done;
            }
            if (r == 0 || pos != w) {
                rc = 0;     /* re would reject it, or read it differently: fail closed */
                goto done;
            }
            if ((e = cmatch_push(p, CMATCH_SET)) == NULL) {
                goto done;
            }
            *e = set;
            continue;
        }
        if ((e = cmatch_push(p, CMATCH_LIT)) == NULL) {
            goto done;
        }
        e->ch = c;
    }
    rc = 1;
done:
    PyMem_Free(buf);
    PyMem_Free(cuts);
    PyMem_Free(merged);
    return rc;
}

static int
cmatch_fnmatch_text(const cmatch_text *name, const cmatch_text *pat)
{
    cmatch_prog prog;
    cmatch_prog_init(&prog);
    int rc = cmatch_compile_fnmatch(&prog, pat);
    if (rc == 1) {
        rc = cmatch_run(&prog, name);
    }
    cmatch_prog_free(&prog);
    return rc;
}

/* fnmatch.fnmatchcase(name, pattern) (note the order, as in Python) */
static int
cmatch_fnmatchcase(PyObject *name, PyObject *pattern)
{
    cmatch_text n, p;
    if (!PyUnicode_Check(name) || !PyUnicode_Check(pattern)) {
        return 0;
    }
    if (cmatch_view(name, &n) < 0 || cmatch_view(pattern, &p) < 0) {
        return -1;
    }
    return cmatch_fnmatch_text(&n, &p);
}

/* scopes.env_matches: name == pattern, or pattern is a glob and fnmatchcase. */
static int
cmatch_env_matches(PyObject *pattern, PyObject *name)
{
    cmatch_text n, p;
    if (!PyUnicode_Check(name) || !PyUnicode_Check(pattern)) {
        return 0;
    }
    if (cmatch_view(name, &n) < 0 || cmatch_view(pattern, &p) < 0) {
        return -1;
    }
    if (cmatch_equal(&n, &p)) {
        return 1;
    }
    return cmatch_has_glob(&p) ? cmatch_fnmatch_text(&n, &p) : 0;
}

/* scopes.program_matches: a pattern with "/" is a path (glob: path_matches,
 * else equality); a bare one is fnmatchcase on os.path.basename(executable). */
static int
cmatch_program_matches(PyObject *pattern, PyObject *executable)
{
    cmatch_text e, p;
    if (!PyUnicode_Check(pattern) || !PyUnicode_Check(executable)) {
        return 0;
    }
    if (cmatch_view(pattern, &p) < 0 || cmatch_view(executable, &e) < 0) {
        return -1;
    }
    if (cmatch_find(&p, '/', 0, p.len) >= 0) {
        return cmatch_has_glob(&p) ? cmatch_path_matches(pattern, executable) : cmatch_equal(&e, &p);
    }
    Py_ssize_t slash = e.len;
    while (slash > 0 && CMATCH_CH(&e, slash - 1) != '/') {
        slash--;
    }
    cmatch_text base = cmatch_sub(&e, slash, e.len);
    return cmatch_fnmatch_text(&base, &p);
}

/* ------------------------------------------------------------------ IP addresses
 *
 * ipaddress (3.11) and glibc's inet_pton accept the same texts:
 *   IPv4: exactly 4 decimal octets of ASCII digits, at most 3 digits, no
 *         leading zero (ipaddress since bpo-36384, "as strict as glibc"),
 *         each <= 255;
 *   IPv6: hextets of 1-4 hex digits, at most one "::" standing for at least
 *         one zero hextet, an optional IPv4 tail in the last 32 bits.
 * (The tests check this on adversarial alphabets.) A text with a NUL, a
 * non-ASCII character, or longer than any valid address (45 characters:
 * six 4-digit hextets and a 15-character IPv4 tail) is rejected before
 * inet_pton sees it: both sides reject those, and inet_pton would stop at a
 * NUL. The "%zone" suffix is split off by the callers, as in Python.
 */
static int
cmatch_ascii_addr(const cmatch_text *t, char *buf, size_t size)
{
    if (t->len < 1 || (size_t)t->len >= size) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < t->len; i++) {
        Py_UCS4 c = CMATCH_CH(t, i);
        if (c == 0 || c >= 128) {
            return 0;
        }
        buf[i] = (char)c;
    }
    buf[t->len] = '\0';
    return 1;
}

/* ipaddress.IPv6Address(text) succeeds (text holds no "%"); the address in out */
static int
cmatch_ip6(const cmatch_text *t, unsigned char out[16])
{
    char buf[64];
    return cmatch_ascii_addr(t, buf, sizeof buf) && inet_pton(AF_INET6, buf, out) == 1;
}

static int
cmatch_ip4(const cmatch_text *t)
{
    char buf[64];
    unsigned char out[4];
    return cmatch_ascii_addr(t, buf, sizeof buf) && inet_pton(AF_INET, buf, out) == 1;
}

/* enforcer._is_ip: ipaddress.ip_address(host.split("%")[0]) succeeds */
static int
cmatch_is_ip(PyObject *host)
{
    cmatch_text t;
    unsigned char a6[16];
    if (!PyUnicode_Check(host)) {
        return 0;   /* Python raises (AttributeError) */
    }
    if (cmatch_view(host, &t) < 0) {
        return -1;
    }
    Py_ssize_t pct = cmatch_find(&t, '%', 0, t.len);
    cmatch_text h = cmatch_sub(&t, 0, pct < 0 ? t.len : pct);
    return cmatch_ip4(&h) || cmatch_ip6(&h, a6);
}

/* ------------------------------------------------------------------ str.lower() for host names
 *
 * Python's str.lower() maps each character to its full lowercase mapping,
 * which is Py_UNICODE_TOLOWER (the simple mapping) for every character but
 * U+0130 (capital I with dot, -> "i" U+0307; the tests check every code
 * point), and gives U+03A3 (capital sigma) a context: final sigma U+03C2
 * when a cased letter comes before it and none after it, skipping
 * "case-ignorable" characters both ways, else U+03C3. The C API has no
 * public test for case-ignorable (nor for "cased" as Unicode defines it),
 * so the context is decided only when the characters it looks at are known
 * here (cmatch_case_class: ASCII, the Latin-1 letters, U+0130, the basic
 * Greek letters, the combining marks U+0300-U+036F; the tests check each
 * against str.lower()). PARITY: otherwise the sigma becomes CMATCH_NO_CHAR,
 * which equals no character of a pattern: such a host may fail to match a
 * pattern that names it with that sigma (Python True, C 0), never the
 * reverse. (Σ next to other scripts in a host name: IDNA names reach the
 * hook as "xn--" ASCII, so this is rare.)
 */
enum { CMATCH_OTHER, CMATCH_CASED, CMATCH_IGNORABLE, CMATCH_UNKNOWN };

static int
cmatch_case_class(Py_UCS4 c)
{
    if (c < 128) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            return CMATCH_CASED;
        }
        return (c == '\'' || c == '.' || c == ':' || c == '^' || c == '`') ? CMATCH_IGNORABLE : CMATCH_OTHER;
    }
    if ((c >= 0xC0 && c <= 0xFF && c != 0xD7 && c != 0xF7)     /* Latin-1 letters */
            || c == 0x130                                       /* capital I with dot */
            || (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)         /* Greek capitals */
            || (c >= 0x3AC && c <= 0x3CE)) {                    /* Greek small letters */
        return CMATCH_CASED;
    }
    if (c >= 0x300 && c <= 0x36F) {     /* combining diacritical marks (Mn; "i" U+0307 is lower("İ")) */
        return CMATCH_IGNORABLE;
    }
    return CMATCH_UNKNOWN;
}

/* What str.lower() makes of the capital sigma at t[i] (CPython's handle_capital_sigma). */
static Py_UCS4
cmatch_sigma(const cmatch_text *t, Py_ssize_t i)
{
    Py_ssize_t j;
    int k = CMATCH_OTHER;
    for (j = i - 1; j >= 0; j--) {
        k = cmatch_case_class(CMATCH_CH(t, j));
        if (k == CMATCH_UNKNOWN) {
            return CMATCH_NO_CHAR;
        }
        if (k != CMATCH_IGNORABLE) {
            break;
        }
    }
    int final = j >= 0 && k == CMATCH_CASED;
    if (final && i + 1 < t->len) {
        for (j = i + 1; j < t->len; j++) {
            k = cmatch_case_class(CMATCH_CH(t, j));
            if (k == CMATCH_UNKNOWN) {
                return CMATCH_NO_CHAR;
            }
            if (k != CMATCH_IGNORABLE) {
                break;
            }
        }
        final = j == t->len || k != CMATCH_CASED;
    }
    return final ? 0x3C2 : 0x3C3;
}

/* str.lower() of t into out (room for 2 * t->len); returns the length.
 * Each sigma's scans stop at the nearest non-ignorable character (another
 * sigma is one), so the work stays linear in the length. */
static Py_ssize_t
cmatch_lower(const cmatch_text *t, Py_UCS4 *out)
{
    Py_ssize_t w = 0;
    for (Py_ssize_t i = 0; i < t->len; i++) {
        Py_UCS4 c = CMATCH_CH(t, i);
        if (c < 128) {
            out[w++] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        }
        else if (c == 0x130) {
            out[w++] = 'i';
            out[w++] = 0x307;
        }
        else if (c == 0x3A3) {
            out[w++] = cmatch_sigma(t, i);
        }
        else {
            out[w++] = Py_UNICODE_TOLOWER(c);
        }
    }
    return w;
}

/* s.lower() as a str, or None where a sigma's context is unknown (tests). */
static PyObject *
cmatch_lower_str(PyObject *s)
{
    cmatch_text t;
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "lower: a str is needed");
        return NULL;
    }
    if (cmatch_view(s, &t) < 0) {
        return NULL;
    }
    if (t.len > PY_SSIZE_T_MAX / 2) {
        return PyErr_NoMemory();
    }
    Py_UCS4 *buf = cmatch_alloc(2 * t.len + 1, sizeof(Py_UCS4));
    if (buf == NULL) {
        return NULL;
    }
    Py_ssize_t n = cmatch_lower(&t, buf);
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (buf[i] == CMATCH_NO_CHAR) {
            out = Py_None;
            Py_INCREF(out);
            break;
        }
    }
    if (out == NULL) {
        out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, n);
    }
    PyMem_Free(buf);
    return out;
}

/* ------------------------------------------------------------------ hosts */

/* str(port) == text, for the port of a host_matches call: 1, 0, -1.
 * An exact int is compared by its decimal text; an exact str as itself.
 * PARITY: any other object is unequal, where Python compares str(port), which
 * runs the object's own __str__ (bool gives "True"/"False", which no
 * normalised pattern port is; an int or str subclass may say anything). */
static int
cmatch_port_text_equal(PyObject *port, const cmatch_text *text)
{
    if (PyUnicode_CheckExact(port)) {
        cmatch_text t;
        if (cmatch_view(port, &t) < 0) {
            return -1;
        }
        return cmatch_equal(&t, text);
    }
    if (!PyLong_CheckExact(port)) {
        return 0;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(port, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!overflow) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", v);
        return cmatch_equal_ascii(text, buf);
    }
    /* |port| >= 2**63: equal only if text is its canonical decimal form, which
     * int() then reads back exactly. int() and str() both refuse more digits
     * than sys.get_int_max_str_digits(): then str(port) raises in Python,
     * which is "no match" too. */
    Py_ssize_t d = (text->len > 0 && CMATCH_CH(text, 0) == '-') ? 1 : 0;
    if (text->len - d < 19 || CMATCH_CH(text, d) == '0') {
        return 0;
    }
    for (Py_ssize_t i = d; i < text->len; i++) {
        Py_UCS4 c = CMATCH_CH(text, i);
        if (c < '0' || c > '9') {
            return 0;
        }
    }
    PyObject *s = PyUnicode_FromKindAndData(text->kind, text->data, text->len);
    PyObject *n = s ? PyLong_FromUnicodeObject(s, 10) : NULL;
    Py_XDECREF(s);
    if (n == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    int eq = PyObject_RichCompareBool(n, port, Py_EQ);   /* two exact ints: no Python code */
    Py_DECREF(n);
    return eq;
}

/* scopes.host_matches(pattern, host, port): pattern is a normalised
 * "host:port" ("[v6]:port", "*.domain:port", "*:*" ...), port an int or None
 * (None: a lookup without a port, which any port pattern allows). */
static int
cmatch_host_matches(PyObject *pattern, PyObject *host, PyObject *port)
{
    cmatch_text pat, h;
    if (!PyUnicode_Check(pattern) || !PyUnicode_Check(host)) {
        return 0;   /* Python raises (AttributeError), or answers False first */
    }
    if (cmatch_view(pattern, &pat) < 0 || cmatch_view(host, &h) < 0) {
        return -1;
    }
    /* split_host_port(pattern); where it raises ScopeError: 0 */
    cmatch_text p_host, p_port;
    int any_port;
    if (pat.len > 0 && CMATCH_CH(&pat, 0) == '[') {
        Py_ssize_t end = cmatch_find(&pat, ']', 0, pat.len);
        if (end < 0) {
            return 0;
        }
        if (end + 1 < pat.len && CMATCH_CH(&pat, end + 1) != ':') {
            return 0;
        }
        p_host = cmatch_sub(&pat, 1, end);
        p_port = cmatch_sub(&pat, end + 1 < pat.len ? end + 2 : pat.len, pat.len);
        any_port = p_port.len == 0;     /* rest[1:] or "*" */
    }
    else {
        Py_ssize_t colons = 0, first = -1;
        for (Py_ssize_t i = 0; i < pat.len; i++) {
            if (CMATCH_CH(&pat, i) == ':') {
                colons++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        if (colons > 1) {
            p_host = pat;
            p_port = cmatch_sub(&pat, 0, 0);
            any_port = 1;
        }
        else {
            p_host = cmatch_sub(&pat, 0, first < 0 ? pat.len : first);
            p_port = cmatch_sub(&pat, first < 0 ? pat.len : first + 1, pat.len);
            any_port = p_port.len == 0;     /* port or "*" */
        }
    }
    if (!any_port && cmatch_equal_ascii(&p_port, "*")) {
        any_port = 1;
    }
    if (!any_port && port != Py_None) {
        int eq = cmatch_port_text_equal(port, &p_port);
        if (eq <= 0) {
            return eq;
        }
    }
    /* host.lower().rstrip("."), then [v6] unbracketed */
    if (h.len > PY_SSIZE_T_MAX / 2) {
        PyErr_NoMemory();
        return -1;
    }
    Py_UCS4 *buf = cmatch_alloc(2 * h.len + 1, sizeof(Py_UCS4));
    if (buf == NULL) {
        return -1;
    }
    Py_ssize_t n = cmatch_lower(&h, buf);
    while (n > 0 && buf[n - 1] == '.') {
        n--;
    }
    cmatch_text low = cmatch_ucs4(buf, n);
    if (n >= 2 && buf[0] == '[' && buf[n - 1] == ']') {
        low = cmatch_sub(&low, 1, n - 1);
    }
    int rc;
    if (cmatch_equal_ascii(&p_host, "*")) {
        rc = 1;
    }
    else if (cmatch_at_ascii(&p_host, 0, "*.")) {
        /* host.endswith(p_host[1:]) and len(host) > len(p_host) - 1: a strict subdomain */
        cmatch_text suffix = cmatch_sub(&p_host, 1, p_host.len);
        if (low.len > suffix.len) {
            cmatch_text tail = cmatch_sub(&low, low.len - suffix.len, low.len);
            rc = cmatch_equal(&tail, &suffix);
        }
        else {
            rc = 0;
        }
    }
    else if (cmatch_find(&p_host, ':', 0, p_host.len) >= 0 && cmatch_find(&low, ':', 0, low.len) >= 0) {
        /* IPv6Address(p_host) == IPv6Address(host.split("%")[0]); a "%zone" in
         * p_host either does not parse or gives a scope the host side lacks,
         * so it never compares equal. */
        unsigned char a[16], b[16];
        Py_ssize_t pct = cmatch_find(&low, '%', 0, low.len);
        cmatch_text addr = cmatch_sub(&low, 0, pct < 0 ? low.len : pct);
        rc = cmatch_find(&p_host, '%', 0, p_host.len) < 0 && cmatch_ip6(&p_host, a) && cmatch_ip6(&addr, b)
             && memcmp(a, b, 16) == 0;
    }
    else {
        rc = cmatch_equal(&low, &p_host);
    }
    PyMem_Free(buf);
    return rc;
}

/* ------------------------------------------------------------------ ports */

/* _socket.getservbyname(name) (proto None) from UTF-8 text: the port, or
 * None when there is no such service (Python: OSError, which _port turns into
 * None). getservbyname_r, not getservbyname: the latter returns a static
 * buffer that another thread's socket.getservbyname (which runs without the
 * GIL) may be overwriting. */
static PyObject *
cmatch_service_port(const char *name)
{
#if defined(__linux__) || defined(__GLIBC__)
    struct servent entry, *found = NULL;
    size_t size = 1024;
    for (;;) {
        char *buf = PyMem_Malloc(size);
        if (buf == NULL) {
            return PyErr_NoMemory();
        }
        int err = getservbyname_r(name, NULL, &entry, buf, size, &found);
        if (err == 0 && found != NULL) {
            int port = ntohs((unsigned short)found->s_port);
            PyMem_Free(buf);
            return PyLong_FromLong(port);
        }
        PyMem_Free(buf);
        /* PARITY: an entry larger than 1 MiB is "not found" here (glibc's
         * getservbyname would grow its buffer without bound). */
        if (err != ERANGE || size >= (1u << 20)) {
            Py_RETURN_NONE;
        }
        size *= 2;
    }
#else
    struct servent *found = getservbyname(name, NULL);
    if (found == NULL) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(ntohs((unsigned short)found->s_port));
#endif
}

/* hook._port on a str: int(text) for digits, else the service's port, else None. */
static PyObject *
cmatch_port_of_text(PyObject *text)
{
    cmatch_text t;
    if (cmatch_view(text, &t) < 0) {
        return NULL;
    }
    int digits = t.len > 0;
    for (Py_ssize_t i = 0; i < t.len && digits; i++) {
        digits = Py_UNICODE_ISDIGIT(CMATCH_CH(&t, i));      /* str.isdigit: any Unicode digit */
    }
    if (digits) {
        /* int(text): reads Unicode decimal digits, and raises ValueError like
         * Python for digits that are not decimal ("²") or too many digits. */
        return PyLong_FromUnicodeObject(text, 10);
    }
    /* getservbyname's "s" argument: UTF-8 (UnicodeEncodeError for a lone
     * surrogate) without NUL (ValueError): both raise in Python too. */
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (utf8 == NULL) {
        return NULL;
    }
    if ((Py_ssize_t)strlen(utf8) != size) {
        PyErr_SetString(PyExc_ValueError, "embedded null character");
        return NULL;
    }
    return cmatch_service_port(utf8);
}

/* hook._port(port): None -> None; bytes -> decoded (ASCII, "replace") then as
 * str; int (bool and subclasses too) -> itself; str -> int(text) if
 * text.isdigit(), else getservbyname(text), else None. A new reference, or
 * NULL with the exception Python raises (ValueError for "²" or a NUL,
 * UnicodeEncodeError for a lone surrogate).
 * PARITY: a str or bytes subclass is read as the text it holds, where Python
 * calls its __str__ / decode (the socket module also passes the held text to
 * the system). Any other object gives -1, a port that no pattern port but
 * "*" names, where Python would call its __str__ (and mostly get None, "any
 * port"): stricter than Python, never looser. */
static PyObject *
cmatch_port(PyObject *port)
{
    if (port == Py_None) {
        Py_RETURN_NONE;
    }
    if (PyBytes_Check(port)) {
        PyObject *text = PyUnicode_DecodeASCII(PyBytes_AS_STRING(port), PyBytes_GET_SIZE(port), "replace");
        if (text == NULL) {
            return NULL;
        }
        PyObject *out = cmatch_port_of_text(text);
        Py_DECREF(text);
        return out;
    }
    if (PyLong_Check(port)) {
        Py_INCREF(port);
        return port;
    }
    if (PyUnicode_Check(port)) {
        return cmatch_port_of_text(port);
    }
    return PyLong_FromLong(-1);
}

/* ------------------------------------------------------------------ test entry */

static PyObject *
cmatch_bool(int rc)
{
    if (rc < 0) {
        return NULL;
    }
    return PyBool_FromLong(rc);
}

/* _leaf(name, *args) for the functions of this file: *handled = 1 when name is
 * one of them. Returns a new reference, or NULL with an exception set. */
static PyObject *
cmatch_leaf(const char *name, PyObject *args, int *handled)
{
    static const struct {
        const char *name;
        int nargs;
    } leaves[] = {
        {"path_matches", 2}, {"host_matches", 3}, {"env_matches", 2}, {"program_matches", 2},
        {"fnmatchcase", 2}, {"is_ip", 1}, {"port", 1}, {"lower", 1},
    };
    int which = -1;
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        if (strcmp(name, leaves[i].name) == 0) {
            which = (int)i;
            break;
        }
    }
    *handled = which >= 0;
    if (which < 0) {
        return NULL;
    }
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != leaves[which].nargs) {
        PyErr_Format(PyExc_TypeError, "_leaf %s takes %d arguments", name, leaves[which].nargs);
        return NULL;
    }
    PyObject *a = PyTuple_GET_ITEM(args, 0);
    PyObject *b = leaves[which].nargs > 1 ? PyTuple_GET_ITEM(args, 1) : NULL;
    switch (which) {
    case 0:
        return cmatch_bool(cmatch_path_matches(a, b));
    case 1:
        return cmatch_bool(cmatch_host_matches(a, b, PyTuple_GET_ITEM(args, 2)));
    case 2:
        return cmatch_bool(cmatch_env_matches(a, b));
    case 3:
        return cmatch_bool(cmatch_program_matches(a, b));
    case 4:
        return cmatch_bool(cmatch_fnmatchcase(a, b));
    case 5:
        return cmatch_bool(cmatch_is_ip(a));
    case 6:
        return cmatch_port(a);
    default:
        return cmatch_lower_str(a);
    }
}

#endif /* CAPIMPORT_CORE_MATCH_H */
