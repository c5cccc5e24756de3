/* capimport._core: the import system's bytecode writes, in C.
 *
 * Included by _core.c after _core_tamper.h (frame_local). The Python twin is capimport/bytecode.py.
 *
 * The import system caches a module's bytecode (SourceLoader.get_code, _cache_bytecode, set_data,
 * _write_atomic), and the next run executes that cache as the module's own code without compiling
 * anything. So a write into someone's __pycache__ decides what runs as them later. The import
 * system's privilege covers such a write only when it is the cache capimport itself would have
 * written: the file cache_from_source names for the source get_code read (with the tag,
 * optimization level and prefix the interpreter started with), holding the code that compiling
 * that source gives. A SourceFileLoader subclass whose source_to_code or get_data lies, a rebound
 * _code_to_timestamp_pyc or compile, or a loader naming one file and caching under another's name
 * all fail one of the two, and the write is charged as a planted callable's act (PRIVILEGE_PLANTED):
 * the import goes on without a cache.
 *
 * What is compared is the file as written, read back from disk when it is renamed into place (the
 * moment it becomes the cache), so nothing that changes the bytes between the check and the write
 * matters. The source is compiled here (the compile event of that one call is the core's own and
 * is not judged: b_compiling), once per bytecode write; reading a cache costs nothing.
 */

static PyObject *b_get_code = NULL;    /* SourceLoader.get_code's code object, at install */
static PyObject *b_compile = NULL;     /* builtins.compile, at install */
/* The last compile this thread ran through cache_compile for the import system: the source bytes
 * (an immutable copy), the file name and the code. What compiling those bytes under that name
 * gives, made by the real compile: a cache holding it needs no second compile. */
static _Thread_local PyObject *b_last_source = NULL, *b_last_name = NULL, *b_last_code = NULL;
static PyObject *b_cache_tag = NULL;   /* sys.implementation.cache_tag at install, or NULL: no caches */
static long b_optimize = 0;            /* sys.flags.optimize */

/* The source get_code read, when *frame* (set_data or _write_atomic) runs inside the standard
 * SourceLoader.get_code (its code object, held since install) with only the import system's
 * frames between: get_code's source_path (new reference). NULL when there is none (an exception
 * only on error). */
static PyObject *
bytecode_source(PyFrameObject *frame)
{
    PyFrameObject *f = frame;
    Py_INCREF(f);
    PyObject *source = NULL;
    while (f != NULL && b_get_code != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        int found = (PyObject *)code == b_get_code;
        int origin = found ? O_IMPORT : origin_of(code->co_filename);
        Py_DECREF(code);
        if (found) {
            source = frame_local(f, "source_path");
            break;
        }
        if (origin != O_IMPORT) {   /* anyone else's frame between: not the import system's write */
            break;
        }
        Py_SETREF(f, PyFrame_GetBack(f));
    }
    Py_XDECREF(f);
    if (source != NULL && !PyUnicode_CheckExact(source)) {
        Py_CLEAR(source);
    }
    return source;
}

/* "/".join(part.rstrip("/") for part in parts if part): importlib's _path_join on POSIX. */
static PyObject *
join_parts(PyObject *a, PyObject *b, PyObject *c)
{
    PyObject *parts[] = {a, b, c};
    PyObject *out = PyUnicode_FromString("");
    for (int i = 0; i < 3 && out != NULL; i++) {
        PyObject *part = parts[i];
        Py_ssize_t end = part ? PyUnicode_GET_LENGTH(part) : 0;
        if (end == 0) {
            continue;
        }
        while (end > 0 && PyUnicode_READ_CHAR(part, end - 1) == '/') {
            end--;
        }
        PyObject *kept = PyUnicode_Substring(part, 0, end);
        PyObject *next = kept == NULL ? NULL
                         : PyUnicode_GET_LENGTH(out) ? PyUnicode_FromFormat("%U/%U", out, kept)
                         : (Py_INCREF(kept), kept);
        Py_XDECREF(kept);
        Py_SETREF(out, next);
    }
    return out;
}

/* Where importlib.util.cache_from_source(source) puts the cache, as the interpreter started:
 * *folder* (resolved as a target is) and *name* (new references). 1, 0 (no caches), -1. */
static int
cache_location(PyObject *source, PyObject **folder, PyObject **name)
{
    *folder = *name = NULL;
    if (b_cache_tag == NULL) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(source);
    Py_ssize_t slash = PyUnicode_FindChar(source, '/', 0, n, -1);
    if (slash == -2) {
        return -1;
    }
    PyObject *head = PyUnicode_Substring(source, 0, slash < 0 ? 0 : slash);
    PyObject *tail = PyUnicode_Substring(source, slash + 1, n);
    if (head == NULL || tail == NULL) {
        Py_XDECREF(head);
        Py_XDECREF(tail);
        return -1;
    }
    /* base, sep, rest = tail.rpartition("."); (base or rest) + sep + tag [+ ".opt-N"] + ".pyc" */
    Py_ssize_t dot = PyUnicode_FindChar(tail, '.', 0, PyUnicode_GET_LENGTH(tail), -1);
    PyObject *stem = NULL;
    if (dot > 0) {
        stem = PyUnicode_Substring(tail, 0, dot + 1);
    } else if (dot == 0) {   /* ".py": rest + "." */
        PyObject *rest = PyUnicode_Substring(tail, 1, PY_SSIZE_T_MAX);
        stem = rest ? PyUnicode_FromFormat("%U.", rest) : NULL;
        Py_XDECREF(rest);
    } else {
        stem = tail;
        Py_INCREF(stem);
    }
    Py_DECREF(tail);
    *name = stem == NULL ? NULL
            : b_optimize ? PyUnicode_FromFormat("%U%U.opt-%ld.pyc", stem, b_cache_tag, b_optimize)
            : PyUnicode_FromFormat("%U%U.pyc", stem, b_cache_tag);
    Py_XDECREF(stem);
    PyObject *raw = NULL;
    if (*name != NULL && pycache_prefix != NULL) {
        /* join(prefix, (head if absolute else join(getcwd(), head)).lstrip("/"), name) */
        PyObject *cwd = PyUnicode_GET_LENGTH(head) && PyUnicode_READ_CHAR(head, 0) == '/' ? NULL : cpaths__getcwd();
        PyObject *absolute = PyUnicode_GET_LENGTH(head) && PyUnicode_READ_CHAR(head, 0) == '/'
                             ? (Py_INCREF(head), head) : cwd ? join_parts(cwd, head, NULL) : NULL;
        Py_XDECREF(cwd);
        Py_ssize_t start = 0;
        while (absolute && start < PyUnicode_GET_LENGTH(absolute) && PyUnicode_READ_CHAR(absolute, start) == '/') {
            start++;
        }
        PyObject *stripped = absolute ? PyUnicode_Substring(absolute, start, PY_SSIZE_T_MAX) : NULL;
        Py_XDECREF(absolute);
        raw = stripped ? join_parts(PyTuple_GET_ITEM(pycache_prefix, 0), stripped, NULL) : NULL;
        Py_XDECREF(stripped);
    } else if (*name != NULL) {
        PyObject *cache = PyUnicode_FromString("__pycache__");
        raw = cache ? join_parts(head, cache, NULL) : NULL;
        Py_XDECREF(cache);
    }
    Py_DECREF(head);
    *folder = raw ? cpaths_resolve_path(raw) : NULL;
    Py_XDECREF(raw);
    if (*folder == NULL) {
        Py_CLEAR(*name);
        return -1;
    }
    return 1;
}

/* *target* is folder + "/" + name, followed (*tmp*) by "." and digits (_write_atomic's temporary
 * file): 1, 0. */
static int
is_cache_file(PyObject *target, PyObject *folder, PyObject *name, int tmp)
{
    PyObject *whole = PyUnicode_FromFormat("%U/%U", folder, name);
    if (whole == NULL) {
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(whole), m = PyUnicode_GET_LENGTH(target);
    int found = tmp ? m > n + 1 && starts_with(target, whole) && PyUnicode_READ_CHAR(target, n) == '.'
                    : str_equal(target, whole);
    for (Py_ssize_t i = n + 1; tmp && found && i < m; i++) {
        Py_UCS4 ch = PyUnicode_READ_CHAR(target, i);
        found = ch >= '0' && ch <= '9';
    }
    Py_DECREF(whole);
    return found;
}

/* The whole of a file as bytes (new reference), read with plain stdio (no audit event: this is
 * the core's own read), or NULL with no exception when it cannot be read. */
static PyObject *
read_whole(PyObject *path)
{
    PyObject *encoded = PyUnicode_EncodeFSDefault(path);
    if (encoded == NULL) {
        PyErr_Clear();
        return NULL;
    }
    FILE *fp = fopen(PyBytes_AS_STRING(encoded), "rb");
    Py_DECREF(encoded);
    if (fp == NULL) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, 65536);
    Py_ssize_t used = 0;
    while (out != NULL) {
        size_t got = fread(PyBytes_AS_STRING(out) + used, 1, (size_t)(PyBytes_GET_SIZE(out) - used), fp);
        used += (Py_ssize_t)got;
        if (used < PyBytes_GET_SIZE(out)) {
            break;
        }
        if (_PyBytes_Resize(&out, PyBytes_GET_SIZE(out) * 2) < 0) {
            out = NULL;
        }
    }
    int failed = ferror(fp);
    fclose(fp);
    if (out == NULL || failed || _PyBytes_Resize(&out, used) < 0) {
        Py_XDECREF(out);
        PyErr_Clear();
        return NULL;
    }
    return out;
}

/* Two code trees are the same code: equal as code objects compare (instructions, constants by
 * type and value, names, line and exception tables, flags, counts: nested code recursively), and
 * in what that comparison leaves out (file name, qualified name, which locals are cells or free),
 * down the tree. 1, 0, -1. */
static int
same_code(PyObject *a, PyObject *b)
{
    static const char *also[] = {"co_filename", "co_qualname", "co_varnames", "co_cellvars", "co_freevars",
                                 "co_nlocals", "co_stacksize", NULL};
    if (!PyCode_Check(a) || !PyCode_Check(b)) {
        return 0;
    }
    int same = PyObject_RichCompareBool(a, b, Py_EQ);
    for (int i = 0; also[i] && same > 0; i++) {
        PyObject *x = PyObject_GetAttrString(a, also[i]);
        PyObject *y = x ? PyObject_GetAttrString(b, also[i]) : NULL;
        if (x == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {   /* co_qualname before 3.11 */
            PyErr_Clear();
            continue;
        }
        same = y == NULL ? -1 : PyObject_RichCompareBool(x, y, Py_EQ);
        Py_XDECREF(x);
        Py_XDECREF(y);
    }
    PyObject *ca = same > 0 ? PyObject_GetAttrString(a, "co_consts") : NULL;
    PyObject *cb = ca ? PyObject_GetAttrString(b, "co_consts") : NULL;
    if (same > 0 && (cb == NULL || !PyTuple_Check(ca) || !PyTuple_Check(cb)
                     || PyTuple_GET_SIZE(ca) != PyTuple_GET_SIZE(cb))) {
        same = cb == NULL ? -1 : 0;
    }
    for (Py_ssize_t i = 0; same > 0 && i < PyTuple_GET_SIZE(ca); i++) {
        PyObject *x = PyTuple_GET_ITEM(ca, i), *y = PyTuple_GET_ITEM(cb, i);
        if (PyCode_Check(x) || PyCode_Check(y)) {
            same = same_code(x, y);
        }
    }
    Py_XDECREF(ca);
    Py_XDECREF(cb);
    return same;
}

/* The bytecode file *written* holds what compiling *source* gives, as the import system compiles
 * it (compile(data, path, "exec", dont_inherit=True)), behind this interpreter's magic number.
 * 1, 0 (a source that does not compile, a file that does not unmarshal: nothing to vouch for). */
static int
bytecode_matches(PyObject *source, PyObject *written)
{
    PyObject *text = read_whole(source);
    PyObject *cached = text ? read_whole(written) : NULL;
    PyObject *name = NULL, *expected = NULL, *found = NULL;
    int same = 0;
    if (cached == NULL || PyBytes_GET_SIZE(cached) <= 16
            || memchr(PyBytes_AS_STRING(text), 0, (size_t)PyBytes_GET_SIZE(text)) != NULL) {
        goto done;
    }
    const unsigned char *head = (const unsigned char *)PyBytes_AS_STRING(cached);
    unsigned long magic = (unsigned long)PyImport_GetMagicNumber();
    if ((head[0] | (head[1] << 8) | (head[2] << 16) | ((unsigned long)head[3] << 24)) != magic) {
        goto done;
    }
    /* A fresh copy of the name: the compile event naming this very object is the core's own. */
    name = PyUnicode_New(PyUnicode_GET_LENGTH(source), PyUnicode_MAX_CHAR_VALUE(source));
    if (name == NULL || PyUnicode_CopyCharacters(name, 0, source, 0, PyUnicode_GET_LENGTH(source)) < 0) {
        goto done;
    }
    if (b_last_code != NULL && str_equal(b_last_name, source) && PyBytes_GET_SIZE(b_last_source) == PyBytes_GET_SIZE(text)
            && memcmp(PyBytes_AS_STRING(b_last_source), PyBytes_AS_STRING(text), (size_t)PyBytes_GET_SIZE(text)) == 0) {
        expected = b_last_code;   /* the import system's own compile of these very bytes (cache_compile) */
        Py_INCREF(expected);
    } else {
        PyCompilerFlags flags = _PyCompilerFlags_INIT;
        flags.cf_flags = PyCF_SOURCE_IS_UTF8;   /* as builtins.compile sets them */
        b_compiling = name;
        expected = Py_CompileStringObject(PyBytes_AS_STRING(text), name, Py_file_input, &flags, -1);
        b_compiling = NULL;
    }
    found = expected ? PyMarshal_ReadObjectFromString((const char *)head + 16, PyBytes_GET_SIZE(cached) - 16) : NULL;
    same = found ? same_code(expected, found) : 0;
done:
    if (same <= 0) {
        PyErr_Clear();   /* a syntax error, malformed data, no memory: unverified, never allowed */
        same = 0;
    }
    Py_CLEAR(b_last_source);
    Py_CLEAR(b_last_name);
    Py_CLEAR(b_last_code);
    Py_XDECREF(text);
    Py_XDECREF(cached);
    Py_XDECREF(name);
    Py_XDECREF(expected);
    Py_XDECREF(found);
    return same;
}

/* The import system's privilege for write check *i* at *frame* (set_data or _write_atomic): the
 * write is part of caching the bytecode of the source get_code read, where cache_from_source puts
 * it: the folders set_data makes for it, _write_atomic's temporary file (created, or removed after
 * a failure), and the rename that puts it in place, once the file renamed holds that source's
 * compiled code. 1 covered, 0 not, -1 error. */
static int
import_writes_bytecode(PyFrameObject *frame, checks_t *c, int i)
{
    PyCodeObject *code = PyFrame_GetCode(frame);
    int writer = PyUnicode_CompareWithASCIIString(code->co_name, "set_data") == 0
                 || PyUnicode_CompareWithASCIIString(code->co_name, "_write_atomic") == 0;
    Py_DECREF(code);
    PyObject *target = writer ? get_target(c, i) : NULL;
    if (target == NULL || !PyUnicode_Check(target)) {
        return writer && target == NULL ? -1 : 0;
    }
    PyObject *source = bytecode_source(frame);
    if (source == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *folder = NULL, *name = NULL;
    int ok = ends_with_ascii(source, ".py") > 0 ? cache_location(source, &folder, &name) : 0;
    PyObject *api = c->items[i].api;
    if (ok <= 0) {
        /* no cache this interpreter would write */
    } else if (PyUnicode_CompareWithASCIIString(api, "os.mkdir") == 0) {
        /* the cache folder, or (under a prefix) a folder above it */
        PyObject *inside = PyUnicode_FromFormat("%U/", target);
        ok = inside == NULL ? -1 : (str_equal(target, folder) || starts_with(folder, inside)) && is_pycache(target) > 0;
        Py_XDECREF(inside);
    } else if (str_equal(api, str_open) || PyUnicode_CompareWithASCIIString(api, "os.remove") == 0) {
        ok = is_cache_file(target, folder, name, 1);
    } else if (PyUnicode_CompareWithASCIIString(api, "os.rename") == 0) {
        /* src: the temporary file; dst: the cache, once the temporary file is the compiled source */
        ok = is_cache_file(target, folder, name, 1);
        int dst = ok == 0 ? is_cache_file(target, folder, name, 0) : 0;
        for (int k = 0; dst > 0 && k < c->n; k++) {
            PyObject *other = k != i && str_equal(c->items[k].api, api) ? get_target(c, k) : Py_None;
            if (other == NULL) {
                ok = -1;
                break;
            }
            if (PyUnicode_Check(other) && is_cache_file(other, folder, name, 1) > 0) {
                ok = bytecode_matches(source, other);
                break;
            }
        }
        ok = ok < 0 || dst < 0 ? -1 : ok;
    } else {
        ok = 0;
    }
    Py_DECREF(source);
    Py_XDECREF(folder);
    Py_XDECREF(name);
    return ok;
}

/* cache_compile(*args, **kwargs): builtins.compile, which capimport sets as the import system's
 * `compile` (importlib._bootstrap_external's global): source_to_code compiles a module's source
 * through it. For the call source_to_code makes (bytes, a file name, "exec", dont_inherit=True,
 * optimize=-1) it keeps the bytes, the name and the code for this thread, so that checking the
 * cache get_code then writes needs no second compile (bytecode_matches). Whoever calls it, or
 * rebinds the global back, gains nothing: the code kept is what the real compile made of the
 * bytes kept, and the check still requires those bytes to be the file on disk. */
static PyObject *
core_cache_compile(PyObject *module, PyObject *args, PyObject *kwargs)
{
    if (b_compile == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "capimport._core: not installed");
        return NULL;
    }
    PyObject *code = PyObject_Call(b_compile, args, kwargs);
    if (code == NULL || !PyCode_Check(code) || PyTuple_GET_SIZE(args) != 3 || kwargs == NULL) {
        return code;
    }
    PyObject *data = PyTuple_GET_ITEM(args, 0), *name = PyTuple_GET_ITEM(args, 1);
    PyObject *inherit = PyDict_GetItemString(kwargs, "dont_inherit");
    PyObject *optimize = PyDict_GetItemString(kwargs, "optimize");
    Py_ssize_t expected_keys = 1 + (optimize != NULL);
    if (!PyUnicode_CheckExact(name) || !PyUnicode_Check(PyTuple_GET_ITEM(args, 2))
            || PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(args, 2), "exec") != 0
            || inherit != Py_True || PyDict_GET_SIZE(kwargs) != expected_keys
            || (optimize != NULL && !(PyLong_CheckExact(optimize) && PyLong_AsLong(optimize) == -1))
            || !(PyBytes_Check(data) || PyByteArray_Check(data) || PyMemoryView_Check(data))) {
        PyErr_Clear();
        return code;
    }
    PyObject *copy = PyBytes_CheckExact(data) ? (Py_INCREF(data), data) : PyBytes_FromObject(data);
    if (copy == NULL) {
        PyErr_Clear();
        return code;
    }
    Py_XSETREF(b_last_source, copy);
    Py_INCREF(name);
    Py_XSETREF(b_last_name, name);
    Py_INCREF(code);
    Py_XSETREF(b_last_code, code);
    return code;
}

/* The spec's "bytecode": (SourceLoader.get_code's code, sys.implementation.cache_tag,
 * sys.flags.optimize, builtins.compile). */
static int
install_bytecode(PyObject *spec)
{
    PyObject *v = spec_get(spec, "bytecode", &PyTuple_Type);
    if (v == NULL) {
        return -1;
    }
    if (PyTuple_GET_SIZE(v) != 4 || !PyCode_Check(PyTuple_GET_ITEM(v, 0))
            || (PyTuple_GET_ITEM(v, 1) != Py_None && !PyUnicode_CheckExact(PyTuple_GET_ITEM(v, 1)))
            || !PyLong_CheckExact(PyTuple_GET_ITEM(v, 2)) || !PyCFunction_Check(PyTuple_GET_ITEM(v, 3))) {
        PyErr_SetString(PyExc_TypeError,
                        "capimport._core.install: bytecode is (code, cache tag or None, int, builtins.compile)");
        return -1;
    }
    b_optimize = PyLong_AsLong(PyTuple_GET_ITEM(v, 2));
    if (b_optimize == -1 && PyErr_Occurred()) {
        return -1;
    }
    b_get_code = PyTuple_GET_ITEM(v, 0);
    b_compile = PyTuple_GET_ITEM(v, 3);
    Py_INCREF(b_compile);
    b_cache_tag = PyTuple_GET_ITEM(v, 1) == Py_None ? NULL : PyTuple_GET_ITEM(v, 1);
    Py_INCREF(b_get_code);
    Py_XINCREF(b_cache_tag);
    return 0;
}
