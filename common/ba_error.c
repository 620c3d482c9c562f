/* SPDX-License-Identifier: MIT */
/*
 * The thread-local error detail: one message per thread, set by the function that
 * returns the error code, read by the caller through ba_errmsg(). Also
 * ba_strerror(), which names every code.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ba_common.h"

static _Thread_local char tls_msg[512];
static _Thread_local int tls_code;

static void error_vset(int code, const char *fmt, va_list ap) BA_PRINTF(2, 0);

static void error_vset(int code, const char *fmt, va_list ap)
{
    int saved = errno;
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    tls_code = code;
    errno = saved;
}

int ba_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(code, fmt, ap);
    va_end(ap);
    return code;
}

int ba_error_pass(int code, const char *fmt, ...)
{
    if (tls_code == code && tls_msg[0])
        return code;
    va_list ap;
    va_start(ap, fmt);
    error_vset(code, fmt, ap);
    va_end(ap);
    return code;
}

void ba_error_clear(void)
{
    tls_msg[0] = '\0';
    tls_code = 0;
}

const char *ba_error_msg(void)
{
    return tls_msg;
}

BA_API const char *ba_errmsg(void)
{
    return tls_msg;
}

BA_API const char *ba_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case BA_ECONFLICT:
        return "conflict: a newer commit changed the same data";
    case BA_ECORRUPT:
        return "corrupt data";
    case BA_ENOTFOUND:
        return "not found";
    case BA_EEXIST:
        return "already exists";
    case BA_EFULL:
        return "database map or table full";
    case BA_EINVAL:
        return "invalid argument";
    case BA_ESHAPE:
        return "bad shape";
    case BA_EREADONLY:
        return "read-only";
    case BA_EVERSION:
        return "unsupported database format version";
    case BA_EDTYPE:
        return "bad dtype";
    case BA_ERANGE:
        return "index out of range";
    case BA_ENOTDB:
        return "not a bigarray database";
    case BA_ESTALE:
        return "array was dropped or replaced";
    case BA_ETOOBIG:
        return "too large";
    case BA_EBUSY:
        return "busy";
    case BA_EFAILED:
        return "an earlier failure left the session unusable; abort it";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *s = strerrordesc_np(-err);
        return s ? s : "unknown system error";
    }
    return "unknown error";
}
