/* SPDX-License-Identifier: MIT */
/*
 * The CPython extension bigarray._bigarray: thin handle types over the public C API
 * (Db, Session, Array, View) and the mapping of error codes to Python exceptions.
 * The user-facing API (bigarray.open, Database, Session, Array, indexing) is the
 * pure-Python layer in python/bigarray/__init__.py; this module keeps the rules that
 * protect memory: who owns which C handle, when it is released, when the GIL is
 * dropped, and which session calls may overlap in different threads.
 *
 * Ownership: every Python object owns one C handle and releases it in its dealloc.
 * A View owns a ba_view; numpy arrays made from it hold the View as their base, so
 * the mapping lives until the last array pointing into it is gone. The C library's
 * reference counting keeps a view's array, session and database alive, so closing
 * a Db or Session while views live is safe.
 *
 * Threads: the GIL is released around every call that may take long (open, commit,
 * abort, append, preload, verify, compact). A Session counts the calls in flight
 * with the GIL released: "exclusive" ones (commit, abort, append, resize, drop,
 * create, end) need the session to themselves (the C API's thread rule) and fail with
 * RuntimeError when anything else is in flight; "shared" ones (preload) fail only
 * while an exclusive one runs. Both checks happen with the GIL held.
 *
 * fork(): handles inherited by a child process must not be used (LMDB forbids it,
 * and views are unmapped in the child). The Python layer calls _after_fork_child()
 * in the child (os.register_at_fork); handles made before then raise bigarray.Error
 * when used and are leaked, not closed, when freed in the child.
 */
#ifndef PYBA_H
#define PYBA_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API  NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pyba_ARRAY_API
#ifndef PYBA_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "bigarray.h"

/* ---- objects -------------------------------------------------------------------- */

typedef struct pyba_db {
    PyObject ob_base;
    ba_db *db;         /* NULL once closed */
    unsigned long gen; /* fork generation at creation */
    unsigned flags;    /* BA_DB_* given at open */
} pyba_db;

typedef struct pyba_session {
    PyObject ob_base;
    ba_session *s; /* NULL once ended */
    pyba_db *db;   /* strong reference */
    unsigned long gen;
    int exclusive; /* an exclusive call runs with the GIL released */
    int shared;    /* shared calls running with the GIL released */
    PyObject *weakreflist;
} pyba_session;

typedef struct pyba_array {
    PyObject ob_base;
    ba_array *a;           /* NULL once closed */
    pyba_session *session; /* strong reference */
    unsigned long gen;
    PyObject *weakreflist;
} pyba_array;

typedef struct pyba_view {
    PyObject ob_base;
    ba_view v;             /* v.mapping NULL once released */
    pyba_session *session; /* strong reference (for the thread checks only) */
    unsigned long gen;
    int readonly;
    PyObject *weakreflist;
} pyba_view;

extern PyTypeObject pyba_db_type;
extern PyTypeObject pyba_session_type;
extern PyTypeObject pyba_array_type;
extern PyTypeObject pyba_view_type;

/* ---- module state (pyba_module.c) -------------------------------------------------- */

extern PyObject *pyba_exc_error;    /* bigarray.Error */
extern PyObject *pyba_exc_conflict; /* bigarray.ConflictError */
extern PyObject *pyba_exc_corrupt;  /* bigarray.CorruptError */

/* Incremented in a forked child; handles remember the value they were made with. */
extern unsigned long pyba_fork_gen;

/* Raise the exception for library code err (negative), with ba_errmsg() as detail.
 * Returns NULL. ENOTFOUND raises KeyError(name) when name is not NULL. */
PyObject *pyba_raise(int err, const char *name);

/* Raise bigarray.Error for a handle made before fork() and used in the child; return
 * -1. Returns 0 when gen is current. */
int pyba_check_fork(unsigned long gen);

/* ---- session call accounting (pyba_db.c) --------------------------------------------- */

/* Check the session is open and usable for a call; with exclusive != 0 also that no
 * other call runs with the GIL released. Returns 0 or -1 with an exception set. */
int pyba_session_check(pyba_session *ss, int exclusive);

/* ---- helpers ------------------------------------------------------------------------ */

/* Convert a sequence of non-negative ints to a shape. Returns ndim or -1. */
int pyba_shape_from_py(PyObject *seq, int64_t *shape);
/* A tuple of Python ints from n int64 values. */
PyObject *pyba_tuple_from_i64(const int64_t *v, int n);
/* Parse numpy's dtype.str of descr into a library dtype; -1 with TypeError. */
int pyba_dtype_from_descr(PyArray_Descr *descr, ba_dtype *out);
/* d[key] = v, consuming the reference to v (which may be NULL: -1). */
int pyba_dict_set(PyObject *d, const char *key, PyObject *v);
/* A dict of the pager counters. */
PyObject *pyba_pager_stat_dict(const ba_pager_stat *st);

/* Make an Array object owning a (closed on failure). */
PyObject *pyba_array_wrap(ba_array *a, pyba_session *ss);

/* Make a View object owning *v (which it takes over; *v is cleared). */
PyObject *pyba_view_wrap(ba_view *v, pyba_session *ss, int readonly);

#endif /* PYBA_H */
