/* SPDX-License-Identifier: MIT */
/*
 * Module bigarray._bigarray: initialisation, the exception classes and the mapping
 * of library error codes to them, the fork generation, and small conversions shared
 * by the handle types. The types themselves live in pyba_db.c (Db, Session),
 * pyba_array.c (Array) and pyba_view.c (View).
 */
#define PYBA_IMPORT_ARRAY
#include "pyba.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

PyObject *pyba_exc_error;
PyObject *pyba_exc_conflict;
PyObject *pyba_exc_corrupt;
unsigned long pyba_fork_gen;

/* ---- errors ------------------------------------------------------------------------- */

/* The exception class for a library code that has no call-site specific meaning. */
static PyObject *exc_type_for(int err)
{
    if (err > -4096 && err < 0)
        return err == -ENOMEM ? PyExc_MemoryError : PyExc_OSError;
    switch (err) {
    case BA_ECONFLICT:
        return pyba_exc_conflict;
    case BA_ECORRUPT:
        return pyba_exc_corrupt;
    case BA_ENOTFOUND:
        return PyExc_KeyError;
    case BA_EEXIST:
    case BA_EINVAL:
    case BA_ESHAPE:
        return PyExc_ValueError;
    case BA_EDTYPE:
        return PyExc_TypeError;
    case BA_ERANGE:
        return PyExc_IndexError;
    case BA_ETOOBIG:
        return PyExc_MemoryError;
    default:
        return pyba_exc_error;
    }
}

PyObject *pyba_raise(int err, const char *name)
{
    const char *detail = ba_errmsg();
    const char *msg = detail && detail[0] ? detail : ba_strerror(err);
    PyObject *type = exc_type_for(err);
    PyObject *exc;

    if (err == BA_ENOTFOUND && name)
        exc = PyObject_CallFunction(type, "s", name);
    else if (type == PyExc_OSError)
        exc = PyObject_CallFunction(type, "is", -err, msg);
    else
        exc = PyObject_CallFunction(type, "s", msg);
    if (!exc)
        return NULL;
    /* Every exception carries the library code, so callers can tell BA_EEXIST from
     * BA_ESHAPE (both ValueError) without parsing messages. */
    PyObject *code = PyLong_FromLong(err);
    if (!code || PyObject_SetAttrString(exc, "code", code) < 0) {
        Py_XDECREF(code);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(code);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

int pyba_check_fork(unsigned long gen)
{
    if (gen == pyba_fork_gen)
        return 0;
    PyErr_SetString(pyba_exc_error,
                    "bigarray handle inherited across fork(): the child must open the "
                    "database anew (use multiprocessing's 'spawn' or 'forkserver')");
    return -1;
}

/* ---- conversions ---------------------------------------------------------------------- */

int pyba_shape_from_py(PyObject *seq, int64_t *shape)
{
    PyObject *fast = PySequence_Fast(seq, "shape must be a sequence of integers");
    if (!fast)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n < 1 || n > BA_MAX_DIMS) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "shape must have 1 to %d dimensions, not %zd", BA_MAX_DIMS,
                     n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *idx = PyNumber_Index(PySequence_Fast_GET_ITEM(fast, i));
        if (!idx) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_TypeError, "shape must be a sequence of integers");
            return -1;
        }
        long long d = PyLong_AsLongLong(idx);
        Py_DECREF(idx);
        if (d == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        if (d < 0) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "negative dimensions are not allowed");
            return -1;
        }
        shape[i] = (int64_t)d;
    }
    Py_DECREF(fast);
    return (int)n;
}

PyObject *pyba_tuple_from_i64(const int64_t *v, int n)
{
    PyObject *t = PyTuple_New(n);
    if (!t)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *x = PyLong_FromLongLong((long long)v[i]);
        if (!x) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, x);
    }
    return t;
}

int pyba_dtype_from_descr(PyArray_Descr *descr, ba_dtype *out)
{
    if (PyDataType_REFCHK(descr)) {
        PyErr_SetString(PyExc_TypeError, "dtypes holding Python objects cannot be stored");
        return -1;
    }
    if (PyDataType_HASSUBARRAY(descr)) {
        PyErr_SetString(PyExc_TypeError, "sub-array dtypes cannot be stored; add the "
                                         "sub-array's dimensions to the shape instead");
        return -1;
    }
    PyObject *str = PyObject_GetAttrString((PyObject *)descr, "str");
    if (!str)
        return -1;
    const char *text = PyUnicode_AsUTF8(str);
    if (!text) {
        Py_DECREF(str);
        return -1;
    }
    int rc = ba_dtype_parse(text, out);
    if (rc < 0) {
        PyErr_Format(PyExc_TypeError, "dtype %s cannot be stored: %s", text, ba_errmsg());
        Py_DECREF(str);
        return -1;
    }
    Py_DECREF(str);
    return 0;
}

int pyba_dict_set(PyObject *d, const char *key, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

static int dict_set_u64(PyObject *d, const char *key, uint64_t v)
{
    return pyba_dict_set(d, key, PyLong_FromUnsignedLongLong((unsigned long long)v));
}

PyObject *pyba_pager_stat_dict(const ba_pager_stat *st)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    int n = (int)(sizeof st->fault_hist / sizeof st->fault_hist[0]);
    PyObject *hist = PyTuple_New(n);
    if (!hist)
        goto fail;
    for (int i = 0; i < n; i++) {
        PyObject *x = PyLong_FromUnsignedLongLong((unsigned long long)st->fault_hist[i]);
        if (!x) {
            Py_DECREF(hist);
            goto fail;
        }
        PyTuple_SET_ITEM(hist, i, x);
    }
    if (PyDict_SetItemString(d, "fault_hist", hist) < 0) {
        Py_DECREF(hist);
        goto fail;
    }
    Py_DECREF(hist);
    if (dict_set_u64(d, "faults_read", st->faults_read) < 0 ||
        dict_set_u64(d, "faults_write", st->faults_write) < 0 ||
        dict_set_u64(d, "faults_remap", st->faults_remap) < 0 ||
        dict_set_u64(d, "loads", st->loads) < 0 ||
        dict_set_u64(d, "load_bytes", st->load_bytes) < 0 ||
        dict_set_u64(d, "load_errors", st->load_errors) < 0 ||
        dict_set_u64(d, "readahead_loads", st->readahead_loads) < 0 ||
        dict_set_u64(d, "readahead_hits", st->readahead_hits) < 0 ||
        dict_set_u64(d, "evictions", st->evictions) < 0 ||
        dict_set_u64(d, "spills", st->spills) < 0 ||
        dict_set_u64(d, "unspills", st->unspills) < 0 ||
        dict_set_u64(d, "invalidations", st->invalidations) < 0 ||
        dict_set_u64(d, "ram_used", st->ram_used) < 0 ||
        dict_set_u64(d, "ram_limit", st->ram_limit) < 0 ||
        dict_set_u64(d, "dirty_bytes", st->dirty_bytes) < 0 ||
        dict_set_u64(d, "fault_ns_total", st->fault_ns_total) < 0 ||
        dict_set_u64(d, "direct_loads", st->direct_loads) < 0 ||
        dict_set_u64(d, "direct_copies", st->direct_copies) < 0 ||
        dict_set_u64(d, "direct_bytes", st->direct_bytes) < 0)
        goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* ---- module functions ----------------------------------------------------------------- */

static PyObject *mod_version(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return PyUnicode_FromString(ba_version(NULL, NULL, NULL));
}

static PyObject *mod_strerror(PyObject *self, PyObject *arg)
{
    (void)self;
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    if (code < INT_MIN || code > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "error code out of range");
        return NULL;
    }
    return PyUnicode_FromString(ba_strerror((int)code));
}

static PyObject *mod_after_fork_child(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    pyba_fork_gen++;
    Py_RETURN_NONE;
}

static PyObject *mod_codec_parse(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *text = PyUnicode_AsUTF8(arg);
    if (!text)
        return NULL;
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    int rc = ba_codec_parse(text, &spec);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    char buf[64];
    return PyUnicode_FromString(ba_codec_format(spec.codec, spec.level, spec.filters, buf));
}

static PyMethodDef mod_methods[] = {
    {"version", mod_version, METH_NOARGS, "The C library's version string."},
    {"strerror", mod_strerror, METH_O, "The name of a library error code."},
    {"codec_canonical", mod_codec_parse, METH_O, "Parse codec text; return its canonical form."},
    {"_after_fork_child", mod_after_fork_child, METH_NOARGS,
     "Mark every existing handle as inherited (called in a forked child)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT,
    "_bigarray",
    "Low-level handles over the bigarray C library; use the bigarray package instead.",
    -1,
    mod_methods,
    NULL,
    NULL,
    NULL,
    NULL};

struct int_const {
    const char *name;
    long value;
};

static const struct int_const mod_consts[] = {{"ECONFLICT", BA_ECONFLICT},
                                              {"ECORRUPT", BA_ECORRUPT},
                                              {"ENOTFOUND", BA_ENOTFOUND},
                                              {"EEXIST", BA_EEXIST},
                                              {"EFULL", BA_EFULL},
                                              {"EINVAL", BA_EINVAL},
                                              {"ESHAPE", BA_ESHAPE},
                                              {"EREADONLY", BA_EREADONLY},
                                              {"EVERSION", BA_EVERSION},
                                              {"EDTYPE", BA_EDTYPE},
                                              {"ERANGE", BA_ERANGE},
                                              {"ENOTDB", BA_ENOTDB},
                                              {"ESTALE", BA_ESTALE},
                                              {"ETOOBIG", BA_ETOOBIG},
                                              {"EBUSY", BA_EBUSY},
                                              {"EFAILED", BA_EFAILED},
                                              {"PAGER_AUTO", BA_PAGER_AUTO},
                                              {"PAGER_UFFD", BA_PAGER_UFFD},
                                              {"PAGER_SIGSEGV", BA_PAGER_SIGSEGV},
                                              {"DB_CREATE", BA_DB_CREATE},
                                              {"DB_RDONLY", BA_DB_RDONLY},
                                              {"DB_NOSYNC", BA_DB_NOSYNC},
                                              {"DB_NOREADAHEAD", BA_DB_NOREADAHEAD},
                                              {"DB_NOZEROCOPY", BA_DB_NOZEROCOPY},
                                              {"DB_NOWRITEMAP", BA_DB_NOWRITEMAP},
                                              {"MAX_DIMS", BA_MAX_DIMS},
                                              {"NAME_MAX", BA_NAME_MAX},
                                              {"BLOCK_SIZE_DEFAULT", BA_BLOCK_SIZE_DEFAULT},
                                              {NULL, 0}};

static int add_exceptions(PyObject *m)
{
    pyba_exc_error = PyErr_NewExceptionWithDoc(
        "bigarray.Error",
        "Base class of bigarray's own errors. Every exception bigarray raises (this "
        "class, its subclasses, and the builtin ones) has a .code attribute holding the "
        "library error code (bigarray.ECONFLICT, ...; -errno for OS errors).",
        PyExc_Exception, NULL);
    if (!pyba_exc_error)
        return -1;
    pyba_exc_conflict = PyErr_NewExceptionWithDoc(
        "bigarray.ConflictError",
        "A newer commit changed what this commit changes (first committer wins). "
        "Nothing was written and the session keeps its changes: abort and redo.",
        pyba_exc_error, NULL);
    if (!pyba_exc_conflict)
        return -1;
    pyba_exc_corrupt = PyErr_NewExceptionWithDoc(
        "bigarray.CorruptError", "Stored bytes fail their checksum or format check.",
        pyba_exc_error, NULL);
    if (!pyba_exc_corrupt)
        return -1;
    if (PyModule_AddObjectRef(m, "Error", pyba_exc_error) < 0 ||
        PyModule_AddObjectRef(m, "ConflictError", pyba_exc_conflict) < 0 ||
        PyModule_AddObjectRef(m, "CorruptError", pyba_exc_corrupt) < 0)
        return -1;
    return 0;
}

PyMODINIT_FUNC PyInit__bigarray(void);

PyMODINIT_FUNC PyInit__bigarray(void)
{
    import_array();

    PyTypeObject *types[] = {&pyba_db_type, &pyba_session_type, &pyba_array_type, &pyba_view_type};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;

    PyObject *m = PyModule_Create(&mod_def);
    if (!m)
        return NULL;
    if (add_exceptions(m) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const char *dot = strrchr(types[i]->tp_name, '.');
        if (PyModule_AddObjectRef(m, dot ? dot + 1 : types[i]->tp_name, (PyObject *)types[i]) < 0)
            goto fail;
    }
    for (const struct int_const *c = mod_consts; c->name; c++)
        if (PyModule_AddIntConstant(m, c->name, c->value) < 0)
            goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
