/*
 * task.c - the SHD and SHD-Adding training tasks (docs/TASKS.md section 2) for the trainer.
 *
 * Data: DATA/shd_train.h5 and DATA/shd_test.h5 (the released names, gunzipped). Splits, all fixed
 * by the constant SHD_DATA_SEED whatever --seed says, so every run and every `elm eval` see the
 * same validation and test sets and a validation sample is never trained on:
 *   shd:        train = the training file minus a seeded 10 %, valid = that 10 %, test = the test
 *               file. (The reference validated on the test set; we keep the test set unseen.)
 *   shd-adding: training pool = the training file minus a seeded 20 %, validation pool = that
 *               20 %, test pool = the test file; 4000 validation and 16000 test pairs drawn once
 *               (eval_samples overrides both counts); training pairs are drawn fresh each batch.
 * With --valid FILE the validation samples (or pool) come from FILE and the whole training file
 * is trained on. With --test FILE (or a folder holding shd_test.h5) the test samples (or pool)
 * come from it instead of DATA/shd_test.h5, which is then not needed. A test file that is the
 * validation file, or a --test file that is the training file, is refused; a folder whose
 * shd_test.h5 is its shd_train.h5 (one file linked twice) gets a note in its test metrics.
 *
 * Binning: bin_ms (elm_task_opts; the trainer's knob, default 10 ms) over [0, 1 s): the
 * sequence is ceil(1000 / bin_ms) steps per digit, and the task's delta_t is bin_ms. `elm eval`
 * bins as the run did (it reads bin_ms from the run's config.json).
 *
 * Training batches draw samples (or pairs) uniformly with replacement from the elm__rng the
 * trainer hands over, so a run is reproducible from its seed and resumable from a checkpoint
 * without any sampler state of our own. Input dropout (torch.nn.Dropout semantics) is applied to
 * training batches only, never in evaluate().
 */
#include "shd/shd_task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Seeds of the fixed splits and evaluation pairs (2020: the year SHD was published). */
#define SHD_DATA_SEED       2020u
#define SHD_VALID_FRAC      0.10 /* shd: held-out share of the training file */
#define SHD_ADD_VALID_FRAC  0.20 /* shd-adding: validation pool share (TASKS.md 2) */
#define SHD_ADD_VALID_PAIRS 4000
#define SHD_ADD_TEST_PAIRS  16000
#define SHD_ADD_BATCHES     2000 /* training batches per epoch (of 8 in the reference) */
#define SHD_REF_BATCH       8    /* the reference's batch size, for the default epoch length */

/* Sample i of d as the num_bins rows starting at row r (row r's start already set). */
static elm_status lists_add(elm__spike_lists *L, const elm_shd *d, int i, size_t r) {
    int64_t *ptr = L->ptr + r;
    elm_status st =
        elm__spike_lists_reserve(L, (size_t)ptr[0] + (size_t)(d->ptr[i + 1] - d->ptr[i]));
    return st ? st : elm_shd_fill_sparse(d, i, ptr[0], ptr + 1, L->idx, L->val, L->cap);
}

static void set_clear(shd_set *s) {
    free(s->a);
    free(s->b);
    memset(s, 0, sizeof *s);
}

static void shd_task_free(elm_task *t) {
    if (!t)
        return;
    shd_ctx *c = t->ctx;
    if (c) {
        elm_shd_free(c->train);
        elm_shd_free(c->test);
        elm_shd_free(c->valid_file);
        free(c->train_pool);
        elm__spike_lists_free(&c->train_lists);
        set_clear(&c->valid);
        set_clear(&c->test_set);
        free(c);
    }
    free(t);
}

/* Sample k of a set (or pair) into rows r .. r + T - 1 of L; *label gets its label. */
static elm_status set_fill_lists(const shd_ctx *c, const shd_set *s, int k,
                                 elm__spike_lists *L, size_t r, int *label) {
    const elm_shd *d = s->src;
    elm_status st = lists_add(L, d, s->a[k], r);
    if (st == ELM_OK && c->adding)
        st = lists_add(L, d, s->b[k], r + (size_t)d->num_bins);
    *label = c->adding ? elm_shd_adding_label(d->labels[s->a[k]], d->labels[s->b[k]])
                       : d->labels[s->a[k]];
    return st;
}

static elm_status shd_train_batch(elm_task *t, elm__rng *rng, int B, float *x, float *target) {
    shd_ctx *c = t->ctx;
    size_t per = (size_t)t->seq_len * (size_t)t->num_input;
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * per;
        int l;
        if (c->adding) {
            int i1, i2;
            elm_shd_adding_draw(&i1, &i2, 1, c->train_pool, c->ntrain, rng);
            l = elm_shd_adding_fill(c->train, i1, i2, xb);
        } else {
            int i = c->train_pool[elm__rng_below(rng, (uint64_t)c->ntrain)];
            elm_shd_fill(c->train, i, xb);
            l = c->train->labels[i];
        }
        target[b] = (float)l;
    }
    elm_shd_input_dropout(x, (size_t)B * per, c->dropout, rng);
    return ELM_OK;
}

/*
 * The batch of shd_train_batch as spike lists: the same draws (the samples, then dropout over
 * the nonzero inputs in (sample, step, channel) order, which is the order of the lists), so a
 * run's batches are the same whichever is used.
 */
static elm_status shd_train_batch_sparse(elm_task *t, elm__rng *rng, int B, elm_sparse_input *x,
                                         float *target) {
    shd_ctx *c = t->ctx;
    elm__spike_lists *L = &c->train_lists;
    const size_t T = (size_t)t->seq_len, Ts = (size_t)c->train->num_bins; /* Ts: one digit */
    elm_status st = elm__spike_lists_rows(L, (size_t)B * T);
    for (int b = 0; b < B && st == ELM_OK; b++) {
        if (c->adding) {
            int i1, i2;
            elm_shd_adding_draw(&i1, &i2, 1, c->train_pool, c->ntrain, rng);
            target[b] = (float)elm_shd_adding_label(c->train->labels[i1], c->train->labels[i2]);
            st = lists_add(L, c->train, i1, (size_t)b * T);
            if (st == ELM_OK)
                st = lists_add(L, c->train, i2, (size_t)b * T + Ts);
        } else {
            int i = c->train_pool[elm__rng_below(rng, (uint64_t)c->ntrain)];
            target[b] = (float)c->train->labels[i];
            st = lists_add(L, c->train, i, (size_t)b * T);
        }
    }
    if (st != ELM_OK)
        return st;
    elm_shd_input_dropout(L->val, (size_t)L->ptr[(size_t)B * T], c->dropout, rng);
    *x = elm__spike_lists_input(L);
    return ELM_OK;
}

static double shd_loss(elm_task *t, const float *y, const float *target, float *dy, int B) {
    return elm__loss_ce_last(y, target, dy, B, t->seq_len, t->num_output);
}

static elm_status shd_evaluate(elm_task *t, elm_model *m, const char *split, cJSON *metrics) {
    shd_ctx *c = t->ctx;
    const shd_set *s;
    if (!strcmp(split, "valid"))
        s = &c->valid;
    else if (!strcmp(split, "test"))
        s = &c->test_set;
    else
        return elm__fail(ELM_ERR_ARG, "%s: no split '%s' (valid or test)", t->name, split);
    const elm_config *cfg = elm_model_config(m);
    if (elm_model_dtype(m) != ELM_F32)
        return elm__fail(ELM_ERR_ARG, "%s: evaluation needs a float32 model", t->name);
    if (cfg->num_input != t->num_input || cfg->num_output != t->num_output)
        return elm__fail(ELM_ERR_SHAPE,
                         "%s: the model has %d inputs and %d outputs; the task needs %d and %d",
                         t->name, cfg->num_input, cfg->num_output, t->num_input, t->num_output);
    int n = s->n;
    if (!c->adding && c->eval_samples > 0 && c->eval_samples < n)
        n = (int)c->eval_samples;
    if (n <= 0)
        return elm__fail(ELM_ERR_ARG, "%s: the %s split is empty", t->name, split);

    int T = t->seq_len, O = t->num_output;
    int EB = c->eval_batch;
    elm__spike_lists L = {0};
    float *y = malloc((size_t)EB * T * O * sizeof *y);
    long *conf = calloc((size_t)O * O, sizeof *conf);
    int *lab = malloc((size_t)EB * sizeof *lab);
    elm_status st = ELM_OK;
    if (!y || !conf || !lab) {
        st =
            elm__fail(ELM_ERR_NOMEM, "%s: out of memory for evaluation batches of %d", t->name, EB);
        goto done;
    }
    double loss_sum = 0;
    long correct = 0;
    for (int k0 = 0; k0 < n; k0 += EB) {
        int nb = n - k0 < EB ? n - k0 : EB;
        /* The samples as spike lists: the dense frames' results, bit for bit. */
        st = elm__spike_lists_rows(&L, (size_t)nb * (size_t)T);
        for (int b = 0; b < nb && st == ELM_OK; b++)
            st = set_fill_lists(c, s, k0 + b, &L, (size_t)b * (size_t)T, &lab[b]);
        elm_sparse_input xs = elm__spike_lists_input(&L);
        if (st != ELM_OK || (st = elm_model_forward_sparse(m, &xs, y, nb, T)) != ELM_OK)
            goto done;
        for (int b = 0; b < nb; b++) {
            /* Cross-entropy of the last step's outputs (log-sum-exp in double). */
            const float *z = y + ((size_t)b * T + (size_t)(T - 1)) * O;
            int arg = 0;
            double zmax = (double)z[0];
            for (int o = 1; o < O; o++)
                if ((double)z[o] > zmax) {
                    zmax = (double)z[o];
                    arg = o;
                }
            if (!isfinite(zmax)) {
                st = elm__fail(ELM_ERR_NUMERIC,
                               "%s: the model's output for %s sample %d is "
                               "not finite",
                               t->name, split, k0 + b);
                goto done;
            }
            double se = 0;
            for (int o = 0; o < O; o++)
                se += exp((double)z[o] - zmax);
            loss_sum += log(se) + zmax - (double)z[lab[b]];
            correct += arg == lab[b];
            conf[(size_t)lab[b] * O + arg]++;
        }
    }
    cJSON_AddNumberToObject(metrics, "accuracy", (double)correct / n);
    cJSON_AddNumberToObject(metrics, "loss", loss_sum / n);
    cJSON_AddNumberToObject(metrics, "num_samples", n);
    if (s == &c->test_set && c->test_is_train)
        cJSON_AddStringToObject(metrics, "note", "the test file is the training file: not a "
                                                 "held-out score");
    /* confusion[true][predicted]. */
    cJSON *rows = cJSON_AddArrayToObject(metrics, "confusion");
    for (int r = 0; r < O; r++) {
        cJSON *row = cJSON_CreateArray();
        for (int o = 0; o < O; o++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)conf[(size_t)r * O + o]));
        cJSON_AddItemToArray(rows, row);
    }
done:
    elm__spike_lists_free(&L);
    free(y);
    free(conf);
    free(lab);
    return st;
}

/* Loads DATA/name, with a hint about the download (or the generator) when it is absent. */
static elm_status load_file(elm_shd **out, const char *dir, const char *name,
                            const elm_shd_opts *so) {
    char *p = elm__path_join(dir, name);
    if (!p)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    struct stat sb;
    elm_status st;
    if (stat(p, &sb) != 0) {
        size_t n = strlen(p);
        char *gz = malloc(n + 4);
        int have_gz = 0;
        if (gz) {
            memcpy(gz, p, n);
            memcpy(gz + n, ".gz", 4);
            have_gz = stat(gz, &sb) == 0;
            free(gz);
        }
        if (have_gz)
            st = elm__fail(ELM_ERR_IO, "%s: not found, but %s.gz is: gunzip it first", p, name);
        else
            st = elm__fail(ELM_ERR_IO,
                           "%s: not found (the data folder needs shd_train.h5 and shd_test.h5: "
                           "the released files, gunzipped, or the output of `elm gen shd`)",
                           p);
    } else {
        st = elm_shd_load(out, p, so);
    }
    free(p);
    return st;
}

/* Fixed evaluation set: every index of `pool`, or (adding) npairs pairs drawn from it by seed. */
static elm_status make_set(shd_set *s, const elm_shd *src, const int *pool, int npool, int adding,
                           long npairs, uint64_t seed) {
    s->src = src;
    s->n = adding ? (int)npairs : npool;
    s->a = malloc(((size_t)s->n + 1) * sizeof *s->a);
    s->b = adding ? malloc(((size_t)s->n + 1) * sizeof *s->b) : NULL;
    if (!s->a || (adding && !s->b))
        return elm__fail(ELM_ERR_NOMEM, "out of memory for %d evaluation samples", s->n);
    if (adding) {
        elm__rng r;
        elm__rng_seed(&r, seed);
        elm_shd_adding_draw(s->a, s->b, s->n, pool, npool, &r);
    } else {
        memcpy(s->a, pool, (size_t)npool * sizeof *pool);
    }
    return ELM_OK;
}

static int *iota(int n) {
    int *p = malloc(((size_t)n + 1) * sizeof *p);
    for (int i = 0; p && i < n; i++)
        p[i] = i;
    return p;
}

/* The options' checks, and the binning they ask for in *so. */
static elm_status check_opts(const char *name, const elm_task_opts *o, elm_shd_opts *so) {
    if (!o->data)
        return elm__fail(ELM_ERR_ARG,
                         "%s: no data folder given (a folder with shd_train.h5 "
                         "and shd_test.h5)",
                         name);
    if (!elm__is_dir(o->data))
        return elm__fail(ELM_ERR_IO, "%s: data folder %s does not exist", name, o->data);
    if (!(o->input_dropout >= 0 && o->input_dropout < 1))
        return elm__fail(ELM_ERR_CONFIG, "%s: input dropout %g is outside [0, 1)", name,
                         o->input_dropout);
    /* Bins: 0 is the released protocol's 10 ms. Spike times are float16 seconds (0.5 ms apart
     * near 1 s), so narrower bins than 1 ms only split rounding; one bin per second is the
     * widest that still has a sequence (2 steps for shd-adding). */
    elm_shd_opts_default(so);
    if (o->bin_ms != 0) {
        if (!(o->bin_ms >= 1 && o->bin_ms <= so->duration_ms))
            return elm__fail(ELM_ERR_CONFIG,
                             "%s: bin_ms %g is outside [1, %g] ms (float16 spike times resolve "
                             "0.5 ms near 1 s; the window is %g ms)",
                             name, o->bin_ms, so->duration_ms, so->duration_ms);
        so->bin_ms = o->bin_ms;
    }
    return ELM_OK;
}

/* The training, test and (--valid) validation files; a test file that trained or selected the
 * model is refused. */
static elm_status load_files(shd_ctx *c, const char *name, const elm_task_opts *o,
                             const elm_shd_opts *so) {
    elm_status st;
    if ((st = load_file(&c->train, o->data, "shd_train.h5", so)) != ELM_OK)
        return st;
    if (o->test && !elm__is_dir(o->test))
        st = elm_shd_load(&c->test, o->test, so);
    else
        st = load_file(&c->test, o->test ? o->test : o->data, "shd_test.h5", so);
    if (st != ELM_OK)
        return st;
    if (o->valid && (st = elm_shd_load(&c->valid_file, o->valid, so)) != ELM_OK)
        return st;
    /* A score on data that trained or selected the model is no test score. */
    c->test_is_train = elm__same_file(c->test->path, c->train->path);
    if ((o->test && c->test_is_train) ||
        (c->valid_file && elm__same_file(c->test->path, c->valid_file->path)))
        return elm__fail(ELM_ERR_ARG,
                         "%s: the test file %s is the %s file; the test data must be held out "
                         "from the training and validation data",
                         name, c->test->path, c->test_is_train ? "training" : "validation");
    return ELM_OK;
}

/* Training pool (c->train_pool) and the validation samples: *held (n *nheld) indices into
 * *vsrc, the --valid file whole or the seeded held-out share of the training file. */
static elm_status split_pools(shd_ctx *c, const char *name, const elm_task_opts *o,
                              const elm_shd **vsrc, int **held, int *nheld) {
    elm_status st;
    if (c->valid_file) {
        c->train_pool = iota(c->train->n);
        c->ntrain = c->train->n;
        *vsrc = c->valid_file;
        *held = iota((*vsrc)->n);
        *nheld = (*vsrc)->n;
        if (!c->train_pool || !*held)
            return elm__fail(ELM_ERR_NOMEM, "out of memory");
    } else {
        *vsrc = c->train;
        if ((st = elm_shd_split(c->train->n, c->adding ? SHD_ADD_VALID_FRAC : SHD_VALID_FRAC,
                                SHD_DATA_SEED, &c->train_pool, &c->ntrain, held, nheld)) != ELM_OK)
            return st;
    }
    if (c->ntrain < 1 || *nheld < 1 || c->test->n < 1)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: too few samples: %d to train on, %d to validate on, "
                         "%d to test on (%s)",
                         name, c->ntrain, *nheld, c->test->n, o->data);
    return ELM_OK;
}

/* The fixed validation and test sets (pairs drawn by seed for shd-adding); every file must bin
 * to the training file's frames. */
static elm_status make_eval_sets(shd_ctx *c, const char *name, const elm_task_opts *o,
                                 const elm_shd *vsrc, const int *held, int nheld) {
    long nv = o->eval_samples > 0 ? o->eval_samples : SHD_ADD_VALID_PAIRS;
    long nt = o->eval_samples > 0 ? o->eval_samples : SHD_ADD_TEST_PAIRS;
    if (c->adding && (nv > 100000000 || nt > 100000000))
        return elm__fail(ELM_ERR_CONFIG, "%s: %ld evaluation pairs is too many", name, nv);
    int *all = iota(c->test->n);
    if (!all)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st;
    if ((st = make_set(&c->valid, vsrc, held, nheld, c->adding, nv, SHD_DATA_SEED + 1)) != ELM_OK ||
        (st = make_set(&c->test_set, c->test, all, c->test->n, c->adding, nt, SHD_DATA_SEED + 2)) !=
            ELM_OK) {
        free(all);
        return st;
    }
    free(all);

    /* Every file must bin to the same frames. */
    const elm_shd *files[2] = {c->test, c->valid_file};
    for (int k = 0; k < 2; k++)
        if (files[k] && (files[k]->num_bins != c->train->num_bins ||
                         files[k]->num_channels != c->train->num_channels))
            return elm__fail(ELM_ERR_SHAPE, "%s: %s bins to %d x %d, the training file to %d x %d",
                             name, files[k]->path, files[k]->num_bins, files[k]->num_channels,
                             c->train->num_bins, c->train->num_channels);
    return ELM_OK;
}

/* The task's shape (fixed by the binning), epoch length and methods. */
static elm_status set_task(elm_task *t, const shd_ctx *c, const char *name,
                           const elm_task_opts *o) {
    const int adding = c->adding;
    t->name = name;
    t->num_input = c->train->num_channels;
    t->num_output = adding ? ELM_SHD_ADD_CLASSES : ELM_SHD_CLASSES;
    t->seq_len = c->train->num_bins * (adding ? 2 : 1);
    if (o->seq_len && o->seq_len != t->seq_len)
        return elm__fail(ELM_ERR_CONFIG,
                         "%s: seq_len %d: this task's length is fixed by the binning at %d steps "
                         "of %g ms",
                         name, o->seq_len, t->seq_len, c->train->bin_ms);
    t->delta_t = c->train->bin_ms;
    t->has_test = 1;
    t->target_len = 1;
    const int bsz = o->batch_size > 0 ? o->batch_size : SHD_REF_BATCH;
    t->batches_per_epoch = o->batches_per_epoch > 0 ? o->batches_per_epoch
                           : adding                 ? SHD_ADD_BATCHES
                                                    : (c->ntrain + bsz - 1) / bsz;
    t->select_metric = "accuracy";
    t->select_larger_is_better = 1;
    t->train_batch = shd_train_batch;
    t->train_batch_sparse = shd_train_batch_sparse;
    t->loss = shd_loss;
    t->evaluate = shd_evaluate;
    return ELM_OK;
}

elm_status elm__task_shd_create(elm_task **out, const elm_task_opts *o, int adding) {
    *out = NULL;
    const char *name = adding ? "shd-adding" : "shd";
    elm_shd_opts so;
    elm_status st = check_opts(name, o, &so);
    if (st != ELM_OK)
        return st;

    elm_task *t = calloc(1, sizeof *t);
    shd_ctx *c = calloc(1, sizeof *c);
    if (!t || !c) {
        free(t);
        free(c);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    t->ctx = c;
    t->free = shd_task_free;
    c->adding = adding;
    c->dropout = o->input_dropout;
    c->eval_samples = o->eval_samples;
    c->eval_batch = o->eval_batch > 0 ? o->eval_batch : 32;

    const elm_shd *vsrc = NULL;
    int *held = NULL, nheld = 0;
    if ((st = load_files(c, name, o, &so)) != ELM_OK ||
        (st = split_pools(c, name, o, &vsrc, &held, &nheld)) != ELM_OK ||
        (st = make_eval_sets(c, name, o, vsrc, held, nheld)) != ELM_OK ||
        (st = set_task(t, c, name, o)) != ELM_OK) {
        free(held);
        shd_task_free(t);
        return st;
    }
    free(held);
    *out = t;
    return ELM_OK;
}
