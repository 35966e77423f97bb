/*
 * elm_train.h - training ELM models on the built-in tasks, for any front end (the `elm` CLI, a
 * Python package, an MPI launcher).
 *
 * Three layers, each usable alone:
 *   elm_task       a task's data, batches, loss and evaluation (NeuronIO, SHD, SHD-Adding,
 *                  Pathfinder), reproducible from a seed and a step number.
 *   elm_train_config  the training knobs (epochs, batch size, learning rate, ...), with the
 *                  reference's defaults per task and one string setter that validates each knob.
 *   elm_trainer    the whole loop over a run folder: batches, forward, loss, backward, optimiser,
 *                  cosine schedule, validation, best model, checkpoints, test metrics. A run
 *                  written by any front end is continued by `elm train --resume` and vice versa.
 *
 * The run folder RUN holds:
 *   config.json          the resolved run: task, data, training knobs, model configuration
 *   metrics.csv/.json    one row / object per epoch (loss, learning rate, validation metrics, time)
 *   model.safetensors    the best model on validation so far (+ model_config.json)
 *   checkpoint/          step-<N>.model.safetensors, step-<N>.optim.safetensors and state.json;
 *                        state.json is written last and atomically, and names the files of the
 *                        newest complete checkpoint, so a run killed at any moment resumes from it
 *   test_metrics.json    written when the run ends (its presence marks a finished run): the
 *                        best model's validation scores (valid_<metric>, the data that selected
 *                        it) and, where the task has test data, its scores on that data
 *                        (test_<metric>); without test data only a "note" saying so, never a
 *                        validation or training score under a test name
 *
 * Reproducibility: the random generator of batch k is seeded from (seed, k) alone, so a resumed
 * run draws exactly the batches the uninterrupted run would have, and with the same thread count
 * ends with a bitwise identical model.
 *
 * Example: train a small NeuronIO model, printing each epoch's validation score.
 *
 *     static void on_epoch(void *user, const elm_train_epoch *e) {
 *         printf("epoch %ld: %s %g\n", e->epoch, e->select_metric, e->score);
 *     }
 *     ...
 *     elm_train_spec s;
 *     elm_train_spec_default(&s, "neuronio");       // the task's defaults
 *     s.data = "nio_cache";                         // elm data convert neuronio ... --out nio_cache
 *     s.out = "runs/small";
 *     elm_train_config_set(&s.train, &s.model, "num_memory", "5", "main");
 *     elm_train_config_set(&s.train, &s.model, "epochs", "2", "main");
 *     elm_trainer *tr = NULL;
 *     elm_train_hooks h = {.epoch_end = on_epoch};
 *     if (elm_trainer_create(&tr, &s) || elm_trainer_set_hooks(tr, &h) || elm_trainer_run(tr))
 *         fprintf(stderr, "%s\n", elm_last_error());
 *     elm_trainer_free(tr);
 *
 * Conventions as in elm.h: a failing call returns an elm_status and elm_last_error() says why.
 * Precision: task data, targets, the outputs given to the loss and dL/dy are float32 whatever the
 * model's dtype (elm.h's rule for data that is not a model's array); the trainer trains a float64
 * model (elm_train_config.dtype) by converting them at the model's boundary, and
 * elm_task_evaluate evaluates one through a float32 copy.
 */
#ifndef ELM_TRAIN_H
#define ELM_TRAIN_H

#include "elm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Tasks ----------------------------------------------------------------------------------- */

typedef struct elm_task elm_task;

/* What a task is built from. Zero values mean "the task's default". */
typedef struct elm_task_opts {
    const char *data;       /* the task's data (folder, file or ':'-separated list) */
    const char *valid;      /* separate validation data (optional) */
    const char *test;       /* separate test data (optional; must not be training or validation
                               data, which the task refuses) */
    uint64_t seed;
    int threads;            /* 0 = OpenMP's default */
    double input_dropout;   /* SHD: dropout on training inputs, never at evaluation */
    double bin_ms;          /* SHD: width of an input time bin in ms (0: the task's 10 ms) */
    int seq_len;            /* training window length in steps */
    long batches_per_epoch; /* default: one pass over the training set where the task has one */
    int batch_size;         /* the trainer's batch size, for that default */
    long eval_samples;      /* default: the whole evaluation set */
    int eval_batch;         /* batch size of evaluation */
    int for_training;       /* 0: only evaluation will be asked for (no training split) */
    int pixel_levels;       /* pathfinder: 0 = the pixel as one input, (p / 255 - 0.5) / 0.5;
                               L in [2, 256] = L inputs, one-hot over L grey levels */
} elm_task_opts;

/* The task names elm_task_create() knows; returns how many (names[0 .. n)). */
ELM_API int elm_task_names(const char *const **names);

/*
 * Creates task `name` ("neuronio", "shd", "shd-adding", "pathfinder") over o->data. Each task
 * validates its data and fails with a message naming the file and the problem.
 */
ELM_API elm_status elm_task_create(elm_task **out, const char *name, const elm_task_opts *o);
ELM_API void elm_task_free(elm_task *t);

/* The sizes and choices a task fixes. */
typedef struct elm_task_info {
    const char *name;
    int num_input, num_output; /* I the data has, O the loss needs */
    int seq_len;               /* T of a training batch */
    double delta_t;            /* ms per step the data is binned at */
    size_t target_len;         /* floats of target per sample */
    long batches_per_epoch;
    const char *select_metric; /* the validation metric that selects the best model */
    int select_larger_is_better;
    int sparse; /* 1: batches come as spike lists (elm_task_batch fills x_sparse) */
    int has_test; /* 1: the "test" split has data (never the training or validation data) */
} elm_task_info;
ELM_API void elm_task_get_info(const elm_task *t, elm_task_info *out);

/*
 * Training batch number `step` (from 0) of a run seeded `seed`, batch_size B: exactly the batch
 * the trainer draws at that step. Dense tasks fill x (B, T, I) (caller's array); spiking tasks
 * set *x_sparse to spike lists owned by the task, valid until its next call (float32 values).
 * Pass both and the task fills the one it has. target: (B, target_len), caller's array.
 */
ELM_API elm_status elm_task_batch(elm_task *t, uint64_t seed, long step, int B, float *x,
                                  elm_sparse_input *x_sparse, float *target);
/* Mean loss of y (B, T, O) against target; writes dL/dy (B, T, O) of that mean loss. */
ELM_API double elm_task_loss(elm_task *t, const float *y, const float *target, float *dy, int B);
/*
 * Evaluates `m` on `split` ("valid" or "test"; pathfinder also takes "train" and "all", every
 * image of its folder; "test" fails with ELM_ERR_ARG when the task has no test data,
 * info.has_test) and returns the metrics as a JSON object (malloc'd text; free() it), under the
 * reference's metric names. A float64 model is evaluated through a float32 copy.
 */
ELM_API elm_status elm_task_evaluate(elm_task *t, elm_model *m, const char *split, char **json);

/* ---- Training configuration ------------------------------------------------------------------ */

typedef struct elm_train_config {
    long epochs;
    long batches_per_epoch; /* 0 = the task's default */
    long batch_size;
    double lr, lr_min; /* cosine schedule from lr to lr_min over the run */
    elm_optim_kind optimizer;
    double weight_decay;
    double grad_clip; /* clip the gradient norm to this; 0 = off */
    long seed;
    long threads; /* 0 = all cores */
    double input_dropout;
    /* SHD tasks: input time bin in ms (10 by default; 0 for tasks without bins). Setting it
     * through elm_train_config_set with a model config moves delta_t along when delta_t was
     * the old bin width, so that a step of the model stays one bin of the data. */
    double bin_ms;
    long seq_len; /* 0 = the task's default */
    long eval_samples;
    long eval_batch;
    long checkpoint_every; /* batches */
    double time_limit;     /* seconds; 0 = none */
    long ckpt_stride;      /* BPTT memory checkpointing stride; 0 = auto */
    elm_dtype dtype;       /* of the trained model; float32 by default */
    /* Samples per gradient group (elm_model_set_grad_groups): the batch's gradient is summed
     * exactly over groups fixed by sample index, so the trained model is bitwise the same for
     * every thread count and number of MPI ranks. 0 = min(8, ceil(batch_size / 2)). ELM models
     * (an LSTM keeps per-thread sums). */
    long grad_group;
    /* Pathfinder: 0 = the pixel as one input; L = one-hot over L grey levels (elm_task_opts). */
    long pixel_levels;
    /* 1: the model trains with fused multiply-adds (elm_model_set_fma); 0 (default): the exact
     * float32 path, the same bits on every x86-64 CPU. */
    long fma;
} elm_train_config;

/*
 * The defaults of `task` (the reference's protocols): training knobs and the model options the
 * task's published model uses (num_input and num_output are filled when the trainer sees the
 * data). ELM_ERR_ARG for an unknown task.
 */
ELM_API elm_status elm_train_config_default(elm_train_config *tc, elm_config *mc, const char *task);
/*
 * Sets one training knob or model option from its name and a string value, checking it ("an
 * integer", "a number", a range, a choice). Unknown keys are ELM_ERR_CONFIG with a suggestion;
 * origin (a file or flag) leads the message. Either tc or mc may be NULL to allow only the other.
 */
ELM_API elm_status elm_train_config_set(elm_train_config *tc, elm_config *mc, const char *key,
                                        const char *value, const char *origin);
/*
 * Applies a JSON file of knobs and model options (one flat object, or sections "train" and
 * "model"; a run's config.json is accepted, its "task", "data", "valid", "test" and
 * "elm" are skipped).
 */
ELM_API elm_status elm_train_config_load(elm_train_config *tc, elm_config *mc, const char *path);
/* The knobs' names and one-line descriptions; returns how many. */
ELM_API int elm_train_knobs(const char *const **names, const char *const **help);

/* ---- Trainer --------------------------------------------------------------------------------- */

/*
 * Data-parallel training over `size` processes (an MPI launcher fills this with MPI calls; the
 * library itself never calls MPI). Every process runs a trainer on the same spec and makes the
 * same calls in the same order; each draws the whole global batch (batch_size stays global),
 * runs forward and backward on its share of the gradient groups, and the gradients are summed
 * exactly through max_i32 and sum_i64 (in place, over all processes: MPI_Allreduce with MPI_MAX
 * on int32, MPI_SUM on int64), so every process takes the same optimiser step and the model is
 * bitwise that of one process. allgather (as elm_batch_split's) collects per-sample losses and
 * splits evaluation. Process 0 alone writes the run folder (config, metrics, best model,
 * checkpoints, test metrics). A failed call on any process must end the whole job (MPI_Abort):
 * the others would wait for it.
 */
typedef struct elm_train_dist {
    int rank, size;
    void *user;
    elm_status (*max_i32)(void *user, int32_t *v, size_t n);
    elm_status (*sum_i64)(void *user, int64_t *v, size_t n);
    elm_status (*allgather)(void *user, void *buf, const int *counts, size_t item_bytes);
} elm_train_dist;

/* A run: what to train on, where to write, and how. */
typedef struct elm_train_spec {
    const char *task;  /* a name of elm_task_names() */
    const char *data;  /* elm_task_opts.data */
    const char *valid; /* optional */
    const char *test;  /* optional: test data (elm_task_opts.test) */
    const char *out;   /* the run folder, created if needed */
    const char *init;  /* optional: start from this model instead of a fresh one */
    /* elm_trainer_create in a folder that holds a run (its files, or a checkpoint) fails unless
     * force is set; then the run's files (only those) are removed and the run starts over. */
    int force;
    elm_train_config train;
    elm_config model;
    /* Data-parallel training (above); NULL: one process. Borrowed: must outlive the trainer. */
    const elm_train_dist *dist;
} elm_train_spec;
/* Zeroes *s and fills train and model with the task's defaults (elm_train_config_default). */
ELM_API elm_status elm_train_spec_default(elm_train_spec *s, const char *task);

typedef struct elm_trainer elm_trainer;

/* Where a run stands. */
typedef struct elm_train_info {
    const char *task;
    long epochs, batches_per_epoch, total_steps;
    int batch_size, seq_len;
    long step;         /* batches done */
    long resumed_from; /* the checkpoint's step when resumed, else 0 */
    int resumed;       /* 1: resumed from a checkpoint; 0: started fresh */
    double best;       /* best validation score so far (NAN: none) */
    long best_epoch;   /* -1: none */
    int stopped;       /* after elm_trainer_run: 0 finished, 1 request_stop, 2 time limit */
    double elapsed_s;  /* since create / resume */
} elm_train_info;

/* Progress after each training batch. */
typedef struct elm_train_progress {
    long epoch, batch; /* 1-based; batch within the epoch */
    long step;         /* batches done in the run */
    double loss;       /* mean training loss of the epoch so far */
    double lr;
    double sample_steps_per_s; /* since create / resume */
    double eta_s;
    double elapsed_s;
    int epoch_end; /* 1 on the epoch's last batch */
} elm_train_progress;

/* An epoch's end, after validation (and the save of a new best model). */
typedef struct elm_train_epoch {
    long epoch; /* 1-based */
    double train_loss;
    const char *select_metric;
    double score;        /* that metric on validation (NAN if the task gave none) */
    int saved;           /* 1: the best so far, saved as RUN/model.safetensors */
    int diverged;        /* 1: the epoch's mean training loss ran away: never the best */
    const char *metrics; /* the metrics row as JSON text, borrowed for the call */
} elm_train_epoch;

typedef struct elm_train_hooks {
    void *user;
    void (*progress)(void *user, const elm_train_progress *p);
    void (*epoch_end)(void *user, const elm_train_epoch *e);
    /*
     * Called after backward, before gradient clipping and the optimiser step: the gradients of
     * this process's batch are in elm_model_tensor(m, i).grad. Data-parallel front ends
     * all-reduce (average) them here. A non-OK return stops the step with that status.
     */
    elm_status (*grads_ready)(void *user, elm_model *m);
} elm_train_hooks;

/*
 * Starts a fresh run in s->out (a model from s->init, else a fresh one seeded s->train.seed):
 * opens the task, checks the folder is writable and writes config.json. A folder that already
 * holds a run (finished or not) is refused unless s->force is set, which removes that run's
 * files first. lr_min above lr is refused.
 */
ELM_API elm_status elm_trainer_create(elm_trainer **out, const elm_train_spec *s);
/*
 * Continues the run in s->out from its newest checkpoint (model, optimiser, step, best score,
 * metrics history), with the knobs of *s. Without a checkpoint it starts fresh, as
 * elm_trainer_create; info.resumed says which.
 */
ELM_API elm_status elm_trainer_resume(elm_trainer **out, const elm_train_spec *s);
ELM_API void elm_trainer_free(elm_trainer *tr);

ELM_API elm_status elm_trainer_set_hooks(elm_trainer *tr, const elm_train_hooks *h);
ELM_API void elm_trainer_get_info(const elm_trainer *tr, elm_train_info *out);
/* The model being trained (borrowed; the trainer updates it in place). */
ELM_API elm_model *elm_trainer_model(elm_trainer *tr);
ELM_API elm_task *elm_trainer_task(elm_trainer *tr);

/*
 * One training batch: draws batch info.step, forward, loss, backward, grads_ready, clipping and
 * the optimiser step at the cosine learning rate. *loss (may be NULL) receives the batch's loss.
 * A non-finite loss or gradient is ELM_ERR_NUMERIC, the model left unchanged; so is a loss over
 * 100 times that of the run's first batch (the run diverges). An epoch whose mean training loss
 * is over 10 times that first loss is never selected as the best model. The first loss is kept
 * in the checkpoint, so a resumed run judges as the uninterrupted one (checkpoints written
 * before it was kept: the first batch after the resume).
 */
ELM_API elm_status elm_trainer_step(elm_trainer *tr, double *loss);
/*
 * Times one batch for an estimate before a run: the next batch run forward and backward but
 * never applied (no optimiser step, no hook, gradients zeroed after), so the run is bitwise what
 * it would be without the call. *seconds: the wall time it took.
 */
ELM_API elm_status elm_trainer_time_batch(elm_trainer *tr, double *seconds);
/* Ends the epoch: validation, metrics.csv/.json, and the best model saved when it improves. */
ELM_API elm_status elm_trainer_end_epoch(elm_trainer *tr);
/* Writes a checkpoint of the current step (the previous one is removed once it is complete). */
ELM_API elm_status elm_trainer_checkpoint(elm_trainer *tr);
/*
 * The run to its end: steps, epochs ends, checkpoints every checkpoint_every batches and at
 * each epoch's end, then test_metrics.json: the best model's validation scores and, where the
 * task has test data, its test scores (info.has_test of the task). Stops early,
 * with a checkpoint, after elm_trainer_request_stop() or the time limit (info.stopped). When no
 * epoch gave a usable model (every validation score non-finite, or every epoch diverged), the
 * end is ELM_ERR_NUMERIC.
 */
ELM_API elm_status elm_trainer_run(elm_trainer *tr);
/*
 * Asks elm_trainer_run to stop after the current batch. Safe to call from a signal handler or
 * another thread. The stop answers the request: calling elm_trainer_run again continues the run.
 */
ELM_API void elm_trainer_request_stop(elm_trainer *tr);
/* After a finished run: test_metrics.json's content as JSON text (borrowed), or NULL. */
ELM_API const char *elm_trainer_test_metrics(const elm_trainer *tr);

#ifdef __cplusplus
}
#endif

#endif /* ELM_TRAIN_H */
