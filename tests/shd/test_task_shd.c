/*
 * test_task_shd.c - the SHD / SHD-Adding training task (src/shd/task.c) on the tiny fixture,
 * linked from the training library. Its loss is checked against a plain cross-entropy of the
 * last step written out here.
 */
#include "shd/shd_task.h"
#include "test.h"

#include <math.h>
#include <unistd.h>

/* Mean cross-entropy of the last step, written plainly (no gradient). */
static double ref_ce_last(const float *y, const float *target, int B, int T, int O) {
    double s = 0;
    for (int b = 0; b < B; b++) {
        const float *z = y + ((size_t)b * T + (size_t)(T - 1)) * O;
        double mx = (double)z[0], se = 0;
        for (int o = 1; o < O; o++)
            mx = fmax(mx, (double)z[o]);
        for (int o = 0; o < O; o++)
            se += exp((double)z[o] - mx);
        s += log(se) + mx - (double)z[(int)target[b]];
    }
    return s / B;
}

static char fixture[2048], tmpdir[] = "/tmp/elm_task_shd_XXXXXX";

static void setup(void) {
    test_fixture(fixture, "shd_tiny.h5");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/shd_train.h5", tmpdir);
    CHECK(symlink(fixture, p) == 0, "symlink %s", p);
    snprintf(p, sizeof p, "%s/shd_test.h5", tmpdir);
    CHECK(symlink(fixture, p) == 0, "symlink %s", p);
}

static void teardown(void) {
    char p[4096];
    snprintf(p, sizeof p, "%s/shd_train.h5", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/shd_test.h5", tmpdir);
    unlink(p);
    rmdir(tmpdir);
}

static elm_task_opts opts(void) {
    elm_task_opts o;
    memset(&o, 0, sizeof o);
    o.data = tmpdir;
    o.seed = 1;
    return o;
}

/* Index of the sample of d whose frames equal x (T, C), or -1. */
static int which_sample(const elm_shd *d, const float *x, float *buf) {
    size_t n = (size_t)d->num_bins * d->num_channels;
    for (int i = 0; i < d->n; i++) {
        elm_shd_fill(d, i, buf);
        if (!memcmp(buf, x, n * sizeof *x))
            return i;
    }
    return -1;
}

static void test_shd_task(void) {
    elm_task *t = NULL;
    elm_task_opts o = opts();
    CHECK_OK(elm__task_shd_create(&t, &o, 0));
    if (!t)
        return;
    shd_ctx *c = t->ctx;
    CHECK(!strcmp(t->name, "shd") && t->num_input == 700 && t->num_output == 20 &&
              t->seq_len == 100 && t->delta_t == 10.0 && t->target_len == 1,
          "shd task geometry");
    /* 10 samples: 1 held out for validation (10 %), 9 trained on, ceil(9 / 8) batches. */
    CHECK(c->ntrain == 9 && c->valid.n == 1 && c->test_set.n == 10, "split %d/%d/%d", c->ntrain,
          c->valid.n, c->test_set.n);
    CHECK(t->batches_per_epoch == 2, "batches per epoch %ld", t->batches_per_epoch);
    CHECK(!strcmp(t->select_metric, "accuracy") && t->select_larger_is_better, "select metric");

    /* Training batches: real samples of the training pool with their labels, never the held-out
     * one, the same for the same seed. */
    enum { B = 4 };
    size_t per = 100 * 700;
    float *x = malloc(B * per * sizeof *x), *x2 = malloc(B * per * sizeof *x);
    float *buf = malloc(per * sizeof *buf);
    float tg[B], tg2[B];
    int held = c->valid.a[0], ok = 1, drew_held = 0;
    elm__rng r, r2;
    elm__rng_seed(&r, 5);
    for (int it = 0; it < 50; it++) {
        CHECK_OK(t->train_batch(t, &r, B, x, tg));
        for (int b = 0; b < B; b++) {
            int i = which_sample(c->train, x + b * per, buf);
            ok &= i >= 0 && c->train->labels[i] == (int)tg[b];
            drew_held |= i == held;
        }
    }
    CHECK(ok, "a training batch holds something other than a labelled training sample");
    CHECK(!drew_held, "the validation sample %d was drawn for training", held);
    elm__rng_seed(&r, 5);
    elm__rng_seed(&r2, 5);
    CHECK_OK(t->train_batch(t, &r, B, x, tg));
    CHECK_OK(t->train_batch(t, &r2, B, x2, tg2));
    CHECK(!memcmp(x, x2, B * per * sizeof *x) && !memcmp(tg, tg2, sizeof tg),
          "same seed, different batch");

    /* Evaluation with a small real model: metrics consistent with one-at-a-time forwards. */
    elm_config cfg;
    elm_config_default(&cfg, 700, 20, 4);
    cfg.delta_t = 10;
    CHECK_OK(elm_config_resolve(&cfg));
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &cfg, ELM_F32, 11));
    if (m) {
        c->eval_batch = 3; /* 10 test samples: batches of 3, 3, 3, 1 */
        cJSON *j = cJSON_CreateObject();
        CHECK_OK(t->evaluate(t, m, "test", j));
        double acc = cJSON_GetObjectItem(j, "accuracy")
                         ? cJSON_GetObjectItem(j, "accuracy")->valuedouble
                         : -1;
        double loss =
            cJSON_GetObjectItem(j, "loss") ? cJSON_GetObjectItem(j, "loss")->valuedouble : -1;
        cJSON *ns = cJSON_GetObjectItem(j, "num_samples");
        cJSON *conf = cJSON_GetObjectItem(j, "confusion");
        CHECK(ns && ns->valuedouble == 10, "num_samples");
        CHECK(conf && cJSON_GetArraySize(conf) == 20, "confusion rows");
        /* Reference: each test sample alone. */
        float *y = malloc(100 * 20 * sizeof *y);
        double want_loss = 0;
        int want_correct = 0;
        long cm[20][20] = {{0}};
        for (int i = 0; i < 10; i++) {
            elm_shd_fill(c->test, i, buf);
            CHECK_OK(elm_model_forward(m, buf, y, 1, 100));
            float lab = (float)c->test->labels[i];
            want_loss += ref_ce_last(y, &lab, 1, 100, 20);
            int arg = 0;
            for (int k = 1; k < 20; k++)
                if (y[99 * 20 + k] > y[99 * 20 + arg])
                    arg = k;
            want_correct += arg == (int)lab;
            cm[(int)lab][arg]++;
        }
        want_loss /= 10;
        /* Batched and single forwards agree to float32 rounding; CE summed in double. */
        CHECK(fabs(loss - want_loss) <= 1e-5 * fmax(1, want_loss), "loss %.9g want %.9g", loss,
              want_loss);
        CHECK(acc == want_correct / 10.0, "accuracy %g want %g", acc, want_correct / 10.0);
        int cm_ok = conf != NULL;
        for (int a = 0; conf && a < 20; a++) {
            cJSON *row = cJSON_GetArrayItem(conf, a);
            cm_ok &= cJSON_GetArraySize(row) == 20;
            for (int b = 0; b < 20 && cm_ok; b++)
                cm_ok &= cJSON_GetArrayItem(row, b)->valuedouble == (double)cm[a][b];
        }
        CHECK(cm_ok, "confusion matrix differs from the one-at-a-time count");
        cJSON_Delete(j);

        j = cJSON_CreateObject();
        CHECK_OK(t->evaluate(t, m, "valid", j));
        CHECK(cJSON_GetObjectItem(j, "num_samples") &&
                  cJSON_GetObjectItem(j, "num_samples")->valuedouble == 1,
              "valid num_samples");
        cJSON_Delete(j);
        j = cJSON_CreateObject();
        CHECK(t->evaluate(t, m, "train", j) == ELM_ERR_ARG, "unknown split accepted");
        cJSON_Delete(j);
        free(y);
    }
    elm_model_free(m);
    /* A model of the wrong shape is refused. */
    elm_config_default(&cfg, 700, 19, 4);
    CHECK_OK(elm_config_resolve(&cfg));
    CHECK_OK(elm_model_create(&m, &cfg, ELM_F32, 11));
    if (m) {
        cJSON *j = cJSON_CreateObject();
        CHECK(t->evaluate(t, m, "test", j) == ELM_ERR_SHAPE, "19-output model accepted");
        cJSON_Delete(j);
    }
    elm_model_free(m);
    t->free(t);

    /* Dropout 0.5 in training batches: every value is 0 or twice a count. */
    o.input_dropout = 0.5;
    CHECK_OK(elm__task_shd_create(&t, &o, 0));
    if (t) {
        elm__rng_seed(&r, 9);
        CHECK_OK(t->train_batch(t, &r, B, x, tg));
        elm__rng_seed(&r, 9);
        o.input_dropout = 0;
        elm_task *t0 = NULL;
        CHECK_OK(elm__task_shd_create(&t0, &o, 0));
        /* Same rng: the same samples are drawn before dropout consumes the stream. */
        if (t0)
            CHECK_OK(t0->train_batch(t0, &r, B, x2, tg2));
        int dok = 1, dropped = 0, nz = 0;
        for (size_t k = 0; k < B * per; k++) {
            dok &= x[k] == 0.0f || x[k] == 2.0f * x2[k];
            nz += x2[k] != 0;
            dropped += x2[k] != 0 && x[k] == 0;
        }
        CHECK(dok && nz > 0 && dropped > 0 && dropped < nz, "dropout: %d of %d dropped", dropped,
              nz);
        if (t0)
            t0->free(t0);
        t->free(t);
    }
    free(x);
    free(x2);
    free(buf);
}

static void test_adding_task(void) {
    elm_task *t = NULL, *t2 = NULL;
    elm_task_opts o = opts();
    o.eval_samples = 50;
    CHECK_OK(elm__task_shd_create(&t, &o, 1));
    if (!t)
        return;
    shd_ctx *c = t->ctx;
    CHECK(!strcmp(t->name, "shd-adding") && t->num_output == 19 && t->seq_len == 200 &&
              t->batches_per_epoch == 2000,
          "adding geometry");
    /* 20 % of 10 -> 2 in the validation pool, 8 in the training pool. */
    CHECK(c->ntrain == 8 && c->valid.n == 50 && c->test_set.n == 50, "pools %d, pairs %d/%d",
          c->ntrain, c->valid.n, c->test_set.n);
    o.seed = 999; /* the fixed sets do not depend on the training seed */
    CHECK_OK(elm__task_shd_create(&t2, &o, 1));
    if (t2) {
        shd_ctx *c2 = t2->ctx;
        CHECK(!memcmp(c->valid.a, c2->valid.a, 50 * sizeof(int)) &&
                  !memcmp(c->valid.b, c2->valid.b, 50 * sizeof(int)) &&
                  !memcmp(c->test_set.a, c2->test_set.a, 50 * sizeof(int)) &&
                  !memcmp(c->test_set.b, c2->test_set.b, 50 * sizeof(int)),
              "evaluation pairs are not fixed");
        t2->free(t2);
    }
    /* Validation pairs come from the validation pool only, training pairs never do. */
    int in_pool = 1;
    for (int k = 0; k < 50; k++)
        for (int p = 0; p < c->ntrain; p++)
            in_pool &= c->valid.a[k] != c->train_pool[p] && c->valid.b[k] != c->train_pool[p];
    CHECK(in_pool, "a validation pair uses a training sample");

    enum { B = 8 };
    size_t per = 200 * 700;
    float *x = malloc(B * per * sizeof *x);
    float tg[B], tg2[B];
    elm__rng r;
    elm__rng_seed(&r, 5);
    CHECK_OK(t->train_batch(t, &r, B, x, tg));
    CHECK_OK(t->train_batch(t, &r, B, x, tg2)); /* the next batch: fresh pairs */
    int ok = 1;
    for (int b = 0; b < B; b++)
        ok &= tg[b] >= 0 && tg[b] <= 18 && tg[b] == floorf(tg[b]);
    CHECK(ok, "adding targets outside 0..18");
    CHECK(memcmp(tg, tg2, sizeof tg) != 0, "two batches with the same labels");
    free(x);

    elm_config cfg;
    elm_config_default(&cfg, 700, 19, 4);
    CHECK_OK(elm_config_resolve(&cfg));
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &cfg, ELM_F32, 3));
    if (m) {
        cJSON *j = cJSON_CreateObject();
        CHECK_OK(t->evaluate(t, m, "valid", j));
        cJSON *ns = cJSON_GetObjectItem(j, "num_samples"),
              *conf = cJSON_GetObjectItem(j, "confusion");
        CHECK(ns && ns->valuedouble == 50 && conf && cJSON_GetArraySize(conf) == 19,
              "adding valid metrics");
        double total = 0;
        for (int a = 0; conf && a < 19; a++)
            for (int b = 0; b < 19; b++)
                total += cJSON_GetArrayItem(cJSON_GetArrayItem(conf, a), b)->valuedouble;
        CHECK(total == 50, "confusion sums to %g", total);
        cJSON_Delete(j);
    }
    elm_model_free(m);
    t->free(t);
}

static void test_errors(void) {
    elm_task *t = NULL;
    elm_task_opts o = opts();
    o.seq_len = 50;
    CHECK(elm__task_shd_create(&t, &o, 0) == ELM_ERR_CONFIG && !t, "seq_len 50 accepted");
    o = opts();
    o.data = "/nonexistent/shd";
    CHECK(elm__task_shd_create(&t, &o, 0) == ELM_ERR_IO && strstr(elm_last_error(), "/nonexistent"),
          "missing folder: %s", elm_last_error());
    /* A folder with only the .gz files: the message says to gunzip. */
    char dir[] = "/tmp/elm_task_shd_gz_XXXXXX", p[4096];
    if (mkdtemp(dir)) {
        snprintf(p, sizeof p, "%s/shd_train.h5.gz", dir);
        FILE *f = fopen(p, "wb");
        if (f)
            fclose(f);
        o.data = dir;
        CHECK(elm__task_shd_create(&t, &o, 1) == ELM_ERR_IO && strstr(elm_last_error(), "gunzip"),
              "gz hint: %s", elm_last_error());
        unlink(p);
        rmdir(dir);
    }
    o = opts();
    o.input_dropout = 1.0;
    CHECK(elm__task_shd_create(&t, &o, 0) == ELM_ERR_CONFIG, "dropout 1 accepted");
}

/* The spike-list batches training uses are the dense batches' nonzeros, with the same labels,
 * dropout and random draws (so the rng is left in the same state), for SHD and SHD-Adding. */
static void test_sparse_batches(void) {
    for (int adding = 0; adding < 2; adding++) {
        elm_task *t = NULL;
        elm_task_opts o = opts();
        o.input_dropout = 0.5;
        CHECK_OK(elm__task_shd_create(&t, &o, adding));
        if (!t)
            continue;
        CHECK(t->train_batch_sparse != NULL, "no sparse batches (adding %d)", adding);
        enum { B = 5 };
        const int T = t->seq_len, I = t->num_input;
        const size_t per = (size_t)T * (size_t)I;
        float *x = malloc(B * per * sizeof *x), *xs = calloc(B * per, sizeof *xs);
        float tg[B], tgs[B];
        int same = 1;
        for (int it = 0; it < 6; it++) {
            elm__rng r1, r2;
            elm__rng_seed(&r1, 40 + (uint64_t)it);
            elm__rng_seed(&r2, 40 + (uint64_t)it);
            elm_sparse_input sp;
            CHECK_OK(t->train_batch(t, &r1, B, x, tg));
            CHECK_OK(t->train_batch_sparse(t, &r2, B, &sp, tgs));
            memset(xs, 0, B * per * sizeof *xs);
            int sorted = 1;
            for (size_t row = 0; row < (size_t)B * (size_t)T; row++)
                for (int64_t k = sp.ptr[row]; k < sp.ptr[row + 1]; k++) {
                    sorted &= k == sp.ptr[row] || sp.idx[k] > sp.idx[k - 1];
                    xs[row * (size_t)I + (size_t)sp.idx[k]] = ((const float *)sp.val)[k];
                }
            same &= sorted && !memcmp(x, xs, B * per * sizeof *x) &&
                    !memcmp(tg, tgs, sizeof tg) && elm__rng_next(&r1) == elm__rng_next(&r2);
        }
        CHECK(same, "sparse and dense training batches differ (adding %d)", adding);
        free(x);
        free(xs);
        t->free(t);
    }
}

/*
 * bin_ms: the task bins every file at the width it is given. The lists of a batch at 20 ms are
 * the fixture's spikes binned at 20 ms by the reader itself (elm_shd_fill of a file loaded with
 * bin_ms 20), one digit per ceil(1000 / 20) = 50 steps, and delta_t follows; 0 keeps 10 ms;
 * widths outside [1, 1000] ms are refused with a message naming them.
 */
static void test_bin_ms(void) {
    elm_shd_opts so;
    elm_shd_opts_default(&so);
    so.bin_ms = 20;
    elm_shd *d20 = NULL;
    CHECK_OK(elm_shd_load(&d20, fixture, &so));
    for (int adding = 0; adding < 2 && d20; adding++) {
        elm_task *t = NULL;
        elm_task_opts o = opts();
        o.bin_ms = 20;
        CHECK_OK(elm__task_shd_create(&t, &o, adding));
        if (!t)
            continue;
        shd_ctx *c = t->ctx;
        CHECK(t->seq_len == 50 * (adding + 1) && t->delta_t == 20 && c->train->num_bins == 50 &&
                  c->test->num_bins == 50,
              "bin 20 ms: seq_len %d, delta_t %g (adding %d)", t->seq_len, t->delta_t, adding);
        /* Each training sample, as dense frames, is one of the file's samples binned at 20 ms. */
        enum { B = 3 };
        const size_t per = (size_t)t->seq_len * 700, Td = 50 * 700;
        float *x = malloc(B * per * sizeof *x), *buf = malloc(Td * sizeof *buf);
        float tg[B];
        elm__rng r;
        elm__rng_seed(&r, 9);
        c->dropout = 0; /* dropout would zero spikes: compare the binning alone */
        CHECK_OK(t->train_batch(t, &r, B, x, tg));
        int ok = 1;
        for (int b = 0; b < B; b++)
            for (int half = 0; half <= adding; half++)
                ok &= which_sample(d20, x + b * per + (size_t)half * Td, buf) >= 0;
        CHECK(ok, "a 20 ms batch is not the reader's 20 ms frames (adding %d)", adding);
        CHECK(c->train->bin_ms == 20 && c->test->bin_ms == 20, "the task's files are binned at "
              "%g and %g ms", c->train->bin_ms, c->test->bin_ms);
        free(x);
        free(buf);
        t->free(t);
    }
    elm_shd_free(d20);
    /* 0: the released 10 ms. */
    elm_task *t = NULL;
    elm_task_opts o = opts();
    CHECK_OK(elm__task_shd_create(&t, &o, 1));
    CHECK(t && t->seq_len == 200 && t->delta_t == 10, "default binning");
    if (t)
        t->free(t);
    /* 1 ms: 1000 steps per digit, the finest accepted; 7 ms: ceil(1000 / 7) = 143 steps. */
    const double okw[2] = {1, 7};
    const int oksteps[2] = {1000, 143};
    for (int k = 0; k < 2; k++) {
        o.bin_ms = okw[k];
        t = NULL;
        CHECK_OK(elm__task_shd_create(&t, &o, 0));
        CHECK(t && t->seq_len == oksteps[k] && t->delta_t == okw[k], "bin %g ms: %d steps",
              okw[k], t ? t->seq_len : -1);
        if (t)
            t->free(t);
    }
    const double bad[4] = {0.5, -10, 1001, NAN};
    for (int k = 0; k < 4; k++) {
        o.bin_ms = bad[k];
        t = NULL;
        CHECK(elm__task_shd_create(&t, &o, k % 2) == ELM_ERR_CONFIG && !t, "bin %g ms accepted",
              bad[k]);
        CHECK(strstr(elm_last_error(), "bin_ms") && strstr(elm_last_error(), "[1, 1000]"),
              "message: %s", elm_last_error());
    }
    /* Tasks without bins refuse the knob rather than ignore it. */
    o.bin_ms = 20;
    const char *other[2] = {"neuronio", "pathfinder"};
    for (int k = 0; k < 2; k++) {
        t = NULL;
        CHECK(elm_task_create(&t, other[k], &o) == ELM_ERR_CONFIG && !t, "%s took bin_ms",
              other[k]);
        CHECK(strstr(elm_last_error(), "only shd and shd-adding") != NULL, "message: %s",
              elm_last_error());
    }
}

int main(void) {
    setup();
    test_bin_ms();
    test_sparse_batches();
    test_shd_task();
    test_adding_task();
    test_errors();
    teardown();
    return test_end();
}
