/* SPDX-License-Identifier: MIT */
/* DLPack: hand a view to any library that takes a DLManagedTensor (PyTorch, JAX, CuPy's
 * host side, ...). The tensor points into the view's mapping (no copy), holds its own
 * reference to it, and stays valid after the view, array and session are gone, until
 * its deleter is called. Needs DLPack's header (Debian: libdlpack-dev). */
#include <bigarray.h>
#include <dlpack/dlpack.h>
#include <stdio.h>
#include <stdlib.h>

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

/* A consumer: sums a 2-D float64 CPU tensor. DLPack strides count elements. */
static double consume(const DLTensor *t)
{
    if (t->device.device_type != kDLCPU || t->ndim != 2 || t->dtype.code != kDLFloat ||
        t->dtype.bits != 64)
        return -1;
    const double *base = (const double *)((const char *)t->data + t->byte_offset);
    double sum = 0;
    for (int64_t i = 0; i < t->shape[0]; i++)
        for (int64_t j = 0; j < t->shape[1]; j++)
            sum += base[i * t->strides[0] + j * t->strides[1]];
    return sum;
}

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open");
    ba_session *s;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec); /* <f8: native little-endian, as DLPack requires */
    spec.ndim = 2;
    spec.shape[0] = 100;
    spec.shape[1] = 30;
    ba_array *a;
    check(ba_array_create(s, "m", &spec, &a), "create");
    ba_view all;
    check(ba_array_view(a, NULL, 0, 0, &all), "view");
    for (int i = 0; i < 100 * 30; i++)
        ((double *)all.data)[i] = 1.0;
    ba_view_release(&all);

    ba_view v;
    check(ba_array_view_text(a, "::-2, 5:25:5", 0, &v), "view"); /* 50 x 4, negative stride */
    DLManagedTensor *t;
    check(ba_view_to_dlpack(&v, &t), "to dlpack");
    printf("tensor: shape (%lld, %lld), strides (%lld, %lld) elements\n",
           (long long)t->dl_tensor.shape[0], (long long)t->dl_tensor.shape[1],
           (long long)t->dl_tensor.strides[0], (long long)t->dl_tensor.strides[1]);
    ba_view_release(&v); /* the tensor keeps the mapping */
    ba_array_close(a);
    check(ba_session_commit(s), "commit");
    ba_session_end(s);
    ba_db_close(db); /* still open underneath, for the tensor */

    double sum = consume(&t->dl_tensor);
    printf("sum through the tensor: %g\n", sum);
    t->deleter(t); /* the last reference: the database closes now */
    return sum == 200 ? 0 : 1;
}
