/*
 * dispatch.c - second-level command tables: `elm gen KIND`, `elm data VERB`.
 *
 * Each data set area adds its entries here; the handlers live beside the area's other commands.
 */
#include "cli.h"

#include <string.h>

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

static int sub_usage(const char *what, const subcmd *t, size_t n) {
    fprintf(stderr, "usage: elm %s KIND [ARGS]\n\n", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %-18s %s\n", t[i].name, t[i].summary);
    return 2;
}

int cmd_gen(int argc, char **argv) {
    size_t n = sizeof gens / sizeof gens[0];
    if (argc < 2 || cli_is_help(argv[1]))
        return sub_usage("gen", gens, n), argc < 2 ? 2 : 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], gens[i].name))
            return gens[i].fn(argc - 1, argv + 1);
    cli_error("unknown generator '%s'", argv[1]);
    return sub_usage("gen", gens, n);
}

static const char data_usage[] =
    "usage: elm data info PATH [--json]\n"
    "       elm data convert neuronio SRC... --out DIR\n\n"
    "info: describes an SHD .h5 file, a Pathfinder folder (LRA layout) or a NeuronIO cache.\n"
    "convert: turns NeuronIO pickle files into elm's compact cache (see docs/DATA.md).\n";

int cmd_data(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(data_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "convert")) {
        if (argc >= 3 && !strcmp(argv[2], "neuronio"))
            return cmd_data_convert_neuronio(argc - 2, argv + 2);
        return cli_usage_error(data_usage, "data convert: unknown format '%s'",
                               argc >= 3 ? argv[2] : "");
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
        return cli_error("%s: not a data set elm knows (SHD .h5 file, Pathfinder folder in the "
                         "LRA layout, or NeuronIO cache folder)",
                         argv[2]);
    }
    return cli_usage_error(data_usage, "data: unknown verb '%s'", argv[1]);
}
