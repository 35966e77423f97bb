/*
 * gen_neuronio.c - `elm gen neuronio-teacher`: simulates the built-in teacher neuron
 * (src/neuronio/teacher.h) and writes the samples as a NeuronIO cache, the same form
 * `elm data convert neuronio` produces, so training and evaluation read either.
 *
 * Sample k depends only on (--seed, k): threads change the speed, never the file.
 */
#include "cli.h"
#include "neuronio/teacher.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char gen_usage[] =
    "usage: elm gen neuronio-teacher --sims N --out DIR [--seed S] [--duration-ms MS]\n"
    "                                [--name NAME] [--threads N]\n\n"
    "Simulates the built-in teacher neuron (a Hodgkin-Huxley soma with 10 passive dendritic\n"
    "compartments, 639 AMPA+NMDA and 639 GABA_A synapses; docs/TEACHER.md) driven by\n"
    "NeuronIO-style inputs, and writes DIR/NAME.nioc (a NeuronIO cache, docs/DATA.md).\n\n"
    "  --sims N          simulations to write (required)\n"
    "  --out DIR         output folder, created if needed (required)\n"
    "  --seed S          data set seed (default 1); sample k depends only on (S, k)\n"
    "  --duration-ms MS  length of each simulation, 1 ms steps (default 6000)\n"
    "  --name NAME       file name without .nioc (default teacher_seed<S>)\n"
    "  --threads N       simulations run in parallel (default: OpenMP's, i.e. all cores)\n";

/* Declared in dispatch.c, the caller; repeated for -Wmissing-prototypes. */
int cmd_gen_neuronio_teacher(int argc, char **argv);

/* What `gen neuronio-teacher` reports of the simulations it wrote. */
typedef struct gen_stats {
    long total_spikes, kept;  /* output spikes; simulations with 0..24 of them */
    double vsum, in_spikes;   /* sum of mean soma voltages; input spikes */
    double sim_wall, sim_cpu; /* seconds simulating: wall, CPU of all threads */
} gen_stats;

static void gen_stats_add(gen_stats *g, const elm_nio_sim *s) {
    double m = 0;
    for (int t = 0; t < s->T; t++)
        m += (double)s->soma[t];
    g->vsum += m / s->T;
    g->total_spikes += s->n_out_spikes;
    g->kept += s->n_out_spikes <= 24;
    g->in_spikes += (double)s->spike_ptr[s->T];
}

static void gen_stats_print(const gen_stats *g, long sims, long duration, double secs) {
    const double sim_s = (double)sims * (double)duration / 1000.0;
    printf("  output rate      %.3f Hz (%ld spikes)\n", (double)g->total_spikes / sim_s,
           g->total_spikes);
    printf("  mean soma        %.2f mV\n", g->vsum / (double)sims);
    printf("  0..24 spikes     %.3f of simulations\n", (double)g->kept / (double)sims);
    printf("  input spikes     %.2f per ms\n", g->in_spikes / ((double)sims * (double)duration));
    printf("  time             %.2f s in all, %.2f s simulating (%d threads); CPU %.1f ms per "
           "simulated second\n",
           secs, g->sim_wall, omp_get_max_threads(), 1000.0 * g->sim_cpu / sim_s);
}

int cmd_gen_neuronio_teacher(int argc, char **argv) {
    long sims = -1, duration = 6000, threads = 0;
    unsigned long long seed = 1;
    const char *out = NULL, *name = NULL;
    const cli_flag flags[] = {
        {"--sims", CLI_INT, &sims, 1, 10000000, 0},
        {"--seed", CLI_U64, &seed, 0, 0, 0},
        {"--duration-ms", CLI_INT, &duration, 1, 10000000, 0},
        {"--threads", CLI_INT, &threads, 0, 4096, 0},
        {"--out", CLI_STR, &out, 0, 0, 0},
        {"--name", CLI_STR, &name, 0, 0, 0},
    };
    int rc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                             gen_usage, "gen neuronio-teacher");
    if (rc >= 0)
        return rc;
    if (sims < 0)
        return cli_usage_error(gen_usage, "--sims N is required");
    if (!out)
        return cli_usage_error(gen_usage, "--out DIR is required");
    if (name && strchr(name, '/'))
        return cli_usage_error(gen_usage, "--name must be a plain file name, got '%s'", name);
    char default_name[64];
    snprintf(default_name, sizeof default_name, "teacher_seed%llu", seed);
    if (!name)
        name = default_name;
    if (threads > 0)
        omp_set_num_threads((int)threads);

    elm_teacher_params p;
    elm_teacher_input_params ip;
    elm_teacher_params_default(&p);
    elm_teacher_input_params_default(&ip);
    elm_nio_writer *w = NULL;
    elm_status st = elm_nio_writer_open(&w, out, name);
    if (st != ELM_OK)
        return cli_fail(st, NULL);

    /* Simulate in chunks in parallel, then append in order (the writer is sequential). */
    const int chunk = 4 * omp_get_max_threads();
    elm_nio_sim *batch = calloc((size_t)chunk, sizeof *batch);
    elm_status *sts = calloc((size_t)chunk, sizeof *sts);
    char(*errs)[256] = calloc((size_t)chunk, sizeof *errs);
    if (!batch || !sts || !errs) {
        elm_nio_writer_abort(w);
        free(batch);
        free(sts);
        free(errs);
        return cli_error("out of memory");
    }
    gen_stats g = {0};
    const double t0 = elm__now_s();
    for (long k0 = 0; k0 < sims && st == ELM_OK; k0 += chunk) {
        int n = (int)(sims - k0 < chunk ? sims - k0 : chunk);
        double ts = elm__now_s();
        clock_t cs = clock(); /* CPU time of all threads: the cost, whatever else runs */
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < n; j++) {
            sts[j] = elm_teacher_run(&batch[j], &p, &ip, (int)duration,
                                     elm_teacher_sim_seed(seed, (uint64_t)(k0 + j)));
            /* elm_last_error() is per thread: keep the message for the main thread. */
            if (sts[j] != ELM_OK)
                snprintf(errs[j], sizeof errs[j], "%s", elm_last_error());
        }
        g.sim_wall += elm__now_s() - ts;
        g.sim_cpu += (double)(clock() - cs) / CLOCKS_PER_SEC;
        for (int j = 0; j < n; j++) {
            if (st == ELM_OK && sts[j] != ELM_OK) {
                st = sts[j];
                fprintf(stderr, "elm: error: simulation %ld: %s\n", k0 + j, errs[j]);
            }
            if (st == ELM_OK) {
                gen_stats_add(&g, &batch[j]);
                st = elm_nio_writer_add(w, &batch[j]);
                if (st != ELM_OK)
                    cli_fail(st, NULL);
            }
            elm_nio_sim_clear(&batch[j]);
        }
    }
    free(batch);
    free(sts);
    free(errs);
    if (st != ELM_OK) {
        elm_nio_writer_abort(w);
        return 1;
    }
    st = elm_nio_writer_close(w);
    if (st != ELM_OK)
        return cli_fail(st, NULL);
    const double secs = elm__now_s() - t0;
    printf("wrote %ld simulations of %ld ms to %s/%s.nioc (seed %llu)\n", sims, duration, out, name,
           seed);
    gen_stats_print(&g, sims, duration, secs);
    return 0;
}
