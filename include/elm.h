/*
 * elm.h - the Expressive Leaky Memory (ELM) neuron in C.
 *
 * The ELM neuron (Spieler et al., ICLR 2024) is a phenomenological model of a cortical neuron:
 * leaky synaptic traces, grouped into dendritic branches, feed a small MLP that writes into a set
 * of leaky memory units with many time constants; a linear readout gives the outputs. This
 * library implements ELM v1 (per-synapse traces), the Branch-ELM (synapses routed into branches)
 * and ELM v2 (per-branch traces) exactly as the authors' PyTorch reference does, with the same
 * parameter names, so models travel both ways as safetensors files.
 *
 * Overview
 *   elm_config   the reference's constructor arguments (num_input, num_memory, ...).
 *   elm_model    parameters (float32 or float64, chosen at creation), forward, BPTT gradients.
 *   elm_state    the recurrent state of one or many samples, for step-by-step simulation.
 *   elm_optim    Adam, AdamW and Adamax with gradient-norm clipping.
 *
 * Example: run a released NeuronIO model over a batch of spike trains.
 *
 *     elm_model *m = NULL;
 *     if (elm_model_load(&m, "num_memory_15/model.safetensors", ELM_F32) != ELM_OK) {
 *         fprintf(stderr, "%s\n", elm_last_error());
 *         return 1;
 *     }
 *     // x: (B, T, I) inputs, y: (B, T, O) raw outputs (spike logit, scaled soma)
 *     elm_model_forward(m, x, y, B, T);
 *     elm_model_free(m);
 *
 * Example: embed the neuron in a simulation loop, one time step at a time.
 *
 *     elm_state *s = NULL;
 *     elm_state_create(&s, m, 1);
 *     for (int t = 0; t < T; t++)
 *         elm_model_step(m, s, x_t, y_t); // x_t: (1, I), y_t: (1, O)
 *     elm_state_free(s);
 *
 * Conventions. Functions that can fail return an elm_status; on failure elm_last_error() gives
 * a message naming the file and the problem. Every *_create / *_load has a *_free that accepts
 * NULL. The caller owns the arrays it passes; the library never keeps a caller's pointer past the
 * call. Arrays are C-ordered, and shapes are written with the letters B batch, T time, I inputs,
 * S synapses, R branches, M memory units, H MLP hidden width, O outputs. A model is used from one
 * thread at a time (it parallelises internally with OpenMP); distinct models are independent.
 *
 * Precision (one rule for every call). A model is float32 or float64, its elm_dtype, chosen once
 * where it is made (elm_model_create, elm_model_load, elm_model_clone: the dtype argument comes
 * right after the source) and read back with elm_model_dtype(); no call takes a dtype per array.
 * Every array of reals a model reads or writes is in the model's dtype, and no model call converts
 * between float and double behind the caller's back:
 *   - a call with typed pointers comes as a pair, NAME with float (an ELM_F32 model) and NAME_f64
 *     with double (an ELM_F64 model); the other pairing is ELM_ERR_ARG (elm_model_forward,
 *     elm_model_step);
 *   - a call that serves both dtypes through one signature takes or returns void * and documents
 *     it as "in the model's dtype" (training forward and backward, sparse inputs and outputs, the
 *     parameter and gradient blocks, elm_tensor.data/.grad, the streaming state's memory).
 * Values that are not a model's arrays (configuration, learning rates, norms, losses, routing
 * masks) are double. elm_train.h's task data (batches, targets, losses) is float32, the data
 * sets' precision.
 */
#ifndef ELM_H
#define ELM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version of this header. elm_version() gives that of the library actually linked, which a
 * program using libelm.so may compare with these. The shared library's soname is
 * libelm.so.ELM_VERSION_MAJOR. CMakeLists.txt takes the project's version from these lines.
 */
#define ELM_VERSION_MAJOR  0
#define ELM_VERSION_MINOR  1
#define ELM_VERSION_PATCH  0
#define ELM_VERSION_STRING "0.1.0"
/* One number for #if: 10000 * major + 100 * minor + patch. */
#define ELM_VERSION_NUMBER (ELM_VERSION_MAJOR * 10000 + ELM_VERSION_MINOR * 100 + ELM_VERSION_PATCH)

/*
 * ELM_API marks the calls libelm exports. The library is compiled with -fvisibility=hidden, so
 * libelm.so exports these and nothing else: the elm__ internals stay private to the library (and
 * to the static libelm.a's users, the CLI and the tests, which link them directly).
 */
#ifndef ELM_API
#if defined(__GNUC__) || defined(__clang__)
#define ELM_API __attribute__((visibility("default")))
#else
#define ELM_API
#endif
#endif

/* ---- Errors ---------------------------------------------------------------------------------- */

#define ELM_STATUS_LIST(X)                                                                         \
    X(ELM_OK, 0, "ok")                                                                             \
    X(ELM_ERR_NOMEM, -1, "out of memory")                                                          \
    X(ELM_ERR_ARG, -2, "invalid argument")                                                         \
    X(ELM_ERR_IO, -3, "i/o error")                                                                 \
    X(ELM_ERR_FORMAT, -4, "malformed file")                                                        \
    X(ELM_ERR_SHAPE, -5, "shape mismatch")                                                         \
    X(ELM_ERR_NUMERIC, -6, "non-finite value")                                                     \
    X(ELM_ERR_CONFIG, -7, "invalid configuration")                                                 \
    X(ELM_ERR_UNSUPPORTED, -8, "unsupported")

typedef enum {
#define ELM_X_ENUM(name, code, text) name = code,
    ELM_STATUS_LIST(ELM_X_ENUM)
#undef ELM_X_ENUM
} elm_status;

/* A static string describing the code. */
ELM_API const char *elm_status_str(elm_status s);
/* The detail of the last failure on this thread; valid until the next failing call. */
ELM_API const char *elm_last_error(void);
/* The library's version, "MAJOR.MINOR.PATCH" (ELM_VERSION_STRING of the build). */
ELM_API const char *elm_version(void);

/* ---- Configuration --------------------------------------------------------------------------- */

/* The neuron of Spieler et al.: v1 (per-synapse traces) or v2 (per-branch traces). */
typedef enum { ELM_V1 = 1, ELM_V2 = 2 } elm_neuron_version;
typedef enum { ELM_ROUTE_NONE = 0, ELM_ROUTE_NEURONIO = 1, ELM_ROUTE_RANDOM = 2 } elm_routing;
typedef enum { ELM_ACT_RELU = 0, ELM_ACT_SILU = 1 } elm_activation;
/* The ELM neuron, or the LSTM baseline of the ablations (include/elm_lstm.h) behind the same
 * elm_model interface, so tasks, training and evaluation treat both alike. */
typedef enum { ELM_MODEL_ELM = 0, ELM_MODEL_LSTM = 1 } elm_model_type;

/*
 * The reference's constructor arguments, same names and defaults (docs/MODEL.md section 4). A
 * value of 0 in mlp_hidden_size or num_branch means "derive it" (2 * num_memory, num_input) as the
 * reference's None does. tau_s_value is v1's tau_s and v2's tau_b.
 */
typedef struct elm_config {
    elm_neuron_version version;
    int num_input;
    int num_output;
    int num_memory;
    double lambda_value;
    int mlp_num_layers; /* hidden layers; 0 = a single linear layer */
    int mlp_hidden_size;
    elm_activation mlp_activation;
    double tau_s_value; /* ms */
    double memory_tau_min;
    double memory_tau_max;
    int learn_memory_tau;
    double w_s_value;
    int num_branch;
    int num_synapse_per_branch;
    elm_routing input_to_synapse_routing;
    double delta_t; /* ms per step */
    /* Not reference options: "model_type" ("elm" or "lstm") and "lstm_hidden_size" (64). An
     * LSTM model uses only num_input, num_output and lstm_hidden_size; it supports forward,
     * training, save and load, but not streaming. */
    elm_model_type model_type;
    int lstm_hidden_size;
} elm_config;

/* The reference defaults for the given sizes (v1, lambda 5, tau_m in [1, 1000], ...). */
ELM_API void elm_config_default(elm_config *cfg, int num_input, int num_output, int num_memory);

/* Checks every value and fills the derived sizes (hidden width, branches). */
ELM_API elm_status elm_config_resolve(elm_config *cfg);

/*
 * Sets one option from its reference name and a string value ("45", "true", "silu", "null").
 * The key `elm_version` ("v1"/"v2") is accepted too. An unknown key is ELM_ERR_CONFIG; origin names
 * the file or flag in the message.
 */
ELM_API elm_status elm_config_set(elm_config *cfg, const char *key, const char *value,
                                  const char *origin);

/*
 * Parses a JSON object of options (numbers, booleans, strings or null) on top of *cfg. Unknown
 * keys are an error: a misspelt option must never be silently ignored.
 */
ELM_API elm_status elm_config_from_json(elm_config *cfg, const char *json, const char *origin);

/* The resolved configuration as a JSON object (malloc'd; free() it), reference key names. */
ELM_API char *elm_config_to_json(const elm_config *cfg);

/* Derived sizes of a resolved configuration. */
ELM_API int elm_config_num_synapse(const elm_config *cfg);

/* ---- Model ----------------------------------------------------------------------------------- */

typedef enum { ELM_F32 = 0, ELM_F64 = 1 } elm_dtype;

typedef struct elm_model elm_model;

/*
 * Creates a model with fresh parameters initialised as the reference does (PyTorch nn.Linear
 * init, w_s_proto = w_s_value, tau_m_proto log-spaced), drawn from `seed`.
 */
ELM_API elm_status elm_model_create(elm_model **out, const elm_config *cfg, elm_dtype dtype,
                                    uint64_t seed);
ELM_API void elm_model_free(elm_model *m);

/*
 * Loads a model from a .safetensors file, or from a folder holding model.safetensors (and perhaps
 * model_config.json, whose options take precedence over the file's __metadata__). Tensors of
 * any float type are converted to `dtype`. PyTorch state dicts written by torch.save are read
 * too (never executing anything): a .pt file with model_config.json beside it, or a folder
 * holding neuronio_best_model_state.pt (or one other .pt) and model_config.json, as the
 * authors' released models are.
 */
ELM_API elm_status elm_model_load(elm_model **out, const char *path, elm_dtype dtype);

/*
 * Saves the model as safetensors with the reference's tensor names, dtypes (F32 or F64 by the
 * model's dtype, I64 indices, BOOL mask) and the configuration in __metadata__. The file is
 * written to a temporary name, synced and renamed, so a crash never leaves a half-written model.
 * If `path` is a folder (or ends in '/'), writes model.safetensors and model_config.json in it.
 * If `path` ends in ".pt", writes the state dict in the layout torch.load reads (float tensors,
 * I64 indices) and model_config.json beside it (replacing one there).
 */
ELM_API elm_status elm_model_save(const elm_model *m, const char *path);

/* A deep copy, converted to `dtype`. */
ELM_API elm_status elm_model_clone(elm_model **out, const elm_model *m, elm_dtype dtype);

ELM_API const elm_config *elm_model_config(const elm_model *m);
ELM_API elm_dtype elm_model_dtype(const elm_model *m);
/* Number of trainable scalars (6827 for the released num_memory_15). */
ELM_API size_t elm_model_num_params(const elm_model *m);

/*
 * Flat access. Every real-valued tensor lives in one block of elm_model_dtype() elements, the
 * trainable ones first, so the parameters an optimiser updates are the first
 * elm_model_num_params() elements and the gradients are one block of that many elements with the
 * same offsets: a launcher can all-reduce the gradient block between elm_model_backward() and
 * elm_optim_step() in one call. elm_model_params() returns the parameter block and stores its
 * length (trainable and fixed values: tau_s/tau_b, and tau_m unless learnt) in *count;
 * elm_model_grads() the gradient block, with elm_model_num_params() in *count. count may be NULL.
 * Borrowed: valid until elm_model_free(). Writing parameters is allowed: call
 * elm_model_refresh() afterwards.
 */
ELM_API void *elm_model_params(elm_model *m, size_t *count);
ELM_API void *elm_model_grads(elm_model *m, size_t *count);

/* One named tensor of the model's parameter table: a view into the blocks. Pointers are borrowed
 * from the model. */
typedef struct elm_tensor {
    const char *name; /* reference state-dict name ("mlp.network.0.weight", "w_y.bias", ...) */
    int ndim;         /* 1 or 2 */
    int shape[2];     /* shape[1] is 1 for a vector */
    size_t numel;
    int trainable;
    void *data;    /* elm_model_dtype() elements: elm_model_params() + offset */
    void *grad;    /* same layout, elm_model_grads() + offset; NULL when not trainable */
    size_t offset; /* of data in the parameter block (and of grad in the gradient block), in
                    * elements */
} elm_tensor;

/* The tensors are numbered 0 .. elm_model_num_tensors() - 1 in block order. */
ELM_API int elm_model_num_tensors(const elm_model *m);
ELM_API elm_status elm_model_tensor(const elm_model *m, int i, elm_tensor *out);
/* Index of the tensor called `name`, or -1. */
ELM_API int elm_model_find_tensor(const elm_model *m, const char *name);

/*
 * Routing of a routed model (input_to_synapse_routing neuronio_routing or random_routing):
 * synapse k reads input idx[k] times mask[k], the reference's input_to_synapse_indices and
 * valid_indices_mask. elm_model_num_routes() is the number of synapses S of a routed model and 0
 * for any other. get fills idx and mask (S elements each; mask 0 or 1). set checks every index
 * against num_input before changing anything (ELM_ERR_ARG), treats a nonzero mask as 1 and
 * rebuilds what depends on the routing. Either on an unrouted model: ELM_ERR_ARG.
 */
ELM_API int elm_model_num_routes(const elm_model *m);
ELM_API elm_status elm_model_get_routing(const elm_model *m, int64_t *idx, double *mask);
ELM_API elm_status elm_model_set_routing(elm_model *m, const int64_t *idx, const double *mask);

/*
 * Forward over a batch: x (B, T, I) -> y (B, T, O), raw outputs. elm_model_forward needs an
 * ELM_F32 model and elm_model_forward_f64 an ELM_F64 one (ELM_ERR_ARG otherwise).
 */
ELM_API elm_status elm_model_forward(elm_model *m, const float *x, float *y, int B, int T);
ELM_API elm_status elm_model_forward_f64(elm_model *m, const double *x, double *y, int B, int T);

/*
 * Training: elm_model_forward_train() is the forward pass that also keeps what BPTT needs;
 * elm_model_backward() then takes dL/dy (B, T, O) and *adds* dL/dparam into the model's gradient
 * buffers (elm_tensor.grad), which elm_model_zero_grad() clears. x and y are in the model's dtype.
 */
ELM_API elm_status elm_model_forward_train(elm_model *m, const void *x, void *y, int B, int T);
ELM_API elm_status elm_model_backward(elm_model *m, const void *dy);

/*
 * Sparse inputs (spike trains): the nonzero entries of x (B, T, I) as compressed rows, one row per
 * (b, t) in the order b * T + t. Row r holds the input ids idx[ptr[r] .. ptr[r + 1] - 1] in
 * strictly ascending order and their values val[...] in the model's dtype (float or double), or
 * val = NULL for all ones. The results are bitwise those of the dense call on the same x, without
 * the per-step scan of all I inputs (the largest single cost of NeuronIO's d_m 15 model).
 * Malformed rows (ids out of range or not ascending, pointers not increasing) are ELM_ERR_ARG.
 */
typedef struct elm_sparse_input {
    const int64_t *ptr; /* (B * T + 1), ptr[0] = 0 */
    const int32_t *idx; /* (ptr[B * T]) */
    const void *val;    /* (ptr[B * T]) in the model's dtype, or NULL: all ones */
} elm_sparse_input;
/* Inference (as elm_model_forward / _f64) and training forward (as elm_model_forward_train);
 * y (B, T, O) is in the model's dtype. */
ELM_API elm_status elm_model_forward_sparse(elm_model *m, const elm_sparse_input *x, void *y, int B,
                                            int T);
ELM_API elm_status elm_model_forward_train_sparse(elm_model *m, const elm_sparse_input *x, void *y,
                                                  int B, int T);
ELM_API void elm_model_zero_grad(elm_model *m);
/* Euclidean norm of all trainable gradients; if max_norm > 0, scales them down to it. */
ELM_API double elm_model_clip_grad_norm(elm_model *m, double max_norm);

/*
 * Memory of the saved activations: BPTT keeps the full state every `stride` steps and recomputes
 * the steps in between during the backward pass, so memory grows as T/stride + stride instead of
 * T. 0 (the default) chooses sqrt(T) for sequences longer than 2048 steps and 1 otherwise.
 * Results are bitwise the same for every stride.
 */
ELM_API void elm_model_set_checkpoint_stride(elm_model *m, int stride);

/* Threads used by forward and backward (OpenMP); 0 = OpenMP's default. */
ELM_API void elm_model_set_threads(elm_model *m, int threads);

/*
 * Fused multiply-adds (float32 ELM models; off by default). With on != 0 the passes (forward,
 * forward_train, backward, sparse and streaming) compute each a * b + c of their products as one
 * FMA, rounded once, on CPUs that have FMA (x86-64 with AVX2 or AVX-512): training runs about
 * 1.3x faster on a Pathfinder-sized model. The results are as accurate as the default path's
 * (tests/core/test_fma.c holds them to it against float64) but not bitwise the same, and they
 * depend on the CPU, where the default path gives the same bits on every x86-64 CPU. A float32
 * clone keeps the setting. ELM_ERR_ARG for a float64 model or an LSTM (on != 0).
 */
ELM_API elm_status elm_model_set_fma(elm_model *m, int on);

/*
 * 1 when elm_model_set_fma's path fuses on this CPU with this build of the library, 0 when it
 * computes the default path's bits there: on a CPU without FMA, or in a build compiled without
 * optimisation (-O0), where no FMAs are formed. `elm --version` prints it.
 */
ELM_API int elm_fma_fuses(void);

/*
 * Reproducible batch gradients, for data-parallel training. With group_size g (1 .. 8),
 * elm_model_forward_train* and elm_model_backward split the batch by sample index into groups of
 * g (samples 0 .. g-1, g .. 2g-1, ...; the last may be short), compute each group's gradient
 * alone, and add the groups exactly: per parameter, every group's value is scaled by a power of
 * two fixed by the largest of them and rounded to a 64-bit integer, the integers are summed and
 * the sum is scaled back. Integer sums do not depend on the order of addition, so the gradient
 * is bitwise the same whatever the thread count, and - with a reducer - whatever the number of
 * processes the batch is split over, provided each process holds whole groups (its share of
 * the batch starts at a multiple of g). The result is within 2^-(62 - ceil(log2 groups)) of the
 * largest group value of the exact sum: more accurate than a float sum.
 *
 * The reducer combines the processes' partial results in place, over all of them (MPI_Allreduce
 * with MPI_MAX on int32 and MPI_SUM on int64), called from elm_model_backward: every process must
 * call backward for the same step. total_groups is the number of groups of the whole batch.
 * r = NULL: this process holds the whole batch. group_size 0 (the default) switches grouping off:
 * groups are then sized to give every thread one and summed per thread, in thread order (bitwise
 * reproducible for a given thread count only). ELM models only (an LSTM is ELM_ERR_ARG).
 */
typedef struct elm_grad_reducer {
    void *user;
    int total_groups;
    elm_status (*max_i32)(void *user, int32_t *v, size_t n);
    elm_status (*sum_i64)(void *user, int64_t *v, size_t n);
} elm_grad_reducer;
ELM_API elm_status elm_model_set_grad_groups(elm_model *m, int group_size,
                                             const elm_grad_reducer *r);

/*
 * Inference split over processes, for data-parallel evaluation. With a split set, the inference
 * calls (elm_model_forward, _f64, _sparse; not the training forward) run samples
 * [B rank / size, B (rank + 1) / size) of each batch here and call allgather, which must fill in
 * the other processes' outputs: buf holds the batch's outputs, counts[r] samples of item_bytes
 * bytes each from process r, contiguous in rank order (MPI_Allgatherv in place). Each sample's
 * outputs are independent of its batch, so the result is bitwise that of one process. Every
 * process must make the same calls with the same B. NULL (or size < 2) removes the split.
 * elm_model_clone copies it.
 */
typedef struct elm_batch_split {
    int rank, size;
    void *user;
    elm_status (*allgather)(void *user, void *buf, const int *counts, size_t item_bytes);
} elm_batch_split;
ELM_API void elm_model_set_batch_split(elm_model *m, const elm_batch_split *s);

/*
 * Recomputes what the model derives from its parameters (w_s, kappas). The library does this
 * itself after loading and after each optimiser step; call it after writing parameters directly
 * through elm_tensor.data, before elm_model_step().
 */
ELM_API void elm_model_refresh(elm_model *m);

/* ---- Streaming ------------------------------------------------------------------------------- */

typedef struct elm_state elm_state;

/* State for B samples, all starting from zero traces and memory. */
ELM_API elm_status elm_state_create(elm_state **out, const elm_model *m, int B);
ELM_API void elm_state_reset(elm_state *s);
ELM_API void elm_state_free(elm_state *s);
/*
 * Memory units of sample b in the model's dtype: element j is at index j * stride, with stride
 * from elm_state_memory_stride() (samples are stored interleaved in groups). Borrowed.
 */
ELM_API const void *elm_state_memory(const elm_state *s, int b);
ELM_API int elm_state_memory_stride(const elm_state *s, int b);

/* Advances all B samples by one step: x (B, I) -> y (B, O). Same numbers as the batch forward.
 * elm_model_step needs an ELM_F32 model and elm_model_step_f64 an ELM_F64 one (ELM_ERR_ARG). */
ELM_API elm_status elm_model_step(const elm_model *m, elm_state *s, const float *x, float *y);
ELM_API elm_status elm_model_step_f64(const elm_model *m, elm_state *s, const double *x, double *y);

/* ---- Optimisers ------------------------------------------------------------------------------ */

typedef enum { ELM_OPT_ADAM = 0, ELM_OPT_ADAMW = 1, ELM_OPT_ADAMAX = 2 } elm_optim_kind;

typedef struct elm_optim_config {
    elm_optim_kind kind;
    double lr;
    double beta1, beta2, eps;
    double weight_decay; /* L2 for Adam/Adamax (PyTorch semantics), decoupled for AdamW */
} elm_optim_config;

typedef struct elm_optim elm_optim;

/* PyTorch's defaults for the kind: betas (0.9, 0.999), eps 1e-8 (AdamW weight decay 1e-2). */
ELM_API void elm_optim_config_default(elm_optim_config *c, elm_optim_kind kind, double lr);
ELM_API elm_status elm_optim_create(elm_optim **out, const elm_model *m, const elm_optim_config *c);
ELM_API void elm_optim_free(elm_optim *o);
/* One update of every trainable parameter from its gradient, at learning rate `lr`. */
ELM_API elm_status elm_optim_step(elm_optim *o, elm_model *m, double lr);
/* Cosine annealing from lr0 to lr_min over `total` steps, as torch's CosineAnnealingLR. */
ELM_API double elm_lr_cosine(double lr0, double lr_min, long step, long total);

/* Optimiser state (moments, step count) as safetensors, for checkpoints. Written atomically. */
ELM_API elm_status elm_optim_save(const elm_optim *o, const elm_model *m, const char *path);
ELM_API elm_status elm_optim_load(elm_optim *o, const elm_model *m, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* ELM_H */
