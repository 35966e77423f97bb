/*
 * gen_shd.c - `elm gen shd`: writes shd_train.h5 and shd_test.h5, Spiking-Heidelberg-Digits-like
 * data synthesised here (espeak-ng speech through the artificial cochlea), so the SHD tasks run
 * without downloading the data set. docs/SHD-GENERATOR.md describes the model.
 */
#include "shd/gen_shd.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Called from the `elm gen` table in dispatch.c. */
int cmd_gen_shd(int argc, char **argv);

static const char gen_usage[] =
    "usage: elm gen shd --out DIR [--seed S] [--speakers N] [--repeats R] [--test-fraction F]\n"
    "                   [--channels C] [--fibres F] [--level L] [--weight W] [--espeak PROGRAM]\n"
    "                   [--quiet]\n\n"
    "Synthesises the spoken digits 0-9 in English and German (labels 0-9 and 10-19) with\n"
    "espeak-ng for N speakers (default 24), R utterances of each (default 2), passes them\n"
    "through an artificial cochlea (700 channels, bushy-cell spikes) and writes\n"
    "DIR/shd_train.h5 and DIR/shd_test.h5 in the layout of the Spiking Heidelberg Digits. The\n"
    "last round(F * N) speakers (default F = 0.2, at least one) make the test file only.\n"
    "--channels, --fibres, --level (RMS of the normalised audio) and --weight (membrane jump\n"
    "per fibre spike, threshold 1) change the cochlea; docs/SHD-GENERATOR.md lists them all.\n"
    "Needs the espeak-ng program (Debian package espeak-ng).\n";

static void progress(void *user, int done, int total) {
    (void)user;
    if (done == total || done % 20 == 0)
        fprintf(stderr, "\relm gen shd: %d/%d samples", done, total);
    if (done == total)
        fputc('\n', stderr);
}

int cmd_gen_shd(int argc, char **argv) {
    elm_shd_gen_opts o;
    elm_shd_gen_defaults(&o);
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        long l;
        double d;
        if (cli_is_help(argv[i])) {
            fputs(gen_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (cli_flag_value(argc, argv, &i, "--out", &v)) {
            if (!v)
                return cli_usage_error(gen_usage, "--out needs a folder");
            o.out_dir = v;
        } else if (cli_flag_value(argc, argv, &i, "--espeak", &v)) {
            if (!v || !*v)
                return cli_usage_error(gen_usage, "--espeak needs a program");
            o.espeak = v;
        } else if (cli_flag_value(argc, argv, &i, "--seed", &v)) {
            if (!v || !cli_parse_int("--seed", v, &l) || l < 0)
                return cli_usage_error(gen_usage, "--seed needs an integer >= 0");
            o.seed = (uint64_t)l;
        } else if (cli_flag_value(argc, argv, &i, "--speakers", &v)) {
            if (!v || !cli_parse_int("--speakers", v, &l) || l < 2 || l > 256)
                return cli_usage_error(gen_usage, "--speakers needs an integer in [2, 256]");
            o.speakers = (int)l;
        } else if (cli_flag_value(argc, argv, &i, "--repeats", &v)) {
            if (!v || !cli_parse_int("--repeats", v, &l) || l < 1 || l > 1000)
                return cli_usage_error(gen_usage, "--repeats needs an integer in [1, 1000]");
            o.repeats = (int)l;
        } else if (cli_flag_value(argc, argv, &i, "--test-fraction", &v)) {
            if (!v || !cli_parse_double("--test-fraction", v, &d) || !(d > 0.0 && d < 1.0))
                return cli_usage_error(gen_usage, "--test-fraction needs a number in (0, 1)");
            o.test_fraction = d;
        } else if (cli_flag_value(argc, argv, &i, "--channels", &v)) {
            if (!v || !cli_parse_int("--channels", v, &l) || l < 1 || l > 65535)
                return cli_usage_error(gen_usage, "--channels needs an integer in [1, 65535]");
            o.cochlea.num_channels = (int)l;
        } else if (cli_flag_value(argc, argv, &i, "--fibres", &v)) {
            if (!v || !cli_parse_int("--fibres", v, &l) || l < 1 || l > 10000)
                return cli_usage_error(gen_usage, "--fibres needs an integer in [1, 10000]");
            o.cochlea.fibres = (int)l;
        } else if (cli_flag_value(argc, argv, &i, "--weight", &v)) {
            if (!v || !cli_parse_double("--weight", v, &d) || !(d > 0.0 && d <= 1e3))
                return cli_usage_error(gen_usage, "--weight needs a number in (0, 1000]");
            o.cochlea.weight = d;
        } else if (cli_flag_value(argc, argv, &i, "--level", &v)) {
            if (!v || !cli_parse_double("--level", v, &d) || !(d > 0.0 && d < 1e6))
                return cli_usage_error(gen_usage, "--level needs a number in (0, 1e6)");
            o.cochlea.level = d;
        } else {
            return cli_usage_error(gen_usage, "gen shd: unknown argument '%s'", argv[i]);
        }
    }
    if (!o.out_dir)
        return cli_usage_error(gen_usage, "gen shd: --out DIR is required");
    if (!quiet && isatty(STDERR_FILENO)) {
        o.progress = progress;
        o.user = NULL;
    }
    elm_shd_gen_stats s;
    elm_status st = elm_shd_generate(&o, &s);
    if (st != ELM_OK)
        return cli_fail(st, NULL);
    if (!quiet) {
        printf("wrote %s/shd_train.h5 (%d samples, %d speakers) and %s/shd_test.h5 (%d samples, "
               "%d speakers)\n",
               o.out_dir, s.n_train, s.speakers_train, o.out_dir, s.n_test, s.speakers_test);
        printf("spikes per sample: mean %.0f, min %.0f, max %.0f; last spike at %.3f s on "
               "average (max %.3f s); audio %.3f s on average; %.1f s\n",
               s.spikes_mean, s.spikes_min, s.spikes_max, s.dur_mean, s.dur_max, s.audio_mean,
               s.seconds);
        for (int k = 0; k < o.speakers; k++) {
            char line[256];
            elm_shd_gen_describe_speaker(o.seed, k, line, sizeof line);
            printf("  speaker %2d (%s): %s\n", k, k < s.speakers_train ? "train" : "test", line);
        }
    }
    return 0;
}
