/*
 * dispatch.c - second-level command tables: `elm gen KIND`, `elm data VERB`.
 *
 * Each data set area adds its entries here; the handlers live beside the area's other commands.
 */
#include "cli.h"
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int cmd_gen_neuronio_teacher(int argc, char **argv);
int cmd_gen_shd(int argc, char **argv);
int cmd_gen_pathfinder(int argc, char **argv);
int cmd_data_convert_neuronio(int argc, char **argv);
/* `elm data info PATH`: each returns -1 when PATH is not its format, else an exit status. */
int cmd_data_info_neuronio(int argc, char **argv);
int cmd_data_info_shd(int argc, char **argv);
int cmd_data_info_pathfinder(int argc, char **argv);

typedef struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} subcmd;

static const subcmd gens[] = {
    {"neuronio-teacher", cmd_gen_neuronio_teacher, "simulate the built-in teacher neuron"},
    {"shd", cmd_gen_shd, "synthesise spoken digits as SHD spike trains (espeak-ng + cochlea)"},
    {"pathfinder", cmd_gen_pathfinder, "draw Pathfinder images in the LRA layout"},
};

/* The list of kinds: to stdout when asked for (--help), to stderr after a usage error. */
static void sub_usage(FILE *f, const char *what, const subcmd *t, size_t n) {
    fprintf(f, "usage: elm %s KIND [ARGS]\n\n", what);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-18s %s\n", t[i].name, t[i].summary);
    fprintf(f, "\n`elm %s KIND --help` describes each.\n", what);
}

int cmd_gen(int argc, char **argv) {
    size_t n = sizeof gens / sizeof gens[0];
    if (argc < 2 || cli_is_help(argv[1])) {
        sub_usage(argc < 2 ? stderr : stdout, "gen", gens, n);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], gens[i].name))
            return gens[i].fn(argc - 1, argv + 1);
    const char *names[sizeof gens / sizeof gens[0]];
    for (size_t i = 0; i < n; i++)
        names[i] = gens[i].name;
    cli_error("unknown generator '%s'%s", argv[1], elm__suggest(argv[1], names, (int)n));
    sub_usage(stderr, "gen", gens, n);
    return 2;
}

static const char data_usage[] =
    "usage: elm data info PATH [--json]\n"
    "       elm data convert neuronio SRC... --out DIR\n\n"
    "info: describes an SHD .h5 file or folder (shd_train.h5, shd_test.h5), a Pathfinder\n"
    "  folder (LRA layout), or NeuronIO data (a cache folder or pickles).\n"
    "convert: turns NeuronIO pickle files into elm's compact cache (see docs/DATA.md).\n";

int cmd_data(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(data_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "convert")) {
        if (argc >= 3 && !strcmp(argv[2], "neuronio"))
            return cmd_data_convert_neuronio(argc - 2, argv + 2);
        if (argc < 3 || cli_is_help(argv[2])) {
            fputs(data_usage, argc < 3 ? stderr : stdout);
            return argc < 3 ? 2 : 0;
        }
        static const char *const formats[] = {"neuronio"};
        return cli_usage_error(data_usage, "data convert: unknown format '%s'%s (elm converts "
                                           "neuronio pickles; SHD and Pathfinder are read as "
                                           "they are)",
                               argv[2], elm__suggest(argv[2], formats, 1));
    }
    if (!strcmp(argv[1], "info")) {
        if (argc < 3 || cli_is_help(argv[2])) {
            fputs(data_usage, argc < 3 ? stderr : stdout);
            return argc < 3 ? 2 : 0;
        }
        int (*const infos[])(int, char **) = {cmd_data_info_shd, cmd_data_info_pathfinder,
                                               cmd_data_info_neuronio};
        for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++) {
            int rc = infos[i](argc - 1, argv + 1);
            if (rc >= 0)
                return rc;
        }
        const char *path = cli_first_arg(argc, argv, 2, NULL, 0); /* not a flag */
        if (!path)
            return cli_usage_error(data_usage, "data info needs a PATH");
        struct stat sb;
        if (stat(path, &sb) != 0)
            return cli_error("%s: %s", path, strerror(errno));
        return cli_error("%s: not a data set elm knows (SHD .h5 file or folder, Pathfinder folder "
                         "in the LRA layout, NeuronIO cache folder or pickles)",
                         path);
    }
    static const char *const verbs[] = {"info", "convert"};
    return cli_usage_error(data_usage, "data: unknown verb '%s'%s", argv[1],
                           elm__suggest(argv[1], verbs, 2));
}
