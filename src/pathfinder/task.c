/*
 * task.c - the LRA Pathfinder / Path-X task (docs/TASKS.md section 3) for the trainer.
 *
 * Data: --data is a Pathfinder folder in the LRA layout (a difficulty folder, a pathfinderNN
 * folder or a folder of them; it must name one set). Splits are the reader's fixed 80/10/10
 * (ELM_PF_SPLIT_SEED, whatever --seed says), so every run and every `elm eval` see the same
 * validation and test images. `elm eval pathfinder --data DIR` reports the test split; the
 * evaluator also takes "train" and "all" (every image, for folders kept whole for testing, as
 * `elm eval --split all`). With --valid DIR2 the "valid" metrics come from all of DIR2 instead,
 * and with --test DIR3 the "test" metrics from all of DIR3 (which must be neither DIR nor DIR2).
 * A training set whose test split is empty (a tiny set) and no --test has no test split
 * (has_test 0).
 *
 * Inputs: one pixel per step, row-major, T = size^2, O = 2. pixel_levels 0 (default): I = 1,
 * (p / 255 - 0.5) / 0.5; pixel_levels L: I = L, one-hot over L grey levels (elm_pf_encode), the
 * ELM paper's encoding of LRA images.
 * Target: the label; loss: cross-entropy of the last step's outputs (elm__loss_ce_last).
 *
 * Training order: the training split is shuffled each epoch (from the trainer's epoch_seed) and
 * batch b of the epoch takes positions b*B .. b*B+B-1 of the shuffle (wrapping around at its
 * end). The order depends only on (seed, epoch, batch), so a run is reproducible from its seed
 * and a resumed run draws exactly the batches of an uninterrupted one. batches_per_epoch
 * defaults to ceil(n_train / B), one pass over the training split (B = 16 when the trainer does
 * not say).
 *
 * Images are decoded once into memory (uint8) when they fit ELM_PF_CACHE_MB (environment,
 * default 4096 MiB: a full 200k-image 32 px set is 200 MB, Path-X 3.3 GB), otherwise decoded on
 * the fly (libpng, in parallel over the batch).
 */
#include "internal.h"
#include "pathfinder/pf_task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PF_DEFAULT_BATCH    16 /* the trainer's default batch size for pathfinder */

static int pf_batch(const elm_task_opts *o) {
    return o->batch_size > 0 ? o->batch_size : PF_DEFAULT_BATCH;
}
#define PF_CACHE_MB_DEFAULT 4096

static void pf_task_free(elm_task *t) {
    if (!t)
        return;
    pf_ctx *c = t->ctx;
    if (c) {
        elm_pf_free(c->data);
        elm_pf_free(c->valid);
        elm_pf_free(c->test);
        free(c->order);
        free(c->idx);
        free(c);
    }
    free(t);
}

static elm_status pf_train_batch(elm_task *t, elm__rng *rng, int B, float *x, float *target) {
    pf_ctx *c = t->ctx;
    if (B > c->idx_cap) {
        long *p = realloc(c->idx, (size_t)B * sizeof *p);
        if (!p)
            return elm__fail(ELM_ERR_NOMEM, "pathfinder: out of memory for a batch of %d", B);
        c->idx = p;
        c->idx_cap = B;
    }
    (void)rng;
    if (c->order_epoch != t->epoch) {
        /* Fisher-Yates over the training split, from the epoch's seed. */
        elm__rng er;
        elm__rng_seed(&er, t->epoch_seed);
        for (long i = 0; i < c->ntrain; i++)
            c->order[i] = i;
        for (long i = c->ntrain - 1; i > 0; i--) {
            long j = (long)elm__rng_below(&er, (uint64_t)i + 1);
            long tmp = c->order[i];
            c->order[i] = c->order[j];
            c->order[j] = tmp;
        }
        c->order_epoch = t->epoch;
    }
    for (int b = 0; b < B; b++)
        c->idx[b] = c->order[(t->batch_in_epoch * B + b) % c->ntrain];
    return elm_pf_fill(c->data, ELM_PF_TRAIN, c->idx, B, x, target, c->threads, c->levels);
}

static double pf_loss(elm_task *t, const float *y, const float *target, float *dy, int B) {
    return elm__loss_ce_last(y, target, dy, B, t->seq_len, t->num_output);
}

static elm_status pf_evaluate(elm_task *t, elm_model *m, const char *split, cJSON *metrics) {
    pf_ctx *c = t->ctx;
    const elm_pf *src = c->data;
    elm_pf_split s;
    if (!strcmp(split, "valid")) {
        s = c->valid ? ELM_PF_ALL : ELM_PF_VALID;
        if (c->valid)
            src = c->valid;
    } else if (!strcmp(split, "test")) {
        s = c->test ? ELM_PF_ALL : ELM_PF_TEST;
        if (c->test)
            src = c->test;
    } else if (!strcmp(split, "train")) {
        s = ELM_PF_TRAIN;
    } else if (!strcmp(split, "all")) {
        s = ELM_PF_ALL; /* every image of the folder, for sets kept whole for testing */
    } else {
        return elm__fail(ELM_ERR_ARG, "pathfinder: no split '%s' (all, train, valid or test)",
                         split);
    }
    const elm_config *cfg = elm_model_config(m);
    if (elm_model_dtype(m) != ELM_F32)
        return elm__fail(ELM_ERR_ARG, "pathfinder: evaluation needs a float32 model");
    if (cfg->num_input != t->num_input || cfg->num_output != t->num_output)
        return elm__fail(ELM_ERR_SHAPE,
                         "pathfinder: the model has %d inputs and %d outputs; the task needs %d "
                         "and %d",
                         cfg->num_input, cfg->num_output, t->num_input, t->num_output);
    long n = elm_pf_len(src, s);
    if (c->eval_samples > 0 && c->eval_samples < n)
        n = c->eval_samples;
    if (n <= 0)
        return elm__fail(ELM_ERR_ARG,
                         "pathfinder: the %s split of %s is empty (%ld images; 80/10/10 split)",
                         split, elm_pf_get_info(src)->dir, elm_pf_get_info(src)->samples);
    int T = t->seq_len, O = t->num_output;
    int EB = c->eval_batch;
    float *x = malloc((size_t)EB * T * t->num_input * sizeof *x);
    float *y = malloc((size_t)EB * T * O * sizeof *y);
    float *lab = malloc((size_t)EB * sizeof *lab);
    long *idx = malloc((size_t)EB * sizeof *idx);
    elm_status st = ELM_OK;
    long conf[2][2] = {{0, 0}, {0, 0}};
    if (!x || !y || !lab || !idx) {
        st = elm__fail(ELM_ERR_NOMEM,
                       "pathfinder: out of memory for evaluation batches of %d x "
                       "%d steps",
                       EB, T);
        goto done;
    }
    double loss_sum = 0;
    long correct = 0;
    for (long k0 = 0; k0 < n; k0 += EB) {
        int nb = (int)(n - k0 < EB ? n - k0 : EB);
        for (int b = 0; b < nb; b++)
            idx[b] = k0 + b;
        if ((st = elm_pf_fill(src, s, idx, nb, x, lab, c->threads, c->levels)) != ELM_OK)
            goto done;
        if ((st = elm_model_forward(m, x, y, nb, T)) != ELM_OK)
            goto done;
        for (int b = 0; b < nb; b++) {
            /* Cross-entropy of the last step's outputs (log-sum-exp in double). */
            const float *z = y + ((size_t)b * T + (size_t)(T - 1)) * O;
            int l = (int)lab[b], arg = (double)z[1] > (double)z[0] ? 1 : 0;
            double zmax = fmax((double)z[0], (double)z[1]);
            if (!isfinite(zmax)) {
                st = elm__fail(ELM_ERR_NUMERIC,
                               "pathfinder: the model's output for %s sample %ld is not finite",
                               split, k0 + b);
                goto done;
            }
            double lse = zmax + log(exp((double)z[0] - zmax) + exp((double)z[1] - zmax));
            loss_sum += lse - (double)z[l];
            correct += arg == l;
            conf[l][arg]++;
        }
    }
    cJSON_AddNumberToObject(metrics, "accuracy", (double)correct / (double)n);
    cJSON_AddNumberToObject(metrics, "loss", loss_sum / (double)n);
    cJSON_AddNumberToObject(metrics, "num_samples", (double)n);
    /* confusion[true][predicted]. */
    cJSON *rows = cJSON_AddArrayToObject(metrics, "confusion");
    for (int r = 0; r < 2; r++) {
        cJSON *row = cJSON_CreateArray();
        for (int o = 0; o < 2; o++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)conf[r][o]));
        cJSON_AddItemToArray(rows, row);
    }
done:
    free(x);
    free(y);
    free(lab);
    free(idx);
    return st;
}

static size_t cache_limit(void) {
    const char *e = getenv("ELM_PF_CACHE_MB");
    long mb = PF_CACHE_MB_DEFAULT;
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (!*end && v >= 0)
            mb = v;
    }
    return (size_t)mb << 20;
}

/* The training folder, and the --valid and --test folders if given: images of one size, and a
 * test folder that is neither of the others. */
static elm_status open_sets(pf_ctx *c, const elm_task_opts *o) {
    elm_status st = elm_pf_open(&c->data, o->data, NULL, 0, ELM_PF_SPLIT_SEED);
    if (st != ELM_OK)
        return st;
    const elm_pf_info *in = elm_pf_get_info(c->data);
    if (o->valid) {
        if ((st = elm_pf_open(&c->valid, o->valid, NULL, 0, ELM_PF_SPLIT_SEED)) != ELM_OK)
            return st;
        if (elm_pf_get_info(c->valid)->image_size != in->image_size)
            return elm__fail(ELM_ERR_SHAPE,
                             "pathfinder: the validation images are %d px, the "
                             "training images %d px",
                             elm_pf_get_info(c->valid)->image_size, in->image_size);
    }
    if (o->test) {
        if ((st = elm_pf_open(&c->test, o->test, NULL, 0, ELM_PF_SPLIT_SEED)) != ELM_OK)
            return st;
        const char *tdir = elm_pf_get_info(c->test)->dir;
        if (elm_pf_get_info(c->test)->image_size != in->image_size)
            return elm__fail(ELM_ERR_SHAPE,
                             "pathfinder: the test images are %d px, the training images %d px",
                             elm_pf_get_info(c->test)->image_size, in->image_size);
        /* All of the test folder is tested on: it must hold no training or validation image. */
        if (elm__same_file(tdir, in->dir) ||
            (c->valid && elm__same_file(tdir, elm_pf_get_info(c->valid)->dir)))
            return elm__fail(ELM_ERR_ARG,
                             "pathfinder: the test folder %s is the %s folder; the test data "
                             "must be held out from the training and validation data",
                             tdir, elm__same_file(tdir, in->dir) ? "training" : "validation");
    }
    return ELM_OK;
}

/* The task's shape (fixed by the images), epoch length and methods; the training images
 * decoded once when they fit (training reads every image every epoch). */
static elm_status set_task(elm_task *t, pf_ctx *c, const elm_task_opts *o) {
    const elm_pf_info *in = elm_pf_get_info(c->data);
    c->ntrain = elm_pf_len(c->data, ELM_PF_TRAIN);
    if (o->for_training && (c->ntrain < 1 || (!c->valid && in->split_len[1] < 1)))
        return elm__fail(ELM_ERR_FORMAT,
                         "pathfinder: %s has %ld images: too few for an 80/10/10 split with a "
                         "training and a validation image",
                         in->dir, in->samples);
    t->has_test = c->test != NULL || in->split_len[2] >= 1;
    c->order = malloc(((size_t)c->ntrain + 1) * sizeof *c->order);
    if (!c->order)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    c->order_epoch = -1;
    t->name = "pathfinder";
    t->num_input = elm_pf_num_input(c->levels);
    t->num_output = 2;
    t->seq_len = in->image_size * in->image_size;
    t->delta_t = 1.0;
    t->target_len = 1;
    t->select_metric = "accuracy";
    t->select_larger_is_better = 1;
    if (o->seq_len && o->seq_len != t->seq_len)
        return elm__fail(ELM_ERR_CONFIG,
                         "pathfinder: seq_len %d: this task's length is fixed by the images at "
                         "%d x %d = %d steps",
                         o->seq_len, in->image_size, in->image_size, t->seq_len);
    t->batches_per_epoch = o->batches_per_epoch > 0
                               ? o->batches_per_epoch
                               : (c->ntrain + pf_batch(o) - 1) / pf_batch(o);
    if (t->batches_per_epoch < 1)
        t->batches_per_epoch = 1;
    if (o->for_training) {
        int cached = 0;
        elm_status st = elm_pf_cache(c->data, cache_limit(), o->threads, &cached);
        if (st != ELM_OK)
            return st;
    }
    t->train_batch = pf_train_batch;
    t->loss = pf_loss;
    t->evaluate = pf_evaluate;
    return ELM_OK;
}

elm_status elm__task_pathfinder_create(elm_task **out, const elm_task_opts *o) {
    *out = NULL;
    if (!o->data)
        return elm__fail(ELM_ERR_ARG, "pathfinder: no data folder given (a Pathfinder set "
                                      "in the LRA layout, e.g. from `elm gen pathfinder`)");
    elm_task *t = calloc(1, sizeof *t);
    pf_ctx *c = calloc(1, sizeof *c);
    if (!t || !c) {
        free(t);
        free(c);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    t->ctx = c;
    t->free = pf_task_free;
    c->eval_samples = o->eval_samples;
    c->eval_batch = o->eval_batch > 0 ? o->eval_batch : 32;
    c->threads = o->threads;
    c->levels = o->pixel_levels;
    if (!elm_pf_levels_valid(c->levels)) {
        pf_task_free(t);
        return elm__fail(ELM_ERR_CONFIG,
                         "pathfinder: pixel_levels %d: 0 (the pixel as one input) or 2 to %d "
                         "grey levels (one-hot)",
                         o->pixel_levels, ELM_PF_MAX_LEVELS);
    }
    elm_status st = open_sets(c, o);
    if (st == ELM_OK)
        st = set_task(t, c, o);
    if (st != ELM_OK) {
        pf_task_free(t);
        return st;
    }
    *out = t;
    return ELM_OK;
}
