/*
 * main.c - the `elm` command: a table of subcommands, each in its own file under cli/.
 */
#include "cli.h"
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"info", cmd_info, "show a model's version, configuration and parameter count"},
    {"predict", cmd_predict, "run a model over inputs in a .npy file"},
    {"grad", cmd_grad, "gradients of sum(Y * G) for every trainable parameter"},
    {"convert", cmd_convert, "write a model as .safetensors or as a PyTorch .pt state dict"},
    {"train", cmd_train, "train a model on a task (neuronio, shd, shd-adding, pathfinder)"},
    {"eval", cmd_eval, "evaluate a model on a task's data"},
    {"gen", cmd_gen, "generate built-in data sets (neuronio-teacher, shd, pathfinder)"},
    {"data", cmd_data, "inspect and convert data sets (info, convert)"},
    {"plot", cmd_plot, "draw a model's predictions on a sample"},
    {"bench", cmd_bench, "measure throughput against the reference implementation"},
    {"sweep", cmd_sweep, "train one model per point of a grid (ablations)"},
};

static void usage(FILE *f) {
    fprintf(f, "elm %s - the Expressive Leaky Memory neuron\n\nusage: elm COMMAND [ARGS]\n\n",
            elm_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`elm COMMAND --help` describes each command.\n");
}

/* "rank R of N: " under MPI (cli/mpi.c), so that a job's errors name their process. */
static void error_lead(void) {
    if (cli_mpi_size > 1)
        fprintf(stderr, "elm: rank %d of %d: error: ", cli_mpi_rank, cli_mpi_size);
    else
        fprintf(stderr, "elm: error: ");
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    error_lead();
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

int cli_usage_error(const char *usage_text, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "elm: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (usage_text)
        fprintf(stderr, "%s", usage_text);
    return 2;
}

int cli_fail(elm_status st, const char *hint) {
    error_lead();
    fprintf(stderr, "%s\n", elm_last_error());
    if (hint)
        fprintf(stderr, "hint: %s\n", hint);
    (void)st;
    return 1;
}

int cli_parse_int(const char *flag, const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) {
        fprintf(stderr, "elm: error: %s expects an integer, got '%s'\n", flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_double(const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno) {
        fprintf(stderr, "elm: error: %s expects a number, got '%s'\n", flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_u64(const char *flag, const char *s, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || *s == '-' || errno) {
        fprintf(stderr, "elm: error: %s expects a non-negative integer, got '%s'\n", flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_flag_value(int argc, char **argv, int *i, const char *flag, const char **val) {
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *val = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != 0)
        return 0;
    if (*i + 1 >= argc) {
        *val = NULL;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

int cli_is_help(const char *s) {
    return !strcmp(s, "-h") || !strcmp(s, "--help") || !strcmp(s, "help");
}

/* "an integer in [2, 256]", "a number in (0, 1)", "an integer >= 0", ... */
static void describe_range(char *buf, size_t n, const cli_flag *f) {
    const int integer = f->kind == CLI_INT;
    const char *what = integer ? "an integer" : "a number";
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, integer ? "%.0f" : "%g", f->lo);
    snprintf(hi, sizeof hi, integer ? "%.0f" : "%g", f->hi);
    const int has_lo = f->lo > -HUGE_VAL, has_hi = f->hi < HUGE_VAL;
    if (has_lo && has_hi)
        snprintf(buf, n, "%s in %c%s, %s%c", what, f->open & CLI_OPEN_LO ? '(' : '[', lo, hi,
                 f->open & CLI_OPEN_HI ? ')' : ']');
    else if (has_lo)
        snprintf(buf, n, "%s %s %s", what, f->open & CLI_OPEN_LO ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, n, "%s %s %s", what, f->open & CLI_OPEN_HI ? "<" : "<=", hi);
    else
        snprintf(buf, n, "%s", what);
}

static int in_range(const cli_flag *f, double v) {
    if (f->open & CLI_OPEN_LO ? !(v > f->lo) : !(v >= f->lo))
        return 0;
    return f->open & CLI_OPEN_HI ? v < f->hi : v <= f->hi;
}

int cli_take_one_arg(void *ctx, const char *flag, const char *value) {
    const cli_one_arg *a = ctx;
    if (*a->dst)
        return cli_usage_error(a->usage, "%s: unexpected argument '%s'", a->what, value);
    *a->dst = value;
    return 0;
}

const char *cli_first_arg(int argc, char **argv, int first, const cli_flag *flags, int nflags) {
    for (int i = first; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1])
            return argv[i];
        for (int k = 0; k < nflags; k++)
            if (flags[k].name && flags[k].kind != CLI_SWITCH && !strcmp(argv[i], flags[k].name)) {
                i++; /* its value (--name=value is one argument) */
                break;
            }
    }
    return NULL;
}

int cli_parse_flags(int argc, char **argv, int first, const cli_flag *flags, int nflags,
                    const char *usage, const char *what) {
    for (int i = first; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
        const cli_flag *f = NULL;
        const char *v = NULL;
        for (int k = 0; k < nflags && !f; k++) {
            if (!flags[k].name) {
                /* The positional entry: an argument that does not look like a flag. */
                if (argv[i][0] != '-' || !argv[i][1]) {
                    f = &flags[k];
                    v = argv[i];
                }
            } else if (flags[k].kind == CLI_SWITCH) {
                if (!strcmp(argv[i], flags[k].name))
                    f = &flags[k];
            } else if (cli_flag_value(argc, argv, &i, flags[k].name, &v)) {
                f = &flags[k];
            }
        }
        if (!f) {
            /* "did you mean": the flag part of --name=value against the table's names. */
            const char *names[64];
            int nn = 0;
            for (int k = 0; k < nflags && nn < 64; k++)
                if (flags[k].name)
                    names[nn++] = flags[k].name;
            char typed[64];
            snprintf(typed, sizeof typed, "%.*s", (int)strcspn(argv[i], "="), argv[i]);
            return cli_usage_error(usage, "%s: unknown argument '%s'%s", what, argv[i],
                                   argv[i][0] == '-' ? elm__suggest(typed, names, nn) : "");
        }
        char range[96];
        switch (f->kind) {
        case CLI_SWITCH:
            *(int *)f->dst = 1;
            break;
        case CLI_STR:
            if (!v || !*v)
                return cli_usage_error(usage, "%s needs a value", f->name);
            *(const char **)f->dst = v;
            break;
        case CLI_INT: {
            long l;
            describe_range(range, sizeof range, f);
            if (!v || !cli_parse_int(f->name, v, &l) || !in_range(f, (double)l))
                return cli_usage_error(usage, "%s needs %s", f->name, range);
            *(long *)f->dst = l;
            break;
        }
        case CLI_REAL: {
            double d;
            describe_range(range, sizeof range, f);
            if (!v || !cli_parse_double(f->name, v, &d) || !in_range(f, d))
                return cli_usage_error(usage, "%s needs %s", f->name, range);
            *(double *)f->dst = d;
            break;
        }
        case CLI_U64:
            if (!v || !cli_parse_u64(f->name, v, (unsigned long long *)f->dst))
                return cli_usage_error(usage, "%s needs an integer >= 0", f->name);
            break;
        case CLI_CALL: {
            if (f->name && (!v || !*v)) /* a positional argument is the handler's to check */
                return cli_usage_error(usage, "%s needs a value", f->name);
            const cli_call *c = f->dst;
            int rc = c->fn(c->ctx, f->name, v);
            if (rc)
                return rc;
            break;
        }
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    /* `elm help COMMAND [SUB...]` is `elm COMMAND [SUB...] --help`. */
    char *help_argv[8];
    if (argc >= 3 && !strcmp(argv[1], "help")) {
        int k = 0;
        help_argv[k++] = argv[0];
        for (int i = 2; i < argc && k < 6; i++)
            help_argv[k++] = argv[i];
        help_argv[k++] = "--help";
        help_argv[k] = NULL;
        argc = k;
        argv = help_argv;
    }
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("elm %s\n", elm_version());
        printf("fused multiply-adds (--set fma=1): %s\n",
               elm_fma_fuses() ? "fused on this CPU"
                               : "not fused here (no FMA on this CPU, or an unoptimised build)");
        return 0;
    }
    const size_t n = sizeof commands / sizeof commands[0];
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    const char *names[sizeof commands / sizeof commands[0]];
    for (size_t i = 0; i < n; i++)
        names[i] = commands[i].name;
    fprintf(stderr, "elm: error: unknown command '%s'%s\n", argv[1],
            elm__suggest(argv[1], names, (int)n));
    usage(stderr);
    return 2;
}
