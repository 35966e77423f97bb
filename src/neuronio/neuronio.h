/*
 * neuronio.h - NeuronIO data inside elm: one simulation in memory, and the compact cache that the
 * pickle converter (`elm data convert neuronio`) and the teacher generator
 * (`elm gen neuronio-teacher`) both write and that training and evaluation read.
 *
 * A simulation is T steps of 1 ms (6000 in the real data) with n_in inputs (1278 = 639
 * excitatory then 639 inhibitory). Inputs are binary spike trains, stored sparsely by step.
 * The cache's exact on-disk layout is documented in docs/DATA.md.
 */
#ifndef ELM_NEURONIO_H
#define ELM_NEURONIO_H

#include "internal.h"

typedef struct elm_nio_sim {
    int T;                  /* steps of 1 ms */
    int n_in;               /* inputs (1278) */
    int64_t *spike_ptr;     /* (T + 1) CSR row pointers into spike_idx */
    uint16_t *spike_idx;    /* (nnz) active input ids of each step, ascending within a step */
    float *soma;            /* (T) somatic voltage in mV, unclipped */
    int n_out_spikes;
    float *out_spike_times; /* (n_out_spikes) ms */
} elm_nio_sim;

/* Frees the arrays of a simulation (not the struct itself). */
void elm_nio_sim_clear(elm_nio_sim *s);

/* Writing a cache: one writer per output file; simulations are appended one at a time. */
typedef struct elm_nio_writer elm_nio_writer;
/* Creates DIR (if needed) and starts DIR/<name>.nioc; written atomically on close. */
elm_status elm_nio_writer_open(elm_nio_writer **w, const char *dir, const char *name);
elm_status elm_nio_writer_add(elm_nio_writer *w, const elm_nio_sim *sim);
/* Finishes the file (and refreshes DIR's index); frees w whatever happens. */
elm_status elm_nio_writer_close(elm_nio_writer *w);
void elm_nio_writer_abort(elm_nio_writer *w);

#endif
