/*
 * nio_synth.h - small synthetic NeuronIO data for tests of the NeuronIO task and the trainer:
 * caches of a few simulations with random input spikes, a wandering somatic voltage and a few
 * output spikes, written with the library's cache writer in milliseconds (the teacher model
 * would take seconds). The numbers mean nothing; the tests check what the code does with them.
 */
#ifndef ELM_TEST_NIO_SYNTH_H
#define ELM_TEST_NIO_SYNTH_H

#include "neuronio/neuronio.h"

#include <stdlib.h>

/* Writes DIR/<name>.nioc with `sims` simulations of T ms and n_in inputs, drawn from `seed`. */
static inline elm_status nio_synth_write(const char *dir, const char *name, int sims, int T,
                                         int n_in, uint64_t seed) {
    elm_nio_writer *w = NULL;
    elm_status st = elm_nio_writer_open(&w, dir, name);
    if (st)
        return st;
    elm__rng r;
    elm__rng_seed(&r, seed);
    for (int k = 0; k < sims && !st; k++) {
        elm_nio_sim s = {.T = T, .n_in = n_in};
        s.spike_ptr = calloc((size_t)T + 1, sizeof *s.spike_ptr);
        s.spike_idx = malloc(sizeof *s.spike_idx * (size_t)T * 8);
        s.soma = malloc(sizeof *s.soma * (size_t)T);
        s.out_spike_times = malloc(sizeof *s.out_spike_times * (size_t)(T / 100 + 1));
        if (!s.spike_ptr || !s.spike_idx || !s.soma || !s.out_spike_times) {
            elm_nio_sim_clear(&s);
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
            break;
        }
        int64_t nnz = 0;
        double v = -70;
        for (int t = 0; t < T; t++) {
            /* Up to 7 distinct ascending ids per step: a random start and random gaps. */
            int id = (int)elm__rng_below(&r, (uint64_t)(n_in / 8));
            int m = (int)elm__rng_below(&r, 8);
            for (int j = 0; j < m && id < n_in; j++) {
                s.spike_idx[nnz++] = (uint16_t)id;
                id += 1 + (int)elm__rng_below(&r, (uint64_t)(n_in / 8));
            }
            s.spike_ptr[t + 1] = nnz;
            v += 0.5 * (elm__rng_uniform(&r) - 0.5) - 0.01 * (v + 70);
            s.soma[t] = (float)v;
            if (t % 100 == 50 && s.n_out_spikes < T / 100 + 1) {
                s.out_spike_times[s.n_out_spikes++] = (float)t + 0.7f;
                s.soma[t] = 20; /* a spike: the target clips it at -55 mV */
            }
        }
        st = elm_nio_writer_add(w, &s);
        elm_nio_sim_clear(&s);
    }
    if (st) {
        elm_nio_writer_abort(w);
        return st;
    }
    return elm_nio_writer_close(w);
}

#endif
