/*
 * task.c - the NeuronIO training task (docs/TASKS.md section 1) for the generic trainer.
 *
 * Data: --data is one or more (':'-separated) NeuronIO caches or pickle folders/files (see
 * src/neuronio/nio_data.h). Splits:
 *   training batches   random windows of seq_len (500) steps starting at or after 500 ms
 *                      (start = 500 + uniform[0, T - 500 - 500), the reference's range), each
 *                      from a uniformly drawn simulation of the training files;
 *   "valid"            the reference evaluation (src/neuronio/metrics.h) on the --valid data;
 *                      without --valid, a training run holds out the last file of --data when
 *                      there are two or more files (and never trains on it), else validates on
 *                      its only file (optimistic; a message in the metrics says so);
 *   "test"             the same evaluation on the --test data, which shares no file with the
 *                      training or validation data (refused otherwise). A training run without
 *                      --test has no test split (has_test 0): the validation score selects the
 *                      best epoch and is never reported as a test score.
 * `elm eval` (a task not opened for training) evaluates everything in --data for either split.
 * Inputs get the synapse sign (+1 excitatory, -1 inhibitory) exactly once, when the window is cut
 * (elm_nio_fill_window with apply_sign). Targets (T, 2) per sample: spike bin and scaled soma
 * ((min(v, -55) + 67.7) * 0.1); the loss is elm__loss_neuronio (src/train/losses.c).
 */
#include "neuronio/metrics.h"
#include "neuronio/nio_data.h"
#include "train/task.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define NIO_WINDOW 500      /* training window, ms (reference input_window_size) */
#define NIO_IGNORE_START 500 /* training windows start at or after this, ms */
#define NIO_BATCHES 10000   /* batches per epoch (reference train_config) */

typedef struct {
    elm_nio_data *data;  /* training files (and, for `elm eval`, everything evaluated) */
    elm_nio_data *valid; /* --valid, the held-out last file of --data, or NULL */
    elm_nio_data *test;  /* --test, or NULL */
    int n_train;         /* simulations [0, n_train) of data are trained on */
    int same_data;       /* validation on the training data (one file, no --valid) */
    int *train_sims;     /* simulations long enough for a training window */
    int n_train_sims;
    long eval_samples;
    int eval_batch;
    int threads; /* OpenMP threads for cutting a batch */
    /* The spike lists of the last sparse batch, and its samples' views and window starts. */
    elm__spike_lists lists;
    elm_nio_view *sp_view;
    int *sp_t0;
    int sp_b;
} nio_ctx;

/*
 * A training batch as spike lists: per sample a simulation, then a window start, drawn in sample
 * order (the draws of the dense windows the task cut before, so seeds give the same runs). The
 * draws and the sizes come first; then the samples' lists are cut in parallel, each into its own
 * part of the arrays.
 */
static elm_status nio_train_batch_sparse(elm_task *t, elm__rng *rng, int B, elm_sparse_input *x,
                                         float *target) {
    nio_ctx *c = t->ctx;
    elm__spike_lists *L = &c->lists;
    const int T = t->seq_len;
    elm_status st = elm__spike_lists_rows(L, (size_t)B * (size_t)T);
    if (st != ELM_OK)
        return st;
    if (c->sp_b < B) {
        elm_nio_view *v = realloc(c->sp_view, sizeof *v * (size_t)B);
        if (v)
            c->sp_view = v;
        int *w = v ? realloc(c->sp_t0, sizeof *w * (size_t)B) : NULL;
        if (!w)
            return elm__fail(ELM_ERR_NOMEM, "out of memory for a batch's spike lists");
        c->sp_t0 = w;
        c->sp_b = B;
    }
    int64_t total = 0;
    for (int b = 0; b < B; b++) {
        int k = c->train_sims[elm__rng_below(rng, (uint64_t)c->n_train_sims)];
        elm_nio_view *v = &c->sp_view[b];
        st = elm_nio_data_sim(c->data, k, v);
        if (st != ELM_OK)
            return st;
        int span = v->T - T - NIO_IGNORE_START;
        c->sp_t0[b] = NIO_IGNORE_START + (int)elm__rng_below(rng, (uint64_t)span);
        int64_t nnz = elm_nio_window_nnz(v, c->sp_t0[b], T);
        char name[600];
        if (nnz < 0)
            return elm__fail(ELM_ERR_FORMAT, "%s: corrupt row pointers",
                             elm_nio_view_name(v, name, sizeof name));
        L->ptr[(size_t)b * (size_t)T] = total;
        total += nnz;
    }
    if ((st = elm__spike_lists_reserve(L, (size_t)total)) != ELM_OK)
        return st;
    int failed = 0;
#pragma omp parallel for schedule(static) num_threads(c->threads) reduction(| : failed)
    for (int b = 0; b < B; b++) {
        int64_t *ptr = L->ptr + (size_t)b * (size_t)T;
        failed |= elm_nio_fill_window_sparse(&c->sp_view[b], c->sp_t0[b], T, ptr[0], ptr + 1,
                                             L->idx, L->val, L->cap,
                                             target + (size_t)b * t->target_len, 1) != ELM_OK;
    }
    if (failed) /* again in this thread, for the message (the error text is per thread) */
        for (int b = 0; b < B; b++) {
            int64_t *ptr = L->ptr + (size_t)b * (size_t)T;
            st = elm_nio_fill_window_sparse(&c->sp_view[b], c->sp_t0[b], T, ptr[0], ptr + 1,
                                            L->idx, L->val, L->cap,
                                            target + (size_t)b * t->target_len, 1);
            if (st != ELM_OK)
                return st;
        }
    *x = elm__spike_lists_input(L);
    return ELM_OK;
}

static double nio_loss(elm_task *t, const float *y, const float *target, float *dy, int B) {
    return elm__loss_neuronio(y, target, dy, B, t->seq_len);
}

static elm_status nio_evaluate(elm_task *t, elm_model *m, const char *split, cJSON *metrics) {
    nio_ctx *c = t->ctx;
    const int test = !strcmp(split, "test");
    if (!test && strcmp(split, "valid"))
        return elm__fail(ELM_ERR_ARG, "neuronio: no split '%s' (valid or test)", split);
    if (test && t->trainable && !c->test)
        return elm__fail(ELM_ERR_ARG, "neuronio: no test data (none was given for this run)");
    elm_nio_eval_opts o;
    elm_nio_eval_opts_default(&o);
    if (c->eval_batch > 0)
        o.batch = c->eval_batch;
    if (c->eval_samples > 0)
        o.max_sims = (int)(c->eval_samples < 1 << 30 ? c->eval_samples : 1 << 30);
    const elm_nio_data *d = test ? (c->test ? c->test : c->data) : c->valid ? c->valid : c->data;
    elm_nio_metrics r;
    elm_status st = elm_nio_evaluate(&r, m, d, &o);
    if (st != ELM_OK)
        return st;
    for (int i = 0; i < 8; i++)
        cJSON_AddNumberToObject(metrics, elm_nio_metric_names[i], elm_nio_metric_value(&r, i));
    cJSON_AddNumberToObject(metrics, "num_simulations", r.num_simulations);
    cJSON_AddNumberToObject(metrics, "num_kept_simulations", r.num_kept);
    if (c->same_data && !test)
        cJSON_AddStringToObject(metrics, "note", "validated on the training data (one file, no "
                                                 "validation data)");
    return ELM_OK;
}

/* Test data must share no file with the training or validation data (a test score on data that
 * trained or selected the model is no test): ELM_ERR_ARG naming the file, else ELM_OK. */
static elm_status check_apart(const elm_nio_data *test, const elm_nio_data *d, const char *what) {
    for (int i = 0; i < elm_nio_data_num_files(test); i++)
        for (int j = 0; j < elm_nio_data_num_files(d); j++)
            if (elm__same_file(elm_nio_data_file_path(test, i), elm_nio_data_file_path(d, j)))
                return elm__fail(ELM_ERR_ARG, "neuronio: %s is both test and %s data; the "
                                              "test data must be held out from both",
                                 elm_nio_data_file_path(test, i), what);
    return ELM_OK;
}

static void nio_free(elm_task *t) {
    if (!t)
        return;
    nio_ctx *c = t->ctx;
    if (c) {
        elm_nio_data_free(c->data);
        elm_nio_data_free(c->valid);
        elm_nio_data_free(c->test);
        free(c->train_sims);
        elm__spike_lists_free(&c->lists);
        free(c->sp_view);
        free(c->sp_t0);
        free(c);
    }
    free(t);
}

elm_status elm__task_neuronio_create(elm_task **out, const elm_task_opts *o) {
    *out = NULL;
    if (!o->data)
        return elm__fail(ELM_ERR_ARG, "neuronio: no data given (a cache folder made by "
                                      "`elm data convert neuronio`, or NeuronIO pickles)");
    elm_task *t = calloc(1, sizeof *t);
    nio_ctx *c = calloc(1, sizeof *c);
    if (!t || !c) {
        free(t);
        free(c);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    t->ctx = c;
    t->free = nio_free;
    elm_status st = elm_nio_data_open_list(&c->data, o->data);
    if (st == ELM_OK && o->valid && *o->valid)
        st = elm_nio_data_open_list(&c->valid, o->valid);
    if (st == ELM_OK && o->test && *o->test)
        st = elm_nio_data_open_list(&c->test, o->test);
    if (st == ELM_OK && c->test)
        st = check_apart(c->test, c->data, "training");
    if (st == ELM_OK && c->test && c->valid)
        st = check_apart(c->test, c->valid, "validation");
    if (st != ELM_OK) {
        nio_free(t);
        return st;
    }
    c->eval_samples = o->eval_samples;
    c->eval_batch = o->eval_batch;
    c->threads = o->threads > 0 ? o->threads : omp_get_max_threads();
    t->name = "neuronio";
    t->num_input = elm_nio_data_n_in(c->data);
    t->num_output = 2;
    t->seq_len = o->seq_len > 0 ? o->seq_len : NIO_WINDOW;
    t->delta_t = 1.0;
    t->target_len = (size_t)t->seq_len * 2;
    t->batches_per_epoch = o->batches_per_epoch > 0 ? o->batches_per_epoch : NIO_BATCHES;
    t->select_metric = "soma_RMSE";
    t->select_larger_is_better = 0;
    t->train_batch_sparse = nio_train_batch_sparse;
    t->loss = nio_loss;
    t->evaluate = nio_evaluate;
    t->has_test = c->test != NULL || !o->for_training;
    if (c->test && elm_nio_data_n_in(c->test) != t->num_input) {
        st = elm__fail(ELM_ERR_SHAPE, "neuronio: the test data has %d inputs, the training data %d",
                       elm_nio_data_n_in(c->test), t->num_input);
        nio_free(t);
        return st;
    }
    if (c->valid && elm_nio_data_n_in(c->valid) != t->num_input) {
        st = elm__fail(ELM_ERR_SHAPE, "neuronio: the validation data has %d inputs, the training data %d",
                       elm_nio_data_n_in(c->valid), t->num_input);
        nio_free(t);
        return st;
    }
    if (!o->for_training)
        goto done;
    /* Training: hold out the last file for validation when there is no --valid. */
    c->n_train = elm_nio_data_num_sims(c->data);
    int nf = elm_nio_data_num_files(c->data);
    if (!c->valid && nf >= 2) {
        const char *last = elm_nio_data_file_path(c->data, nf - 1);
        c->n_train = elm_nio_data_file_first(c->data, nf - 1);
        st = elm_nio_data_open(&c->valid, &last, 1);
        if (st != ELM_OK) {
            nio_free(t);
            return st;
        }
    } else if (!c->valid) {
        c->same_data = 1;
    }
    c->train_sims = malloc((size_t)(c->n_train ? c->n_train : 1) * sizeof *c->train_sims);
    if (!c->train_sims) {
        nio_free(t);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < c->n_train; k++) {
        elm_nio_view v;
        if ((st = elm_nio_data_sim(c->data, k, &v)) != ELM_OK) {
            nio_free(t);
            return st;
        }
        if (v.T >= NIO_IGNORE_START + t->seq_len + 1)
            c->train_sims[c->n_train_sims++] = k;
    }
    if (c->n_train_sims == 0) {
        st = elm__fail(ELM_ERR_ARG, "neuronio: %s: no training simulation is longer than %d ms "
                                    "(500 ms ignored at the start + a %d ms window)",
                       o->data, NIO_IGNORE_START + t->seq_len, t->seq_len);
        nio_free(t);
        return st;
    }
done:
    *out = t;
    return ELM_OK;
}
