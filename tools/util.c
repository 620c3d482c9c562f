/* SPDX-License-Identifier: MIT */
/*
 * Helpers every subcommand uses: one-line error reports, opening a database with
 * the global options, committing, parsing sizes and shapes, formatting shapes and
 * byte counts, and the signal handlers that turn Ctrl-C into a clean abort and a
 * SIGBUS from a failed block load into a one-line error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

/* ---- errors ----------------------------------------------------------------- */

static void vreport(const struct cli *c, const char *fmt, va_list ap)
{
    progress_hide();
    fflush(stdout);
    if (c && c->cmd)
        fprintf(stderr, "bigarray: %s: ", c->cmd->name);
    else
        fputs("bigarray: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int cli_fail(const struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_FAIL;
}

int cli_fail_ba(const struct cli *c, int err, const char *fmt, ...)
{
    /* Copy the library's message first: formatting must not call into it. */
    char msg[1024], ctx[512];
    const char *m = ba_errmsg();
    snprintf(msg, sizeof msg, "%s", (m && *m) ? m : ba_strerror(err));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    /* The library's messages often name the array or path already; say it once. */
    if (strstr(msg, ctx))
        return cli_fail(c, "%s", msg);
    return cli_fail(c, "%s: %s", ctx, msg);
}

int cli_usage(const struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, fmt, ap);
    va_end(ap);
    if (c && c->cmd)
        fprintf(stderr, " (see 'bigarray help %s')\n", c->cmd->name);
    else
        fputs(" (see 'bigarray help')\n", stderr);
    return CLI_EXIT_USAGE;
}

/* ---- databases ----------------------------------------------------------------- */

int cli_db_open(const struct cli *c, const char *path, unsigned how, ba_db **out)
{
    ba_db_options o;
    ba_db_options_init(&o);
    if (how & CLI_OPEN_RDONLY)
        o.flags |= BA_DB_RDONLY;
    if (how & CLI_OPEN_CREATE)
        o.flags |= BA_DB_CREATE;
    if (c->nosync)
        o.flags |= BA_DB_NOSYNC;
    o.pager = c->pager;
    o.ram_limit = c->ram_limit;
    o.lock_timeout_ms = c->lock_wait_ms;
    int rc = ba_db_open(path, &o, out);
    if (rc != 0) {
        *out = NULL;
        if (rc == BA_ENOTFOUND)
            return cli_fail(c, "%s: no such database", path);
        /* The library's message may name the path already. */
        const char *m = ba_errmsg();
        if (m && *m && strstr(m, path))
            return cli_fail(c, "%s", m);
        return cli_fail_ba(c, rc, "%s", path);
    }
    return 0;
}

int cli_session_begin(const struct cli *c, ba_db *db, const char *path, ba_session **out)
{
    int rc = ba_session_begin(db, out);
    if (rc != 0) {
        *out = NULL;
        return cli_fail_ba(c, rc, "%s: cannot begin a session", path);
    }
    return 0;
}

int cli_array_open(const struct cli *c, ba_session *s, const char *path, const char *name,
                   ba_array **out)
{
    int rc = ba_array_open(s, name, out);
    if (rc != 0) {
        *out = NULL;
        if (rc == BA_ENOTFOUND)
            return cli_fail(c, "%s: no array named '%s'", path, name);
        return cli_fail_ba(c, rc, "array '%s'", name);
    }
    return 0;
}

int cli_array_info(const struct cli *c, ba_array *a, const char *name, ba_array_info *info)
{
    memset(info, 0, sizeof *info);
    info->size = sizeof *info;
    int rc = ba_array_info_get(a, info);
    if (rc != 0)
        return cli_fail_ba(c, rc, "array '%s'", name);
    return 0;
}

uint64_t cli_chunk_bytes(ba_db *db)
{
    uint64_t chunk = 64u << 20;
    ba_pager_stat ps;
    memset(&ps, 0, sizeof ps);
    ps.size = sizeof ps;
    if (ba_db_pager_stat(db, &ps) == 0 && ps.ram_limit / 4 < chunk)
        chunk = ps.ram_limit / 4 > (1u << 20) ? ps.ram_limit / 4 : (1u << 20);
    return chunk;
}

int cli_commit(const struct cli *c, ba_session *s, const char *what)
{
    int rc = ba_session_commit(s);
    if (rc != 0)
        return cli_fail_ba(c, rc, "cannot commit %s", what);
    return 0;
}

/* ---- text ----------------------------------------------------------------------- */

int cli_parse_size(const char *text, uint64_t *out, char *err, size_t errlen)
{
    const char *p = text;
    if (*p < '0' || *p > '9') {
        snprintf(err, errlen, "'%s' is not a size (digits, then K, M, G, T or P)", text);
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno == ERANGE) {
        snprintf(err, errlen, "size '%s' is too large", text);
        return -1;
    }
    unsigned shift = 0;
    static const char units[] = "KMGTP";
    if (*end) {
        const char *u = strchr(units, *end >= 'a' ? *end - 'a' + 'A' : *end);
        if (!u) {
            snprintf(err, errlen, "size '%s': unknown unit '%s'", text, end);
            return -1;
        }
        shift = 10u * (unsigned)(u - units + 1);
        end++;
        if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0 || strcmp(end, "") == 0)
            end += strlen(end);
        else {
            snprintf(err, errlen, "size '%s': unknown unit", text);
            return -1;
        }
    }
    if (shift && v > (UINT64_MAX >> shift)) {
        snprintf(err, errlen, "size '%s' is too large", text);
        return -1;
    }
    *out = (uint64_t)v << shift;
    return 0;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int cli_parse_shape(const char *text, int64_t *shape, int max, char *err, size_t errlen)
{
    const char *p = skip_ws(text);
    int paren = 0, n = 0;
    if (*p == '(') {
        paren = 1;
        p = skip_ws(p + 1);
    }
    for (;;) {
        if (*p == ')' || *p == '\0')
            break;
        if (*p < '0' || *p > '9') {
            snprintf(err, errlen, "shape '%s': expected a number at column %d", text,
                     (int)(p - text) + 1);
            return -1;
        }
        if (n == max) {
            snprintf(err, errlen, "shape '%s': more than %d dimensions", text, max);
            return -1;
        }
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno == ERANGE || v > (unsigned long long)INT64_MAX) {
            snprintf(err, errlen, "shape '%s': dimension at column %d is too large", text,
                     (int)(p - text) + 1);
            return -1;
        }
        shape[n++] = (int64_t)v;
        p = skip_ws(end);
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p != ')' && *p != '\0') {
            snprintf(err, errlen, "shape '%s': unexpected '%c' at column %d", text, *p,
                     (int)(p - text) + 1);
            return -1;
        }
    }
    if (paren) {
        if (*p != ')') {
            snprintf(err, errlen, "shape '%s': missing ')'", text);
            return -1;
        }
        p = skip_ws(p + 1);
    } else if (*p == ')') {
        snprintf(err, errlen, "shape '%s': unbalanced ')' at column %d", text, (int)(p - text) + 1);
        return -1;
    }
    if (*p != '\0') {
        snprintf(err, errlen, "shape '%s': trailing text at column %d", text, (int)(p - text) + 1);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen, "shape '%s' has no dimensions", text);
        return -1;
    }
    return n;
}

char *cli_format_shape(int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t off = 0;
    off += (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, ndim == 1 ? ",)" : ")");
    return buf;
}

char *cli_format_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (n < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", n);
        return buf;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, v < 10.0 ? "%.2f %s" : v < 100.0 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

/* ---- option values ------------------------------------------------------------- */

int cli_opt_dtype(const struct cli *c, const char *arg, ba_dtype *out)
{
    int rc = ba_dtype_parse(arg, out);
    if (rc != 0) {
        const char *m = ba_errmsg();
        return cli_usage(c, "--dtype: %s", (m && *m) ? m : ba_strerror(rc));
    }
    return 0;
}

int cli_opt_shape(const struct cli *c, const char *opt, const char *arg, int *ndim, int64_t *shape)
{
    char err[256];
    int n = cli_parse_shape(arg, shape, BA_MAX_DIMS, err, sizeof err);
    if (n < 0)
        return opt ? cli_usage(c, "%s: %s", opt, err) : cli_usage(c, "%s", err);
    *ndim = n;
    return 0;
}

int cli_opt_order(const struct cli *c, const char *arg, char *out)
{
    if ((arg[0] == 'C' || arg[0] == 'c' || arg[0] == 'F' || arg[0] == 'f') && arg[1] == '\0') {
        *out = (arg[0] == 'c' || arg[0] == 'C') ? 'C' : 'F';
        return 0;
    }
    return cli_usage(c, "--order: '%s' is not C or F", arg);
}

int cli_opt_block_size(const struct cli *c, const char *arg, uint32_t *out)
{
    char err[256];
    uint64_t v;
    if (cli_parse_size(arg, &v, err, sizeof err) != 0)
        return cli_usage(c, "--block-size: %s", err);
    long page = sysconf(_SC_PAGESIZE);
    if (v < (uint64_t)page || v > (1u << 30) || (v & (v - 1)) != 0)
        return cli_usage(c, "--block-size: %s is not a power of two from %ld to 1G", arg, page);
    *out = (uint32_t)v;
    return 0;
}

int cli_opt_codec(const struct cli *c, const char *arg, ba_array_spec *spec)
{
    int rc = ba_codec_parse(arg, spec);
    if (rc != 0) {
        const char *m = ba_errmsg();
        return cli_usage(c, "--codec: %s", (m && *m) ? m : ba_strerror(rc));
    }
    return 0;
}

/* ---- signals --------------------------------------------------------------------- */

volatile sig_atomic_t cli_stop_signal;

static void on_stop(int sig)
{
    cli_stop_signal = sig;
}

void cli_stop_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking wait returns EINTR so the loop sees the flag. The
     * second signal takes the default action (the transaction covers a kill). */
    sa.sa_flags = (int)SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static char sigbus_msg[256];
static size_t sigbus_len;
sigjmp_buf cli_sigbus_jmp;
volatile sig_atomic_t cli_sigbus_armed;

static void on_sigbus(int sig)
{
    (void)sig;
    if (cli_sigbus_armed) {
        cli_sigbus_armed = 0;
        siglongjmp(cli_sigbus_jmp, 1);
    }
    ssize_t r = write(STDERR_FILENO, sigbus_msg, sigbus_len);
    (void)r;
    _exit(CLI_EXIT_FAIL);
}

void cli_sigbus_install(const char *cmdname)
{
    int n = snprintf(sigbus_msg, sizeof sigbus_msg,
                     "bigarray: %s: a block could not be loaded (corrupt data or I/O "
                     "error; 'bigarray verify' lists damage)\n",
                     cmdname);
    sigbus_len = n > 0 ? (size_t)n : 0;
    if (sigbus_len >= sizeof sigbus_msg)
        sigbus_len = sizeof sigbus_msg - 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}
