/* capimport._core: the import system's bytecode writes, in C.
 *
 * Included by _core.c after _core_tamper.h (frame_local). The Python twin is capimport/bytecode.py.
 *
 * The import system caches a module's bytecode (SourceLoader.get_code, _cache_bytecode, set_data,
 * _write_atomic), and the next run executes that cache as the module's own code without compiling
 * anything. So a write into someone's __pycache__ decides what runs as them later. The import
 * system never writes a cache under capimport: when _write_atomic creates the temporary file of
 * the cache cache_from_source names (with the tag, optimization level and prefix the interpreter
 * started with) for the source the standard get_code read, and what it is writing is that source
 * compiled, the core writes the cache itself (its own compile of the file on disk, or the import
 * system's kept for the same bytes; its own header; plain syscalls with the GIL held, so no
 * descriptor of it is ever in Python's hands) and refuses the import system's write with a quiet
 * OSError, which set_data takes as "no cache". A SourceFileLoader subclass whose source_to_code
 * or get_data lies, a rebound _code_to_timestamp_pyc or compile, a loader naming one file and
 * caching under another's name: their writes are charged as planted acts (PRIVILEGE_PLANTED).
 * Only set_data's folders for such a cache are the import system's own writes.
 *
 * Cost: reading the source again and, when the kept compile is not there, compiling it, per cache
 * written; reading a cache costs nothing. */

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
 * only on error). *get_code*, when given, receives that frame (new reference). */
static PyObject *
bytecode_source(PyFrameObject *frame, PyFrameObject **get_code)
{
    PyFrameObject *f = frame;
    Py_INCREF(f);
    PyObject *source = NULL;
    while (f != NULL && b_get_code != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        int found = (PyObject *)code == b_get_code;
        int origin = found ? O_IMPORT : code_origin(code);
        Py_DECREF(code);
        if (found) {
            source = frame_local(f, "source_path");
            if (get_code != NULL) {
                Py_INCREF(f);
                *get_code = f;
            }
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
        int rooted = PyUnicode_GET_LENGTH(head) && PyUnicode_READ_CHAR(head, 0) == '/';
        PyObject *cwd = rooted ? NULL : cpaths__getcwd();
        PyObject *absolute = rooted ? (Py_INCREF(head), head) : cwd ? join_parts(cwd, head, NULL) : NULL;
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

/* *target* is folder + "/" + name + "." + digits: _write_atomic's temporary file for that cache.
 * 1, 0, -1. */
static int
is_temporary_file(PyObject *target, PyObject *folder, PyObject *name)
{
    PyObject *whole = PyUnicode_FromFormat("%U/%U.", folder, name);
    if (whole == NULL) {
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(whole), m = PyUnicode_GET_LENGTH(target);
    int found = m > n && starts_with(target, whole);
    for (Py_ssize_t i = n; found && i < m; i++) {
        Py_UCS4 ch = PyUnicode_READ_CHAR(target, i);
        found = ch >= '0' && ch <= '9';
    }
    Py_DECREF(whole);
    return found;
}

/* The whole of a source file (new reference), its modification time and the mode its cache gets
 * (as _calc_mode: writable by the owner), read through one descriptor with plain syscalls (no
 * audit event: the core's own read), or NULL with no exception when it cannot be read. */
static PyObject *
read_source(PyObject *path, long long *mtime, int *mode)
{
    PyObject *encoded = PyUnicode_EncodeFSDefault(path);
    int fd = encoded ? open(PyBytes_AS_STRING(encoded), O_RDONLY | O_CLOEXEC) : -1;
    Py_XDECREF(encoded);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 30)) {
        if (fd >= 0) {
            close(fd);
        }
        PyErr_Clear();
        return NULL;
    }
    *mtime = (long long)st.st_mtime;
    *mode = (int)((st.st_mode | 0200) & 0666);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)st.st_size + 1);
    Py_ssize_t used = 0;
    while (out != NULL) {   /* to the end: exactly the size fstat gave, or the file is changing now */
        ssize_t got = read(fd, PyBytes_AS_STRING(out) + used, (size_t)(PyBytes_GET_SIZE(out) - used));
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 || (got == 0 && used != (Py_ssize_t)st.st_size) || used + got > (Py_ssize_t)st.st_size) {
            Py_CLEAR(out);
        }
        if (got == 0) {
            break;
        }
        used += got;
    }
    close(fd);
    if (out == NULL || _PyBytes_Resize(&out, used) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return out;
}

/* The encoding a source declares (a coding line in its first two lines, PEP 263) is one the
 * tokenizer decodes without the codec registry: none, UTF-8, Latin-1 or ASCII. Anyone can put a
 * codec in the registry (encodings._cache is a plain dict), so a source decoded through it is
 * not what the file holds, and compiling it again would decode it the same wrong way. 1, 0. */
static int
decodes_without_registry(const char *text, Py_ssize_t n)
{
    static const char *plain[] = {"utf-8", "utf8", "latin-1", "latin1", "iso-8859-1", "iso8859-1", "iso-latin-1",
                                  "ascii", NULL};
    static const char *families[] = {"utf-8-", "latin-1-", "iso-8859-1-", "iso-latin-1-", NULL};
    Py_ssize_t at = 0;
    for (int line = 0; line < 2 && at < n; line++) {
        Py_ssize_t end = at;
        while (end < n && text[end] != '\n' && text[end] != '\r') {
            end++;
        }
        const char *hash = memchr(text + at, '#', (size_t)(end - at));
        for (const char *p = hash; p != NULL && p + 7 <= text + end; p++) {
            if (memcmp(p, "coding", 6) != 0 || (p[6] != ':' && p[6] != '=')) {
                continue;
            }
            const char *q = p + 7;
            while (q < text + end && (*q == ' ' || *q == '\t')) {
                q++;
            }
            char name[32];
            size_t k = 0;
            while (q < text + end && k < sizeof(name) - 1 && (isalnum((unsigned char)*q) || *q == '-' || *q == '_' || *q == '.')) {
                name[k++] = *q == '_' ? '-' : (char)tolower((unsigned char)*q);
                q++;
            }
            name[k] = '\0';
            for (int i = 0; plain[i]; i++) {
                if (strcmp(name, plain[i]) == 0) {
                    return 1;
                }
            }
            for (int i = 0; families[i]; i++) {
                if (strncmp(name, families[i], strlen(families[i])) == 0) {
                    return 1;
                }
            }
            return 0;
        }
        at = end + (end < n && text[end] == '\r' && end + 1 < n && text[end + 1] == '\n' ? 2 : 1);
    }
    return 1;
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

/* What compiling *text* (the source file's bytes) under *source* gives, as source_to_code
 * compiles it (compile(data, path, "exec", dont_inherit=True)): the import system's own compile
 * when cache_compile kept it for these very bytes and this name, else compiled here (the compile
 * event of that one call names a fresh str only the core holds, and is not judged). New
 * reference, or NULL with no exception (a syntax error, a NUL byte, a registry codec). */
static PyObject *
expected_code(PyObject *source, PyObject *text)
{
    PyObject *code = NULL;
    if (memchr(PyBytes_AS_STRING(text), 0, (size_t)PyBytes_GET_SIZE(text)) != NULL
            || !decodes_without_registry(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))) {
        return NULL;
    }
    if (b_last_code != NULL && str_equal(b_last_name, source) && PyBytes_GET_SIZE(b_last_source) == PyBytes_GET_SIZE(text)
            && memcmp(PyBytes_AS_STRING(b_last_source), PyBytes_AS_STRING(text), (size_t)PyBytes_GET_SIZE(text)) == 0) {
        code = b_last_code;
        Py_INCREF(code);
        return code;
    }
    PyObject *name = PyUnicode_New(PyUnicode_GET_LENGTH(source), PyUnicode_MAX_CHAR_VALUE(source));
    if (name != NULL && PyUnicode_CopyCharacters(name, 0, source, 0, PyUnicode_GET_LENGTH(source)) >= 0) {
        PyCompilerFlags flags = _PyCompilerFlags_INIT;
        flags.cf_flags = PyCF_SOURCE_IS_UTF8;   /* as builtins.compile sets them */
        b_compiling = name;
        code = Py_CompileStringObject(PyBytes_AS_STRING(text), name, Py_file_input, &flags, -1);
        b_compiling = NULL;
    }
    Py_XDECREF(name);
    PyErr_Clear();
    return code;
}

/* The import system is writing *expected*: get_code's code_object is the very code kept for it,
 * or the bytes _write_atomic was handed (exact bytes or bytearray only: nothing of anyone's runs
 * here) unmarshal, after their header, to the same code. 1, 0. */
static int
writes_expected(PyFrameObject *writer, PyFrameObject *get_code, PyObject *expected)
{
    PyObject *compiled = frame_local(get_code, "code_object");
    int same = compiled != NULL && compiled == expected;
    Py_XDECREF(compiled);
    PyObject *data = same ? NULL : frame_local(writer, "data");
    if (data != NULL && (PyBytes_CheckExact(data) || PyByteArray_CheckExact(data))) {
        const char *bytes = PyBytes_CheckExact(data) ? PyBytes_AS_STRING(data) : PyByteArray_AS_STRING(data);
        Py_ssize_t n = PyBytes_CheckExact(data) ? PyBytes_GET_SIZE(data) : PyByteArray_GET_SIZE(data);
        PyObject *copy = n > 16 ? PyBytes_FromStringAndSize(bytes + 16, n - 16) : NULL;
        PyObject *found = copy ? PyMarshal_ReadObjectFromString(PyBytes_AS_STRING(copy), PyBytes_GET_SIZE(copy)) : NULL;
        same = found != NULL && same_code(expected, found) > 0;
        Py_XDECREF(copy);
        Py_XDECREF(found);
    }
    Py_XDECREF(data);
    PyErr_Clear();
    return same;
}

/* Write *code* as the cache file *path* (via *tmp*, created here), behind a timestamp header
 * made from the source as read (*mtime*, *size*): plain syscalls with the GIL held throughout,
 * so no Python code, in this thread or any other, ever holds a descriptor of it. 1 written, 0. */
static int
write_cache(PyObject *tmp, PyObject *path, PyObject *code, long long mtime, Py_ssize_t size, int mode)
{
    PyObject *body = PyMarshal_WriteObjectToString(code, Py_MARSHAL_VERSION);
    PyObject *tmp_bytes = body ? PyUnicode_EncodeFSDefault(tmp) : NULL;
    PyObject *path_bytes = tmp_bytes ? PyUnicode_EncodeFSDefault(path) : NULL;
    int written = 0;
    if (path_bytes != NULL) {
        unsigned char head[16];
        unsigned long fields[4] = {(unsigned long)PyImport_GetMagicNumber(), 0,
                                   (unsigned long)(mtime & 0xFFFFFFFF), (unsigned long)(size & 0xFFFFFFFF)};
        for (int f = 0; f < 4; f++) {
            for (int b = 0; b < 4; b++) {
                head[f * 4 + b] = (unsigned char)((fields[f] >> (8 * b)) & 0xFF);
            }
        }
        int fd = open(PyBytes_AS_STRING(tmp_bytes), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0) {
            const char *parts[2] = {(const char *)head, PyBytes_AS_STRING(body)};
            Py_ssize_t sizes[2] = {16, PyBytes_GET_SIZE(body)};
            int ok = 1;
            for (int part = 0; part < 2 && ok; part++) {
                Py_ssize_t done = 0;
                while (ok && done < sizes[part]) {
                    ssize_t n = write(fd, parts[part] + done, (size_t)(sizes[part] - done));
                    ok = n > 0 || (n < 0 && errno == EINTR);
                    done += n > 0 ? n : 0;
                }
            }
            ok = close(fd) == 0 && ok;
            written = ok && rename(PyBytes_AS_STRING(tmp_bytes), PyBytes_AS_STRING(path_bytes)) == 0;
            if (!written) {
                unlink(PyBytes_AS_STRING(tmp_bytes));
            }
        }
    }
    Py_XDECREF(body);
    Py_XDECREF(tmp_bytes);
    Py_XDECREF(path_bytes);
    PyErr_Clear();
    return written;
}

/* The open event of _write_atomic creating its temporary file for the cache of the source the
 * standard get_code read, where cache_from_source puts it: the core writes that cache itself,
 * from its own compile of the file on disk (or the import system's, kept for the same bytes),
 * behind a header it makes, and the import system's own write is refused with a quiet OSError
 * (set_data gives up without a word). Only when what the import system was writing is that same
 * code: a loader whose source_to_code or get_data lies, a rebound serialiser or compile, or a
 * source decoded through the codec registry gets no cache, and the first two are judged as
 * planted acts (decide: reported). Nothing is renamed into place by the import system, so no
 * descriptor it hands to Python code (a rebound _io, a dup by another thread) ever reaches a
 * cache. 0: not this act (decide as usual); -1: handled, an exception set. */
static int
bytecode_write(PyFrameObject *frame, PyObject *args)
{
    if (frame == NULL || PyTuple_GET_SIZE(args) < 3) {
        return 0;
    }
    PyObject *flags = PyTuple_GET_ITEM(args, 2), *path = PyTuple_GET_ITEM(args, 0);
    long want = O_CREAT | O_EXCL | O_WRONLY;
    if (!PyLong_Check(flags) || (PyLong_AsLong(flags) & want) != want || !PyUnicode_Check(path)) {
        PyErr_Clear();
        return 0;   /* every read, and most writes, stop here: no frame is looked at */
    }
    PyCodeObject *fcode = PyFrame_GetCode(frame);
    int writer = PyUnicode_CompareWithASCIIString(fcode->co_name, "_write_atomic") == 0
                 && origin_of(fcode->co_filename) == O_IMPORT;
    Py_DECREF(fcode);
    if (!writer || import_entered(frame) <= 0) {
        PyErr_Clear();
        return 0;
    }
    PyFrameObject *get_code = NULL;
    PyObject *source = bytecode_source(frame, &get_code);
    PyObject *folder = NULL, *name = NULL, *target = NULL, *text = NULL, *expected = NULL;
    int rc = 0;
    if (source == NULL || ends_with_ascii(source, ".py") <= 0 || cache_location(source, &folder, &name) <= 0
            || (target = path_target(path, NULL)) == NULL || !PyUnicode_Check(target)
            || is_temporary_file(target, folder, name) <= 0) {
        goto done;   /* not the cache of the source get_code read: decide as usual */
    }
    long long mtime = 0;
    int mode = 0666;
    text = read_source(source, &mtime, &mode);
    expected = text ? expected_code(source, text) : NULL;
    int quiet = expected == NULL;   /* nothing to vouch for: no cache, no report */
    if (expected != NULL && writes_expected(frame, get_code, expected)) {
        PyObject *cache = PyUnicode_FromFormat("%U/%U", folder, name);
        if (cache != NULL) {
            write_cache(target, cache, expected, mtime, PyBytes_GET_SIZE(text), mode);
        }
        Py_XDECREF(cache);
        quiet = 1;
    }
    if (quiet) {
        PyErr_SetString(PyExc_OSError, "capimport writes this bytecode cache itself");
        rc = -1;
    }
done:
    Py_CLEAR(b_last_source);
    Py_CLEAR(b_last_name);
    Py_CLEAR(b_last_code);
    if (rc == 0) {
        PyErr_Clear();
    }
    Py_XDECREF(get_code);
    Py_XDECREF(source);
    Py_XDECREF(folder);
    Py_XDECREF(name);
    Py_XDECREF(target);
    Py_XDECREF(text);
    Py_XDECREF(expected);
    return rc;
}

/* The import system's privilege for write check *i* at *frame* (set_data): the folders it makes
 * for the cache of the source get_code read (the cache folder, or under a prefix a folder above
 * it). Every other write there is not its own: the cache itself the core writes (bytecode_write).
 * 1 covered, 0 not, -1 error. */
static int
import_makes_cache_folder(PyFrameObject *frame, checks_t *c, int i)
{
    PyCodeObject *code = PyFrame_GetCode(frame);
    int maker = PyUnicode_CompareWithASCIIString(code->co_name, "set_data") == 0;
    Py_DECREF(code);
    if (!maker || PyUnicode_CompareWithASCIIString(c->items[i].api, "os.mkdir") != 0) {
        return 0;
    }
    PyObject *target = get_target(c, i);
    if (target == NULL || !PyUnicode_Check(target)) {
        return target == NULL ? -1 : 0;
    }
    PyObject *source = bytecode_source(frame, NULL);
    if (source == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *folder = NULL, *name = NULL;
    int ok = ends_with_ascii(source, ".py") > 0 ? cache_location(source, &folder, &name) : 0;
    if (ok > 0) {
        PyObject *inside = PyUnicode_FromFormat("%U/", target);
        ok = inside == NULL ? -1 : (str_equal(target, folder) || starts_with(folder, inside)) && is_pycache(target) > 0;
        Py_XDECREF(inside);
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
 * cache get_code then writes needs no second compile (expected_code). Whoever calls it, or
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
