/* SPDX-License-Identifier: MIT */
/*
 * The View type of bigarray._bigarray: the owner of one ba_view (one mapping of part
 * of an array). numpy arrays made by to_numpy() point into the mapping and hold the
 * View as their base, so the mapping is released (ba_view_release) only when the last
 * of them is gone. preload() and dlpack() act on the whole view or on a numpy array
 * lying inside it (a slice of an array made by to_numpy()): the address range is
 * checked against the view's, so a stray array can never name memory that is not
 * this mapping's.
 */
#include "pyba.h"

#include <dlpack/dlpack.h>
#include <string.h>

PyObject *pyba_view_wrap(ba_view *v, pyba_session *ss, int readonly)
{
    pyba_view *self = PyObject_New(pyba_view, &pyba_view_type);
    if (!self) {
        ba_view_release(v);
        return NULL;
    }
    self->v = *v;
    v->mapping = NULL;
    Py_INCREF(ss);
    self->session = ss;
    self->gen = pyba_fork_gen;
    self->readonly = readonly;
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static void view_dealloc(pyba_view *self)
{
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* In a forked child the mapping is gone already and the library's state belongs to
     * the parent: leak the handle. */
    if (self->gen == pyba_fork_gen)
        ba_view_release(&self->v);
    Py_CLEAR(self->session);
    PyObject_Free(self);
}

/* The byte range [*lo, *hi) covered by the elements of a strided layout; 0 if empty. */
static int layout_extent(uintptr_t data, int ndim, const int64_t *shape, const int64_t *strides,
                         uint64_t itemsize, uintptr_t *lo, uintptr_t *hi)
{
    int64_t neg = 0, pos = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            return 0;
        int64_t span = (shape[i] - 1) * strides[i];
        if (span < 0)
            neg += span;
        else
            pos += span;
    }
    *lo = data - (uintptr_t)(-neg);
    *hi = data + (uintptr_t)pos + (uintptr_t)itemsize;
    return 1;
}

/* Describe the whole view (sub is None) or the numpy array sub inside it as a ba_view
 * sharing this view's mapping. with_dtype: take sub's dtype (DLPack needs it);
 * otherwise only its item size matters. */
static int view_describe(pyba_view *self, PyObject *sub, int with_dtype, ba_view *out)
{
    *out = self->v;
    if (sub == Py_None)
        return 0;
    if (!PyArray_Check(sub)) {
        PyErr_SetString(PyExc_TypeError, "expected a numpy.ndarray");
        return -1;
    }
    PyArrayObject *arr = (PyArrayObject *)sub;
    int ndim = PyArray_NDIM(arr);
    if (ndim > BA_MAX_DIMS) {
        PyErr_SetString(PyExc_ValueError, "too many dimensions");
        return -1;
    }
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        out->shape[i] = (int64_t)PyArray_DIM(arr, i);
        out->strides[i] = (int64_t)PyArray_STRIDE(arr, i);
    }
    PyArray_Descr *descr = PyArray_DESCR(arr);
    if (with_dtype) {
        if (pyba_dtype_from_descr(descr, &out->dtype) < 0)
            return -1;
    } else {
        memset(&out->dtype, 0, sizeof out->dtype);
        out->dtype.kind = 'V';
        out->dtype.byteorder = '|';
        out->dtype.itemsize = (uint32_t)descr->elsize;
    }
    uintptr_t lo, hi, vlo, vhi;
    uintptr_t data = (uintptr_t)PyArray_DATA(arr);
    if (!layout_extent(data, ndim, out->shape, out->strides, out->dtype.itemsize, &lo, &hi)) {
        out->data = self->v.data; /* empty: nothing to check, nothing to load */
        return 0;
    }
    if (!layout_extent((uintptr_t)self->v.data, self->v.ndim, self->v.shape, self->v.strides,
                       self->v.dtype.itemsize, &vlo, &vhi) ||
        lo < vlo || hi > vhi) {
        PyErr_SetString(PyExc_ValueError, "the array does not lie inside this bigarray view");
        return -1;
    }
    out->data = (void *)data;
    return 0;
}

/* to_numpy(dtype) -> numpy.ndarray over the mapping, with this View as its base. The
 * dtype may be any numpy dtype of the view's item size (record dtypes are stored as
 * V<n> and given their fields back here). */
static PyObject *view_to_numpy(pyba_view *self, PyObject *arg)
{
    PyArray_Descr *descr = NULL;
    if (pyba_check_fork(self->gen) < 0 || !PyArray_DescrConverter(arg, &descr))
        return NULL;
    if (descr->elsize != (int)self->v.dtype.itemsize || PyDataType_HASSUBARRAY(descr) ||
        PyDataType_REFCHK(descr)) {
        PyErr_Format(PyExc_TypeError,
                     "dtype of item size %d (no objects, no sub-array) needed for this view",
                     (int)self->v.dtype.itemsize);
        Py_DECREF(descr);
        return NULL;
    }
    npy_intp dims[BA_MAX_DIMS], strides[BA_MAX_DIMS];
    for (int i = 0; i < self->v.ndim; i++) {
        dims[i] = (npy_intp)self->v.shape[i];
        strides[i] = (npy_intp)self->v.strides[i];
    }
    int flags = self->readonly ? 0 : NPY_ARRAY_WRITEABLE;
    /* PyArray_NewFromDescr steals descr. */
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, descr, self->v.ndim, dims, strides,
                                         self->v.data, flags, NULL);
    if (!arr)
        return NULL;
    Py_INCREF(self);
    /* Steals the reference to self, also on failure. */
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

/* preload(sub or None, write): load (and with write, dirty) every block under the
 * view or under sub, raising the load error instead of taking SIGBUS later. */
static PyObject *view_preload(pyba_view *self, PyObject *args)
{
    PyObject *sub;
    int write;
    if (!PyArg_ParseTuple(args, "Op", &sub, &write) || pyba_check_fork(self->gen) < 0)
        return NULL;
    if (write && self->readonly) {
        PyErr_SetString(PyExc_ValueError, "preload(write=True) of a read-only view");
        return NULL;
    }
    ba_view v;
    if (view_describe(self, sub, 0, &v) < 0)
        return NULL;
    if (ba_view_size(&v) == 0)
        Py_RETURN_NONE;
    pyba_session *ss = self->session;
    if (ss->exclusive) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the session is busy in another thread (commit, abort, append, "
                        "resize or drop runs there)");
        return NULL;
    }
    int rc;
    ss->shared++;
    PyThreadState *ts = PyEval_SaveThread();
    rc = ba_view_preload(&v, write ? BA_PRELOAD_WRITE : 0);
    PyEval_RestoreThread(ts);
    ss->shared--;
    if (rc < 0)
        return pyba_raise(rc, NULL);
    Py_RETURN_NONE;
}

static void dlpack_capsule_free(PyObject *capsule)
{
    if (PyCapsule_IsValid(capsule, "used_dltensor"))
        return; /* the consumer owns the tensor now */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    DLManagedTensor *m = PyCapsule_GetPointer(capsule, "dltensor");
    if (m && m->deleter)
        m->deleter(m);
    else if (!m)
        PyErr_WriteUnraisable(capsule);
    PyErr_Restore(type, value, tb);
}

/* dlpack(sub or None) -> PyCapsule "dltensor" holding its own reference to the
 * mapping (ba_view_to_dlpack). */
static PyObject *view_dlpack(pyba_view *self, PyObject *sub)
{
    if (pyba_check_fork(self->gen) < 0)
        return NULL;
    ba_view v;
    if (view_describe(self, sub, 1, &v) < 0)
        return NULL;
    DLManagedTensor *m = NULL;
    int rc = ba_view_to_dlpack(&v, &m);
    if (rc < 0)
        return pyba_raise(rc, NULL);
    PyObject *cap = PyCapsule_New(m, "dltensor", dlpack_capsule_free);
    if (!cap && m->deleter)
        m->deleter(m);
    return cap;
}

static PyObject *view_get_address(pyba_view *self, void *closure)
{
    (void)closure;
    return PyLong_FromVoidPtr(self->v.data);
}

static PyObject *view_get_shape(pyba_view *self, void *closure)
{
    (void)closure;
    return pyba_tuple_from_i64(self->v.shape, self->v.ndim);
}

static PyObject *view_get_strides(pyba_view *self, void *closure)
{
    (void)closure;
    return pyba_tuple_from_i64(self->v.strides, self->v.ndim);
}

static PyObject *view_get_dtype(pyba_view *self, void *closure)
{
    (void)closure;
    char buf[BA_DTYPE_STRLEN];
    return PyUnicode_FromString(ba_dtype_format(&self->v.dtype, buf));
}

static PyObject *view_get_readonly(pyba_view *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->readonly);
}

static PyMethodDef view_methods[] = {
    {"to_numpy", (PyCFunction)view_to_numpy, METH_O, "to_numpy(dtype) -> numpy.ndarray"},
    {"preload", (PyCFunction)view_preload, METH_VARARGS, "preload(sub or None, write)"},
    {"dlpack", (PyCFunction)view_dlpack, METH_O, "dlpack(sub or None) -> PyCapsule"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef view_getset[] = {
    {"address", (getter)view_get_address, NULL, "Address of the first element.", NULL},
    {"shape", (getter)view_get_shape, NULL, "Shape.", NULL},
    {"strides", (getter)view_get_strides, NULL, "Strides in bytes.", NULL},
    {"dtype", (getter)view_get_dtype, NULL, "The library's dtype string.", NULL},
    {"readonly", (getter)view_get_readonly, NULL, "Mapped read-only.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pyba_view_type = {
    .ob_base = {PyObject_HEAD_INIT(NULL) 0},
    .tp_name = "bigarray._bigarray.View",
    .tp_basicsize = sizeof(pyba_view),
    .tp_dealloc = (destructor)view_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The owner of one mapping; the base of the numpy arrays made from it.",
    .tp_methods = view_methods,
    .tp_getset = view_getset,
    .tp_weaklistoffset = offsetof(pyba_view, weakreflist),
};
