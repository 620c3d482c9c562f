/* SPDX-License-Identifier: MIT */
/* Built against the installed tree by check_install.sh: proves the header, the
 * library and the pkg-config / CMake package files are installed and usable. */
#include <bigarray.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    int major = -1;
    const char *v = ba_version(&major, NULL, NULL);
    if (major != BA_VERSION_MAJOR || strcmp(v, BA_VERSION_STRING) != 0) {
        fprintf(stderr, "version mismatch: header %s, library %s\n", BA_VERSION_STRING, v);
        return 1;
    }
    ba_dtype dt;
    if (ba_dtype_parse("f8", &dt) != 0 || dt.itemsize != 8) {
        fprintf(stderr, "ba_dtype_parse failed: %s\n", ba_errmsg());
        return 1;
    }
    printf("bigarray %s ok\n", v);
    return 0;
}
