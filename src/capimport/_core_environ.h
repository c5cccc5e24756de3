/* capimport._core, the environment (route 1): os.environ and os.environb as views of one store
 * that lives in C memory and decides every read and write in C.
 *
 * Part of _core.c (included after the gates, whose internal-work test it shares); its own file
 * because it is its own concept (docs/decisions.md, "The environment in C memory").
 *
 * Reading the environment raises no audit event. CPython keeps it in one dict of bytes
 * (posix.environ, which is also os.environ._data); environment() copies that dict into a new one
 * that only two EnvView objects hold, and empties the original (a posix module re-created from the
 * interpreter's cached copy would otherwise bring it back). A view has no attribute, no
 * tp_traverse and no __reduce__ that hands the store out, so gc.get_referents and friends reach
 * nothing.
 *
 * capimport puts a view's bound methods on the classes of os.environ and os.environb
 * (guards/environ.py). A builtin method stored on a class does not bind to the instance, so
 * os.environ.get("HOME") calls the C method straight from the caller's frame, and the walk starts
 * there: no Python frame of capimport's is in between, and there is no Python code whose helpers
 * could be rebound to turn the decision off. Rebinding the class's methods changes what the
 * rebinder's own calls do; a view reached that way still decides on whoever calls it.
 *
 * Semantics (as the Python vault of the fallback): in enforce mode a name the caller may not read
 * looks unset (KeyError, None, absent from iteration) and the hiding is reported once per party
 * and name; warn and record show everything and report. Setting and deleting need 'env' and are
 * decided before posix.putenv/unsetenv run; their own audit event is that same act, vouched for
 * (vouch), so that warn and record mode report one act once.
 */

typedef struct {
    PyObject_HEAD
    PyObject *store;      /* dict bytes -> bytes, shared by the two views of the environment */
    PyObject *putenv;     /* posix.putenv and posix.unsetenv, as they were when the store was made */
    PyObject *unsetenv;
    int text;             /* 1: os.environ (str); 0: os.environb (bytes) */
} envview_t;

static PyTypeObject EnvView_Type;
static strmap env_hidden;   /* "origin:name" -> True: that party's hidden read is already reported */

static void
envview_dealloc(envview_t *v)
{
    Py_XDECREF(v->store);
    Py_XDECREF(v->putenv);
    Py_XDECREF(v->unsetenv);
    PyObject_Free(v);
}

/* The key as the store holds it (exact bytes, new reference), with os's TypeError otherwise. */
static PyObject *
env_key(envview_t *v, PyObject *key)
{
    if (v->text) {
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "str expected, not %.100s", Py_TYPE(key)->tp_name);
            return NULL;
        }
        return PyUnicode_EncodeFSDefault(key);   /* the data, not a subclass's methods */
    }
    if (!PyBytes_Check(key)) {
        PyErr_Format(PyExc_TypeError, "bytes expected, not %.100s", Py_TYPE(key)->tp_name);
        return NULL;
    }
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
}

/* A stored key or value as the view shows it (new reference). */
static PyObject *
env_shown(envview_t *v, PyObject *raw)
{
    if (v->text) {
        return PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    }
    Py_INCREF(raw);
    return raw;
}

/* One check of *cap* on the environment variable *raw* (bytes, or the str "*"). Only called once
 * the core is ready, so str_environ_api is set. */
static int
env_check(checks_t *c, int cap, PyObject *raw)
{
    return add_check(c, cap, T_ENV, raw, NULL, str_environ_api) ? 0 : -1;
}

/* How a report names the act on *name* (str, "*" for the whole environment). */
static PyObject *
env_describe(PyObject *name, const char *verb)
{
    if (strchr(verb, '%') == NULL) {
        return PyUnicode_FromString(verb);   /* worded in full already (os.environ._data) */
    }
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "*") == 0) {
        return PyUnicode_FromString("iterating os.environ");
    }
    return PyUnicode_FromFormat(verb, name);
}

/* Decide an act on the environment as an event is decided: raises the denial in enforce mode. */
static int
env_decide(PyFrameObject *frame, int cap, PyObject *raw, const char *verb)
{
    checks_t c = {0};
    PyObject *name = NULL, *describe = NULL;
    int rc = env_check(&c, cap, raw);
    if (rc == 0) {
        name = get_target(&c, 0);
        describe = name ? env_describe(name, verb) : NULL;
        rc = describe ? decide(&c, frame, describe, Py_None) : -1;
    }
    Py_XDECREF(describe);
    checks_clear(&c);
    return rc;
}

/* Report, once per party and name, that a read by *origin* was hidden: the core decides again
 * and the report words the denial; the name stays hidden whatever the report does. */
static void
env_report_hidden(PyFrameObject *frame, int origin, PyObject *raw)
{
    PyObject *name = PyUnicode_Check(raw) ? (Py_INCREF(raw), raw) : exact_text(raw);
    PyObject *key = name ? PyUnicode_FromFormat("%d:%U", origin, name) : NULL;
    if (key != NULL && strmap_get(&env_hidden, key) == NULL && strmap_set(&env_hidden, key, Py_True) == 0) {
        env_decide(frame, CAP_ENV_RO, raw, "os.environ[%R]");
    }
    Py_XDECREF(key);
    Py_XDECREF(name);
    PyErr_Clear();
}

/* Which of *names* (a list of raw keys, or NULL for the single key *one*) the caller may read:
 * fills *visible* (one flag each) and returns the number hidden, or -1. In warn and record mode
 * everything is visible and the read is decided (and so reported) as any act is; capimport's own
 * work, met while the core runs it, sees everything. */
static Py_ssize_t
env_visible(PyFrameObject *frame, PyObject *names, PyObject *one, char *visible)
{
    Py_ssize_t n = names ? PyList_GET_SIZE(names) : 1;
    memset(visible, 1, (size_t)n);
    if (!ready) {
        return 0;
    }
    /* No "capimport's own work" pass, unlike the gates: capimport reads no environment while
     * the core runs it, and a C callable planted in its Python (a partial of os.environ.copy)
     * would read everything with capimport's frame innermost. */
    if (mode != MODE_ENFORCE) {
        return env_decide(frame, CAP_ENV_RO, names ? str_star : one, "os.environ[%R]") < 0 ? -1 : 0;
    }
    checks_t first = {0};
    chain_t ch = {0};
    int *acc = NULL, n_acc = 0;
    int rc = env_check(&first, CAP_ENV_RO, names ? str_star : one);
    rc = rc < 0 ? -1 : accountable_links(&first, frame, &ch, &acc, &n_acc);
    checks_clear(&first);
    Py_ssize_t hidden = 0;
    int lacking = -1;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        checks_t c = {0};
        rc = env_check(&c, CAP_ENV_RO, names ? PyList_GET_ITEM(names, i) : one);
        for (int a = 0; rc == 0 && a < n_acc; a++) {
            int scoped, origin = ch.items[acc[a]].origin;
            int ok = holds(origin, &c, 0, &scoped);
            if (ok < 0) {
                rc = -1;
            } else if (!ok && visible[i]) {
                visible[i] = 0;
                hidden++;
                lacking = lacking < 0 ? origin : lacking;
            }
        }
        checks_clear(&c);
    }
    PyMem_Free(acc);
    chain_clear(&ch);
    if (rc < 0) {
        return -1;
    }
    if (hidden) {
        env_report_hidden(frame, lacking, names ? str_star : one);
    }
    return hidden;
}

/* The stored value of *key* when the caller may read it: new reference, NULL with no error when
 * unset or hidden, NULL with an error on failure. */
static PyObject *
env_lookup(envview_t *v, PyObject *key)
{
    PyObject *raw = env_key(v, key);
    if (raw == NULL) {
        return NULL;
    }
    PyObject *value = PyDict_GetItemWithError(v->store, raw);
    Py_XINCREF(value);
    char visible;
    if (value != NULL && env_visible(PyEval_GetFrame(), NULL, raw, &visible) < 0) {
        Py_CLEAR(value);
    } else if (value != NULL && !visible) {
        Py_CLEAR(value);
    }
    Py_DECREF(raw);
    return value;
}

/* Every method is called with the mapping first (os.environ, or an items view of it): as the
 * class's instancemethod, os.environ.get(k) and type(os.environ).get(os.environ, k) both arrive
 * as (mapping, k). The mapping is not used: the store is the view's. */
static int
env_args(const char *name, Py_ssize_t nargs, Py_ssize_t least, Py_ssize_t most)
{
    if (nargs < 1 + least || nargs > 1 + most) {
        PyErr_Format(PyExc_TypeError, "%s expected %zd argument%s, got %zd", name, least, least == 1 ? "" : "s",
                     nargs > 0 ? nargs - 1 : 0);
        return 0;
    }
    return 1;
}

static PyObject *
envview_getitem(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("__getitem__", nargs, 1, 1)) {
        return NULL;
    }
    PyObject *key = args[1];
    PyObject *value = env_lookup(v, key);
    if (value == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, key);
        }
        return NULL;
    }
    Py_SETREF(value, env_shown(v, value));
    return value;
}

static PyObject *
envview_get(envview_t *v, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *fallback = nargs > 2 ? args[2] : Py_None;
    if (nkw > 1 || (nkw == 1 && (nargs > 2 || !PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0))
                                 || PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "default") != 0))) {
        PyErr_SetString(PyExc_TypeError, "get() takes a key and an optional default");
        return NULL;
    }
    if (nkw == 1) {
        fallback = args[nargs];   /* Mapping.get(key, default=None) */
    }
    if (!env_args("get", nargs, 1, 2)) {
        return NULL;
    }
    PyObject *value = env_lookup(v, args[1]);
    if (value == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_INCREF(fallback);
        return fallback;
    }
    Py_SETREF(value, env_shown(v, value));
    return value;
}

static PyObject *
envview_contains(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("__contains__", nargs, 1, 1)) {
        return NULL;
    }
    PyObject *value = env_lookup(v, args[1]);
    if (value == NULL && PyErr_Occurred()) {
        return NULL;
    }
    Py_XDECREF(value);
    return PyBool_FromLong(value != NULL);
}

/* The (key, value) pairs the caller may read, raw, in the store's order: a new list. */
static PyObject *
env_pairs(envview_t *v)
{
    /* One snapshot: the keys are read from the pairs themselves. (Any allocation may run a
     * collection, and so gc callbacks and finalizers that change the store: a second snapshot
     * would not line up with the first.) */
    PyObject *pairs = PyDict_Items(v->store);
    Py_ssize_t n = pairs ? PyList_GET_SIZE(pairs) : 0;
    PyObject *keys = pairs ? PyList_New(n) : NULL;
    for (Py_ssize_t i = 0; keys != NULL && i < n; i++) {
        PyObject *key = PyTuple_GET_ITEM(PyList_GET_ITEM(pairs, i), 0);
        Py_INCREF(key);
        PyList_SET_ITEM(keys, i, key);
    }
    char *visible = keys ? PyMem_Malloc((size_t)n + 1) : NULL;
    if (keys != NULL && visible == NULL) {
        PyErr_NoMemory();
    }
    Py_ssize_t hidden = visible ? env_visible(PyEval_GetFrame(), keys, NULL, visible) : -1;
    PyObject *out = NULL;
    if (hidden == 0) {
        out = pairs;
        pairs = NULL;
    } else if (hidden > 0 && (out = PyList_New(0)) != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {   /* pairs is ours: nothing else changes its length */
            if (visible[i] && PyList_Append(out, PyList_GET_ITEM(pairs, i)) < 0) {
                Py_CLEAR(out);
                break;
            }
        }
    }
    PyMem_Free(visible);
    Py_XDECREF(keys);
    Py_XDECREF(pairs);
    return out;
}

/* part 0: keys, 1: values, 2: (key, value) tuples, as the view shows them: a new list */
static PyObject *
env_list(envview_t *v, int part)
{
    PyObject *pairs = env_pairs(v);
    if (pairs == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        PyObject *k = part != 1 ? env_shown(v, PyTuple_GET_ITEM(pair, 0)) : NULL;
        PyObject *val = part != 0 ? env_shown(v, PyTuple_GET_ITEM(pair, 1)) : NULL;
        PyObject *item = part == 0 ? k : part == 1 ? val : (k && val) ? PyTuple_Pack(2, k, val) : NULL;
        if (part == 2) {
            Py_XDECREF(k);
            Py_XDECREF(val);
        }
        if (item == NULL) {
            Py_DECREF(pairs);
            return NULL;
        }
        PyList_SetItem(pairs, i, item);
    }
    return pairs;
}

static PyObject *
env_iter_of(PyObject *list)
{
    PyObject *it = list ? PyObject_GetIter(list) : NULL;
    Py_XDECREF(list);
    return it;
}

static PyObject *
envview_iter(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("iter", nargs, 0, 0)) {
        return NULL;
    }
    return env_iter_of(env_list(v, 0));
}

static PyObject *
envview_values_iter(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("values_iter", nargs, 0, 0)) {
        return NULL;
    }
    return env_iter_of(env_list(v, 1));
}

static PyObject *
envview_items_iter(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("items_iter", nargs, 0, 0)) {
        return NULL;
    }
    return env_iter_of(env_list(v, 2));
}

static PyObject *
envview_len(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("len", nargs, 0, 0)) {
        return NULL;
    }
    PyObject *pairs = env_pairs(v);
    PyObject *n = pairs ? PyLong_FromSsize_t(PyList_GET_SIZE(pairs)) : NULL;
    Py_XDECREF(pairs);
    return n;
}

static PyObject *
envview_copy(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("copy", nargs, 0, 0)) {
        return NULL;
    }
    PyObject *items = env_list(v, 2);
    PyObject *out = items ? PyDict_New() : NULL;
    if (out != NULL && PyDict_MergeFromSeq2(out, items, 1) < 0) {
        Py_CLEAR(out);
    }
    Py_XDECREF(items);
    return out;
}

static PyObject *
envview_repr(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("repr", nargs, 0, 0)) {
        return NULL;
    }
    PyObject *copy = envview_copy(v, args, nargs);
    PyObject *inner = copy ? PyObject_Repr(copy) : NULL;
    PyObject *out = inner ? PyUnicode_FromFormat("environ(%U)", inner) : NULL;
    Py_XDECREF(inner);
    Py_XDECREF(copy);
    return out;
}

/* _data: the raw store as a new dict, for a caller that may read the whole environment. */
static PyObject *
envview_data(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("_data", nargs, 0, 0)) {
        return NULL;
    }
    if (ready && env_decide(PyEval_GetFrame(), CAP_ENV_RO, str_star, "os.environ._data (the whole environment)") < 0) {
        return NULL;
    }
    return PyDict_Copy(v->store);
}

static PyObject *
envview_setitem(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("__setitem__", nargs, 2, 2)) {
        return NULL;
    }
    PyObject *key = env_key(v, args[1]), *value = key ? env_key(v, args[2]) : NULL;
    PyObject *done = NULL;
    if (value != NULL && (!ready || env_decide(PyEval_GetFrame(), CAP_ENV, key, "os.environ[%R] = ...") == 0)) {
        vouch(ready ? "os.putenv" : NULL);   /* its own event: the act decided just above, not twice */
        done = PyObject_CallFunctionObjArgs(v->putenv, key, value, NULL);
        vouch(NULL);
        if (done != NULL && PyDict_SetItem(v->store, key, value) < 0) {
            Py_CLEAR(done);
        }
    }
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XSETREF(done, done ? (Py_INCREF(Py_None), Py_None) : NULL);
    return done;
}

static PyObject *
envview_delitem(envview_t *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (!env_args("__delitem__", nargs, 1, 1)) {
        return NULL;
    }
    PyObject *key = args[1];
    PyObject *raw = env_key(v, key), *done = NULL;
    if (raw != NULL && (!ready || env_decide(PyEval_GetFrame(), CAP_ENV, raw, "del os.environ[%R]") == 0)) {
        vouch(ready ? "os.unsetenv" : NULL);
        done = PyObject_CallOneArg(v->unsetenv, raw);
        vouch(NULL);
        int had = done ? PyDict_Contains(v->store, raw) : -1;
        if (had == 1 && PyDict_DelItem(v->store, raw) < 0) {
            had = -1;
        }
        if (had <= 0) {
            Py_CLEAR(done);
            if (had == 0) {
                PyErr_SetObject(PyExc_KeyError, key);
            }
        }
    }
    Py_XDECREF(raw);
    Py_XSETREF(done, done ? (Py_INCREF(Py_None), Py_None) : NULL);
    return done;
}

static PyMethodDef envview_methods[] = {
    {"getitem", (PyCFunction)(void (*)(void))envview_getitem, METH_FASTCALL, "os.environ[key]: KeyError when unset or hidden"},
    {"get", (PyCFunction)(void (*)(void))envview_get, METH_FASTCALL | METH_KEYWORDS, "get(key, default=None)"},
    {"contains", (PyCFunction)(void (*)(void))envview_contains, METH_FASTCALL, "key in os.environ"},
    {"iter", (PyCFunction)(void (*)(void))envview_iter, METH_FASTCALL, "iter(os.environ): the names the caller may read"},
    {"values_iter", (PyCFunction)(void (*)(void))envview_values_iter, METH_FASTCALL, "iter(os.environ.values())"},
    {"items_iter", (PyCFunction)(void (*)(void))envview_items_iter, METH_FASTCALL, "iter(os.environ.items())"},
    {"len", (PyCFunction)(void (*)(void))envview_len, METH_FASTCALL, "len(os.environ): the names the caller may read"},
    {"copy", (PyCFunction)(void (*)(void))envview_copy, METH_FASTCALL, "os.environ.copy()"},
    {"repr", (PyCFunction)(void (*)(void))envview_repr, METH_FASTCALL, "repr(os.environ)"},
    {"data", (PyCFunction)(void (*)(void))envview_data, METH_FASTCALL, "os.environ._data: needs the whole environment"},
    {"setitem", (PyCFunction)(void (*)(void))envview_setitem, METH_FASTCALL, "os.environ[key] = value: needs env"},
    {"delitem", (PyCFunction)(void (*)(void))envview_delitem, METH_FASTCALL, "del os.environ[key]: needs env"},
    {NULL, NULL, 0, NULL},
};

/* No tp_new (made by _core.environment only), no tp_traverse and no attributes (the store is
 * reachable through nothing), no __reduce__. */
static PyTypeObject EnvView_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "capimport._core.EnvView",
    .tp_basicsize = sizeof(envview_t),
    .tp_dealloc = (destructor)envview_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The environment, in C memory: every read and write decided by capimport's native core.",
    .tp_methods = envview_methods,
};

/* The view's methods as instancemethods: stored on a class, each binds to the instance as a Python
 * function would (so type(os.environ).get(os.environ, k) works as it does without capimport),
 * and calling one runs no Python frame. */
static PyObject *
env_methods(envview_t *v)
{
    PyObject *out = PyDict_New();
    for (PyMethodDef *m = envview_methods; out != NULL && m->ml_name != NULL; m++) {
        PyObject *bound = PyCFunction_New(m, (PyObject *)v);
        PyObject *method = bound ? PyInstanceMethod_New(bound) : NULL;
        if (method == NULL || PyDict_SetItemString(out, m->ml_name, method) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(method);
        Py_XDECREF(bound);
    }
    return out;
}

/* environment(data, putenv, unsetenv) -> (os.environ's methods, os.environb's): *data*
 * (posix.environ) moved into a store in C memory, *data* left empty, and a dict of methods
 * (name -> instancemethod) for each of the two views. Making views grants nothing: each decides
 * on whoever calls it. */
static PyObject *
core_environment(PyObject *module, PyObject *args)
{
    PyObject *data, *putenv_fn, *unsetenv_fn;
    if (!PyArg_ParseTuple(args, "O!OO:environment", &PyDict_Type, &data, &putenv_fn, &unsetenv_fn)) {
        return NULL;
    }
    if (!PyCFunction_Check(putenv_fn) || !PyCFunction_Check(unsetenv_fn)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.environment: putenv and unsetenv must be posix's");
        return NULL;
    }
    PyObject *store = PyDict_New();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (store != NULL && PyDict_Next(data, &pos, &key, &value)) {
        if (!PyBytes_Check(key) || !PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "capimport._core.environment: the environment holds bytes");
            Py_CLEAR(store);
            break;
        }
        PyObject *k = PyBytes_FromStringAndSize(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
        PyObject *val = k ? PyBytes_FromStringAndSize(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value)) : NULL;
        if (val == NULL || PyDict_SetItem(store, k, val) < 0) {
            Py_CLEAR(store);
        }
        Py_XDECREF(k);
        Py_XDECREF(val);
    }
    if (store == NULL) {
        return NULL;
    }
    PyObject *out = PyTuple_New(2);
    for (int i = 0; out != NULL && i < 2; i++) {
        envview_t *v = PyObject_New(envview_t, &EnvView_Type);
        if (v == NULL) {
            Py_CLEAR(out);
            break;
        }
        Py_INCREF(store);
        Py_INCREF(putenv_fn);
        Py_INCREF(unsetenv_fn);
        v->store = store;
        v->putenv = putenv_fn;
        v->unsetenv = unsetenv_fn;
        v->text = i == 0;
        PyObject *methods = env_methods(v);
        Py_DECREF(v);
        if (methods == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, methods);
    }
    Py_DECREF(store);
    if (out != NULL) {
        PyDict_Clear(data);
    }
    return out;
}
