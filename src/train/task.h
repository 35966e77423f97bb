/*
 * task.h - inside a training task: what each task (NeuronIO, SHD, SHD-Adding, Pathfinder) gives
 * the generic trainer. Never installed; front ends use the elm_task_* calls of elm_train.h.
 *
 * The trainer (src/train/trainer.c) owns the model, the optimiser, the schedule, checkpoints and
 * metric files. A task owns its data: it fills training batches, computes its loss and dL/dy,
 * and evaluates a model on a split. Everything a task draws at random comes from the elm__rng it
 * is handed, so a run is reproducible from its seed and resumable from a checkpoint. The tasks
 * live beside their data (src/neuronio/task.c, src/shd/task.c, src/pathfinder/task.c).
 */
#ifndef ELM_TRAIN_TASK_H
#define ELM_TRAIN_TASK_H

#include "elm.h"
#include "elm_train.h"
#include "internal.h"

#include <cjson/cJSON.h>

struct elm_task {
    const char *name;  /* "neuronio", "shd", "shd-adding", "pathfinder" */
    int num_input;     /* I the data has */
    int num_output;    /* O the loss needs */
    int seq_len;       /* T of a training batch */
    double delta_t;    /* ms per step the data is binned at (model default) */
    size_t target_len; /* floats of target per sample */
    long batches_per_epoch;
    /* Name of the metric that selects the best model, and whether larger is better. */
    const char *select_metric;
    int select_larger_is_better;
    void *ctx;
    /*
     * Set before each train_batch (elm_task_batch): the epoch (from 0), the batch within it, and
     * a seed fixed for the whole epoch. A task that shuffles once per epoch derives the shuffle
     * from epoch_seed and its position from batch_in_epoch, so that a resumed run draws exactly
     * the batches of an uninterrupted one.
     */
    long epoch, batch_in_epoch;
    uint64_t epoch_seed;
    int trainable; /* created with for_training (set by elm_task_create) */
    /* 1: evaluate(..., "test") has test data, which is never data the task trains or validates
     * on; 0: it fails, and the trainer writes no test metrics. */
    int has_test;

    /*
     * Fills one training batch: x (B, T, I) and target (B, target_len). A task gives this, the
     * spike-list form below, or both; the trainer uses the spike lists when they are there.
     */
    elm_status (*train_batch)(elm_task *t, elm__rng *rng, int B, float *x, float *target);
    /*
     * The batch with x as spike lists, rows (b, t) (arrays owned by the task, valid until its
     * next call), so that a task with spiking inputs never builds nor scans a dense (B, T, I)
     * batch. When a task has both (SHD: its dense batches are what the lists are tested
     * against), the two draw the same from the same rng.
     */
    elm_status (*train_batch_sparse)(elm_task *t, elm__rng *rng, int B, elm_sparse_input *x,
                                     float *target);
    /* Mean loss of y (B, T, O) against target; writes dL/dy (B, T, O) of that mean loss. */
    double (*loss)(elm_task *t, const float *y, const float *target, float *dy, int B);
    /*
     * Evaluates `m` (float32) on `split` ("valid" or "test"; for `elm eval`, a task not opened
     * for training may treat both as "everything given") and adds the task's metrics to the JSON object
     * `metrics` (numbers, under the reference's metric names).
     */
    elm_status (*evaluate)(elm_task *t, elm_model *m, const char *split, cJSON *metrics);
    void (*free)(elm_task *t);
};

/* Task constructors: each validates its data folder and fails with a message naming it. */
elm_status elm__task_neuronio_create(elm_task **out, const elm_task_opts *o);
elm_status elm__task_shd_create(elm_task **out, const elm_task_opts *o, int adding);
elm_status elm__task_pathfinder_create(elm_task **out, const elm_task_opts *o);

/* The seed of batch `step` (and, with step = -1 - epoch, of an epoch's shuffle). */
uint64_t elm__batch_seed(uint64_t seed, long step);
/* Sets the task's epoch position for batch `step` of epochs of nb batches, and seeds rng. */
void elm__task_position(elm_task *t, uint64_t seed, long step, long nb, elm__rng *rng);
/* Evaluates into a cJSON object (the trainer's metrics rows). */
elm_status elm__task_evaluate_json(elm_task *t, elm_model *m, const char *split, cJSON *metrics);

/* Shared losses. */
/* NeuronIO: 0.5 * BCEWithLogits(y0, spike) + 0.5 * MSE(y1, soma); target (B, T, 2). */
double elm__loss_neuronio(const float *y, const float *target, float *dy, int B, int T);
/* Cross-entropy of the outputs at the last step; target (B) holds class ids as floats. */
double elm__loss_ce_last(const float *y, const float *target, float *dy, int B, int T, int O);

#endif
