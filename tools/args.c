/* SPDX-License-Identifier: MIT */
/*
 * The option parser shared by every subcommand. getopt_long() is not used: it
 * keeps global state, and it would take a negative value or slice ("-1", "-3:")
 * for an option. Here an argument that starts with '-' is an option only when it
 * names one; one that looks like a number or a slice is positional. The global
 * options are recognised for every command (--json and --nosync only where the
 * command says it takes them).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
    GOPT_HELP = -100,
    GOPT_QUIET,
    GOPT_RAM_LIMIT,
    GOPT_PAGER,
    GOPT_LOCK_WAIT,
    GOPT_JSON,
    GOPT_NOSYNC,
};

static const struct cli_opt global_opts[] = {
    {"help", 'h', 0, GOPT_HELP},         {"quiet", 'q', 0, GOPT_QUIET},
    {"ram-limit", 0, 1, GOPT_RAM_LIMIT}, {"pager", 0, 1, GOPT_PAGER},
    {"lock-wait", 0, 1, GOPT_LOCK_WAIT}, {"json", 0, 0, GOPT_JSON},
    {"nosync", 0, 0, GOPT_NOSYNC},       {NULL, 0, 0, 0},
};

void cli_args_init(struct cli_args *p, struct cli *c, const struct cli_opt *opts, int argc,
                   char **argv)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    p->opts = opts;
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
}

/* Whether the global option is offered by this command. */
static int global_allowed(const struct cli *c, int id)
{
    if (!c->cmd) /* before the command: checked once the command is known */
        return 1;
    unsigned flags = c->cmd->flags;
    if (id == GOPT_JSON)
        return (flags & CLI_F_JSON) != 0;
    if (id == GOPT_NOSYNC)
        return (flags & CLI_F_WRITE) != 0;
    return 1;
}

static const struct cli_opt *find_long(const struct cli_opt *t, const char *name, size_t len)
{
    for (; t && t->name; t++)
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

static const struct cli_opt *find_short(const struct cli_opt *t, char ch)
{
    for (; t && t->name; t++)
        if (t->short_name && t->short_name == ch)
            return t;
    return NULL;
}

/* "-1", "-2.5", "-inf", "-3:", "-1, 2", "-.5": values, not options. */
static int looks_positional(const char *arg)
{
    char ch = arg[1];
    if ((ch >= '0' && ch <= '9') || ch == '.' || ch == ':' || ch == ',' || ch == ' ')
        return 1;
    char *end;
    (void)strtod(arg, &end);
    return end != arg && *end == '\0';
}

static int apply_global(struct cli_args *p, const struct cli_opt *o, const char *arg)
{
    struct cli *c = p->c;
    char err[128];
    switch (o->id) {
    case GOPT_HELP:
        p->help = 1;
        return 0;
    case GOPT_QUIET:
        c->quiet = 1;
        return 0;
    case GOPT_JSON:
        c->json = 1;
        return 0;
    case GOPT_NOSYNC:
        c->nosync = 1;
        return 0;
    case GOPT_RAM_LIMIT:
        if (!arg)
            return CLI_ARGS_ERROR; /* has_arg is set in the table; keeps analyzers sure */
        if (cli_parse_size(arg, &c->ram_limit, err, sizeof err) != 0) {
            cli_usage(c, "--ram-limit: %s", err);
            return CLI_ARGS_ERROR;
        }
        return 0;
    case GOPT_LOCK_WAIT: {
        if (!arg)
            return CLI_ARGS_ERROR;
        if (strcmp(arg, "inf") == 0 || strcmp(arg, "forever") == 0) {
            c->lock_wait_ms = -1;
            return 0;
        }
        char *end;
        double s = strtod(arg, &end);
        if (end == arg || *end || !(s >= 0) || s > 1e9) {
            cli_usage(c, "--lock-wait: '%s' is not a number of seconds (or 'inf')", arg);
            return CLI_ARGS_ERROR;
        }
        c->lock_wait_ms = (int64_t)(s * 1000.0);
        return 0;
    }
    case GOPT_PAGER:
        if (!arg)
            return CLI_ARGS_ERROR;
        if (strcmp(arg, "uffd") == 0 || strcmp(arg, "userfaultfd") == 0)
            c->pager = BA_PAGER_UFFD;
        else if (strcmp(arg, "sigsegv") == 0)
            c->pager = BA_PAGER_SIGSEGV;
        else if (strcmp(arg, "auto") == 0)
            c->pager = BA_PAGER_AUTO;
        else {
            cli_usage(c, "--pager: '%s' is not one of uffd, sigsegv, auto", arg);
            return CLI_ARGS_ERROR;
        }
        return 0;
    default:
        return 0;
    }
}

/* Handle option o found as argv[p->i] (already advanced past it); inline_arg is the
 * text after '=' or NULL. Returns the command's id, 0 for a global option handled
 * here, or CLI_ARGS_ERROR. */
static int take_option(struct cli_args *p, const struct cli_opt *o, const char *shown,
                       const char *inline_arg, const char **arg)
{
    const char *val = NULL;
    if (o->has_arg) {
        if (inline_arg)
            val = inline_arg;
        else if (p->i < p->argc)
            val = p->argv[p->i++];
        else {
            cli_usage(p->c, "option %s needs a value", shown);
            return CLI_ARGS_ERROR;
        }
    } else if (inline_arg) {
        cli_usage(p->c, "option %s takes no value", shown);
        return CLI_ARGS_ERROR;
    }
    if (o->id < 0)
        return apply_global(p, o, val);
    *arg = val;
    return o->id;
}

static int add_pos(struct cli_args *p, const char *a)
{
    if (p->npos >= CLI_MAX_POS) {
        cli_usage(p->c, "too many arguments");
        return CLI_ARGS_ERROR;
    }
    p->pos[p->npos++] = a;
    return 0;
}

int cli_args_next(struct cli_args *p, const char **arg)
{
    *arg = NULL;
    while (p->i < p->argc) {
        const char *a = p->argv[p->i++];
        if (p->only_pos || a[0] != '-' || a[1] == '\0') {
            if (add_pos(p, a) != 0)
                return CLI_ARGS_ERROR;
            continue;
        }
        if (a[1] == '-') {
            if (a[2] == '\0') {
                p->only_pos = 1;
                continue;
            }
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct cli_opt *o = find_long(p->opts, name, len);
            if (!o) {
                o = find_long(global_opts, name, len);
                if (o && !global_allowed(p->c, o->id))
                    o = NULL;
            }
            if (!o) {
                cli_usage(p->c, "unknown option '--%.*s'", (int)len, name);
                return CLI_ARGS_ERROR;
            }
            char shown[80];
            snprintf(shown, sizeof shown, "--%s", o->name);
            int id = take_option(p, o, shown, eq ? eq + 1 : NULL, arg);
            if (id != 0)
                return id;
            continue;
        }
        /* One short option per argument ("-q", "-l"); no bundling, so that "-1" and
         * "-inf" can be values. */
        const struct cli_opt *o = a[2] == '\0' ? find_short(p->opts, a[1]) : NULL;
        if (!o && a[2] == '\0')
            o = find_short(global_opts, a[1]);
        if (o) {
            char shown[4] = {'-', a[1], '\0', '\0'};
            int id = take_option(p, o, shown, NULL, arg);
            if (id != 0)
                return id;
            continue;
        }
        if (looks_positional(a)) {
            if (add_pos(p, a) != 0)
                return CLI_ARGS_ERROR;
            continue;
        }
        cli_usage(p->c, "unknown option '%s'", a);
        return CLI_ARGS_ERROR;
    }
    return CLI_ARGS_END;
}

int cli_args_finish(struct cli_args *p, int min_pos, int max_pos, int *done)
{
    const char *arg;
    int id;
    *done = 0;
    while ((id = cli_args_next(p, &arg)) > 0) {
        /* A command-specific option the caller did not handle: a bug in the table. */
        return cli_usage(p->c, "option not handled");
    }
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    if (p->help) {
        cli_cmd_help(p->c->cmd, stdout);
        *done = 1;
        return 0;
    }
    if (p->npos < min_pos)
        return cli_usage(p->c, "missing arguments: expected %s", p->c->cmd->synopsis);
    if (p->npos > max_pos)
        return cli_usage(p->c, "unexpected argument '%s'", p->pos[max_pos]);
    return 0;
}
