/* SPDX-License-Identifier: MIT */
/*
 * Shared declarations of the `bigarray` command-line tool: the command table, the
 * option parser every subcommand uses, error reporting (one line on stderr, exit
 * 1 for failures and 2 for bad usage), opening databases with the global options,
 * and small parsers for sizes and shapes. One file per subcommand (cmd_*.c)
 * implements cmd_<name>(); main.c dispatches. Only the public header is used.
 */
#ifndef BA_CLI_H
#define BA_CLI_H

#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "bigarray.h"

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* struct cli_cmd.flags: which global options a command accepts. */
#define CLI_F_JSON  0x1u /* prints data: --json */
#define CLI_F_WRITE 0x2u /* commits: --nosync */

struct cli;
typedef int (*cli_run_fn)(struct cli *c, int argc, char **argv);

struct cli_cmd {
    const char *name;
    cli_run_fn run;
    unsigned flags;
    const char *synopsis; /* arguments after the command name */
    const char *summary;  /* one line for `bigarray help` */
    const char *help;     /* the command's own options and notes, "" if none */
};

/* Options shared by every command, and the command being run. */
struct cli {
    const struct cli_cmd *cmd;
    uint64_t ram_limit;   /* 0 = the library's default */
    int pager;            /* BA_PAGER_* */
    int64_t lock_wait_ms; /* how long a commit waits for another process's; < 0 forever */
    int nosync;
    int quiet;
    int json;
};

/* ---- the command table (main.c) ----------------------------------------------- */

const struct cli_cmd *cli_cmd_find(const char *name);
/* Print the command's full help to f. */
void cli_cmd_help(const struct cli_cmd *cmd, FILE *f);

int cmd_create(struct cli *c, int argc, char **argv);
int cmd_ls(struct cli *c, int argc, char **argv);
int cmd_info(struct cli *c, int argc, char **argv);
int cmd_import(struct cli *c, int argc, char **argv);
int cmd_append(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);
/* import and append share their implementation (cmd_import.c). */
int cli_import_run(struct cli *c, int argc, char **argv, int append);
int cmd_get(struct cli *c, int argc, char **argv);
int cmd_set(struct cli *c, int argc, char **argv);
int cmd_stats(struct cli *c, int argc, char **argv);
int cmd_resize(struct cli *c, int argc, char **argv);
int cmd_rm(struct cli *c, int argc, char **argv);
int cmd_cp(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_compact(struct cli *c, int argc, char **argv);
int cmd_du(struct cli *c, int argc, char **argv);

/* ---- options (args.c) ----------------------------------------------------------
 *
 * Long options (--name VALUE or --name=VALUE) and a few short ones (-h, -q and what
 * a command declares). Options and positional arguments mix freely; "--" ends the
 * options. An argument that starts with '-' but is not a declared short option is
 * positional when it looks like a number or a slice ("-1", "-3:", "-inf"), so
 * `bigarray set DB A -1 -2.5` works. The global options (--help, --quiet,
 * --ram-limit, --pager, and --json/--nosync where the command takes them) are
 * handled by the parser itself. */
#define CLI_MAX_POS 8

struct cli_opt {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 if none */
    int has_arg;
    int id; /* > 0, returned by cli_args_next() */
};

struct cli_args {
    struct cli *c;
    const struct cli_opt *opts; /* terminated by a zeroed entry; may be NULL */
    int argc, i;
    char **argv;
    int only_pos; /* after "--" */
    int npos;
    const char *pos[CLI_MAX_POS];
    int help; /* --help seen */
};

#define CLI_ARGS_END   0  /* all arguments consumed */
#define CLI_ARGS_ERROR -1 /* a usage error was printed */

/* Start parsing argv[1..argc-1] (argv[0] is the command name). */
void cli_args_init(struct cli_args *p, struct cli *c, const struct cli_opt *opts, int argc,
                   char **argv);
/* Next command option: its id (with *arg set when it takes one), CLI_ARGS_END or
 * CLI_ARGS_ERROR. Positional arguments are collected into p->pos. */
int cli_args_next(struct cli_args *p, const char **arg);
/* Parse the remaining arguments, accepting no command-specific options. Then check
 * the number of positional arguments; on --help prints help and returns 0 with
 * *done set. Returns 0, or CLI_EXIT_USAGE after printing the error. */
int cli_args_finish(struct cli_args *p, int min_pos, int max_pos, int *done);

/* ---- errors (util.c) -------------------------------------------------------- */

/* "bigarray: CMD: message" on stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const struct cli *c, const char *fmt, ...) CLI_PRINTF(2, 3);
/* The same, followed by ": " and the library's message for err (ba_errmsg(), or
 * ba_strerror(err) when it is empty). Call it right after the failing call. */
int cli_fail_ba(const struct cli *c, int err, const char *fmt, ...) CLI_PRINTF(3, 4);
/* "bigarray: CMD: message (see 'bigarray help CMD')"; returns CLI_EXIT_USAGE. */
int cli_usage(const struct cli *c, const char *fmt, ...) CLI_PRINTF(2, 3);

/* ---- databases and arrays (util.c) ----------------------------------------- */

#define CLI_OPEN_RDONLY 0x1u
#define CLI_OPEN_CREATE 0x2u

/* Open the database at path with the global options; prints the error. Returns 0 or
 * CLI_EXIT_FAIL. */
int cli_db_open(const struct cli *c, const char *path, unsigned how, ba_db **out);
/* Begin a session; prints the error. Returns 0 or CLI_EXIT_FAIL. */
int cli_session_begin(const struct cli *c, ba_db *db, const char *path, ba_session **out);
/* Open an array; prints "array 'NAME' ..." errors. Returns 0 or CLI_EXIT_FAIL. */
int cli_array_open(const struct cli *c, ba_session *s, const char *path, const char *name,
                   ba_array **out);
/* Fill info of an array; prints the error. Returns 0 or CLI_EXIT_FAIL. */
int cli_array_info(const struct cli *c, ba_array *a, const char *name, ba_array_info *info);
/* How many bytes a streaming command maps at a time: a quarter of the pager's RAM
 * budget, between 1 MiB and 64 MiB. */
uint64_t cli_chunk_bytes(ba_db *db);
/* Commit; prints the error naming what was being committed. Returns 0 or CLI_EXIT_FAIL. */
int cli_commit(const struct cli *c, ba_session *s, const char *what);

/* ---- text (util.c) -------------------------------------------------------------- */

/* Parse a size: digits with an optional binary suffix K, M, G, T, P (KiB, K, k, KB
 * all mean 1024). Returns 0 or -1 with a message in err. */
int cli_parse_size(const char *text, uint64_t *out, char *err, size_t errlen);
/* Parse a shape: "1000,1024", "(1000, 1024)", "(5,)", "5", "()" is refused. Returns
 * the number of dims (>= 1) or -1 with a message in err. */
int cli_parse_shape(const char *text, int64_t *shape, int max, char *err, size_t errlen);
/* Format a shape the way numpy prints it: "(3, 4)", "(5,)". Returns buf. */
char *cli_format_shape(int ndim, const int64_t *shape, char *buf, size_t len);
/* Human-readable bytes: "1.5 GiB", "512 B". Returns buf. */
char *cli_format_bytes(uint64_t n, char *buf, size_t len);

/* Option values shared by create and import; each prints a usage error naming the
 * option and returns CLI_EXIT_USAGE, or returns 0. */
int cli_opt_dtype(const struct cli *c, const char *arg, ba_dtype *out);
int cli_opt_shape(const struct cli *c, const char *opt, const char *arg, int *ndim, int64_t *shape);
int cli_opt_order(const struct cli *c, const char *arg, char *out);
int cli_opt_block_size(const struct cli *c, const char *arg, uint32_t *out);
int cli_opt_codec(const struct cli *c, const char *arg, ba_array_spec *spec);

/* ---- signals (util.c) -------------------------------------------------------- */

/* The signal that asked a long operation to stop (SIGINT, SIGTERM, SIGHUP), or 0. */
extern volatile sig_atomic_t cli_stop_signal;
/* Make SIGINT, SIGTERM and SIGHUP set cli_stop_signal instead of killing the process
 * (the second one kills). Blocking calls then fail with EINTR. */
void cli_stop_signals_install(void);
/* Report SIGBUS (a block that could not be loaded inside a fault) as one line and
 * exit 1 instead of dumping core. */
void cli_sigbus_install(const char *cmdname);
/* A command that reads through a view it did not preload may catch that SIGBUS
 * instead: sigsetjmp(cli_sigbus_jmp, 1), set cli_sigbus_armed, read, clear it. The
 * handler then jumps back, and ba_array_fault_error() says which block failed. Code
 * between the two must not allocate (the jump would leak it). */
extern sigjmp_buf cli_sigbus_jmp;
extern volatile sig_atomic_t cli_sigbus_armed;

#endif /* BA_CLI_H */
