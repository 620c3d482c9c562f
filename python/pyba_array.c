/* SPDX-License-Identifier: MIT */
/*
 * The Array handle type of bigarray._bigarray: one ba_array opened in a session.
 * It describes the array (info, shape), changes it (resize, append) and makes views
 * (View objects, see pyba_view.c) from a Python index key of basic items: integers,
 * slices, Ellipsis and None. Everything numpy-specific about keys (booleans, lists,
 * arrays) is decided by the Python layer before a key reaches view().
 */
#include "pyba.h"

#include <string.h>

static int array_check(pyba_array *self, int exclusive)
{
    if (pyba_check_fork(self->gen) < 0)
        return -1;
    if (!self->a) {
        PyErr_SetString(PyExc_ValueError, "array handle is closed");
        return -1;
    }
    return pyba_session_check(self->session, exclusive);
}

PyObject *pyba_array_wrap(ba_array *a, pyba_session *ss)
{
    pyba_array *self = PyObject_New(pyba_array, &pyba_array_type);
    if (!self) {
        ba_array_close(a);
        return NULL;
    }
    self->a = a;
    Py_INCREF(ss);
    self->session = ss;
    self->gen = pyba_fork_gen;
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static void array_dealloc(pyba_array *self)
{
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->a && self->gen == pyba_fork_gen)
        ba_array_close(self->a);
    self->a = NULL;
    Py_CLEAR(self->session);
    PyObject_Free(self);
}

static PyObject *array_close(pyba_array *self, PyObject *noargs)
{
    (void)noargs;
    if (pyba_check_fork(self->gen) < 0)
        return NULL;
    ba_array_close(self->a);
    self->a = NULL;
    Py_RETURN_NONE;
}

static int array_info(pyba_array *self, ba_array_info *info)
{
    memset(info, 0, sizeof *info);
    info->size = sizeof *info;
    int rc = ba_array_info_get(self->a, info);
    if (rc < 0) {
        pyba_raise(rc, NULL);
        return -1;
    }
    return 0;
}

static PyObject *array_get_info(pyba_array *self, PyObject *noargs)
{
    (void)noargs;
    ba_array_info in;
    if (array_check(self, 0) < 0 || array_info(self, &in) < 0)
        return NULL;
    char dtype[BA_DTYPE_STRLEN], codec[64];
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (pyba_dict_set(d, "name", PyUnicode_FromString(in.name ? in.name : "")) < 0 ||
        pyba_dict_set(d, "id", PyLong_FromUnsignedLongLong(in.id)) < 0 ||
        pyba_dict_set(d, "dtype", PyUnicode_FromString(ba_dtype_format(&in.dtype, dtype))) < 0 ||
        pyba_dict_set(d, "ndim", PyLong_FromLong(in.ndim)) < 0 ||
        pyba_dict_set(d, "shape", pyba_tuple_from_i64(in.shape, in.ndim)) < 0 ||
        pyba_dict_set(d, "strides", pyba_tuple_from_i64(in.strides, in.ndim)) < 0 ||
        pyba_dict_set(d, "order", PyUnicode_FromStringAndSize(&in.order, 1)) < 0 ||
        pyba_dict_set(d, "block_size", PyLong_FromUnsignedLong(in.block_size)) < 0 ||
        pyba_dict_set(
            d, "codec",
            PyUnicode_FromString(ba_codec_format(in.codec, in.level, in.filters, codec))) < 0 ||
        pyba_dict_set(d, "nbytes", PyLong_FromUnsignedLongLong(in.nbytes)) < 0 ||
        pyba_dict_set(d, "stored_bytes", PyLong_FromUnsignedLongLong(in.stored_bytes)) < 0 ||
        pyba_dict_set(d, "stored_blocks", PyLong_FromUnsignedLongLong(in.stored_blocks)) < 0 ||
        pyba_dict_set(d, "created_seq", PyLong_FromUnsignedLongLong(in.created_seq)) < 0 ||
        pyba_dict_set(d, "changed_seq", PyLong_FromUnsignedLongLong(in.changed_seq)) < 0 ||
        pyba_dict_set(d, "dirty", PyBool_FromLong(in.dirty)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *array_shape(pyba_array *self, PyObject *noargs)
{
    (void)noargs;
    ba_array_info in;
    if (array_check(self, 0) < 0 || array_info(self, &in) < 0)
        return NULL;
    return pyba_tuple_from_i64(in.shape, in.ndim);
}

static PyObject *array_resize(pyba_array *self, PyObject *arg)
{
    int64_t shape[BA_MAX_DIMS];
    int ndim = pyba_shape_from_py(arg, shape);
    if (ndim < 0 || array_check(self, 1) < 0)
        return NULL;
    int rc = ba_array_resize(self->a, ndim, shape);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    Py_RETURN_NONE;
}

/* append(ndarray): the Python layer has made the values contiguous in the array's
 * order and of its dtype; the library checks shapes and dtypes again. */
static PyObject *array_append(pyba_array *self, PyObject *arg)
{
    if (!PyArray_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "append() needs a numpy.ndarray");
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)arg;
    ba_array_info in;
    if (array_check(self, 1) < 0 || array_info(self, &in) < 0)
        return NULL;
    int contiguous = in.order == 'F' ? PyArray_IS_F_CONTIGUOUS(arr) : PyArray_IS_C_CONTIGUOUS(arr);
    if (!contiguous) {
        PyErr_Format(PyExc_ValueError, "append() needs values contiguous in %c order", in.order);
        return NULL;
    }
    int ndim = PyArray_NDIM(arr);
    if (ndim > BA_MAX_DIMS) {
        PyErr_SetString(PyExc_ValueError, "too many dimensions");
        return NULL;
    }
    int64_t shape[BA_MAX_DIMS + 1];
    for (int i = 0; i < ndim; i++)
        shape[i] = (int64_t)PyArray_DIM(arr, i);
    ba_dtype dt;
    if (pyba_dtype_from_descr(PyArray_DESCR(arr), &dt) < 0)
        return NULL;
    const void *data = PyArray_DATA(arr);
    int rc;
    self->session->exclusive = 1;
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_array_append(self->a, data, ndim, shape, &dt);
    PyEval_RestoreThread(ts);
    self->session->exclusive = 0;
    if (rc < 0)
        return pyba_raise(rc, NULL);
    Py_RETURN_NONE;
}

/* One bound of a slice: None is BA_SLICE_NONE; numbers beyond int64 clamp, as numpy
 * clamps slice bounds. */
static int slice_bound(PyObject *o, int64_t *out)
{
    if (o == Py_None) {
        *out = BA_SLICE_NONE;
        return 0;
    }
    PyObject *idx = PyNumber_Index(o);
    if (!idx) {
        PyErr_SetString(PyExc_TypeError, "slice indices must be integers or None or have an "
                                         "__index__ method");
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0)
        v = INT64_MAX;
    else if (overflow < 0 || v == INT64_MIN)
        v = INT64_MIN + 1;
    *out = (int64_t)v;
    return 0;
}

#define MAX_KEY_ITEMS (2 * BA_MAX_DIMS + 1)

/* Convert a tuple of basic index items into slices, with numpy's IndexError for
 * the mistakes numpy reports as IndexError. Returns the count or -1. */
static int key_to_slices(PyObject *key, int ndim, ba_slice *sl)
{
    Py_ssize_t n = PyTuple_GET_SIZE(key);
    if (n > MAX_KEY_ITEMS) {
        PyErr_SetString(PyExc_IndexError, "too many indices");
        return -1;
    }
    int nell = 0, nreal = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyTuple_GET_ITEM(key, i);
        ba_slice *s = &sl[i];
        s->start = s->stop = s->step = BA_SLICE_NONE;
        if (k == Py_None) {
            s->kind = BA_SLICE_NEWAXIS;
        } else if (k == Py_Ellipsis) {
            s->kind = BA_SLICE_ELLIPSIS;
            nell++;
        } else if (PySlice_Check(k)) {
            PySliceObject *p = (PySliceObject *)k;
            s->kind = BA_SLICE_RANGE;
            if (slice_bound(p->start, &s->start) < 0 || slice_bound(p->stop, &s->stop) < 0 ||
                slice_bound(p->step, &s->step) < 0)
                return -1;
            nreal++;
        } else if (!PyBool_Check(k) && PyIndex_Check(k)) {
            PyObject *idx = PyNumber_Index(k);
            if (!idx)
                return -1;
            int overflow;
            long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
            Py_DECREF(idx);
            if (v == -1 && PyErr_Occurred())
                return -1;
            if (overflow || v == INT64_MIN) {
                PyErr_SetString(PyExc_IndexError, "index out of bounds");
                return -1;
            }
            s->kind = BA_SLICE_INDEX;
            s->start = (int64_t)v;
            nreal++;
        } else {
            PyErr_SetString(PyExc_IndexError,
                            "only integers, slices (`:`), ellipsis (`...`) and numpy.newaxis "
                            "(`None`) make views; other indices go through numpy");
            return -1;
        }
    }
    if (nell > 1) {
        PyErr_SetString(PyExc_IndexError, "an index can only have a single ellipsis ('...')");
        return -1;
    }
    if (nreal > ndim) {
        PyErr_Format(PyExc_IndexError,
                     "too many indices for array: array is %d-dimensional, but %d were "
                     "indexed",
                     ndim, nreal);
        return -1;
    }
    return (int)n;
}

/* view(key tuple or None, readonly) -> View */
static PyObject *array_view(pyba_array *self, PyObject *args)
{
    PyObject *key;
    int readonly;
    if (!PyArg_ParseTuple(args, "Op", &key, &readonly))
        return NULL;
    ba_array_info in;
    if (array_check(self, 0) < 0 || array_info(self, &in) < 0)
        return NULL;
    ba_slice sl[MAX_KEY_ITEMS];
    int nsl = 0;
    if (key != Py_None) {
        if (!PyTuple_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "view() needs a tuple key");
            return NULL;
        }
        nsl = key_to_slices(key, in.ndim, sl);
        if (nsl < 0)
            return NULL;
    }
    if (self->session->db->flags & BA_DB_RDONLY)
        readonly = 1;
    ba_view v;
    memset(&v, 0, sizeof v);
    int rc = ba_array_view(self->a, nsl ? sl : NULL, nsl, readonly ? BA_VIEW_READONLY : 0, &v);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    return pyba_view_wrap(&v, self->session, readonly);
}

static PyObject *array_pager_stat(pyba_array *self, PyObject *noargs)
{
    (void)noargs;
    if (array_check(self, 0) < 0)
        return NULL;
    ba_pager_stat st = {.size = sizeof st};
    int rc = ba_array_pager_stat(self->a, &st);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    return pyba_pager_stat_dict(&st);
}

/* fault_error() -> None, or (code, blkno, message) of the last fault on this array's
 * views that could not be resolved (and clears it). */
static PyObject *array_fault_error(pyba_array *self, PyObject *noargs)
{
    (void)noargs;
    if (array_check(self, 0) < 0)
        return NULL;
    int64_t blkno = -1;
    int rc = ba_array_fault_error(self->a, &blkno);
    if (rc == 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(iLs)", rc, (long long)blkno, ba_errmsg());
}

static PyObject *array_get_closed(pyba_array *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->a == NULL);
}

static PyObject *array_get_session(pyba_array *self, void *closure)
{
    (void)closure;
    Py_INCREF(self->session);
    return (PyObject *)self->session;
}

static PyMethodDef array_methods[] = {
    {"close", (PyCFunction)array_close, METH_NOARGS, "Drop the handle."},
    {"info", (PyCFunction)array_get_info, METH_NOARGS, "Describe the array (dict)."},
    {"shape", (PyCFunction)array_shape, METH_NOARGS, "The shape as this session sees it."},
    {"resize", (PyCFunction)array_resize, METH_O, "resize(shape)"},
    {"append", (PyCFunction)array_append, METH_O, "append(ndarray) (GIL released)"},
    {"view", (PyCFunction)array_view, METH_VARARGS, "view(key or None, readonly) -> View"},
    {"pager_stat", (PyCFunction)array_pager_stat, METH_NOARGS, "Pager counters (dict)."},
    {"fault_error", (PyCFunction)array_fault_error, METH_NOARGS,
     "The last unresolved fault: None or (code, blkno, message)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef array_getset[] = {
    {"closed", (getter)array_get_closed, NULL, "True once closed.", NULL},
    {"session", (getter)array_get_session, NULL, "The Session object.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pyba_array_type = {
    .ob_base = {PyObject_HEAD_INIT(NULL) 0},
    .tp_name = "bigarray._bigarray.Array",
    .tp_basicsize = sizeof(pyba_array),
    .tp_dealloc = (destructor)array_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An array handle; made by Session.create() and Session.open().",
    .tp_methods = array_methods,
    .tp_getset = array_getset,
    .tp_weaklistoffset = offsetof(pyba_array, weakreflist),
};
