/* capimport._core, SQLite's authorizer: ATTACH, VACUUM INTO and the folder PRAGMAs, decided in C.
 *
 * Part of _core.c (included after the decision, whose checks and decide it uses); kept in its
 * own file because it is its own concept (docs/decisions.md, "The native decision core").
 *
 * On an open connection, ATTACH 'path' and VACUUM INTO 'path' create files with no audit event;
 * SQLite's authorizer sees both first (action SQLITE_ATTACH, with the file name as written, or
 * none when the name is an expression such as a bound parameter), and the folder PRAGMAs
 * (temp_store_directory, data_store_directory) name a folder SQLite creates files in.
 * capimport/guards/sqlite.py gives every connection an authorizer (the type's __init__ and
 * set_authorizer are replaced, and sealed in C by _speedups). With the core, that authorizer is
 * this object: its decision is the core's, and the program's own callback, if any, runs after
 * it. Before, it was Python deciding through Enforcer.decide, which a distribution could reach
 * from the sealed __init__'s globals and rebind on the enforcer instance.
 *
 * An Authorizer holds the program's callback in C memory only (no attribute, no tp_traverse: a
 * callback that refers back to its connection is a cycle the collector does not break, which is
 * the price of there being nothing to rewrite). It decides fs on the attached file (fs-readonly
 * for a mode=ro URI, as the sqlite3.connect event), fs on "/" when the name is an expression
 * (the file is not known yet: only unscoped fs holds it), and fs on a PRAGMA's folder. A denial
 * is reported as every denial is, and SQLite refuses the statement ("not authorized"); any other
 * error refuses it too (fail closed).
 */

#define SQLITE_OK_CODE 0
#define SQLITE_DENY_CODE 1
#define SQLITE_PRAGMA_CODE 19
#define SQLITE_ATTACH_CODE 24

typedef struct {
    PyObject_HEAD
    PyObject *user;   /* the program's callback, or NULL */
} authorizer_t;

static PyTypeObject Authorizer_Type;

static void
authorizer_dealloc(authorizer_t *self)
{
    Py_XDECREF(self->user);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* 1 when *name* (a str) is a PRAGMA that names a folder SQLite creates files in. */
static int
sqlite_directory_pragma(PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        return 0;
    }
    PyObject *lower = PyObject_CallMethod(name, "lower", NULL);
    if (lower == NULL) {
        PyErr_Clear();
        return 0;
    }
    int found = PyUnicode_CompareWithASCIIString(lower, "temp_store_directory") == 0
                || PyUnicode_CompareWithASCIIString(lower, "data_store_directory") == 0;
    Py_DECREF(lower);
    return found;
}

/* The checks for one authorizer call into *c*; *what* gets the words for a report (new ref). */
static int
sqlite_checks(checks_t *c, long action, PyObject *arg1, PyObject *arg2, PyObject **what)
{
    PyObject *api = NULL;
    int rc = -1;
    if (action == SQLITE_ATTACH_CODE && arg1 == Py_None) {
        /* an expression (a bound parameter): SQLite names the file only when the statement runs,
         * after the authorizer. Any file: fs on the root (fail closed). */
        PyObject *root = PyUnicode_FromString("/");
        api = PyUnicode_FromString("sqlite ATTACH");
        *what = PyUnicode_FromString("ATTACH or VACUUM INTO a file named by an expression (a bound parameter)");
        rc = root && api && *what && add_check(c, CAP_FS, T_PATH, root, NULL, api) ? 0 : -1;
        Py_XDECREF(root);
    }
    else if (action == SQLITE_ATTACH_CODE) {
        api = PyUnicode_FromString("sqlite ATTACH");
        *what = PyUnicode_FromFormat("ATTACH or VACUUM INTO %R", arg1);
        rc = api && *what ? add_sqlite_checks(c, arg1, api) : -1;
    }
    else {   /* a folder PRAGMA with a value */
        api = PyUnicode_FromFormat("PRAGMA %U", arg1);
        *what = PyUnicode_FromFormat("PRAGMA %U = %R", arg1, arg2);
        rc = api && *what && add_check(c, CAP_FS, T_PATH, arg2, NULL, api) ? 0 : -1;
    }
    Py_XDECREF(api);
    return rc;
}

/* authorizer(action, arg1, arg2, dbname, source): SQLite's callback. */
static PyObject *
authorizer_call(authorizer_t *self, PyObject *args, PyObject *kwargs)
{
    long action;
    PyObject *arg1, *arg2, *dbname, *source;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        return PyLong_FromLong(SQLITE_DENY_CODE);
    }
    if (!PyArg_ParseTuple(args, "lOOOO:authorizer", &action, &arg1, &arg2, &dbname, &source)) {
        PyErr_Clear();
        return PyLong_FromLong(SQLITE_DENY_CODE);
    }
    int checked = action == SQLITE_ATTACH_CODE && (arg1 == Py_None || PyUnicode_Check(arg1));
    checked |= action == SQLITE_PRAGMA_CODE && arg2 != Py_None && PyUnicode_Check(arg2)
               && PyUnicode_GET_LENGTH(arg2) > 0 && sqlite_directory_pragma(arg1);
    if (checked && ready) {
        /* No "capimport's own work" shortcut: capimport never attaches a database or moves
         * SQLite's folders. */
        checks_t c = {0};
        PyObject *what = NULL;
        int rc = sqlite_checks(&c, action, arg1, arg2, &what);
        if (rc == 0) {
            rc = decide(&c, PyEval_GetFrame(), what, Py_None);
        }
        checks_clear(&c);
        Py_XDECREF(what);
        if (rc != 0) {   /* denied (reported), or an error: refused either way */
            PyErr_Clear();
            return PyLong_FromLong(SQLITE_DENY_CODE);
        }
    }
    if (self->user == NULL) {
        return PyLong_FromLong(SQLITE_OK_CODE);
    }
    return PyObject_Call(self->user, args, NULL);
}

static PyObject *
authorizer_repr(authorizer_t *self)
{
    return PyUnicode_FromString(self->user ? "<capimport SQLite authorizer, then the program's>"
                                           : "<capimport SQLite authorizer>");
}

static PyObject *
authorizer_reduce(PyObject *self, PyObject *unused)
{
    PyErr_SetString(PyExc_TypeError, "capimport's SQLite authorizer cannot be pickled");
    return NULL;
}

static PyMethodDef authorizer_methods[] = {
    {"__reduce__", (PyCFunction)authorizer_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* No tp_new (made by _core.sqlite_authorizer only), no tp_traverse (nothing reachable through it). */
static PyTypeObject Authorizer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "capimport._core.Authorizer",
    .tp_basicsize = sizeof(authorizer_t),
    .tp_dealloc = (destructor)authorizer_dealloc,
    .tp_repr = (reprfunc)authorizer_repr,
    .tp_call = (ternaryfunc)authorizer_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SQLite's authorizer for one connection, decided by capimport's native core.",
    .tp_methods = authorizer_methods,
};

/* sqlite_authorizer(user): the authorizer to install, running *user* (callable or None) after
 * the core's decision. Making one grants nothing: it only adds a decision. */
static PyObject *
core_sqlite_authorizer(PyObject *module, PyObject *user)
{
    if (user != Py_None && !PyCallable_Check(user)) {
        PyErr_SetString(PyExc_TypeError, "set_authorizer(): the authorizer must be callable or None");
        return NULL;
    }
    authorizer_t *self = PyObject_New(authorizer_t, &Authorizer_Type);
    if (self == NULL) {
        return NULL;
    }
    self->user = user == Py_None ? NULL : (Py_INCREF(user), user);
    return (PyObject *)self;
}
