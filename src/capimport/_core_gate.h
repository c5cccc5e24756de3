/* capimport._core, the gates: guards for the routes that raise no audit event, decided in C.
 *
 * Part of _core.c (included after the decision, whose checks, walk and decide it uses); kept in
 * its own file because it is its own concept (docs/decisions.md, "The native decision core",
 * part 3).
 *
 * A gate replaces a C function in place on its module (os.stat, os.mkfifo, os.setuid,
 * _posixsubprocess.fork_exec, _gdbm.open, ...). Calling it:
 *
 *   1. converts a path-like argument with os.fspath (the caller's own __fspath__, run as the
 *      caller, before the decision, so the decision sees what the original receives);
 *   2. decides in C, exactly as the audit hook decides an event (walk, accountable links, grant);
 *   3. for a few kinds, runs one Python function of capimport's after the verdict: the command
 *      line rewrite of route 5 (a Python child starts under capimport), or guarding a module copy
 *      that _imp just built;
 *   4. calls the original.
 *
 * A gate holds its original in C memory: no attribute, no __reduce__ argument and no
 * tp_traverse hands it out (gc.get_referents(gate) lists nothing), and there is no Python
 * wrapper with a __closure__ or __globals__ to rewrite. Nothing a distribution can write turns
 * a gate's decision off: there is no per-thread "busy" table. Calls that capimport's own Python
 * makes while the core runs it (a report, a rewrite) pass only while internal_depth says so,
 * which lives in C thread-local memory, and only when the innermost frame that is not the
 * standard library's is capimport's (so a finalizer of a distribution's object that the
 * collector happens to run in the middle of a report is still judged as that distribution).
 *
 * Before install() completes, a gate only calls its original: nothing is enforced yet.
 */

enum { G_PATH, G_CWD, G_PROCESS, G_DBM, G_FORK_EXEC, G_REWRITE, G_POST, G_WRAP, G_OPEN_AT, G_FD, G_FD_MODE,
       G_WHOLE, G_UMASK, G_ACCEPT, G_TRACER, G_COUNT };
static const char *GATE_KINDS[G_COUNT] = {"path", "cwd", "process", "dbm", "fork_exec", "rewrite", "post", "wrap",
                                          "open_at", "fd", "fd_mode", "whole", "umask", "accept", "tracer"};
#define IS_FD_GATE(k) ((k) == G_FD || (k) == G_FD_MODE)

/* G_WRAP's flags */
#define WRAP_FRAMELESS 1   /* only a callable with no Python frame of its own (a module attribute) */
#define WRAP_ALWAYS 2      /* even when only the application registers (an executor's task must not
                              run with the chain of whoever started the worker thread) */
#define WRAP_REST 4        /* every positional callable from index on (sys.set_asyncgen_hooks) */
/* G_FD's flag (in the same field): the descriptor this thread's last G_ACCEPT gate returned is
 * free, once (socket.socket.accept makes its socket object from the connection it accepted,
 * whose peer is any client: a server's net is scoped to where it listens) */
#define FD_ACCEPTED 8

/* G_ACCEPT: the descriptor the socket type's _accept last returned on this thread, or -1 */
static _Thread_local long accepted_fd = -1;

typedef struct {
    PyObject_HEAD
    PyObject *original;
    int kind;
    int cap;               /* the capability checked (G_PATH; G_DBM picks fs or fs-readonly by flag) */
    int index;             /* position of the path argument (G_FD: of the descriptor written; G_FD_MODE:
                              of the descriptor put in place, read or written as it is open), -1 for none;
                              G_UMASK: the mask in force when the gate was made (-1: unknown) */
    int read_index;        /* G_FD: position of the descriptor read from, -1 for none */
    PyObject *names;       /* tuple of str: the keyword names of the path argument (G_FD: of the
                              descriptor written, then of the one read) */
    PyObject *fallback;    /* str: the path when the argument is absent or None (readline), or NULL */
    PyObject *prefix;      /* str: G_PATH's argument is a name, the path is this prefix and the name
                              without its leading slashes (glibc's named semaphores), or NULL; with
                              a prefix, no name means a raw handle (a pointer) is used: ffi */
    PyObject *api;         /* str: the name in messages ("os.stat") */
    PyObject *before;      /* callable(args, kwargs) -> (args, kwargs), run as the caller, or NULL */
    PyObject *after;       /* G_FORK_EXEC/G_REWRITE: rewrite(args, kwargs) -> (args, kwargs);
                              G_POST: post(result, args) -> result; run as capimport; or NULL */
    int wrap;              /* G_WRAP: WRAP_* flags; index and names say where the callable is */
    PyObject *name, *qualname, *doc, *modname;
} gate_t;

static PyTypeObject Gate_Type;
static PyObject *trusted_helpers = NULL;   /* list: the before/after callables given before install completed */

/* Origins a gate looks through to find who is calling: the standard library's and dynamic code. */
#define GATE_SEE_THROUGH ((1u << O_STDLIB) | (1u << O_IMPORT) | (1u << O_LINECACHE) | (1u << O_LOGGING))

/* Run *fn* as capimport's own work for the gates (see internal_depth). */
static PyObject *
gate_internal(PyObject *fn, PyObject *a, PyObject *b)
{
    internal_depth++;
    PyObject *out = PyObject_CallFunctionObjArgs(fn, a, b, NULL);
    internal_depth--;
    return out;
}

/* 1 when this call is capimport's own work that the core is running (no decision), 0, -1. */
static int
gate_is_internal(PyFrameObject *frame)
{
    if (internal_depth <= 0) {
        return 0;
    }
    int origin = first_origin(frame, GATE_SEE_THROUGH);
    return origin < 0 ? -1 : origin == O_CAPIMPORT;
}

static int
is_path_value(PyObject *v)
{
    return PyUnicode_Check(v) || PyBytes_Check(v) || PyLong_Check(v);
}

/* The path argument (borrowed, NULL when absent) and where it sits: *kwname is the keyword's
 * name (borrowed) when it came by keyword. */
static PyObject *
gate_path_arg(gate_t *g, PyObject *args, PyObject *kwargs, PyObject **kwname)
{
    *kwname = NULL;
    if (g->index < 0) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) > g->index) {
        return PyTuple_GET_ITEM(args, g->index);
    }
    if (kwargs == NULL || g->names == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(g->names); i++) {
        PyObject *value = PyDict_GetItemWithError(kwargs, PyTuple_GET_ITEM(g->names, i));
        if (value != NULL) {
            *kwname = PyTuple_GET_ITEM(g->names, i);
            return value;
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return NULL;
}

/* The keyword arguments as the gate's own dict with exact str keys: a str subclass key can hide
 * from the gate's lookups (its __eq__) while the original's parser matches it by value. */
static int
gate_own_kwargs(gate_t *g, PyObject **kwargs)
{
    if (*kwargs == NULL) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(*kwargs, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            PyErr_Format(PyExc_TypeError, "capimport: %U: keyword names must be str", g->api);
            return -1;
        }
    }
    PyObject *copy = PyDict_Copy(*kwargs);
    if (copy == NULL) {
        return -1;
    }
    Py_SETREF(*kwargs, copy);
    return 0;
}

/* Step 1: a path-like path argument becomes str or bytes; *args and *kwargs (new references,
 * *kwargs may be NULL) are replaced when it changes. */
/* G_OPEN_AT: os.open(path, flags, dir_fd=fd) with a relative path becomes
 * os.open("/proc/self/fd/<fd>/path", flags): the "open" audit event carries no dir_fd, so the
 * hook would resolve the path against the working directory (and a distribution could write
 * outside its scope, or open /proc/self/mem through a descriptor of /proc/self). Through the
 * descriptor's /proc link the kernel opens the same file, and the hook sees where it is. */
static int
gate_open_at(gate_t *g, PyObject **args, PyObject **kwargs)
{
    PyObject *dir_fd = *kwargs ? PyDict_GetItemString(*kwargs, "dir_fd") : NULL;   /* our own copy */
    if (dir_fd == NULL || dir_fd == Py_None || !PyLong_CheckExact(dir_fd) || PyTuple_GET_SIZE(*args) < 1) {
        return 0;   /* no descriptor (or one the original will refuse): nothing to do */
    }
    PyObject *path = PyTuple_GET_ITEM(*args, 0);
    int is_bytes = PyBytes_Check(path);
    if (!is_bytes && !PyUnicode_Check(path)) {
        return 0;   /* a path-like was converted already (step 1); anything else the original refuses */
    }
    PyObject *text = is_bytes ? PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(path), PyBytes_GET_SIZE(path))
                              : exact_text(path);
    if (text == NULL) {
        return -1;
    }
    if (PyUnicode_GET_LENGTH(text) > 0 && PyUnicode_READ_CHAR(text, 0) == '/') {
        Py_DECREF(text);
        return 0;   /* absolute: the kernel ignores dir_fd, and the hook sees the real path */
    }
    long fd = PyLong_AsLong(dir_fd);
    PyObject *joined = fd == -1 && PyErr_Occurred() ? NULL : PyUnicode_FromFormat("/proc/self/fd/%ld/%U", fd, text);
    Py_DECREF(text);
    PyObject *value = joined && is_bytes ? PyUnicode_EncodeFSDefault(joined) : (Py_XINCREF(joined), joined);
    Py_XDECREF(joined);
    if (value == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(*args);
    PyObject *copy = PyTuple_New(n);
    if (copy == NULL) {
        Py_DECREF(value);
        return -1;
    }
    PyTuple_SET_ITEM(copy, 0, value);
    for (Py_ssize_t i = 1; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(*args, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(copy, i, item);
    }
    Py_SETREF(*args, copy);
    return PyDict_DelItemString(*kwargs, "dir_fd");
}

static int
gate_convert(gate_t *g, PyObject **args, PyObject **kwargs)
{
    if (g->kind == G_WRAP || g->kind == G_WHOLE || g->kind == G_TRACER || IS_FD_GATE(g->kind) || g->prefix != NULL) {
        return 0;   /* its index names a callable, a descriptor, a name or which tracer, not a path */
    }
    PyObject *kwname;
    PyObject *value = gate_path_arg(g, *args, *kwargs, &kwname);
    if (value == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (value == Py_None || is_path_value(value)) {
        return 0;
    }
    Py_INCREF(value);   /* borrowed from args/kwargs: __fspath__ is the caller's code */
    PyObject *converted = PyOS_FSPath(value);
    Py_DECREF(value);
    if (converted == NULL) {
        return -1;
    }
    int rc;
    if (kwname == NULL) {
        /* A new tuple: PyTuple_GetSlice of the whole tuple returns the caller's own (f(*t)). */
        Py_ssize_t n = PyTuple_GET_SIZE(*args);
        PyObject *copy = PyTuple_New(n);
        if (copy == NULL) {
            Py_DECREF(converted);
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = i == g->index ? converted : PyTuple_GET_ITEM(*args, i);
            if (i != g->index) {
                Py_INCREF(item);
            }
            PyTuple_SET_ITEM(copy, i, item);   /* steals; converted is stolen here */
        }
        Py_SETREF(*args, copy);
        return 0;
    }
    PyObject *copy = PyDict_Copy(*kwargs);
    rc = copy == NULL ? -1 : PyDict_SetItem(copy, kwname, converted);
    Py_DECREF(converted);
    if (rc < 0) {
        Py_XDECREF(copy);
        return -1;
    }
    Py_SETREF(*kwargs, copy);
    return 0;
}

static int
gate_type_error(gate_t *g, const char *what)
{
    PyErr_Format(PyExc_TypeError, "capimport: %U: %s", g->api, what);
    return -1;
}

static int seq_of(PyObject *v, int (*ok)(PyObject *));
static int is_exact_text(PyObject *v);

/* fork_exec's argv, executables and env as tuples of exact str/bytes (no code of the caller's runs
 * on them later, and nobody can change what was decided before the original reads it). */
static int
gate_freeze_fork_exec(gate_t *g, PyObject **args)
{
    if (PyTuple_GET_SIZE(*args) < 6) {
        return 0;   /* gate_checks refuses it */
    }
    PyObject *copy = PyTuple_New(PyTuple_GET_SIZE(*args));
    if (copy == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(*args); i++) {
        PyObject *item = PyTuple_GET_ITEM(*args, i);
        if ((i == 0 || i == 1 || (i == 5 && item != Py_None))) {
            if (!PyList_CheckExact(item) && !PyTuple_CheckExact(item)) {
                Py_DECREF(copy);
                return gate_type_error(g, "unexpected argument type");
            }
            item = PySequence_Tuple(item);   /* a list or tuple: no Python code runs */
            if (item == NULL) {
                Py_DECREF(copy);
                return -1;
            }
            if (!seq_of(item, is_exact_text)) {
                Py_DECREF(item);
                Py_DECREF(copy);
                return gate_type_error(g, "unexpected argument type");
            }
        } else {
            Py_INCREF(item);
        }
        PyTuple_SET_ITEM(copy, i, item);
    }
    Py_SETREF(*args, copy);
    return 0;
}

static PyObject *
kwarg(PyObject *kwargs, const char *name)
{
    return kwargs == NULL ? NULL : PyDict_GetItemString(kwargs, name);   /* borrowed; no error */
}

/* A list or tuple whose items all pass *ok*. */
static int
seq_of(PyObject *v, int (*ok)(PyObject *))
{
    if (!PyList_Check(v) && !PyTuple_Check(v)) {
        return 0;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!ok(PySequence_Fast_GET_ITEM(v, i))) {
            return 0;
        }
    }
    return 1;
}

static int is_text(PyObject *v) { return PyUnicode_Check(v) || PyBytes_Check(v); }
static int is_exact_text(PyObject *v) { return PyUnicode_CheckExact(v) || PyBytes_CheckExact(v); }
static int is_int(PyObject *v) { return PyLong_Check(v); }
static int is_exact_str(PyObject *v) { return PyUnicode_CheckExact(v); }

static int
plain_process_arg(PyObject *v)
{
    return v == Py_None || PyLong_Check(v) || PyFloat_CheckExact(v) || is_text(v) || seq_of(v, is_int);
}

/* {"PATH": value} from a child's environment list (b"K=V" items; the last PATH wins, as a dict
 * built from the list would), or NULL with no error when it has none. */
static PyObject *
child_path(PyObject *env)
{
    PyObject *found = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(env);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(env, i);
        PyObject *text = exact_text(item);
        if (text == NULL) {
            Py_XDECREF(found);
            return NULL;
        }
        PyObject *head = PyUnicode_Substring(text, 0, 5);
        int is_path = head != NULL && PyUnicode_CompareWithASCIIString(head, "PATH=") == 0;
        Py_XDECREF(head);
        if (is_path) {
            Py_XSETREF(found, PyUnicode_Substring(text, 5, PY_SSIZE_T_MAX));
        }
        Py_DECREF(text);
        if (PyErr_Occurred()) {
            Py_XDECREF(found);
            return NULL;
        }
    }
    if (found == NULL) {
        return NULL;
    }
    PyObject *out = Py_BuildValue("{sO}", "PATH", found);
    Py_DECREF(found);
    return out;
}

/* The file glibc opens for the name *name* (``__shm_get_name``): the gate's prefix and the name
 * without its leading slashes. A name glibc refuses (empty, or with a slash left) opens nothing:
 * any decision on it is safe. */
static PyObject *
prefixed_name(gate_t *g, PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        gate_type_error(g, "takes a str name here");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(name), start = 0;
    while (start < n && PyUnicode_READ_CHAR(name, start) == '/') {
        start++;
    }
    PyObject *base = PyUnicode_Substring(name, start, n);
    PyObject *file = base != NULL ? PyUnicode_Concat(g->prefix, base) : NULL;
    Py_XDECREF(base);
    return file;
}

/* This process's file mode creation mask, read from /proc/self/status (reading it with umask()
 * itself would set it for a moment, under every other thread), or -1 when it cannot be read. */
static long
current_umask(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (got <= 0) {
        return -1;
    }
    buf[got] = '\0';
    const char *line = strstr(buf, "\nUmask:\t");
    if (line == NULL) {
        return -1;
    }
    char *end;
    long mask = strtol(line + 8, &end, 8);
    return end != line + 8 && (*end == '\n' || *end == '\0') && mask >= 0 && mask <= 0777 ? mask : -1;
}

/* Trace and profile functions installed with a decision that let them in, or in force when the
 * gates were made (a coverage run around capimport): held, by identity, at most KNOWN_TRACERS. */
static PyObject *known_tracers = NULL;
#define KNOWN_TRACERS 256

/* The function sys.settrace/setprofile is called with (borrowed), or NULL for a call the original
 * refuses before its event (no argument, two, a keyword). */
static PyObject *
tracer_arg(PyObject *args, PyObject *kwargs)
{
    return PyTuple_GET_SIZE(args) == 1 && !(kwargs && PyDict_GET_SIZE(kwargs)) ? PyTuple_GET_ITEM(args, 0) : NULL;
}

static int
known_tracer(PyObject *func)
{
    for (Py_ssize_t i = 0; known_tracers != NULL && i < PyList_GET_SIZE(known_tracers); i++) {
        if (PyList_GET_ITEM(known_tracers, i) == func) {
            return 1;
        }
    }
    return 0;
}

static void
note_tracer(PyObject *func)
{
    if (func == NULL || func == Py_None || known_tracer(func)) {
        return;
    }
    if ((known_tracers == NULL && (known_tracers = PyList_New(0)) == NULL)
            || (PyList_GET_SIZE(known_tracers) >= KNOWN_TRACERS && PySequence_DelItem(known_tracers, 0) < 0)
            || PyList_Append(known_tracers, func) < 0) {
        PyErr_Clear();   /* not noted: putting it back is decided again, never the other way */
    }
}

/* Step 2's checks for one call; *shown* gets the arguments a message shows (new reference). */
static int
gate_checks(gate_t *g, PyObject *args, PyObject *kwargs, checks_t *c, PyObject **shown)
{
    PyObject *kwname;
    switch (g->kind) {
    case G_PATH: {
        PyObject *path = gate_path_arg(g, args, kwargs, &kwname);
        PyObject *dir_fd = kwarg(kwargs, "dir_fd");
        if (PyErr_Occurred()) {
            return -1;
        }
        if (dir_fd == Py_None) {
            dir_fd = NULL;
        }
        if (dir_fd != NULL && !PyLong_Check(dir_fd)) {
            return gate_type_error(g, "dir_fd must be an int here");
        }
        if ((path == NULL || path == Py_None) && g->prefix != NULL) {
            /* no name: the call uses the raw handle it is given, a pointer into memory */
            *shown = PyTuple_New(0);
            return *shown && add_check(c, CAP_FFI, T_NONE, NULL, NULL, g->api) ? 0 : -1;
        }
        if (path == NULL || path == Py_None) {
            path = g->fallback;
        }
        if (path == NULL || PyLong_Check(path)) {
            return 0;   /* no path: the original refuses the call; a descriptor: opening it was checked */
        }
        if (!is_text(path)) {
            return gate_type_error(g, "takes a str, bytes or int path here");
        }
        *shown = PyTuple_Pack(1, path);
        if (*shown == NULL) {
            return -1;
        }
        if (g->prefix != NULL) {
            PyObject *file = prefixed_name(g, path);
            check_t *k = file != NULL ? add_check(c, g->cap, T_PATH, file, NULL, g->api) : NULL;
            Py_XDECREF(file);
            return k != NULL ? 0 : -1;
        }
        return add_check(c, g->cap, T_PATH, path, dir_fd, g->api) ? 0 : -1;
    }
    case G_CWD:
        if (PyTuple_GET_SIZE(args) || (kwargs && PyDict_GET_SIZE(kwargs))) {
            return gate_type_error(g, "takes no arguments");
        }
        *shown = PyTuple_New(0);
        return *shown && add_check(c, CAP_FS_RO, T_PATH, NULL, NULL, g->api) ? 0 : -1;
    case G_UMASK: {   /* os.umask(mask): free when it keeps every bit of the mask in force, or of the
                         one the process started with (a restore after tightening); else process */
        PyObject *mask = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : kwarg(kwargs, "mask");
        if (PyErr_Occurred()) {
            return -1;
        }
        if (mask == NULL || !PyLong_Check(mask)) {   /* an int subclass's value is read directly */
            return mask == NULL ? 0 : gate_type_error(g, "takes an int mask here");
        }
        long value = PyLong_AsLong(mask);
        if (value == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;   /* out of range: the original refuses it */
        }
        long current = current_umask();
        if (value >= 0 && ((current >= 0 && (value & current) == current)
                           || (g->index >= 0 && (value & g->index) == g->index))) {
            return 0;   /* files made from now on are no more open than now, or than at the start */
        }
        *shown = PyTuple_Pack(1, mask);
        return *shown && add_check(c, CAP_PROCESS, T_NONE, NULL, NULL, g->api) ? 0 : -1;
    }
    case G_TRACER: {   /* sys.settrace/setprofile(func): free for None or a function installed before
                          (known_tracers), which is no new code on anyone's frames (doctest, pdb and
                          coverage put back what they found); any other needs ffi, as the audit event
                          says, decided here once (vouch) */
        PyObject *func = tracer_arg(args, kwargs);
        if (func == NULL || func == Py_None || known_tracer(func)) {
            return 0;   /* (no func: the original refuses the call before its event) */
        }
        *shown = PyTuple_New(0);
        return *shown && add_check(c, CAP_FFI, T_NONE, NULL, NULL, g->api) ? 0 : -1;
    }
    case G_WHOLE:   /* the capability as a whole: the arguments decide nothing (Tcl code) */
        *shown = PyTuple_New(0);
        return *shown && add_check(c, g->cap, T_NONE, NULL, NULL, g->api) ? 0 : -1;
    case G_PROCESS: {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
            if (!plain_process_arg(PyTuple_GET_ITEM(args, i))) {
                return gate_type_error(g, "unexpected argument type");
            }
        }
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (kwargs && PyDict_Next(kwargs, &pos, &key, &value)) {
            if (!plain_process_arg(value)) {
                return gate_type_error(g, "unexpected argument type");
            }
        }
        *shown = PyTuple_New(0);
        return *shown && add_check(c, CAP_PROCESS, T_NONE, NULL, NULL, g->api) ? 0 : -1;
    }
    case G_DBM: {
        PyObject *path = gate_path_arg(g, args, kwargs, &kwname);
        PyObject *flag = PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1) : kwarg(kwargs, "flag");
        if (PyErr_Occurred()) {
            return -1;
        }
        if (path == NULL || !is_text(path) || (flag != NULL && !PyUnicode_Check(flag))) {
            return gate_type_error(g, "unexpected argument type");
        }
        int readonly = flag == NULL || (PyUnicode_GET_LENGTH(flag) > 0 && PyUnicode_READ_CHAR(flag, 0) == 'r');
        *shown = flag ? PyTuple_Pack(2, path, flag) : PyTuple_Pack(1, path);
        return *shown && add_check(c, readonly ? CAP_FS_RO : CAP_FS, T_PATH, path, NULL, g->api) ? 0 : -1;
    }
    case G_FD:
    case G_FD_MODE: {
        int where[2] = {g->index, g->read_index}, caps[2] = {CAP_FS, CAP_FS_RO};
        PyObject *fds[2] = {NULL, NULL};
        for (int w = 0; w < 2; w++) {
            if (where[w] < 0) {
                continue;
            }
            if (PyTuple_GET_SIZE(args) > where[w]) {
                fds[w] = PyTuple_GET_ITEM(args, where[w]);
            } else if (kwargs != NULL && g->names != NULL && PyTuple_GET_SIZE(g->names) > w) {
                fds[w] = PyDict_GetItemWithError(kwargs, PyTuple_GET_ITEM(g->names, w));
                if (fds[w] == NULL && PyErr_Occurred()) {
                    return -1;
                }
            }
            if (fds[w] == NULL || fds[w] == Py_None) {
                fds[w] = NULL;
                continue;   /* the original refuses the call (a socket makes a new descriptor) */
            }
            if (!PyLong_CheckExact(fds[w])) {   /* an __index__ of the caller's would run after the decision */
                return gate_type_error(g, "takes an int file descriptor here");
            }
            if ((g->wrap & FD_ACCEPTED) && accepted_fd >= 0 && PyLong_AsLong(fds[w]) == accepted_fd) {
                accepted_fd = -1;   /* the connection _accept just made: free, once */
                fds[w] = NULL;
                continue;
            }
            if (g->kind == G_FD_MODE && w == 0 && !fd_writable(fds[w])) {
                caps[w] = CAP_FS_RO;   /* os.dup2 of a read-only descriptor: whoever reads the copy reads */
            }
            if (add_check(c, caps[w], T_FD_FILE, fds[w], NULL, g->api) == NULL
                    || add_check(c, CAP_NET, T_FD_PEER, fds[w], NULL, g->api) == NULL) {
                return -1;
            }
        }
        if (fds[0] == NULL && fds[1] == NULL) {
            return 0;   /* no descriptor given: the original refuses the call */
        }
        *shown = fds[0] && fds[1] ? PyTuple_Pack(2, fds[0], fds[1]) : PyTuple_Pack(1, fds[0] ? fds[0] : fds[1]);
        return *shown ? 0 : -1;
    }
    case G_FORK_EXEC: {
        if ((kwargs && PyDict_GET_SIZE(kwargs)) || PyTuple_GET_SIZE(args) < 6) {
            return gate_type_error(g, "takes its arguments positionally");
        }
        PyObject *argv = PyTuple_GET_ITEM(args, 0), *executables = PyTuple_GET_ITEM(args, 1);
        PyObject *cwd = PyTuple_GET_ITEM(args, 4), *env = PyTuple_GET_ITEM(args, 5);
        if (!seq_of(argv, is_text) || !seq_of(executables, is_text) || (env != Py_None && !seq_of(env, is_text))
                || (cwd != Py_None && !is_text(cwd))) {
            return gate_type_error(g, "unexpected argument type");
        }
        PyObject *program = PySequence_Fast_GET_SIZE(executables) ? PySequence_Fast_GET_ITEM(executables, 0)
                            : PySequence_Fast_GET_SIZE(argv) ? PySequence_Fast_GET_ITEM(argv, 0) : NULL;
        PyObject *search = env == Py_None ? NULL : child_path(env);
        if (search == NULL && PyErr_Occurred()) {
            return -1;
        }
        PyObject *empty = program ? NULL : PyUnicode_FromString("");
        check_t *k = (program || empty) ? add_check(c, CAP_PROCESS, T_PROGRAM, program ? program : empty, search,
                                                    g->api) : NULL;
        Py_XDECREF(search);
        Py_XDECREF(empty);
        *shown = k ? PyTuple_Pack(1, argv) : NULL;
        return *shown ? 0 : -1;
    }
    }
    return 0;   /* G_REWRITE, G_POST: the act raises its own audit event, decided there */
}

/* *args and *kwargs (new references; *kwargs may be NULL) from the (args, kwargs) pair a
 * converter or a rewrite returned (stolen; NULL when it raised). */
static int
take_pair(gate_t *g, PyObject *pair, PyObject **args, PyObject **kwargs)
{
    if (pair == NULL) {
        return -1;
    }
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(pair, 0))
            || (PyTuple_GET_ITEM(pair, 1) != Py_None && !PyDict_Check(PyTuple_GET_ITEM(pair, 1)))) {
        Py_DECREF(pair);
        return gate_type_error(g, "a converter or rewrite returned no (args, kwargs)");
    }
    PyObject *new_args = PyTuple_GET_ITEM(pair, 0), *new_kwargs = PyTuple_GET_ITEM(pair, 1);
    Py_INCREF(new_args);
    Py_SETREF(*args, new_args);
    new_kwargs = new_kwargs == Py_None ? NULL : new_kwargs;
    Py_XINCREF(new_kwargs);
    Py_XSETREF(*kwargs, new_kwargs);
    Py_DECREF(pair);
    return 0;
}

/* G_WRAP: does *value* need to carry its registrant's chain? (deferred._needs_wrap, for module
 * attributes: a callable with no Python frame of its own, or one compiled from a string) */
static int
wrap_wanted(gate_t *g, PyObject *value)
{
    if (value == Py_None || !PyCallable_Check(value) || PyObject_TypeCheck(value, &Accountable_Type)) {
        return 0;
    }
    if (!(g->wrap & WRAP_FRAMELESS)) {
        return 1;
    }
    if (PyType_Check(value)) {
        return 0;
    }
    PyObject *func = PyMethod_Check(value) ? PyMethod_GET_FUNCTION(value) : value;
    if (PyFunction_Check(func)) {
        PyObject *filename = ((PyCodeObject *)PyFunction_GET_CODE(func))->co_filename;
        return PyUnicode_Check(filename) && PyUnicode_GET_LENGTH(filename) > 0
               && PyUnicode_READ_CHAR(filename, 0) == '<';
    }
    return 1;
}

/* The registrant's chain as a token: NULL with no error when only the application acts (unless
 * WRAP_ALWAYS), so its callables keep their identity and cost nothing. */
static PyObject *
wrap_token(gate_t *g, PyFrameObject *frame)
{
    chain_t ch = {0};
    int rc = walk(frame, NULL, &ch);
    int anyone = (g->wrap & WRAP_ALWAYS) != 0;
    for (int i = 0; rc == 0 && i < ch.n; i++) {
        anyone |= ch.items[i].origin != O_APP;
    }
    PyObject *token = rc < 0 ? NULL : anyone ? token_from_chain(&ch) : NULL;
    chain_clear(&ch);
    return token;
}

/* A new tuple with *t*'s items (PyTuple_GetSlice of the whole tuple hands back *t* itself). */
static PyObject *
tuple_copy(PyObject *t)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    PyObject *copy = PyTuple_New(n);
    for (Py_ssize_t i = 0; copy != NULL && i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(t, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(copy, i, item);
    }
    return copy;
}

/* *value* wrapped in an Accountable with the registrant's chain (a new reference); Py_None when
 * it needs no wrapping or only the application registers; NULL on error. The registrant's
 * chain is walked once per call, when the first callable needs it (*asked*, *token*). */
static PyObject *
wrap_for(gate_t *g, PyFrameObject *frame, PyObject *value, int *asked, PyObject **token)
{
    if (!wrap_wanted(g, value)) {
        Py_RETURN_NONE;
    }
    if (!*asked) {
        *asked = 1;
        *token = wrap_token(g, frame);
        if (*token == NULL && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (*token == NULL) {
        Py_RETURN_NONE;
    }
    return accountable_new(value, (token_t *)*token);
}

/* Step 3 of G_WRAP: the callables at g->index (and after it, WRAP_REST) and under g->names (in
 * new *args / our own *kwargs) wrapped in an Accountable that runs each with the registrant's chain. */
static int
gate_wrap(gate_t *g, PyFrameObject *frame, PyObject **args, PyObject **kwargs)
{
    PyObject *token = NULL;
    int asked = 0, rc = 0;
    Py_ssize_t n = PyTuple_GET_SIZE(*args);
    Py_ssize_t last = (g->wrap & WRAP_REST) ? n - 1 : g->index;
    PyObject *copy = NULL;   /* never the caller's tuple (f(*t)) */
    for (Py_ssize_t i = g->index; rc == 0 && i >= 0 && i <= last && i < n; i++) {
        PyObject *wrapped = wrap_for(g, frame, PyTuple_GET_ITEM(*args, i), &asked, &token);
        if (wrapped == NULL || (wrapped != Py_None && copy == NULL && (copy = tuple_copy(*args)) == NULL)) {
            Py_XDECREF(wrapped);
            rc = -1;
        } else if (wrapped == Py_None) {
            Py_DECREF(wrapped);
        } else {
            Py_SETREF(((PyTupleObject *)copy)->ob_item[i], wrapped);
        }
    }
    if (copy != NULL) {
        if (rc == 0) {
            Py_SETREF(*args, copy);
        } else {
            Py_DECREF(copy);
        }
    }
    for (Py_ssize_t i = 0; rc == 0 && *kwargs != NULL && g->names != NULL && i < PyTuple_GET_SIZE(g->names); i++) {
        PyObject *name = PyTuple_GET_ITEM(g->names, i);
        PyObject *value = PyDict_GetItemWithError(*kwargs, name);   /* our own copy (gate_own_kwargs) */
        if (value == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            continue;
        }
        PyObject *wrapped = wrap_for(g, frame, value, &asked, &token);
        rc = wrapped == NULL ? -1 : wrapped == Py_None ? 0 : PyDict_SetItem(*kwargs, name, wrapped);
        Py_XDECREF(wrapped);
    }
    Py_XDECREF(token);
    return rc;
}

static PyObject *
gate_call(gate_t *g, PyObject *args, PyObject *kwargs)
{
    if (!ready) {
        return PyObject_Call(g->original, args, kwargs);
    }
    PyObject *a = args, *kw = kwargs, *result = NULL, *shown = NULL;
    checks_t c = {0};
    Py_INCREF(a);
    Py_XINCREF(kw);
    if (g->before != NULL) {   /* path-likes in argument lists to str/bytes, as the caller */
        if (take_pair(g, PyObject_CallFunctionObjArgs(g->before, a, kw ? kw : Py_None, NULL), &a, &kw) < 0) {
            goto done;
        }
    }
    if (gate_own_kwargs(g, &kw) < 0 || gate_convert(g, &a, &kw) < 0
            || (g->kind == G_OPEN_AT && gate_open_at(g, &a, &kw) < 0)
            || (g->kind == G_FORK_EXEC && gate_freeze_fork_exec(g, &a) < 0)) {
        goto done;
    }
    PyFrameObject *frame = PyEval_GetFrame();   /* the caller's frame: a gate is C, it has none */
    /* capimport's own work only ever reads metadata (getcwd, stat, readlink) or writes its log
     * through the descriptor it opened: nothing else passes undecided, whatever frame is
     * innermost (a callback that capimport's Python reaches through a dunder, a finalizer or a
     * describe callable has no frame of its own). */
    int may_be_own = g->kind == G_CWD || (g->kind == G_PATH && g->cap == CAP_FS_RO) || IS_FD_GATE(g->kind);
    int own = may_be_own ? gate_is_internal(frame) : 0;
    if (own < 0) {
        fail_with_current("cannot tell who calls", g->api);
        goto done;
    }
    if (!own) {
        if (gate_checks(g, a, kw, &c, &shown) < 0) {
            goto done;
        }
        if (c.n && decide(&c, frame, g->api, shown) < 0) {
            goto done;
        }
        if ((g->kind == G_FORK_EXEC || g->kind == G_REWRITE) && g->after != NULL) {
            if (take_pair(g, gate_internal(g->after, a, kw ? kw : Py_None), &a, &kw) < 0) {
                goto done;
            }
        }
    }
    PyObject *given = NULL;   /* G_WRAP: the callable the caller handed in at g->index */
    if (g->kind == G_WRAP && g->index >= 0 && g->index < PyTuple_GET_SIZE(a)) {
        given = PyTuple_GET_ITEM(a, g->index);
        Py_INCREF(given);
    }
    if (g->kind == G_WRAP && gate_wrap(g, frame, &a, &kw) < 0) {
        Py_XDECREF(given);
        goto done;
    }
    if (g->kind == G_ACCEPT) {
        accepted_fd = -1;
    }
    if (g->kind == G_TRACER) {   /* the original's own event: decided above */
        vouch(g->index == 1 ? "sys.setprofile" : "sys.settrace");
    }
    result = PyObject_Call(g->original, a, kw);
    vouch(NULL);
    if (result != NULL && g->kind == G_TRACER) {
        note_tracer(tracer_arg(a, kw));
    }
    if (result != NULL && g->kind == G_ACCEPT && PyTuple_Check(result) && PyTuple_GET_SIZE(result) > 0
            && PyLong_CheckExact(PyTuple_GET_ITEM(result, 0))) {
        accepted_fd = PyLong_AsLong(PyTuple_GET_ITEM(result, 0));
        if (accepted_fd == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    if (result != NULL && g->kind == G_POST && g->after != NULL) {
        Py_SETREF(result, gate_internal(g->after, result, a));
    }
    if (result != NULL && given != NULL && PyObject_TypeCheck(result, &Accountable_Type)
            && ((accountable_t *)result)->func == given) {
        /* atexit.register returns the callable it was given: the caller gets its own back. Any
         * other wrapper (signal.signal's previous handler, getsignal's) stays one: unwrapped, a
         * distribution's handler would run as whoever calls it next (the application chaining
         * to the previous handler). */
        Py_INCREF(given);
        Py_SETREF(result, given);
    }
    Py_XDECREF(given);
done:
    checks_clear(&c);
    Py_XDECREF(shown);
    Py_DECREF(a);
    Py_XDECREF(kw);
    return result;
}

static void
gate_dealloc(gate_t *g)
{
    Py_XDECREF(g->original);
    Py_XDECREF(g->names);
    Py_XDECREF(g->fallback);
    Py_XDECREF(g->prefix);
    Py_XDECREF(g->api);
    Py_XDECREF(g->before);
    Py_XDECREF(g->after);
    Py_XDECREF(g->name);
    Py_XDECREF(g->qualname);
    Py_XDECREF(g->doc);
    Py_XDECREF(g->modname);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static PyObject *
gate_repr(gate_t *g)
{
    return PyUnicode_FromFormat("<capimport gate %U>", g->api);
}

/* Pickled by name, like the builtin it stands for (pickle finds it on its module). */
static PyObject *
gate_reduce(gate_t *g, PyObject *unused)
{
    Py_INCREF(g->qualname);
    return g->qualname;
}

static PyObject *
gate_get(gate_t *g, void *which)
{
    PyObject *v = NULL;
    switch ((int)(Py_intptr_t)which) {
    case 0: v = g->name; break;
    case 1: v = g->qualname; break;
    case 2: v = g->doc; break;
    case 3: v = g->modname; break;
    case 4: v = Py_True; break;
    }
    if (v == NULL) {
        v = Py_None;
    }
    Py_INCREF(v);
    return v;
}

static PyGetSetDef gate_getset[] = {
    {"__name__", (getter)gate_get, NULL, NULL, (void *)0},
    {"__qualname__", (getter)gate_get, NULL, NULL, (void *)1},
    {"__doc__", (getter)gate_get, NULL, NULL, (void *)2},
    {"__module__", (getter)gate_get, NULL, NULL, (void *)3},
    {"_capimport_guard", (getter)gate_get, NULL, NULL, (void *)4},
    {NULL},
};

static PyMethodDef gate_methods[] = {
    {"__reduce__", (PyCFunction)gate_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* No tp_new (a gate is made by _core.gate only), no tp_traverse (nothing reachable through it),
 * no tp_descr_get (stored on a class, it stays a plain function, as the builtin it replaces). */
static PyTypeObject Gate_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "capimport._core.Gate",
    .tp_basicsize = sizeof(gate_t),
    .tp_dealloc = (destructor)gate_dealloc,
    .tp_repr = (reprfunc)gate_repr,
    .tp_call = (ternaryfunc)gate_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A C function guarded by capimport's native core.",
    .tp_methods = gate_methods,
    .tp_getset = gate_getset,
};

static PyObject *
attr_or_none(PyObject *obj, const char *name, PyObject *fallback)
{
    if (fallback != NULL && fallback != Py_None) {
        Py_INCREF(fallback);
        return fallback;
    }
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return v;
}

/* gate(original, kind, api, *, capability=None, index=-1, names=(), default=None, before=None,
 *      after=None, name=None, frameless=False, always=False, read_index=-1, prefix=None, rest=False,
 *      accepted=False): a guard for
 * *original* decided by the core. Making one grants nothing: a gate only adds a decision in
 * front of the function it is given. */
static PyObject *
core_gate(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"original", "kind", "api", "capability", "index", "names", "default", "before",
                               "after", "name", "frameless", "always", "read_index", "prefix", "rest", "accepted", NULL};
    PyObject *original, *api, *capability = Py_None, *names = NULL, *fallback = Py_None, *before = Py_None;
    PyObject *after = Py_None, *name = Py_None, *prefix = Py_None;
    const char *kind;
    int index = -1, frameless = 0, always = 0, read_index = -1, rest = 0, accepted = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OsU|$OiO!OOOOppiOpp:gate", keywords, &original, &kind, &api,
                                     &capability, &index, &PyTuple_Type, &names, &fallback, &before, &after,
                                     &name, &frameless, &always, &read_index, &prefix, &rest, &accepted)) {
        return NULL;
    }
    int k = 0;
    while (k < G_COUNT && strcmp(GATE_KINDS[k], kind) != 0) {
        k++;
    }
    int cap = cap_named(capability);   /* -1 for None */
    if (k == G_COUNT || !PyCallable_Check(original) || ((k == G_PATH || k == G_WHOLE) && cap < 0)
            || (IS_FD_GATE(k) && index < 0 && read_index < 0)
            || (fallback != Py_None && !PyUnicode_CheckExact(fallback))
            || (prefix != Py_None && (k != G_PATH || !PyUnicode_CheckExact(prefix)))
            || (before != Py_None && !PyCallable_Check(before)) || (after != Py_None && !PyCallable_Check(after))
            || (names != NULL && !seq_of(names, is_exact_str))) {
        PyErr_SetString(PyExc_ValueError, "capimport._core.gate: bad arguments");
        return NULL;
    }
    /* before/after run with capimport's trust (after: as its own work): once the core is ready,
     * only the helpers that capimport itself handed over while installing are accepted. */
    PyObject *helpers[] = {before, after};
    for (int i = 0; i < 2; i++) {
        if (helpers[i] == Py_None) {
            continue;
        }
        if (!ready) {
            if ((trusted_helpers == NULL && (trusted_helpers = PyList_New(0)) == NULL)
                    || PyList_Append(trusted_helpers, helpers[i]) < 0) {
                return NULL;
            }
            continue;
        }
        int known = 0;
        for (Py_ssize_t j = 0; trusted_helpers != NULL && j < PyList_GET_SIZE(trusted_helpers); j++) {
            known |= PyList_GET_ITEM(trusted_helpers, j) == helpers[i];
        }
        if (!known) {
            PyErr_SetString(PyExc_PermissionError, "capimport._core.gate: before/after must be capimport's own");
            return NULL;
        }
    }
    if (PyObject_TypeCheck(original, &Gate_Type)) {
        Py_INCREF(original);   /* already gated: one decision is enough */
        return original;
    }
    gate_t *g = PyObject_New(gate_t, &Gate_Type);
    if (g == NULL) {
        return NULL;
    }
    g->original = original;
    g->kind = k;
    g->cap = cap;
    g->index = k == G_UMASK ? (int)current_umask() : index;
    if (k == G_TRACER) {   /* index 1: the profile function */
        PyThreadState *ts = PyThreadState_Get();
        note_tracer(index == 1 ? ts->c_profileobj : ts->c_traceobj);
    }
    g->read_index = read_index;
    g->names = names;
    g->fallback = fallback == Py_None ? NULL : fallback;
    g->prefix = prefix == Py_None ? NULL : prefix;
    g->api = api;
    g->before = before == Py_None ? NULL : before;
    g->after = after == Py_None ? NULL : after;
    g->wrap = (frameless ? WRAP_FRAMELESS : 0) | (always ? WRAP_ALWAYS : 0) | (rest ? WRAP_REST : 0)
              | (accepted && k == G_FD ? FD_ACCEPTED : 0);
    PyObject *refs[] = {original, names, g->fallback, g->prefix, api, g->before, g->after};
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        Py_XINCREF(refs[i]);
    }
    g->name = attr_or_none(original, "__name__", name);
    g->qualname = attr_or_none(original, "__qualname__", name);
    g->doc = attr_or_none(original, "__doc__", NULL);
    g->modname = attr_or_none(original, "__module__", NULL);
    if (!PyUnicode_Check(g->qualname)) {
        Py_SETREF(g->qualname, api);
        Py_INCREF(api);
    }
    return (PyObject *)g;
}


/* ------------------------------------------------------------------ ctypes's foreign calls */

/* Calling a ctypes function pointer raises no audit event on 3.11 (ctypes.memmove and memset,
 * made by ctypes at import from addresses _ctypes exports, and any CFUNCTYPE built from an
 * address): a distribution granted nothing that can import ctypes could write any memory. The
 * core gates the call slot of _ctypes.CFuncPtr, of every subclass that inherited it, and its
 * __call__ (whose slot wrapper calls the original directly), raising ctypes.call_function, the
 * event CPython documents for it, before each call: ffi of whoever calls. Subclasses made later
 * inherit the gated slot. */
static ternaryfunc ctypes_call = NULL;
static PyTypeObject *ctypes_call_bases[8];   /* CFuncPtr of each _ctypes module made (3.12+: heap types) */
static int n_ctypes_call_bases = 0;

static PyObject *
ctypes_call_gate(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (PySys_Audit("ctypes.call_function", "OO", self, args != NULL ? args : Py_None) < 0) {
        return NULL;
    }
    return ctypes_call(self, args, kwargs);
}

static PyObject *
ctypes_call_method(PyObject *self, PyObject *args, PyObject *kwargs)
{
    int known = 0;
    for (int i = 0; i < n_ctypes_call_bases && !known; i++) {
        known = PyObject_TypeCheck(self, ctypes_call_bases[i]);
    }
    if (!known) {
        PyErr_SetString(PyExc_TypeError, "__call__ needs a ctypes function pointer");
        return NULL;
    }
    return ctypes_call_gate(self, args, kwargs);
}

static PyMethodDef ctypes_call_def = {"__call__", (PyCFunction)(void (*)(void))ctypes_call_method,
                                      METH_VARARGS | METH_KEYWORDS, "Call self as a function (gated: ffi)."};

/* The slot at *offset* of *type* and of every subclass under it (depth first) that still holds
 * *from* (inherited it) set to *to*: a gated slot reaches subclasses made before the gate;
 * those made later inherit the gated one. */
static int
swap_slot(PyTypeObject *type, size_t offset, void *from, void *to)
{
    void **slot = (void **)((char *)type + offset);
    if (*slot == from) {
        *slot = to;
        PyType_Modified(type);
    }
    PyObject *subclasses = PyObject_CallMethod((PyObject *)type, "__subclasses__", NULL);
    if (subclasses == NULL || !PyList_Check(subclasses)) {
        Py_XDECREF(subclasses);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(subclasses); i++) {
        if (swap_slot((PyTypeObject *)PyList_GET_ITEM(subclasses, i), offset, from, to) < 0) {
            Py_DECREF(subclasses);
            return -1;
        }
    }
    Py_DECREF(subclasses);
    return 0;
}

/* gate_ctypes_calls(CFuncPtr): once, when _ctypes is first imported (or at install). */
static PyObject *
core_gate_ctypes_calls(PyObject *module, PyObject *base)
{
    if (!PyType_Check(base) || ((PyTypeObject *)base)->tp_call == NULL) {
        PyErr_SetString(PyExc_TypeError, "gate_ctypes_calls(CFuncPtr): a callable type");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)base;
    for (int i = 0; i < n_ctypes_call_bases; i++) {
        if (ctypes_call_bases[i] == type) {
            Py_RETURN_NONE;
        }
    }
    if ((ctypes_call != NULL && type->tp_call != ctypes_call) || n_ctypes_call_bases == 8) {
        PyErr_SetString(PyExc_RuntimeError, "gate_ctypes_calls: a CFuncPtr with another call slot");
        return NULL;
    }
    ctypes_call = type->tp_call;
    ctypes_call_bases[n_ctypes_call_bases++] = type;
    Py_INCREF(type);
    PyObject *method = PyDescr_NewMethod(type, &ctypes_call_def);
    if (method == NULL || PyDict_SetItemString(type->tp_dict, "__call__", method) < 0) {
        Py_XDECREF(method);
        return NULL;
    }
    Py_DECREF(method);
    if (swap_slot(type, offsetof(PyTypeObject, tp_call), (void *)ctypes_call, (void *)ctypes_call_gate) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}


/* ------------------------------------------------------------------ ctypes's data objects */

/* A ctypes data object is raw memory with a Python face, and making one raises no audit event:
 * c_char_p(address).value reads any memory, and a Union of an integer and a POINTER writes any
 * (u.i = address; u.p.contents.value = x), with no foreign call, no from_address and no symbol.
 * The core gates the instance maker (tp_new) of _ctypes's data bases (_SimpleCData, Structure,
 * Union, Array, _Pointer) and of every subclass that inherited it, raising capimport.ctypes_data
 * (ffi of whoever makes one) first. X.__new__(cls) reads the slot at call time, so it is gated
 * too; object.__new__(cls) is refused by CPython as unsafe. Objects ctypes makes inside (a
 * structure's fields, a pointer's contents, a foreign call's result) need a gated object first. */
#define MAX_CTYPES_DATA_BASES 40
static PyTypeObject *ctypes_data_bases[MAX_CTYPES_DATA_BASES];
static newfunc ctypes_data_new[MAX_CTYPES_DATA_BASES];
static int n_ctypes_data_bases = 0;

static PyObject *
ctypes_data_gate(PyTypeObject *subtype, PyObject *args, PyObject *kwargs)
{
    for (int i = 0; i < n_ctypes_data_bases; i++) {
        if (PyType_IsSubtype(subtype, ctypes_data_bases[i])) {
            if (PySys_Audit("capimport.ctypes_data", "O", (PyObject *)subtype) < 0) {
                return NULL;
            }
            return ctypes_data_new[i](subtype, args, kwargs);
        }
    }
    PyErr_SetString(PyExc_TypeError, "capimport: not a ctypes data type");
    return NULL;
}

/* gate_ctypes_data((_SimpleCData, Structure, Union, Array, _Pointer)): once per _ctypes made. */
static PyObject *
core_gate_ctypes_data(PyObject *module, PyObject *bases)
{
    if (!PyTuple_Check(bases)) {
        PyErr_SetString(PyExc_TypeError, "gate_ctypes_data(bases): a tuple of types");
        return NULL;
    }
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(bases); j++) {
        PyObject *base = PyTuple_GET_ITEM(bases, j);
        if (!PyType_Check(base) || ((PyTypeObject *)base)->tp_new == NULL) {
            PyErr_SetString(PyExc_TypeError, "gate_ctypes_data(bases): types that make instances");
            return NULL;
        }
        PyTypeObject *type = (PyTypeObject *)base;
        int known = 0;
        for (int i = 0; i < n_ctypes_data_bases && !known; i++) {
            known = ctypes_data_bases[i] == type;
        }
        if (known) {
            continue;
        }
        if (type->tp_new == ctypes_data_gate || n_ctypes_data_bases == MAX_CTYPES_DATA_BASES) {
            PyErr_SetString(PyExc_RuntimeError, "gate_ctypes_data: a base already gated, or too many");
            return NULL;
        }
        newfunc original = type->tp_new;
        /* registered before its subclasses are walked: a gated subclass finds its base here */
        Py_INCREF(type);
        ctypes_data_bases[n_ctypes_data_bases] = type;
        ctypes_data_new[n_ctypes_data_bases++] = original;
        if (swap_slot(type, offsetof(PyTypeObject, tp_new), (void *)original, (void *)ctypes_data_gate) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}


/* ------------------------------------------------------------------ an immutable type's __init__ */

/* A gate written into an immutable type's dict as __init__ (guards/descriptors.py: the socket
 * type, whose __init__ with fileno= makes a socket object of any descriptor) is what
 * `Type.__init__(obj, ...)` finds, but making an instance calls the type's tp_init slot, which
 * the dict write does not change. The core points the slot of the type, and of every subclass
 * that inherited it, at this function: the __init__ the type's dict holds now, as a Python
 * class's slot would call it. */
static PyObject *init_name = NULL;

static int
init_through_dict(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *init = _PyType_Lookup(Py_TYPE(self), init_name);   /* borrowed */
    if (init == NULL) {
        PyErr_SetString(PyExc_TypeError, "capimport: the type's __init__ is gone");
        return -1;
    }
    Py_INCREF(init);
    PyObject *bound = init;
    descrgetfunc get = Py_TYPE(init)->tp_descr_get;
    if (get != NULL) {
        bound = get(init, self, (PyObject *)Py_TYPE(self));
        Py_DECREF(init);
        if (bound == NULL) {
            return -1;
        }
    }
    PyObject *result = PyObject_Call(bound, args, kwargs);
    Py_DECREF(bound);
    if (result == NULL) {
        return -1;
    }
    int rc = result == Py_None ? 0 : -1;
    if (rc < 0) {
        PyErr_SetString(PyExc_TypeError, "__init__() should return None");
    }
    Py_DECREF(result);
    return rc;
}

/* init_through_dict(type): once per type, after its dict's __init__ was replaced. */
static PyObject *
core_init_through_dict(PyObject *module, PyObject *arg)
{
    if (!PyType_Check(arg) || ((PyTypeObject *)arg)->tp_init == NULL) {
        PyErr_SetString(PyExc_TypeError, "init_through_dict(type): a type with an __init__ slot");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)arg;
    if (type->tp_init == init_through_dict) {
        Py_RETURN_NONE;
    }
    if (init_name == NULL && (init_name = PyUnicode_InternFromString("__init__")) == NULL) {
        return NULL;
    }
    PyObject *held = _PyType_Lookup(type, init_name);
    if (held == NULL || Py_TYPE(held) == &PyWrapperDescr_Type) {
        PyErr_SetString(PyExc_RuntimeError, "init_through_dict: the type's dict still holds its own __init__");
        return NULL;
    }
    Py_INCREF(type);   /* its slot points here for good */
    if (swap_slot(type, offsetof(PyTypeObject, tp_init), (void *)type->tp_init, (void *)init_through_dict) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}
