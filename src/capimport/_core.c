/* capimport._core: the native decision core (docs/decisions.md, "The native decision core").
 *
 * Why C: a decision written in Python can be switched off by the code it
 * judges. Class attributes, module globals, a function's __globals__ and a
 * cell's contents are all writable without an audit event, and the Python
 * decision also calls standard-library Python (posixpath.realpath, fnmatch,
 * ipaddress) that anyone can rebind. This module keeps the decision for
 * every audited act where Python cannot reach it:
 *
 *   - the policy and the file -> distribution tables are copied at install
 *     into C memory (hash tables and arrays holding only str, int and tuple
 *     objects, none of which gc.get_objects() lists or Python can mutate);
 *   - the audit hook is a C function (PySys_AddAuditHook), so no Python
 *     object stands for it;
 *   - targets are computed with libc (lstat/readlink/getaddrinfo) by the
 *     leaf functions of _core_paths.h and matched by _core_match.h.
 *
 * The verdict is reached without calling any Python code. Python is called
 * only (a) to convert path-like arguments (os.fspath runs the caller's own
 * __fspath__, as the act itself would), (b) for the side effects of two
 * Python rules that decide nothing (charging planted import hooks, route 4),
 * and (c) after the verdict, to build messages and write the log. The
 * forged-identity and import-integrity rules are C (_core_tamper.h). Whatever (b)
 * or (c) do, they cannot turn a denial into an allowance: a failing report
 * still denies, with a plain message (fail closed).
 *
 * Nothing here suppresses decisions while Python runs on capimport's behalf
 * (there is no "busy" flag a distribution could set): acts that capimport's
 * own Python code raises are walked like any other.
 *
 * The rules are those of capimport/attribution.py and capimport/enforcer.py,
 * which stay as the reference implementation (and the fallback when this
 * extension is not built); tests/native compares the two.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <marshal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <limits.h>
#include <unistd.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <ctype.h>

#include "_core_paths.h"
#include "_core_match.h"

/* ------------------------------------------------------------------ constants */

enum { CAP_FS, CAP_FS_RO, CAP_ENV, CAP_ENV_RO, CAP_NET, CAP_PROCESS, CAP_FFI, NCAP, CAP_OPEN = 100, CAP_NONE = -1 };
static const char *CAP_NAMES[NCAP] = {"fs", "fs-readonly", "env", "env-readonly", "net", "process", "ffi"};

/* Origin indices: the special origins first (same order as native.py's SPECIAL), then distributions. */
enum { O_APP, O_UNKNOWN, O_STDLIB, O_CAPIMPORT, O_DYNAMIC, O_IMPORT, O_LINECACHE, O_LOGGING, O_BOTTOM,
       O_FIRST_DIST };

#define TRANSPARENT(o) ((o) >= O_STDLIB && (o) <= O_BOTTOM)
#define PRIVILEGED(o) ((o) == O_IMPORT || (o) == O_LINECACHE || (o) == O_LOGGING)

/* Scope kinds of the event table (capimport/table/events.py). */
enum { S_PATH, S_ADDR, S_HOSTPORT, S_PROGRAM, S_SHELL, S_ENV, S_SOCKET, S_GLOB, S_SQLITE, S_MMAP, S_IOCTL,
       S_PID };
static const char *SCOPE_NAMES[] = {"path", "addr", "hostport", "program", "shell", "env", "socket", "glob",
                                    "sqlite", "mmap", "ioctl", "pid", NULL};

enum { MODE_ENFORCE, MODE_WARN, MODE_RECORD };

/* ------------------------------------------------------------------ str -> object hash table */

/* Open addressing, linear probing, keyed by exact str (hash and equality never run Python code).
 * Neither the table nor its arrays are Python objects: nothing in Python can list or change them. */
typedef struct {
    PyObject **keys;
    PyObject **vals;
    Py_ssize_t size;   /* a power of two, or 0 */
    Py_ssize_t used;
} strmap;

static int
str_equal(PyObject *a, PyObject *b)
{
    return a == b || (PyUnicode_GET_LENGTH(a) == PyUnicode_GET_LENGTH(b) && PyUnicode_Compare(a, b) == 0);
}

/* Borrowed value or NULL (no exception: keys are exact str, whose hash cannot fail). */
static PyObject *
strmap_get(strmap *m, PyObject *key)
{
    if (m->size == 0 || !PyUnicode_CheckExact(key)) {
        return NULL;
    }
    Py_hash_t h = PyObject_Hash(key);
    if (h == -1) {
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t mask = m->size - 1;
    for (Py_ssize_t i = (Py_ssize_t)((size_t)h & (size_t)mask);; i = (i + 1) & mask) {
        PyObject *k = m->keys[i];
        if (k == NULL) {
            return NULL;
        }
        if (str_equal(k, key)) {
            return m->vals[i];
        }
    }
}

static int strmap_set(strmap *m, PyObject *key, PyObject *val);

static int
strmap_grow(strmap *m)
{
    Py_ssize_t old_size = m->size;
    PyObject **old_keys = m->keys, **old_vals = m->vals;
    Py_ssize_t size = old_size ? old_size * 2 : 64;
    PyObject **keys = PyMem_Calloc((size_t)size, sizeof(PyObject *));
    PyObject **vals = PyMem_Calloc((size_t)size, sizeof(PyObject *));
    if (keys == NULL || vals == NULL) {
        PyMem_Free(keys);
        PyMem_Free(vals);
        PyErr_NoMemory();
        return -1;
    }
    m->keys = keys;
    m->vals = vals;
    m->size = size;
    m->used = 0;
    for (Py_ssize_t i = 0; i < old_size; i++) {
        if (old_keys[i] != NULL) {
            strmap_set(m, old_keys[i], old_vals[i]);   /* cannot fail: room is there */
            Py_DECREF(old_keys[i]);
            Py_DECREF(old_vals[i]);
        }
    }
    PyMem_Free(old_keys);
    PyMem_Free(old_vals);
    return 0;
}

/* Insert or replace; takes new references to key and val. */
static int
strmap_set(strmap *m, PyObject *key, PyObject *val)
{
    if (!PyUnicode_CheckExact(key)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core: table keys must be str");
        return -1;
    }
    if ((m->used + 1) * 3 >= m->size * 2 && strmap_grow(m) < 0) {
        return -1;
    }
    Py_hash_t h = PyObject_Hash(key);
    if (h == -1) {
        return -1;
    }
    Py_ssize_t mask = m->size - 1;
    for (Py_ssize_t i = (Py_ssize_t)((size_t)h & (size_t)mask);; i = (i + 1) & mask) {
        PyObject *k = m->keys[i];
        if (k == NULL) {
            Py_INCREF(key);
            Py_INCREF(val);
            m->keys[i] = key;
            m->vals[i] = val;
            m->used++;
            return 0;
        }
        if (str_equal(k, key)) {
            Py_INCREF(val);
            Py_SETREF(m->vals[i], val);
            return 0;
        }
    }
}

/* ------------------------------------------------------------------ the installed state */

typedef struct {
    unsigned held;                  /* bit per capability */
    PyObject *scope[NCAP];          /* NULL: unscoped; else a tuple of pattern values (str) */
} grant_t;

typedef struct {
    char *name;
    PyObject *pyname;               /* the same, as str */
    int cap;                        /* CAP_*, CAP_OPEN, or CAP_NONE (a rule only) */
    PyObject *api;                  /* str, for messages */
    int nscopes;
    int scope_kind[4], scope_a[4], scope_b[4];
    PyObject *rule;                 /* a Python rule that runs first (capimport/guards/tamper.py), or NULL */
    int lookup;                     /* index of a looked-up host name in args, or -1 */
    int frames_only;                /* object.__getattr__: only frame-exposing attributes matter */
    int tamper;                     /* TK_*: a rule of _core_tamper.h runs first, or TK_NONE */
} event_t;

static int installed = 0;
static int ready = 0;                         /* install completed: the tables are whole and the hook is on */
static int mode = MODE_ENFORCE;
static Py_ssize_t n_origins = 0;
static PyObject *origin_names = NULL;         /* tuple of str */
static strmap origin_index;                   /* name -> int */
static grant_t *grants = NULL;                /* per origin */
static unsigned char *dependents = NULL;      /* bit matrix: (o, d): d depends on o transitively */
static unsigned char *capimport_dep = NULL;   /* per origin: a distribution capimport depends on */
static strmap file_cache;                     /* co_filename -> origin (int) */
static strmap record_files;                   /* installed file -> origin (int; APP for the project's own) */
static PyObject *roots = NULL;                /* tuple of (prefix, origin int), longest first */
static PyObject *capimport_dirs = NULL;       /* tuple of str */
static PyObject *stdlib_dirs = NULL, *site_dirs = NULL, *app_dirs = NULL;   /* tuples of str */
static PyObject *import_frozen = NULL;        /* tuple of str */
static strmap privileged_files;               /* stdlib file -> privileged origin (int) */
static strmap owned;                          /* path -> tuple of origin ints that own it */
static PyObject **owned_roots = NULL;         /* per origin: tuple of editable source roots, or NULL */
static event_t *events = NULL;
static Py_ssize_t n_events = 0, events_mask = 0;
static int *event_slots = NULL;               /* open-addressed index into events, -1 empty */
static long write_flags = 0, af_unix = 1;
static long long proc_dev = -1;
/* (st_dev, st_ino) of the standard streams as the process started: no act on a file (fd_stat) */
static struct { dev_t dev; ino_t ino; } standard_streams[3];
static int n_standard_streams = 0;
static PyObject *pycache_prefix = NULL;       /* str or NULL */
static int sqlite_always_uri = 0;
static PyObject *report = NULL, *internal_error = NULL, *error_class = NULL;
static PyObject *looked_up = NULL;            /* list of host names the program looked up */
static strmap resolved;                       /* host name -> tuple of address strings */
/* > 0 while this thread runs capimport's own Python for the core (a report, a gate's rewrite): the
 * gates then let calls through whose innermost non-stdlib frame is capimport's. C memory: no
 * Python code can set it (see gate_internal in _core_gate.h). */
static _Thread_local int internal_depth = 0;
/* The file name object of the compile this thread's core runs to check a bytecode cache
 * (_core_bytecode.h): a fresh str nothing else holds, so the compile event naming it is the core's
 * own (tamper_rule does not judge it). */
static _Thread_local PyObject *b_compiling = NULL;
static PyObject *str_open = NULL, *str_self = NULL, *str_star = NULL, *str_memory_api = NULL;
static PyObject *str_environ_api = NULL;

/* ------------------------------------------------------------------ small helpers */

static int
starts_with(PyObject *s, PyObject *prefix)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(prefix);
    if (PyUnicode_GET_LENGTH(s) < n) {
        return 0;
    }
    return PyUnicode_Tailmatch(s, prefix, 0, n, -1) == 1;
}

static int
ends_with_ascii(PyObject *s, const char *suffix)
{
    PyObject *suf = PyUnicode_FromString(suffix);
    if (suf == NULL) {
        return -1;
    }
    int r = PyUnicode_GET_LENGTH(s) >= PyUnicode_GET_LENGTH(suf)
            && PyUnicode_Tailmatch(s, suf, 0, PY_SSIZE_T_MAX, 1) == 1;
    Py_DECREF(suf);
    return r;
}

static int
contains_ascii(PyObject *s, const char *needle)
{
    PyObject *n = PyUnicode_FromString(needle);
    if (n == NULL) {
        return -1;
    }
    int r = PyUnicode_Find(s, n, 0, PY_SSIZE_T_MAX, 1) >= 0;
    Py_DECREF(n);
    return r;
}

static int
any_prefix(PyObject *s, PyObject *prefixes)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(prefixes); i++) {
        if (starts_with(s, PyTuple_GET_ITEM(prefixes, i))) {
            return 1;
        }
    }
    return 0;
}

static int
dep_bit(int origin, int dependent)
{
    Py_ssize_t bit = (Py_ssize_t)origin * n_origins + dependent;
    return (dependents[bit >> 3] >> (bit & 7)) & 1;
}

/* The index of capability *name* in CAP_NAMES, or -1 (also for a name that is not a str). */
static int
cap_named(PyObject *name)
{
    for (int i = 0; PyUnicode_Check(name) && i < NCAP; i++) {
        if (PyUnicode_CompareWithASCIIString(name, CAP_NAMES[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* An exact str copy of a str, bytes (fs-decoded) or str/bytes subclass; NULL + exception otherwise.
 * Copies never call Python code: a subclass's methods are not looked at. */
static PyObject *
exact_text(PyObject *value)
{
    if (PyUnicode_CheckExact(value)) {
        Py_INCREF(value);
        return value;
    }
    if (PyUnicode_Check(value)) {
        return _PyUnicode_Copy(value);
    }
    if (PyBytes_Check(value)) {
        return PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    }
    PyErr_Format(PyExc_TypeError, "expected str or bytes, not %.100s", Py_TYPE(value)->tp_name);
    return NULL;
}

/* ------------------------------------------------------------------ who owns a file */

static int
lookup_int(strmap *m, PyObject *key)
{
    PyObject *v = strmap_get(m, key);
    return v == NULL ? -1 : (int)PyLong_AsLong(v);
}

static int
distribution_of(PyObject *path)
{
    int found = lookup_int(&record_files, path);
    if (found >= 0) {
        return found;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(roots); i++) {
        PyObject *item = PyTuple_GET_ITEM(roots, i);
        if (starts_with(path, PyTuple_GET_ITEM(item, 0))) {
            return (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 1));
        }
    }
    return -1;
}

/* capimport.attribution.OriginMap._classify, on the same data. -1 with an exception on error. */
static int
classify_path(PyObject *filename)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(filename);
    if (n == 0) {
        return O_DYNAMIC;
    }
    if (PyUnicode_READ_CHAR(filename, 0) == '<') {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(import_frozen); i++) {
            if (str_equal(filename, PyTuple_GET_ITEM(import_frozen, i))) {
                return O_IMPORT;
            }
        }
        PyObject *frozen = PyUnicode_FromString("<frozen ");
        if (frozen == NULL) {
            return -1;
        }
        int is_frozen = starts_with(filename, frozen);
        Py_DECREF(frozen);
        return is_frozen ? O_STDLIB : O_DYNAMIC;
    }
    PyObject *path = cpaths_abspath(filename);
    if (path == NULL) {
        return -1;
    }
    if (any_prefix(path, capimport_dirs)) {
        Py_DECREF(path);
        return O_CAPIMPORT;
    }
    int dist = distribution_of(path);
    if (dist < 0) {
        PyObject *real = cpaths_realpath(path);
        if (real == NULL) {
            Py_DECREF(path);
            return -1;
        }
        if (!str_equal(real, path)) {
            if (starts_with(real, PyTuple_GET_ITEM(capimport_dirs, PyTuple_GET_SIZE(capimport_dirs) - 1))) {
                Py_DECREF(real);
                Py_DECREF(path);
                return O_CAPIMPORT;
            }
            dist = distribution_of(real);
        }
        Py_SETREF(path, real);
    }
    int result = O_APP;
    if (dist >= 0) {
        result = dist;
    } else if (any_prefix(path, site_dirs) && !any_prefix(path, app_dirs)) {
        /* Python tests each site folder, then that no app folder holds it: the same thing. */
        result = O_UNKNOWN;
    } else if (any_prefix(path, stdlib_dirs)) {
        int privileged = lookup_int(&privileged_files, path);
        result = privileged >= 0 ? privileged : O_STDLIB;
    }
    Py_DECREF(path);
    return result;
}

/* Code objects a distribution made under a name that reads as the application's or nobody's (the
 * forged-identity rules, _core_tamper.h): by identity, they are their maker's, and the name keeps
 * its origin for the application's own code in that file (hypothesis's @given gives its wrapper the
 * test file's name: relabelling the name made every test in the file hypothesis's). The code's
 * address -> (code, origin): the code is held, so no other code object takes the address. */
static PyObject *marked_codes = NULL;
/* An act the core has just decided, whose own audit event is not decided (or reported) again:
 * a G_TRACER gate's call of sys.settrace/setprofile (_core_gate.h), the environment view's call
 * of posix.putenv/unsetenv (_core_environ.h). The thread and the event, set and cleared around
 * the one call with the GIL held, with no Python code run between (C audit hooks run before any
 * Python one); the hook skips that event once, on that thread. */
static PyThreadState *vouched_thread = NULL;
static const char *vouched_event = NULL;

static inline void
vouch(const char *event)
{
    vouched_thread = event ? PyThreadState_Get() : NULL;
    vouched_event = event;
}
/* In file_cache, beside the origin: some code object under this name is marked (code_origin). */
#define MARKED_NAME 0x100000

static int
origin_of(PyObject *filename)
{
    if (!PyUnicode_CheckExact(filename)) {
        return O_DYNAMIC;   /* a code object's co_filename is always str; anything else names no file */
    }
    int cached = lookup_int(&file_cache, filename);
    if (cached >= 0) {
        return cached & ~MARKED_NAME;
    }
    int origin = classify_path(filename);
    if (origin < 0) {
        return -1;
    }
    PyObject *value = PyLong_FromLong(origin);
    if (value == NULL || strmap_set(&file_cache, filename, value) < 0) {
        Py_XDECREF(value);
        return -1;
    }
    Py_DECREF(value);
    return origin;
}

/* The origin of the code a frame runs: its file's, unless this very code object is marked. */
static int
code_origin(PyCodeObject *code)
{
    PyObject *name = code->co_filename;
    int cached = PyUnicode_CheckExact(name) ? lookup_int(&file_cache, name) : -1;
    if (cached < 0 || !(cached & MARKED_NAME)) {
        return cached >= 0 ? cached : origin_of(name);
    }
    PyObject *key = PyLong_FromVoidPtr(code);
    PyObject *mark = key != NULL ? PyDict_GetItemWithError(marked_codes, key) : NULL;   /* borrowed */
    Py_XDECREF(key);
    if (mark != NULL) {
        return (int)PyLong_AsLong(PyTuple_GET_ITEM(mark, 1));
    }
    return key == NULL || PyErr_Occurred() ? -1 : cached & ~MARKED_NAME;
}

/* *code* is *origin*'s from now on, whatever its name says. -1 with an exception on error. */
static int
mark_code(PyObject *code, int origin)
{
    PyObject *name = ((PyCodeObject *)code)->co_filename;
    int plain = origin_of(name);
    if (plain < 0 || (marked_codes == NULL && (marked_codes = PyDict_New()) == NULL)) {
        return -1;
    }
    PyObject *key = PyLong_FromVoidPtr(code);
    PyObject *mark = key != NULL ? Py_BuildValue("(Oi)", code, origin) : NULL;
    PyObject *flagged = mark != NULL ? PyLong_FromLong(plain | MARKED_NAME) : NULL;
    int rc = flagged != NULL && PyDict_SetItem(marked_codes, key, mark) == 0
             && strmap_set(&file_cache, name, flagged) == 0 ? 0 : -1;
    Py_XDECREF(key);
    Py_XDECREF(mark);
    Py_XDECREF(flagged);
    return rc;
}

/* ------------------------------------------------------------------ checks and their targets */

enum { T_NONE, T_PATH, T_ADDR, T_HOSTPORT, T_PROGRAM, T_ENV, T_GLOB, T_ENVIRON, T_VALUE, T_MEMORY, T_FD_FILE, T_FD_PEER };

typedef struct {
    int cap;
    int kind;            /* how to compute the target from a and b */
    PyObject *a, *b;     /* inputs (new references or NULL) */
    PyObject *value;     /* the target once computed (new reference; Py_None for "no target") */
    int done;
    int skip;            /* the check does not apply (an open that is not of an environ file, a
                            descriptor of another kind than the check's) */
    int companion;       /* T_ENVIRON, T_MEMORY: the index of the check holding the opened path */
    PyObject *api;       /* new reference (a check may outlive the tuple it was read from) */
} check_t;

#define MAX_CHECKS 8

typedef struct {
    check_t items[MAX_CHECKS];
    int n;
    int on_proc;         /* the opened file is on /proc: 0 not asked yet, 1 no, 2 yes, 3 only its name */
} checks_t;

static void
checks_clear(checks_t *c)
{
    for (int i = 0; i < c->n; i++) {
        Py_CLEAR(c->items[i].a);
        Py_CLEAR(c->items[i].b);
        Py_CLEAR(c->items[i].value);
        Py_CLEAR(c->items[i].api);
    }
    c->n = 0;
}

static check_t *
add_check(checks_t *c, int cap, int kind, PyObject *a, PyObject *b, PyObject *api)
{
    if (c->n == MAX_CHECKS) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core: too many checks for one event");
        return NULL;
    }
    check_t *k = &c->items[c->n++];
    memset(k, 0, sizeof(*k));
    k->cap = cap;
    k->kind = kind;
    Py_XINCREF(a);
    Py_XINCREF(b);
    Py_XINCREF(api);
    k->a = a;
    k->b = b;
    k->api = api;
    return k;
}


/* hook._plain: a path-like argument converted before the decision starts. Its __fspath__ is code
 * the acting distribution may control; it runs here as that code (and its own acts are decided). */
static PyObject *
plain(PyObject *value)
{
    if (value == NULL) {
        Py_RETURN_NONE;
    }
    if (value == Py_None || PyUnicode_Check(value) || PyBytes_Check(value) || PyLong_Check(value)
            || PyList_Check(value) || PyTuple_Check(value)) {
        Py_INCREF(value);
        return value;
    }
    return PyOS_FSPath(value);
}

static PyObject *
join_path(PyObject *base, PyObject *tail)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(base);
    if (n > 0 && PyUnicode_READ_CHAR(base, n - 1) == '/') {
        return PyUnicode_Concat(base, tail);
    }
    return PyUnicode_FromFormat("%U/%U", base, tail);
}

/* hook.path_target: the resolved path an argument names; Py_None when there is no file to check. */
static PyObject *
path_target(PyObject *value, PyObject *dir_fd)
{
    if (value == NULL || value == Py_None) {
        PyObject *dot = PyUnicode_FromString(".");
        if (dot == NULL) {
            return NULL;
        }
        PyObject *out = cpaths_resolve_path(dot);
        Py_DECREF(dot);
        return out;
    }
    if (PyLong_Check(value) && !PyBool_Check(value)) {
        long fd = PyLong_AsLong(value);
        if (fd == -1 && PyErr_Occurred()) {
            return NULL;
        }
        PyObject *path = cpaths_fd_path(fd);
        if (path == NULL || path == Py_None) {
            return path;
        }
        PyObject *dev = PyUnicode_FromString("/dev/");
        int under_dev = dev != NULL && starts_with(path, dev);
        Py_XDECREF(dev);
        if (under_dev) {          /* a pipe, socket, terminal or other non-file descriptor */
            Py_DECREF(path);
            Py_RETURN_NONE;
        }
        Py_SETREF(path, cpaths_realpath(path));
        return path;
    }
    PyObject *text = exact_text(value);
    if (text == NULL) {
        return NULL;
    }
    if (dir_fd != NULL && PyLong_Check(dir_fd) && (PyUnicode_GET_LENGTH(text) == 0
                                                   || PyUnicode_READ_CHAR(text, 0) != '/')) {
        long fd = PyLong_AsLong(dir_fd);
        if (fd == -1 && PyErr_Occurred()) {
            Py_DECREF(text);
            return NULL;
        }
        if (fd >= 0) {
            PyObject *base = cpaths_fd_path(fd);
            if (base == NULL) {
                Py_DECREF(text);
                return NULL;
            }
            if (base == Py_None) {
                Py_DECREF(base);
                Py_DECREF(text);
                return PyUnicode_FromStringAndSize("/\0unresolvable-dir_fd", 21);  /* matches no scope */
            }
            PyObject *joined = join_path(base, text);
            Py_DECREF(base);
            Py_DECREF(text);
            if (joined == NULL) {
                return NULL;
            }
            PyObject *out = cpaths_resolve_path(joined);
            Py_DECREF(joined);
            return out;
        }
    }
    PyObject *out = cpaths_resolve_path(text);
    Py_DECREF(text);
    return out;
}

/* hook.env_target: a name as str (str() of anything else, as the Python does). */
static PyObject *
name_text(PyObject *value)
{
    if (PyUnicode_Check(value) || PyBytes_Check(value)) {
        return exact_text(value);
    }
    PyObject *s = PyObject_Str(value);
    if (s != NULL && !PyUnicode_CheckExact(s)) {
        Py_SETREF(s, exact_text(s));
    }
    return s;
}

/* The host name a resolver is handed: the text before its first NUL. CPython passes a host to
 * getaddrinfo(3) as a C string without looking for NULs, so "evil.net\0.example.com" looks up
 * evil.net; matched whole, it would read as a name under example.com. Steals *host*. */
static PyObject *
resolver_name(PyObject *host)
{
    if (host == NULL) {
        return NULL;
    }
    Py_ssize_t nul = PyUnicode_FindChar(host, 0, 0, PyUnicode_GET_LENGTH(host), 1);
    if (nul == -2) {
        Py_DECREF(host);
        return NULL;
    }
    if (nul >= 0) {
        Py_SETREF(host, PyUnicode_Substring(host, 0, nul));
    }
    return host;
}

/* hook.addr_target: (host, port) of a socket address; AF_UNIX paths give (path, None). */
static PyObject *
addr_target(PyObject *addr)
{
    if (PyTuple_Check(addr) && PyTuple_GET_SIZE(addr) >= 2) {
        PyObject *host = PyTuple_GET_ITEM(addr, 0), *port = PyTuple_GET_ITEM(addr, 1);
        PyObject *h = resolver_name(PyBytes_Check(host)
            ? PyUnicode_DecodeASCII(PyBytes_AS_STRING(host), PyBytes_GET_SIZE(host), "replace")
            : name_text(host));
        if (h == NULL) {
            return NULL;
        }
        PyObject *p = PyLong_Check(port) ? (Py_INCREF(port), port) : cmatch_port(port);
        if (p == NULL) {
            Py_DECREF(h);
            return NULL;
        }
        PyObject *out = PyTuple_Pack(2, h, p);
        Py_DECREF(h);
        Py_DECREF(p);
        return out;
    }
    if (PyUnicode_Check(addr) || PyBytes_Check(addr)) {
        PyObject *h = exact_text(addr);
        if (h == NULL) {
            return NULL;
        }
        PyObject *out = PyTuple_Pack(2, h, Py_None);
        Py_DECREF(h);
        return out;
    }
    return Py_BuildValue("(sO)", "?", Py_None);
}

static PyObject *
hostport_target(PyObject *host, PyObject *port)
{
    PyObject *h = (host == NULL || host == Py_None) ? PyUnicode_FromString("") : resolver_name(name_text(host));
    if (h == NULL) {
        return NULL;
    }
    PyObject *p = cmatch_port(port == NULL ? Py_None : port);
    if (p == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    PyObject *out = PyTuple_Pack(2, h, p);
    Py_DECREF(h);
    Py_DECREF(p);
    return out;
}

/* hook.program_target: the resolved executable (a bare name looked up on PATH). */
static PyObject *
program_target(PyObject *program, PyObject *env)
{
    if (PyList_Check(program) || PyTuple_Check(program)) {
        Py_ssize_t n = PyList_Check(program) ? PyList_GET_SIZE(program) : PyTuple_GET_SIZE(program);
        if (n == 0) {
            program = NULL;
        } else {
            program = PyList_Check(program) ? PyList_GET_ITEM(program, 0) : PyTuple_GET_ITEM(program, 0);
        }
    }
    PyObject *text;
    if (program == NULL) {
        text = PyUnicode_FromString("");
    } else if (Py_IS_TYPE(program, &PyLong_Type)) {       /* os.execve(fd, ...) */
        long fd = PyLong_AsLong(program);
        if (fd == -1 && PyErr_Occurred()) {
            return NULL;
        }
        PyObject *path = cpaths_fd_path(fd);
        if (path == NULL) {
            return NULL;
        }
        if (path != Py_None) {
            Py_SETREF(path, cpaths_realpath(path));
            return path;
        }
        Py_DECREF(path);
        return PyUnicode_FromFormat("<file descriptor %ld>", fd);
    } else if (PyUnicode_Check(program) || PyBytes_Check(program)) {
        text = exact_text(program);
    } else {
        PyObject *converted = PyOS_FSPath(program);
        if (converted == NULL) {
            return NULL;
        }
        text = exact_text(converted);
        Py_DECREF(converted);
    }
    if (text == NULL) {
        return NULL;
    }
    PyObject *search = NULL;     /* the PATH of the child's environment, when it has one */
    if (env != NULL && PyDict_Check(env)) {
        PyObject *key = PyUnicode_FromString("PATH");
        PyObject *found = key ? PyDict_GetItemWithError(env, key) : NULL;
        Py_XDECREF(key);
        if (found == NULL && !PyErr_Occurred()) {
            PyObject *bkey = PyBytes_FromString("PATH");
            found = bkey ? PyDict_GetItemWithError(env, bkey) : NULL;
            Py_XDECREF(bkey);
        }
        if (PyErr_Occurred()) {
            Py_DECREF(text);
            return NULL;
        }
        if (found != NULL && (PyUnicode_Check(found) || PyBytes_Check(found))) {
            search = exact_text(found);
            if (search == NULL) {
                Py_DECREF(text);
                return NULL;
            }
        }
    }
    PyObject *out = cpaths_program_target(text, search);
    Py_DECREF(text);
    Py_XDECREF(search);
    return out;
}

static PyObject *
glob_target(PyObject *pattern)
{
    PyObject *text = name_text(pattern);
    if (text == NULL) {
        return NULL;
    }
    PyObject *out = cpaths_glob_target(text);
    Py_DECREF(text);
    return out;
}

/* hook._environ_target: "*" when the file opened is a process's environment, else the check is skipped.
 * One stat tells whether the file is on procfs at all (however it is named); only then is the
 * resolved path matched. Returns 1 (an environ file), 0 (skip) or -1. */
static PyObject *get_target(checks_t *c, int i);
static int on_proc_fs(PyObject *raw);
static int memory_entry(PyObject *raw);

/* A /proc file of a process (*memory*: mem or map_files, else environ) is what *raw* opens: one
 * stat(2) of the path (following links, so a symlink or /proc/self/fd/N to it counts), asked once
 * per act, then the resolved path of the companion check matched against the pattern. */
static int
proc_file(PyObject *raw, checks_t *c, int companion, int memory)
{
    if (proc_dev < 0 || raw == NULL || PyLong_Check(raw)) {
        return 0;
    }
    if (c->on_proc == 0) {
        c->on_proc = 1 + on_proc_fs(raw);   /* 1 + (1: stat says /proc, 2: only lstat does) */
    }
    if (c->on_proc == 3) {
        /* The name itself is a /proc link to a file elsewhere: a map_files entry. Its own name,
         * with the folders above it resolved, is what the pattern is about. */
        return memory ? memory_entry(raw) : 0;
    }
    if (c->on_proc != 2) {
        return 0;
    }
    PyObject *path = get_target(c, companion);
    if (path == NULL) {
        return -1;
    }
    if (!PyUnicode_Check(path)) {
        return 0;
    }
    return memory ? cpaths_memory_file(path) : cpaths_environ_file(path);
}

/* *raw* (a /proc link, not followed) with its folders resolved matches the memory pattern:
 * 1, 0 (errors: 1, fail closed). */
static int
memory_entry(PyObject *raw)
{
    PyObject *text = PyUnicode_Check(raw) ? exact_text(raw) : PyUnicode_DecodeFSDefaultAndSize(
        PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    PyObject *absolute = text ? cpaths_abspath(text) : NULL;
    Py_XDECREF(text);
    if (absolute == NULL) {
        PyErr_Clear();
        return 1;
    }
    Py_ssize_t cut = PyUnicode_FindChar(absolute, '/', 0, PyUnicode_GET_LENGTH(absolute), -1);
    PyObject *folder = cut > 0 ? PyUnicode_Substring(absolute, 0, cut) : PyUnicode_FromString("/");
    PyObject *name = cut >= 0 ? PyUnicode_Substring(absolute, cut + 1, PyUnicode_GET_LENGTH(absolute)) : NULL;
    PyObject *resolved = folder && name ? cpaths_realpath(folder) : NULL;
    PyObject *whole = resolved ? PyUnicode_FromFormat("%U%s%U", resolved,
                                                      PyUnicode_GET_LENGTH(resolved) > 1 ? "/" : "", name) : NULL;
    int found = whole ? cpaths_memory_file(whole) : -1;
    Py_XDECREF(whole);
    Py_XDECREF(resolved);
    Py_XDECREF(name);
    Py_XDECREF(folder);
    Py_DECREF(absolute);
    if (found < 0) {
        PyErr_Clear();
        return 1;
    }
    return found;
}

/* 1 when *raw* (str or bytes) names a file on the /proc filesystem (stat(2) follows links), 2
 * when only the name itself is there (lstat(2): a /proc link to a file elsewhere), else 0
 * (errors: 0, the path check decides). */
static int
on_proc_fs(PyObject *raw)
{
    PyObject *encoded = NULL;
    if (PyUnicode_Check(raw)) {
        encoded = PyUnicode_EncodeFSDefault(raw);
    } else if (PyBytes_Check(raw)) {
        encoded = PyBytes_FromStringAndSize(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    } else {
        return 0;
    }
    if (encoded == NULL) {
        PyErr_Clear();
        return 0;
    }
    struct stat st, target;
    int on_proc = 0;
    const char *name = PyBytes_AS_STRING(encoded);
    /* lstat first: stat(2) would say the same of anything but a link (one call for most files) */
    if (strlen(name) == (size_t)PyBytes_GET_SIZE(encoded) && lstat(name, &st) == 0) {
        int name_on_proc = (long long)st.st_dev == proc_dev;
        if (!S_ISLNK(st.st_mode)) {
            on_proc = name_on_proc;
        } else if (stat(name, &target) == 0 && (long long)target.st_dev == proc_dev) {
            on_proc = 1;
        } else {
            on_proc = name_on_proc ? 2 : 0;
        }
    }
    Py_DECREF(encoded);
    return on_proc;
}

/* fstat of the descriptor *fd_obj* into *st* (its number into *fd*): 1, 0 when there is nothing to
 * decide (no such descriptor, so the call it guards fails, or a standard stream), -1 on error. */
static int
fd_stat(PyObject *fd_obj, long *fd, struct stat *st)
{
    *fd = PyLong_AsLong(fd_obj);
    if (*fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!(*fd >= 0 && *fd <= INT_MAX && fstat((int)*fd, st) == 0)) {
        return 0;
    }
    for (int i = 0; i < n_standard_streams; i++) {
        if (st->st_dev == standard_streams[i].dev && st->st_ino == standard_streams[i].ino) {
            return 0;   /* a standard stream as started: everyone writes it with print() */
        }
    }
    return 1;
}

/* Whether descriptor *fd_obj* (an exact int) is open for writing; 1 when that cannot be told (the
 * call it guards fails anyway), so the wider capability is asked. */
static int
fd_writable(PyObject *fd_obj)
{
    long fd = PyLong_AsLong(fd_obj);
    if (fd == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    int flags = fd >= 0 && fd <= INT_MAX ? fcntl((int)fd, F_GETFL) : -1;
    return flags == -1 || (flags & O_ACCMODE) != O_RDONLY;
}

/* T_FD_FILE: the file a descriptor read or written through (os.read, os.write) is open on,
 * resolved as the open of that descriptor would be; *skip* for a descriptor that is no file
 * (a pipe, a socket, a terminal, anonymous memory from memfd_create), a standard stream or none
 * at all (the call fails). A deleted file gives Py_None: only an fs grant answers for it. */
static PyObject *
fd_file_target(PyObject *fd_obj, int *skip)
{
    long fd;
    struct stat st;
    int found = fd_stat(fd_obj, &fd, &st);
    if (found < 0) {
        return NULL;
    }
    if (!found || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        *skip = 1;
        Py_RETURN_NONE;
    }
    char linkpath[sizeof("/proc/self/fd/") + 3 * sizeof(long) + 2], head[8];
    snprintf(linkpath, sizeof(linkpath), "/proc/self/fd/%ld", fd);
    ssize_t n = readlink(linkpath, head, sizeof(head));
    if (n >= 7 && memcmp(head, "/memfd:", 7) == 0) {
        *skip = 1;
        Py_RETURN_NONE;
    }
    return path_target(fd_obj, NULL);
}

/* An ioctl request that types into a terminal: TIOCSTI pushes input the shell reads once this
 * process exits, TIOCLINUX's paste does the same on a Linux console. */
static int
is_terminal_input(unsigned long request)
{
#ifdef TIOCSTI
    if (request == (unsigned long)TIOCSTI) {
        return 1;
    }
#endif
#ifdef TIOCLINUX
    if (request == (unsigned long)TIOCLINUX) {
        return 1;
    }
#endif
    return 0;
}

/* An ioctl request that changes no file: one that only copies data out (_IOC_READ), or one of
 * the old-style descriptor-flag requests. Anything else on a file is a write (FICLONE). */
static int
ioctl_only_reads(unsigned long request)
{
    static const unsigned long flag_only[] = {
#ifdef FIONREAD
        FIONREAD,
#endif
#ifdef FIONBIO
        FIONBIO,
#endif
#ifdef FIOCLEX
        FIOCLEX, FIONCLEX,
#endif
#ifdef FIOASYNC
        FIOASYNC,
#endif
        0};
    for (size_t i = 0; flag_only[i]; i++) {
        if (request == flag_only[i]) {
            return 1;
        }
    }
#ifdef _IOC_DIR
    return _IOC_DIR(request) == _IOC_READ;
#else
    return 0;
#endif
}

/* The target of one socket address (as the socket.connect and socket.bind events show it,
 * addr_target); *skip* for an unnamed one (an unbound socket, a socketpair's end) or a family
 * whose sockets were decided when they were made (netlink, packet, ...). */
static PyObject *
sockaddr_target(struct sockaddr_storage *address, socklen_t size, int *skip)
{
    char host[INET6_ADDRSTRLEN];
    PyObject *addr = NULL;
    if (address->ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)address;
        if (in->sin_port == 0) {
            *skip = 1;   /* not bound: nothing reaches it */
            Py_RETURN_NONE;
        }
        addr = inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host))
               ? Py_BuildValue("(si)", host, (int)ntohs(in->sin_port)) : NULL;
    } else if (address->ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)address;
        if (in6->sin6_port == 0) {
            *skip = 1;
            Py_RETURN_NONE;
        }
        addr = inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host))
               ? Py_BuildValue("(si)", host, (int)ntohs(in6->sin6_port)) : NULL;
    } else if (address->ss_family == AF_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)address;
        Py_ssize_t length = (Py_ssize_t)size - (Py_ssize_t)offsetof(struct sockaddr_un, sun_path);
        if (length <= 0) {
            *skip = 1;   /* an unnamed socket: a socketpair, free as socketpair() is */
            Py_RETURN_NONE;
        }
        if (un->sun_path[0] != '\0') {
            length = (Py_ssize_t)strnlen(un->sun_path, (size_t)length);
        }
        addr = PyUnicode_DecodeFSDefaultAndSize(un->sun_path, length);
    } else {
        *skip = 1;   /* netlink, packet, ...: creating them was decided */
        Py_RETURN_NONE;
    }
    if (addr == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetFromErrno(PyExc_OSError);
        }
        return NULL;
    }
    PyObject *out = addr_target(addr);
    Py_DECREF(addr);
    return out;
}

/* T_FD_PEER: who a socket descriptor talks to, as the socket.connect event shows it: the
 * address at the other end of a connected socket; for one with no peer that is bound (a
 * listening server, a UDP socket), the address it is bound to, as the socket.bind event shows
 * it, since accepting on it or reading its datagrams is serving there. *skip* for a descriptor
 * that is no socket, or one of an unnamed socketpair, or neither connected nor bound. */
static PyObject *
fd_peer_target(PyObject *fd_obj, int *skip)
{
    long fd;
    struct stat st;
    int found = fd_stat(fd_obj, &fd, &st);
    if (found < 0) {
        return NULL;
    }
    if (!found || !S_ISSOCK(st.st_mode)) {
        *skip = 1;
        Py_RETURN_NONE;
    }
    struct sockaddr_storage address;
    socklen_t size = sizeof(address);
    memset(&address, 0, sizeof(address));
    if (getpeername((int)fd, (struct sockaddr *)&address, &size) != 0) {
        size = sizeof(address);
        memset(&address, 0, sizeof(address));
        if (errno != ENOTCONN || getsockname((int)fd, (struct sockaddr *)&address, &size) != 0) {
            *skip = 1;
            Py_RETURN_NONE;
        }
    }
    return sockaddr_target(&address, size, skip);
}

/* The target of check i, computed once (most checks never need it). Borrowed; Py_None: no target. */
static PyObject *
get_target(checks_t *c, int i)
{
    check_t *k = &c->items[i];
    if (k->done) {
        return k->value;
    }
    PyObject *v = NULL;
    switch (k->kind) {
    case T_NONE: v = Py_None; Py_INCREF(v); break;
    case T_VALUE: v = k->a; Py_INCREF(v); break;
    case T_PATH: v = path_target(k->a, k->b); break;
    case T_ADDR: v = addr_target(k->a); break;
    case T_HOSTPORT: v = hostport_target(k->a, k->b); break;
    case T_PROGRAM: v = program_target(k->a, k->b); break;
    case T_ENV: v = name_text(k->a); break;
    case T_GLOB: v = glob_target(k->a); break;
    case T_FD_FILE: v = fd_file_target(k->a, &k->skip); break;
    case T_FD_PEER: v = fd_peer_target(k->a, &k->skip); break;
    case T_ENVIRON:
    case T_MEMORY: {
        int is_proc_file = proc_file(k->a, c, k->companion, k->kind == T_MEMORY);
        if (is_proc_file < 0) {
            return NULL;
        }
        k = &c->items[i];
        k->skip = !is_proc_file;
        v = is_proc_file ? str_star : Py_None;
        Py_INCREF(v);
        break;
    }
    }
    if (v == NULL) {
        return NULL;
    }
    k->value = v;
    k->done = 1;
    return v;
}

/* ------------------------------------------------------------------ building checks from an event */

static int
is_str_with_any(PyObject *s, const char *chars)
{
    if (!PyUnicode_Check(s)) {
        return 0;
    }
    for (const char *p = chars; *p; p++) {
        if (PyUnicode_FindChar(s, (Py_UCS4)*p, 0, PyUnicode_GET_LENGTH(s), 1) >= 0) {
            return 1;
        }
    }
    return 0;
}

static PyObject *
arg(PyObject *args, int i)
{
    return (i >= 0 && i < PyTuple_GET_SIZE(args)) ? PyTuple_GET_ITEM(args, i) : NULL;
}

static int
add_path_check(checks_t *c, int cap, PyObject *value, PyObject *dir_fd, PyObject *api)
{
    PyObject *raw = plain(value);
    if (raw == NULL) {
        return -1;
    }
    check_t *k = add_check(c, cap, T_PATH, raw, dir_fd, api);
    Py_DECREF(raw);
    return k == NULL ? -1 : 0;
}

/* True when the SQLite library in the process reads every "file:" name as a URI (SQLITE_USE_URI).
 * Asked of the library itself, once, when the first database is opened (it is loaded by then):
 * no Python answer is trusted. Unknown means no, which checks the literal reading as well. */
static int
sqlite_reads_uris(void)
{
    static int known = -1;
    if (known < 0) {
        known = sqlite_always_uri;
        void *lib = dlopen("libsqlite3.so.0", RTLD_LAZY | RTLD_NOLOAD);
        int (*used)(const char *) = NULL;
        if (lib != NULL) {
            *(void **)(&used) = dlsym(lib, "sqlite3_compileoption_used");
        }
        if (used == NULL) {
            *(void **)(&used) = dlsym(RTLD_DEFAULT, "sqlite3_compileoption_used");
        }
        if (used != NULL) {
            known = used("USE_URI") != 0;
        }
        if (lib != NULL) {
            dlclose(lib);
        }
    }
    return known;
}

/* A check on argument *a* of the event, which must be there (hook.checks_for indexes it). */
static check_t *
add_arg_check(checks_t *c, int cap, int kind, PyObject *args, int a, PyObject *b, PyObject *api)
{
    PyObject *value = arg(args, a);
    if (value == NULL) {
        PyErr_SetString(PyExc_IndexError, "tuple index out of range");
        return NULL;
    }
    return add_check(c, cap, kind, value, b, api);
}

/* mmap.mmap(fd, ..., access) and fcntl.ioctl(fd, request, ...): the descriptor's file, read or
 * written as the open it rides on (capimport/table/events.py, "mmap" and "ioctl"). */
/* The files a database name (str or bytes) opens, as SQLite reads it: fs, or fs-readonly for a
 * mode=ro URI, on each (none for an in-memory database). For the sqlite3.connect event and the
 * authorizer's ATTACH (_core_sqlite.h). */
static int
add_sqlite_checks(checks_t *c, PyObject *db, PyObject *api)
{
    PyObject *name = exact_text(db);
    PyObject *targets = name ? cpaths_sqlite_targets(name, sqlite_reads_uris()) : NULL;
    Py_XDECREF(name);
    if (targets == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t t = 0; t < PyList_GET_SIZE(targets) && rc == 0; t++) {
        PyObject *item = PyList_GET_ITEM(targets, t);
        int cap = PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(item, 0), "fs") == 0 ? CAP_FS : CAP_FS_RO;
        rc = add_check(c, cap, T_PATH, PyTuple_GET_ITEM(item, 1), NULL, api) ? 0 : -1;
    }
    Py_DECREF(targets);
    return rc;
}

static check_t *
add_descriptor_check(checks_t *c, event_t *e, PyObject *args, int kind, int a, int b)
{
    PyObject *fd = arg(args, a), *what = arg(args, b);
    if (fd == NULL || what == NULL || !PyLong_CheckExact(fd) || !PyLong_Check(what)) {
        PyErr_SetString(PyExc_TypeError, "an unexpected argument type");
        return NULL;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(what, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int reads;
    if (kind == S_MMAP) {   /* ACCESS_READ, or ACCESS_COPY (private): the mapping never writes the file */
        reads = !overflow && (value == 1 || value == 3 || !fd_writable(fd));
    } else {
        unsigned long request = overflow ? 0 : (unsigned long)value;
        if (!overflow && is_terminal_input(request)) {   /* typed into the terminal, run by the shell */
            PyObject *sh = PyUnicode_FromString("/bin/sh");
            check_t *k = sh ? add_check(c, CAP_PROCESS, T_PROGRAM, sh, NULL, e->api) : NULL;
            Py_XDECREF(sh);
            return k;
        }
        reads = !overflow && ioctl_only_reads(request);
    }
    return add_check(c, reads ? CAP_FS_RO : CAP_FS, T_FD_FILE, fd, NULL, e->api);
}

static int
build_checks(event_t *e, PyObject *args, checks_t *c)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (e->cap == CAP_OPEN) {
        PyObject *flags_obj = arg(args, 2), *mode_obj = arg(args, 1);
        int writes = 0;
        if (flags_obj != NULL && PyLong_Check(flags_obj)) {
            int overflow = 0;
            long long flags = PyLong_AsLongLongAndOverflow(flags_obj, &overflow);
            if (flags == -1 && PyErr_Occurred()) {
                return -1;
            }
            writes = overflow != 0 || (flags & write_flags) != 0;   /* a huge value: read as a write */
        }
        if (mode_obj != NULL && is_str_with_any(mode_obj, "wax+")) {
            writes = 1;
        }
        PyObject *raw = plain(arg(args, 0));
        if (raw == NULL) {
            return -1;
        }
        /* open(fd): decided as reads and writes through that descriptor are (a pipe is free) */
        int fd_kind = PyLong_Check(raw) && !PyBool_Check(raw) ? T_FD_FILE : T_PATH;
        check_t *k = add_check(c, writes ? CAP_FS : CAP_FS_RO, fd_kind, raw, NULL, e->api);
        if (k != NULL && !writes) {
            k = add_check(c, CAP_ENV_RO, T_ENVIRON, raw, NULL, e->api);
            if (k != NULL) {
                k->companion = 0;
            }
        }
        if (k != NULL) {   /* a process's memory, read or written: rewriting capimport itself */
            k = add_check(c, CAP_FFI, T_MEMORY, raw, NULL, str_memory_api);
            if (k != NULL) {
                k->companion = 0;
            }
        }
        Py_DECREF(raw);
        return k == NULL ? -1 : 0;
    }
    for (int s = 0; s < e->nscopes; s++) {
        int a = e->scope_a[s], b = e->scope_b[s];
        check_t *k = (check_t *)1;
        switch (e->scope_kind[s]) {
        case S_PATH:
            if (add_path_check(c, e->cap, arg(args, a), arg(args, b), e->api) < 0) {
                return -1;
            }
            break;
        case S_ADDR:
            k = add_arg_check(c, e->cap, T_ADDR, args, a, NULL, e->api);
            break;
        case S_HOSTPORT:
            k = add_arg_check(c, e->cap, T_HOSTPORT, args, a, arg(args, b), e->api);
            break;
        case S_PROGRAM: {
            int popen = strcmp(e->name, "subprocess.Popen") == 0;
            PyObject *env = popen ? arg(args, 3) : NULL;
            PyObject *value = arg(args, a);
            PyObject *empty = NULL;
            if (value == NULL) {
                value = empty = PyUnicode_FromString("");
                if (value == NULL) {
                    return -1;
                }
            }
            if (popen && value == Py_None && n > 1) {
                value = PyTuple_GET_ITEM(args, 1);
            }
            PyObject *raw = plain(value);
            Py_XDECREF(empty);
            if (raw == NULL) {
                return -1;
            }
            k = add_check(c, e->cap, T_PROGRAM, raw, env, e->api);
            Py_DECREF(raw);
            break;
        }
        case S_SHELL: {
            PyObject *sh = PyUnicode_FromString("/bin/sh");
            if (sh == NULL) {
                return -1;
            }
            k = add_check(c, e->cap, T_PROGRAM, sh, NULL, e->api);
            Py_DECREF(sh);
            break;
        }
        case S_ENV:
            k = add_arg_check(c, e->cap, T_ENV, args, a, NULL, e->api);
            break;
        case S_SOCKET: {
            PyObject *family = arg(args, a);
            if (family != NULL && PyLong_Check(family) && PyLong_AsLong(family) == af_unix) {
                break;   /* socketpair() and unix sockets: checked at connect/bind */
            }
            PyErr_Clear();
            k = add_check(c, e->cap, T_NONE, NULL, NULL, e->api);
            break;
        }
        case S_GLOB:
            k = add_arg_check(c, e->cap, T_GLOB, args, a, NULL, e->api);
            break;
        case S_PID: {   /* resource.prlimit(pid, resource, limits): setting another process's limits */
            PyObject *pid = arg(args, a), *value = arg(args, b);
            long number = pid != NULL && PyLong_Check(pid) ? PyLong_AsLong(pid) : -1;
            if (number == -1 && PyErr_Occurred()) {
                PyErr_Clear();   /* out of range: not this process */
            }
            if (value != NULL && value != Py_None && number != 0 && number != (long)getpid()) {
                k = add_check(c, e->cap, T_NONE, NULL, NULL, e->api);
            }
            break;
        }
        case S_MMAP:
        case S_IOCTL:
            k = add_descriptor_check(c, e, args, e->scope_kind[s], a, b);
            break;
        case S_SQLITE: {
            PyObject *db = n ? plain(arg(args, a)) : PyUnicode_FromString(":memory:");
            if (db == NULL) {
                return -1;
            }
            if (!(PyUnicode_Check(db) || PyBytes_Check(db))) {
                k = add_check(c, CAP_FS, T_PATH, db, NULL, e->api);
                Py_DECREF(db);
                break;
            }
            int added = add_sqlite_checks(c, db, e->api);
            Py_DECREF(db);
            if (added < 0) {
                return -1;
            }
            break;
        }
        }
        if (k == NULL) {
            return -1;
        }
    }
    if (e->nscopes == 0 && add_check(c, e->cap, T_NONE, NULL, NULL, e->api) == NULL) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ holding a capability */

static int
scope_matches(int cap, PyObject *pattern, PyObject *target)
{
    switch (cap) {
    case CAP_FS:
    case CAP_FS_RO:
        return PyUnicode_Check(target) ? cmatch_path_matches(pattern, target) : 0;
    case CAP_ENV:
    case CAP_ENV_RO:
        return PyUnicode_Check(target) ? cmatch_env_matches(pattern, target) : 0;
    case CAP_PROCESS:
        return PyUnicode_Check(target) ? cmatch_program_matches(pattern, target) : 0;
    case CAP_NET:
        if (PyTuple_Check(target) && PyTuple_GET_SIZE(target) == 2 && PyUnicode_Check(PyTuple_GET_ITEM(target, 0))) {
            return cmatch_host_matches(pattern, PyTuple_GET_ITEM(target, 0), PyTuple_GET_ITEM(target, 1));
        }
        return 0;
    }
    return 0;
}

static int
scope_allows(int cap, PyObject *scope, PyObject *target)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(scope); i++) {
        int m = scope_matches(cap, PyTuple_GET_ITEM(scope, i), target);
        if (m != 0) {
            return m;
        }
    }
    return 0;
}

/* OriginMap.owns: the resolved path is one of the distribution's installed files or folders. */
static int
owns(int origin, PyObject *path)
{
    PyObject *owners = strmap_get(&owned, path);
    if (owners != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(owners); i++) {
            if (PyLong_AsLong(PyTuple_GET_ITEM(owners, i)) == origin) {
                return 1;
            }
        }
    }
    PyObject *rts = owned_roots[origin];
    if (rts == NULL) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(rts); i++) {
        PyObject *root = PyTuple_GET_ITEM(rts, i);
        Py_ssize_t n = PyUnicode_GET_LENGTH(root);
        if (str_equal(path, root)) {
            return 1;
        }
        if (starts_with(path, root) && PyUnicode_GET_LENGTH(path) > n && PyUnicode_READ_CHAR(path, n) == '/') {
            return 1;
        }
    }
    return 0;
}

/* OriginMap.standard_library_file: a resolved path inside the standard library's folders that no
 * distribution, site folder or application folder holds. Anyone may read the standard library
 * (runpy.run_module, importlib.resources, inspect on a stdlib module): it is the interpreter's
 * own code, the same in every process, and no secret. 1, 0, -1. */
static int
standard_library_file(PyObject *path)
{
    if (!any_prefix(path, stdlib_dirs) || any_prefix(path, site_dirs) || any_prefix(path, app_dirs)) {
        return 0;
    }
    static const char *sites[] = {"site-packages", "dist-packages", NULL};
    for (int i = 0; sites[i]; i++) {
        char inside[32], at_end[32];   /* a file inside the folder, or the folder itself */
        snprintf(inside, sizeof inside, "/%s/", sites[i]);
        snprintf(at_end, sizeof at_end, "/%s", sites[i]);
        int found = contains_ascii(path, inside);
        found = found == 0 ? ends_with_ascii(path, at_end) : found;
        if (found != 0) {
            return found < 0 ? -1 : 0;
        }
    }
    return distribution_of(path) < 0;
}

/* The addresses a host name resolves to (cached for the process), as strings. */
static PyObject *
addresses_of(PyObject *name)
{
    PyObject *found = strmap_get(&resolved, name);
    if (found != NULL) {
        Py_INCREF(found);
        return found;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    const char *host = PyUnicode_AsUTF8(name);
    /* Other names would need IDNA encoding, and a NUL would cut the name short (a scope's
     * "a\0.example.com" is not a.): they resolve to nothing here (no match). */
    int ascii = host != NULL && PyUnicode_IS_ASCII(name) && strlen(host) == (size_t)PyUnicode_GET_LENGTH(name);
    if (host == NULL) {
        PyErr_Clear();
    }
    struct addrinfo *infos = NULL;
    int rc = -1;
    if (ascii) {
        Py_BEGIN_ALLOW_THREADS
        rc = getaddrinfo(host, NULL, NULL, &infos);
        Py_END_ALLOW_THREADS
    }
    if (rc == 0) {
        for (struct addrinfo *ai = infos; ai != NULL; ai = ai->ai_next) {
            char text[INET6_ADDRSTRLEN];
            const void *src = NULL;
            if (ai->ai_family == AF_INET) {
                src = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
            } else if (ai->ai_family == AF_INET6) {
                src = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            }
            if (src != NULL && inet_ntop(ai->ai_family, src, text, sizeof(text)) != NULL) {
                PyObject *s = PyUnicode_FromString(text);
                if (s == NULL || PyList_Append(out, s) < 0) {
                    Py_XDECREF(s);
                    freeaddrinfo(infos);
                    Py_DECREF(out);
                    return NULL;
                }
                Py_DECREF(s);
            }
        }
        freeaddrinfo(infos);
    }
    PyObject *tuple = PyList_AsTuple(out);
    Py_DECREF(out);
    if (tuple == NULL || strmap_set(&resolved, name, tuple) < 0) {
        Py_XDECREF(tuple);
        return NULL;
    }
    return tuple;
}

static int
has_star(PyObject *s)
{
    return PyUnicode_FindChar(s, '*', 0, PyUnicode_GET_LENGTH(s), 1) >= 0;
}

/* Enforcer._named_address: (ip, port) of a host name the scope allows, looked up forward. */
static int
named_address(PyObject *scope, PyObject *target)
{
    if (!(PyTuple_Check(target) && PyTuple_GET_SIZE(target) == 2)) {
        return 0;
    }
    PyObject *ip = PyTuple_GET_ITEM(target, 0), *port = PyTuple_GET_ITEM(target, 1);
    int is_ip = PyUnicode_Check(ip) ? cmatch_is_ip(ip) : 0;
    if (is_ip != 1) {
        return is_ip < 0 ? -1 : 0;
    }
    PyObject *candidates = PyList_GetSlice(looked_up, 0, PY_SSIZE_T_MAX);   /* a copy: lookups release the GIL */
    if (candidates == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(scope); i++) {
        PyObject *value = PyTuple_GET_ITEM(scope, i);
        if (PyUnicode_GET_LENGTH(value) == 0 || PyUnicode_READ_CHAR(value, 0) == '[') {
            continue;
        }
        Py_ssize_t colon = PyUnicode_FindChar(value, ':', 0, PyUnicode_GET_LENGTH(value), -1);
        PyObject *host = PyUnicode_Substring(value, 0, colon < 0 ? PyUnicode_GET_LENGTH(value) : colon);
        if (host == NULL) {
            Py_DECREF(candidates);
            return -1;
        }
        int named = PyUnicode_GET_LENGTH(host) && !has_star(host) ? cmatch_is_ip(host) == 0 : 0;
        if (PyErr_Occurred() || (named && PyList_Append(candidates, host) < 0)) {
            Py_DECREF(host);
            Py_DECREF(candidates);
            return -1;
        }
        Py_DECREF(host);
    }
    int result = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(candidates) && result == 0; i++) {
        PyObject *name = PyList_GET_ITEM(candidates, i);
        PyObject *pair = PyTuple_Pack(2, name, port);
        if (pair == NULL) {
            result = -1;
            break;
        }
        int allowed = scope_allows(CAP_NET, scope, pair);
        Py_DECREF(pair);
        if (allowed != 1) {
            result = allowed < 0 ? -1 : 0;
            continue;
        }
        PyObject *addresses = addresses_of(name);
        if (addresses == NULL) {
            result = -1;
            break;
        }
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(addresses); j++) {
            if (str_equal(PyTuple_GET_ITEM(addresses, j), ip)) {
                result = 1;
                break;
            }
        }
        Py_DECREF(addresses);
    }
    Py_DECREF(candidates);
    return result;
}

/* Enforcer.holds: 1 allowed, 0 not (with *scoped set when the origin holds the capability
 * elsewhere), -1 error. */
/* glibc's named semaphores: sem_open("/name") maps this file (hook.SEMAPHORE_FILES). */
static const char semaphore_files[] = "/dev/shm/sem.";

/* 1 when *path* is a named semaphore's file that this process has mapped now: one it made
 * (multiprocessing's locks under spawn/forkserver unlink theirs at exit, from whatever stack
 * runs the finalizer) or opened already with a grant. Removing it, or opening it again, touches
 * only this process's own object. glibc maps a temporary file and links it under the name
 * after, so /proc/self/maps is searched for the file's device and inode, not its name. 0
 * otherwise, and on any error (fail closed). */
static int
mapped_semaphore(PyObject *path)
{
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(path, &size);
    size_t plen = sizeof(semaphore_files) - 1;
    struct stat st;
    if (text == NULL) {
        PyErr_Clear();
        return 0;
    }
    if ((size_t)size <= plen || strncmp(text, semaphore_files, plen) != 0 || strchr(text + plen, '/') != NULL
            || strlen(text) != (size_t)size || stat(text, &st) != 0 || !S_ISREG(st.st_mode)) {
        return 0;
    }
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = PyMem_RawMalloc(cap + 1);
    ssize_t got = 0;
    while (buf != NULL && (got = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)got;
        if (len == cap) {
            char *bigger = cap < (1 << 26) ? PyMem_RawRealloc(buf, cap * 2 + 1) : NULL;
            if (bigger == NULL) {
                PyMem_RawFree(buf);
            }
            buf = bigger;
            cap *= 2;
        }
    }
    close(fd);
    if (buf == NULL || got < 0) {
        PyMem_RawFree(buf);
        return 0;
    }
    buf[len] = '\0';
    int found = 0;
    for (char *line = buf; line != NULL && *line && !found;) {
        unsigned int major_no, minor_no;
        unsigned long long inode;
        /* address perms offset dev(major:minor, hex) inode [pathname] */
        found = sscanf(line, "%*s %*s %*s %x:%x %llu", &major_no, &minor_no, &inode) == 3
                && major_no == major(st.st_dev) && minor_no == minor(st.st_dev)
                && inode == (unsigned long long)st.st_ino;
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    PyMem_RawFree(buf);
    return found;
}

static int
holds(int origin, checks_t *c, int i, int *scoped)
{
    int cap = c->items[i].cap;
    grant_t *g = &grants[origin];
    int held = (g->held >> cap) & 1;
    *scoped = 0;
    if (held && g->scope[cap] == NULL) {
        return 1;
    }
    PyObject *target = get_target(c, i);
    if (target == NULL) {
        return -1;
    }
    if (c->items[i].skip) {
        return 1;
    }
    if (held) {
        if (target == Py_None) {
            return 1;
        }
        int m = scope_allows(cap, g->scope[cap], target);
        if (m != 0) {
            return m;
        }
    }
    if (cap == CAP_FS_RO && PyUnicode_Check(target)) {
        int readable = origin >= O_FIRST_DIST && owns(origin, target) ? 1 : standard_library_file(target);
        if (readable != 0) {
            return readable;
        }
    }
    if (cap == CAP_FS && PyUnicode_Check(target) && mapped_semaphore(target)) {
        return 1;
    }
    if (cap == CAP_NET && held) {
        int m = named_address(g->scope[cap], target);
        if (m != 0) {
            return m;
        }
    }
    *scoped = held;
    return 0;
}

/* ------------------------------------------------------------------ the walk */

typedef struct {
    int origin;
    PyObject *filename;     /* new reference */
    PyObject *frame;        /* new reference or NULL (an inherited link) */
    int lineno;
} link_t;

typedef struct {
    link_t *items;
    int n, size;
} chain_t;

static int
chain_append(chain_t *ch, int origin, PyObject *filename, PyObject *frame, int lineno)
{
    if (ch->n == ch->size) {
        int size = ch->size ? ch->size * 2 : 8;
        link_t *items = PyMem_Realloc(ch->items, sizeof(link_t) * (size_t)size);
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        ch->items = items;
        ch->size = size;
    }
    Py_INCREF(filename);
    Py_XINCREF(frame);
    ch->items[ch->n++] = (link_t){origin, filename, frame, lineno};
    return 0;
}

static void
chain_clear(chain_t *ch)
{
    for (int i = 0; i < ch->n; i++) {
        Py_DECREF(ch->items[i].filename);
        Py_XDECREF(ch->items[i].frame);
    }
    PyMem_Free(ch->items);
    ch->items = NULL;
    ch->n = ch->size = 0;
}

/* *path* is the folder *inside* names ("<folder>/") or below it: 1, 0. */
static int
at_or_under(PyObject *path, PyObject *inside)
{
    return starts_with(path, inside)
           || (PyUnicode_GET_LENGTH(path) == PyUnicode_GET_LENGTH(inside) - 1 && starts_with(inside, path));
}

static int
is_pycache(PyObject *path)
{
    if (pycache_prefix != NULL) {
        PyObject *prefix = PyTuple_GET_ITEM(pycache_prefix, 0);
        if (str_equal(path, prefix) || at_or_under(path, PyTuple_GET_ITEM(pycache_prefix, 1))) {
            return 1;   /* the prefix (as given or resolved at install), or under it */
        }
        if (PyUnicode_READ_CHAR(prefix, 0) != '/') {   /* relative: under the working folder of now */
            PyObject *resolved = cpaths_realpath(prefix);
            PyObject *inside = resolved ? PyUnicode_FromFormat("%U/", resolved) : NULL;
            int found = inside ? at_or_under(path, inside) : -1;
            Py_XDECREF(resolved);
            Py_XDECREF(inside);
            if (found != 0) {
                return found;
            }
        }
    }
    int inside = contains_ascii(path, "/__pycache__/");
    if (inside != 0) {
        return inside;
    }
    return ends_with_ascii(path, "/__pycache__");
}

/* The file a logging handler was created for (registered by register_log_file), or NULL. */
static PyObject **log_refs = NULL, **log_bases = NULL;
static Py_ssize_t n_logs = 0;

/* A frame's locals as a mapping (new reference), or NULL with an exception. */
static PyObject *
frame_locals(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    return PyFrame_GetLocals(frame);
#else
    if (PyFrame_FastToLocalsWithError(frame) < 0) {
        return NULL;
    }
    if (frame->f_locals == NULL) {
        return PyDict_New();
    }
    Py_INCREF(frame->f_locals);
    return frame->f_locals;
#endif
}

/* Borrowed; NULL with no exception when the frame's self is no registered handler, NULL with
 * one when the frame's locals cannot be read (the walk then fails closed). */
static PyObject *
handler_base(PyFrameObject *frame)
{
    PyObject *locals = frame_locals(frame);
    if (locals == NULL) {
        return NULL;
    }
    PyObject *self = PyObject_GetItem(locals, str_self);
    Py_DECREF(locals);
    if (self == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *base = NULL;
    for (Py_ssize_t i = 0; i < n_logs; i++) {
        if (PyWeakref_GetObject(log_refs[i]) == self) {
            base = log_bases[i];
            break;
        }
    }
    Py_DECREF(self);
    return base;
}

static PyObject *
dirname_of(PyObject *path)
{
    Py_ssize_t i = PyUnicode_FindChar(path, '/', 0, PyUnicode_GET_LENGTH(path), -1);
    Py_ssize_t end = i + 1;
    while (end > 1 && PyUnicode_READ_CHAR(path, end - 1) == '/') {
        end--;
    }
    return PyUnicode_Substring(path, 0, end < 0 ? 0 : end);
}

static PyObject *inherit_stop(void);

/* The import system's frames are privileged only while it is importing: the run of its frames
 * (with the standard library's and capimport's among them) from *frame* outward reaches one of
 * its entry points before any other code, and before the frame that ran an accountable callable.
 * A distribution calling one of its helpers (_call_with_frames_removed, a loader's get_data)
 * gets no privilege from it. 1 entered, 0 not, -1 error. */
static int
import_entered(PyFrameObject *frame)
{
    static const char *entries[] = {"_find_and_load", "_gcd_import", "_handle_fromlist", "_find_spec", "_load",
                                    "_exec", NULL};
    PyObject *stop_at = inherit_stop();
    PyFrameObject *f = frame;
    Py_XINCREF(f);
    int found = 0;
    while (f != NULL && (PyObject *)f != stop_at) {
        PyCodeObject *code = PyFrame_GetCode(f);
        int origin = code_origin(code);
        int entry = 0;
        for (int i = 0; origin == O_IMPORT && entries[i]; i++) {
            entry |= PyUnicode_CompareWithASCIIString(code->co_name, entries[i]) == 0;
        }
        Py_DECREF(code);
        if (origin < 0) {
            found = -1;
            break;
        }
        if (entry) {
            found = 1;
            break;
        }
        if (origin != O_IMPORT && origin != O_STDLIB && origin != O_CAPIMPORT) {
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
    return found;
}

/* A name the import system reads as a module: source, bytecode or an extension module (on every
 * platform CPython builds for, extension suffixes end in .so or .pyd). */
static int
module_file(PyObject *path)
{
    static const char *suffixes[] = {".py", ".pyc", ".so", ".pyd", ".pyw", NULL};
    for (int i = 0; suffixes[i]; i++) {
        int found = ends_with_ascii(path, suffixes[i]);
        if (found != 0) {
            return found;
        }
    }
    return 0;
}

/* The import system reading a file while importing: its privilege covers module files and
 * zipimport reading an archive for an import (its directory, a module's member). A finder a
 * distribution plants can point a standard loader at any file (a .env, a key), and anyone can call
 * a loader's or a zipimporter's get_data: any other read is not the import system's act.
 * 1 covered, 0 not, -1. */
static int
import_reads_module(PyFrameObject *frame, PyObject *path)
{
    PyFrameObject *f = frame;
    Py_INCREF(f);
    int zip = 0, asked = 0;
    while (f != NULL) {   /* zipimport's frames, outward: a member read for get_data's caller? */
        PyCodeObject *code = PyFrame_GetCode(f);
        int here = PyUnicode_CompareWithASCIIString(code->co_filename, "<frozen zipimport>") == 0;
        asked |= here && PyUnicode_CompareWithASCIIString(code->co_name, "get_data") == 0;
        Py_DECREF(code);
        if (!here) {
            break;
        }
        zip = 1;
        Py_SETREF(f, PyFrame_GetBack(f));
    }
    Py_XDECREF(f);
    if (zip) {
        return !asked;
    }
    return PyUnicode_Check(path) ? module_file(path) : 0;
}

#define PRIVILEGE_PLANTED 2  /* privileged_ok: not covered; code nobody owns joins the chain */
#define PRIVILEGE_ACTING 3   /* privileged_ok: a compiled module's init acts as its file's owner */

/* The import system's own acts other than reads: set_data and _write_atomic writing the bytecode
 * cache of the source get_code compiled, as capimport would have written it (_core_bytecode.h);
 * and, inside _call_with_frames_removed running a callable the core has held since
 * install, a standard-library module's body (builtins.exec) or a builtin or standard-library
 * extension module's init (_imp's makers), for ffi only: ctypes opens the interpreter with dlopen,
 * and a planted finder can have any standard-library file run as "__main__" (http.server binding,
 * webbrowser spawning). Any other extension's init acts as its file's owner (made_module_acts).
 * Everywhere else the import system calls other parties' callables (finders, path hooks, loaders
 * and their methods, _imp's functions, any of which can be replaced without an event) and acts
 * only through them, so an act with one of its frames innermost (only standard-library frames
 * inside it) is a builtin, partial or standard-library function someone planted there, or a
 * standard-library body made to run: walk charges it to code nobody owns together with whoever
 * imports. A frame missed here is a denial, never an allow.
 *
 * May the import system write there: the folders of the cache of the source it read, where
 * cache_from_source puts it (_core_bytecode.h; the cache itself the core writes)? 1, 0, -1. */
static int import_makes_cache_folder(PyFrameObject *frame, checks_t *c, int i);
/* The import system creating a bytecode cache's temporary file: the core writes the cache itself
 * (_core_bytecode.h). 0 not this act, -1 handled (an exception set). */
static int bytecode_write(PyFrameObject *frame, PyObject *args);

/* _call_with_frames_removed running a callable the core holds (_core_tamper.h). */
static int runs_held_callable(PyFrameObject *frame);
/* The file of the module a held _imp maker is making or running (_core_tamper.h). */
static PyObject *made_module_file(PyFrameObject *frame);
#define HELD_EXEC 1      /* builtins.exec: a module's body */
#define HELD_MAKER 2     /* an _imp function making an extension module */
#define HELD_BUILTIN 3   /* an _imp function making a builtin module */


/* An act inside a held _imp maker is the init of the module it makes or runs: native code with no
 * frame of its own, acting (as a Python module's body does) as the owner of the module's file. The
 * interpreter's own (the standard library's extension modules) and capimport's answer 1, which the
 * caller takes as a standard-library body's privilege, ffi only (their inits call module attributes
 * anyone can replace: _decimal's collections.namedtuple); any other owner acts (PRIVILEGE_ACTING,
 * *acting* and *acting_file* set); with no file to name one, code nobody owns does (0). -1 error. */
static int
made_module_acts(PyFrameObject *frame, int *acting, PyObject **acting_file)
{
    PyObject *file = made_module_file(frame);
    if (file == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int origin = origin_of(file);
    if (origin < 0 || origin == O_STDLIB || origin == O_CAPIMPORT) {
        Py_DECREF(file);
        return origin < 0 ? -1 : 1;
    }
    if (TRANSPARENT(origin)) {   /* no file of anyone's */
        Py_DECREF(file);
        return 0;
    }
    *acting = origin;
    *acting_file = file;
    return PRIVILEGE_ACTING;
}

/* A read the import system's frames make for an extension module's init: native code with no
 * frame of its own calling the standard library's Python, which reads through a loader's get_data
 * (black's compiled blib2to3 reading its grammar with pkgutil.get_data). The first
 * _call_with_frames_removed outward of *frame*, with only the import system's, the standard
 * library's and capimport's frames between, runs a held _imp maker: the owner of the module it makes acts
 * (PRIVILEGE_ACTING), reading its own files as a Python module's body would and anything else
 * only with its grant. Which loader get_data belongs to decides nothing: a loader subclass built
 * on another distribution's module file reads as whoever drives it. 0 when no such init reads
 * (the standard library's extensions included), -1 error. */
static int
init_reads(PyFrameObject *frame, int *acting, PyObject **acting_file)
{
    PyFrameObject *f = frame;
    Py_INCREF(f);
    int found = 0;
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        int origin = code_origin(code);
        int helper = origin == O_IMPORT
                     && PyUnicode_CompareWithASCIIString(code->co_name, "_call_with_frames_removed") == 0;
        Py_DECREF(code);
        if (origin < 0) {
            found = -1;
            break;
        }
        if (helper) {
            int held = runs_held_callable(f);
            found = held < 0 ? -1 : held == HELD_MAKER ? made_module_acts(f, acting, acting_file) : 0;
            break;
        }
        if (origin != O_IMPORT && origin != O_STDLIB && origin != O_CAPIMPORT) {   /* capimport's: its _imp gates */
            break;
        }
        Py_SETREF(f, PyFrame_GetBack(f));
    }
    Py_XDECREF(f);
    return found < 0 ? -1 : found == PRIVILEGE_ACTING ? found : 0;
}

/* Enforcer._privileged: may a privileged stdlib frame met before any actor allow the act? 1 yes,
 * 0 no (the walk goes on), PRIVILEGE_PLANTED (not the import system's act: a callable it called,
 * or a read of a file that is no module, which a planted finder or anyone calling get_data can
 * have chosen: walk charges it to code nobody owns and whoever imports), PRIVILEGE_ACTING (an
 * extension module's init, native code with no frame of its own: the owner of its file, *acting*
 * with *acting_file* (new reference), acts, as a Python module's body would), -1 error. */
static int
privileged_ok(int kind, PyFrameObject *frame, checks_t *c, int *acting, PyObject **acting_file)
{
    PyObject *base = NULL;
    int held = -2;   /* runs_held_callable(frame), asked only for an act that is neither read nor write */
    if (kind == O_IMPORT) {
        int entered = import_entered(frame);
        if (entered <= 0) {
            return entered;
        }
    }
    if (kind == O_LOGGING) {
        base = handler_base(frame);
        if (base == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
    }
    for (int i = 0; i < c->n; i++) {
        int cap = c->items[i].cap;
        if (c->items[i].kind == T_ENV) {
            /* No privilege covers an environment variable: linecache calling a planted loader's
             * get_source, a logging handler running a planted filter, or the import system
             * calling a planted loader would read it for the planter. The walk goes on. */
            return 0;
        }
        int target_kind = c->items[i].kind;
        if (target_kind == T_FD_FILE || target_kind == T_FD_PEER || target_kind == T_MEMORY
                || target_kind == T_ENVIRON) {
            /* No privilege reads or writes through a descriptor: none of the import system,
             * linecache or logging does (their files are file objects), a planted builtin would.
             * Nor does any cover a process's memory or environment (/proc/<pid>/mem, environ). */
            if (get_target(c, i) == NULL) {
                return -1;
            }
            if (c->items[i].skip) {
                continue;
            }
            return 0;
        }
        if (kind == O_IMPORT) {   /* while importing (import_entered): its own acts only */
            int reads = cap == CAP_FS_RO;
            if (reads && !str_equal(c->items[i].api, str_open)) {
                continue;   /* metadata: stat, listdir, getcwd */
            }
            PyObject *v = reads || cap == CAP_FS ? get_target(c, i) : Py_None;
            if (v == NULL) {
                return -1;
            }
            int ok = 0;
            if (reads) {   /* module files, or an extension's init reading (as its owner) */
                ok = import_reads_module(frame, v);
                ok = ok == 0 ? init_reads(frame, acting, acting_file) : ok;
                if (ok == PRIVILEGE_ACTING) {
                    return ok;
                }
            } else if (cap == CAP_FS) {
                ok = import_makes_cache_folder(frame, c, i);
            }
            if (ok == 0) {   /* inside _call_with_frames_removed: a module's body or init? */
                held = held == -2 ? runs_held_callable(frame) : held;
                ok = held < 0 ? -1 : (held == HELD_EXEC || held == HELD_BUILTIN) && cap == CAP_FFI;
                if (held == HELD_MAKER) {
                    ok = made_module_acts(frame, acting, acting_file);
                    if (ok == PRIVILEGE_ACTING) {
                        return ok;
                    }
                    ok = ok == 1 ? cap == CAP_FFI : ok;   /* the interpreter's own: as its bodies */
                }
            }
            if (ok <= 0) {
                return ok < 0 ? -1 : PRIVILEGE_PLANTED;
            }
        } else if (kind == O_LINECACHE) {
            if (cap != CAP_FS_RO && cap != CAP_ENV_RO) {
                return 0;
            }
            if (cap == CAP_FS_RO && str_equal(c->items[i].api, str_open)) {
                PyObject *v = get_target(c, i);
                if (v == NULL) {
                    return -1;
                }
                if (!PyUnicode_Check(v)) {
                    return 0;
                }
                int py = ends_with_ascii(v, ".py"), pyw = py == 0 ? ends_with_ascii(v, ".pyw") : 0;
                if (py < 0 || pyw < 0) {
                    return -1;
                }
                if (!py && !pyw) {
                    return 0;
                }
            }
        } else {   /* logging: a handler writing where its creator was allowed to write */
            if (cap != CAP_FS && cap != CAP_FS_RO && cap != CAP_ENV_RO) {
                return 0;
            }
            if (cap == CAP_ENV_RO) {
                continue;
            }
            PyObject *v = get_target(c, i);
            if (v == NULL) {
                return -1;
            }
            if (!PyUnicode_Check(v)) {
                return 0;
            }
            int ok = str_equal(v, base);
            if (!ok) {
                PyObject *dotted = PyUnicode_FromFormat("%U.", base);
                PyObject *dir = dotted ? dirname_of(base) : NULL;
                if (dir == NULL) {
                    Py_XDECREF(dotted);
                    return -1;
                }
                ok = starts_with(v, dotted) || str_equal(v, dir);
                Py_DECREF(dotted);
                Py_DECREF(dir);
            }
            if (!ok) {
                return 0;
            }
        }
    }
    return 1;
}

#include "_core_chains.h"

/* attribution.walk: 1 when a privileged frame allows the act outright, 0 with the chain in *ch, -1.
 * With *c* NULL (a chain captured for later), no privileged frame allows anything: met before any
 * actor, it is looked through. */
static int
walk(PyFrameObject *start, checks_t *c, chain_t *ch)
{
    int last = -1, deps = 0;
    int looked_through = 0;   /* a privilege did not cover the act: no privileged frame ends this walk */
    PyObject *stop_at = inherit_stop();   /* the frame that ran an accountable callable: not part of the act */
    PyFrameObject *frame = start;
    Py_XINCREF(frame);
    while (frame != NULL) {
        if ((PyObject *)frame == stop_at) {
            Py_DECREF(frame);
            break;
        }
        PyCodeObject *code = PyFrame_GetCode(frame);
        int origin = code_origin(code);
        int stop = 0;   /* 1: the bottom; 2: return the chain as it is; 3: allow; -1: error */
        if (origin < 0) {
            stop = -1;
        } else if (TRANSPARENT(origin)) {
            if (origin == O_BOTTOM) {
                stop = 1;
            } else if (origin == O_CAPIMPORT) {
                if (deps) {   /* capimport running its own dependencies: they act for it */
                    int kept = 0;
                    for (int i = 0; i < ch->n; i++) {
                        if (capimport_dep[ch->items[i].origin]) {
                            Py_DECREF(ch->items[i].filename);
                            Py_XDECREF(ch->items[i].frame);
                        } else {
                            ch->items[kept++] = ch->items[i];
                        }
                    }
                    ch->n = kept;
                    last = kept ? ch->items[kept - 1].origin : -1;
                    deps = 0;
                }
            } else if (PRIVILEGED(origin) && !looked_through) {
                if (ch->n) {
                    stop = 2;
                } else if (c != NULL) {
                    int acting = -1;
                    PyObject *acting_file = NULL;
                    int ok = privileged_ok(origin, frame, c, &acting, &acting_file);
                    if (ok == PRIVILEGE_ACTING) {   /* the owner acts; the next privileged frame ends the walk */
                        ok = chain_append(ch, acting, acting_file, NULL, 0) < 0 ? -1 : 0;
                        Py_DECREF(acting_file);
                        last = acting;
                    }
                    if (ok == PRIVILEGE_PLANTED) {   /* code nobody owns, then whoever imports */
                        PyObject *empty = PyUnicode_FromString("");
                        ok = empty == NULL || chain_append(ch, O_UNKNOWN, empty, NULL, 0) < 0 ? -1 : 0;
                        Py_XDECREF(empty);
                        looked_through = 1;
                        last = O_UNKNOWN;
                    }
                    stop = ok < 0 ? -1 : ok ? 3 : 0;
                }
            }
        } else if (origin != last) {
            if (chain_append(ch, origin, code->co_filename, (PyObject *)frame, 0) < 0) {
                stop = -1;
            }
            last = origin;
            if (capimport_dep[origin]) {
                deps = 1;
            }
        }
        Py_DECREF(code);
        if (stop) {
            Py_DECREF(frame);
            if (stop == 1) {
                break;
            }
            return stop == -1 ? -1 : stop == 3 ? 1 : 0;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return append_inherited(ch, &last);
}

/* The origin of the first frame from *start* outward whose origin is not in *skip* (a bit mask of
 * origins below O_FIRST_DIST); O_APP when every frame is skipped, -1 on error. */
static int
first_origin(PyFrameObject *start, unsigned skip)
{
    PyFrameObject *frame = start;
    Py_XINCREF(frame);
    int found = O_APP;
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int origin = code_origin(code);
        Py_DECREF(code);
        if (origin < 0 || origin >= O_FIRST_DIST || !(skip & (1u << origin))) {
            found = origin;
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    return found;
}

/* ------------------------------------------------------------------ deciding */

static PyObject *
chain_as_list(chain_t *ch)
{
    PyObject *out = PyList_New(ch->n);
    if (out == NULL) {
        return NULL;
    }
    for (int i = 0; i < ch->n; i++) {
        link_t *l = &ch->items[i];
        PyObject *item = Py_BuildValue("(OOOi)", PyTuple_GET_ITEM(origin_names, l->origin), l->filename,
                                       l->frame ? l->frame : Py_None, l->lineno);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

/* Deny in enforce mode (raising the error_class with *message*), report in the others. */
static int
fail_closed(PyObject *message)
{
    if (message == NULL) {
        PyErr_Clear();
        message = PyUnicode_FromString("capimport: internal error while deciding; denied (fail closed)");
        if (message == NULL) {
            return -1;
        }
    } else {
        Py_INCREF(message);
    }
    if (mode == MODE_ENFORCE) {
        PyObject *exc = PyObject_CallOneArg(error_class, message);
        if (exc != NULL && PyExceptionInstance_Check(exc)) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        } else if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_PermissionError, message);
        }
        Py_XDECREF(exc);
        Py_DECREF(message);
        return -1;
    }
    PyObject *r = PyObject_CallOneArg(internal_error, message);
    Py_DECREF(message);
    if (r == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(r);
    return 0;
}

static int
fail_with_current(const char *what, PyObject *name)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *message = PyUnicode_FromFormat("capimport: %s %U: %R; denied (fail closed)", what, name,
                                             value ? value : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    int rc = fail_closed(message);
    Py_XDECREF(message);
    return rc;
}

/* The walk of decide() and its accountable links: 1 when a privileged frame allows the act
 * outright, 0 with the chain in *ch* and the indexes of its accountable links in *acc* (the
 * caller frees both), -1. */
static int
accountable_links(checks_t *c, PyFrameObject *frame, chain_t *ch, int **acc, int *n_acc)
{
    *acc = NULL;
    *n_acc = 0;
    int rc = walk(frame, c, ch);
    if (rc != 0) {
        return rc < 0 || PyErr_Occurred() ? -1 : 1;   /* an allowance reached by way of an error does not stand */
    }
    if (ch->n == 0) {
        PyObject *empty = PyUnicode_FromString("");
        int failed = empty == NULL || chain_append(ch, O_APP, empty, NULL, 0) < 0;
        Py_XDECREF(empty);
        if (failed) {
            return -1;
        }
    }
    /* attribution.accountable: the innermost link, and each outer link unless the link just
     * inside it is one of its dependents (a framework calling back into code that uses it). */
    *acc = PyMem_Malloc(sizeof(int) * (size_t)ch->n);
    if (*acc == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    (*acc)[(*n_acc)++] = 0;
    for (int i = 1; i < ch->n; i++) {
        int inner = ch->items[i - 1].origin, outer = ch->items[i].origin;
        if (outer >= O_FIRST_DIST && dep_bit(outer, inner)) {
            continue;
        }
        (*acc)[(*n_acc)++] = i;
    }
    return 0;
}

static int judge(checks_t *c, chain_t *ch, int *acc, int n_acc, PyObject *event, PyObject *args);

static int
decide(checks_t *c, PyFrameObject *frame, PyObject *event, PyObject *args)
{
    chain_t ch = {0};
    int *acc = NULL, n_acc = 0;
    int rc = accountable_links(c, frame, &ch, &acc, &n_acc);
    if (rc != 0) {
        PyMem_Free(acc);
        chain_clear(&ch);
        return rc < 0 ? fail_with_current("internal error while deciding", c->n ? c->items[0].api : event) : 0;
    }
    return judge(c, &ch, acc, n_acc, event, args);
}

/* Decide *c* for one named party, not for the stack: the owner of the code an import executes
 * answers for what that code claims (the import system's frames, privileged, are all the stack has). */
static int
decide_as(int origin, PyObject *filename, checks_t *c, PyObject *event)
{
    chain_t ch = {0};
    int *acc = PyMem_Malloc(sizeof(int));
    if (acc == NULL || chain_append(&ch, origin, filename, NULL, 0) < 0) {
        if (acc == NULL) {
            PyErr_NoMemory();
        }
        PyMem_Free(acc);
        chain_clear(&ch);
        return fail_with_current("internal error while deciding", event);
    }
    acc[0] = 0;
    return judge(c, &ch, acc, 1, event, Py_None);
}

/* The verdict on the accountable links *acc* of *ch* (both freed here), reported and raised. */
static int
judge(checks_t *c, chain_t *chp, int *acc, int n_acc, PyObject *event, PyObject *args)
{
    chain_t ch = *chp;
    PyObject *items = NULL;
    for (int i = 0; i < c->n; i++) {
        for (int a = 0; a < n_acc; a++) {
            int origin = ch.items[acc[a]].origin;
            int scoped = 0;
            int ok = holds(origin, c, i, &scoped);
            if (ok < 0) {
                goto error;
            }
            if (mode == MODE_RECORD) {
                /* An unscoped grant answers without the target, so skip (not an environ file)
                 * is known only once the target is computed, as Python's target.get() does. */
                if (origin == O_APP || (get_target(c, i) != NULL && c->items[i].skip)) {
                    continue;
                }
                if (PyErr_Occurred()) {
                    goto error;
                }
            } else if (ok) {
                continue;
            }
            if (items == NULL && (items = PyList_New(0)) == NULL) {
                goto error;
            }
            PyObject *target = get_target(c, i);
            PyObject *item = target ? Py_BuildValue("(isOOOO)", acc[a], CAP_NAMES[c->items[i].cap], target,
                                                    c->items[i].api, scoped ? Py_True : Py_False,
                                                    ok ? Py_True : Py_False) : NULL;
            if (item == NULL || PyList_Append(items, item) < 0) {
                Py_XDECREF(item);
                goto error;
            }
            Py_DECREF(item);
        }
    }
    PyMem_Free(acc);
    acc = NULL;
    if (items == NULL) {
        if (PyErr_Occurred()) {
            goto error;   /* something failed on the way to the allowance: it does not stand */
        }
        chain_clear(&ch);
        return 0;
    }
    /* The verdict is reached. Python only words it from here on. It gets a copy of the items:
     * the denial below is worded from ours, which the report could otherwise empty or rewrite
     * (an index out of the chain would be read unchecked). */
    PyObject *chain_list = chain_as_list(&ch);
    PyObject *shown = chain_list ? PyList_GetSlice(items, 0, PY_SSIZE_T_MAX) : NULL;
    const char *kind = mode == MODE_RECORD ? "record" : mode == MODE_WARN ? "warn" : "deny";
    PyObject *result = NULL;
    PyObject *worded = NULL;
    if (shown != NULL && args == Py_None && !PyUnicode_Check(event) && PyCallable_Check(event)) {
        /* _core.check's describe: the caller's callable, run as the caller, before capimport's work */
        worded = PyObject_CallNoArgs(event);
        if (worded == NULL || !PyUnicode_Check(worded)) {
            PyErr_Clear();
            Py_XSETREF(worded, c->n ? (Py_INCREF(c->items[0].api), c->items[0].api) : NULL);
        }
    }
    if (shown != NULL) {
        internal_depth++;
        result = PyObject_CallFunction(report, "sOOOO", kind, worded ? worded : event, args, chain_list, shown);
        internal_depth--;
    }
    Py_XDECREF(worded);
    Py_XDECREF(chain_list);
    Py_XDECREF(shown);
    if (mode != MODE_ENFORCE) {
        if (result == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(result);
        Py_DECREF(items);
        chain_clear(&ch);
        return 0;
    }
    if (result != NULL && PyExceptionInstance_Check(result)) {
        PyErr_SetObject((PyObject *)Py_TYPE(result), result);
    } else {
        /* The report failed or was tampered with: still a denial, worded here. */
        PyErr_Clear();
        PyObject *first = PyList_GET_ITEM(items, 0);
        int index = (int)PyLong_AsLong(PyTuple_GET_ITEM(first, 0));
        PyObject *message = PyUnicode_FromFormat(
            "capimport: %U may not use '%U' (%U); denied", PyTuple_GET_ITEM(origin_names, ch.items[index].origin),
            PyTuple_GET_ITEM(first, 1), PyTuple_GET_ITEM(first, 3));
        if (message == NULL) {
            PyErr_Clear();
            PyErr_SetString(PyExc_PermissionError, "capimport: denied");
        } else {
            PyObject *exc = PyObject_CallOneArg(error_class, message);
            if (exc != NULL && PyExceptionInstance_Check(exc)) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            } else {
                PyErr_Clear();
                PyErr_SetObject(PyExc_PermissionError, message);
            }
            Py_XDECREF(exc);
            Py_DECREF(message);
        }
    }
    Py_XDECREF(result);
    Py_DECREF(items);
    chain_clear(&ch);
    return -1;

error:
    PyMem_Free(acc);
    Py_XDECREF(items);
    chain_clear(&ch);
    return fail_with_current("internal error while deciding", c->n ? c->items[0].api : event);
}

/* ------------------------------------------------------------------ the hook */

static unsigned long
hash_name(const char *s)
{
    unsigned long h = 1469598103934665603UL;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211UL;
    }
    return h;
}

static event_t *
find_event(const char *name)
{
    if (event_slots == NULL) {
        return NULL;
    }
    for (unsigned long i = hash_name(name) & (unsigned long)events_mask;; i = (i + 1) & (unsigned long)events_mask) {
        int slot = event_slots[i];
        if (slot < 0) {
            return NULL;
        }
        if (strcmp(events[slot].name, name) == 0) {
            return &events[slot];
        }
    }
}

static void
note_lookup(PyObject *host)
{
    if (host == NULL) {
        return;
    }
    PyObject *name = resolver_name(PyBytes_Check(host)
        ? PyUnicode_DecodeASCII(PyBytes_AS_STRING(host), PyBytes_GET_SIZE(host), "replace")
        : PyUnicode_Check(host) ? exact_text(host) : NULL);
    if (name == NULL) {
        PyErr_Clear();
        return;
    }
    if (PyUnicode_GET_LENGTH(name) && cmatch_is_ip(name) == 0 && PySequence_Contains(looked_up, name) == 0) {
        if (PyList_Append(looked_up, name) == 0 && PyList_GET_SIZE(looked_up) > 256) {
            PyList_SetSlice(looked_up, 0, 64, NULL);
        }
    }
    PyErr_Clear();
    Py_DECREF(name);
}

static int
is_frame_attribute(PyObject *name)
{
    static const char *frames[] = {"gi_frame", "cr_frame", "ag_frame", "tb_frame", NULL};
    if (!PyUnicode_Check(name)) {
        return 0;
    }
    for (int i = 0; frames[i]; i++) {
        if (PyUnicode_CompareWithASCIIString(name, frames[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int tamper_rule(int kind, PyObject *args, PyFrameObject *frame);

static int
core_hook(const char *name, PyObject *args, void *data)
{
    event_t *e = find_event(name);
    if (e == NULL) {
        return 0;
    }
    if (vouched_thread != NULL && vouched_thread == PyThreadState_Get() && strcmp(name, vouched_event) == 0) {
        vouch(NULL);   /* raised inside a call the core decided just before (vouch) */
        return 0;
    }
    if (e->frames_only && !(PyTuple_GET_SIZE(args) > 1 && is_frame_attribute(PyTuple_GET_ITEM(args, 1)))) {
        return 0;   /* the walk's own f_code reads (Python guards): only frame-exposing attributes matter */
    }
    PyFrameObject *frame = PyEval_GetFrame();   /* borrowed: the code that raised the event */
    PyObject *event = e->pyname;
    if (e->cap == CAP_OPEN && bytecode_write(frame, args) < 0) {
        return -1;   /* the core wrote the import system's bytecode cache itself (_core_bytecode.h) */
    }
    if (e->tamper && tamper_rule(e->tamper, args, frame) < 0) {
        return -1;
    }
    if (e->rule != NULL) {   /* held here: emptying enforcer.guard_rules changes nothing */
        PyObject *r = PyObject_CallFunctionObjArgs(e->rule, event, args,
                                                   frame ? (PyObject *)frame : Py_None, NULL);
        if (r == NULL) {
            return -1;   /* the rule denied the act */
        }
        Py_DECREF(r);
    }
    if (e->cap == CAP_NONE) {
        return 0;
    }
    checks_t c = {0};
    if (build_checks(e, args, &c) < 0) {
        checks_clear(&c);
        return fail_with_current("cannot read the arguments of", event);
    }
    if (c.n == 0) {
        return 0;
    }
    if (e->lookup >= 0) {
        note_lookup(arg(args, e->lookup));
    }
    int rc = decide(&c, frame, event, args);
    checks_clear(&c);
    return rc;
}

#include "_core_gate.h"
#include "_core_environ.h"
#include "_core_tamper.h"
#include "_core_bytecode.h"

/* ------------------------------------------------------------------ install: policy into C memory */

static PyObject *
spec_get(PyObject *spec, const char *key, PyTypeObject *type)
{
    PyObject *v = PyDict_GetItemString(spec, key);
    if (v == NULL) {
        PyErr_Format(PyExc_KeyError, "capimport._core.install: spec has no %s", key);
        return NULL;
    }
    if (type != NULL && !PyObject_TypeCheck(v, type)) {
        PyErr_Format(PyExc_TypeError, "capimport._core.install: %s must be %s", key, type->tp_name);
        return NULL;
    }
    return v;
}

/* A tuple of exact str: copied (so no caller keeps a reference to mutate; tuples cannot change anyway). */
static PyObject *
str_tuple(PyObject *spec, const char *key)
{
    PyObject *v = spec_get(spec, key, &PyTuple_Type);
    if (v == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(v, i))) {
            PyErr_Format(PyExc_TypeError, "capimport._core.install: %s must hold only str", key);
            return NULL;
        }
    }
    Py_INCREF(v);
    return v;
}

/* An exact int naming an origin: the lookups index grants[] and origin_names with it unchecked. */
static int
is_origin_index(PyObject *v)
{
    if (!PyLong_CheckExact(v)) {
        return 0;
    }
    long i = PyLong_AsLong(v);
    if (i == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return i >= 0 && i < n_origins;
}

/* str -> origin index (tuples: False) or str -> tuple of origin indices (tuples: True). */
static int
fill_map(strmap *m, PyObject *spec, const char *key, int tuples)
{
    PyObject *d = spec_get(spec, key, &PyDict_Type);
    if (d == NULL) {
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &k, &v)) {
        int valid = PyUnicode_CheckExact(k) && (tuples ? PyTuple_CheckExact(v) : is_origin_index(v));
        for (Py_ssize_t i = 0; valid && tuples && i < PyTuple_GET_SIZE(v); i++) {
            valid = is_origin_index(PyTuple_GET_ITEM(v, i));
        }
        if (!valid) {
            PyErr_Format(PyExc_TypeError, "capimport._core.install: %s maps str to %s", key,
                         tuples ? "tuples of origin indices" : "an origin index");
            return -1;
        }
        if (strmap_set(m, k, v) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
install_grants(PyObject *spec)
{
    PyObject *g = spec_get(spec, "grants", &PyTuple_Type);
    if (g == NULL) {
        return -1;
    }
    if (PyTuple_GET_SIZE(g) != n_origins) {
        PyErr_SetString(PyExc_ValueError, "capimport._core.install: one grant per origin");
        return -1;
    }
    grants = PyMem_Calloc((size_t)n_origins, sizeof(grant_t));
    if (grants == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t o = 0; o < n_origins; o++) {
        PyObject *caps = PyTuple_GET_ITEM(g, o);
        if (!PyTuple_Check(caps) || PyTuple_GET_SIZE(caps) != NCAP) {
            PyErr_SetString(PyExc_ValueError, "capimport._core.install: a grant is a tuple of 7 entries");
            return -1;
        }
        for (int cap = 0; cap < NCAP; cap++) {
            PyObject *entry = PyTuple_GET_ITEM(caps, cap);
            if (entry == Py_False) {
                continue;                       /* not held */
            }
            grants[o].held |= 1u << cap;
            if (entry == Py_None) {
                continue;                       /* unscoped */
            }
            if (!PyTuple_CheckExact(entry)) {
                PyErr_SetString(PyExc_TypeError, "capimport._core.install: a scope is a tuple of str");
                return -1;
            }
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(entry); i++) {
                if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, i))) {
                    PyErr_SetString(PyExc_TypeError, "capimport._core.install: a scope is a tuple of str");
                    return -1;
                }
            }
            Py_INCREF(entry);
            grants[o].scope[cap] = entry;
        }
    }
    return 0;
}

static int
install_relations(PyObject *spec)
{
    PyObject *deps = spec_get(spec, "dependents", &PyTuple_Type);
    PyObject *own = deps ? spec_get(spec, "owned_roots", &PyTuple_Type) : NULL;
    PyObject *capdeps = own ? spec_get(spec, "capimport_dependencies", &PyTuple_Type) : NULL;
    if (capdeps == NULL) {
        return -1;
    }
    if (PyTuple_GET_SIZE(deps) != n_origins || PyTuple_GET_SIZE(own) != n_origins) {
        PyErr_SetString(PyExc_ValueError, "capimport._core.install: one entry per origin");
        return -1;
    }
    size_t bits = (size_t)n_origins * (size_t)n_origins;
    dependents = PyMem_Calloc(bits / 8 + 1, 1);
    capimport_dep = PyMem_Calloc((size_t)n_origins, 1);
    owned_roots = PyMem_Calloc((size_t)n_origins, sizeof(PyObject *));
    if (dependents == NULL || capimport_dep == NULL || owned_roots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t o = 0; o < n_origins; o++) {
        PyObject *row = PyTuple_GET_ITEM(deps, o);
        if (!PyTuple_Check(row)) {
            PyErr_SetString(PyExc_TypeError, "capimport._core.install: dependents are tuples of int");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(row); i++) {
            long d = PyLong_AsLong(PyTuple_GET_ITEM(row, i));
            if (d < 0 || d >= n_origins) {
                PyErr_SetString(PyExc_ValueError, "capimport._core.install: a dependent out of range");
                return -1;
            }
            size_t bit = (size_t)o * (size_t)n_origins + (size_t)d;
            dependents[bit >> 3] |= (unsigned char)(1u << (bit & 7));
        }
        PyObject *r = PyTuple_GET_ITEM(own, o);
        if (r != Py_None) {
            int valid = PyTuple_CheckExact(r);
            for (Py_ssize_t i = 0; valid && i < PyTuple_GET_SIZE(r); i++) {
                valid = PyUnicode_CheckExact(PyTuple_GET_ITEM(r, i));
            }
            if (!valid) {
                PyErr_SetString(PyExc_TypeError, "capimport._core.install: owned roots are tuples of str");
                return -1;
            }
            Py_INCREF(r);
            owned_roots[o] = r;
        }
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(capdeps); i++) {
        long d = PyLong_AsLong(PyTuple_GET_ITEM(capdeps, i));
        if (d < 0 || d >= n_origins) {
            PyErr_SetString(PyExc_ValueError, "capimport._core.install: a dependency out of range");
            return -1;
        }
        capimport_dep[d] = 1;
    }
    return 0;
}

static int
scope_kind_named(PyObject *name)
{
    for (int i = 0; SCOPE_NAMES[i]; i++) {
        if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, SCOPE_NAMES[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static int
install_events(PyObject *spec)
{
    PyObject *table = spec_get(spec, "events", &PyTuple_Type);
    if (table == NULL) {
        return -1;
    }
    n_events = PyTuple_GET_SIZE(table);
    events = PyMem_Calloc((size_t)n_events + 1, sizeof(event_t));
    Py_ssize_t slots = 16;
    while (slots < n_events * 2) {
        slots *= 2;
    }
    events_mask = slots - 1;
    event_slots = PyMem_Malloc(sizeof(int) * (size_t)slots);
    if (events == NULL || event_slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < slots; i++) {
        event_slots[i] = -1;
    }
    for (Py_ssize_t i = 0; i < n_events; i++) {
        event_t *e = &events[i];
        PyObject *name, *api, *scopes, *rule;
        int lookup, frames_only;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(table, i), "UiUO!Opi;capimport._core.install: an event entry",
                              &name, &e->cap, &api, &PyTuple_Type, &scopes, &rule, &frames_only, &lookup)) {
            return -1;
        }
        if (rule != Py_None && !PyCallable_Check(rule)) {
            PyErr_SetString(PyExc_TypeError, "capimport._core.install: an event's rule must be callable or None");
            return -1;
        }
        const char *text = PyUnicode_AsUTF8(name);
        if (text == NULL || PyTuple_GET_SIZE(scopes) > 4) {
            if (text != NULL) {
                PyErr_SetString(PyExc_ValueError, "capimport._core.install: at most 4 scopes an event");
            }
            return -1;
        }
        e->name = PyMem_Malloc(strlen(text) + 1);
        if (e->name == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        strcpy(e->name, text);
        Py_INCREF(name);
        Py_INCREF(api);
        e->pyname = name;
        e->api = api;
        e->rule = rule == Py_None ? NULL : (Py_INCREF(rule), rule);
        e->frames_only = frames_only;
        e->lookup = lookup;
        e->nscopes = (int)PyTuple_GET_SIZE(scopes);
        for (int s = 0; s < e->nscopes; s++) {
            PyObject *scope = PyTuple_GET_ITEM(scopes, s);
            if (!PyArg_ParseTuple(scope, "Oii;capimport._core.install: a scope entry", &name,
                                  &e->scope_a[s], &e->scope_b[s])) {
                return -1;
            }
            e->scope_kind[s] = scope_kind_named(name);
            if (e->scope_kind[s] < 0) {
                PyErr_SetString(PyExc_ValueError, "capimport._core.install: an unknown scope kind");
                return -1;
            }
        }
        if (e->cap != CAP_OPEN && e->cap != CAP_NONE && (e->cap < 0 || e->cap >= NCAP)) {
            PyErr_SetString(PyExc_ValueError, "capimport._core.install: an unknown capability");
            return -1;
        }
        unsigned long h = hash_name(e->name) & (unsigned long)events_mask;
        while (event_slots[h] >= 0) {
            h = (h + 1) & (unsigned long)events_mask;
        }
        event_slots[h] = (int)i;
    }
    return 0;
}

static int
install_callables(PyObject *spec)
{
    static const char *names[] = {"report", "internal_error", "error_class", NULL};
    PyObject **slots[] = {&report, &internal_error, &error_class};
    for (int i = 0; names[i]; i++) {
        PyObject *v = spec_get(spec, names[i], NULL);
        if (v == NULL) {
            return -1;
        }
        if (!PyCallable_Check(v)) {
            PyErr_Format(PyExc_TypeError, "capimport._core.install: %s must be callable", names[i]);
            return -1;
        }
        Py_INCREF(v);
        *slots[i] = v;
    }
    return 0;
}

static int
install_spec(PyObject *spec)
{
    PyObject *m = spec_get(spec, "mode", &PyUnicode_Type);
    if (m == NULL) {
        return -1;
    }
    if (PyUnicode_CompareWithASCIIString(m, "enforce") == 0) {
        mode = MODE_ENFORCE;
    } else if (PyUnicode_CompareWithASCIIString(m, "warn") == 0) {
        mode = MODE_WARN;
    } else if (PyUnicode_CompareWithASCIIString(m, "record") == 0) {
        mode = MODE_RECORD;
    } else {
        PyErr_SetString(PyExc_ValueError, "capimport._core.install: an unknown mode");
        return -1;
    }
    if ((origin_names = str_tuple(spec, "origins")) == NULL) {
        return -1;
    }
    n_origins = PyTuple_GET_SIZE(origin_names);
    if (n_origins < O_FIRST_DIST + 1) {
        PyErr_SetString(PyExc_ValueError, "capimport._core.install: the special origins are missing");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n_origins; i++) {
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || strmap_set(&origin_index, PyTuple_GET_ITEM(origin_names, i), index) < 0) {
            Py_XDECREF(index);
            return -1;
        }
        Py_DECREF(index);
    }
    if (fill_map(&record_files, spec, "record_files", 0) < 0 || fill_map(&file_cache, spec, "cache", 0) < 0
            || fill_map(&privileged_files, spec, "privileged_files", 0) < 0 || fill_map(&owned, spec, "owned", 1) < 0) {
        return -1;
    }
    if ((roots = spec_get(spec, "roots", &PyTuple_Type)) == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(roots); i++) {
        PyObject *item = PyTuple_GET_ITEM(roots, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(item, 0))
                || !is_origin_index(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError, "capimport._core.install: roots are (str, int) pairs");
            roots = NULL;
            return -1;
        }
    }
    Py_INCREF(roots);
    if ((capimport_dirs = str_tuple(spec, "capimport_dirs")) == NULL || (stdlib_dirs = str_tuple(spec, "stdlib_dirs")) == NULL
            || (site_dirs = str_tuple(spec, "site_dirs")) == NULL || (app_dirs = str_tuple(spec, "app_dirs")) == NULL
            || (import_frozen = str_tuple(spec, "import_frozen")) == NULL) {
        return -1;
    }
    if (PyTuple_GET_SIZE(capimport_dirs) == 0) {
        PyErr_SetString(PyExc_ValueError, "capimport._core.install: capimport_dirs is empty");
        return -1;
    }
    PyObject *v;
    if ((v = spec_get(spec, "write_flags", &PyLong_Type)) == NULL) {
        return -1;
    }
    write_flags = PyLong_AsLong(v);
    if ((v = spec_get(spec, "af_unix", &PyLong_Type)) == NULL) {
        return -1;
    }
    af_unix = PyLong_AsLong(v);
    if ((v = spec_get(spec, "proc_dev", NULL)) == NULL) {
        return -1;
    }
    proc_dev = v == Py_None ? -1 : PyLong_AsLongLong(v);
    if ((v = spec_get(spec, "standard_streams", &PyTuple_Type)) == NULL) {
        return -1;
    }
    n_standard_streams = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v) && i < 3; i++) {
        unsigned long long dev, ino;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(v, i), "KK;capimport._core.install: a standard stream", &dev, &ino)) {
            return -1;
        }
        standard_streams[n_standard_streams].dev = (dev_t)dev;
        standard_streams[n_standard_streams++].ino = (ino_t)ino;
    }
    if ((v = spec_get(spec, "pycache", NULL)) == NULL) {
        return -1;
    }
    if (v != Py_None) {
        if (!PyTuple_CheckExact(v) || PyTuple_GET_SIZE(v) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(v, 0))
                || !PyUnicode_CheckExact(PyTuple_GET_ITEM(v, 1))) {
            PyErr_SetString(PyExc_TypeError, "capimport._core.install: pycache is (prefix, resolved prefix + '/')");
            return -1;
        }
        Py_INCREF(v);
        pycache_prefix = v;
    }
    if ((v = spec_get(spec, "sqlite_always_uri", &PyBool_Type)) == NULL) {
        return -1;
    }
    sqlite_always_uri = v == Py_True;
    if (PyErr_Occurred()) {
        return -1;
    }
    if (install_grants(spec) < 0 || install_relations(spec) < 0 || install_events(spec) < 0
            || install_callables(spec) < 0 || install_tamper(spec) < 0 || install_bytecode(spec) < 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the Python API */

static PyObject *
core_install(PyObject *module, PyObject *spec)
{
    if (installed) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core: already installed (it cannot be changed)");
        return NULL;
    }
    if (!PyDict_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.install(spec): spec must be a dict");
        return NULL;
    }
    installed = 1;   /* even a failed install cannot be retried with other data */
    looked_up = PyList_New(0);
    str_open = PyUnicode_InternFromString("open");
    str_self = PyUnicode_InternFromString("self");
    str_star = PyUnicode_InternFromString("*");
    str_memory_api = PyUnicode_InternFromString("open of /proc/<pid>/mem");
    str_environ_api = PyUnicode_InternFromString("os.environ");
    if (looked_up == NULL || str_open == NULL || str_self == NULL || str_star == NULL || str_memory_api == NULL
            || str_environ_api == NULL || install_spec(spec) < 0) {
        return NULL;
    }
    if (PySys_AddAuditHook(core_hook, NULL) < 0) {
        return NULL;
    }
    ready = 1;
    Py_RETURN_NONE;
}

/* register_log_file(handler, path): a logging handler may later write *path* (and its rotations)
 * from logging's own frames. Registering decides fs on *path* for the caller first, so calling
 * it directly grants nothing the caller does not hold. The path is resolved as every target is
 * (capimport.enforcer.check does the same), and the resolved path is what the handler may write:
 * a raw one would be matched against scopes as written ("dir/../elsewhere", a symlink). */
static PyObject *
core_register_log_file(PyObject *module, PyObject *args)
{
    PyObject *handler, *path;
    if (!PyArg_ParseTuple(args, "OU:register_log_file", &handler, &path)) {
        return NULL;
    }
    if (!ready) {   /* a failed install leaves half-built tables: nothing may read them */
        Py_RETURN_NONE;
    }
    PyObject *exact = exact_text(path);
    if (exact == NULL) {
        return NULL;
    }
    checks_t c = {0};
    PyObject *api = PyUnicode_FromString("logging.FileHandler");
    PyObject *call_args = api ? PyTuple_Pack(1, exact) : NULL;
    PyObject *base = NULL;
    int rc = -1;
    if (call_args != NULL && add_check(&c, CAP_FS, T_PATH, exact, NULL, api) != NULL) {
        base = get_target(&c, 0);
        if (base != NULL && !PyUnicode_CheckExact(base)) {
            PyErr_SetString(PyExc_TypeError, "register_log_file: the path resolves to no file");
            base = NULL;
        }
        Py_XINCREF(base);
        rc = base != NULL ? decide(&c, PyEval_GetFrame(), api, call_args) : -1;
    }
    checks_clear(&c);
    Py_XDECREF(call_args);
    Py_XDECREF(api);
    Py_DECREF(exact);
    if (rc < 0) {
        Py_XDECREF(base);
        return NULL;
    }
    PyObject *ref = PyWeakref_NewRef(handler, NULL);
    if (ref == NULL) {
        Py_DECREF(base);
        return NULL;
    }
    PyObject **refs = PyMem_Realloc(log_refs, sizeof(PyObject *) * (size_t)(n_logs + 1));
    if (refs != NULL) {
        log_refs = refs;
    }
    PyObject **bases = refs ? PyMem_Realloc(log_bases, sizeof(PyObject *) * (size_t)(n_logs + 1)) : NULL;
    if (bases == NULL) {
        Py_DECREF(ref);
        Py_DECREF(base);
        return PyErr_NoMemory();
    }
    log_bases = bases;
    log_refs[n_logs] = ref;
    log_bases[n_logs] = base;
    n_logs++;
    Py_RETURN_NONE;
}

/* The frame argument of check/chain/busy: None for the caller's own frame. Borrowed. */
static int
frame_arg(PyObject *obj, PyFrameObject **frame)
{
    if (obj == Py_None) {
        *frame = PyEval_GetFrame();
        return 0;
    }
    if (!PyFrame_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core: expected a frame or None");
        return -1;
    }
    *frame = (PyFrameObject *)obj;
    return 0;
}

static const char *TARGET_KINDS[] = {"none", "path", "program", "env", "value", NULL};
static const int TARGET_CODES[] = {T_NONE, T_PATH, T_PROGRAM, T_ENV, T_VALUE};

/* One (capability, kind, a, b, api) item of check() as a check of *c*. */
static int
add_item(checks_t *c, PyObject *item)
{
    PyObject *capability, *a, *b, *api;
    const char *kind;
    if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "UsOOU:check item", &capability, &kind, &a, &b, &api)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "capimport._core.check: an item is (capability, kind, a, b, api)");
        }
        return -1;
    }
    int cap = cap_named(capability), k = -1;
    for (int i = 0; TARGET_KINDS[i]; i++) {
        if (strcmp(TARGET_KINDS[i], kind) == 0) {
            k = TARGET_CODES[i];
        }
    }
    if (cap < 0 || k < 0) {
        PyErr_Format(PyExc_ValueError, "capimport._core.check: unknown capability %R or target kind %s", capability,
                     kind);
        return -1;
    }
    PyObject *raw = k == T_PATH || k == T_PROGRAM ? plain(a) : (Py_INCREF(a), a);
    if (raw == NULL) {
        return -1;
    }
    check_t *added = add_check(c, cap, k, raw, b == Py_None ? NULL : b, api);
    Py_DECREF(raw);
    return added ? 0 : -1;
}

/* check(items, frame, describe): decide an act that raises no audit event, for capimport's Python
 * guards (the environment, deferred callables, the tamper rules), with the core's walk and
 * grants: exactly as the hook decides an event. It can only refuse: calling it grants nothing.
 * *describe* (a str, or a callable returning one) words a report; it is called only after a
 * verdict that needs one. A call that capimport's own work makes while the core runs it
 * passes, as at a gate. */
static PyObject *
core_check(PyObject *module, PyObject *args)
{
    PyObject *items, *frame_obj, *describe;
    PyFrameObject *frame;
    if (!PyArg_ParseTuple(args, "O!OO:check", &PyList_Type, &items, &frame_obj, &describe)
            || frame_arg(frame_obj, &frame) < 0) {
        return NULL;
    }
    if (!ready) {
        Py_RETURN_NONE;
    }
    checks_t c = {0};
    int rc = 0;
    items = PyList_GetSlice(items, 0, PY_SSIZE_T_MAX);   /* ours: a __fspath__/__str__ may clear theirs */
    if (items == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items) && rc == 0; i++) {
        rc = add_item(&c, PyList_GET_ITEM(items, i));
    }
    int reads_only = 1;
    for (int i = 0; i < c.n; i++) {
        reads_only &= c.items[i].cap == CAP_FS_RO || c.items[i].cap == CAP_ENV_RO;
    }
    if (rc == 0 && reads_only) {   /* capimport's own work only reads */
        int own = gate_is_internal(frame);   /* capimport's own work: passes, no decision */
        if (own != 0) {
            checks_clear(&c);
            Py_DECREF(items);
            if (own < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    if (rc == 0 && c.n) {
        rc = decide(&c, frame, describe, Py_None);
    }
    checks_clear(&c);
    Py_DECREF(items);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* chain(frame, privileged): the acting chain from *frame* outward, as [(origin, filename, frame,
 * line)], walked by the core (no Python classifies a file name on the way). None when a
 * privileged frame allows acts outright; with *privileged* false (a chain captured for code that
 * runs later) privileged frames allow nothing. */
static PyObject *
core_chain(PyObject *module, PyObject *args)
{
    PyObject *frame_obj;
    PyFrameObject *frame;
    int privileged = 1;
    if (!PyArg_ParseTuple(args, "O|p:chain", &frame_obj, &privileged) || frame_arg(frame_obj, &frame) < 0) {
        return NULL;
    }
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core.chain: the core is not installed");
        return NULL;
    }
    checks_t none = {0};
    chain_t ch = {0};
    int rc = walk(frame, privileged ? &none : NULL, &ch);
    PyObject *out = rc < 0 ? NULL : rc == 1 ? (Py_INCREF(Py_None), Py_None) : chain_as_list(&ch);
    chain_clear(&ch);
    return out;
}

/* busy(frame): True when a guarded call at *frame* is capimport's own work that the core is
 * running (a report, a rewrite): the Python guards pass it through, as the gates do. The answer
 * lives in C memory; asking it changes nothing. */
static PyObject *
core_busy(PyObject *module, PyObject *frame_obj)
{
    PyFrameObject *frame;
    if (frame_arg(frame_obj, &frame) < 0) {
        return NULL;
    }
    int own = ready ? gate_is_internal(frame) : 0;
    return own < 0 ? NULL : PyBool_FromLong(own);
}

/* The caller's chain (walked from its own frame, privileged frames allowing nothing) appended to
 * *ch*; walk() starts a chain afresh, so its links are collected, then put after ours. */
static int
append_callers_chain(chain_t *ch)
{
    chain_t rest = {0};
    int rc = walk(PyEval_GetFrame(), NULL, &rest);
    for (int i = 0; rc == 0 && i < rest.n; i++) {
        link_t *l = &rest.items[i];
        if (ch->n && ch->items[ch->n - 1].origin == l->origin) {
            continue;
        }
        rc = chain_append(ch, l->origin, l->filename, l->frame, l->lineno);
    }
    chain_clear(&rest);
    return rc;
}

/* capture(unowned=False): the caller's acting chain as a token, walked from the caller's own frame
 * (there is no frame argument: a token always includes whoever asks for it). *unowned* puts code
 * nobody owns (the default grant) in front: a planted import hook that is a builtin, charged to
 * no one it could choose (guards/importhooks.py). It only adds a party that must hold the act. */
static PyObject *
core_capture(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"unowned", NULL};
    int unowned = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$p:capture", keywords, &unowned)) {
        return NULL;
    }
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core.capture: the core is not installed");
        return NULL;
    }
    chain_t ch = {0};
    PyObject *empty = unowned ? PyUnicode_FromString("") : NULL;
    int rc = unowned && (empty == NULL || chain_append(&ch, O_UNKNOWN, empty, NULL, 0) < 0) ? -1 : 0;
    Py_XDECREF(empty);
    rc = rc < 0 ? -1 : append_callers_chain(&ch);
    PyObject *out = rc < 0 ? NULL : token_from_chain(&ch);
    chain_clear(&ch);
    return out;
}

/* accountable(func, token): *func* run with *token* standing in for the stack that runs it. */
static PyObject *
core_accountable(PyObject *module, PyObject *args)
{
    PyObject *func;
    token_t *token;
    if (!PyArg_ParseTuple(args, "OO!:accountable", &func, &Chain_Type, &token)) {
        return NULL;
    }
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.accountable: func must be callable");
        return NULL;
    }
    /* The caller's own chain joins the token: a token read from somewhere (a thread's start
     * chain) can only add parties to whoever wraps with it, never stand in for them. */
    chain_t ch = {0};
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < token->n; i++) {
        saved_link_t *l = &token->links[i];
        rc = chain_append(&ch, l->origin, l->filename, NULL, l->lineno);
    }
    rc = rc < 0 ? -1 : append_callers_chain(&ch);
    PyObject *merged = rc < 0 ? NULL : token_from_chain(&ch);
    chain_clear(&ch);
    PyObject *out = merged ? accountable_new(func, (token_t *)merged) : NULL;
    Py_XDECREF(merged);
    return out;
}

/* parties(names): a token of the origins *names* (tuple of str), for a task another process sent
 * with its submitter's parties (capimport.enforcer.run_as). A name the policy does not know is
 * code nobody owns. Safe to hand out: push() only appends parties that must also hold a
 * capability, and accountable() joins its caller's own chain to any token. */
static PyObject *
core_parties(PyObject *module, PyObject *names)
{
    if (!PyTuple_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.parties: expected a tuple of names");
        return NULL;
    }
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core.parties: the core is not installed");
        return NULL;
    }
    chain_t ch = {0};
    PyObject *empty = PyUnicode_FromString("");
    int rc = empty == NULL ? -1 : 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        int origin = O_UNKNOWN;
        for (Py_ssize_t o = O_FIRST_DIST; PyUnicode_Check(name) && o < PyTuple_GET_SIZE(origin_names); o++) {
            if (PyUnicode_Compare(name, PyTuple_GET_ITEM(origin_names, o)) == 0) {
                origin = (int)o;
                break;
            }
        }
        if (origin == O_UNKNOWN && PyUnicode_Check(name)
                && PyUnicode_Compare(name, PyTuple_GET_ITEM(origin_names, O_APP)) == 0) {
            origin = O_APP;
        }
        rc = chain_append(&ch, origin, empty, NULL, 0);
    }
    Py_XDECREF(empty);
    PyObject *out = rc < 0 ? NULL : token_from_chain(&ch);
    chain_clear(&ch);
    return out;
}

#include "_core_callbacks.h"
#include "_core_sqlite.h"

/* push(token) / pop(token): *token* appended at the bottom of this thread's walks until popped. */
static PyObject *
core_push(PyObject *module, PyObject *token)
{
    if (!PyObject_TypeCheck(token, &Chain_Type)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.push: expected a Chain from capture()");
        return NULL;
    }
    if (inherit_push((token_t *)token, NULL, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
core_pop(PyObject *module, PyObject *token)
{
    if (inherit_top == NULL || (PyObject *)inherit_top->token != token || inherit_top->replaces) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core.pop: that chain is not the last one pushed");
        return NULL;
    }
    inherit_pop_to(inherit_top);
    Py_RETURN_NONE;
}

/* method(func): *func* as an instancemethod, so that a gate stored on a class binds to the instance
 * as the Python method it replaces did (weakref.finalize.__init__, Executor.submit). */
static PyObject *
core_method(PyObject *module, PyObject *func)
{
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.method: expected a callable");
        return NULL;
    }
    return PyInstanceMethod_New(func);
}

static PyObject *
core_installed(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(installed);
}

/* _leaf(name, *args): one leaf function on plain arguments, for the parity tests. Off once the
 * core is installed: the path leaves call lstat/readlink/stat with no audit event, so under
 * enforcement they would read the filesystem for a distribution that lacks fs-readonly
 * (realpath names a symlink's target as os.readlink would). */
static PyObject *
core_leaf(PyObject *module, PyObject *args)
{
    if (installed) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core._leaf: not available once the core is installed");
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(args, 0))) {
        PyErr_SetString(PyExc_TypeError, "_leaf(name, *args)");
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0));
    PyObject *rest = PyTuple_GetSlice(args, 1, PY_SSIZE_T_MAX);
    if (name == NULL || rest == NULL) {
        Py_XDECREF(rest);
        return NULL;
    }
    int handled = 0;
    PyObject *out = cpaths_leaf(name, rest, &handled);
    if (!handled) {
        out = cmatch_leaf(name, rest, &handled);
    }
    Py_DECREF(rest);
    if (!handled) {
        PyErr_Format(PyExc_ValueError, "_leaf: no leaf function %s", name);
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"install", core_install, METH_O, "install(spec): the policy into C memory and the C audit hook, once"},
    {"register_log_file", core_register_log_file, METH_VARARGS,
     "register_log_file(handler, path): after an fs check, logging may write path for this handler"},
    {"installed", core_installed, METH_NOARGS, "installed() -> bool"},
    {"method", core_method, METH_O, "method(func): func as an instancemethod (binds on a class)"},
    {"environment", core_environment, METH_VARARGS,
     "environment(data, putenv, unsetenv) -> (os.environ's view, os.environb's): the environment in C memory"},
    {"check", core_check, METH_VARARGS, "check(items, frame, describe): decide an unaudited act in the core"},
    {"chain", core_chain, METH_VARARGS, "chain(frame, privileged=True): the acting chain, walked by the core"},
    {"capture", (PyCFunction)(void (*)(void))core_capture, METH_VARARGS | METH_KEYWORDS,
     "capture(unowned=False) -> Chain: the caller's acting chain"},
    {"accountable", core_accountable, METH_VARARGS, "accountable(func, chain): func run as chain's parties"},
    {"init_through_dict", core_init_through_dict, METH_O,
     "init_through_dict(type): making an instance calls the __init__ the type's dict holds"},
    {"gate_weakref", core_gate_weakref, METH_O,
     "gate_weakref(ref): a weak reference's callback with no frame of its own runs as its registrant"},
    {"guard_gc_callbacks", core_guard_gc_callbacks, METH_VARARGS,
     "guard_gc_callbacks(called, named): the collector calls gc.callbacks's entries through the core"},
    {"push", core_push, METH_O, "push(chain): chain appended to this thread's walks until pop(chain)"},
    {"pop", core_pop, METH_O, "pop(chain): undo the last push(chain)"},
    {"busy", core_busy, METH_O, "busy(frame): is a call at frame capimport's own work the core is running?"},
    {"gate", (PyCFunction)(void (*)(void))core_gate, METH_VARARGS | METH_KEYWORDS,
     "gate(original, kind, api, ...): original guarded by a decision of the core (_core_gate.h)"},
    {"gate_ctypes_calls", core_gate_ctypes_calls, METH_O, "gate_ctypes_calls(CFuncPtr): ffi before every foreign call"},
    {"gate_ctypes_data", core_gate_ctypes_data, METH_O,
     "gate_ctypes_data(bases): ffi before every ctypes data object is made"},
    {"cache_compile", (PyCFunction)(void (*)(void))core_cache_compile, METH_VARARGS | METH_KEYWORDS,
     "cache_compile(...): builtins.compile for the import system, keeping what a cache check needs"},
    {"note_guarded", core_note_guarded, METH_O, "note_guarded(name): a guarded C module; loading it again needs ffi"},
    {"parties", core_parties, METH_O, "parties(names): a Chain of these origins, to push (a task from another process)"},
    {"sqlite_authorizer", core_sqlite_authorizer, METH_O,
     "sqlite_authorizer(user): SQLite's authorizer, the core's decision first, then user (or None)"},
    {"_leaf", core_leaf, METH_VARARGS, "_leaf(name, *args): run one leaf function (tests)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "capimport._core",
    "capimport's native decision core: policy in C memory, a C audit hook (docs/decisions.md).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    if (PyType_Ready(&Gate_Type) < 0 || PyType_Ready(&Chain_Type) < 0 || PyType_Ready(&Accountable_Type) < 0
            || PyType_Ready(&EnvView_Type) < 0 || PyType_Ready(&Authorizer_Type) < 0) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
