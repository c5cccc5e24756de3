/* capimport._core, inherited chains: on whose behalf deferred code acts.
 *
 * Part of _core.c (included before the walk, which ends with these chains). A callable that a
 * distribution schedules (a thread, an atexit or signal handler, a finalizer, an executor task,
 * an asyncio callback, a monkeypatched builtin) later runs from a stack that says nothing about
 * who scheduled it. capimport wraps it, at registration, with the registrant's chain; while it
 * runs, that chain stands in for the frames of whoever runs it.
 *
 * The Python version kept those chains in a dictionary and ended the walk at the frames of one
 * Python file: anyone could write the dictionary, or build a wrapper with an empty chain around
 * a builtin and run it as the application. Here:
 *
 *   - a chain is a Chain token, minted only by capture(), from the caller's own stack as the core
 *     walks it (no frame or chain argument): a distribution can only mint tokens that include
 *     itself;
 *   - accountable(func, token) is a C callable; calling it pushes (token, the caller's frame) on a
 *     per-thread stack in C memory: the walk stops at that frame (the runner is not part of the
 *     act) and appends the token's links;
 *   - push(token)/pop(token) append a token at the bottom of the stack for a with-block
 *     (capimport.enforcer.inherit): appending only adds parties that must hold a capability.
 *
 * Nothing here can be read or written from Python except through these functions.
 */

typedef struct {
    int origin;
    PyObject *filename;   /* str */
    int lineno;
} saved_link_t;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    saved_link_t *links;
} token_t;

typedef struct entry {
    token_t *token;          /* strong */
    PyObject *boundary;      /* strong: the frame that ran the callable, or NULL */
    int replaces;            /* 1: an accountable call (ends the walk), 0: pushed (appended) */
    struct entry *next;
} entry_t;

static _Thread_local entry_t *inherit_top = NULL;
static PyTypeObject Chain_Type;

/* The frame at which the walk stops: the boundary of the first replacing entry from the top. */
static PyObject *
inherit_stop(void)
{
    for (entry_t *e = inherit_top; e != NULL; e = e->next) {
        if (e->replaces) {
            return e->boundary;
        }
    }
    return NULL;
}

/* The inherited links at the bottom of the walk: every entry from the top down to the first
 * replacing one (its token was captured with everything that was inherited before it). */
static int
append_inherited(chain_t *ch, int *last)
{
    for (entry_t *e = inherit_top; e != NULL; e = e->next) {
        token_t *t = e->token;
        for (Py_ssize_t i = 0; i < t->n; i++) {
            if (t->links[i].origin != *last) {
                if (chain_append(ch, t->links[i].origin, t->links[i].filename, NULL, t->links[i].lineno) < 0) {
                    return -1;
                }
                *last = t->links[i].origin;
            }
        }
        if (e->replaces) {
            break;
        }
    }
    return 0;
}

static int
inherit_push(token_t *token, PyObject *boundary, int replaces)
{
    entry_t *e = PyMem_Malloc(sizeof(entry_t));
    if (e == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(token);
    Py_XINCREF(boundary);
    *e = (entry_t){token, boundary, replaces, inherit_top};
    inherit_top = e;
    return 0;
}

/* Pop entries down to and including *target* (entries pushed above it and never popped go too). */
static void
inherit_pop_to(entry_t *target)
{
    while (inherit_top != NULL) {
        entry_t *e = inherit_top;
        inherit_top = e->next;
        Py_DECREF(e->token);
        Py_XDECREF(e->boundary);
        PyMem_Free(e);
        if (e == target) {
            break;
        }
    }
}

/* ------------------------------------------------------------------ Chain tokens */

static void
token_dealloc(token_t *t)
{
    for (Py_ssize_t i = 0; i < t->n; i++) {
        Py_DECREF(t->links[i].filename);
    }
    PyMem_Free(t->links);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static Py_ssize_t
token_len(token_t *t)
{
    return t->n;
}

/* links() -> ((origin, filename, line), ...): for messages and for telling an empty chain. */
static PyObject *
token_links(token_t *t, PyObject *unused)
{
    PyObject *out = PyTuple_New(t->n);
    for (Py_ssize_t i = 0; out != NULL && i < t->n; i++) {
        PyObject *item = Py_BuildValue("(OOi)", PyTuple_GET_ITEM(origin_names, t->links[i].origin),
                                       t->links[i].filename, t->links[i].lineno);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, item);
    }
    return out;
}

static PyObject *
token_repr(token_t *t)
{
    return PyUnicode_FromFormat("<capimport chain of %zd link(s)>", t->n);
}

static PySequenceMethods token_as_sequence = {.sq_length = (lenfunc)token_len};

static PyMethodDef token_methods[] = {
    {"links", (PyCFunction)token_links, METH_NOARGS, "links() -> ((origin, filename, line), ...)"},
    {NULL, NULL, 0, NULL},
};

/* No tp_new: a token is minted by capture() only. */
static PyTypeObject Chain_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "capimport._core.Chain",
    .tp_basicsize = sizeof(token_t),
    .tp_dealloc = (destructor)token_dealloc,
    .tp_repr = (reprfunc)token_repr,
    .tp_as_sequence = &token_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The acting chain at a moment, as the core walked it (opaque).",
    .tp_methods = token_methods,
};

/* A token of *ch*'s links, frame-free (a live frame's line is read now). */
static PyObject *
token_from_chain(chain_t *ch)
{
    token_t *t = PyObject_New(token_t, &Chain_Type);
    if (t == NULL) {
        return NULL;
    }
    t->n = 0;
    t->links = ch->n ? PyMem_Malloc(sizeof(saved_link_t) * (size_t)ch->n) : NULL;
    if (ch->n && t->links == NULL) {
        Py_DECREF(t);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < ch->n; i++) {
        link_t *l = &ch->items[i];
        int line = l->frame ? PyFrame_GetLineNumber((PyFrameObject *)l->frame) : l->lineno;
        Py_INCREF(l->filename);
        t->links[t->n++] = (saved_link_t){l->origin, l->filename, line < 0 ? 0 : line};
    }
    return (PyObject *)t;
}

/* ------------------------------------------------------------------ accountable callables */

typedef struct {
    PyObject_HEAD
    PyObject *func;
    token_t *token;
} accountable_t;

static PyTypeObject Accountable_Type;

/* *func* to run with *token* standing in for the stack that runs it. */
static PyObject *
accountable_new(PyObject *func, token_t *token)
{
    accountable_t *a = PyObject_GC_New(accountable_t, &Accountable_Type);
    if (a == NULL) {
        return NULL;
    }
    Py_INCREF(func);
    Py_INCREF(token);
    a->func = func;
    a->token = token;
    PyObject_GC_Track(a);
    return (PyObject *)a;
}

/* 1 when the chain a walk from *frame* would find holds a party: a distribution, or code nobody
 * owns, in a frame down to where the walk stops now or in a chain it would append (a thread a
 * distribution started runs a wrapper it read from somewhere). The standard library, capimport
 * and the application are not parties here: their frames are the machinery that runs deferred
 * code (atexit, a worker thread, the event loop) or its rightful caller. -1 on error. */
static int
frames_hold_a_party(PyFrameObject *start)
{
    PyObject *stop_at = inherit_stop();
    PyFrameObject *frame = start;
    Py_XINCREF(frame);
    int found = 0;
    while (frame != NULL && (PyObject *)frame != stop_at && !found) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int origin = code_origin(code);
        Py_DECREF(code);
        if (origin < 0) {
            found = -1;
            break;
        }
        found = !TRANSPARENT(origin) && origin != O_APP;
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    for (entry_t *e = inherit_top; found == 0 && e != NULL; e = e->next) {
        for (Py_ssize_t i = 0; i < e->token->n && !found; i++) {
            int origin = e->token->links[i].origin;
            found = !TRANSPARENT(origin) && origin != O_APP;
        }
        if (e->replaces) {
            break;
        }
    }
    return found;
}

/* Run the callable with its token. When only machinery runs it, the token stands in for the
 * stack (the walk stops at the runner's frame). When a party calls it (a distribution that read
 * someone's wrapper out of weakref.finalize, or calls a module attribute another planted), the
 * token is only added: the caller stays accountable too. */
static PyObject *
accountable_call(accountable_t *a, PyObject *args, PyObject *kwargs)
{
    PyFrameObject *runner = PyEval_GetFrame();
    int party = frames_hold_a_party(runner);
    PyObject *func = a->func;
    if (party < 0 || func == NULL) {
        if (func == NULL && !PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "capimport: an accountable callable was cleared");
        }
        return NULL;
    }
    if (inherit_push(a->token, party ? NULL : (PyObject *)runner, !party) < 0) {
        return NULL;
    }
    entry_t *mine = inherit_top;
    Py_INCREF(func);   /* the call may drop the wrapper's last reference (a handler replacing itself) */
    PyObject *out = PyObject_Call(func, args, kwargs);
    Py_DECREF(func);
    inherit_pop_to(mine);
    return out;
}

static int
accountable_traverse(accountable_t *a, visitproc visit, void *arg)
{
    Py_VISIT(a->func);
    return 0;
}

static int
accountable_clear(accountable_t *a)
{
    Py_CLEAR(a->func);
    return 0;
}

static void
accountable_dealloc(accountable_t *a)
{
    PyObject_GC_UnTrack(a);
    Py_CLEAR(a->func);
    Py_CLEAR(a->token);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *
accountable_repr(accountable_t *a)
{
    return PyUnicode_FromFormat("<capimport accountable %R>", a->func ? a->func : Py_None);
}

/* Compares and hashes as the callable it wraps (atexit.unregister, signal.getsignal). */
static PyObject *
accountable_richcompare(accountable_t *a, PyObject *other, int op)
{
    if ((op != Py_EQ && op != Py_NE) || a->func == NULL) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *theirs = PyObject_TypeCheck(other, &Accountable_Type) ? ((accountable_t *)other)->func : other;
    if (theirs == NULL) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    return PyObject_RichCompare(a->func, theirs, op);
}

static Py_hash_t
accountable_hash(accountable_t *a)
{
    return a->func ? PyObject_Hash(a->func) : 0;
}

static PyObject *
accountable_func(accountable_t *a, void *unused)
{
    PyObject *f = a->func ? a->func : Py_None;
    Py_INCREF(f);
    return f;
}

static PyGetSetDef accountable_getset[] = {
    {"func", (getter)accountable_func, NULL, "the wrapped callable", NULL},
    {NULL},
};

/* No tp_new (accountable() only), no tp_descr_get (stored on a class it stays a plain callable). */
static PyTypeObject Accountable_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "capimport._core.Accountable",
    .tp_basicsize = sizeof(accountable_t),
    .tp_dealloc = (destructor)accountable_dealloc,
    .tp_repr = (reprfunc)accountable_repr,
    .tp_hash = (hashfunc)accountable_hash,
    .tp_call = (ternaryfunc)accountable_call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A callable that runs with the chain of whoever scheduled it.",
    .tp_traverse = (traverseproc)accountable_traverse,
    .tp_clear = (inquiry)accountable_clear,
    .tp_richcompare = (richcmpfunc)accountable_richcompare,
    .tp_getset = accountable_getset,
};
