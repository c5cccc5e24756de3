/* capimport._speedups: the stack walk's inner loop, and start-up's RECORD reading, in C.
 *
 * Reading frame.f_code from Python raises a nested `object.__getattr__` audit
 * event per frame (about 0.4 us each under a Python hook); PyFrame_GetCode and
 * PyFrame_GetBack raise none. This module only *lists* frames: the attribution
 * rule itself stays in Python (capimport/attribution.py), which falls back to
 * an equivalent pure-Python loop when this extension is not built.
 *
 * frames(frame, cache, skip, each) -> list of (origin, filename, frame)
 *
 *   cache: dict co_filename -> origin (str); a miss is reported as origin None
 *          so that Python can classify the file and fill the cache.
 *   skip:  origins that are transparent and need no look (the stdlib, dynamic
 *          code): not listed, and they do not break a run.
 *   each:  origins whose every frame must be seen (privileged stdlib frames,
 *          capimport itself, the runner's bottom frames): always listed.
 *   Any other origin is listed once per run of consecutive frames (the
 *   innermost frame of the run), which is all the walk keeps of it.
 *
 * record_paths(data, prefix), folders(files, inside, sep)
 *
 *   Every distribution's RECORD is read at each start, with the folders its
 *   files are in (capimport/distributions.py, attribution.OriginMap.ownership):
 *   thousands of lines on a large environment, which cost the interpreter
 *   milliseconds. The Python twins are the reference and the fallback.
 *
 * seal_sqlite_connection(type, init, set_authorizer)
 *
 *   Sets __init__ and set_authorizer on one sqlite3.Connection type, which
 *   is immutable from Python (capimport/guards/sqlite.py: every connection
 *   gets capimport's authorizer, and keeps it). Going through type_setattro
 *   updates the tp_init slot, so sqlite3.connect() and Connection(...) both
 *   run the new __init__. It refuses any other type, a static type (3.9),
 *   and a type it has sealed before, so it is no general way to rewrite
 *   immutable types.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

static int
same_origin(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    if (a == NULL || b == NULL || !PyUnicode_Check(a) || !PyUnicode_Check(b)) {
        return 0;
    }
    return PyUnicode_Compare(a, b) == 0;
}

static int
append(PyObject *out, PyObject *origin, PyObject *filename, PyObject *frame)
{
    PyObject *item = PyTuple_Pack(3, origin ? origin : Py_None, filename, frame);
    if (item == NULL) {
        return -1;
    }
    int rc = PyList_Append(out, item);
    Py_DECREF(item);
    return rc;
}

static PyObject *
frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "frames(frame, cache, skip, each) takes 4 arguments");
        return NULL;
    }
    PyObject *start = args[0], *cache = args[1], *skip = args[2], *each = args[3];
    if (!PyDict_Check(cache) || !PyAnySet_Check(skip) || !PyAnySet_Check(each)) {
        PyErr_SetString(PyExc_TypeError, "frames: cache must be a dict, skip and each sets");
        return NULL;
    }
    if (start != Py_None && !PyFrame_Check(start)) {
        PyErr_SetString(PyExc_TypeError, "frames: expected a frame or None");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    PyObject *last = NULL;                 /* borrowed: the origin of the current run */
    PyFrameObject *frame = start == Py_None ? NULL : (PyFrameObject *)start;
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);          /* new reference */
        PyObject *filename = code->co_filename;
        PyObject *origin = PyDict_GetItemWithError(cache, filename);  /* borrowed */
        int failed = 0;
        if (origin == NULL) {
            if (PyErr_Occurred()) {
                failed = 1;
            } else {
                failed = append(out, NULL, filename, (PyObject *)frame) < 0;
                last = NULL;
            }
        } else {
            int in_skip = PySet_Contains(skip, origin);
            int in_each = in_skip ? 0 : PySet_Contains(each, origin);
            if (in_skip < 0 || in_each < 0) {
                failed = 1;
            } else if (in_each) {
                /* A new run starts after it: Python's walk may reset its own run here. */
                failed = append(out, origin, filename, (PyObject *)frame) < 0;
                last = NULL;
            } else if (!in_skip && !same_origin(origin, last)) {
                failed = append(out, origin, filename, (PyObject *)frame) < 0;
                last = origin;
            }
        }
        Py_DECREF(code);
        if (failed) {
            Py_DECREF(frame);
            Py_DECREF(out);
            return NULL;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);          /* new reference or NULL */
        Py_DECREF(frame);
        frame = back;
    }
    return out;
}

#define MAX_SEALED 16
static PyObject *sealed[MAX_SEALED];
static int n_sealed = 0;

static PyObject *
seal_sqlite_connection(PyObject *module, PyObject *args)
{
    PyObject *type, *init, *set_authorizer;
    if (!PyArg_ParseTuple(args, "O!OO:seal_sqlite_connection", &PyType_Type, &type, &init, &set_authorizer)) {
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)type;
    if (strcmp(tp->tp_name, "sqlite3.Connection") != 0 || !(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_SetString(PyExc_TypeError, "seal_sqlite_connection: not a heap sqlite3.Connection type");
        return NULL;
    }
    for (int i = 0; i < n_sealed; i++) {
        if (sealed[i] == type) {
            PyErr_SetString(PyExc_RuntimeError, "seal_sqlite_connection: this type is sealed already");
            return NULL;
        }
    }
    if (n_sealed == MAX_SEALED) {
        PyErr_SetString(PyExc_RuntimeError, "seal_sqlite_connection: too many sqlite3 modules");
        return NULL;
    }
    Py_INCREF(type);
    sealed[n_sealed++] = type;
#ifdef Py_TPFLAGS_IMMUTABLETYPE
    unsigned long immutable = tp->tp_flags & Py_TPFLAGS_IMMUTABLETYPE;
    tp->tp_flags &= ~Py_TPFLAGS_IMMUTABLETYPE;
#endif
    int rc = PyObject_SetAttrString(type, "__init__", init);
    if (rc == 0) {
        rc = PyObject_SetAttrString(type, "set_authorizer", set_authorizer);
    }
#ifdef Py_TPFLAGS_IMMUTABLETYPE
    tp->tp_flags |= immutable;
#endif
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* record_paths(data, prefix) -> (paths, fix) or None
 *
 * RECORD's first column, each joined to *prefix* (the distribution's folder and a separator):
 * *data* is the file's bytes, split at '\n' with one trailing '\r' dropped, each line cut at its
 * first comma (distributions.record_paths is the same rule in Python). *fix* lists the
 * indices of paths with "..", "./" or "//" in them, for Python to normalise. None when a line
 * starts with a quote (csv quoting) or a path is not UTF-8: Python reads that RECORD itself. */
static PyObject *
record_paths(PyObject *module, PyObject *args)
{
    Py_buffer data, prefix;
    if (!PyArg_ParseTuple(args, "y*y*:record_paths", &data, &prefix)) {
        return NULL;
    }
    PyObject *paths = PyList_New(0), *fix = PyList_New(0), *out = NULL;
    char *buf = NULL;
    size_t cap = 0;
    const char *p = data.buf, *end = p + data.len;
    if (paths == NULL || fix == NULL) {
        goto done;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        if (line_end > p && line_end[-1] == '\r') {
            line_end--;
        }
        if (line_end > p && *p == '"') {
            Py_CLEAR(paths);   /* csv quoting: not ours to read */
            out = Py_None;
            Py_INCREF(out);
            goto done;
        }
        const char *comma = memchr(p, ',', (size_t)(line_end - p));
        const char *path_end = comma ? comma : line_end;
        size_t n = (size_t)(path_end - p);
        if (n > 0) {
            size_t need = (size_t)prefix.len + n;
            if (need > cap) {
                char *grown = PyMem_Realloc(buf, need);
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                buf = grown;
                cap = need;
            }
            memcpy(buf, prefix.buf, (size_t)prefix.len);
            memcpy(buf + prefix.len, p, n);
            PyObject *path = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)need, "strict");
            if (path == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    goto done;
                }
                PyErr_Clear();
                out = Py_None;
                Py_INCREF(out);
                goto done;
            }
            int odd = 0;
            for (size_t i = 0; i + 1 < n && !odd; i++) {
                odd = (p[i] == '.' && (p[i + 1] == '.' || p[i + 1] == '/')) || (p[i] == '/' && p[i + 1] == '/');
            }
            int rc = PyList_Append(paths, path);
            Py_DECREF(path);
            if (rc < 0) {
                goto done;
            }
            if (odd) {
                PyObject *index = PyLong_FromSsize_t(PyList_GET_SIZE(paths) - 1);
                rc = index ? PyList_Append(fix, index) : -1;
                Py_XDECREF(index);
                if (rc < 0) {
                    goto done;
                }
            }
        }
        p = next;
    }
    out = PyTuple_Pack(2, paths, fix);
done:
    PyMem_Free(buf);
    Py_XDECREF(paths);
    Py_XDECREF(fix);
    PyBuffer_Release(&data);
    PyBuffer_Release(&prefix);
    return out;
}

/* folders(files, inside, sep) -> set: every folder of *files* (absolute, normalised str paths)
 * that starts with *inside* (the distribution's folder and a separator), climbing from each
 * file's folder until one seen before (OriginMap.ownership's loop, without its interpreter cost). */
static PyObject *
folders(PyObject *module, PyObject *args)
{
    PyObject *files, *inside, *sep;
    if (!PyArg_ParseTuple(args, "OUU:folders", &files, &inside, &sep)) {
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(sep) != 1) {
        PyErr_SetString(PyExc_ValueError, "folders: sep must be one character");
        return NULL;
    }
    Py_UCS4 sepc = PyUnicode_READ_CHAR(sep, 0);
    PyObject *seq = PySequence_Fast(files, "folders: files must be a sequence");
    PyObject *out = seq ? PySet_New(NULL) : NULL;
    if (out == NULL) {
        Py_XDECREF(seq);
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *file = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(file)) {
            PyErr_SetString(PyExc_TypeError, "folders: paths must be str");
            goto fail;
        }
        Py_ssize_t cut = PyUnicode_FindChar(file, sepc, 0, PyUnicode_GET_LENGTH(file), -1);
        while (cut > 0) {
            PyObject *parent = PyUnicode_Substring(file, 0, cut);
            if (parent == NULL) {
                goto fail;
            }
            int seen = PySet_Contains(out, parent);
            int within = seen == 0 ? (int)PyUnicode_Tailmatch(parent, inside, 0, PY_SSIZE_T_MAX, -1) : 0;
            if (seen < 0 || within < 0 || (within == 1 && PySet_Add(out, parent) < 0)) {
                Py_DECREF(parent);
                goto fail;
            }
            Py_DECREF(parent);
            if (seen == 1 || within == 0) {
                break;
            }
            cut = PyUnicode_FindChar(file, sepc, 0, cut, -1);
        }
        if (cut == -2) {
            goto fail;
        }
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"record_paths", record_paths, METH_VARARGS,
     "record_paths(data, prefix) -> (paths, indices to normalise), or None for Python to read"},
    {"folders", folders, METH_VARARGS, "folders(files, inside, sep) -> set of the folders under inside"},
    {"seal_sqlite_connection", seal_sqlite_connection, METH_VARARGS,
     "seal_sqlite_connection(type, init, set_authorizer): set both on an immutable sqlite3.Connection, once"},
    {"frames", (PyCFunction)(void (*)(void))frames, METH_FASTCALL,
     "frames(frame, cache, skip, each) -> [(origin or None, co_filename, frame), ...]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "capimport._speedups",
    "The stack walk's inner loop in C (no nested audit events).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
