/* SPDX-License-Identifier: MIT */
/*
 * `bigarray`: the command-line tool. This file holds the command table, the help
 * texts, --version, and the dispatch: `bigarray [global options] COMMAND [options]
 * ARGS`. Each command lives in its own cmd_*.c file; the option parser is args.c.
 * Exit status: 0 success, 1 failure, 2 bad usage.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define GLOBAL_HELP                                                                                \
    "Global options (every command):\n"                                                            \
    "  -h, --help          show this help\n"                                                       \
    "  -q, --quiet         no progress bar\n"                                                      \
    "  --ram-limit SIZE    RAM for cached and dirty blocks (e.g. 512M, 4G)\n"                      \
    "  --pager P           pager backend: uffd, sigsegv or auto\n"                                 \
    "  --lock-wait SECS    how long a commit waits while another process commits\n"                \
    "                      (default 10; 0 = fail at once; inf = as long as it takes)\n"

static const struct cli_cmd commands[] = {
    {"create", cmd_create, CLI_F_WRITE, "DB NAME --dtype T --shape S [options]",
     "create an array (and the database directory if missing)",
     "  --dtype T           element type: b1 i1 i2 i4 i8 u1 u2 u4 u8 f2 f4 f8 c8 c16 V<n>\n"
     "                      with an optional byte order < > | (or numpy names: float64...)\n"
     "  --shape S           \"1000,1024\" or \"(1000, 1024)\"\n"
     "  --order C|F         memory order (default C)\n"
     "  --block-size B      block size, a power of two >= 4K (default 2M)\n"
     "  --codec C           none, zstd, zstd:LEVEL, optionally +shuffle (default none)\n"
     "  --nosync            commit without fdatasync\n"},
    {"ls", cmd_ls, CLI_F_JSON, "DB", "list arrays",
     "  -l, --long          one line per array: dtype, shape, order, codec, sizes\n"
     "  --json              a JSON array of objects, one per array\n"},
    {"info", cmd_info, CLI_F_JSON, "DB [NAME]", "describe the database or an array",
     "  --json              one JSON object\n"},
    {"import", cmd_import, CLI_F_WRITE, "DB NAME FILE [options]",
     "import a .npy or raw file as a new array (or append to one)",
     "  FILE                a .npy file (version 1, 2 or 3) or raw bytes; '-' is stdin\n"
     "  --format npy|raw    default: raw when --dtype is given and FILE does not end in\n"
     "                      .npy, npy otherwise\n"
     "  --dtype T           raw: element type\n"
     "  --shape S           raw: shape (default: 1-D, from the file size; with --append\n"
     "                      the array's other axes)\n"
     "  --order C|F         raw: order of the bytes (default C)\n"
     "  --append            append along the major axis of an existing array\n"
     "  --block-size B, --codec C   for a new array, as in 'create'\n"
     "  --nosync            commit without fdatasync\n\n"
     "The import is one transaction: on any error or interruption (Ctrl-C, SIGTERM,\n"
     "kill -9) the database is left as it was.\n"},
    {"append", cmd_append, CLI_F_WRITE, "DB NAME FILE [options]",
     "append a .npy or raw file to an array (import --append)", "  Options as for 'import'.\n"},
    {"export", cmd_export, 0, "DB NAME FILE [options]", "write an array or a slice to a file",
     "  FILE                output path ('-' is stdout); replaced atomically\n"
     "  --slice S           numpy basic slice, e.g. \"0:100, ::2, -1\"\n"
     "  --format npy|raw    default: raw if FILE ends in .raw/.bin/.dat, npy otherwise\n"
     "  --order C|F         raw: order of the output bytes (default: the array's order)\n"},
    {"get", cmd_get, CLI_F_JSON, "DB NAME [SLICE]", "print values",
     "  SLICE               numpy basic slice, e.g. \"0:3, ::2\" (default: everything)\n"
     "  --full              print every element (no '...' summary)\n"
     "  --json              {\"dtype\", \"shape\", \"data\"}: nested lists; NaN and infinities\n"
     "                      as the strings \"nan\", \"inf\", \"-inf\"\n"},
    {"set", cmd_set, CLI_F_WRITE, "DB NAME SLICE VALUE", "assign a value to a slice and commit",
     "  VALUE               a number (\"-1.5\", \"nan\", \"inf\", \"0x1f\"), true/false, a "
     "complex\n"
     "                      (\"1+2j\"), or for records hex bytes (\"0x0102...\" or \"0\")\n"
     "  --nosync            commit without fdatasync\n"},
    {"stats", cmd_stats, CLI_F_JSON, "DB NAME [options]",
     "count, min, max, mean, std and NaNs, streamed over the array",
     "  --slice S           statistics of a slice\n"
     "  --ddof N            delta degrees of freedom of std (default 0, as numpy)\n"
     "  NaNs are counted and left out of min, max, mean and std.\n"},
    {"resize", cmd_resize, CLI_F_WRITE, "DB NAME SHAPE", "change the shape (same ndim)",
     "  Growing reveals zeros; shrinking discards the data past the new end.\n"},
    {"rm", cmd_rm, CLI_F_WRITE, "DB NAME...", "remove arrays", ""},
    {"cp", cmd_cp, CLI_F_WRITE, "DB SRC DST", "copy an array (without decompressing)", ""},
    {"verify", cmd_verify, CLI_F_JSON, "DB",
     "check every record; exit 1 and list the problems if any",
     "  --json              {\"problems\": [...], \"count\": N}\n"},
    {"compact", cmd_compact, 0, "DB OUT", "write a compacted copy of the database to OUT", ""},
    {"du", cmd_du, CLI_F_JSON, "DB", "space used by each array, free pages, map size",
     "  --bytes             exact byte counts instead of KiB/MiB/GiB\n"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

const struct cli_cmd *cli_cmd_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void cli_cmd_help(const struct cli_cmd *cmd, FILE *f)
{
    /* The summary is a phrase for the command list; here it starts a sentence. */
    fprintf(f, "usage: bigarray %s %s\n\n%c%s.\n\n", cmd->name, cmd->synopsis,
            cmd->summary[0] >= 'a' && cmd->summary[0] <= 'z' ? cmd->summary[0] - 'a' + 'A'
                                                             : cmd->summary[0],
            cmd->summary + 1);
    if (cmd->help[0])
        fprintf(f, "Options:\n%s\n", cmd->help);
    fputs(GLOBAL_HELP, f);
    fputs("\nExit status: 0 success, 1 failure, 2 bad usage.\n", f);
}

static void main_help(FILE *f)
{
    fputs("usage: bigarray [--version] [--help] COMMAND [options] ARGS\n\n"
          "Transactional out-of-core N-dimensional arrays in an LMDB database.\n\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("  help      show help for a command\n\n", f);
    fputs(GLOBAL_HELP, f);
    fputs("\n'bigarray help COMMAND' describes a command. Exit status: 0 success,\n"
          "1 failure, 2 bad usage.\n",
          f);
}

static int do_help(struct cli *c, int argc, char **argv)
{
    if (argc <= 1) {
        main_help(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *cmd = cli_cmd_find(argv[1]);
    if (!cmd || argc > 2)
        return cli_usage(c, "help: no command named '%s'", argv[1]);
    cli_cmd_help(cmd, stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof c);
    c.lock_wait_ms = 10000;
    c.pager = BA_PAGER_AUTO;

    /* Global options before the command: the same parser, with no command. */
    struct cli_args p;
    cli_args_init(&p, &c, NULL, argc, argv);
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("bigarray %s (library %s)\n", BA_VERSION_STRING, ba_version(NULL, NULL, NULL));
            return CLI_EXIT_OK;
        }
        if (a[0] != '-')
            break;
        /* Parse exactly this option (and its value) with the shared parser. */
        p.i = i;
        p.argc = i + 1 +
                 (strcmp(a, "--ram-limit") == 0 || strcmp(a, "--pager") == 0 ||
                  strcmp(a, "--lock-wait") == 0);
        if (p.argc > argc)
            p.argc = argc;
        const char *arg;
        int id = cli_args_next(&p, &arg);
        if (id == CLI_ARGS_ERROR)
            return CLI_EXIT_USAGE;
        if (p.npos > 0)
            return cli_usage(&c, "unknown option '%s'", a);
        i = p.i - 1;
    }
    if (p.help) {
        main_help(stdout);
        return CLI_EXIT_OK;
    }
    if (i == argc)
        return cli_usage(&c, "no command given");
    const char *name = argv[i];
    if (strcmp(name, "help") == 0)
        return do_help(&c, argc - i, argv + i);
    c.cmd = cli_cmd_find(name);
    if (!c.cmd)
        return cli_usage(&c, "unknown command '%s'", name);
    if (c.json && !(c.cmd->flags & CLI_F_JSON))
        return cli_usage(&c, "this command prints no data: --json does not apply");
    if (c.nosync && !(c.cmd->flags & CLI_F_WRITE))
        return cli_usage(&c, "this command does not commit: --nosync does not apply");
    cli_sigbus_install(c.cmd->name);
    int rc = c.cmd->run(&c, argc - i, argv + i);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (rc == CLI_EXIT_OK)
            rc = cli_fail(&c, "error writing to standard output");
    }
    return rc;
}
