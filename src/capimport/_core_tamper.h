/* capimport._core: the forged-identity (route 6) and import-integrity (route 7) rules, in C.
 *
 * Included by _core.c after _core_environ.h. These were Python functions the core called
 * (capimport/guards/tamper.py, which stays as the pure-Python fallback's rules): whatever a
 * Python rule holds (closure cells, globals) can be rewritten without an audit event, and a
 * distribution that made the compile rule's decide a no-op ran code as the import system. Here
 * the rules, the objects they compare against (the import guard, the real __import__, the
 * guard vaults, the loader classes) and the names they refuse are C memory.
 *
 * What the rules decide:
 *  - compile() and code.__new__ (CodeType, code.replace) by a distribution naming a file of the
 *    standard library, capimport, the import system or another distribution need ffi;
 *  - exec, FunctionType and `function.__code__ =` check every file name in the code tree
 *    (nested code, and code inside constant tuples, which crafted bytecode can reach) the same
 *    way, and mark each code object named as the application's (or nobody's) file as the
 *    distribution's own: by identity, so the application's code in that file stays its own;
 *  - the import system executing a module judges the code against the file it was read from
 *    (the loader's own path, when every attribute that decides the code is the standard
 *    library's as at install) or else against the loader's author, and that owner answers for
 *    what the code claims: the import system's frames are privileged, so no stack walk would
 *    ever refuse it; a module spec's origin vouches for nothing;
 *  - the import guard stays first on sys.meta_path and builtins.__import__ stays the real one;
 *  - loading a second copy of a guarded C module, a subinterpreter module or cffi's backend
 *    needs ffi; strict mode needs ffi to load a distribution's compiled extension;
 *  - reading a frame out of capimport's guard vaults needs ffi.
 */

static PyObject *spec_get(PyObject *spec, const char *key, PyTypeObject *type);

enum { TK_NONE, TK_COMPILE, TK_CODE_NEW, TK_FUNCTION_NEW, TK_EXEC, TK_SETATTR, TK_IMPORT, TK_GETATTR };

static const char *TAMPER_EVENTS[] = {"", "compile", "code.__new__", "function.__new__", "exec",
                                      "object.__setattr__", "import", "object.__getattr__", NULL};

static PyObject *t_meta_finder = NULL, *t_real_import = NULL, *t_builtins = NULL, *t_vaults = NULL;
static PyObject *t_module_class = NULL, *t_ast_file = NULL, *t_file_loaders = NULL, *t_zip_loader = NULL;
static PyObject *t_labels = NULL, *t_import_error = NULL;
static PyObject *t_import_callables = NULL;   /* builtins.exec, then _imp's module makers, at install */
static PyObject *t_loader_classes = NULL;   /* [(class, dict copy at install), ...] */
static PyObject *t_vault_codes = NULL;      /* the guard vaults' generator code */
static strmap t_guarded, t_guardable, t_subinterpreters, t_ffi_backends, t_test_modules;
static int t_strict = 0, t_pytest = -1;
static PyObject *str_rules = NULL;   /* how an error inside these rules names them */
static PyObject *str_import = NULL;  /* "__import__", read on every exec and import */

static int
tamper_kind(const char *event)
{
    for (int i = 1; TAMPER_EVENTS[i]; i++) {
        if (strcmp(event, TAMPER_EVENTS[i]) == 0) {
            return i;
        }
    }
    return TK_NONE;
}

static int
forgery_target(int origin)
{
    return origin == O_STDLIB || origin == O_CAPIMPORT || PRIVILEGED(origin);
}

/* A file name Python code is run from (a module's source or bytecode; a script of bin/ has no
 * suffix and is one too): naming another distribution's forges its identity wherever the name
 * decides (privileged frames, pytest's rewriter). A file with a suffix of these is data (a
 * template jinja2 compiles: a sphinx theme's layout.html), and code named after it is its
 * maker's (judge_name); any other suffix counts as code (fail closed). -1 on error. */
static int
python_file_name(PyObject *name)
{
    static const char *const data_suffixes[] = {".html", ".htm", ".xml", ".txt", ".j2", ".jinja", ".jinja2",
                                                ".tmpl", ".tpl", ".mako", ".md", ".rst", ".css", ".js",
                                                ".json", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sql",
                                                ".svg", ".tex", ".csv", NULL};
    for (int i = 0; data_suffixes[i] != NULL; i++) {
        int r = ends_with_ascii(name, data_suffixes[i]);
        if (r != 0) {
            return r < 0 ? -1 : 0;
        }
    }
    return 1;
}

static int
starts_with_ascii(PyObject *s, const char *prefix)
{
    Py_ssize_t n = (Py_ssize_t)strlen(prefix);
    if (!PyUnicode_Check(s) || PyUnicode_GET_LENGTH(s) < n) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyUnicode_READ_CHAR(s, i) != (Py_UCS4)(unsigned char)prefix[i]) {
            return 0;
        }
    }
    return 1;
}

static int
in_strmap(strmap *m, PyObject *name)
{
    return name != NULL && PyUnicode_CheckExact(name) && strmap_get(m, name) != NULL;
}

static PyObject *
origin_label(int origin)
{
    if (origin == O_STDLIB || origin == O_LINECACHE || origin == O_LOGGING) {
        return PyUnicode_FromString("the standard library");
    }
    if (origin == O_CAPIMPORT) {
        return PyUnicode_FromString("capimport");
    }
    if (origin == O_IMPORT) {
        return PyUnicode_FromString("the import system");
    }
    return PyUnicode_FromFormat("'%U'", PyTuple_GET_ITEM(origin_names, origin));
}

/* A check of ffi with no target. */
static int
ffi_check(checks_t *c, const char *api)
{
    PyObject *text = PyUnicode_FromString(api);
    check_t *k = text ? add_check(c, CAP_FFI, T_NONE, NULL, NULL, text) : NULL;
    Py_XDECREF(text);
    return k ? 0 : -1;
}

/* Deny (as the mode says) unless the parties acting at *frame* hold ffi, or, with *origin* >= 0,
 * unless that one party does (decide_as: the owner of the code an import executes, *filename*
 * its file); *call* (a new reference, taken) words the act. */
static int
need_ffi(PyFrameObject *frame, int origin, PyObject *filename, const char *api, PyObject *call)
{
    if (call == NULL) {
        return fail_with_current("internal error while deciding", str_rules);
    }
    checks_t c = {0};
    int rc = ffi_check(&c, api) < 0 ? fail_with_current("internal error while deciding", call)
             : origin >= 0 ? decide_as(origin, filename, &c, call) : decide(&c, frame, call, Py_None);
    checks_clear(&c);
    Py_DECREF(call);
    return rc;
}

/* A local of *frame* (new reference), or NULL with no exception when it has none. */
static PyObject *
frame_local(PyFrameObject *frame, const char *name)
{
    PyObject *locals = frame_locals(frame);
    if (locals == NULL) {
        return NULL;
    }
    PyObject *value = PyMapping_GetItemString(locals, name);   /* a dict (3.9-3.12) or 3.13's C proxy */
    Py_DECREF(locals);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
    }
    return value;
}

/* An attribute from an object's own __dict__ (new reference, or NULL with no exception): a class
 * attribute or a property, which anyone can set on a Python class, is never consulted. */
static PyObject *
own_attribute(PyObject *obj, const char *name)
{
    if (obj == NULL || Py_TYPE(obj)->tp_dictoffset == 0) {
        return NULL;
    }
    PyObject *dict = PyObject_GenericGetDict(obj, NULL);
    if (dict == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *value = PyDict_Check(dict) ? PyDict_GetItemString(dict, name) : NULL;
    Py_XINCREF(value);
    Py_DECREF(dict);
    return value;
}

/* ------------------------------------------------------------------ the names in a code tree */

/* Does *obj* (a constant) hold code or a container that could? Leaves need no cycle check. */
static int
holds_containers(PyObject *items)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (PyCode_Check(item) || PyTuple_Check(item) || PyFrozenSet_Check(item)) {
            return 1;
        }
    }
    return 0;
}

static int
add_code_names(PyObject *obj, PyObject *names, PyObject *codes, PyObject **seen, int depth)
{
    if (depth > 64) {
        PyErr_SetString(PyExc_RecursionError, "capimport: code nested too deep to read its file names");
        return -1;
    }
    if (!PyCode_Check(obj) && !PyTuple_Check(obj) && !PyFrozenSet_Check(obj)) {
        return 0;
    }
    PyObject *items = PyCode_Check(obj) ? (Py_INCREF(((PyCodeObject *)obj)->co_consts), ((PyCodeObject *)obj)->co_consts)
                      : PyTuple_Check(obj) ? (Py_INCREF(obj), obj) : PySequence_Tuple(obj);
    if (items == NULL) {
        return -1;
    }
    if (depth > 0 && holds_containers(items)) {
        /* Shared constants (marshal can share one tuple many times over) are read once: without
         * this a crafted blob would cost 2**depth. The set is made on first need only. */
        PyObject *key = PyLong_FromVoidPtr(obj);
        if (key == NULL || (*seen == NULL && (*seen = PySet_New(NULL)) == NULL)) {
            Py_XDECREF(key);
            Py_DECREF(items);
            return -1;
        }
        int known = PySet_Contains(*seen, key);
        if (known != 0 || PySet_Add(*seen, key) < 0) {
            Py_DECREF(key);
            Py_DECREF(items);
            return known > 0 ? 0 : -1;
        }
        Py_DECREF(key);
    }
    if (PyCode_Check(obj)) {
        PyObject *name = ((PyCodeObject *)obj)->co_filename;
        if (PyUnicode_Check(name)) {
            int has = PySequence_Contains(names, name);
            if (has < 0 || (!has && PyList_Append(names, name) < 0) || PyList_Append(codes, obj) < 0) {
                Py_DECREF(items);
                return -1;
            }
        }
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(items); i++) {
        rc = add_code_names(PyTuple_GET_ITEM(items, i), names, codes, seen, depth + 1);
    }
    Py_DECREF(items);
    return rc;
}

/* The distinct co_filename of *code* and of every code object reachable through its constants
 * (tuples and frozensets included: crafted bytecode can make a function of a code object
 * indexed out of a constant tuple, with no event). A new list; empty for anything but code.
 * *codes* gets a new list of those code objects (the forged-identity rules mark them). */
static PyObject *
code_names(PyObject *code, PyObject **codes)
{
    PyObject *names = PyList_New(0), *seen = NULL;
    *codes = names != NULL ? PyList_New(0) : NULL;
    if (*codes == NULL || (PyCode_Check(code) && add_code_names(code, names, *codes, &seen, 0) < 0)) {
        Py_XDECREF(names);
        Py_CLEAR(*codes);
        Py_XDECREF(seen);
        return NULL;
    }
    Py_XDECREF(seen);
    return names;
}

/* Every code object of *codes* named *name* is *origin*'s (mark_code). */
static int
mark_named(PyObject *codes, PyObject *name, int origin)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(codes); i++) {
        PyObject *code = PyList_GET_ITEM(codes, i);
        if (str_equal(((PyCodeObject *)code)->co_filename, name) && mark_code(code, origin) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ forged identity */

/* pytest's assertion rewriter loading a module: _rewrite_test compiles the source it just read from
 * the module's own file and AssertionRewritingHook.exec_module runs it (or its cached pyc) for the
 * module whose spec names the file; the code keeps its file's identity, which is right. Forging
 * these frames would itself need compile() or code.replace() naming pytest's file. */
static int
rewriting_a_file_in_place(PyFrameObject *frame)
{
    if (frame == NULL || t_pytest < 0) {
        return 0;
    }
    PyCodeObject *code = PyFrame_GetCode(frame);
    int yes = (PyUnicode_CompareWithASCIIString(code->co_name, "_rewrite_test") == 0
               || PyUnicode_CompareWithASCIIString(code->co_name, "exec_module") == 0);
    if (yes) {
        int suffix = ends_with_ascii(code->co_filename, "/_pytest/assertion/rewrite.py");
        yes = suffix > 0 && origin_of(code->co_filename) == t_pytest;
    }
    PyErr_Clear();
    Py_DECREF(code);
    return yes;
}

/* Who names files at *frame*: the first actor of the walk, or O_APP when only the application
 * acts or a privileged frame met before any actor allows it (the import system compiling a
 * module's source). -1 on error. */
static int
naming_party(PyFrameObject *frame)
{
    if (rewriting_a_file_in_place(frame)) {
        return O_APP;
    }
    checks_t none = {0};
    chain_t ch = {0};
    int rc = walk(frame, &none, &ch);
    int who = rc < 0 ? -1 : rc == 0 && ch.n > 0 ? ch.items[0].origin : O_APP;
    chain_clear(&ch);
    return who;
}

/* *who*, acting at *frame*, makes code that names *name* (exact str): compile() and code.replace
 * (*codes* NULL: the code is not made yet), or runs or binds the code objects *codes* (exec,
 * FunctionType, function.__code__). A name that reads as the application's or nobody's, or names
 * another distribution's data file (python_file_name), is no forgery of anyone's, but the code is
 * *who*'s: the code objects are marked as *who*'s when they are run or bound (every way to run
 * code passes there), and the application's own code in that file stays the application's. */
static int
judge_name(PyObject *name, PyObject *codes, int who, PyFrameObject *frame, const char *api)
{
    int claimed = who == O_APP ? O_APP : origin_of(name);
    if (claimed < 0) {
        return fail_with_current("internal error while deciding", str_rules);
    }
    if (who == O_APP || claimed == who || claimed == O_DYNAMIC) {
        return 0;
    }
    int forged = forgery_target(claimed) ? 1 : claimed == O_APP || claimed == O_UNKNOWN ? 0 : python_file_name(name);
    if (forged < 0) {
        return fail_with_current("internal error while deciding", str_rules);
    }
    if (forged) {
        PyObject *label = origin_label(claimed);
        int rc = need_ffi(frame, -1, NULL, api, label ? PyUnicode_FromFormat("%s naming %R, a file of %U", api, name, label)
                                            : NULL);
        Py_XDECREF(label);
        return rc;
    }
    if (codes != NULL && mark_named(codes, name, who) < 0) {
        return fail_with_current("internal error while deciding", str_rules);
    }
    return 0;
}

/* compile(), code.__new__: code made at *frame* names *filename* (str or bytes). */
static int
check_name(PyObject *filename, PyFrameObject *frame, const char *api)
{
    if (!PyUnicode_Check(filename) && !PyBytes_Check(filename)) {
        return 0;
    }
    PyObject *name = exact_text(filename);
    if (name == NULL) {
        PyErr_Clear();
        return 0;   /* bytes that do not decode name no file */
    }
    int who = naming_party(frame);
    int rc = who < 0 ? fail_with_current("internal error while deciding", str_rules)
                     : judge_name(name, NULL, who, frame, api);
    Py_DECREF(name);
    return rc;
}

/* exec, FunctionType, function.__code__: every file name in the code tree (one walk for all). */
static int
check_names(PyObject *code, PyFrameObject *frame, const char *api)
{
    PyObject *codes = NULL, *names = code_names(code, &codes);
    if (names == NULL) {
        return fail_with_current("cannot read the file names of code for", str_rules);
    }
    int rc = 0, who = -2;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(names); i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        int origin = origin_of(name);
        if (origin == O_DYNAMIC) {
            continue;
        }
        if (origin >= 0 && who == -2) {
            who = naming_party(frame);
        }
        /* origin_of reads only an exact str as a file (anything else is O_DYNAMIC, skipped). */
        rc = origin < 0 || who < 0 ? fail_with_current("internal error while deciding", str_rules)
                                   : judge_name(name, codes, who, frame, api);
    }
    Py_DECREF(names);
    Py_DECREF(codes);
    return rc;
}

/* ------------------------------------------------------------------ the import system executing a module */

/* A module gets the module class whose __setattr__ is the core's gate (route 4). */
static void
patch_module(PyObject *module)
{
    if (module != NULL && t_module_class != NULL && Py_TYPE(module) == &PyModule_Type) {
        if (PyObject_SetAttrString(module, "__class__", t_module_class) < 0) {
            PyErr_Clear();
        }
    }
}

/* What decides which code a file loader hands the import system: the methods SourceLoader,
 * SourcelessFileLoader and zipimporter's get_code read through, and the attributes naming the file. */
static const char *PRODUCING[] = {"get_code", "get_filename", "path_stats", "get_data", "source_to_code", "path",
                                  "archive", "prefix", NULL};

static int
is_producing(PyObject *key)
{
    for (int i = 0; PyUnicode_Check(key) && PRODUCING[i]; i++) {
        if (PyUnicode_CompareWithASCIIString(key, PRODUCING[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The install-time copy of a standard-library loader class's dict in *pairs* (a list of
 * (class, dict copy)), or NULL: not one of them. By identity: a class's hash can be Python. */
static PyObject *
loader_snapshot(PyObject *pairs, PyTypeObject *type)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        if (PyTuple_GET_ITEM(pair, 0) == (PyObject *)type) {
            return PyTuple_GET_ITEM(pair, 1);
        }
    }
    return NULL;
}

static int attribute_author(PyObject *value, PyObject **where);

/* A standard-library loader class as it was at install: -1 when no producing attribute was set
 * on it since (other attributes do not change the code), else the author of the first one set. */
static int
patched_by(PyTypeObject *type, PyObject *snapshot)
{
    PyObject *now = type->tp_dict, *key, *value;
    Py_ssize_t pos = 0;
    while (now != NULL && PyDict_Next(now, &pos, &key, &value)) {
        if (is_producing(key)) {
            PyObject *then = PyDict_GetItemWithError(snapshot, key);
            if (then != value) {
                PyErr_Clear();
                PyObject *where = NULL;
                int origin = attribute_author(value, &where);
                Py_XDECREF(where);
                return origin;
            }
        }
    }
    return -1;
}

/* The origin of the code behind a producing attribute: a function's file; anything else (a
 * property, a builtin, a partial) names none, and counts as code no distribution owns. */
static int
attribute_author(PyObject *value, PyObject **where)
{
    PyObject *func = value;
    if (Py_IS_TYPE(value, &PyStaticMethod_Type) || Py_IS_TYPE(value, &PyClassMethod_Type)) {
        func = PyObject_GetAttrString(value, "__func__");
        if (func == NULL) {
            PyErr_Clear();
            return O_UNKNOWN;
        }
        Py_DECREF(func);   /* still held by the descriptor */
    }
    if (!PyFunction_Check(func)) {
        return O_UNKNOWN;
    }
    PyCodeObject *code = (PyCodeObject *)PyFunction_GET_CODE(func);
    PyObject *file = code->co_filename;
    int origin = code_origin(code);
    if (origin >= 0 && *where == NULL) {
        *where = file;
        Py_INCREF(file);
    }
    return origin;
}

/* Who made the code a loader hands over: -1 when every producing attribute is the standard
 * library's own, untouched since install (the code is the file's, read by the standard library),
 * else the author of the first one that is not (capimport's wrapper classes define none), or
 * O_UNKNOWN. -2 on error. *where* gets the author's file when there is one. */
static int
loader_author(PyObject *loader, PyObject **where)
{
    PyObject *own = Py_TYPE(loader)->tp_dictoffset ? PyObject_GenericGetDict(loader, NULL) : NULL;
    PyErr_Clear();
    if (own != NULL && PyDict_Check(own)) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(own, &pos, &key, &value)) {
            if (is_producing(key) && !PyUnicode_Check(value)) {   /* a method set on the instance */
                int origin = attribute_author(value, where);
                Py_DECREF(own);
                return origin < 0 ? -2 : origin;
            }
        }
    }
    Py_XDECREF(own);
    PyObject *mro = Py_TYPE(loader)->tp_mro;
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (base == &PyBaseObject_Type) {
            break;
        }
        PyObject *snapshot = loader_snapshot(t_loader_classes, base);
        if (snapshot != NULL) {
            int patcher = patched_by(base, snapshot);   /* a standard-library class patched at run time */
            if (patcher != -1) {
                return patcher < 0 ? -2 : patcher;
            }
            continue;
        }
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (base->tp_dict != NULL && PyDict_Next(base->tp_dict, &pos, &key, &value)) {
            if (is_producing(key)) {
                int origin = attribute_author(value, where);
                return origin < 0 ? -2 : origin;
            }
        }
    }
    return mro != NULL && PyTuple_GET_SIZE(mro) > 1 ? -1 : O_UNKNOWN;
}

/* What _call_with_frames_removed (*frame*) is calling, among the callables the core has held since
 * install (exec, then _imp's create_builtin, exec_builtin, create_dynamic, exec_dynamic): HELD_EXEC
 * (running a module's body), HELD_BUILTIN or HELD_MAKER (an _imp function creating or running a
 * builtin or an extension module), 0 (anything else: the import system looks each up
 * when it calls it, so anyone can replace it with a builtin or a partial), or -1. By identity. */
static int
runs_held_callable(PyFrameObject *frame)
{
    PyCodeObject *code = PyFrame_GetCode(frame);
    int helper = PyUnicode_CompareWithASCIIString(code->co_name, "_call_with_frames_removed") == 0;
    Py_DECREF(code);
    if (!helper || t_import_callables == NULL) {
        return 0;
    }
    PyObject *callable = frame_local(frame, "f");
    if (callable == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int found = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t_import_callables) && !found; i++) {
        found = PyTuple_GET_ITEM(t_import_callables, i) != callable ? 0 : i == 0 ? HELD_EXEC : i < 3 ? HELD_BUILTIN
                : HELD_MAKER;
    }
    Py_DECREF(callable);
    return found;
}

/* The file of the module the held _imp maker running in *frame* makes (create_*: its spec) or runs
 * (exec_*: the module, whose __spec__ names it): the spec's origin, from instance dictionaries
 * only. New reference; NULL with no exception when there is none. */
static PyObject *
made_module_file(PyFrameObject *frame)
{
    PyObject *args = frame_local(frame, "args");
    if (args == NULL || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) == 0) {
        Py_XDECREF(args);
        return NULL;
    }
    PyObject *first = PyTuple_GET_ITEM(args, 0);
    PyObject *spec = PyModule_Check(first) ? own_attribute(first, "__spec__") : (Py_INCREF(first), first);
    Py_DECREF(args);
    PyObject *origin = own_attribute(spec, "origin");
    Py_XDECREF(spec);
    if (origin != NULL && !PyUnicode_CheckExact(origin)) {
        Py_CLEAR(origin);
    }
    return origin;
}

/* The standard library's file loader (or zipimporter) at the root of *type*, or NULL. */
static PyTypeObject *
file_loader_root(PyTypeObject *type)
{
    PyObject *mro = type->tp_mro;
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyObject *base = PyTuple_GET_ITEM(mro, i);
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(t_file_loaders); k++) {
            if (base == PyTuple_GET_ITEM(t_file_loaders, k)) {
                return (PyTypeObject *)base;
            }
        }
        if (t_zip_loader != NULL && base == t_zip_loader) {
            return (PyTypeObject *)base;
        }
    }
    return NULL;
}

/* A name inside the zip archive *inside* ("archive/"): a plain path below it, no "." or ".."
 * component that would climb out of it. */
static int
inside_archive(PyObject *name, PyObject *inside)
{
    if (inside == NULL || !starts_with(name, inside)) {
        return 0;
    }
    int climbs = contains_ascii(name, "/../") || contains_ascii(name, "/./") || ends_with_ascii(name, "/..")
                 || ends_with_ascii(name, "/.") || contains_ascii(name, "//");
    PyErr_Clear();
    return !climbs;
}

/* Judge the code a loader's exec_module (at *exec_frame*) hands the import system. 1: judged. */
static int
judge_module_code(PyObject *code, PyFrameObject *exec_frame)
{
    PyObject *module = frame_local(exec_frame, "module");
    PyObject *loader = module != NULL ? frame_local(exec_frame, "self") : NULL;
    if (PyErr_Occurred()) {
        Py_XDECREF(module);
        return fail_with_current("cannot read the module an import executes", str_rules);
    }
    if (module == NULL) {
        return 0;
    }
    patch_module(module);
    Py_DECREF(module);
    if (loader == NULL) {
        return 1;   /* FrozenImporter.exec_module (a static method: no self) runs the interpreter's own code */
    }
    PyObject *where = NULL, *path = NULL, *inside = NULL;
    PyTypeObject *root = file_loader_root(Py_TYPE(loader));
    int author = root != NULL ? loader_author(loader, &where) : O_UNKNOWN;
    int trusted = root != NULL && author == -1;
    if (trusted) {   /* the file the standard library's loader reads the code from */
        int zip = t_zip_loader != NULL && root == (PyTypeObject *)t_zip_loader;
        path = own_attribute(loader, zip ? "archive" : "path");
        if (path != NULL && !PyUnicode_CheckExact(path)) {
            Py_CLEAR(path);
        }
        inside = zip && path != NULL ? PyUnicode_FromFormat("%U/", path) : NULL;
    }
    Py_DECREF(loader);
    if (path == NULL) {
        path = PyUnicode_FromString("");
    }
    /* Classified afresh, not from the cache by name: a /proc/self/fd/N or a link named once may
     * lead elsewhere now. */
    int real = path != NULL && PyUnicode_GET_LENGTH(path) ? classify_path(path) : O_UNKNOWN;
    PyObject *names = NULL, *codes = NULL;
    int rc = 1;
    if (path == NULL || real < 0 || author == -2) {
        rc = fail_with_current("internal error while deciding", str_rules);
        goto done;
    }
    if (trusted && (real == O_STDLIB || real == O_CAPIMPORT || real == O_IMPORT)) {
        goto done;   /* the standard library's own file, read by the standard library's loader */
    }
    /* Who answers for the code: the owner of the file the standard library's loader read, or the
     * author of the loader that made it. A module spec's origin vouches for nothing (anyone's
     * finder sets it). */
    int owner = trusted ? real : author;
    if ((names = code_names(code, &codes)) == NULL) {
        rc = fail_with_current("cannot read the file names of code for", str_rules);
        goto done;
    }
    for (Py_ssize_t i = 0; rc == 1 && i < PyList_GET_SIZE(names); i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        int claimed = origin_of(name);
        if (claimed < 0) {
            rc = fail_with_current("internal error while deciding", str_rules);
            break;
        }
        if (claimed == owner || (trusted && str_equal(name, path))) {
            continue;
        }
        if (inside_archive(name, inside)) {
            claimed = O_UNKNOWN;   /* a member of the archive: the archive owner's code, as below */
        }
        /* "<string>" code in a distribution's module file would run with only transparent frames
         * between its acts and the import system's, whose privilege would cover them. */
        int nameless = claimed == O_DYNAMIC && owner != O_APP;
        if (nameless || forgery_target(claimed) || claimed >= O_FIRST_DIST) {
            PyObject *label = nameless ? PyUnicode_FromString("no file") : origin_label(claimed);
            PyObject *call = label ? PyUnicode_FromFormat("import of %R whose code names %R, %s%U",
                                                          path, name, nameless ? "" : "a file of ", label) : NULL;
            Py_XDECREF(label);
            if (need_ffi(NULL, owner, where ? where : path, "import of code with a false co_filename", call) < 0) {
                rc = -1;
            }
        } else if (claimed != O_DYNAMIC && (owner == O_UNKNOWN || owner >= O_FIRST_DIST)) {
            if (mark_named(codes, name, owner) < 0) {   /* code named as the application's is the owner's */
                rc = fail_with_current("internal error while deciding", str_rules);
            }
        }
    }
done:
    Py_XDECREF(names);
    Py_XDECREF(codes);
    Py_XDECREF(path);
    Py_XDECREF(inside);
    Py_XDECREF(where);
    return rc;
}

/* 1 when the import system (or zipimport) is executing a module at *frame* (judged), 0 when the
 * exec is not an import's, -1 on a denial or an error. */
static int
import_exec(PyObject *code, PyFrameObject *frame)
{
    PyFrameObject *f = frame;
    Py_XINCREF(f);
    int result = 0;
    for (int depth = 0; f != NULL && depth < 4; depth++) {
        PyCodeObject *fc = PyFrame_GetCode(f);
        int frozen = starts_with_ascii(fc->co_filename, "<frozen importlib")
                     || starts_with_ascii(fc->co_filename, "<frozen zipimport>");
        int exec_module = frozen && PyUnicode_CompareWithASCIIString(fc->co_name, "exec_module") == 0;
        Py_DECREF(fc);
        if (!frozen) {
            break;
        }
        if (exec_module) {
            result = judge_module_code(code, f);
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
    return result;
}

/* ------------------------------------------------------------------ import integrity */

static int
list_holds(PyObject *list, PyObject *item)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        if (PyList_GET_ITEM(list, i) == item) {
            return 1;
        }
    }
    return 0;
}

/* *finder* first in *list*, once (identity only: no Python code runs). */
static int
put_first(PyObject *list, PyObject *finder)
{
    for (Py_ssize_t i = PyList_GET_SIZE(list) - 1; i >= 0; i--) {
        if (PyList_GET_ITEM(list, i) == finder && PyList_SetSlice(list, i, i + 1, NULL) < 0) {
            return -1;
        }
    }
    return PyList_Insert(list, 0, finder);
}

/* The import guard first on sys.meta_path and builtins.__import__ the real one; put back if not. */
static int
integrity(void)
{
    int removed = 0, replaced = 0;
    PyObject *path = PySys_GetObject("meta_path");   /* borrowed: held below while Python may run */
    Py_XINCREF(path);
    if (path != NULL && PyList_CheckExact(path)) {
        if (PyList_GET_SIZE(path) == 0 || PyList_GET_ITEM(path, 0) != t_meta_finder) {
            /* Another finder was inserted ahead (pytest's assertion rewriter, typeguard, beartype
             * do this): put the guard back in front; it delegates to the others after it. */
            removed = !list_holds(path, t_meta_finder);
            if (put_first(path, t_meta_finder) < 0) {
                Py_DECREF(path);
                return fail_with_current("cannot restore", str_rules);
            }
        }
    } else {
        /* Not a plain list: a subclass can hide items from the import system (its own __iter__),
         * anything else is no meta_path. A plain copy, the guard first, takes its place. */
        removed = 1;
        PyObject *fresh = path != NULL && PyList_Check(path) ? PyList_GetSlice(path, 0, PyList_GET_SIZE(path))
                          : path != NULL && path != Py_None ? PySequence_List(path) : PyList_New(0);
        if (fresh == NULL) {
            PyErr_Clear();
            fresh = PyList_New(0);
        }
        if (fresh == NULL || put_first(fresh, t_meta_finder) < 0 || PySys_SetObject("meta_path", fresh) < 0) {
            Py_XDECREF(fresh);
            Py_XDECREF(path);
            return fail_with_current("cannot restore", str_rules);
        }
        Py_DECREF(fresh);
    }
    Py_XDECREF(path);
    PyObject *current = PyDict_GetItemWithError(t_builtins, str_import);   /* an exact str key: no Python */
    PyErr_Clear();
    if (current != t_real_import) {
        replaced = 1;
        if (PyDict_SetItem(t_builtins, str_import, t_real_import) < 0) {
            return fail_with_current("cannot restore", str_rules);
        }
    }
    if ((!removed && !replaced) || internal_depth > 0) {
        return 0;
    }
    PyObject *message = PyUnicode_FromFormat(
        "tampering detected: %s%s%s; restored", removed ? "capimport's import guard was removed from sys.meta_path" : "",
        removed && replaced ? "; " : "", replaced ? "builtins.__import__ was replaced" : "");
    if (message == NULL) {
        return fail_closed(NULL);
    }
    PyObject *r = PyObject_CallOneArg(internal_error, message);
    Py_XDECREF(r);
    PyErr_Clear();
    int rc = 0;
    if (mode == MODE_ENFORCE) {
        PyObject *text = PyUnicode_FromFormat("capimport: %U; this import is refused (fail closed)", message);
        rc = fail_closed(text);
        Py_XDECREF(text);
    }
    Py_DECREF(message);
    return rc;
}

/* ------------------------------------------------------------------ the import event */

/* The first frame below the import system's own: the code whose import this is (new reference). */
static PyFrameObject *
outside_import_system(PyFrameObject *frame)
{
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int inside = starts_with_ascii(code->co_filename, "<frozen importlib")
                     || starts_with_ascii(code->co_filename, "<frozen zipimport");
        Py_DECREF(code);
        if (!inside) {
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return frame;
}

/* need_ffi for the code whose import this is. */
static int
need_ffi_importer(PyFrameObject *frame, const char *api, PyObject *call)
{
    PyFrameObject *outside = outside_import_system(frame);
    int rc = need_ffi(outside, -1, NULL, api, call);
    Py_XDECREF(outside);
    return rc;
}

/* Strict mode: a distribution's compiled extension loads only for a holder of ffi. */
static int
strict_native(PyObject *name, PyObject *filename)
{
    int owner = origin_of(filename);
    if (owner < 0) {
        return fail_with_current("internal error while deciding", name);
    }
    if (owner < O_FIRST_DIST && owner != O_UNKNOWN) {
        return 0;
    }
    if (grants[owner].held & (1u << CAP_FFI)) {
        return 0;
    }
    Py_ssize_t slash = PyUnicode_FindChar(filename, '/', 0, PyUnicode_GET_LENGTH(filename), -1);
    PyObject *file = PyUnicode_Substring(filename, slash + 1, PyUnicode_GET_LENGTH(filename));
    PyObject *message = file ? PyUnicode_FromFormat(
        "capimport: %U ships compiled code (%U) and lacks 'ffi'; strict mode loads native extensions only for "
        "distributions granted 'ffi'", PyTuple_GET_ITEM(t_labels, owner), file) : NULL;
    Py_XDECREF(file);
    if (message == NULL) {
        return fail_closed(NULL);
    }
    if (mode != MODE_ENFORCE) {
        PyObject *text = PyUnicode_FromFormat("%U [allowed: %s mode]", message, mode == MODE_WARN ? "warn" : "record");
        PyObject *r = text ? PyObject_CallOneArg(internal_error, text) : NULL;
        Py_XDECREF(r);
        Py_XDECREF(text);
        Py_DECREF(message);
        PyErr_Clear();
        return 0;
    }
    PyObject *kwargs = Py_BuildValue("{sOsOss}", "name", name, "distribution", PyTuple_GET_ITEM(origin_names, owner),
                                     "capability", "ffi");
    PyObject *posargs = PyTuple_Pack(1, message);
    PyObject *exc = kwargs && posargs ? PyObject_Call(t_import_error, posargs, kwargs) : NULL;
    Py_XDECREF(kwargs);
    Py_XDECREF(posargs);
    if (exc != NULL && PyExceptionInstance_Check(exc)) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    } else {
        PyErr_Clear();
        PyErr_SetObject(PyExc_ImportError, message);
    }
    Py_XDECREF(exc);
    Py_DECREF(message);
    return -1;
}

static int
on_import(PyObject *args, PyFrameObject *frame)
{
    if (integrity() < 0) {
        return -1;
    }
    PyObject *raw = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL;
    PyObject *filename = PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1) : Py_None;
    PyObject *name = raw != NULL && PyUnicode_Check(raw) ? exact_text(raw) : NULL;
    if (name == NULL) {
        PyErr_Clear();
        return 0;
    }
    int rc = 0;
    if (filename != Py_None && t_strict && PyUnicode_Check(filename)) {
        PyObject *file = exact_text(filename);
        rc = file == NULL ? fail_with_current("cannot read the arguments of", name) : strict_native(name, file);
        Py_XDECREF(file);
    }
    if (rc == 0 && in_strmap(&t_ffi_backends, name)) {
        rc = need_ffi_importer(frame, "loading the cffi backend",
                      PyUnicode_FromFormat("loading the cffi backend (%U)", name));
    }
    if (rc == 0 && in_strmap(&t_test_modules, name)) {
        rc = need_ffi_importer(frame, "CPython's test C modules",
                      PyUnicode_FromFormat("loading CPython's test C module %U", name));
    }
    if (rc == 0 && in_strmap(&t_subinterpreters, name)) {
        rc = need_ffi_importer(frame, "subinterpreters", PyUnicode_FromFormat("subinterpreters (%U)", name));
    } else if (rc == 0 && filename != Py_None && in_strmap(&t_guarded, name)) {
        /* The import system's privilege covers loading modules, not re-creating guarded ones. */
        rc = need_ffi_importer(frame, "a second copy of a guarded C module",
                      PyUnicode_FromFormat("a second copy of the C module %U", name));
    }
    Py_DECREF(name);
    return rc;
}

/* ------------------------------------------------------------------ dispatch */

static int
tamper_rule(int kind, PyObject *args, PyFrameObject *frame)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *a0 = n > 0 ? PyTuple_GET_ITEM(args, 0) : NULL;
    switch (kind) {
    case TK_COMPILE: {
        if (n < 2 || (b_compiling != NULL && PyTuple_GET_ITEM(args, 1) == b_compiling)) {
            return 0;   /* none, or the core compiling a source to check its cache (_core_bytecode.h) */
        }
        if (frame != NULL && t_ast_file != NULL) {
            PyCodeObject *code = PyFrame_GetCode(frame);
            int parse = PyUnicode_CompareWithASCIIString(code->co_name, "parse") == 0
                        && str_equal(code->co_filename, t_ast_file);
            Py_DECREF(code);
            if (parse) {   /* ast.parse makes a tree, not code, unless its flags were rebound */
                PyObject *flags = frame_local(frame, "flags");
                long value = flags != NULL && PyLong_CheckExact(flags) ? PyLong_AsLong(flags) : 0;
                Py_XDECREF(flags);
                PyErr_Clear();
                if (value & 0x400) {   /* PyCF_ONLY_AST */
                    return 0;
                }
            }
        }
        return check_name(PyTuple_GET_ITEM(args, 1), frame, "compile() with another's file name");
    }
    case TK_CODE_NEW:
        return n > 1 ? check_name(PyTuple_GET_ITEM(args, 1), frame,
                                  "types.CodeType/code.replace with another's file name") : 0;
    case TK_FUNCTION_NEW:
        return a0 != NULL ? check_names(a0, frame, "types.FunctionType with another's code") : 0;
    case TK_SETATTR:
        if (n > 2 && PyUnicode_Check(PyTuple_GET_ITEM(args, 1))
                && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(args, 1), "__code__") == 0) {
            return check_names(PyTuple_GET_ITEM(args, 2), frame, "function.__code__ = another's code");
        }
        return 0;
    case TK_EXEC: {
        if (integrity() < 0) {
            return -1;
        }
        if (a0 == NULL || !PyCode_Check(a0)) {
            return 0;
        }
        int judged = import_exec(a0, frame);
        if (judged != 0) {
            return judged < 0 ? -1 : 0;
        }
        return check_names(a0, frame, "exec of code with another's file name");
    }
    case TK_IMPORT:
        return on_import(args, frame);
    case TK_GETATTR: {
        /* A vault's frame, however it is reached: the generator itself (gi_frame) or a traceback
         * through it (throw() into a vault, then tb_frame). */
        PyObject *code = NULL;
        if (a0 != NULL && PyTraceBack_Check(a0) && ((PyTracebackObject *)a0)->tb_frame != NULL) {
            code = (PyObject *)PyFrame_GetCode(((PyTracebackObject *)a0)->tb_frame);
        } else if (a0 != NULL && PyGen_Check(a0)) {
            code = PyObject_GetAttrString(a0, "gi_code");
            if (code == NULL) {
                return fail_with_current("cannot read the code of", str_rules);
            }
        }
        int vault = 0;
        for (Py_ssize_t i = 0; code != NULL && i < PyTuple_GET_SIZE(t_vault_codes); i++) {
            vault |= PyTuple_GET_ITEM(t_vault_codes, i) == code;
        }
        Py_XDECREF(code);
        if (vault) {
            return need_ffi(frame, -1, NULL, "a frame of capimport's guard vault",
                            PyUnicode_FromFormat("%S of capimport's guard vault", n > 1 ? PyTuple_GET_ITEM(args, 1) : Py_None));
        }
        return 0;
    }
    }
    return 0;
}

/* ------------------------------------------------------------------ install */

static int
fill_names(strmap *m, PyObject *tamper, const char *key)
{
    PyObject *names = PyDict_GetItemString(tamper, key);
    if (names == NULL || !PyTuple_CheckExact(names)) {
        PyErr_Format(PyExc_TypeError, "capimport._core.install: tamper[%s] must be a tuple of str", key);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        if (strmap_set(m, PyTuple_GET_ITEM(names, i), Py_True) < 0) {
            return -1;
        }
    }
    return 0;
}

/* A copy of the dict of every class the standard library's file loaders are made of (their MRO
 * without object), to tell a loader as it was at install from one patched since. */
static int
install_loader_classes(void)
{
    PyObject *pairs = PyList_New(0);
    if (pairs == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(t_file_loaders);
    for (Py_ssize_t k = 0; k <= n; k++) {
        PyObject *root = k < n ? PyTuple_GET_ITEM(t_file_loaders, k) : t_zip_loader;
        PyObject *mro = root != NULL ? ((PyTypeObject *)root)->tp_mro : NULL;
        for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
            PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
            if (base == &PyBaseObject_Type || loader_snapshot(pairs, base) != NULL) {
                continue;
            }
            PyObject *copy = base->tp_dict ? PyDict_Copy(base->tp_dict) : NULL;
            PyObject *pair = copy ? PyTuple_Pack(2, (PyObject *)base, copy) : NULL;
            Py_XDECREF(copy);
            if (pair == NULL || PyList_Append(pairs, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(pairs);
                return -1;
            }
            Py_DECREF(pair);
        }
    }
    t_loader_classes = pairs;   /* held only here: no Python code reaches the list */
    return 0;
}

/* The code of each guard vault's generator: its frame, met anywhere (gi_frame, a traceback's
 * tb_frame), holds the originals of guarded functions. */
static int
install_vault_codes(void)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t_vaults);
    t_vault_codes = PyTuple_New(n);
    for (Py_ssize_t i = 0; t_vault_codes != NULL && i < n; i++) {
        PyObject *code = PyObject_GetAttrString(PyTuple_GET_ITEM(t_vaults, i), "gi_code");
        if (code == NULL) {
            return -1;
        }
        PyTuple_SET_ITEM(t_vault_codes, i, code);
    }
    return t_vault_codes ? 0 : -1;
}

static int
install_tamper(PyObject *spec)
{
    PyObject *tamper = spec_get(spec, "tamper", &PyDict_Type);
    if (tamper == NULL) {
        return -1;
    }
    static const char *keys[] = {"meta_finder", "real_import", "builtins", "vaults", "module_class", "ast_file",
                                 "file_loaders", "zip_loader", "labels", "import_error", "import_callables", NULL};
    PyObject **slots[] = {&t_meta_finder, &t_real_import, &t_builtins, &t_vaults, &t_module_class, &t_ast_file,
                          &t_file_loaders, &t_zip_loader, &t_labels, &t_import_error, &t_import_callables};
    
    for (int i = 0; keys[i]; i++) {
        PyObject *v = PyDict_GetItemString(tamper, keys[i]);
        if (v == NULL) {
            PyErr_Format(PyExc_KeyError, "capimport._core.install: tamper has no %s", keys[i]);
            return -1;
        }
        Py_INCREF(v);
        *slots[i] = v == Py_None ? (Py_DECREF(v), NULL) : v;
    }
    if (t_meta_finder == NULL || t_real_import == NULL || t_builtins == NULL || !PyDict_Check(t_builtins)
            || t_vaults == NULL || !PyTuple_Check(t_vaults) || t_file_loaders == NULL || !PyTuple_Check(t_file_loaders)
            || t_labels == NULL || !PyTuple_Check(t_labels) || PyTuple_GET_SIZE(t_labels) != n_origins
            || t_import_error == NULL
            || t_import_callables == NULL || !PyTuple_CheckExact(t_import_callables)
            || (t_ast_file != NULL && !PyUnicode_CheckExact(t_ast_file))
            || (t_module_class != NULL && !PyType_Check(t_module_class))
            || (t_zip_loader != NULL && !PyType_Check(t_zip_loader))) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.install: a malformed tamper entry");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t_file_loaders); i++) {
        if (!PyType_Check(PyTuple_GET_ITEM(t_file_loaders, i))) {
            PyErr_SetString(PyExc_TypeError, "capimport._core.install: file_loaders must hold types");
            return -1;
        }
    }
    if (install_loader_classes() < 0 || install_vault_codes() < 0) {
        return -1;
    }
    PyObject *strict = PyDict_GetItemString(tamper, "strict");
    if (strict == NULL || !PyBool_Check(strict)) {
        PyErr_SetString(PyExc_TypeError, "capimport._core.install: tamper[strict] must be a bool");
        return -1;
    }
    t_strict = strict == Py_True;
    if ((str_rules = PyUnicode_InternFromString("a forged-identity or import-integrity rule")) == NULL
            || (str_import = PyUnicode_InternFromString("__import__")) == NULL) {
        return -1;
    }
    PyObject *pytest = PyUnicode_FromString("pytest");
    if (pytest == NULL) {
        return -1;
    }
    t_pytest = lookup_int(&origin_index, pytest);
    Py_DECREF(pytest);
    if (fill_names(&t_guarded, tamper, "guarded") < 0 || fill_names(&t_guardable, tamper, "guardable") < 0
            || fill_names(&t_subinterpreters, tamper, "subinterpreters") < 0
            || fill_names(&t_ffi_backends, tamper, "ffi_backends") < 0
            || fill_names(&t_test_modules, tamper, "test_modules") < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n_events; i++) {
        events[i].tamper = tamper_kind(events[i].name);
    }
    return 0;
}

/* note_guarded(name): a guarded C module imported after start-up; loading it again needs ffi.
 * Only names capimport guards can be added (a distribution gains nothing by calling this). */
static PyObject *
core_note_guarded(PyObject *module, PyObject *name)
{
    if (!ready || !PyUnicode_CheckExact(name) || !in_strmap(&t_guardable, name)) {
        Py_RETURN_FALSE;
    }
    if (strmap_set(&t_guarded, name, Py_True) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}
