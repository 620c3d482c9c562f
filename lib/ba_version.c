/* SPDX-License-Identifier: MIT */
/* The library version. */
#include "bigarray.h"

BA_API const char *ba_version(int *major, int *minor, int *patch)
{
    if (major)
        *major = BA_VERSION_MAJOR;
    if (minor)
        *minor = BA_VERSION_MINOR;
    if (patch)
        *patch = BA_VERSION_PATCH;
    return BA_VERSION_STRING;
}
