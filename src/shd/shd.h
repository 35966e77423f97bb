/*
 * shd.h - Spiking Heidelberg Digits (Cramer et al. 2020) inside elm: reading SHD's HDF5 files,
 * binning spike trains into dense (T, C) count frames, and the SHD-Adding construction.
 *
 * An SHD file holds N samples: `spikes/times` (ragged, seconds, float16 in the released files),
 * `spikes/units` (ragged channel ids 0..699), `labels` (0..19), and optionally `extra/speaker`,
 * `extra/keys` and `extra/meta_info/...`. elm_shd_load() reads and checks the whole file and keeps
 * only what training needs: per sample, the (bin, channel) of every spike that falls inside the
 * binning window (4 bytes a spike, no more than the file itself spends on it). Frames are then
 * built on demand by elm_shd_fill(), so a data set never sits in memory in dense form.
 *
 * Binning (docs/TASKS.md section 2): bin b holds the spikes with
 * b * bin_ms <= t_ms < (b + 1) * bin_ms, t_ms = t * 1000; spikes at or after duration_ms are
 * dropped. Defaults: 10 ms bins over [0, 1 s), i.e. T = 100 steps of 700 channels, and the model's
 * delta_t is bin_ms.
 *
 * SHD-Adding: a sample is two samples of one pool, the second's frames appended after the first's
 * (2T steps, no gap), label (l1 mod 10) + (l2 mod 10), 19 classes.
 *
 * Everything random here takes an elm__rng, so a caller's seed fixes every split and every pair.
 */
#ifndef ELM_SHD_H
#define ELM_SHD_H

#include "internal.h"

/* The released SHD geometry. */
#define ELM_SHD_CHANNELS    700
#define ELM_SHD_CLASSES     20
#define ELM_SHD_ADD_CLASSES 19

/* Options of elm_shd_load(); elm_shd_opts_default() gives SHD's. */
typedef struct elm_shd_opts {
    double bin_ms;      /* width of a time bin (10 ms) */
    double duration_ms; /* window [0, duration_ms) kept (1000 ms); later spikes are dropped */
    int num_channels;   /* channel ids must be < this (700) */
    int num_classes;    /* labels must be < this (20) */
    int read_chunk;     /* samples read per HDF5 call (256); small values are for tests */
} elm_shd_opts;

void elm_shd_opts_default(elm_shd_opts *o);

/* One SHD file in memory. Free with elm_shd_free(). */
typedef struct elm_shd {
    char *path;
    int n;            /* samples */
    int num_bins;     /* T = ceil(duration_ms / bin_ms) */
    int num_channels; /* C */
    int num_classes;  /* the option it was read with */
    double bin_ms, duration_ms;
    int *labels;    /* (n) */
    int *speakers;  /* (n), or NULL when the file has no extra/speaker */
    int64_t *ptr;   /* (n + 1) offsets of each sample's kept spikes into bin/chan */
    uint16_t *bin;  /* (kept) time bin of each kept spike, in file order */
    uint16_t *chan; /* (kept) channel of each kept spike */

    /* Statistics of the file as read (before dropping late spikes). */
    int64_t total_spikes; /* all spikes in the file */
    int64_t kept_spikes;  /* those inside [0, duration_ms) */
    double last_min_s;    /* smallest "time of the last spike" over non-empty samples (s) */
    double last_max_s;    /* largest one (s) */
    int empty_samples;    /* samples without any spike */
    int max_channel;      /* largest channel id seen (-1 when no spike) */
    int label_min, label_max;
    int num_keys;      /* entries of extra/keys, 0 when absent */
    char **keys;       /* (num_keys) class names, NUL-terminated */
    int num_speakers;  /* distinct extra/speaker values, 0 when absent */
    int has_meta_info; /* 1 when extra/meta_info exists */
} elm_shd;

/*
 * Reads and checks an SHD file (o may be NULL for the defaults). Fails, naming the file and the
 * problem, on: not an HDF5 file, a missing or wrongly typed dataset, lengths that differ between
 * times, units, labels (and speaker), a sample whose times and units differ in length, a channel
 * id < 0 or >= num_channels, a NaN, infinite or negative time, a label outside [0, num_classes).
 * HDF5's own error printing is switched off for the whole process.
 */
elm_status elm_shd_load(elm_shd **out, const char *path, const elm_shd_opts *o);
void elm_shd_free(elm_shd *d);

/*
 * What a file is: 1 = an HDF5 file that has SHD's `spikes` group or `labels` (so an SHD file,
 * perhaps a broken one: elm_shd_load says what is wrong), 0 = anything else (not HDF5, absent,
 * or HDF5 without either). Never fails.
 */
int elm_shd_probe(const char *path);

/* Kept spikes of sample i. */
static inline int64_t elm_shd_count(const elm_shd *d, int i) {
    return d->ptr[i + 1] - d->ptr[i];
}

/* Writes the frames of sample i, counts, into x (num_bins, num_channels), zeroing it first. */
void elm_shd_fill(const elm_shd *d, int i, float *x);

/*
 * Sample i binned as spike lists, in the layout of elm_sparse_input: bin t's nonzero channels,
 * ascending, with their spike counts as values, are written to idx/val from index `start` on,
 * and ends[t] (num_bins entries) receives the index one past bin t's last entry. The lists are
 * the nonzero entries of elm_shd_fill's rows, in order. idx/val hold cap entries in all (start +
 * the sample's spike count are enough).
 */
elm_status elm_shd_fill_sparse(const elm_shd *d, int i, int64_t start, int64_t *ends,
                               int32_t *idx, float *val, size_t cap);

/*
 * Splits 0..n-1 with a seeded shuffle: the first round(frac * n) indices of the shuffle (at least
 * one when frac > 0 and n >= 2, never all n) go to `held` (validation), the rest to `kept`
 * (training). Both lists come back sorted ascending (malloc'd; free() them).
 */
elm_status elm_shd_split(int n, double frac, uint64_t seed, int **kept, int *nkept, int **held,
                         int *nheld);

/* SHD-Adding label of two SHD labels: (l1 mod 10) + (l2 mod 10), in 0..18. */
static inline int elm_shd_adding_label(int l1, int l2) {
    return l1 % 10 + l2 % 10;
}

/* Draws n pairs uniformly with replacement from pool (npool sample indices): first[k], second[k].
 */
void elm_shd_adding_draw(int *first, int *second, int n, const int *pool, int npool, elm__rng *rng);

/*
 * Writes the SHD-Adding input of the pair (i1, i2) into x (2 * num_bins, num_channels): sample
 * i1's frames, then sample i2's, no gap. Returns the pair's label.
 */
int elm_shd_adding_fill(const elm_shd *d, int i1, int i2, float *x);

/*
 * Input dropout as torch.nn.Dropout(p) in training mode: each element of x (n) is zeroed with
 * probability p and the others are scaled by 1 / (1 - p). Only nonzero elements draw a random
 * number (a zero stays zero either way), so the cost follows the spike count. p in [0, 1).
 */
void elm_shd_input_dropout(float *x, size_t n, double p, elm__rng *rng);

#endif
