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
    unsigned long long seed = o.seed;
    long speakers = o.speakers, repeats = o.repeats, channels = o.cochlea.num_channels,
         fibres = o.cochlea.fibres;
    double test_fraction = o.test_fraction, weight = o.cochlea.weight, level = o.cochlea.level;
    const cli_flag flags[] = {
        {"--out", CLI_STR, &o.out_dir, 0, 0, 0},
        {"--espeak", CLI_STR, &o.espeak, 0, 0, 0},
        {"--seed", CLI_U64, &seed, 0, 0, 0},
        {"--speakers", CLI_INT, &speakers, 2, 256, 0},
        {"--repeats", CLI_INT, &repeats, 1, 1000, 0},
        {"--test-fraction", CLI_REAL, &test_fraction, 0, 1, CLI_OPEN_LO | CLI_OPEN_HI},
        {"--channels", CLI_INT, &channels, 1, 65535, 0},
        {"--fibres", CLI_INT, &fibres, 1, 10000, 0},
        {"--weight", CLI_REAL, &weight, 0, 1e3, CLI_OPEN_LO},
        {"--level", CLI_REAL, &level, 0, 1e6, CLI_OPEN_LO | CLI_OPEN_HI},
        {"--quiet", CLI_SWITCH, &quiet, 0, 0, 0},
    };
    int rc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                             gen_usage, "gen shd");
    if (rc >= 0)
        return rc;
    o.seed = (uint64_t)seed;
    o.speakers = (int)speakers;
    o.repeats = (int)repeats;
    o.test_fraction = test_fraction;
    o.cochlea.num_channels = (int)channels;
    o.cochlea.fibres = (int)fibres;
    o.cochlea.weight = weight;
    o.cochlea.level = level;
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
