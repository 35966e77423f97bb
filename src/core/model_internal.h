/*
 * model_internal.h - the elm_model object shared by the core's files (never installed).
 *
 * Invariant: every real-valued tensor lives in one 64-byte-aligned block `params` of the model's
 * dtype, trainable tensors first, so gradients and optimiser moments are one flat array of
 * `n_train` elements with the same offsets. Routing (indices and mask) is integer data kept beside
 * the block. Everything derived from parameters (w_s, kappas) is recomputed before each pass.
 */
#ifndef ELM_MODEL_INTERNAL_H
#define ELM_MODEL_INTERNAL_H

#include "internal.h"

#define ELM_MAX_TENSORS 64
#define ELM_MAX_LAYERS 29 /* mlp_num_layers + 1 linear layers, with names up to network.58 */
#define ELM_LANES 8       /* samples advanced together in one group (SIMD lanes) */

typedef struct elm__ptensor {
    char name[40];
    int ndim;
    int shape[2];
    size_t numel;
    size_t offset; /* into params (and grads when trainable) */
    int trainable;
} elm__ptensor;

struct elm_model {
    elm_config cfg; /* resolved */
    elm_dtype dtype;
    /* Sizes (letters as in elm.h); P synapses per branch, L linear layers in the MLP, K = R + M. */
    int I, O, M, H, R, P, S, L, K;
    int layer_in[ELM_MAX_LAYERS], layer_out[ELM_MAX_LAYERS];

    int n_tensors;
    elm__ptensor t[ELM_MAX_TENSORS];
    size_t n_total, n_train; /* elements in params; trainable prefix */
    void *params;            /* (n_total) */
    void *grads;             /* (n_train) */
    /* Offsets of the named tensors in params. */
    size_t off_w_s, off_tau_m, off_tau_syn, off_wy, off_by;
    size_t off_w[ELM_MAX_LAYERS], off_b[ELM_MAX_LAYERS];

    /* Routing: synapse k reads input route_idx[k] times route_mask[k]. */
    int32_t *route_idx;  /* (S) */
    uint8_t *route_mask; /* (S) */
    int routed;          /* tensors input_to_synapse_indices / valid_indices_mask are non-empty */
    int mask_is_bool;    /* saved as BOOL (neuronio_routing) or I64 ones (random_routing) */
    /* Inverse routing for sparse input: the valid synapses reading input i are
     * inv_syn[inv_ptr[i] .. inv_ptr[i+1]-1]. */
    int32_t *inv_ptr; /* (I + 1) */
    int32_t *inv_syn; /* (valid synapses) */
    int32_t *inv_branch; /* (valid synapses) inv_syn[q] / P, the branch of each: no division
                          * per active synapse in the kernels */

    /* Options. */
    int force_general;
    int threads;
    int ckpt_stride;

    /* Values derived from the parameters (w_s, kappas), refreshed by elm__refresh(): see
     * kernels.inc for the layout. */
    void *dv;
    int branch_mode; /* traces kept per branch (R) rather than per synapse (S) */

    /* Training workspace (see kernels.inc). */
    void *ws; /* ws_t of kernels.inc: records of the last forward_train */

    /* model_type lstm: the LSTM baseline owns params and grads; nothing above is used. */
    struct elm_lstm *lstm;
    int ws_ready;           /* a forward_train result is waiting for backward */

    /* Kernel-private packed copies of the weights for the fast paths (kernels.inc's fast_t),
     * rebuilt by elm__refresh and freed by elm__ws_release; NULL means "use the plain path". */
    void *fast;
    int fast_off; /* ELM_FAST_* bits: fast paths switched off (tests compare against them) */
};

#define ELM_FAST_NO_PROJ 1 /* no projected branch traces (uniform kappa, many branches) */
#define ELM_FAST_NO_PACKED 2 /* no packed weights: the plain row-major products */
/* Forward from checked sparse inputs (sparse.c checks, kernels.inc runs). */
elm_status elm__forward_sparse_f32(elm_model *m, const elm_sparse_input *x, float *y, int B, int T,
                                   int train);
elm_status elm__forward_sparse_f64(elm_model *m, const elm_sparse_input *x, double *y, int B,
                                   int T, int train);
/* The fast paths in use now, as ELM_FAST_* bits (set = that path runs); for tests and bench. */
/* The nonzero entries of x (n) as (index, value) pairs, as the dense entry points scan inputs:
 * with the vector scan this CPU supports, or (portable != 0) the plain one. Returns the count;
 * idx and val need room for n. Exposed for tests. */
int elm__gather_nonzero_f32(int32_t *idx, float *val, const float *x, int n, int portable);
int elm__fast_paths_f32(const elm_model *m);
int elm__fast_paths_f64(const elm_model *m);

/* Kernels, one instantiation per dtype (kernels_f32.c, kernels_f64.c). */
elm_status elm__forward_f32(elm_model *m, const float *x, float *y, int B, int T, int train);
elm_status elm__forward_f64(elm_model *m, const double *x, double *y, int B, int T, int train);
elm_status elm__backward_f32(elm_model *m, const float *dy);
elm_status elm__backward_f64(elm_model *m, const double *dy);
size_t elm__state_len(const elm_model *m); /* reals of recurrent state per sample */
void elm__refresh_f32(elm_model *m);
void elm__refresh_f64(elm_model *m);
/* Recomputes the derived values after the parameters changed. */
void elm__refresh(elm_model *m);
size_t elm__step_scratch_bytes_f32(const elm_model *m);
size_t elm__step_scratch_bytes_f64(const elm_model *m);
void elm__step_f32(const elm_model *m, float *state, void *scratch, int B, const float *x,
                   float *y);
void elm__step_f64(const elm_model *m, double *state, void *scratch, int B, const double *x,
                   double *y);
void elm__ws_release_f32(elm_model *m);
void elm__ws_release_f64(elm_model *m);

/* The LSTM baseline behind elm_model (model_lstm.c). */
elm_status elm__lstm_model_create(elm_model **out, const elm_config *cfg, elm_dtype dtype,
                                  uint64_t seed);
elm_status elm__lstm_model_load(elm_model **out, const char *path, elm_dtype dtype);
elm_status elm__lstm_model_save(const elm_model *m, const char *path);
elm_status elm__lstm_model_clone(elm_model **out, const elm_model *src, elm_dtype dtype);
void elm__lstm_model_free(elm_model *m);

/* 1 when the v1 per-synapse traces of every branch share one tau_s (or v2): branch traces. */
int elm__branch_traces(const elm_model *m);

/* Safetensors I/O shared by the model, optimiser and CLI. */
typedef struct elm__st_tensor {
    char *name;
    elm__dtype dtype;
    int ndim;
    int64_t shape[8];
    size_t numel;
    const void *data; /* points into the file buffer */
} elm__st_tensor;

typedef struct elm__st_file {
    char *buf; /* whole file */
    size_t len;
    int n;
    elm__st_tensor *t;
    void *meta; /* cJSON object of __metadata__ or NULL */
    const char *path;
} elm__st_file;

elm_status elm__st_read(elm__st_file *f, const char *path);
/*
 * Parses a safetensors image of `len` bytes: the same checks as elm__st_read, which is read-file
 * plus this. `buf` must come from malloc and is owned by f from the call on (freed by
 * elm__st_free, or here on failure); `path` names the source in messages and must outlive f.
 */
elm_status elm__st_parse(elm__st_file *f, char *buf, size_t len, const char *path);
void elm__st_free(elm__st_file *f);
const elm__st_tensor *elm__st_find(const elm__st_file *f, const char *name);
/* Copies a float tensor's elements into dst of `dtype` (F16/F32/F64 sources). */
elm_status elm__st_copy_real(const elm__st_file *f, const elm__st_tensor *t, void *dst,
                             elm_dtype dtype);

typedef struct elm__st_out {
    const char *name;
    elm__dtype dtype;
    int ndim;
    int64_t shape[8];
    const void *data;
} elm__st_out;
/* Writes tensors (and string metadata pairs, may be NULL) atomically. */
elm_status elm__st_write(const char *path, const elm__st_out *t, int n, const char *const *meta_kv,
                         int n_meta);

#endif
