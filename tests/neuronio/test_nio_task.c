/*
 * test_nio_task.c - the NeuronIO training task (src/neuronio/task.c) through the public task API
 * (elm_task_* in elm_train.h), on small synthetic caches:
 *   - geometry, and the last file held out for validation when no validation data is given;
 *   - a batch is a set of real windows (inputs signed, targets spike bin and scaled soma) of
 *     training simulations only, starting at or after 500 ms, and is the same for the same
 *     (seed, step) whatever was drawn before;
 *   - the loss's dL/dy against central finite differences;
 *   - evaluation's metrics; the test split only on separate test data (none without it: the
 *     validation data is never evaluated as "test"), and test data sharing a file with the
 *     training or validation data refused;
 *   - errors that name the data and no command-line flag.
 */
#include "elm_train.h"
#include "neuronio/nio_data.h"
#include "nio_synth.h"
#include "test.h"

#include <unistd.h>

enum { NIN = 64, TSIM = 1200, WIN = 40, B = 4 };

static char root[] = "/tmp/elm_test_nio_task_XXXXXX";
static char data[4096], narrow[4096], shortd[4096], testd[4096];

static elm_task_opts opts(const char *d) {
    elm_task_opts o = {.data = d, .seed = 3, .threads = 1, .seq_len = WIN, .batch_size = B,
                       .eval_samples = 2, .for_training = 1};
    return o;
}

/* The sparse batch's sample b as a dense (WIN, NIN) window. */
static void densify(const elm_sparse_input *xs, int b, float *x) {
    memset(x, 0, sizeof(float) * WIN * NIN);
    const float *val = xs->val;
    for (int t = 0; t < WIN; t++) {
        int64_t r = (int64_t)b * WIN + t;
        for (int64_t j = xs->ptr[r]; j < xs->ptr[r + 1]; j++)
            x[t * NIN + xs->idx[j]] = val ? val[j] : 1.0f;
    }
}

/* Which training window (sim * 10000 + t0) sample b is, or -1. */
static int find_window(const elm_nio_data *d, int n_train, const float *x, const float *tg) {
    static float wx[WIN * NIN], wt[WIN * 2];
    for (int k = 0; k < n_train; k++) {
        elm_nio_view v;
        if (elm_nio_data_sim(d, k, &v))
            return -1;
        for (int t0 = 0; t0 + WIN <= v.T; t0++) {
            elm_nio_fill_window(&v, t0, WIN, wx, wt, 1);
            if (!memcmp(wx, x, sizeof wx) && !memcmp(wt, tg, sizeof wt))
                return k * 10000 + t0;
        }
    }
    return -1;
}

static void test_batches(void) {
    elm_task *t = NULL;
    elm_task_opts o = opts(data);
    CHECK_OK(elm_task_create(&t, "neuronio", &o));
    if (!t)
        return;
    elm_task_info in;
    elm_task_get_info(t, &in);
    CHECK(!strcmp(in.name, "neuronio") && in.num_input == NIN && in.num_output == 2 &&
              in.seq_len == WIN && in.target_len == 2 * WIN && in.sparse &&
              in.batches_per_epoch == 10000 && !strcmp(in.select_metric, "soma_RMSE") &&
              !in.select_larger_is_better && in.delta_t == 1.0,
          "geometry");
    elm_nio_data *d = NULL;
    CHECK_OK(elm_nio_data_open_list(&d, data));
    /* File a (3 simulations) is trained on, file b held out. */
    float tg[B * 2 * WIN], tg2[B * 2 * WIN], x[WIN * NIN];
    elm_sparse_input xs;
    int found = 0, late = 0;
    for (int step = 0; step < 3; step++) {
        CHECK_OK(elm_task_batch(t, 11, step, B, NULL, &xs, tg));
        for (int b = 0; b < B; b++) {
            densify(&xs, b, x);
            int w = d ? find_window(d, 3, x, tg + (size_t)b * 2 * WIN) : -1;
            found += w >= 0;
            late += w >= 0 && w % 10000 >= 500;
        }
    }
    CHECK(found == 3 * B, "%d of %d samples are windows of a training simulation", found, 3 * B);
    CHECK(late == found, "%d windows start before 500 ms", found - late);
    /* Batch 1 again, after other draws: the same lists and targets. */
    CHECK_OK(elm_task_batch(t, 11, 1, B, NULL, &xs, tg));
    int64_t nnz = xs.ptr[B * WIN];
    int32_t *idx = malloc(sizeof *idx * (size_t)(nnz ? nnz : 1));
    memcpy(idx, xs.idx, sizeof *idx * (size_t)nnz);
    CHECK_OK(elm_task_batch(t, 11, 7, B, NULL, &xs, tg2));
    CHECK(memcmp(tg, tg2, sizeof tg) != 0, "batches 1 and 7 are the same");
    CHECK_OK(elm_task_batch(t, 11, 1, B, NULL, &xs, tg2));
    CHECK(!memcmp(tg, tg2, sizeof tg) && xs.ptr[B * WIN] == nnz &&
              !memcmp(idx, xs.idx, sizeof *idx * (size_t)nnz),
          "batch 1 drawn twice differs");
    free(idx);
    /* A dense-only call is refused: the task gives spike lists. */
    CHECK(elm_task_batch(t, 11, 1, B, x, NULL, tg) == ELM_ERR_ARG, "dense batch accepted");
    elm_nio_data_free(d);
    elm_task_free(t);
}

static void test_loss(void) {
    elm_task *t = NULL;
    elm_task_opts o = opts(data);
    CHECK_OK(elm_task_create(&t, "neuronio", &o));
    if (!t)
        return;
    enum { N = 2 * WIN * 2 };
    float y[N], tg[N], dy[N], scratch[N];
    elm__rng r;
    elm__rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        y[i] = (float)(elm__rng_uniform(&r) * 4 - 2);
        tg[i] = i % 2 ? (float)(elm__rng_uniform(&r) * 2) : (float)(elm__rng_uniform(&r) < 0.1);
    }
    double L = elm_task_loss(t, y, tg, dy, 2);
    CHECK(isfinite(L) && L > 0, "loss %g", L);
    /* Central differences in float32 inputs: h = 1e-2 keeps the rounding error of L (about
     * 1e-7 relative) well under the 1e-4 * |dy| + 1e-6 tolerance. */
    double worst = 0;
    for (int i = 0; i < N; i++) {
        float keep = y[i];
        const float h = 1e-2f;
        y[i] = keep + h;
        double lp = elm_task_loss(t, y, tg, scratch, 2);
        y[i] = keep - h;
        double lm = elm_task_loss(t, y, tg, scratch, 2);
        y[i] = keep;
        double fd = (lp - lm) / (2 * (double)h), err = fabs(fd - (double)dy[i]);
        if (err > 1e-4 * fabs(fd) + 1e-6 && err > worst)
            worst = err;
    }
    CHECK(worst == 0, "dL/dy differs from finite differences by %g", worst);
    elm_task_free(t);
}

static void test_evaluate(void) {
    elm_task *t = NULL;
    elm_task_opts o = opts(data);
    CHECK_OK(elm_task_create(&t, "neuronio", &o));
    elm_config c;
    elm_config_default(&c, NIN, 2, 3);
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F32, 1));
    char *js = NULL;
    if (t && m)
        CHECK_OK(elm_task_evaluate(t, m, "valid", &js));
    CHECK(js && strstr(js, "\"soma_RMSE\"") && strstr(js, "\"AUC\"") &&
              strstr(js, "\"num_simulations\":\t2"),
          "metrics: %s", js ? js : "none");
    free(js);
    /* A float64 model is evaluated through a float32 copy: the same metrics. */
    elm_model *m64 = NULL;
    char *js64 = NULL;
    js = NULL;
    CHECK_OK(elm_model_clone(&m64, m, ELM_F64));
    if (t && m64) {
        CHECK_OK(elm_task_evaluate(t, m, "valid", &js));
        CHECK_OK(elm_task_evaluate(t, m64, "valid", &js64));
        CHECK(js && js64 && !strcmp(js, js64), "float64 evaluation differs");
    }
    free(js);
    free(js64);
    /* No test data given: no test split, and "test" is an error, not the validation data. */
    elm_task_info ti;
    if (t)
        elm_task_get_info(t, &ti);
    CHECK(t && !ti.has_test, "a training task without test data says it has some");
    js = NULL;
    if (t && m)
        CHECK(elm_task_evaluate(t, m, "test", &js) == ELM_ERR_ARG && !js &&
                  strstr(elm_last_error(), "neuronio: no test data") &&
                  !strstr(elm_last_error(), "--"),
              "test without test data: %s", elm_last_error());
    elm_task_free(t);
    /* With test data: "test" is that data (1 simulation), "valid" still the held-out file. */
    t = NULL;
    o.test = testd;
    CHECK_OK(elm_task_create(&t, "neuronio", &o));
    if (t)
        elm_task_get_info(t, &ti);
    CHECK(t && ti.has_test, "a task with test data says it has none");
    js = NULL;
    if (t && m)
        CHECK_OK(elm_task_evaluate(t, m, "test", &js));
    CHECK(js && strstr(js, "\"num_simulations\":\t1"), "test metrics: %s", js ? js : "none");
    free(js);
    elm_task_free(t);
    /* Test data sharing a file with the training or the validation data is refused. */
    t = NULL;
    o.test = data;
    CHECK(elm_task_create(&t, "neuronio", &o) == ELM_ERR_ARG && !t &&
              strstr(elm_last_error(), "is both test and training data") &&
              !strstr(elm_last_error(), "--"),
          "test = training data: %s", elm_last_error());
    o.test = testd;
    o.valid = testd;
    CHECK(elm_task_create(&t, "neuronio", &o) == ELM_ERR_ARG && !t &&
              strstr(elm_last_error(), "is both test and validation data"),
          "test = validation data: %s", elm_last_error());
    elm_model_free(m);
    elm_model_free(m64);
}

static void test_errors(void) {
    elm_task *t = NULL;
    elm_task_opts o = opts(NULL);
    CHECK(elm_task_create(&t, "neuronio", &o) == ELM_ERR_ARG && !t &&
              strstr(elm_last_error(), "neuronio: no data given") &&
              !strstr(elm_last_error(), "--"),
          "no data: %s", elm_last_error());
    o = opts(data);
    o.valid = narrow;
    CHECK(elm_task_create(&t, "neuronio", &o) == ELM_ERR_SHAPE && !t &&
              strstr(elm_last_error(), "validation data has 32 inputs, the training data 64") &&
              !strstr(elm_last_error(), "--"),
          "narrow validation data: %s", elm_last_error());
    o = opts(shortd);
    CHECK(elm_task_create(&t, "neuronio", &o) == ELM_ERR_ARG && !t &&
              strstr(elm_last_error(), "no training simulation is longer than 540 ms"),
          "short simulations: %s", elm_last_error());
    CHECK(elm_task_create(&t, "neuronoi", &o) == ELM_ERR_ARG &&
              strstr(elm_last_error(), "did you mean 'neuronio'?"),
          "unknown task: %s", elm_last_error());
    /* Opened for evaluation only: no training batches. */
    o = opts(data);
    o.for_training = 0;
    CHECK_OK(elm_task_create(&t, "neuronio", &o));
    float tg[B * 2 * WIN];
    elm_sparse_input xs;
    if (t)
        CHECK(elm_task_batch(t, 1, 0, B, NULL, &xs, tg) == ELM_ERR_ARG &&
                  strstr(elm_last_error(), "not opened for training"),
              "batch of an evaluation task: %s", elm_last_error());
    elm_task_free(t);
}

int main(void) {
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(narrow, sizeof narrow, "%s/narrow", root);
    snprintf(shortd, sizeof shortd, "%s/short", root);
    snprintf(testd, sizeof testd, "%s/test", root);
    CHECK_OK(nio_synth_write(testd, "a", 1, TSIM, NIN, 5));
    CHECK_OK(nio_synth_write(data, "a", 3, TSIM, NIN, 1));
    CHECK_OK(nio_synth_write(data, "b", 2, TSIM, NIN, 2));
    CHECK_OK(nio_synth_write(narrow, "a", 1, TSIM, 32, 3));
    CHECK_OK(nio_synth_write(shortd, "a", 2, 540, NIN, 4));
    test_batches();
    test_loss();
    test_evaluate();
    test_errors();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return test_end();
}
