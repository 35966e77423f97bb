/*
 * cli.h - shared pieces of the `elm` command line: argument helpers and error reporting.
 *
 * Commands return an exit status: 0 ok, 1 runtime error, 2 usage error. cli_error() prints
 * "elm: error: ..." (and a hint line when given) to stderr.
 */
#ifndef ELM_CLI_H
#define ELM_CLI_H

#include "elm.h"

#include <stdio.h>

typedef int (*cli_cmd_fn)(int argc, char **argv);

int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a failed library call: elm_last_error() plus an optional hint; returns 1. */
int cli_fail(elm_status st, const char *hint);

/* Parses an integer / float flag value; returns 0 and prints a usage error on failure. */
int cli_parse_int(const char *flag, const char *s, long *out);
int cli_parse_double(const char *flag, const char *s, double *out);
/* A non-negative integer up to 2^64 - 1 (seeds). */
int cli_parse_u64(const char *flag, const char *s, unsigned long long *out);
/* 1 if argv[*i] is `flag`, and then consumes its value into *val (usage error if missing). */
int cli_flag_value(int argc, char **argv, int *i, const char *flag, const char **val);
/* 1 if `s` asks for help (-h, --help). */
int cli_is_help(const char *s);

/*
 * Declarative flags. A command lists its flags in a table and cli_parse_flags() walks argv, takes
 * each flag as `--name VALUE` or `--name=VALUE`, checks the value and stores it.
 */
typedef enum {
    CLI_STR,    /* const char **: the value as given (not empty) */
    CLI_INT,    /* long *: an integer in [lo, hi] */
    CLI_REAL,   /* double *: a number in [lo, hi]; `open` makes either end exclusive */
    CLI_U64,    /* unsigned long long *: a non-negative integer (seeds) */
    CLI_SWITCH, /* int *: set to 1; takes no value */
    CLI_CALL,   /* cli_call *: its function gets the flag and its value (repeatable flags) */
} cli_kind;

/* A CLI_CALL flag's handler: returns 0, or the exit status to stop with (after a message). */
typedef struct {
    int (*fn)(void *ctx, const char *flag, const char *value);
    void *ctx;
} cli_call;

#define CLI_OPEN_LO 1
#define CLI_OPEN_HI 2

typedef struct {
    const char *name; /* NULL: the positional entry, a CLI_CALL that gets every argument not
                       * starting with '-' (flag NULL, value the argument), e.g. SRC... */
    cli_kind kind;
    void *dst;
    double lo, hi; /* CLI_INT, CLI_REAL: the accepted range */
    int open;      /* CLI_REAL: CLI_OPEN_LO and/or CLI_OPEN_HI */
} cli_flag;

/* A positional entry's handler for a command that takes one PATH: the first argument goes to
 * *dst, a second one is a usage error ("`what`: unexpected argument"). */
typedef struct {
    const char **dst;
    const char *usage, *what;
} cli_one_arg;
int cli_take_one_arg(void *ctx, const char *flag, const char *value);

/*
 * The first argument of argv[first ..] that is neither a flag of the table nor a flag's value,
 * or NULL: for handlers that must know whether PATH is theirs before judging their flags.
 */
const char *cli_first_arg(int argc, char **argv, int first, const cli_flag *flags, int nflags);

/*
 * Parses argv[first ..]. Returns -1 when every argument was a flag of the table, 0 after printing
 * `usage` for -h / --help, and 2 after a usage error that names the argument: an unknown one
 * ("`what`: unknown argument"), a missing value, a value that is not a number, or one out of
 * range; or a CLI_CALL handler's non-zero status.
 */
int cli_parse_flags(int argc, char **argv, int first, const cli_flag *flags, int nflags,
                    const char *usage, const char *what);

/*
 * Plotting through Python (pyplot.c). cli_python() returns the interpreter to use ($ELM_PYTHON,
 * else the first of python3 on PATH and /usr/bin/python3 that has numpy and matplotlib), or NULL
 * after printing why none fits. cli_script() returns the path of a plotting script (malloc'd),
 * searched in $ELM_SCRIPTS, the installed share/elm and the source tree, or NULL after printing
 * where it looked. With `note` set the message is a note ("elm: note: no plot: ...") for
 * commands whose plot is an extra, otherwise an error. cli_run_python() runs args (args[0] the
 * interpreter, args[1] the script) and returns 0, or 1 after an error naming the script.
 */
const char *cli_python(int note);
char *cli_script(const char *name, int note);
int cli_run_python(const char *python, char *const *args);

/* "s" unless n is 1: "%ld epoch%s", n, CLI_S(n). */
#define CLI_S(n) ((n) == 1 ? "" : "s")

/*
 * Checks a flat JSON object of training knobs and model options (a sweep point) as `elm train
 * TASK` would take it: every key known, every value of the right kind and in range, and the
 * model configuration valid for the task's data. ELM_OK, or an error naming `origin`.
 */
struct cJSON;
elm_status train_check_settings(const char *task, const struct cJSON *obj, const char *origin);

/* Subcommands. */
int cmd_info(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_train(int argc, char **argv);
/* `elm train` arguments (argv[0] "train", argv[1] TASK, flags) into *s, as the run takes them;
 * -1 to go on, else the exit status (the error printed; usage: NULL prints no usage text). */
struct elm_train_spec;
int train_parse(int argc, char **argv, struct elm_train_spec *s, int *resume, const char *usage);
int cmd_eval(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* The measured float32 peak of one core in GFLOP/s (0 if not measured); *how names the
 * instructions used. */
double bench_peak_gflops(const char **how);
int cmd_sweep(int argc, char **argv);

/*
 * MPI (cli/mpi.c). cli_mpi_start() starts MPI when a launcher's environment says this process is
 * one of several (else does nothing): returns 0, or an exit status after an error - in a build
 * without MPI, a message saying so. cli_mpi_rank / cli_mpi_size are then this process's rank
 * and the job's size (0 and 1 without MPI). cli_mpi_end(rc) ends MPI: a failure (rc other than
 * 0 and 130) ends the whole job with MPI_Abort; returns rc.
 */
extern int cli_mpi_rank, cli_mpi_size;
int cli_mpi_built(void);
int cli_mpi_env_size(const char **var);
int cli_mpi_start(const char *cmd, int *argc, char ***argv);
int cli_mpi_end(int rc);
/* Ends MPI normally whatever rc is (all ranks reached the same point); returns rc. */
int cli_mpi_finish(int rc);
/* The training library's data-parallel calls over MPI_COMM_WORLD (elm_train.h). */
struct elm_train_dist;
void cli_mpi_train_dist(struct elm_train_dist *d);
/* Seconds, bytes and calls of the gradient allreduces so far (this process); reset: zeroes them
 * (after the batch timed for the budget, which is no training batch). */
void cli_mpi_stats(double *secs, double *bytes, long *calls);
void cli_mpi_stats_reset(void);
/* In place over the ranks: the elementwise max of v (n), the sum of *sum; 0 or 1 (error). */
int cli_mpi_max_ints(int *v, int n, int *sum);

#endif
