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

/*
 * Reading: a read-only view of one simulation, wherever it lives (a mapped cache file or an
 * elm_nio_sim in memory). Pointers are borrowed from the cache / data set that made the view.
 */
typedef struct elm_nio_view {
    int T;
    int n_in;
    const int64_t *spike_ptr;  /* (T + 1), spike_ptr[0] = 0, spike_ptr[T] = nnz */
    const uint16_t *spike_idx; /* (nnz) */
    const void *soma;          /* (T) mV, unclipped: float, or IEEE half when soma_f16 */
    int soma_f16;
    int n_out_spikes;
    const float *out_spike_times; /* (n_out_spikes) ms */
    const char *src; /* the file the simulation comes from, for messages; NULL: in memory */
    int sim;         /* its index in that file */
} elm_nio_view;

/* Somatic voltage (mV, unclipped) at step t of a view. */
float elm_nio_view_soma(const elm_nio_view *v, int t);
/* The 1 ms bin of an output spike time: (int)(t - 0.5) truncated toward zero, as the reference's
 * astype(int) does (= floor(t - 0.5) for every t >= 0.5). */
int elm_nio_spike_bin(double t_ms);
/* A view of an in-memory simulation (no copy). */
void elm_nio_sim_view(const elm_nio_sim *s, elm_nio_view *v);
/* "FILE: simulation K" (or "NeuronIO simulation" for one in memory): how messages name a view. */
const char *elm_nio_view_name(const elm_nio_view *v, char *buf, size_t cap);

/* A cache file, mapped read-only; open checks the header, the table and every size/offset. */
typedef struct elm_nio_cache elm_nio_cache;
elm_status elm_nio_cache_open(elm_nio_cache **c, const char *path);
void elm_nio_cache_close(elm_nio_cache *c);
int elm_nio_cache_num_sims(const elm_nio_cache *c);
int elm_nio_cache_n_in(const elm_nio_cache *c);
/*
 * View of simulation k; checks the cheap invariants (pointer ends, output spike times) on every
 * call, and the first time a simulation is used everything elm_nio_cache_verify checks for it
 * (its block checksum, row pointers, input ids, finite soma), so a corrupt or edited cache is an
 * error naming the file and the simulation, never silently shifted metrics. Safe to call from
 * several threads.
 */
elm_status elm_nio_cache_sim(const elm_nio_cache *c, int k, elm_nio_view *v);
/* Full check of every simulation: checksums, row pointers, input ids, soma finite. */
elm_status elm_nio_cache_verify(const elm_nio_cache *c);
/* Rewrites DIR/index.json from the .nioc files in DIR (done by elm_nio_writer_close too). */
elm_status elm_nio_index_refresh(const char *dir);

#endif
