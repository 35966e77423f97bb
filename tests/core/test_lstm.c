/*
 * test_lstm.c - the LSTM baseline (elm__lstm.h): forward against a plain dense implementation of
 * PyTorch's nn.LSTM equations written here independently, a hand-computed one-unit case, BPTT
 * gradients against central finite differences in float64, float32 against float64, thread and
 * batch invariants, gradient accumulation and clipping, save/load round trips and bad files.
 */
#include "lstm.h"
#include "model_internal.h"
#include "test.h"
#include "tolerance.h"

#include <unistd.h>

/* float32 forward against float64 on the same parameters over T = 7..50 steps: sigmoid/tanh
 * outputs are O(1) and float32 rounds at 6e-8, accumulated over at most ~50 dot products of
 * length < 20 and 50 recurrent steps with contracting gates; 1e-5 of max|y| is ~100x that. */
#define TOL_LSTM_F32_REL_TO_MAX 1e-5
/* Dense reference vs the sparse-skipping kernel in float64: same maths, different summation
 * order only, so a few ulps of the largest term. */
#define TOL_LSTM_F64_REL_TO_MAX 1e-13

static double sigm(double a) {
    return 1 / (1 + exp(-a));
}

/* PyTorch's equations, dense and per sample, straight from the documentation of nn.LSTM. */
static void reference_forward(const double *P, int I, int H, int O, const double *x, double *y,
                              int B, int T) {
    const double *Wih = P, *Whh = Wih + 4 * H * I, *bih = Whh + 4 * H * H, *bhh = bih + 4 * H;
    const double *Wr = bhh + 4 * H, *br = Wr + O * H;
    double h[64], c[64], a[256];
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < H; j++)
            h[j] = c[j] = 0;
        for (int t = 0; t < T; t++) {
            const double *xt = x + ((size_t)b * T + t) * I;
            for (int k = 0; k < 4 * H; k++) {
                double s = bih[k] + bhh[k];
                for (int i = 0; i < I; i++)
                    s += Wih[k * I + i] * xt[i];
                for (int j = 0; j < H; j++)
                    s += Whh[k * H + j] * h[j];
                a[k] = s;
            }
            for (int j = 0; j < H; j++) {
                double ig = sigm(a[j]), fg = sigm(a[H + j]), gg = tanh(a[2 * H + j]);
                double og = sigm(a[3 * H + j]);
                c[j] = fg * c[j] + ig * gg;
                h[j] = og * tanh(c[j]);
            }
            double *yt = y + ((size_t)b * T + t) * O;
            for (int o = 0; o < O; o++) {
                double s = br[o];
                for (int j = 0; j < H; j++)
                    s += Wr[o * H + j] * h[j];
                yt[o] = s;
            }
        }
    }
}

/* Inputs like spikes: about half the entries zero, the rest O(1) of both signs. */
static void fill_input(double *x, size_t n, uint64_t seed) {
    elm__rng r;
    elm__rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = elm__rng_uniform(&r) < 0.5 ? 0 : 2 * elm__rng_uniform(&r) - 1;
}

static double loss_dot(const double *y, const double *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += y[i] * g[i];
    return s;
}

static void test_sizes_and_names(void) {
    elm__lstm *m = NULL;
    CHECK_OK(elm__lstm_create(&m, 5, 4, 3, ELM_F32, 1));
    if (!m)
        return;
    /* 4H(I + H) + 8H + O(H + 1) */
    CHECK(elm__lstm_num_params(m) == (size_t)(16 * 9 + 32 + 3 * 5), "num_params %zu",
          elm__lstm_num_params(m));
    static const char *names[] = {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                                  "lstm.bias_hh_l0",   "readout.weight",    "readout.bias"};
    size_t total = 0;
    for (int i = 0; i < elm__lstm_num_tensors(m); i++) {
        elm_tensor t;
        CHECK_OK(elm__lstm_tensor(m, i, &t));
        CHECK(!strcmp(t.name, names[i]), "tensor %d is %s", i, t.name);
        CHECK((char *)t.data == (char *)elm__lstm_params(m) + total * sizeof(float),
              "tensor %s is not at its layout offset", t.name);
        total += t.numel;
    }
    CHECK(total == elm__lstm_num_params(m), "tensors cover %zu of %zu", total,
          elm__lstm_num_params(m));
    /* PyTorch's init: every value within 1/sqrt(H) = 0.5, and not all equal. */
    const float *p = elm__lstm_params(m);
    int inside = 1;
    for (size_t i = 0; i < total; i++)
        inside &= p[i] >= -0.5f && p[i] <= 0.5f;
    CHECK(inside && p[0] != p[1], "initial values outside U(-0.5, 0.5)");
    elm_tensor t;
    CHECK(elm__lstm_tensor(m, 6, &t) == ELM_ERR_ARG, "tensor 6 accepted");
    elm__lstm_free(m);
    elm__lstm *bad = NULL;
    CHECK(elm__lstm_create(&bad, 0, 4, 3, ELM_F32, 1) == ELM_ERR_ARG && !bad, "num_input 0");
    elm__lstm_free(NULL);
}

/* One unit, one input, one output, two steps, by hand. */
static void test_hand_computed(void) {
    elm__lstm *m = NULL;
    CHECK_OK(elm__lstm_create(&m, 1, 1, 1, ELM_F64, 1));
    if (!m)
        return;
    /* W_ih (i f g o), W_hh, b_ih, b_hh, W_r, b_r */
    double P[] = {0.5, -0.25, 1.0,  0.75, 0.3, 0.2, -0.1, 0.4, 0.1,
                  0.0, 0.2,   -0.3, 0.0,  0.1, 0.0, 0.05, 2.0, -1.0};
    CHECK(elm__lstm_num_params(m) == sizeof P / sizeof P[0], "P size");
    memcpy(elm__lstm_params(m), P, sizeof P);
    double x[2] = {1.0, -2.0}, y[2];
    CHECK_OK(elm__lstm_forward_f64(m, x, y, 1, 2));
    double h = 0, c = 0, want[2];
    for (int t = 0; t < 2; t++) {
        double ai = 0.5 * x[t] + 0.3 * h + 0.1 + 0.0;
        double af = -0.25 * x[t] + 0.2 * h + 0.0 + 0.1;
        double ag = 1.0 * x[t] - 0.1 * h + 0.2 + 0.0;
        double ao = 0.75 * x[t] + 0.4 * h - 0.3 + 0.05;
        c = sigm(af) * c + sigm(ai) * tanh(ag);
        h = sigm(ao) * tanh(c);
        want[t] = 2.0 * h - 1.0;
    }
    for (int t = 0; t < 2; t++)
        CHECK(fabs(y[t] - want[t]) <= 1e-15, "hand case t=%d: got %.17g want %.17g", t, y[t],
              want[t]);
    elm__lstm_free(m);
}

static void test_forward_reference(void) {
    const int I = 5, H = 4, O = 3, B = 3, T = 9;
    elm__lstm *m = NULL;
    CHECK_OK(elm__lstm_create(&m, I, H, O, ELM_F64, 7));
    if (!m)
        return;
    size_t nx = (size_t)B * T * I, ny = (size_t)B * T * O;
    double *x = malloc(sizeof(double) * nx), *y = malloc(sizeof(double) * ny);
    double *yr = malloc(sizeof(double) * ny), *y2 = malloc(sizeof(double) * ny);
    fill_input(x, nx, 3);
    CHECK_OK(elm__lstm_forward_f64(m, x, y, B, T));
    reference_forward(elm__lstm_params(m), I, H, O, x, yr, B, T);
    test_close("f64 forward vs dense reference", y, yr, ny, 0, TOL_LSTM_F64_REL_TO_MAX, 1, NULL);
    /* forward_train gives the same outputs as forward. */
    CHECK_OK(elm__lstm_forward_train(m, x, y2, B, T));
    CHECK(!memcmp(y, y2, sizeof(double) * ny), "forward_train differs from forward");

    /* float32: the same parameters converted. */
    elm__lstm *m32 = NULL;
    CHECK_OK(elm__lstm_create(&m32, I, H, O, ELM_F32, 1));
    float *p32 = elm__lstm_params(m32);
    const double *p64 = elm__lstm_params(m);
    for (size_t i = 0; i < elm__lstm_num_params(m); i++)
        p32[i] = (float)p64[i];
    float *x32 = malloc(sizeof(float) * nx), *y32 = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < nx; i++)
        x32[i] = (float)x[i];
    CHECK_OK(elm__lstm_forward(m32, x32, y32, B, T));
    for (size_t i = 0; i < ny; i++)
        y2[i] = y32[i];
    test_close("f32 forward vs f64", y2, yr, ny, 0, TOL_LSTM_F32_REL_TO_MAX, 1, NULL);
    /* Wrong dtype for the call, bad sizes. */
    CHECK(elm__lstm_forward(m, x32, y32, B, T) == ELM_ERR_ARG, "f32 call on an f64 model");
    CHECK(elm__lstm_forward_f64(m32, x, y, B, T) == ELM_ERR_ARG, "f64 call on an f32 model");
    CHECK(elm__lstm_forward_f64(m, x, y, 0, T) == ELM_ERR_ARG, "B = 0 accepted");
    elm__lstm_free(m32);
    elm__lstm_free(m);
    free(x);
    free(y);
    free(yr);
    free(y2);
    free(x32);
    free(y32);
}

/* Every coordinate of dL/dparam for L = sum(y * G) against central differences, h = 1e-6. */
static void test_gradcheck(void) {
    const int I = 5, H = 4, O = 3, B = 2, T = 7;
    elm__lstm *m = NULL;
    CHECK_OK(elm__lstm_create(&m, I, H, O, ELM_F64, 11));
    if (!m)
        return;
    /* 2n + 1 tiny passes: OpenMP's fork/join would dominate on a busy machine. */
    elm__lstm_set_threads(m, 1);
    /* Larger weights than the init, so every gate works off its linear region. */
    double *P = elm__lstm_params(m);
    const size_t n = elm__lstm_num_params(m);
    for (size_t i = 0; i < n; i++)
        P[i] *= 3;
    size_t nx = (size_t)B * T * I, ny = (size_t)B * T * O;
    double *x = malloc(sizeof(double) * nx), *y = malloc(sizeof(double) * ny);
    double *G = malloc(sizeof(double) * ny);
    fill_input(x, nx, 5);
    fill_input(G, ny, 6);
    for (size_t i = 0; i < ny; i++)
        G[i] += 0.25; /* no zero weights in the loss */
    elm__lstm_zero_grad(m);
    CHECK_OK(elm__lstm_forward_train(m, x, y, B, T));
    CHECK_OK(elm__lstm_backward(m, G));
    const double *g = elm__lstm_grads(m);
    const double h = 1e-6;
    size_t bad = 0, worst_i = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double p0 = P[i];
        P[i] = p0 + h;
        elm__lstm_forward_f64(m, x, y, B, T);
        double lp = loss_dot(y, G, ny);
        P[i] = p0 - h;
        elm__lstm_forward_f64(m, x, y, B, T);
        double lm = loss_dot(y, G, ny);
        P[i] = p0;
        double fd = (lp - lm) / (2 * h);
        double err = fabs(g[i] - fd) / fmax(1, fmax(fabs(g[i]), fabs(fd)));
        if (err > TOL_FD)
            bad++;
        if (err > worst) {
            worst = err;
            worst_i = i;
        }
    }
    CHECK(bad == 0, "gradcheck: %zu of %zu coordinates off; worst [%zu] rel %.3g", bad, n, worst_i,
          worst);
    printf("gradcheck: %zu parameters, worst relative error %.3g at [%zu]\n", n, worst, worst_i);
    /* Every tensor got a nonzero gradient somewhere (the test can see each stage). */
    for (int k = 0; k < elm__lstm_num_tensors(m); k++) {
        elm_tensor t;
        elm__lstm_tensor(m, k, &t);
        double s = 0;
        for (size_t i = 0; i < t.numel; i++)
            s += fabs(((const double *)t.grad)[i]);
        CHECK(s > 0, "tensor %s has an all-zero gradient", t.name);
    }
    /* Backward again without forward_train is an error, not a stale result. */
    CHECK(elm__lstm_backward(m, G) == ELM_ERR_ARG, "second backward accepted");
    elm__lstm_free(m);
    free(x);
    free(y);
    free(G);
}

/* Threads, batch composition, accumulation and clipping. */
static void test_invariants(void) {
    const int I = 6, H = 5, O = 2, B = 4, T = 11;
    elm__lstm *m = NULL;
    CHECK_OK(elm__lstm_create(&m, I, H, O, ELM_F32, 3));
    if (!m)
        return;
    const size_t n = elm__lstm_num_params(m);
    size_t nx = (size_t)B * T * I, ny = (size_t)B * T * O;
    double *xd = malloc(sizeof(double) * nx), *gd = malloc(sizeof(double) * ny);
    fill_input(xd, nx, 8);
    fill_input(gd, ny, 9);
    float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
    float *y1 = malloc(sizeof(float) * ny), *dy = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)xd[i];
    for (size_t i = 0; i < ny; i++)
        dy[i] = (float)gd[i];
    float *g1 = malloc(sizeof(float) * n), *g2 = malloc(sizeof(float) * n);

    elm__lstm_set_threads(m, 1);
    elm__lstm_zero_grad(m);
    CHECK_OK(elm__lstm_forward_train(m, x, y1, B, T));
    CHECK_OK(elm__lstm_backward(m, dy));
    memcpy(g1, elm__lstm_grads(m), sizeof(float) * n);
    elm__lstm_set_threads(m, 2);
    elm__lstm_zero_grad(m);
    CHECK_OK(elm__lstm_forward_train(m, x, y, B, T));
    CHECK_OK(elm__lstm_backward(m, dy));
    CHECK(!memcmp(y, y1, sizeof(float) * ny), "outputs differ between 1 and 2 threads");
    CHECK(!memcmp(g1, elm__lstm_grads(m), sizeof(float) * n),
          "gradients differ between 1 and 2 threads");

    /* Gradients accumulate: a second forward/backward doubles them. */
    CHECK_OK(elm__lstm_forward_train(m, x, y, B, T));
    CHECK_OK(elm__lstm_backward(m, dy));
    const float *g = elm__lstm_grads(m);
    int doubled = 1;
    for (size_t i = 0; i < n; i++)
        doubled &= fabsf(g[i] - 2 * g1[i]) <= 1e-6f * (1 + fabsf(g1[i]));
    CHECK(doubled, "gradients did not accumulate");

    /* A batch of two equal samples: each output equals the batch-of-one output, and the gradient
     * is twice the single sample's (summed over the batch). */
    float *x2 = malloc(sizeof(float) * 2 * T * I), *y2 = malloc(sizeof(float) * 2 * T * O);
    float *dy2 = malloc(sizeof(float) * 2 * T * O);
    memcpy(x2, x, sizeof(float) * T * I);
    memcpy(x2 + T * I, x, sizeof(float) * T * I);
    memcpy(dy2, dy, sizeof(float) * T * O);
    memcpy(dy2 + T * O, dy, sizeof(float) * T * O);
    elm__lstm_zero_grad(m);
    CHECK_OK(elm__lstm_forward_train(m, x, y, 1, T));
    CHECK_OK(elm__lstm_backward(m, dy));
    memcpy(g2, elm__lstm_grads(m), sizeof(float) * n);
    elm__lstm_zero_grad(m);
    CHECK_OK(elm__lstm_forward_train(m, x2, y2, 2, T));
    CHECK_OK(elm__lstm_backward(m, dy2));
    CHECK(!memcmp(y2, y, sizeof(float) * T * O) && !memcmp(y2 + T * O, y, sizeof(float) * T * O),
          "a batch of two equal samples differs from a batch of one");
    int twice = 1;
    for (size_t i = 0; i < n; i++)
        twice &= g[i] == 2 * g2[i]; /* x + x == 2x exactly in binary floating point */
    CHECK(twice, "batch-of-two gradient is not twice the single one");

    /* Clipping: norm reported, then scaled to max_norm. */
    double norm = elm__lstm_clip_grad_norm(m, 0);
    CHECK(norm > 0, "gradient norm %g", norm);
    elm__lstm_clip_grad_norm(m, norm / 4);
    double after = elm__lstm_clip_grad_norm(m, 0);
    CHECK(fabs(after - norm / 4) <= 1e-5 * norm, "clipped norm %g, want %g", after, norm / 4);
    elm__lstm_zero_grad(m);
    CHECK(elm__lstm_clip_grad_norm(m, 0) == 0, "zero_grad left gradients");
    elm__lstm_free(m);
    free(xd);
    free(gd);
    free(x);
    free(y);
    free(y1);
    free(dy);
    free(g1);
    free(g2);
    free(x2);
    free(y2);
    free(dy2);
}

/* Loads an LSTM model file through elm_model_load; the tensors as one block. */
static elm_status load_lstm(elm_model **m, const char *path, elm_dtype dtype) {
    elm_status st = elm_model_load(m, path, dtype);
    if (!st && elm_model_config(*m)->model_type != ELM_MODEL_LSTM) {
        elm_model_free(*m);
        *m = NULL;
        return elm__fail(ELM_ERR_FORMAT, "%s: loaded as an ELM, not an LSTM", path);
    }
    return st;
}

static const void *params_of(const elm_model *m) {
    elm_tensor t;
    elm_model_tensor(m, 0, &t);
    return t.data; /* tensor 0 opens the block */
}

static void test_files(void) {
    char dir[] = "/tmp/elm-test-lstm-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    char path[256], p2[256];
    snprintf(path, sizeof path, "%s/lstm.safetensors", dir);
    elm_config cfg;
    elm_config_default(&cfg, 7, 2, 1);
    cfg.model_type = ELM_MODEL_LSTM;
    cfg.lstm_hidden_size = 3;
    elm_model *m = NULL, *l = NULL;
    CHECK_OK(elm_model_create(&m, &cfg, ELM_F64, 5));
    if (!m)
        return;
    const size_t n = elm_model_num_params(m);
    CHECK_OK(elm_model_save(m, path));
    CHECK_OK(load_lstm(&l, path, ELM_F64));
    if (l) {
        const elm_config *c = elm_model_config(l);
        CHECK(c->num_input == 7 && c->lstm_hidden_size == 3 && c->num_output == 2 &&
                  elm_model_dtype(l) == ELM_F64 && elm_model_num_params(l) == n,
              "loaded sizes");
        CHECK(!memcmp(params_of(l), params_of(m), sizeof(double) * n),
              "f64 round trip not bitwise");
    }
    elm_model_free(l);
    l = NULL;
    /* Into float32, and a folder path meaning folder/model.safetensors (+ model_config.json). */
    CHECK_OK(elm_model_save(m, dir));
    snprintf(p2, sizeof p2, "%s/model.safetensors", dir);
    CHECK(access(p2, F_OK) == 0, "saving to a folder did not write model.safetensors");
    CHECK_OK(load_lstm(&l, dir, ELM_F32));
    if (l) {
        const float *a = params_of(l);
        const double *b = params_of(m);
        int same = 1;
        for (size_t i = 0; i < n; i++)
            same &= a[i] == (float)b[i];
        CHECK(same, "f64 -> f32 load is not the rounded values");
    }
    elm_model_free(l);
    l = NULL;

    /* A file with a missing tensor and one with inconsistent shapes. */
    double w[64] = {0};
    elm__st_out t[6] = {
        {.name = "lstm.weight_ih_l0", .dtype = ELM_DT_F64, .ndim = 2, .shape = {8, 3}, .data = w},
        {.name = "lstm.weight_hh_l0", .dtype = ELM_DT_F64, .ndim = 2, .shape = {8, 2}, .data = w},
        {.name = "lstm.bias_ih_l0", .dtype = ELM_DT_F64, .ndim = 1, .shape = {8}, .data = w},
        {.name = "lstm.bias_hh_l0", .dtype = ELM_DT_F64, .ndim = 1, .shape = {8}, .data = w},
        {.name = "readout.weight", .dtype = ELM_DT_F64, .ndim = 2, .shape = {1, 2}, .data = w},
        {.name = "readout.bias", .dtype = ELM_DT_F64, .ndim = 1, .shape = {1}, .data = w},
    };
    snprintf(p2, sizeof p2, "%s/ok.safetensors", dir);
    CHECK_OK(elm__st_write(p2, t, 6, NULL, 0));
    CHECK_OK(load_lstm(&l, p2, ELM_F32)); /* hand-made, no metadata: sizes from shapes */
    CHECK(l && elm_model_config(l)->lstm_hidden_size == 2 && elm_model_config(l)->num_input == 3,
          "sizes from shapes");
    elm_model_free(l);
    l = NULL;
    snprintf(p2, sizeof p2, "%s/missing.safetensors", dir);
    CHECK_OK(elm__st_write(p2, t, 5, NULL, 0));
    elm_status st = load_lstm(&l, p2, ELM_F32);
    CHECK(st == ELM_ERR_FORMAT && !l && strstr(elm_last_error(), "missing.safetensors") &&
              strstr(elm_last_error(), "readout.bias"),
          "missing tensor: %s", elm_last_error());
    t[1].shape[1] = 3; /* weight_hh must be [4H, H] */
    snprintf(p2, sizeof p2, "%s/shape.safetensors", dir);
    CHECK_OK(elm__st_write(p2, t, 6, NULL, 0));
    st = load_lstm(&l, p2, ELM_F32);
    CHECK(st == ELM_ERR_SHAPE && !l && strstr(elm_last_error(), "lstm.weight_hh_l0"),
          "inconsistent shape: %s", elm_last_error());
    t[1].shape[1] = 2;
    t[0].shape[0] = 7; /* not a multiple of 4 */
    CHECK_OK(elm__st_write(p2, t, 6, NULL, 0));
    st = load_lstm(&l, p2, ELM_F32);
    CHECK(st == ELM_ERR_SHAPE && !l, "4H not a multiple of 4: %s", elm_last_error());
    t[0].shape[0] = 8;
    w[3] = NAN;
    CHECK_OK(elm__st_write(p2, t, 6, NULL, 0));
    st = load_lstm(&l, p2, ELM_F32);
    CHECK(st == ELM_ERR_NUMERIC && !l, "NaN weight: %s", elm_last_error());
    /* The file is parsed once, and the type follows from its tensors: an ELM file without
     * lstm.weight_ih_l0 is not taken for an LSTM. */
    elm__st_file f;
    CHECK_OK(elm__st_read(&f, p2));
    CHECK(elm__lstm_ops.recognises(&f) == 1, "LSTM file not recognised");
    elm__st_free(&f);
    elm_config ec;
    elm_config_default(&ec, 3, 1, 2);
    elm_model *e = NULL;
    CHECK_OK(elm_model_create(&e, &ec, ELM_F32, 1));
    snprintf(p2, sizeof p2, "%s/elm.safetensors", dir);
    CHECK_OK(elm_model_save(e, p2));
    CHECK_OK(elm__st_read(&f, p2));
    CHECK(elm__lstm_ops.recognises(&f) == 0, "ELM file taken for an LSTM");
    elm__st_free(&f);
    elm_model_free(e);
    e = NULL;
    CHECK_OK(elm_model_load(&e, p2, ELM_F32));
    CHECK(e && elm_model_config(e)->model_type == ELM_MODEL_ELM, "ELM file loaded as another type");
    elm_model_free(e);
    elm_model_free(m);

    const char *files[] = {"lstm", "model", "ok", "missing", "shape", "elm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p2, sizeof p2, "%s/%s.safetensors", dir, files[i]);
        unlink(p2);
    }
    snprintf(p2, sizeof p2, "%s/model_config.json", dir);
    unlink(p2);
    rmdir(dir);
}

/* elm_model_forward_sparse / _train_sparse on an LSTM model (through the elm_model interface)
 * give the bits of the dense calls, in float32 and float64: the trainer hands spiking tasks'
 * batches over as spike lists whatever the model. */
static void test_sparse_input(void) {
    const int B = 3, T = 9, I = 6, O = 2;
    for (int f64 = 0; f64 < 2; f64++) {
        elm_config cfg;
        elm_config_default(&cfg, I, O, 1);
        cfg.model_type = ELM_MODEL_LSTM;
        cfg.lstm_hidden_size = 5;
        elm_model *m = NULL;
        CHECK_OK(elm_model_create(&m, &cfg, f64 ? ELM_F64 : ELM_F32, 4));
        if (!m)
            return;
        const size_t rs = f64 ? sizeof(double) : sizeof(float), n = (size_t)B * T * I;
        char *x = calloc(n, rs), *val = calloc(n, rs), *ya = calloc((size_t)B * T * O, rs),
             *yb = calloc((size_t)B * T * O, rs), *dy = calloc((size_t)B * T * O, rs);
        int64_t *ptr = calloc((size_t)B * T + 1, sizeof *ptr);
        int32_t *idx = calloc(n, sizeof *idx);
        int64_t nnz = 0;
        for (size_t r = 0; r < (size_t)B * T; r++) {
            for (int i = 0; i < I; i++)
                if ((r * 7 + (size_t)i * 3) % 5 == 0) { /* a fixed sparse pattern, signed */
                    double v = i % 2 ? -1.0 : 0.5 * (double)(1 + i);
                    if (f64) {
                        ((double *)x)[r * (size_t)I + (size_t)i] = v;
                        ((double *)val)[nnz] = v;
                    } else {
                        ((float *)x)[r * (size_t)I + (size_t)i] = (float)v;
                        ((float *)val)[nnz] = (float)v;
                    }
                    idx[nnz++] = i;
                }
            ptr[r + 1] = nnz;
        }
        for (size_t k = 0; k < (size_t)B * T * O; k++) {
            if (f64)
                ((double *)dy)[k] = 0.1 * (double)(k % 7) - 0.3;
            else
                ((float *)dy)[k] = 0.1f * (float)(k % 7) - 0.3f;
        }
        elm_sparse_input sp = {ptr, idx, val};
        CHECK_OK(f64 ? elm_model_forward_f64(m, (double *)x, (double *)ya, B, T)
                     : elm_model_forward(m, (float *)x, (float *)ya, B, T));
        CHECK_OK(elm_model_forward_sparse(m, &sp, yb, B, T));
        CHECK(!memcmp(ya, yb, (size_t)B * T * O * rs), "LSTM sparse forward differs (f64 %d)",
              f64);
        size_t ng = elm_model_num_params(m);
        elm_tensor t0;
        elm_model_tensor(m, 0, &t0);
        char *g1 = malloc(ng * rs);
        elm_model_zero_grad(m);
        CHECK_OK(elm_model_forward_train(m, x, ya, B, T));
        CHECK_OK(elm_model_backward(m, dy));
        memcpy(g1, t0.grad, ng * rs); /* gradients are one block, tensor 0 first */
        elm_model_zero_grad(m);
        CHECK_OK(elm_model_forward_train_sparse(m, &sp, yb, B, T));
        CHECK_OK(elm_model_backward(m, dy));
        CHECK(!memcmp(ya, yb, (size_t)B * T * O * rs) && !memcmp(g1, t0.grad, ng * rs),
              "LSTM sparse training forward/gradients differ (f64 %d)", f64);
        free(g1);
        free(x);
        free(val);
        free(ya);
        free(yb);
        free(dy);
        free(ptr);
        free(idx);
        elm_model_free(m);
    }
}

/*
 * The spike-list path at SHD-like sizes (I = 300 inputs, about 5 % nonzero, counts 1-3 of both
 * signs, an empty step, hidden 13 so that the 52 gates and 7 outputs leave vector tails), lists
 * that also carry explicit zero values (as input dropout leaves them) and lists without values
 * (ones): forward, training forward and gradients equal the dense path's bit for bit. Tolerance
 * 0 on purpose: both paths add the same nonzero terms in the same order (zeros are skipped by
 * both), so any difference is a bug. The float64 outputs also match the plain dense reference
 * above to TOL_LSTM_F64_REL_TO_MAX, and the threads (1 or 3) change no bit.
 */
static void test_sparse_bitwise(void) {
    enum { B = 4, T = 25, I = 300, O = 7, H = 13 };
    const size_t rows = (size_t)B * T, n = rows * I, ny = rows * O;
    for (int f64 = 0; f64 < 2; f64++)
        for (int ones = 0; ones < 2; ones++) {
            elm_config cfg;
            elm_config_default(&cfg, I, O, 1);
            cfg.model_type = ELM_MODEL_LSTM;
            cfg.lstm_hidden_size = H;
            elm_model *m = NULL;
            CHECK_OK(elm_model_create(&m, &cfg, f64 ? ELM_F64 : ELM_F32, 21));
            if (!m)
                return;
            const size_t rs = f64 ? sizeof(double) : sizeof(float);
            double *xd = calloc(n, sizeof *xd), *yref = calloc(ny, sizeof *yref);
            char *x = calloc(n, rs), *val = calloc(n, rs), *dy = calloc(ny, rs);
            char *ya = calloc(ny, rs), *yb = calloc(ny, rs);
            int64_t *ptr = calloc(rows + 1, sizeof *ptr);
            int32_t *idx = calloc(n, sizeof *idx);
            elm__rng r;
            elm__rng_seed(&r, 77 + (uint64_t)ones);
            int64_t nnz = 0, zeros_listed = 0;
            for (size_t row = 0; row < rows; row++) {
                for (int i = 0; i < I && row != 30; i++) { /* row 30: an empty step */
                    double u = elm__rng_uniform(&r), v = 0;
                    if (u < 0.05)
                        v = ones ? 1 : (double)(1 + elm__rng_below(&r, 3)) * (i % 3 ? 1 : -2);
                    int list = v != 0 || (!ones && u > 0.99); /* ~1 %: a listed zero */
                    xd[row * I + (size_t)i] = v;
                    if (f64)
                        ((double *)x)[row * I + (size_t)i] = v;
                    else
                        ((float *)x)[row * I + (size_t)i] = (float)v;
                    if (!list)
                        continue;
                    zeros_listed += v == 0;
                    if (f64)
                        ((double *)val)[nnz] = v;
                    else
                        ((float *)val)[nnz] = (float)v;
                    idx[nnz++] = i;
                }
                ptr[row + 1] = nnz;
            }
            CHECK(ones || zeros_listed > 0, "no listed zeros to test");
            for (size_t k = 0; k < ny; k++) {
                double g = 0.2 * (double)(k % 11) - 1.0;
                if (f64)
                    ((double *)dy)[k] = g;
                else
                    ((float *)dy)[k] = (float)g;
            }
            elm_sparse_input sp = {ptr, idx, ones ? NULL : val};
            const char *what = f64 ? (ones ? "f64, ones" : "f64") : (ones ? "f32, ones" : "f32");
            /* Inference. */
            elm_model_set_threads(m, 1);
            CHECK_OK(f64 ? elm_model_forward_f64(m, (double *)x, (double *)ya, B, T)
                         : elm_model_forward(m, (float *)x, (float *)ya, B, T));
            CHECK_OK(elm_model_forward_sparse(m, &sp, yb, B, T));
            CHECK(!memcmp(ya, yb, ny * rs), "sparse inference differs from dense (%s)", what);
            elm_model_set_threads(m, 3);
            CHECK_OK(elm_model_forward_sparse(m, &sp, yb, B, T));
            CHECK(!memcmp(ya, yb, ny * rs), "3 threads change the sparse forward (%s)", what);
            if (f64) {
                elm_tensor t0;
                elm_model_tensor(m, 0, &t0);
                reference_forward(t0.data, I, H, O, xd, yref, B, T);
                test_close("sparse f64 forward vs dense reference", (double *)yb, yref, ny, 0,
                           TOL_LSTM_F64_REL_TO_MAX, 1, NULL);
            }
            /* Training forward and gradients (accumulated onto nonzero ones: both add). */
            size_t ng = elm_model_num_params(m);
            elm_tensor t0;
            elm_model_tensor(m, 0, &t0);
            char *g1 = malloc(ng * rs), *g2 = malloc(ng * rs);
            elm_model_set_threads(m, 1);
            elm_model_zero_grad(m);
            CHECK_OK(elm_model_forward_train(m, x, ya, B, T));
            CHECK_OK(elm_model_backward(m, dy));
            CHECK_OK(elm_model_forward_train(m, x, ya, B, T));
            CHECK_OK(elm_model_backward(m, dy));
            memcpy(g1, t0.grad, ng * rs);
            elm_model_set_threads(m, 3);
            elm_model_zero_grad(m);
            CHECK_OK(elm_model_forward_train_sparse(m, &sp, yb, B, T));
            CHECK_OK(elm_model_backward(m, dy));
            CHECK_OK(elm_model_forward_train_sparse(m, &sp, yb, B, T));
            /* An inference pass between forward_train and backward leaves the records alone. */
            char *yc = calloc(ny, rs);
            CHECK_OK(f64 ? elm_model_forward_f64(m, (double *)x, (double *)yc, 1, T)
                         : elm_model_forward(m, (float *)x, (float *)yc, 1, T));
            free(yc);
            CHECK_OK(elm_model_backward(m, dy));
            memcpy(g2, t0.grad, ng * rs);
            CHECK(!memcmp(ya, yb, ny * rs), "sparse training forward differs (%s)", what);
            CHECK(!memcmp(g1, g2, ng * rs), "sparse gradients differ from dense (%s)", what);
            /* And the gradients are not trivially equal: the input weights got some. */
            int some = 0;
            for (size_t k = 0; k < (size_t)4 * H * I; k++)
                some |= f64 ? ((double *)g2)[k] != 0 : ((float *)g2)[k] != 0;
            CHECK(some, "no input-weight gradient (%s)", what);
            free(g1);
            free(g2);
            free(xd);
            free(yref);
            free(x);
            free(val);
            free(dy);
            free(ya);
            free(yb);
            free(ptr);
            free(idx);
            elm_model_free(m);
        }
}

int main(void) {
    test_sparse_input();
    test_sparse_bitwise();
    test_sizes_and_names();
    test_hand_computed();
    test_forward_reference();
    test_gradcheck();
    test_invariants();
    test_files();
    return test_end();
}
