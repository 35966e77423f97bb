/*
 * tasks.c - the public face of the training tasks (elm_task_* in elm_train.h): creation by name,
 * batches by step number, loss and evaluation.
 *
 * Batch `step` of a run seeded `seed` is drawn from an elm__rng seeded by elm__batch_seed(seed,
 * step), and a task that shuffles per epoch gets the epoch's own seed; both depend on (seed, step)
 * alone, which is what makes a resumed run draw the batches of an uninterrupted one.
 */
#include "train/task.h"

#include <stdlib.h>
#include <string.h>

static const char *const task_names[] = {"neuronio", "shd", "shd-adding", "pathfinder"};
#define NTASKS ((int)(sizeof task_names / sizeof task_names[0]))

int elm_task_names(const char *const **names) {
    *names = task_names;
    return NTASKS;
}

elm_status elm_task_create(elm_task **out, const char *name, const elm_task_opts *o) {
    *out = NULL;
    if (!name || !o)
        return elm__fail(ELM_ERR_ARG, "elm_task_create: no task name or options");
    elm_status st = ELM_ERR_ARG;
    if (o->bin_ms != 0 && (!strcmp(name, "neuronio") || !strcmp(name, "pathfinder")))
        return elm__fail(ELM_ERR_CONFIG,
                         "%s: bin_ms %g: only shd and shd-adding bin their inputs (leave it 0)",
                         name, o->bin_ms);
    if (o->pixel_levels != 0 && strcmp(name, "pathfinder"))
        return elm__fail(ELM_ERR_CONFIG,
                         "%s: pixel_levels %d: only pathfinder encodes pixels (leave it 0)", name,
                         o->pixel_levels);
    if (!strcmp(name, "neuronio"))
        st = elm__task_neuronio_create(out, o);
    else if (!strcmp(name, "shd"))
        st = elm__task_shd_create(out, o, 0);
    else if (!strcmp(name, "shd-adding"))
        st = elm__task_shd_create(out, o, 1);
    else if (!strcmp(name, "pathfinder"))
        st = elm__task_pathfinder_create(out, o);
    else
        return elm__fail(ELM_ERR_ARG, "unknown task '%s'%s (neuronio, shd, shd-adding, pathfinder)",
                     name, elm__suggest(name, task_names, NTASKS));
    if (!st)
        (*out)->trainable = o->for_training != 0;
    return st;
}

void elm_task_free(elm_task *t) {
    if (t && t->free)
        t->free(t);
}

void elm_task_get_info(const elm_task *t, elm_task_info *out) {
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->num_input = t->num_input;
    out->num_output = t->num_output;
    out->seq_len = t->seq_len;
    out->delta_t = t->delta_t;
    out->target_len = t->target_len;
    out->batches_per_epoch = t->batches_per_epoch;
    out->select_metric = t->select_metric;
    out->select_larger_is_better = t->select_larger_is_better;
    out->sparse = t->train_batch_sparse != NULL;
    out->has_test = t->has_test;
}

uint64_t elm__batch_seed(uint64_t seed, long step) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)step * 0xbf58476d1ce4e5b9ULL;
    return z ^ (z >> 29);
}

void elm__task_position(elm_task *t, uint64_t seed, long step, long nb, elm__rng *rng) {
    long epoch = step / nb;
    elm__rng_seed(rng, elm__batch_seed(seed, step));
    t->epoch = epoch;
    t->batch_in_epoch = step % nb;
    t->epoch_seed = elm__batch_seed(seed ^ 0x5eedULL, -1 - epoch);
}

elm_status elm_task_batch(elm_task *t, uint64_t seed, long step, int B, float *x,
                          elm_sparse_input *x_sparse, float *target) {
    if (!t || B < 1 || step < 0 || !target || (!x && !x_sparse))
        return elm__fail(ELM_ERR_ARG, "elm_task_batch: bad arguments (B %d, step %ld)", B, step);
    if (!(t->train_batch_sparse && x_sparse) && !(t->train_batch && x))
        return elm__fail(ELM_ERR_ARG, "%s: batches come as %s; pass %s", t->name,
                         t->train_batch_sparse ? "spike lists" : "dense arrays",
                         t->train_batch_sparse ? "x_sparse" : "x");
    if (!t->trainable || t->batches_per_epoch < 1)
        return elm__fail(ELM_ERR_ARG, "%s: the task was not opened for training", t->name);
    elm__rng rng;
    elm__task_position(t, seed, step, t->batches_per_epoch, &rng);
    return t->train_batch_sparse && x_sparse ? t->train_batch_sparse(t, &rng, B, x_sparse, target)
                                             : t->train_batch(t, &rng, B, x, target);
}

double elm_task_loss(elm_task *t, const float *y, const float *target, float *dy, int B) {
    return t->loss(t, y, target, dy, B);
}

elm_status elm__task_evaluate_json(elm_task *t, elm_model *m, const char *split, cJSON *metrics) {
    if (elm_model_dtype(m) == ELM_F32)
        return t->evaluate(t, m, split, metrics);
    /* The tasks' evaluators run float32 models: a float64 one goes through a copy. */
    elm_model *c = NULL;
    elm_status st = elm_model_clone(&c, m, ELM_F32);
    if (!st)
        st = t->evaluate(t, c, split, metrics);
    elm_model_free(c);
    return st;
}

elm_status elm_task_evaluate(elm_task *t, elm_model *m, const char *split, char **json) {
    *json = NULL;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st = elm__task_evaluate_json(t, m, split, j);
    if (!st) {
        *json = cJSON_Print(j);
        if (!*json)
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(j);
    return st;
}
