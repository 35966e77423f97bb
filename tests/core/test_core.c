/*
 * test_core.c - the core without reference files: finite-difference gradients in float64 for
 * every model variant, save/load round trips, batch invariants, seeding, configuration errors,
 * and the optimisers against their textbook update rules.
 */
#include "elm.h"
#include "model_internal.h"
#include "test.h"
#include "tolerance.h"

#include <unistd.h>

static void fill_uniform(double *v, size_t n, elm__rng *r, double lo, double hi) {
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * elm__rng_uniform(r);
}

static double loss_of(elm_model *m, const double *x, const double *g, int B, int T) {
    size_t ny = (size_t)B * (size_t)T * (size_t)m->O;
    double *y = malloc(sizeof(double) * ny), L = 0;
    elm_model_forward_f64(m, x, y, B, T);
    for (size_t i = 0; i < ny; i++)
        L += y[i] * g[i];
    free(y);
    return L;
}

/* Central differences on every coordinate of every trainable tensor. */
static void fd_check(const char *label, elm_config c, int general, int stride) {
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F64, 42));
    if (!m)
        return;
    elm__model_set_general_path(m, general);
    elm_model_set_checkpoint_stride(m, stride);
    elm__rng r;
    elm__rng_seed(&r, 9);
    /* Spread the weights and time constants so no coordinate is degenerate. */
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        double *d = t.data;
        if (!strcmp(t.name, "_proto_w_s"))
            for (size_t k = 0; k < t.numel; k++)
                d[k] = 0.5 + 0.4 * elm__rng_normal(&r);
        if (!strcmp(t.name, "tau_s") || !strcmp(t.name, "tau_b"))
            fill_uniform(d, t.numel, &r, 2, 10);
    }
    elm_model_refresh(m);
    const int B = 2, T = 7;
    size_t nx = (size_t)B * T * (size_t)m->I, ny = (size_t)B * T * (size_t)m->O;
    double *x = malloc(sizeof(double) * nx), *g = malloc(sizeof(double) * ny);
    double *y = malloc(sizeof(double) * ny);
    fill_uniform(x, nx, &r, 0, 1);
    for (size_t i = 0; i < nx; i += 3)
        x[i] = 0; /* some silent inputs, as in spike data */
    for (size_t i = 0; i < ny; i++)
        g[i] = elm__rng_normal(&r);
    elm_model_zero_grad(m);
    CHECK_OK(elm_model_forward_train(m, x, y, B, T));
    CHECK_OK(elm_model_backward(m, g));
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        if (!t.trainable)
            continue;
        double *p = t.data, *gr = t.grad;
        for (size_t k = 0; k < t.numel; k++) {
            double h = 1e-6, keep = p[k];
            /* relu kink: a proto weight within h of 0 has no two-sided derivative. */
            if (!strcmp(t.name, "_proto_w_s") && fabs(keep) < 1e-4)
                continue;
            p[k] = keep + h;
            elm_model_refresh(m);
            double lp = loss_of(m, x, g, B, T);
            p[k] = keep - h;
            elm_model_refresh(m);
            double lm = loss_of(m, x, g, B, T);
            p[k] = keep;
            elm_model_refresh(m);
            double fd = (lp - lm) / (2 * h);
            double err = fabs(fd - gr[k]) / fmax(1, fmax(fabs(gr[k]), fabs(fd)));
            worst = fmax(worst, err);
            CHECK(err <= TOL_FD, "%s: d/d %s[%zu]: backprop %.12g, finite difference %.12g", label,
                  t.name, k, gr[k], fd);
            checked++;
        }
    }
    printf("%-44s %4d coordinates, worst %.2g\n", label, checked, worst);
    free(x);
    free(g);
    free(y);
    elm_model_free(m);
}

static void test_fd(void) {
    elm_config c;
    elm_config_default(&c, 5, 2, 4);
    c.mlp_hidden_size = 6;
    fd_check("v1 plain relu", c, 0, 0);
    c.mlp_activation = ELM_ACT_SILU;
    c.learn_memory_tau = 1;
    c.memory_tau_max = 30;
    fd_check("v1 plain silu learn-tau", c, 0, 0);
    c.num_branch = 3;
    c.num_synapse_per_branch = 4;
    c.input_to_synapse_routing = ELM_ROUTE_NEURONIO;
    fd_check("v1 routed, per-synapse tau_s", c, 0, 0);
    fd_check("v1 routed, general path", c, 1, 0);
    fd_check("v1 routed, BPTT checkpoint stride 3", c, 0, 3);
    c.input_to_synapse_routing = ELM_ROUTE_RANDOM;
    c.mlp_num_layers = 2;
    c.delta_t = 0.5;
    c.lambda_value = 3;
    fd_check("v1 random routing, 2 hidden layers, dt 0.5", c, 0, 0);
    c.mlp_num_layers = 0;
    fd_check("v1 no hidden layer (linear MLP)", c, 0, 0);
    c.version = ELM_V2;
    c.mlp_num_layers = 1;
    fd_check("v2 random routing learn-tau", c, 0, 0);
    c.input_to_synapse_routing = ELM_ROUTE_NEURONIO;
    c.mlp_activation = ELM_ACT_RELU;
    fd_check("v2 neuronio routing", c, 0, 2);
}

static void test_roundtrip(void) {
    elm_config c;
    elm_config_default(&c, 12, 3, 5);
    c.num_branch = 4;
    c.num_synapse_per_branch = 4;
    c.input_to_synapse_routing = ELM_ROUTE_NEURONIO;
    c.mlp_activation = ELM_ACT_SILU;
    char dir[] = "/tmp/elm-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    for (int d = 0; d < 2; d++) {
        for (int v = 1; v <= 2; v++) {
            c.version = v == 1 ? ELM_V1 : ELM_V2;
            elm_dtype dt = d ? ELM_F64 : ELM_F32;
            elm_model *a = NULL, *b = NULL, *cdir = NULL;
            CHECK_OK(elm_model_create(&a, &c, dt, 5));
            char path[512], sub[512];
            snprintf(path, sizeof path, "%s/m.safetensors", dir);
            snprintf(sub, sizeof sub, "%s/run%d%d/", dir, d, v);
            CHECK_OK(elm_model_save(a, path));
            CHECK_OK(elm_model_load(&b, path, dt));
            CHECK_OK(elm_model_save(a, sub));
            CHECK_OK(elm_model_load(&cdir, sub, dt));
            if (!a || !b || !cdir)
                continue;
            size_t rs = dt == ELM_F64 ? 8 : 4;
            CHECK(!memcmp(a->params, b->params, a->n_total * rs) &&
                      !memcmp(a->params, cdir->params, a->n_total * rs),
                  "save/load is not bit-exact (dtype %d, v%d)", d, v);
            CHECK(!memcmp(a->route_idx, b->route_idx, sizeof(int32_t) * (size_t)a->S) &&
                      !memcmp(a->route_mask, b->route_mask, (size_t)a->S),
                  "routing not restored");
            CHECK(!memcmp(&a->cfg, &b->cfg, sizeof a->cfg), "configuration not restored");
            CHECK(elm_model_num_params(a) == elm_model_num_params(b), "parameter count");
            elm_model_free(a);
            elm_model_free(b);
            elm_model_free(cdir);
        }
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_invariants(void) {
    elm_config c;
    elm_config_default(&c, 6, 2, 3);
    elm_model *m = NULL, *m2 = NULL, *m3 = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F32, 11));
    CHECK_OK(elm_model_create(&m2, &c, ELM_F32, 11));
    CHECK_OK(elm_model_create(&m3, &c, ELM_F32, 12));
    CHECK(!memcmp(m->params, m2->params, m->n_total * 4), "same seed, different parameters");
    CHECK(memcmp(m->params, m3->params, m->n_total * 4), "different seeds, same parameters");
    /* A batch of two equal samples gives the single sample's outputs, bitwise. */
    const int T = 20;
    float x[2 * 20 * 6], y1[20 * 2], y2[2 * 20 * 2];
    elm__rng r;
    elm__rng_seed(&r, 3);
    for (int i = 0; i < T * 6; i++)
        x[i] = x[T * 6 + i] = (float)elm__rng_uniform(&r);
    CHECK_OK(elm_model_forward(m, x, y1, 1, T));
    CHECK_OK(elm_model_forward(m, x, y2, 2, T));
    CHECK(!memcmp(y1, y2, sizeof y1) && !memcmp(y1, y2 + T * 2, sizeof y1),
          "batch of two equal samples differs from one sample");
    /* Two threads give the one-thread outputs bitwise. */
    float y3[2 * 20 * 2];
    elm_model_set_threads(m, 2);
    CHECK_OK(elm_model_forward(m, x, y3, 2, T));
    CHECK(!memcmp(y2, y3, sizeof y2), "threads change the forward pass");
    /* Wrong dtype calls are refused, not misread. */
    double xd[6], yd[2];
    CHECK(elm_model_forward_f64(m, xd, yd, 1, 1) == ELM_ERR_ARG, "f64 call on an f32 model");
    /* elm.h's precision rule for every typed pair: NAME is float (ELM_F32), NAME_f64 double. */
    {
        elm_model *md = NULL;
        elm_state *s32 = NULL, *s64 = NULL;
        float xf[6] = {0}, yf[2];
        for (int i = 0; i < 6; i++)
            xd[i] = 0;
        CHECK_OK(elm_model_clone(&md, m, ELM_F64));
        CHECK(elm_model_dtype(md) == ELM_F64 && elm_model_dtype(m) == ELM_F32, "clone's dtype");
        CHECK(elm_model_forward(md, xf, yf, 1, 1) == ELM_ERR_ARG, "f32 call on an f64 model");
        CHECK_OK(elm_model_forward_f64(md, xd, yd, 1, 1));
        CHECK_OK(elm_state_create(&s32, m, 1));
        CHECK_OK(elm_state_create(&s64, md, 1));
        CHECK(elm_model_step_f64(m, s32, xd, yd) == ELM_ERR_ARG, "step_f64 on an f32 model");
        CHECK(elm_model_step(md, s64, xf, yf) == ELM_ERR_ARG, "step on an f64 model");
        CHECK_OK(elm_model_step(m, s32, xf, yf));
        CHECK_OK(elm_model_step_f64(md, s64, xd, yd));
        elm_state_free(s32);
        elm_state_free(s64);
        elm_model_free(md);
    }
    CHECK(elm_model_backward(m2, y1) == ELM_ERR_ARG, "backward without forward_train");
    CHECK(elm_model_num_params(m) == 6 + (9 * 6 + 6) + (6 * 3 + 3) + (3 * 2 + 2),
          "parameter count %zu", elm_model_num_params(m));
    elm_model_free(m);
    elm_model_free(m2);
    elm_model_free(m3);
}

/* The runtime version is the header's, and the string spells the three numbers. */
static void test_version(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", ELM_VERSION_MAJOR, ELM_VERSION_MINOR,
             ELM_VERSION_PATCH);
    CHECK(!strcmp(ELM_VERSION_STRING, want), "ELM_VERSION_STRING %s, macros say %s",
          ELM_VERSION_STRING, want);
    CHECK(elm_version() && !strcmp(elm_version(), ELM_VERSION_STRING), "elm_version() %s",
          elm_version() ? elm_version() : "NULL");
    CHECK(ELM_VERSION_NUMBER ==
              ELM_VERSION_MAJOR * 10000 + ELM_VERSION_MINOR * 100 + ELM_VERSION_PATCH,
          "ELM_VERSION_NUMBER %d", ELM_VERSION_NUMBER);
}

static void test_config(void) {
    elm_config c;
    elm_config_default(&c, 10, 2, 4);
    CHECK(elm_config_from_json(&c, "{\"num_memmory\": 3}", "x.json") == ELM_ERR_CONFIG &&
              strstr(elm_last_error(), "num_memmory") && strstr(elm_last_error(), "x.json"),
          "misspelt key not refused: %s", elm_last_error());
    CHECK(elm_config_from_json(&c, "{\"num_memory\": \"many\"}", "x.json") == ELM_ERR_CONFIG,
          "a string for a number");
    CHECK(elm_config_from_json(&c, "{\"num_memory\": 2.5}", "x.json") == ELM_ERR_CONFIG,
          "a fraction for an integer");
    CHECK(elm_config_from_json(&c, "[1,2]", "x.json") == ELM_ERR_CONFIG, "not an object");
    CHECK(elm_config_from_json(&c, "{", "x.json") == ELM_ERR_CONFIG, "bad JSON");
    CHECK(elm_config_from_json(&c, "{\"mlp_activation\": \"tanh\"}", "x") == ELM_ERR_CONFIG,
          "unknown activation");
    elm_config_default(&c, 10, 2, 4);
    c.num_branch = 3;
    c.num_synapse_per_branch = 3;
    CHECK(elm_config_resolve(&c) == ELM_ERR_CONFIG, "unrouted 9 synapses for 10 inputs");
    c.input_to_synapse_routing = ELM_ROUTE_NEURONIO;
    CHECK(elm_config_resolve(&c) == ELM_ERR_CONFIG, "neuronio stride 4 > 3 synapses");
    c.num_synapse_per_branch = 4;
    CHECK_OK(elm_config_resolve(&c));
    elm_config_default(&c, 10, 2, 4);
    c.memory_tau_max = 0.5;
    CHECK(elm_config_resolve(&c) == ELM_ERR_CONFIG, "tau_max below tau_min");
    c.version = ELM_V2;
    CHECK_OK(elm_config_resolve(&c));
    CHECK(c.memory_tau_max == c.memory_tau_min + 3e-6, "v2 lifts tau_max");
    /* JSON round trip. */
    elm_config_default(&c, 10, 2, 4);
    c.lambda_value = 2.5;
    c.mlp_activation = ELM_ACT_SILU;
    elm_config_resolve(&c);
    char *js = elm_config_to_json(&c);
    elm_config d;
    elm_config_default(&d, 0, 0, 0);
    CHECK_OK(elm_config_from_json(&d, js, "roundtrip"));
    CHECK(!memcmp(&c, &d, sizeof c), "config JSON round trip");
    free(js);
}

static void test_optim(void) {
    elm_config c;
    elm_config_default(&c, 2, 1, 1);
    c.mlp_num_layers = 0;
    for (int kind = 0; kind < 3; kind++) {
        elm_model *m = NULL;
        elm_optim *o = NULL;
        CHECK_OK(elm_model_create(&m, &c, ELM_F64, 1));
        elm_optim_config oc;
        elm_optim_config_default(&oc, (elm_optim_kind)kind, 0.1);
        oc.weight_decay = kind == ELM_OPT_ADAMW ? 0.01 : 0.0;
        CHECK_OK(elm_optim_create(&o, m, &oc));
        double *p = m->params, *g = m->grads;
        double p0 = p[0], mm = 0, vv = 0, pe = p0;
        for (int s = 1; s <= 3; s++) {
            double gv = 0.3 * s - 0.5;
            g[0] = gv;
            CHECK_OK(elm_optim_step(o, m, 0.1));
            /* The textbook rule, written out. */
            if (kind == ELM_OPT_ADAMW)
                pe *= 1 - 0.1 * 0.01;
            mm = 0.9 * mm + 0.1 * gv;
            if (kind == ELM_OPT_ADAMAX) {
                vv = fmax(0.999 * vv, fabs(gv) + 1e-8);
                pe -= 0.1 / (1 - pow(0.9, s)) * mm / vv;
            } else {
                vv = 0.999 * vv + 0.001 * gv * gv;
                pe -= 0.1 / (1 - pow(0.9, s)) * mm / (sqrt(vv) / sqrt(1 - pow(0.999, s)) + 1e-8);
            }
        }
        CHECK(fabs(p[0] - pe) < 1e-14, "optimiser %d: %.17g want %.17g", kind, p[0], pe);
        elm_optim_free(o);
        elm_model_free(m);
    }
    CHECK(fabs(elm_lr_cosine(1, 0, 0, 10) - 1) < 1e-15 &&
              fabs(elm_lr_cosine(1, 0, 5, 10) - 0.5) < 1e-15 &&
              fabs(elm_lr_cosine(1, 0, 10, 10)) < 1e-15,
          "cosine schedule");
    /* Clipping to a norm. */
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F64, 1));
    double *g = m->grads;
    for (size_t i = 0; i < m->n_train; i++)
        g[i] = 1;
    double n0 = elm_model_clip_grad_norm(m, 1.0);
    CHECK(fabs(n0 - sqrt((double)m->n_train)) < 1e-12, "norm");
    CHECK(fabs(elm_model_clip_grad_norm(m, 0) - 1) < 1e-5, "clipped norm");
    elm_model_free(m);
}

/* A few Adam steps on a tiny regression must lower the loss (the whole loop works). */
static void test_training_descends(void) {
    elm_config c;
    elm_config_default(&c, 3, 1, 4);
    c.memory_tau_max = 20;
    elm_model *m = NULL;
    elm_optim *o = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F32, 3));
    elm_optim_config oc;
    elm_optim_config_default(&oc, ELM_OPT_ADAM, 0.02);
    CHECK_OK(elm_optim_create(&o, m, &oc));
    const int B = 4, T = 30;
    float x[4 * 30 * 3], y[4 * 30], dy[4 * 30], target[4 * 30];
    elm__rng r;
    elm__rng_seed(&r, 5);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < 3; i++)
                x[(b * T + t) * 3 + i] = (float)elm__rng_uniform(&r);
            /* target: a leaky sum of input 0 */
            float prev = t ? target[b * T + t - 1] : 0;
            target[b * T + t] = 0.8f * prev + x[(b * T + t) * 3];
        }
    double first = 0, last = 0;
    for (int it = 0; it < 60; it++) {
        elm_model_zero_grad(m);
        CHECK_OK(elm_model_forward_train(m, x, y, B, T));
        double L = 0;
        for (int i = 0; i < B * T; i++) {
            double d = (double)y[i] - (double)target[i];
            L += d * d / (B * T);
            dy[i] = (float)(2 * d / (B * T));
        }
        CHECK_OK(elm_model_backward(m, dy));
        CHECK_OK(elm_optim_step(o, m, 0.02));
        if (it == 0)
            first = L;
        last = L;
    }
    CHECK(last < 0.5 * first, "60 Adam steps: loss %.4g -> %.4g", first, last);
    printf("training sanity: loss %.4g -> %.4g\n", first, last);
    elm_optim_free(o);
    elm_model_free(m);
}

/* The LSTM baseline behind elm_model: training, save/load and refusal of streaming. */
static void test_lstm_model(void) {
    elm_config c;
    elm_config_default(&c, 4, 2, 1);
    CHECK_OK(elm_config_set(&c, "model_type", "lstm", "test"));
    CHECK_OK(elm_config_set(&c, "lstm_hidden_size", "5", "test"));
    elm_model *m = NULL, *b = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F64, 3));
    if (!m)
        return;
    CHECK(elm_model_num_params(m) == 4 * 5 * (4 + 5) + 8 * 5 + 2 * (5 + 1), "LSTM params %zu",
          elm_model_num_params(m));
    double x[2 * 6 * 4], y[2 * 6 * 2], y2[2 * 6 * 2], g[2 * 6 * 2];
    elm__rng r;
    elm__rng_seed(&r, 1);
    for (int i = 0; i < 48; i++)
        x[i] = elm__rng_uniform(&r);
    for (int i = 0; i < 24; i++)
        g[i] = elm__rng_normal(&r);
    elm_model_zero_grad(m);
    CHECK_OK(elm_model_forward_train(m, x, y, 2, 6));
    CHECK_OK(elm_model_backward(m, g));
    /* One finite difference through the elm_model view of the parameters. */
    elm_tensor t;
    CHECK_OK(elm_model_tensor(m, 0, &t));
    double *p = t.data, keep = p[3], h = 1e-6;
    p[3] = keep + h;
    double lp = loss_of(m, x, g, 2, 6);
    p[3] = keep - h;
    double lm = loss_of(m, x, g, 2, 6);
    p[3] = keep;
    double fd = (lp - lm) / (2 * h), gr = ((double *)t.grad)[3];
    CHECK(fabs(fd - gr) <= TOL_FD * fmax(1, fabs(gr)), "LSTM grad %g vs fd %g", gr, fd);
    char dir[] = "/tmp/elm-lstm-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char sub[256];
    snprintf(sub, sizeof sub, "%s/run/", dir);
    CHECK_OK(elm_model_save(m, sub));
    CHECK_OK(elm_model_load(&b, sub, ELM_F64));
    if (b) {
        CHECK(elm_model_config(b)->model_type == ELM_MODEL_LSTM, "loaded type");
        CHECK_OK(elm_model_forward_f64(b, x, y2, 2, 6));
        CHECK(!memcmp(y, y2, sizeof y), "LSTM save/load changes outputs");
    }
    elm_state *s = NULL;
    CHECK(elm_state_create(&s, m, 1) == ELM_ERR_UNSUPPORTED, "streaming an LSTM");
    elm_model_free(m);
    elm_model_free(b);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    test_lstm_model();
    test_fd();
    test_roundtrip();
    test_invariants();
    test_version();
    test_config();
    test_optim();
    test_training_descends();
    return test_end();
}
