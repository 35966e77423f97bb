/*
 * model_internal.h - the elm_model object shared by the core's files (never installed).
 *
 * Invariant: every real-valued tensor lives in one 64-byte-aligned block `params` of the model's
 * dtype, trainable tensors first, so gradients and optimiser moments are one flat array of
 * `n_train` elements with the same offsets. Routing (indices and mask) is integer data kept beside
 * the block. Everything derived from parameters (w_s, kappas) is recomputed before each pass.
 *
 * A model has a type (the ELM neuron, or the LSTM baseline) whose operations sit behind a small
 * function table, elm__model_ops: the public entry points check their arguments and dispatch
 * through it, so no public call asks which type it holds. The ELM's table is in model.c, the
 * LSTM's in model_lstm.c; the file format of each is in model_io.c and lstm.c.
 */
#ifndef ELM_MODEL_INTERNAL_H
#define ELM_MODEL_INTERNAL_H

#include "internal.h"
#include "st.h"

#define ELM_MAX_TENSORS 64
#define ELM_MAX_LAYERS 29 /* mlp_num_layers + 1 linear layers, with names up to network.58 */
#define ELM_LANES 8       /* samples advanced together in one group (SIMD lanes) */

typedef struct elm__model_ops elm__model_ops;

typedef struct elm__ptensor {
    char name[40];
    int ndim;
    int shape[2];
    size_t numel;
    size_t offset; /* into params (and grads when trainable) */
    int trainable;
} elm__ptensor;

struct elm_model {
    const elm__model_ops *ops; /* the model type's operations */
    void *impl;                /* the type's own object (the LSTM's elm__lstm); NULL for ELM */
    elm_config cfg;            /* resolved */
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
    /* Grouped gradients (elm_model_set_grad_groups): lanes per group, 0 = off; and the
     * cross-process reducer of their exact sum (max_i32 NULL: this process holds the batch). */
    int grad_group;
    elm_grad_reducer grad_reducer;
    /* float32 passes through kernels_f32fma.c (elm_model_set_fma). */
    int fma;
    /* Inference split over processes (elm_model_set_batch_split); allgather NULL: none. */
    elm_batch_split batch_split;

    /* Values derived from the parameters (w_s, kappas), refreshed by elm__refresh(): see
     * kernels.inc for the layout. */
    void *dv;
    int branch_mode; /* traces kept per branch (R) rather than per synapse (S) */

    /* Training workspace (see kernels.inc). */
    void *ws; /* ws_t of kernels.inc: records of the last forward_train */

    int ws_ready;           /* a forward_train result is waiting for backward */

    /* Kernel-private packed copies of the weights for the fast paths (kernels.inc's fast_t),
     * rebuilt by elm__refresh and freed by elm__ws_release; NULL means "use the plain path". */
    void *fast;
    int fast_off; /* ELM_FAST_* bits: fast paths switched off (tests compare against them) */
};

#define ELM_FAST_NO_PROJ 1 /* no projected branch traces (uniform kappa, many branches) */
#define ELM_FAST_NO_PACKED 2 /* no packed weights: the plain row-major products */
/* Inference over the processes of m->batch_split: this one's share of the batch, then the
 * allgather of the outputs (forward.c). x dense, or xs sparse (checked). */
elm_status elm__split_forward(elm_model *m, const void *x, const elm_sparse_input *xs, void *y,
                              int B, int T);
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

/* Kernels, one instantiation per dtype (kernels_f32.c, kernels_f64.c), and float32 with fused
 * multiply-adds (kernels_f32fma.c; it shares kernels_f32.c's workspace, packed weights and
 * refresh, whose layouts are the same source). */
elm_status elm__forward_f32(elm_model *m, const float *x, float *y, int B, int T, int train);
elm_status elm__forward_f32fma(elm_model *m, const float *x, float *y, int B, int T, int train);
elm_status elm__backward_f32fma(elm_model *m, const float *dy);
elm_status elm__forward_sparse_f32fma(elm_model *m, const elm_sparse_input *x, float *y, int B,
                                      int T, int train);
void elm__step_f32fma(const elm_model *m, float *state, void *scratch, int B, const float *x,
                      float *y);
/* kernels_f32fma.c's own copies of these are not called (kernels_f32.c's serve both); declared
 * for completeness of the instantiation. */
int elm__fast_paths_f32fma(const elm_model *m);
void elm__refresh_f32fma(elm_model *m);
void elm__ws_release_f32fma(elm_model *m);
size_t elm__step_scratch_bytes_f32fma(const elm_model *m);
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

/*
 * The operations of one model type. x, y and dy are in the model's dtype; the public entry
 * points have checked the model, its dtype and (for sparse input) the rows before calling.
 */
struct elm__model_ops {
    elm_model_type type;
    const char *name; /* "elm", "lstm": for messages */
    /* A fresh model (parameters drawn from seed) of a configuration of this type. */
    elm_status (*create)(elm_model **out, const elm_config *cfg, elm_dtype dtype, uint64_t seed);
    void (*destroy)(elm_model *m);
    elm_status (*clone)(elm_model **out, const elm_model *src, elm_dtype dtype);
    elm_status (*forward)(elm_model *m, const void *x, void *y, int B, int T, int train);
    elm_status (*forward_sparse)(elm_model *m, const elm_sparse_input *x, void *y, int B, int T,
                                 int train);
    elm_status (*backward)(elm_model *m, const void *dy);
    /* Recomputes what the type derives from its parameters; NULL when it derives nothing. */
    void (*refresh)(elm_model *m);
    /* Applies m->threads to the type's own object; NULL when m->threads is all it reads. */
    void (*set_threads)(elm_model *m);
    /* Loading: whether a parsed file holds this type, and the model in it. cfg_path names a
     * model_config.json that may exist (NULL: none); in_folder is 1 when the model was named by
     * its folder, where that file takes precedence over the file's __metadata__. */
    int (*recognises)(const elm__st_file *f);
    elm_status (*from_st)(elm_model **out, const elm__st_file *f, const char *cfg_path,
                          int in_folder, elm_dtype dtype);
    /* Writes the model's tensors and metadata as one safetensors file at `path`. */
    elm_status (*to_st)(const elm_model *m, const char *path);
    int streams; /* supports elm_state (step-by-step simulation) */
};

/* The types, in the order a file is offered to their recognises(); the last one, ELM, takes any
 * file. */
extern const elm__model_ops elm__elm_ops;  /* model.c */
extern const elm__model_ops elm__lstm_ops; /* model_lstm.c */
#define ELM_MODEL_TYPES(X) X(elm__lstm_ops) X(elm__elm_ops)
/* The operations of a configuration's model_type. */
const elm__model_ops *elm__model_ops_for(elm_model_type type);

/* ELM: the table's pieces in the files that implement them. */
elm_status elm__elm_forward(elm_model *m, const void *x, void *y, int B, int T, int train);
elm_status elm__elm_backward(elm_model *m, const void *dy);
elm_status elm__elm_forward_sparse(elm_model *m, const elm_sparse_input *x, void *y, int B, int T,
                                   int train);
elm_status elm__elm_from_st(elm_model **out, const elm__st_file *f, const char *cfg_path,
                            int in_folder, elm_dtype dtype);
elm_status elm__elm_to_st(const elm_model *m, const char *path);
/* An ELM model of a configuration with zeroed parameters and identity routing (or, unrouted,
 * its inverse map built): load fills it. */
elm_status elm__model_build(elm_model **out, const elm_config *cfg, elm_dtype dtype);
/* Sets the routing (idx in [0, I), mask != 0 = valid) and rebuilds the inverse map; an index out
 * of range is ELM_ERR_FORMAT. */
elm_status elm__model_set_routing(elm_model *m, const int64_t *idx, const double *mask);

/* Element size of a model dtype. */
static inline size_t elm__real_size(elm_dtype d) {
    return d == ELM_F64 ? sizeof(double) : sizeof(float);
}

/* Test hook: forces the per-synapse-trace code path of v1 (the fast paths are compared with it). */
void elm__model_set_general_path(elm_model *m, int on);

/* 1 when the v1 per-synapse traces of every branch share one tau_s (or v2): branch traces. */
int elm__branch_traces(const elm_model *m);

#endif
