/* Route 4: callbacks the interpreter itself calls later, from whatever stack happens to run.
 *
 * A callable with no Python frame of its own (a builtin, a functools.partial, a bound builtin
 * method) acts as whoever is on the stack when it runs. Registration APIs that are functions
 * are wrap gates (_core_gate.h); the two below are not functions:
 *
 *   - weakref.ref(obj, callback) is a type: the callback runs when obj dies, from the stack
 *     that dropped the last reference (often the application's). Its instance maker (tp_new),
 *     and that of every subclass that inherited it, wraps such a callback with its registrant's
 *     chain, as atexit.register's gate does.
 *   - gc.callbacks is a plain list the collector calls at each collection, from the stack that
 *     triggered it; appending to a list raises nothing and can be done by list.append itself.
 *     The core keeps the collector's list to itself, with one entry of its own, and gc.callbacks
 *     names another list: at each call the core copies that list's entries into the
 *     collector's, and an entry with no Python frame of its own (who put it there is not known)
 *     runs charged to code nobody owns (the default grant) together with whoever triggered the
 *     collection, as a planted import hook does. Python functions and objects whose __call__ is
 *     a Python function keep their own frames and are copied as they are.
 *
 * Included by _core.c after the chain helpers (append_callers_chain) it uses. */

/* ------------------------------------------------------------------ weakref.ref callbacks */

static newfunc weakref_new = NULL;   /* weakref.ref's own tp_new */
static PyTypeObject *weakref_type = NULL;

/* What weakref_gate hands gate_wrap: the callback at position 1, wrapped only when it has no
 * Python frame of its own. Never exposed as an object (only wrap, index and names are read). */
static gate_t weakref_callback_rule;

static PyObject *
weakref_gate(PyTypeObject *subtype, PyObject *args, PyObject *kwargs)
{
    if (!ready || args == NULL || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 2
            || !wrap_wanted(&weakref_callback_rule, PyTuple_GET_ITEM(args, 1))) {
        return weakref_new(subtype, args, kwargs);
    }
    PyObject *no_kwargs = NULL;
    Py_INCREF(args);
    PyObject *out = NULL;
    if (gate_wrap(&weakref_callback_rule, PyEval_GetFrame(), &args, &no_kwargs) == 0) {
        out = weakref_new(subtype, args, kwargs);
    }
    Py_DECREF(args);
    return out;
}

/* gate_weakref(weakref.ref): once, at install. */
static PyObject *
core_gate_weakref(PyObject *module, PyObject *base)
{
    if (!PyType_Check(base) || ((PyTypeObject *)base)->tp_new == NULL) {
        PyErr_SetString(PyExc_TypeError, "gate_weakref(ref): the weak reference type");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)base;
    if (weakref_type != NULL) {
        if (weakref_type == type) {
            Py_RETURN_NONE;
        }
        PyErr_SetString(PyExc_RuntimeError, "gate_weakref: another weak reference type");
        return NULL;
    }
    weakref_callback_rule.kind = G_WRAP;
    weakref_callback_rule.index = 1;
    weakref_callback_rule.names = NULL;
    weakref_callback_rule.wrap = WRAP_FRAMELESS;
    weakref_new = type->tp_new;
    Py_INCREF(type);
    weakref_type = type;
    if (swap_slot(type, offsetof(PyTypeObject, tp_new), (void *)weakref_new, (void *)weakref_gate) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}


/* ------------------------------------------------------------------ gc.callbacks */

static PyObject *gc_called = NULL;   /* list: the one the collector calls (it holds gc_copy first) */
static PyObject *gc_call_name = NULL;   /* "__call__" */
static PyObject *gc_frozen = NULL;      /* "<frozen ": the import system's own functions */
static PyObject *gc_named = NULL;    /* list: the one gc.callbacks names, anyone's to change */

/* Does *entry* run with a Python frame of its own that says where it came from? Reads types and
 * class dictionaries only: no code of the entry runs here. Classes count as planted (calling one
 * runs whatever its __new__/__init__ are), and so does anything else with a C __call__. */
static int
gc_entry_planted(PyObject *entry)
{
    if (PyObject_TypeCheck(entry, &Accountable_Type)) {
        return 0;   /* the core's own wrapper: its chain was minted by the core */
    }
    PyObject *func = entry;
    if (PyMethod_Check(entry)) {
        func = PyMethod_GET_FUNCTION(entry);
    } else if (!PyFunction_Check(entry) && !PyType_Check(entry)) {
        func = _PyType_Lookup(Py_TYPE(entry), gc_call_name);   /* borrowed, or NULL */
    }
    if (func == NULL || !PyFunction_Check(func)) {
        return 1;
    }
    PyObject *filename = ((PyCodeObject *)PyFunction_GET_CODE(func))->co_filename;
    if (!PyUnicode_Check(filename) || PyUnicode_GET_LENGTH(filename) == 0) {
        return 1;
    }
    if (PyUnicode_READ_CHAR(filename, 0) != '<') {
        return 0;
    }
    return PyUnicode_Tailmatch(filename, gc_frozen, 0, PY_SSIZE_T_MAX, -1) != 1;
}

/* The collector's first entry: the named list's entries copied after it, planted ones charged. */
static PyObject *
gc_copy(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (gc_called == NULL || gc_named == NULL) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(gc_named);
    PyObject *entries = PyList_New(n);
    PyObject *token = NULL;
    int rc = entries == NULL ? -1 : 0;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *entry = PyList_GET_ITEM(gc_named, i);
        Py_INCREF(entry);
        if (gc_entry_planted(entry)) {
            if (token == NULL) {
                chain_t ch = {0};
                PyObject *empty = PyUnicode_FromString("");
                rc = empty == NULL || chain_append(&ch, O_UNKNOWN, empty, NULL, 0) < 0 ? -1 : 0;
                Py_XDECREF(empty);
                rc = rc < 0 ? -1 : append_callers_chain(&ch);
                token = rc < 0 ? NULL : token_from_chain(&ch);
                chain_clear(&ch);
                rc = token == NULL ? -1 : 0;
            }
            Py_SETREF(entry, rc < 0 ? NULL : accountable_new(entry, (token_t *)token));
            rc = entry == NULL ? -1 : rc;
        }
        if (entry != NULL) {
            PyList_SET_ITEM(entries, i, entry);
        }
    }
    Py_XDECREF(token);
    if (rc == 0) {
        rc = PyList_SetSlice(gc_called, 1, PY_SSIZE_T_MAX, entries);
    }
    Py_XDECREF(entries);
    if (rc < 0) {
        /* fail closed: nothing after us runs this collection (the collector reports the error) */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyList_SetSlice(gc_called, 1, PY_SSIZE_T_MAX, NULL);
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef gc_copy_def = {"capimport_gc_callbacks", (PyCFunction)(void (*)(void))gc_copy, METH_FASTCALL,
                                  "capimport: gc.callbacks's entries, copied for the collector"};

/* guard_gc_callbacks(called, named): once, at install. *called* is the collector's list (gc.callbacks
 * as the gc module was made), *named* the list gc.callbacks will name; the core keeps the first. */
static PyObject *
core_guard_gc_callbacks(PyObject *module, PyObject *args)
{
    PyObject *called, *named;
    if (!PyArg_ParseTuple(args, "O!O!:guard_gc_callbacks", &PyList_Type, &called, &PyList_Type, &named)) {
        return NULL;
    }
    if (gc_called != NULL) {
        if (gc_called == called && gc_named == named) {
            Py_RETURN_NONE;
        }
        PyErr_SetString(PyExc_RuntimeError, "guard_gc_callbacks: already guarded");
        return NULL;
    }
    if (!PyList_CheckExact(called) || !PyList_CheckExact(named) || called == named) {
        PyErr_SetString(PyExc_TypeError, "guard_gc_callbacks(called, named): two plain lists");
        return NULL;
    }
    if ((gc_call_name == NULL && (gc_call_name = PyUnicode_InternFromString("__call__")) == NULL)
            || (gc_frozen == NULL && (gc_frozen = PyUnicode_InternFromString("<frozen ")) == NULL)) {
        return NULL;
    }
    PyObject *copy = PyCFunction_New(&gc_copy_def, NULL);
    if (copy == NULL) {
        return NULL;
    }
    PyObject *only = PyList_New(1);
    if (only == NULL) {
        Py_DECREF(copy);
        return NULL;
    }
    PyList_SET_ITEM(only, 0, copy);
    if (PyList_SetSlice(named, 0, PY_SSIZE_T_MAX, called) < 0
            || PyList_SetSlice(called, 0, PY_SSIZE_T_MAX, only) < 0) {
        Py_DECREF(only);
        return NULL;
    }
    Py_DECREF(only);
    Py_INCREF(called);
    Py_INCREF(named);
    gc_called = called;
    gc_named = named;
    Py_RETURN_NONE;
}
