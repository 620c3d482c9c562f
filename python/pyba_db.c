/* SPDX-License-Identifier: MIT */
/*
 * The Db and Session handle types of bigarray._bigarray. Db owns a ba_db, Session a
 * ba_session (and a reference to its Db object). Session also does the call
 * accounting described in pyba.h, which turns the C API's thread rules into
 * RuntimeError instead of undefined behaviour when Python threads share a session.
 */
#include "pyba.h"

#include <errno.h>

/* ---- Db -------------------------------------------------------------------------------- */

static int db_check(pyba_db *d)
{
    if (pyba_check_fork(d->gen) < 0)
        return -1;
    if (!d->db) {
        PyErr_SetString(PyExc_ValueError, "database is closed");
        return -1;
    }
    return 0;
}

/* A missing database is a missing file to Python users: FileNotFoundError naming the
 * path, with the library code in .code like every other error. */
static void raise_no_database(const char *cpath, int rc)
{
    PyObject *name = PyUnicode_DecodeFSDefault(cpath);
    if (!name)
        return;
    PyObject *exc = PyObject_CallFunction(
        PyExc_OSError, "isO", ENOENT, "no bigarray database (pass create=True to make one)", name);
    Py_DECREF(name);
    if (!exc)
        return;
    PyObject *code = PyLong_FromLong(rc);
    if (code && PyObject_SetAttrString(exc, "code", code) == 0)
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(code);
    Py_DECREF(exc);
}

/* Db(path, flags, pager, ram_limit, spill_dir, map_size, max_readers) */
static PyObject *db_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *path = NULL, *spill_obj = NULL, *spill = NULL;
    unsigned flags, max_readers;
    int pager;
    unsigned long long ram_limit, map_size;

    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "Db() takes positional arguments only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O&IiKOKI", PyUnicode_FSConverter, &path, &flags, &pager,
                          &ram_limit, &spill_obj, &map_size, &max_readers))
        return NULL;
    if (spill_obj != Py_None && !PyUnicode_FSConverter(spill_obj, &spill)) {
        Py_DECREF(path);
        return NULL;
    }

    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = flags;
    o.pager = pager;
    o.ram_limit = ram_limit;
    o.spill_dir = spill ? PyBytes_AS_STRING(spill) : NULL;
    o.map_size = map_size;
    o.max_readers = max_readers;

    ba_db *db = NULL;
    int rc;
    const char *cpath = PyBytes_AS_STRING(path);
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_db_open(cpath, &o, &db);
    PyEval_RestoreThread(ts);
    Py_XDECREF(spill);
    if (rc < 0) {
        if (rc == BA_ENOTFOUND) {
            raise_no_database(cpath, rc);
            Py_DECREF(path);
            return NULL;
        }
        Py_DECREF(path);
        return pyba_raise(rc, NULL);
    }
    Py_DECREF(path);

    pyba_db *self = (pyba_db *)type->tp_alloc(type, 0);
    if (!self) {
        ba_db_close(db);
        return NULL;
    }
    self->db = db;
    self->gen = pyba_fork_gen;
    self->flags = flags;
    return (PyObject *)self;
}

static void db_close_handle(pyba_db *self)
{
    ba_db *db = self->db;
    self->db = NULL;
    if (!db || self->gen != pyba_fork_gen)
        return; /* inherited across fork(): never touch the parent's LMDB handles */
    PyThreadState *ts = PyEval_SaveThread();
    ba_db_close(db);
    PyEval_RestoreThread(ts);
}

static void db_dealloc(pyba_db *self)
{
    db_close_handle(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *db_close(pyba_db *self, PyObject *noargs)
{
    (void)noargs;
    if (pyba_check_fork(self->gen) < 0)
        return NULL;
    db_close_handle(self);
    Py_RETURN_NONE;
}

static PyObject *db_pager(pyba_db *self, PyObject *noargs)
{
    (void)noargs;
    if (db_check(self) < 0)
        return NULL;
    return PyLong_FromLong(ba_db_pager(self->db));
}

static PyObject *db_stat(pyba_db *self, PyObject *noargs)
{
    (void)noargs;
    if (db_check(self) < 0)
        return NULL;
    ba_db_stat st = {.size = sizeof st};
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_db_stat_get(self->db, &st);
    PyEval_RestoreThread(ts);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (pyba_dict_set(d, "last_commit", PyLong_FromUnsignedLongLong(st.last_commit)) < 0 ||
        pyba_dict_set(d, "map_size", PyLong_FromUnsignedLongLong(st.map_size)) < 0 ||
        pyba_dict_set(d, "file_size", PyLong_FromUnsignedLongLong(st.file_size)) < 0 ||
        pyba_dict_set(d, "page_size", PyLong_FromUnsignedLongLong(st.page_size)) < 0 ||
        pyba_dict_set(d, "pages_used", PyLong_FromUnsignedLongLong(st.pages_used)) < 0 ||
        pyba_dict_set(d, "pages_free", PyLong_FromUnsignedLongLong(st.pages_free)) < 0 ||
        pyba_dict_set(d, "narrays", PyLong_FromUnsignedLongLong(st.narrays)) < 0 ||
        pyba_dict_set(d, "readers", PyLong_FromUnsignedLongLong(st.readers)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *db_pager_stat(pyba_db *self, PyObject *noargs)
{
    (void)noargs;
    if (db_check(self) < 0)
        return NULL;
    ba_pager_stat st = {.size = sizeof st};
    int rc = ba_db_pager_stat(self->db, &st);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    return pyba_pager_stat_dict(&st);
}

/* Problems found by ba_db_verify(), collected with the GIL released and converted to
 * Python objects afterwards. At most VERIFY_KEEP are kept; the count is exact. */
#define VERIFY_KEEP 10000

struct verify_item {
    char *array;
    uint64_t array_id;
    int64_t blkno;
    int code;
    char *what;
};

struct verify_ctx {
    struct verify_item *items;
    size_t n, cap;
    int oom;
};

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = PyMem_RawMalloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void verify_cb(const ba_problem *p, void *ctx_)
{
    struct verify_ctx *ctx = ctx_;
    if (ctx->n >= VERIFY_KEEP || ctx->oom)
        return;
    if (ctx->n == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 16;
        struct verify_item *items = PyMem_RawRealloc(ctx->items, cap * sizeof *items);
        if (!items) {
            ctx->oom = 1;
            return;
        }
        ctx->items = items;
        ctx->cap = cap;
    }
    struct verify_item *it = &ctx->items[ctx->n++];
    it->array = dup_or_null(p->array);
    it->array_id = p->array_id;
    it->blkno = p->blkno;
    it->code = p->code;
    it->what = dup_or_null(p->what ? p->what : "");
    if ((p->array && !it->array) || !it->what)
        ctx->oom = 1;
}

/* verify() -> (list of (array or None, array_id, blkno, code, what), count) */
static PyObject *db_verify(pyba_db *self, PyObject *noargs)
{
    (void)noargs;
    if (db_check(self) < 0)
        return NULL;
    struct verify_ctx ctx = {0};
    uint64_t nproblems = 0;
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_db_verify(self->db, verify_cb, &ctx, &nproblems);
    PyEval_RestoreThread(ts);

    PyObject *list = NULL, *result = NULL;
    if (rc < 0) {
        pyba_raise(rc, NULL);
        goto out;
    }
    if (ctx.oom) {
        PyErr_NoMemory();
        goto out;
    }
    list = PyList_New(0);
    if (!list)
        goto out;
    for (size_t i = 0; i < ctx.n; i++) {
        struct verify_item *it = &ctx.items[i];
        PyObject *t = Py_BuildValue("(zKLis)", it->array, (unsigned long long)it->array_id,
                                    (long long)it->blkno, it->code, it->what);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            goto out;
        }
        Py_DECREF(t);
    }
    result = Py_BuildValue("(OK)", list, (unsigned long long)nproblems);
out:
    Py_XDECREF(list);
    for (size_t i = 0; i < ctx.n; i++) {
        PyMem_RawFree(ctx.items[i].array);
        PyMem_RawFree(ctx.items[i].what);
    }
    PyMem_RawFree(ctx.items);
    return result;
}

static PyObject *db_compact(pyba_db *self, PyObject *arg)
{
    PyObject *path = NULL;
    if (db_check(self) < 0 || !PyUnicode_FSConverter(arg, &path))
        return NULL;
    int rc;
    const char *cpath = PyBytes_AS_STRING(path);
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_db_compact(self->db, cpath);
    PyEval_RestoreThread(ts);
    Py_DECREF(path);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *db_get_closed(pyba_db *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->db == NULL);
}

static PyObject *db_get_flags(pyba_db *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->flags);
}

static PyMethodDef db_methods[] = {
    {"close", (PyCFunction)db_close, METH_NOARGS, "Drop the handle (live sessions keep it)."},
    {"pager", (PyCFunction)db_pager, METH_NOARGS, "The pager backend in use (PAGER_*)."},
    {"stat", (PyCFunction)db_stat, METH_NOARGS, "Database counters as a dict."},
    {"pager_stat", (PyCFunction)db_pager_stat, METH_NOARGS, "Pager counters as a dict."},
    {"verify", (PyCFunction)db_verify, METH_NOARGS, "Walk the newest snapshot."},
    {"compact", (PyCFunction)db_compact, METH_O, "Write a compacted copy."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef db_getset[] = {
    {"closed", (getter)db_get_closed, NULL, "True once closed.", NULL},
    {"flags", (getter)db_get_flags, NULL, "BA_DB_* flags given at open.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pyba_db_type = {
    .ob_base = {PyObject_HEAD_INIT(NULL) 0},
    .tp_name = "bigarray._bigarray.Db",
    .tp_basicsize = sizeof(pyba_db),
    .tp_dealloc = (destructor)db_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Db(path, flags, pager, ram_limit, spill_dir, map_size, max_readers)",
    .tp_methods = db_methods,
    .tp_getset = db_getset,
    .tp_new = db_new,
};

/* ---- Session ------------------------------------------------------------------------------ */

int pyba_session_check(pyba_session *ss, int exclusive)
{
    if (pyba_check_fork(ss->gen) < 0)
        return -1;
    if (!ss->s) {
        PyErr_SetString(PyExc_ValueError, "session is closed");
        return -1;
    }
    if (ss->exclusive || (exclusive && ss->shared)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the session is busy in another thread (commit, abort, append, "
                        "resize, drop or preload runs there); use one session per thread "
                        "(db.session())");
        return -1;
    }
    return 0;
}

static PyObject *session_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    pyba_db *d;
    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "Session() takes positional arguments only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!", &pyba_db_type, &d) || db_check(d) < 0)
        return NULL;
    ba_session *s = NULL;
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_session_begin(d->db, &s);
    PyEval_RestoreThread(ts);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    pyba_session *self = (pyba_session *)type->tp_alloc(type, 0);
    if (!self) {
        ba_session_end(s);
        return NULL;
    }
    self->s = s;
    Py_INCREF(d);
    self->db = d;
    self->gen = pyba_fork_gen;
    return (PyObject *)self;
}

static void session_end_handle(pyba_session *self)
{
    ba_session *s = self->s;
    self->s = NULL;
    if (!s || self->gen != pyba_fork_gen)
        return;
    PyThreadState *ts = PyEval_SaveThread();
    ba_session_end(s);
    PyEval_RestoreThread(ts);
}

static void session_dealloc(pyba_session *self)
{
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    session_end_handle(self);
    Py_CLEAR(self->db);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *session_end(pyba_session *self, PyObject *noargs)
{
    (void)noargs;
    if (pyba_check_fork(self->gen) < 0)
        return NULL;
    if (self->s && pyba_session_check(self, 1) < 0)
        return NULL;
    session_end_handle(self);
    Py_RETURN_NONE;
}

/* Run commit or abort with the GIL released and the session marked busy. */
static PyObject *session_txn(pyba_session *self, int (*fn)(ba_session *))
{
    if (pyba_session_check(self, 1) < 0)
        return NULL;
    int rc;
    self->exclusive = 1;
    PyThreadState *ts = PyEval_SaveThread();
    rc = fn(self->s);
    PyEval_RestoreThread(ts);
    self->exclusive = 0;
    if (rc < 0)
        return pyba_raise(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *session_commit(pyba_session *self, PyObject *noargs)
{
    (void)noargs;
    return session_txn(self, ba_session_commit);
}

static PyObject *session_abort(pyba_session *self, PyObject *noargs)
{
    (void)noargs;
    return session_txn(self, ba_session_abort);
}

static PyObject *session_snapshot(pyba_session *self, PyObject *noargs)
{
    (void)noargs;
    if (pyba_session_check(self, 0) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong((unsigned long long)ba_session_snapshot(self->s));
}

static PyObject *session_dirty(pyba_session *self, PyObject *noargs)
{
    (void)noargs;
    if (pyba_session_check(self, 0) < 0)
        return NULL;
    return PyBool_FromLong(ba_session_dirty(self->s));
}

/* create(name, dtype, shape, order, block_size, codec or None) -> Array */
static PyObject *session_create(pyba_session *self, PyObject *args)
{
    const char *name, *codec;
    PyArray_Descr *descr = NULL;
    PyObject *shape;
    int order;
    unsigned long block_size;

    if (!PyArg_ParseTuple(args, "sO&OCkz", &name, PyArray_DescrConverter, &descr, &shape, &order,
                          &block_size, &codec))
        return NULL;
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    int rc = pyba_dtype_from_descr(descr, &spec.dtype);
    Py_DECREF(descr);
    if (rc < 0)
        return NULL;
    spec.ndim = pyba_shape_from_py(shape, spec.shape);
    if (spec.ndim < 0)
        return NULL;
    if (order != 'C' && order != 'F') {
        PyErr_SetString(PyExc_ValueError, "order must be 'C' or 'F'");
        return NULL;
    }
    spec.order = (char)order;
    if (block_size > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "block_size must be a power of two <= 1 GiB");
        return NULL;
    }
    spec.block_size = (uint32_t)block_size;
    if (codec) {
        rc = ba_codec_parse(codec, &spec);
        if (rc < 0)
            return pyba_raise(rc, NULL);
    }
    if (pyba_session_check(self, 1) < 0)
        return NULL;
    ba_array *a = NULL;
    rc = ba_array_create(self->s, name, &spec, &a);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    return pyba_array_wrap(a, self);
}

static PyObject *session_open(pyba_session *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name || pyba_session_check(self, 0) < 0)
        return NULL;
    ba_array *a = NULL;
    int rc = ba_array_open(self->s, name, &a);
    if (rc < 0)
        return pyba_raise(rc, name);
    return pyba_array_wrap(a, self);
}

static PyObject *session_drop(pyba_session *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name || pyba_session_check(self, 1) < 0)
        return NULL;
    int rc;
    self->exclusive = 1;
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_array_drop(self->s, name);
    PyEval_RestoreThread(ts);
    self->exclusive = 0;
    if (rc < 0)
        return pyba_raise(rc, name);
    Py_RETURN_NONE;
}

static PyObject *session_copy(pyba_session *self, PyObject *args)
{
    const char *src, *dst;
    if (!PyArg_ParseTuple(args, "ss", &src, &dst) || pyba_session_check(self, 1) < 0)
        return NULL;
    int rc;
    self->exclusive = 1;
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_array_copy(self->s, src, dst);
    PyEval_RestoreThread(ts);
    self->exclusive = 0;
    if (rc < 0)
        return pyba_raise(rc, src);
    Py_RETURN_NONE;
}

static int list_cb(const char *name, void *ctx)
{
    PyObject *s = PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name), "surrogateescape");
    if (!s)
        return 1;
    int rc = PyList_Append((PyObject *)ctx, s);
    Py_DECREF(s);
    return rc < 0 ? 1 : 0;
}

static PyObject *session_list(pyba_session *self, PyObject *noargs)
{
    (void)noargs;
    if (pyba_session_check(self, 0) < 0)
        return NULL;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    int rc = ba_array_list(self->s, list_cb, list);
    if (PyErr_Occurred()) {
        Py_DECREF(list);
        return NULL;
    }
    if (rc < 0) {
        Py_DECREF(list);
        return pyba_raise(rc, NULL);
    }
    return list;
}

static PyObject *session_get_closed(pyba_session *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->s == NULL);
}

static PyMethodDef session_methods[] = {
    {"end", (PyCFunction)session_end, METH_NOARGS, "Abort and drop the handle."},
    {"commit", (PyCFunction)session_commit, METH_NOARGS, "Commit (GIL released)."},
    {"abort", (PyCFunction)session_abort, METH_NOARGS, "Abort (GIL released)."},
    {"snapshot", (PyCFunction)session_snapshot, METH_NOARGS, "Snapshot commit number."},
    {"dirty", (PyCFunction)session_dirty, METH_NOARGS, "True with uncommitted changes."},
    {"create", (PyCFunction)session_create, METH_VARARGS,
     "create(name, dtype, shape, order, block_size, codec) -> Array"},
    {"open", (PyCFunction)session_open, METH_O, "open(name) -> Array"},
    {"drop", (PyCFunction)session_drop, METH_O, "drop(name)"},
    {"copy", (PyCFunction)session_copy, METH_VARARGS, "copy(src, dst)"},
    {"list", (PyCFunction)session_list, METH_NOARGS, "Array names in byte order."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef session_getset[] = {
    {"closed", (getter)session_get_closed, NULL, "True once ended.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pyba_session_type = {
    .ob_base = {PyObject_HEAD_INIT(NULL) 0},
    .tp_name = "bigarray._bigarray.Session",
    .tp_basicsize = sizeof(pyba_session),
    .tp_dealloc = (destructor)session_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Session(db)",
    .tp_methods = session_methods,
    .tp_getset = session_getset,
    .tp_weaklistoffset = offsetof(pyba_session, weakreflist),
    .tp_new = session_new,
};
