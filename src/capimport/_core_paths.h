/* capimport._core: the path functions of the native decision core.
 *
 * Exact ports of the Python functions that turn an audit event's argument
 * into the path (or program) a scope is matched against:
 *
 *   cpaths_normpath       posixpath.normpath                 (CPython 3.11)
 *   cpaths_abspath        posixpath.abspath
 *   cpaths_realpath       posixpath.realpath(strict=False)   (_joinrealpath)
 *   cpaths_resolve_path   capimport.scopes.resolve_path(path)       (cwd=None)
 *   cpaths_fd_path        capimport.hook._fd_path
 *   cpaths_glob_target    capimport.hook.glob_target         (str pattern)
 *   cpaths_which          shutil.which(name, path=path)      (POSIX, 3.11)
 *   cpaths_program_target capimport.hook.program_target      (str program)
 *   cpaths_sqlite_targets capimport.hook.sqlite_targets      (+ _percent_decode)
 *   cpaths_environ_file   hook._ENVIRON_FILE.match           (ENVIRON_FILE_PATTERN)
 *   cpaths_memory_file    tamper.MEMORY_FILE.match           (MEMORY_FILE_PATTERN)
 *   cpaths_leaf           the test-only dispatcher behind _core._leaf
 *
 * Why C, and the rules this file keeps. These run inside the audit hook, on
 * behalf of code that is being confined. The Python versions call os.lstat,
 * posixpath.join, shutil.which... which that code can replace, and which raise
 * audit events of their own. So here:
 *   - no Python code is ever called: only the C API on exact str / bytes / int
 *     (and a private dict and set keyed by exact str, whose hashing and
 *     comparison are C), plus libc calls (lstat, stat, readlink, getcwd,
 *     access, confstr, getenv), which raise no audit events;
 *   - no mutable global state: everything lives in the call's locals (the few
 *     static arrays are const);
 *   - no fixed-size path buffers: every path buffer grows (PyMem) as needed;
 *   - every function returns a new reference, or NULL with an exception set
 *     (the caller treats any exception as "deny");
 *   - the GIL is held throughout, syscalls included: nothing here waits on
 *     another thread, and no other Python code runs in the middle of a
 *     decision (a cwd or os.environ change lands before or after it).
 *
 * Text model. Python does this work on str and encodes with os.fsencode at
 * each syscall. A port that worked on bytes alone and decoded at the end would
 * not be exact: fsencode is not injective ("\udcc3\udca9" and "\u00e9" both
 * encode to b"\xc3\xa9"), and Python's answer keeps the caller's spelling.
 * So the string work is done on the str text (UCS4 arrays), and realpath, the
 * one function that makes a syscall per component, keeps the encoded bytes of
 * the same path alongside, edited in lockstep (cpaths__dpath), so no component
 * is ever encoded twice. Lockstep editing at '/' is sound because the
 * filesystem encoding encodes character by character and the byte 0x2F only
 * ever comes from '/' (true of UTF-8 with surrogateescape, Python's choice on
 * Linux, and of every ASCII-compatible locale encoding); cpaths__aligned
 * checks it and raises ValueError if it does not hold.
 *
 * Known, deliberate differences from the Python references (each errs on the
 * side of an exception, i.e. "deny", or of the true answer):
 *   - realpath walks symlink chains with a heap stack: a chain deep enough to
 *     hit Python's recursion limit (RecursionError there) resolves here.
 *   - readlink reads the whole link target; os.readlink stops at MAXPATHLEN
 *     (4096) bytes, a length Linux does not let symlink(2) create.
 *   - shutil.which stats a candidate twice (exists, then isdir) around
 *     access(2); here one stat(2) serves both (differs only under a race).
 *   - which() with no explicit path reads PATH with getenv(3), the C
 *     environment; shutil.which reads os.environ. They differ only after
 *     os.putenv/os.unsetenv (or C code) changed the C environment behind
 *     os.environ's back.
 */
#ifndef CAPIMPORT_CORE_PATHS_H
#define CAPIMPORT_CORE_PATHS_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Every function is static; an includer that uses only some of them should
 * not get -Wunused-function warnings for the rest. */
#if defined(__GNUC__) || defined(__clang__)
#  define CPATHS_FN static __attribute__((unused))
#else
#  define CPATHS_FN static
#endif

static const Py_UCS4 cpaths__SLASH[1] = {'/'};
static const Py_UCS4 cpaths__DOTDOT[2] = {'.', '.'};


/* ======================================================================== buffers */

/* Growable buffers: str text as UCS4, and encoded bytes (always NUL-terminated,
 * so that they can be handed to syscalls as they are). Zero-initialise, free
 * with PyMem_Free(buf.p). */
typedef struct { Py_UCS4 *p; Py_ssize_t len, cap; } cpaths__ubuf;
typedef struct { char *p; Py_ssize_t len, cap; } cpaths__bbuf;

/* The capacity needed for `extra` more items: 0 when `cap` suffices, 1 with
 * *newcap set when the buffer must grow, -1 (MemoryError) on overflow. */
CPATHS_FN int
cpaths__capacity(Py_ssize_t len, Py_ssize_t extra, Py_ssize_t cap, size_t itemsize,
                 Py_ssize_t *newcap)
{
    Py_ssize_t limit = PY_SSIZE_T_MAX / (Py_ssize_t)itemsize;
    if (extra < 0 || len > limit - extra) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = len + extra;
    if (need <= cap) {
        return 0;
    }
    Py_ssize_t grown = cap > 0 ? cap : 64;
    while (grown < need) {
        grown = grown > limit / 2 ? limit : grown * 2;
    }
    *newcap = grown;
    return 1;
}

CPATHS_FN int
cpaths__ubuf_reserve(cpaths__ubuf *b, Py_ssize_t extra)
{
    Py_ssize_t cap;
    int r = cpaths__capacity(b->len, extra, b->cap, sizeof(Py_UCS4), &cap);
    if (r <= 0) {
        return r;
    }
    Py_UCS4 *p = PyMem_Realloc(b->p, (size_t)cap * sizeof(Py_UCS4));
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

CPATHS_FN int
cpaths__ubuf_append(cpaths__ubuf *b, const Py_UCS4 *s, Py_ssize_t n)
{
    if (n == 0) {
        return 0;   /* s may be NULL for an empty text */
    }
    if (cpaths__ubuf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->p + b->len, s, (size_t)n * sizeof(Py_UCS4));
    b->len += n;
    return 0;
}

/* posixpath.join(b, s), in place: s replaces b when absolute, else a '/' goes
 * between them unless b is empty or already ends with one (so an empty s
 * leaves a trailing '/', as Python's join does). */
CPATHS_FN int
cpaths__ubuf_join(cpaths__ubuf *b, const Py_UCS4 *s, Py_ssize_t n)
{
    if (n > 0 && s[0] == '/') {
        b->len = 0;
    }
    else if (b->len > 0 && b->p[b->len - 1] != '/') {
        if (cpaths__ubuf_append(b, cpaths__SLASH, 1) < 0) {
            return -1;
        }
    }
    return cpaths__ubuf_append(b, s, n);
}

CPATHS_FN int
cpaths__bbuf_append(cpaths__bbuf *b, const char *s, Py_ssize_t n)
{
    Py_ssize_t cap;
    if (n >= PY_SSIZE_T_MAX) {
        PyErr_NoMemory();
        return -1;
    }
    /* one more byte than asked for: the terminating NUL */
    int r = cpaths__capacity(b->len, n + 1, b->cap, 1, &cap);
    if (r < 0) {
        return -1;
    }
    if (r > 0) {
        char *p = PyMem_Realloc(b->p, (size_t)cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n > 0) {
        memcpy(b->p + b->len, s, (size_t)n);
    }
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

CPATHS_FN void
cpaths__bbuf_truncate(cpaths__bbuf *b, Py_ssize_t len)
{
    b->len = len;
    if (b->p != NULL) {
        b->p[len] = '\0';
    }
}

/* A new str from UCS4 text (PyUnicode_FromKindAndData picks the narrowest
 * representation, so the result is an ordinary, canonical str). An empty text
 * may have no buffer yet: a dummy non-NULL pointer is passed for it. */
CPATHS_FN PyObject *
cpaths__str(const Py_UCS4 *p, Py_ssize_t n)
{
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, n > 0 ? p : cpaths__SLASH, n);
}


/* ======================================================================== small helpers */

CPATHS_FN int
cpaths__check_str(PyObject *o, const char *what)
{
    if (!PyUnicode_CheckExact(o)) {
        /* Only the type's name is read: no __repr__ or __str__ of the object runs. */
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    /* before 3.12 a str made by the legacy Py_UNICODE API may not be "ready"
       (its characters not yet in the canonical form PyUnicode_READ reads) */
    if (PyUnicode_READY(o) < 0) {
        return -1;
    }
#endif
    return 0;
}

/* s.startswith(c) / s.endswith(c) for one ASCII character. */
CPATHS_FN int
cpaths__starts(PyObject *s, Py_UCS4 c)
{
    return PyUnicode_GET_LENGTH(s) > 0 && PyUnicode_READ_CHAR(s, 0) == c;
}

CPATHS_FN int
cpaths__ends(PyObject *s, Py_UCS4 c)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    return n > 0 && PyUnicode_READ_CHAR(s, n - 1) == c;
}

/* posixpath.join(a, b) for two str. */
CPATHS_FN PyObject *
cpaths__str_join(PyObject *a, PyObject *b)
{
    if (cpaths__starts(b, '/')) {
        Py_INCREF(b);
        return b;
    }
    if (PyUnicode_GET_LENGTH(a) == 0 || cpaths__ends(a, '/')) {
        return PyUnicode_Concat(a, b);
    }
    PyObject *sep = PyUnicode_FromOrdinal('/');
    if (sep == NULL) {
        return NULL;
    }
    PyObject *head = PyUnicode_Concat(a, sep);
    Py_DECREF(sep);
    if (head == NULL) {
        return NULL;
    }
    PyObject *joined = PyUnicode_Concat(head, b);
    Py_DECREF(head);
    return joined;
}

/* os.fsencode(s) for a stat-like check that must answer False, not raise,
 * when Python's call would raise ValueError (genericpath.exists/isdir catch
 * ValueError: an unencodable character -- UnicodeEncodeError is a ValueError --
 * or an embedded NUL). Returns a new bytes; NULL with no exception for "False";
 * NULL with an exception for any other error (memory). */
CPATHS_FN PyObject *
cpaths__encode_or_false(PyObject *s)
{
    PyObject *b = PyUnicode_EncodeFSDefault(s);
    if (b == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
        }
        return NULL;
    }
    if ((size_t)PyBytes_GET_SIZE(b) != strlen(PyBytes_AS_STRING(b))) {
        Py_DECREF(b);   /* embedded NUL: os.stat would raise ValueError */
        return NULL;
    }
    return b;
}

/* os.path.isdir(s): 1, 0, or -1 with an exception (memory only). */
CPATHS_FN int
cpaths__isdir(PyObject *s)
{
    PyObject *b = cpaths__encode_or_false(s);
    if (b == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    struct stat st;
    int r = stat(PyBytes_AS_STRING(b), &st) == 0 && S_ISDIR(st.st_mode);
    Py_DECREF(b);
    return r;
}

/* os.path.dirname(s) for a str. */
CPATHS_FN PyObject *
cpaths__dirname(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    Py_ssize_t i = n;   /* i = s.rfind('/') + 1 */
    while (i > 0 && PyUnicode_READ_CHAR(s, i - 1) != '/') {
        i--;
    }
    /* head = s[:i]; stripped of trailing '/' unless it is all slashes */
    Py_ssize_t k = i;
    while (k > 0 && PyUnicode_READ_CHAR(s, k - 1) == '/') {
        k--;
    }
    return PyUnicode_Substring(s, 0, k > 0 ? k : i);
}

/* os.getcwd(): getcwd(2) into a growing buffer, decoded as Python decodes it. */
CPATHS_FN PyObject *
cpaths__getcwd(void)
{
    char stackbuf[1024];
    char *buf = stackbuf, *heap = NULL;
    size_t size = sizeof(stackbuf);
    PyObject *result = NULL;
    while (getcwd(buf, size) == NULL) {
        if (errno != ERANGE) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto done;
        }
        if (size > (size_t)PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            goto done;
        }
        size *= 2;
        char *grown = PyMem_Realloc(heap, size);
        if (grown == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        heap = buf = grown;
    }
    result = PyUnicode_DecodeFSDefault(buf);
done:
    PyMem_Free(heap);
    return result;
}

/* readlink(2) of `path`, the whole target however long it is, as bytes.
 * Returns a new bytes; or NULL with *err set to the errno and NO exception
 * when the syscall failed (callers differ on whether that is an error);
 * or NULL with *err = 0 and an exception set. */
CPATHS_FN PyObject *
cpaths__readlink(const char *path, int *err)
{
    char stackbuf[1024];
    char *buf = stackbuf, *heap = NULL;
    size_t size = sizeof(stackbuf);
    PyObject *result = NULL;
    *err = 0;
    for (;;) {
        ssize_t n = readlink(path, buf, size);
        if (n < 0) {
            *err = errno != 0 ? errno : EIO;
            break;
        }
        if ((size_t)n < size) {
            result = PyBytes_FromStringAndSize(buf, (Py_ssize_t)n);
            break;
        }
        /* A full buffer may mean a truncated target: grow and read again. */
        if (size > (size_t)PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            break;
        }
        size *= 2;
        char *grown = PyMem_Realloc(heap, size);
        if (grown == NULL) {
            PyErr_NoMemory();
            break;
        }
        heap = buf = grown;
    }
    PyMem_Free(heap);
    return result;
}

/* The lockstep invariant (see the top of the file): the text and its encoding
 * hold the same number of separators. */
CPATHS_FN int
cpaths__aligned(const Py_UCS4 *u, Py_ssize_t ulen, const char *b, Py_ssize_t blen)
{
    Py_ssize_t nu = 0, nb = 0;
    for (Py_ssize_t i = 0; i < ulen; i++) {
        nu += u[i] == '/';
    }
    for (Py_ssize_t i = 0; i < blen; i++) {
        nb += b[i] == '/';
    }
    if (nu != nb) {
        PyErr_SetString(PyExc_ValueError,
                        "path: the filesystem encoding does not map '/' (only) to the byte 0x2f");
        return -1;
    }
    return 0;
}


/* ======================================================================== normpath, abspath */

/* posixpath.normpath on UCS4 text; a new str.
 *
 * A port of 3.11's pure-Python normpath (the C _path_normpath 3.11 uses gives
 * the same results, embedded NULs included). Components are copied into `out`
 * after two reserved slots, where the one or two kept leading slashes go;
 * a popped component is removed by scanning back to its '/', so each
 * character is copied and removed at most once: linear time. */
CPATHS_FN PyObject *
cpaths__normpath_ucs4(const Py_UCS4 *p, Py_ssize_t n)
{
    if (n == 0) {
        return PyUnicode_FromOrdinal('.');
    }
    /* POSIX keeps exactly two leading slashes; one, or three or more, become one. */
    int initial = 0;
    if (p[0] == '/') {
        initial = (n >= 2 && p[1] == '/' && !(n >= 3 && p[2] == '/')) ? 2 : 1;
    }
    if (n > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Py_UCS4) - 2) {
        return PyErr_NoMemory();
    }
    Py_UCS4 *out = PyMem_Malloc(((size_t)n + 2) * sizeof(Py_UCS4));
    if (out == NULL) {
        return PyErr_NoMemory();
    }
    Py_UCS4 *comps = out + 2;   /* '/'.join(new_comps); never longer than p */
    Py_ssize_t olen = 0, ncomps = 0;
    Py_ssize_t i = 0;
    while (i <= n) {            /* for comp in path.split('/') */
        Py_ssize_t start = i;
        while (i < n && p[i] != '/') {
            i++;
        }
        const Py_UCS4 *comp = p + start;
        Py_ssize_t clen = i - start;
        i++;                    /* past the '/' (or past the end: the last component) */
        if (clen == 0 || (clen == 1 && comp[0] == '.')) {
            continue;
        }
        int dotdot = clen == 2 && comp[0] == '.' && comp[1] == '.';
        /* new_comps[-1] == '..': the last component is the two characters
           before olen, starting the buffer or following a '/' */
        int last_dotdot = ncomps > 0 && olen >= 2 && comps[olen - 1] == '.' &&
                          comps[olen - 2] == '.' && (olen == 2 || comps[olen - 3] == '/');
        if (!dotdot || (!initial && ncomps == 0) || last_dotdot) {
            if (ncomps > 0) {
                comps[olen++] = '/';
            }
            memcpy(comps + olen, comp, (size_t)clen * sizeof(Py_UCS4));
            olen += clen;
            ncomps++;
        }
        else if (ncomps > 0) {  /* new_comps.pop() */
            while (olen > 0 && comps[olen - 1] != '/') {
                olen--;
            }
            if (olen > 0) {
                olen--;         /* the separator before it */
            }
            ncomps--;
        }
    }
    PyObject *result;
    if (olen + initial == 0) {
        result = PyUnicode_FromOrdinal('.');   /* path or dot */
    }
    else {
        for (int k = 1; k <= initial; k++) {
            comps[-k] = '/';
        }
        result = cpaths__str(comps - initial, olen + initial);
    }
    PyMem_Free(out);
    return result;
}

/* posixpath.abspath on UCS4 text: join with os.getcwd() when relative, then
 * normpath. A new str. */
CPATHS_FN PyObject *
cpaths__abspath_ucs4(const Py_UCS4 *p, Py_ssize_t n)
{
    if (n > 0 && p[0] == '/') {
        return cpaths__normpath_ucs4(p, n);
    }
    PyObject *cwd = cpaths__getcwd();
    if (cwd == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    cpaths__ubuf buf = {0};
    Py_ssize_t cn = PyUnicode_GET_LENGTH(cwd);
    if (cpaths__ubuf_reserve(&buf, cn) < 0 ||
        (cn > 0 && PyUnicode_AsUCS4(cwd, buf.p, buf.cap, 0) == NULL)) {
        goto done;
    }
    buf.len = cn;
    if (cpaths__ubuf_join(&buf, p, n) < 0) {
        goto done;
    }
    result = cpaths__normpath_ucs4(buf.p, buf.len);
done:
    PyMem_Free(buf.p);
    Py_DECREF(cwd);
    return result;
}

/* *fn* on a copy of the str *path* as UCS-4. */
static PyObject *
cpaths__on_ucs4(PyObject *path, PyObject *(*fn)(const Py_UCS4 *, Py_ssize_t))
{
    if (cpaths__check_str(path, "path") < 0) {
        return NULL;
    }
    Py_UCS4 *u = PyUnicode_AsUCS4Copy(path);
    if (u == NULL) {
        return NULL;
    }
    PyObject *result = fn(u, PyUnicode_GET_LENGTH(path));
    PyMem_Free(u);
    return result;
}

CPATHS_FN PyObject *
cpaths_normpath(PyObject *path)
{
    return cpaths__on_ucs4(path, cpaths__normpath_ucs4);
}

CPATHS_FN PyObject *
cpaths_abspath(PyObject *path)
{
    return cpaths__on_ucs4(path, cpaths__abspath_ucs4);
}


/* ======================================================================== realpath */

/* The path being resolved, as text and as encoded bytes, edited in lockstep.
 * Its shape (from how _joinrealpath builds it): "" or "/" or names joined by
 * single '/', optionally after "/" or a run of ".." components. */
typedef struct { cpaths__ubuf u; cpaths__bbuf b; } cpaths__dpath;

/* path = posixpath.join(path, name), for a name that is non-empty and holds
 * no '/'. Both sides apply the same rule to their own last character. */
CPATHS_FN int
cpaths__dpath_join(cpaths__dpath *d, const Py_UCS4 *nu, Py_ssize_t nun,
                   const char *nb, Py_ssize_t nbn)
{
    if (d->u.len > 0 && d->u.p[d->u.len - 1] != '/' &&
        cpaths__ubuf_append(&d->u, cpaths__SLASH, 1) < 0) {
        return -1;
    }
    if (d->b.len > 0 && d->b.p[d->b.len - 1] != '/' && cpaths__bbuf_append(&d->b, "/", 1) < 0) {
        return -1;
    }
    if (cpaths__ubuf_append(&d->u, nu, nun) < 0 || cpaths__bbuf_append(&d->b, nb, nbn) < 0) {
        return -1;
    }
    return 0;
}

/* path = "/" */
CPATHS_FN int
cpaths__dpath_root(cpaths__dpath *d)
{
    d->u.len = 0;
    cpaths__bbuf_truncate(&d->b, 0);
    return cpaths__dpath_join(d, cpaths__SLASH, 1, "/", 1);
}

/* path = s (a str that _joinrealpath produced before, from seen[]) */
CPATHS_FN int
cpaths__dpath_set(cpaths__dpath *d, PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    d->u.len = 0;
    cpaths__bbuf_truncate(&d->b, 0);
    if (cpaths__ubuf_reserve(&d->u, n) < 0 ||
        (n > 0 && PyUnicode_AsUCS4(s, d->u.p, d->u.cap, 0) == NULL)) {
        return -1;
    }
    d->u.len = n;
    PyObject *b = PyUnicode_EncodeFSDefault(s);
    if (b == NULL) {
        return -1;
    }
    int r = cpaths__bbuf_append(&d->b, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return r;
}

/* The '..' step of _joinrealpath:
 *     if path:
 *         path, name = split(path)
 *         if name == '..': path = join(path, '..', '..')
 *     else:
 *         path = '..'
 * split() keeps head = path[:path.rfind('/') + 1], stripped of its trailing
 * slashes unless it is all slashes. */
CPATHS_FN int
cpaths__dpath_parent(cpaths__dpath *d)
{
    if (d->u.len == 0) {
        return cpaths__dpath_join(d, cpaths__DOTDOT, 2, "..", 2);
    }
    const Py_UCS4 *u = d->u.p;
    Py_ssize_t i = d->u.len;
    while (i > 0 && u[i - 1] != '/') {
        i--;
    }
    int tail_dotdot = d->u.len - i == 2 && u[i] == '.' && u[i + 1] == '.';
    Py_ssize_t k = i;
    while (k > 0 && u[k - 1] == '/') {
        k--;
    }
    d->u.len = k > 0 ? k : i;

    const char *b = d->b.p;
    Py_ssize_t j = d->b.len;
    while (j > 0 && b[j - 1] != '/') {
        j--;
    }
    Py_ssize_t m = j;
    while (m > 0 && b[m - 1] == '/') {
        m--;
    }
    cpaths__bbuf_truncate(&d->b, m > 0 ? m : j);

    if (tail_dotdot) {
        if (cpaths__dpath_join(d, cpaths__DOTDOT, 2, "..", 2) < 0 ||
            cpaths__dpath_join(d, cpaths__DOTDOT, 2, "..", 2) < 0) {
            return -1;
        }
    }
    return 0;
}

/* One level of _joinrealpath's recursion: the `rest` still to walk (text and
 * encoding, each with its own cursor) and the symlink it resolves. */
typedef struct {
    Py_UCS4 *u;          /* rest as text (PyMem, owned) */
    Py_ssize_t ulen, upos;
    PyObject *b;         /* rest encoded (owned bytes): all of it, or the part before `bad` */
    Py_ssize_t bpos;
    Py_ssize_t bad;      /* start of the first component the filesystem encoding cannot
                            encode (ulen: none) */
    PyObject *bad_exc;   /* the UnicodeEncodeError encoding it raised (owned), or NULL */
    PyObject *key;       /* the symlink's newpath (owned str); NULL for the outermost level */
} cpaths__frame;

typedef struct { cpaths__frame *f; Py_ssize_t n, cap; } cpaths__stack;

CPATHS_FN void
cpaths__frame_clear(cpaths__frame *f)
{
    PyMem_Free(f->u);
    Py_XDECREF(f->b);
    Py_XDECREF(f->bad_exc);
    Py_XDECREF(f->key);
    f->u = NULL;
    f->b = NULL;
    f->bad_exc = NULL;
    f->key = NULL;
}

/* Encode a frame's rest. Python encodes each newpath only when it lstat()s
 * it, so a character the filesystem encoding rejects raises UnicodeEncodeError
 * only if the walk reaches its component -- not when a symlink loop ends the
 * walk first (the rest is then joined as text). To be exact and still encode
 * once, encode the whole rest; if that fails, keep the encoding of the
 * components before the first bad character, and the exception, which the
 * walk raises when it reaches that component (cpaths__realpath_impl). */
CPATHS_FN int
cpaths__frame_encode(cpaths__frame *f, PyObject *rest)
{
    f->bad = f->ulen;
    f->b = PyUnicode_EncodeFSDefault(rest);
    if (f->b != NULL) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
        return -1;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    Py_ssize_t start;
    if (exc == NULL || !PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_UnicodeEncodeError) ||
        PyUnicodeEncodeError_GetStart(exc, &start) < 0 || start < 0 || start > f->ulen) {
        Py_XDECREF(exc);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "path: cannot encode");
        }
        return -1;
    }
    Py_ssize_t bad = start;     /* back to the start of that character's component */
    while (bad > 0 && f->u[bad - 1] != '/') {
        bad--;
    }
    f->bad = bad;
    f->bad_exc = exc;
    /* everything before `bad` was encoded before the failure: it encodes */
    PyObject *prefix = PyUnicode_Substring(rest, 0, bad);
    if (prefix == NULL) {
        return -1;
    }
    f->b = PyUnicode_EncodeFSDefault(prefix);
    Py_DECREF(prefix);
    return f->b == NULL ? -1 : 0;
}

/* Enter a level: _joinrealpath(path, rest). `key` is a new reference, stolen
 * (also on failure). Does the level's first step too:
 *     if isabs(rest): rest = rest[1:]; path = '/'   */
CPATHS_FN int
cpaths__push(cpaths__stack *st, PyObject *rest, PyObject *key, cpaths__dpath *path)
{
    if (st->n == st->cap) {
        Py_ssize_t cap;
        if (cpaths__capacity(st->n, 1, st->cap, sizeof(cpaths__frame), &cap) < 0) {
            Py_XDECREF(key);
            return -1;
        }
        cpaths__frame *f = PyMem_Realloc(st->f, (size_t)cap * sizeof(cpaths__frame));
        if (f == NULL) {
            Py_XDECREF(key);
            PyErr_NoMemory();
            return -1;
        }
        st->f = f;
        st->cap = cap;
    }
    cpaths__frame *f = &st->f[st->n];
    f->key = key;
    f->b = NULL;
    f->bad_exc = NULL;
    f->ulen = PyUnicode_GET_LENGTH(rest);
    f->upos = f->bpos = 0;
    f->u = PyUnicode_AsUCS4Copy(rest);
    if (f->u == NULL) {
        cpaths__frame_clear(f);
        return -1;
    }
    if (cpaths__frame_encode(f, rest) < 0 ||
        cpaths__aligned(f->u, f->bad, PyBytes_AS_STRING(f->b), PyBytes_GET_SIZE(f->b)) < 0) {
        cpaths__frame_clear(f);
        return -1;
    }
    st->n++;
    if (f->ulen > 0 && f->u[0] == '/') {
        f->upos = f->bpos = 1;
        return cpaths__dpath_root(path);
    }
    return 0;
}

/* posixpath.realpath(filename) (strict=False), a new str.
 *
 * _joinrealpath's recursion becomes a loop over a stack of frames: entering a
 * symlink pushes a frame for its target, a frame whose rest is used up pops
 * and records seen[newpath] = path. `seen` is Python's dict: newpath (str) ->
 * the resolved path (str), or None while that link is being resolved; meeting
 * a None again is a loop, and then, as in Python, the walk stops and the
 * answer is join(newpath, rest) followed by each enclosing level's rest. */
CPATHS_FN PyObject *
cpaths__realpath_impl(PyObject *filename)
{
    cpaths__dpath path = {{0}, {0}};
    cpaths__stack st = {0};
    cpaths__ubuf tail = {0};
    PyObject *seen = NULL, *result = NULL;
    const Py_UCS4 *answer;
    Py_ssize_t answer_len;

    if (cpaths__push(&st, filename, NULL, &path) < 0) {
        goto done;
    }
    for (;;) {
        if (st.n == 0) {                            /* return path, True */
            answer = path.u.p;
            answer_len = path.u.len;
            break;
        }
        cpaths__frame *f = &st.f[st.n - 1];
        if (f->upos >= f->ulen) {                   /* `while rest:` is over */
            if (f->key != NULL) {                   /* seen[newpath] = path */
                PyObject *value = cpaths__str(path.u.p, path.u.len);
                if (value == NULL || PyDict_SetItem(seen, f->key, value) < 0) {
                    Py_XDECREF(value);
                    goto done;
                }
                Py_DECREF(value);
            }
            cpaths__frame_clear(f);
            st.n--;
            continue;
        }

        /* name, _, rest = rest.partition('/'), on both forms */
        const char *fb = PyBytes_AS_STRING(f->b);
        Py_ssize_t fblen = PyBytes_GET_SIZE(f->b);
        Py_ssize_t us = f->upos, ue = us;
        while (ue < f->ulen && f->u[ue] != '/') {
            ue++;
        }
        Py_ssize_t bs = f->bpos, be = bs;
        while (be < fblen && fb[be] != '/') {
            be++;
        }
        f->upos = ue < f->ulen ? ue + 1 : ue;
        f->bpos = be < fblen ? be + 1 : be;
        const Py_UCS4 *name = f->u + us;
        Py_ssize_t nlen = ue - us;

        if (nlen == 0 || (nlen == 1 && name[0] == '.')) {
            continue;                               /* current dir */
        }
        if (nlen == 2 && name[0] == '.' && name[1] == '.') {
            if (cpaths__dpath_parent(&path) < 0) {
                goto done;
            }
            continue;
        }

        /* os.lstat(newpath) encodes newpath first: for an unencodable name
           that raises UnicodeEncodeError (a ValueError, which realpath lets out) */
        if (us >= f->bad) {
            PyErr_SetObject((PyObject *)Py_TYPE(f->bad_exc), f->bad_exc);
            goto done;
        }
        /* newpath = join(path, name), built in place; undone if it is a link */
        Py_ssize_t saved_u = path.u.len, saved_b = path.b.len;
        if (cpaths__dpath_join(&path, name, nlen, fb + bs, be - bs) < 0) {
            goto done;
        }
        /* os.lstat(newpath) raises ValueError for an embedded NUL (not an
           OSError, so realpath lets it out). `path` itself never holds one:
           its earlier components passed this test and link targets cannot. */
        if (memchr(fb + bs, '\0', (size_t)(be - bs)) != NULL) {
            PyErr_SetString(PyExc_ValueError, "lstat: embedded null byte");
            goto done;
        }
        struct stat sb;
        if (lstat(path.b.p, &sb) != 0 || !S_ISLNK(sb.st_mode)) {
            continue;                               /* path = newpath (any OSError: not a link) */
        }

        /* A symlink. */
        PyObject *key = cpaths__str(path.u.p, path.u.len);
        if (key == NULL) {
            goto done;
        }
        if (seen == NULL && (seen = PyDict_New()) == NULL) {
            Py_DECREF(key);
            goto done;
        }
        PyObject *cached = PyDict_GetItemWithError(seen, key);   /* borrowed */
        if (cached == NULL && PyErr_Occurred()) {
            Py_DECREF(key);
            goto done;
        }
        if (cached != NULL && cached != Py_None) {  /* resolved before: use it */
            Py_DECREF(key);
            if (cpaths__dpath_set(&path, cached) < 0) {
                goto done;
            }
            continue;
        }
        if (cached == Py_None) {
            /* A loop: return join(newpath, rest), False; each enclosing level
               then returns join(that, its own rest), False. */
            Py_DECREF(key);
            if (cpaths__ubuf_append(&tail, path.u.p, path.u.len) < 0) {
                goto done;
            }
            for (Py_ssize_t i = st.n - 1; i >= 0; i--) {
                cpaths__frame *g = &st.f[i];
                if (cpaths__ubuf_join(&tail, g->u + g->upos, g->ulen - g->upos) < 0) {
                    goto done;
                }
            }
            answer = tail.p;
            answer_len = tail.len;
            break;
        }
        if (PyDict_SetItem(seen, key, Py_None) < 0) {   /* not resolved yet */
            Py_DECREF(key);
            goto done;
        }
        int err;
        PyObject *raw = cpaths__readlink(path.b.p, &err);
        if (raw == NULL) {
            if (err != 0) {                             /* os.readlink's OSError escapes */
                errno = err;
                PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, key);
            }
            Py_DECREF(key);
            goto done;
        }
        PyObject *target = PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(raw),
                                                            PyBytes_GET_SIZE(raw));
        Py_DECREF(raw);
        if (target == NULL) {
            Py_DECREF(key);
            goto done;
        }
        /* path, ok = _joinrealpath(path, os.readlink(newpath), ...): from the
           link's directory, which is path without the name just added */
        path.u.len = saved_u;
        cpaths__bbuf_truncate(&path.b, saved_b);
        int pushed = cpaths__push(&st, target, key, &path);   /* steals key */
        Py_DECREF(target);
        if (pushed < 0) {
            goto done;
        }
    }
    /* return abspath(path) */
    result = cpaths__abspath_ucs4(answer, answer_len);

done:
    for (Py_ssize_t i = 0; i < st.n; i++) {
        cpaths__frame_clear(&st.f[i]);
    }
    PyMem_Free(st.f);
    PyMem_Free(path.u.p);
    PyMem_Free(path.b.p);
    PyMem_Free(tail.p);
    Py_XDECREF(seen);
    return result;
}

CPATHS_FN PyObject *
cpaths_realpath(PyObject *path)
{
    if (cpaths__check_str(path, "path") < 0) {
        return NULL;
    }
    return cpaths__realpath_impl(path);
}

/* capimport.scopes.resolve_path(path) with cwd=None:
 *     if not isabs(path): path = join(os.getcwd(), path)
 *     return realpath(path)                                            */
CPATHS_FN PyObject *
cpaths_resolve_path(PyObject *path)
{
    if (cpaths__check_str(path, "path") < 0) {
        return NULL;
    }
    if (cpaths__starts(path, '/')) {
        return cpaths__realpath_impl(path);
    }
    PyObject *cwd = cpaths__getcwd();
    if (cwd == NULL) {
        return NULL;
    }
    PyObject *joined = cpaths__str_join(cwd, path);
    Py_DECREF(cwd);
    if (joined == NULL) {
        return NULL;
    }
    PyObject *result = cpaths__realpath_impl(joined);
    Py_DECREF(joined);
    return result;
}


/* ======================================================================== event targets */

/* capimport.hook._fd_path(fd): the path /proc/self/fd/<fd> links to, or None
 * when there is none, it is not absolute (a pipe, socket...) or the file is
 * deleted. The checks are on the decoded str, as Python makes them. */
CPATHS_FN PyObject *
cpaths_fd_path(long fd)
{
    /* "/proc/self/fd/" + at most 3 characters per byte of a long + sign + NUL */
    char linkpath[sizeof("/proc/self/fd/") + 3 * sizeof(long) + 2];
    snprintf(linkpath, sizeof(linkpath), "/proc/self/fd/%ld", fd);
    int err;
    PyObject *raw = cpaths__readlink(linkpath, &err);
    if (raw == NULL) {
        if (err != 0) {
            Py_RETURN_NONE;     /* except OSError: return None */
        }
        return NULL;
    }
    PyObject *link = PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    Py_DECREF(raw);
    if (link == NULL) {
        return NULL;
    }
    if (!cpaths__starts(link, '/')) {
        Py_DECREF(link);
        Py_RETURN_NONE;
    }
    PyObject *deleted = PyUnicode_FromString(" (deleted)");
    if (deleted == NULL) {
        Py_DECREF(link);
        return NULL;
    }
    Py_ssize_t at = PyUnicode_Find(link, deleted, 0, PyUnicode_GET_LENGTH(link), 1);
    Py_DECREF(deleted);
    if (at == -2) {
        Py_DECREF(link);
        return NULL;
    }
    if (at >= 0) {
        Py_DECREF(link);
        Py_RETURN_NONE;
    }
    return link;
}

/* capimport.hook.glob_target(pattern) for a str: the literal head of a glob
 * (the components before the first one holding *, ? or [), resolved. */
CPATHS_FN PyObject *
cpaths_glob_target(PyObject *pattern)
{
    if (cpaths__check_str(pattern, "pattern") < 0) {
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(pattern);
    int kind = PyUnicode_KIND(pattern);
    const void *data = PyUnicode_DATA(pattern);
    /* '/'.join(literal) is the pattern up to the '/' before the first
       component with a glob character -- which is the component holding the
       first glob character -- or the whole pattern when there is none. */
    Py_ssize_t start = 0, head_end = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '/') {
            start = i + 1;
        }
        else if (c == '*' || c == '?' || c == '[') {
            head_end = start > 0 ? start - 1 : 0;
            break;
        }
    }
    PyObject *head;
    if (head_end > 0) {
        head = PyUnicode_Substring(pattern, 0, head_end);
    }
    else {   /* or ("/" if pattern.startswith("/") else ".") */
        head = PyUnicode_FromOrdinal(cpaths__starts(pattern, '/') ? '/' : '.');
    }
    if (head == NULL) {
        return NULL;
    }
    PyObject *result = cpaths_resolve_path(head);
    Py_DECREF(head);
    return result;
}

/* shutil._access_check(fn, os.F_OK | os.X_OK):
 *     os.path.exists(fn) and os.access(fn, mode) and not os.path.isdir(fn)
 * exists/isdir answer False where os.stat raises ValueError (NUL, unencodable),
 * and os.access is then never reached. 1, 0, or -1 with an exception. */
CPATHS_FN int
cpaths__access_check(PyObject *fn)
{
    PyObject *b = cpaths__encode_or_false(fn);
    if (b == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    const char *p = PyBytes_AS_STRING(b);
    struct stat st;
    int r = stat(p, &st) == 0 && access(p, F_OK | X_OK) == 0 && !S_ISDIR(st.st_mode);
    Py_DECREF(b);
    return r;
}

/* The search path shutil.which uses when given none: os.environ.get("PATH"),
 * else os.confstr("CS_PATH"), else os.defpath. A new str, or NULL with no
 * exception for "None" (confstr answering nothing), or NULL with an exception. */
CPATHS_FN PyObject *
cpaths__default_path(void)
{
    const char *env = getenv("PATH");
    if (env != NULL) {
        return PyUnicode_DecodeFSDefault(env);   /* os.environ decodes so */
    }
#ifdef _CS_PATH
    errno = 0;
    size_t n = confstr(_CS_PATH, NULL, 0);
    if (n == 0) {
        if (errno != 0) {       /* os.confstr raises OSError, which which() lets out */
            PyErr_SetFromErrno(PyExc_OSError);
        }
        return NULL;            /* os.confstr returns None: which() returns None */
    }
    char *buf = PyMem_Malloc(n);
    if (buf == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t m = confstr(_CS_PATH, buf, n);
    PyObject *result = NULL;
    if (m == 0 || m > n) {      /* changed under us: treat as unavailable, like os.defpath */
        result = PyUnicode_FromString("/bin:/usr/bin");
    }
    else {
        result = PyUnicode_DecodeFSDefaultAndSize(buf, (Py_ssize_t)m - 1);
    }
    PyMem_Free(buf);
    return result;
#else
    return PyUnicode_FromString("/bin:/usr/bin");   /* os.defpath */
#endif
}

/* shutil.which(name, path=path) on POSIX, Python 3.11: mode F_OK | X_OK;
 * path NULL means the default search path. A new str, or None. */
CPATHS_FN PyObject *
cpaths_which(PyObject *name, PyObject *path)
{
    if (cpaths__check_str(name, "name") < 0 || (path != NULL && cpaths__check_str(path, "path") < 0)) {
        return NULL;
    }
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(name);
    /* os.path.dirname(cmd) is non-empty exactly when cmd holds a '/': then
       cmd is checked as it is, with no search */
    Py_ssize_t slash = PyUnicode_FindChar(name, '/', 0, nlen, 1);
    if (slash == -2) {
        return NULL;
    }
    if (slash >= 0) {
        int r = cpaths__access_check(name);
        if (r < 0) {
            return NULL;
        }
        if (r) {
            Py_INCREF(name);
            return name;
        }
        Py_RETURN_NONE;
    }

    PyObject *search;
    if (path != NULL) {
        Py_INCREF(path);
        search = path;
    }
    else {
        search = cpaths__default_path();
        if (search == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *seen = NULL, *result = NULL;
    Py_ssize_t slen = PyUnicode_GET_LENGTH(search);
    if (slen == 0) {            /* PATH='' matches nothing (':' is the current directory) */
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    if ((seen = PySet_New(NULL)) == NULL) {
        goto done;
    }
    /* for dir in path.split(os.pathsep): each directory once (normcase is the identity) */
    Py_ssize_t start = 0;
    while (start <= slen) {
        Py_ssize_t end = PyUnicode_FindChar(search, ':', start, slen, 1);
        if (end == -2) {
            goto done;
        }
        if (end == -1) {
            end = slen;
        }
        PyObject *dir = PyUnicode_Substring(search, start, end);
        start = end + 1;
        if (dir == NULL) {
            goto done;
        }
        int known = PySet_Contains(seen, dir);
        if (known != 0) {
            Py_DECREF(dir);
            if (known < 0) {
                goto done;
            }
            continue;
        }
        if (PySet_Add(seen, dir) < 0) {
            Py_DECREF(dir);
            goto done;
        }
        PyObject *candidate = cpaths__str_join(dir, name);
        Py_DECREF(dir);
        if (candidate == NULL) {
            goto done;
        }
        int r = cpaths__access_check(candidate);
        if (r != 0) {
            if (r > 0) {
                result = candidate;
            }
            else {
                Py_DECREF(candidate);
            }
            goto done;
        }
        Py_DECREF(candidate);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(seen);
    Py_DECREF(search);
    return result;
}

/* capimport.hook.program_target(program, env) for a str program, with PATH
 * the env's PATH (NULL: no env, the process's PATH): a bare name is looked up
 * and resolved (or left as it is when not found), anything with a '/' is
 * resolved. */
CPATHS_FN PyObject *
cpaths_program_target(PyObject *program, PyObject *path)
{
    if (cpaths__check_str(program, "program") < 0 || (path != NULL && cpaths__check_str(path, "PATH") < 0)) {
        return NULL;
    }
    Py_ssize_t slash = PyUnicode_FindChar(program, '/', 0, PyUnicode_GET_LENGTH(program), 1);
    if (slash == -2) {
        return NULL;
    }
    if (slash >= 0) {
        return cpaths__realpath_impl(program);
    }
    PyObject *found = cpaths_which(program, path);
    if (found == NULL) {
        return NULL;
    }
    if (found == Py_None) {     /* `if found` -- which never returns "" */
        Py_DECREF(found);
        Py_INCREF(program);
        return program;
    }
    PyObject *result = cpaths__realpath_impl(found);
    Py_DECREF(found);
    return result;
}

CPATHS_FN int
cpaths__hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* capimport.hook._percent_decode: SQLite's URI decoding. The text is encoded
 * as UTF-8 with surrogateescape (not the filesystem encoding: that is what the
 * Python does), each "%HH" becomes that byte, and the result is decoded with
 * os.fsdecode. A new str. */
CPATHS_FN PyObject *
cpaths__percent_decode(PyObject *text)
{
    Py_ssize_t at = PyUnicode_FindChar(text, '%', 0, PyUnicode_GET_LENGTH(text), 1);
    if (at == -2) {
        return NULL;
    }
    if (at == -1) {
        Py_INCREF(text);
        return text;
    }
    /* "utf-8" takes CPython's built-in encoder directly (no codec lookup), and
       it handles surrogateescape itself (no error-handler lookup). */
    PyObject *raw = PyUnicode_AsEncodedString(text, "utf-8", "surrogateescape");
    if (raw == NULL) {
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(raw);
    Py_ssize_t n = PyBytes_GET_SIZE(raw);
    char *out = PyMem_Malloc((size_t)n + 1);   /* decoding never lengthens */
    if (out == NULL) {
        Py_DECREF(raw);
        return PyErr_NoMemory();
    }
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n;) {
        int hi, lo;
        /* raw[i] == 0x25 and _is_hex(raw[i + 1:i + 3]): two bytes must follow */
        if (s[i] == '%' && i + 2 < n &&
            (hi = cpaths__hexval(s[i + 1])) >= 0 && (lo = cpaths__hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 3;
        }
        else {
            out[o++] = (char)s[i];
            i += 1;
        }
    }
    PyObject *result = PyUnicode_DecodeFSDefaultAndSize(out, o);
    PyMem_Free(out);
    Py_DECREF(raw);
    return result;
}

/* Append (capability, path) to list `out`. */
CPATHS_FN int
cpaths__add_target(PyObject *out, const char *capability, PyObject *path)
{
    PyObject *cap = PyUnicode_FromString(capability);
    if (cap == NULL) {
        return -1;
    }
    PyObject *pair = PyTuple_Pack(2, cap, path);
    Py_DECREF(cap);
    if (pair == NULL) {
        return -1;
    }
    int r = PyList_Append(out, pair);
    Py_DECREF(pair);
    return r;
}

CPATHS_FN int
cpaths__eq(PyObject *s, const char *ascii)
{
    return PyUnicode_CompareWithASCIIString(s, ascii) == 0;
}

/* capimport.hook.sqlite_targets(name) for a str name, with
 * hook.SQLITE_ALWAYS_URI[0] == bool(always_uri): a new list of
 * (capability, path) pairs, the paths unresolved, exactly as Python builds them. */
CPATHS_FN PyObject *
cpaths_sqlite_targets(PyObject *name, int always_uri)
{
    if (cpaths__check_str(name, "name") < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    if (n == 0 || cpaths__eq(name, ":memory:")) {
        return out;
    }
    /* name.startswith("file:") */
    int file_uri = n >= 5;
    for (Py_ssize_t i = 0; file_uri && i < 5; i++) {
        file_uri = PyUnicode_READ_CHAR(name, i) == (Py_UCS4)"file:"[i];
    }
    if (!file_uri) {
        if (cpaths__add_target(out, "fs", name) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        return out;
    }

    PyObject *path = NULL, *mode = NULL, *immutable = NULL, *key = NULL, *value = NULL;
    PyObject *decoded = NULL, *literal = NULL, *dir = NULL;
    /* uri = name[5:].partition("#")[0]; path, _, query = uri.partition("?") */
    Py_ssize_t uri_end = PyUnicode_FindChar(name, '#', 5, n, 1);
    if (uri_end == -2) {
        goto error;
    }
    if (uri_end == -1) {
        uri_end = n;
    }
    Py_ssize_t q = PyUnicode_FindChar(name, '?', 5, uri_end, 1);
    if (q == -2) {
        goto error;
    }
    Py_ssize_t path_end = q >= 0 ? q : uri_end;
    Py_ssize_t query_start = q >= 0 ? q + 1 : uri_end;   /* empty query when no '?' */

    if (path_end - 5 >= 2 && PyUnicode_READ_CHAR(name, 5) == '/' && PyUnicode_READ_CHAR(name, 6) == '/') {
        /* authority, slash, rest = path[2:].partition("/"); path = slash + rest */
        Py_ssize_t slash = PyUnicode_FindChar(name, '/', 7, path_end, 1);
        if (slash == -2) {
            goto error;
        }
        Py_ssize_t auth_end = slash >= 0 ? slash : path_end;
        PyObject *authority = PyUnicode_Substring(name, 7, auth_end);
        if (authority == NULL) {
            goto error;
        }
        int local = PyUnicode_GET_LENGTH(authority) == 0 || cpaths__eq(authority, "localhost");
        Py_DECREF(authority);
        if (!local) {           /* SQLite refuses it: the whole name is checked as a path */
            Py_INCREF(name);
            path = name;
        }
        else {
            path = PyUnicode_Substring(name, slash >= 0 ? slash : path_end, path_end);
        }
    }
    else {
        path = PyUnicode_Substring(name, 5, path_end);
    }
    if (path == NULL) {
        goto error;
    }

    /* for item in query.split("&"): key, _, value = item.partition("=");
       params[decode(key)] = decode(value) -- every item decoded, as in Python
       (a decoding error anywhere raises); the last "mode"/"immutable" wins. */
    Py_ssize_t start = query_start;
    for (;;) {
        Py_ssize_t end = PyUnicode_FindChar(name, '&', start, uri_end, 1);
        if (end == -2) {
            goto error;
        }
        if (end == -1) {
            end = uri_end;
        }
        Py_ssize_t eq = PyUnicode_FindChar(name, '=', start, end, 1);
        if (eq == -2) {
            goto error;
        }
        PyObject *rk = PyUnicode_Substring(name, start, eq >= 0 ? eq : end);
        if (rk == NULL) {
            goto error;
        }
        Py_XSETREF(key, cpaths__percent_decode(rk));
        Py_DECREF(rk);
        if (key == NULL) {
            goto error;
        }
        PyObject *rv = PyUnicode_Substring(name, eq >= 0 ? eq + 1 : end, end);
        if (rv == NULL) {
            goto error;
        }
        Py_XSETREF(value, cpaths__percent_decode(rv));
        Py_DECREF(rv);
        if (value == NULL) {
            goto error;
        }
        if (cpaths__eq(key, "mode")) {
            Py_INCREF(value);
            Py_XSETREF(mode, value);
        }
        else if (cpaths__eq(key, "immutable")) {
            Py_INCREF(value);
            Py_XSETREF(immutable, value);
        }
        if (end >= uri_end) {
            break;
        }
        start = end + 1;
    }

    decoded = cpaths__percent_decode(path);
    if (decoded == NULL) {
        goto error;
    }
    /* if mode != "memory" and path not in ("", ":memory:") */
    if (!(mode != NULL && cpaths__eq(mode, "memory")) &&
        PyUnicode_GET_LENGTH(decoded) > 0 && !cpaths__eq(decoded, ":memory:")) {
        int readonly = (mode != NULL && cpaths__eq(mode, "ro")) ||
                       (immutable != NULL && PyUnicode_GET_LENGTH(immutable) > 0 &&
                        !cpaths__eq(immutable, "0"));
        if (cpaths__add_target(out, readonly ? "fs-readonly" : "fs", decoded) < 0) {
            goto error;
        }
    }

    /* literal = os.path.abspath(name), computed whatever always_uri says:
       Python does, and its os.getcwd() can raise */
    literal = cpaths_abspath(name);
    if (literal == NULL) {
        goto error;
    }
    if (!always_uri) {
        dir = cpaths__dirname(literal);
        if (dir == NULL) {
            goto error;
        }
        int isdir = cpaths__isdir(dir);
        if (isdir < 0 || (isdir && cpaths__add_target(out, "fs", literal) < 0)) {
            goto error;
        }
    }
    goto done;
error:
    Py_CLEAR(out);
done:
    Py_XDECREF(path);
    Py_XDECREF(mode);
    Py_XDECREF(immutable);
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(decoded);
    Py_XDECREF(literal);
    Py_XDECREF(dir);
    return out;
}

/* Match the ASCII literal `lit` at *i in a str; advance *i on success. */
CPATHS_FN int
cpaths__lit(int kind, const void *data, Py_ssize_t n, Py_ssize_t *i, const char *lit)
{
    Py_ssize_t j = *i;
    for (; *lit; lit++, j++) {
        if (j >= n || PyUnicode_READ(kind, data, j) != (Py_UCS4)(unsigned char)*lit) {
            return 0;
        }
    }
    *i = j;
    return 1;
}

/* \d+ at *i: Python's \d in a str pattern is any Unicode decimal digit
 * (category Nd, Py_UNICODE_ISDECIMAL), not only 0-9. */
CPATHS_FN int
cpaths__digits(int kind, const void *data, Py_ssize_t n, Py_ssize_t *i)
{
    Py_ssize_t j = *i;
    while (j < n && Py_UNICODE_ISDECIMAL(PyUnicode_READ(kind, data, j))) {
        j++;
    }
    if (j == *i) {
        return 0;
    }
    *i = j;
    return 1;
}

/* "^/proc/(self|thread-self|\d+)(/task/\d+)?" at the start, *i* left after it: the process part of
 * the patterns below. No backtracking is needed: the three alternatives start with different
 * characters ('s', 't', a digit); \d+ is followed by '/', which is no digit, so taking fewer digits
 * never helps; and "/task/" differs from what may follow the group ("/environ", "/mem",
 * "/map_files") at its second character, so when the optional group does not match in full,
 * skipping it is the only way on. */
CPATHS_FN int
cpaths__proc_process(int kind, const void *data, Py_ssize_t n, Py_ssize_t *i)
{
    if (!cpaths__lit(kind, data, n, i, "/proc/")) {
        return 0;
    }
    if (!cpaths__lit(kind, data, n, i, "self") && !cpaths__lit(kind, data, n, i, "thread-self") &&
        !cpaths__digits(kind, data, n, i)) {
        return 0;
    }
    Py_ssize_t save = *i;
    if (!(cpaths__lit(kind, data, n, i, "/task/") && cpaths__digits(kind, data, n, i))) {
        *i = save;               /* the optional group did not match */
    }
    return 1;
}

/* re.match(r"^/proc/(self|thread-self|\d+)(/task/\d+)?/environ$", path):
 * 1, 0, or -1 with an exception (not a str). A direct parse is the regex exactly
 * (cpaths__proc_process); `$` (no MULTILINE) matches at the end or before a final "\n". */
CPATHS_FN int
cpaths_environ_file(PyObject *path)
{
    if (cpaths__check_str(path, "path") < 0) {
        return -1;
    }
    int kind = PyUnicode_KIND(path);
    const void *data = PyUnicode_DATA(path);
    Py_ssize_t n = PyUnicode_GET_LENGTH(path), i = 0;
    if (!cpaths__proc_process(kind, data, n, &i)) {
        return 0;
    }
    if (!cpaths__lit(kind, data, n, &i, "/environ")) {
        return 0;
    }
    return i == n || (i == n - 1 && PyUnicode_READ(kind, data, i) == '\n');
}

/* re.match(r"^/proc/(self|thread-self|\d+)(/task/\d+)?/(mem|map_files(/.*)?)$", path)
 * (tamper.MEMORY_FILE_PATTERN): 1, 0, or -1 with an exception (not a str). Parsed as
 * cpaths_environ_file is; "(/.*)?$" is a '/' then anything but a newline, up to the end or a
 * final "\n". */
CPATHS_FN int
cpaths_memory_file(PyObject *path)
{
    if (cpaths__check_str(path, "path") < 0) {
        return -1;
    }
    int kind = PyUnicode_KIND(path);
    const void *data = PyUnicode_DATA(path);
    Py_ssize_t n = PyUnicode_GET_LENGTH(path), i = 0;
    if (!cpaths__proc_process(kind, data, n, &i)) {
        return 0;
    }
    int map_files = 0;
    if (!cpaths__lit(kind, data, n, &i, "/mem")) {
        if (!cpaths__lit(kind, data, n, &i, "/map_files")) {
            return 0;
        }
        map_files = 1;
    }
    if (i == n || (i == n - 1 && PyUnicode_READ(kind, data, i) == '\n')) {
        return 1;
    }
    if (!map_files || PyUnicode_READ(kind, data, i) != '/') {
        return 0;
    }
    for (i++; i < n; i++) {
        if (PyUnicode_READ(kind, data, i) == '\n') {
            return i == n - 1;   /* $ before a final newline */
        }
    }
    return 1;
}

/* ======================================================================== _leaf */

/* Arguments of one leaf: exactly `count` of them. */
CPATHS_FN int
cpaths__nargs(const char *name, PyObject *args, Py_ssize_t count)
{
    if (PyTuple_GET_SIZE(args) != count) {
        PyErr_Format(PyExc_TypeError, "_leaf(%s) takes %zd argument(s), %zd given",
                     name, count, PyTuple_GET_SIZE(args));
        return -1;
    }
    return 0;
}

/* An optional str argument: None -> NULL; a str -> itself (borrowed).
 * Returns -1 with TypeError for anything else. */
CPATHS_FN int
cpaths__optional_str(PyObject *o, PyObject **out)
{
    if (o == Py_None) {
        *out = NULL;
        return 0;
    }
    if (cpaths__check_str(o, "path") < 0) {
        return -1;
    }
    *out = o;
    return 0;
}

/* The test-only entry behind capimport._core._leaf(name, *args): runs the
 * function `name` on `args` (a tuple) so tests can compare it with its Python
 * reference. Sets *handled = 1 when `name` is one of this file's functions
 * (and returns its new reference, or NULL with an exception); otherwise sets
 * *handled = 0 and returns NULL with no exception, so the caller can try its
 * own names. */
CPATHS_FN PyObject *
cpaths_leaf(const char *name, PyObject *args, int *handled)
{
    *handled = 1;
    if (!PyTuple_Check(args)) {
        PyErr_SetString(PyExc_TypeError, "_leaf: arguments must be a tuple");
        return NULL;
    }
    /* one str argument */
    static const struct { const char *name; PyObject *(*fn)(PyObject *); } unary[] = {
        {"normpath", cpaths_normpath},
        {"abspath", cpaths_abspath},
        {"realpath", cpaths_realpath},
        {"resolve_path", cpaths_resolve_path},
        {"glob_target", cpaths_glob_target},
    };
    for (size_t k = 0; k < sizeof(unary) / sizeof(unary[0]); k++) {
        if (strcmp(name, unary[k].name) == 0) {
            if (cpaths__nargs(name, args, 1) < 0) {
                return NULL;
            }
            return unary[k].fn(PyTuple_GET_ITEM(args, 0));
        }
    }
    if (strcmp(name, "fd_path") == 0) {
        if (cpaths__nargs(name, args, 1) < 0) {
            return NULL;
        }
        PyObject *fd = PyTuple_GET_ITEM(args, 0);
        if (!PyLong_CheckExact(fd)) {
            PyErr_SetString(PyExc_TypeError, "_leaf(fd_path): fd must be int");
            return NULL;
        }
        long value = PyLong_AsLong(fd);
        if (value == -1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                return NULL;
            }
            /* Python reads /proc/self/fd/<a huge number>: no such link, None */
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return cpaths_fd_path(value);
    }
    if (strcmp(name, "which") == 0 || strcmp(name, "program_target") == 0) {
        if (cpaths__nargs(name, args, 2) < 0) {
            return NULL;
        }
        PyObject *first = PyTuple_GET_ITEM(args, 0), *path;
        if (cpaths__optional_str(PyTuple_GET_ITEM(args, 1), &path) < 0) {
            return NULL;
        }
        if (strcmp(name, "which") == 0) {
            return cpaths_which(first, path);
        }
        return cpaths_program_target(first, path);
    }
    if (strcmp(name, "sqlite_targets") == 0) {
        if (cpaths__nargs(name, args, 2) < 0) {
            return NULL;
        }
        PyObject *flag = PyTuple_GET_ITEM(args, 1);
        /* an exact int or a bool: their truth is C code (a subclass could define __bool__) */
        if (!PyLong_CheckExact(flag) && !PyBool_Check(flag)) {
            PyErr_SetString(PyExc_TypeError, "_leaf(sqlite_targets): always_uri must be int or bool");
            return NULL;
        }
        int always_uri = PyObject_IsTrue(flag);
        if (always_uri < 0) {
            return NULL;
        }
        return cpaths_sqlite_targets(PyTuple_GET_ITEM(args, 0), always_uri);
    }
    if (strcmp(name, "environ_file") == 0 || strcmp(name, "memory_file") == 0) {
        if (cpaths__nargs(name, args, 1) < 0) {
            return NULL;
        }
        PyObject *path = PyTuple_GET_ITEM(args, 0);
        int r = name[0] == 'e' ? cpaths_environ_file(path) : cpaths_memory_file(path);
        if (r < 0) {
            return NULL;
        }
        return PyBool_FromLong(r);
    }
    *handled = 0;
    return NULL;
}

#endif /* CAPIMPORT_CORE_PATHS_H */
