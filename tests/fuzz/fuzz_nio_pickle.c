/*
 * fuzz_nio_pickle.c - libFuzzer driver for reading NeuronIO simulations out of a pickle file
 * (elm_nio_pickle_read: the file is mapped, parsed, and its dict walked into simulations).
 *
 * Accepted simulations must keep the invariants training relies on: row pointers from 0 to nnz
 * and non-decreasing, ids ascending within a step and below n_in, soma finite, output spike bins
 * inside the simulation; and a window cut from each must succeed.
 */
// fuzz-areas: neuronio
#include "fuzz_mmap.h"
#include "fuzz_util.h"
#include "neuronio/nio_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    char path[600];
    fuzz_path(path, sizeof path, "sim__fuzz.p");
    fuzz_write(path, data, len);
    elm_nio_sim *sims = NULL;
    int n = 0;
    elm_status st = elm_nio_pickle_read(path, &sims, &n);
    if (st != ELM_OK) {
        fuzz_note("nio_pickle", st, elm_last_error());
        FUZZ_ASSERT(sims == NULL && n == 0, "failed read returned simulations");
        FUZZ_ASSERT(strstr(elm_last_error(), "sim__fuzz.p") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("nio_pickle", 0, "ok");
    FUZZ_ASSERT(n >= 1, "no simulations but success");
    for (int k = 0; k < n; k++) {
        const elm_nio_sim *s = &sims[k];
        FUZZ_ASSERT(s->T >= 1 && s->n_in >= 2 && s->spike_ptr[0] == 0, "sim %d: bad sizes", k);
        for (int t = 0; t < s->T; t++) {
            FUZZ_ASSERT(s->spike_ptr[t + 1] >= s->spike_ptr[t], "sim %d: ptr decreases at %d", k,
                        t);
            for (int64_t i = s->spike_ptr[t]; i < s->spike_ptr[t + 1]; i++) {
                FUZZ_ASSERT(s->spike_idx[i] < s->n_in, "sim %d: id %d >= %d", k, s->spike_idx[i],
                            s->n_in);
                FUZZ_ASSERT(i == s->spike_ptr[t] || s->spike_idx[i] > s->spike_idx[i - 1],
                            "sim %d: ids not strictly ascending at step %d", k, t);
            }
            FUZZ_ASSERT(isfinite(s->soma[t]), "sim %d: soma not finite", k);
        }
        for (int i = 0; i < s->n_out_spikes; i++) {
            int b = elm_nio_spike_bin((double)s->out_spike_times[i]);
            FUZZ_ASSERT(b >= 0 && b < s->T, "sim %d: output spike bin %d", k, b);
        }
        if (s->n_in <= 4096 && s->T <= 100000) {
            elm_nio_view v;
            elm_nio_sim_view(s, &v);
            int W = s->T < 64 ? s->T : 64;
            float *x = malloc(sizeof(float) * (size_t)W * (size_t)s->n_in);
            float *y = malloc(sizeof(float) * (size_t)W * 2);
            FUZZ_ASSERT(x && y, "oom");
            FUZZ_ASSERT(elm_nio_fill_window(&v, s->T - W, W, x, y, 1) == ELM_OK, "window: %s",
                        elm_last_error());
            free(x);
            free(y);
        }
    }
    elm_nio_sims_free(sims, n);
    return 0;
}
