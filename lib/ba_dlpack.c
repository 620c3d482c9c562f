/* SPDX-License-Identifier: MIT */
/*
 * DLPack export (Debian's dlpack.h, v0.6): a view becomes a DLManagedTensor on the
 * CPU device that numpy, PyTorch and others take without a copy. The tensor owns its
 * shape and strides (in elements, as DLPack wants) and one reference to the view's
 * mapping, dropped by its deleter, so the memory stays mapped for as long as the
 * consumer holds the tensor, even after the view was released.
 *
 * Types: i/u/f/c map to kDLInt/kDLUInt/kDLFloat/kDLComplex; bool maps to kDLUInt of
 * 8 bits (DLPack 0.6 has no boolean code; the producers of that era did the same).
 * Records and non-native byte orders have no DLPack type: BA_EDTYPE.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <dlpack.h>

#include "ba_internal.h"

struct dl_holder {
    DLManagedTensor t;
    int64_t shape[BA_MAX_DIMS];
    int64_t strides[BA_MAX_DIMS];
    struct ba_mapping *m;
};

static void dl_deleter(DLManagedTensor *t)
{
    struct dl_holder *h = t->manager_ctx;
    mapping_unref(h->m);
    free(h);
}

static int dl_type(const ba_dtype *dt, DLDataType *out)
{
    char buf[BA_DTYPE_STRLEN];
    const uint16_t one = 1;
    char native = *(const char *)&one ? '<' : '>';
    if (dt->byteorder != '|' && dt->byteorder != native)
        return ba_error_set(BA_EDTYPE, "DLPack has no byte order: cannot export %s",
                            ba_dtype_format(dt, buf));
    switch (dt->kind) {
    case 'i':
        out->code = kDLInt;
        break;
    case 'u':
    case 'b':
        out->code = kDLUInt;
        break;
    case 'f':
        out->code = kDLFloat;
        break;
    case 'c':
        out->code = kDLComplex;
        break;
    default:
        return ba_error_set(BA_EDTYPE, "DLPack has no type for %s", ba_dtype_format(dt, buf));
    }
    out->bits = (uint8_t)(dt->itemsize * 8);
    out->lanes = 1;
    return 0;
}

BA_API int ba_view_to_dlpack(const ba_view *v, struct DLManagedTensor **out)
{
    if (!v || !out || !v->mapping)
        return ba_error_set(BA_EINVAL, "ba_view_to_dlpack: no view (or a released one)");
    *out = NULL;
    DLDataType type;
    int rc = dl_type(&v->dtype, &type);
    if (rc)
        return rc;
    if (v->ndim < 0 || v->ndim > BA_MAX_DIMS)
        return ba_error_set(BA_EINVAL, "ba_view_to_dlpack: bad ndim %d", v->ndim);
    int64_t isz = v->dtype.itemsize;
    for (int i = 0; i < v->ndim; i++)
        if (v->strides[i] % isz)
            return ba_error_set(BA_EINVAL,
                                "DLPack strides count elements: stride %lld of axis %d is not "
                                "a multiple of the item size %lld",
                                (long long)v->strides[i], i, (long long)isz);
    struct dl_holder *h = ba_calloc(1, sizeof *h);
    if (!h)
        return ba_error_set(-ENOMEM, "ba_view_to_dlpack: out of memory");
    for (int i = 0; i < v->ndim; i++) {
        h->shape[i] = v->shape[i];
        h->strides[i] = v->strides[i] / isz;
    }
    h->m = v->mapping;
    mapping_ref(h->m);
    h->t.dl_tensor.data = v->data;
    h->t.dl_tensor.device.device_type = kDLCPU;
    h->t.dl_tensor.device.device_id = 0;
    h->t.dl_tensor.ndim = v->ndim;
    h->t.dl_tensor.dtype = type;
    h->t.dl_tensor.shape = h->shape;
    h->t.dl_tensor.strides = h->strides;
    h->t.dl_tensor.byte_offset = 0;
    h->t.manager_ctx = h;
    h->t.deleter = dl_deleter;
    *out = &h->t;
    return 0;
}
