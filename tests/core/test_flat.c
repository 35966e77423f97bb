/*
 * test_flat.c - flat access to parameters and gradients (elm_model_params / elm_model_grads)
 * and the tensor enumeration over it, for the ELM (v1 routed, v2) and the LSTM, float32 and
 * float64: the tensors tile the blocks in order with the trainable ones first; the gradient of a
 * batch equals the sum of the flat gradients of its halves computed on two copies (what an MPI
 * launcher's all-reduce does); parameters written into the flat block change the model.
 */
#include "elm.h"
#include "test.h"

#include <stdint.h>

static void fill(void *p, size_t n, elm_dtype dt, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double v = (double)(s >> 11) * 0x1.0p-53 - 0.5;
        if (dt == ELM_F64)
            ((double *)p)[i] = v;
        else
            ((float *)p)[i] = (float)v;
    }
}

static double get(const void *p, size_t i, elm_dtype dt) {
    return dt == ELM_F64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static void check_layout(elm_model *m, const char *what) {
    size_t np = 0, ng = 0;
    char *P = elm_model_params(m, &np), *G = elm_model_grads(m, &ng);
    const size_t rs = elm_model_dtype(m) == ELM_F64 ? sizeof(double) : sizeof(float);
    CHECK(P && G, "%s: NULL blocks", what);
    CHECK(ng == elm_model_num_params(m), "%s: grads count %zu, num_params %zu", what, ng,
          elm_model_num_params(m));
    CHECK(elm_model_params(m, NULL) == P && elm_model_grads(m, NULL) == G, "%s: count NULL",
          what);
    size_t at = 0, trainable = 0;
    int fixed_seen = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        CHECK_OK(elm_model_tensor(m, i, &t));
        CHECK(t.offset == at, "%s: tensor %s at %zu, expected %zu", what, t.name, t.offset, at);
        CHECK((char *)t.data == P + t.offset * rs, "%s: %s data is not params + offset", what,
              t.name);
        CHECK(t.numel == (size_t)t.shape[0] * (size_t)t.shape[1], "%s: %s numel", what, t.name);
        if (t.trainable) {
            CHECK(!fixed_seen, "%s: trainable %s after a fixed tensor", what, t.name);
            CHECK((char *)t.grad == G + t.offset * rs, "%s: %s grad is not grads + offset", what,
                  t.name);
            trainable += t.numel;
        } else {
            fixed_seen = 1;
            CHECK(t.grad == NULL, "%s: fixed %s has a gradient", what, t.name);
        }
        CHECK(elm_model_find_tensor(m, t.name) == i, "%s: %s not found by name", what, t.name);
        at += t.numel;
    }
    CHECK(at == np, "%s: tensors cover %zu of %zu parameters", what, at, np);
    CHECK(trainable == ng, "%s: trainable tensors hold %zu, the gradient block %zu", what,
          trainable, ng);
}

/* Gradient of a batch of 4 on one model = sum of the flat gradients of samples 0-1 and 2-3 on
 * two copies; then copying one model's flat parameters into another gives the same outputs. */
static void check_reduce(elm_model *a, const char *what, double tol) {
    const elm_dtype dt = elm_model_dtype(a);
    const size_t rs = dt == ELM_F64 ? sizeof(double) : sizeof(float);
    const elm_config *c = elm_model_config(a);
    const int B = 4, T = 7, I = c->num_input, O = c->num_output;
    elm_model *b = NULL, *full = NULL;
    CHECK_OK(elm_model_clone(&b, a, dt));
    CHECK_OK(elm_model_clone(&full, a, dt));
    if (!b || !full)
        return;
    elm_model_set_threads(a, 1);
    elm_model_set_threads(b, 1);
    elm_model_set_threads(full, 1);
    const size_t nx = (size_t)B * T * I, ny = (size_t)B * T * O, half_x = nx / 2, half_y = ny / 2;
    char *x = malloc(nx * rs), *y = malloc(ny * rs), *dy = malloc(ny * rs);
    fill(x, nx, dt, 1);
    fill(dy, ny, dt, 2);
    elm_model_zero_grad(full);
    CHECK_OK(elm_model_forward_train(full, x, y, B, T));
    CHECK_OK(elm_model_backward(full, dy));
    elm_model_zero_grad(a);
    elm_model_zero_grad(b);
    CHECK_OK(elm_model_forward_train(a, x, y, B / 2, T));
    CHECK_OK(elm_model_backward(a, dy));
    CHECK_OK(elm_model_forward_train(b, x + half_x * rs, y, B / 2, T));
    CHECK_OK(elm_model_backward(b, dy + half_y * rs));
    size_t n = 0;
    const void *ga = elm_model_grads(a, &n), *gb = elm_model_grads(b, NULL),
               *gf = elm_model_grads(full, NULL);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(get(ga, i, dt) + get(gb, i, dt) - get(gf, i, dt));
        worst = d > worst ? d : worst;
        scale = fabs(get(gf, i, dt)) > scale ? fabs(get(gf, i, dt)) : scale;
    }
    CHECK(n > 0 && scale > 0 && worst <= tol * scale,
          "%s: halves' gradients summed differ from the batch's by %g (largest %g)", what, worst,
          scale);

    /* Parameters written through the flat block (then refreshed) are the model's. */
    size_t np = 0;
    void *pb = elm_model_params(b, &np);
    fill(pb, elm_model_num_params(b), dt, 3); /* the trainable prefix; fixed values stay */
    elm_model_refresh(b);
    memcpy(elm_model_params(a, NULL), pb, np * rs);
    elm_model_refresh(a);
    char *y2 = malloc(ny * rs);
    if (dt == ELM_F64) {
        CHECK_OK(elm_model_forward_f64(a, (const double *)x, (double *)y, B, T));
        CHECK_OK(elm_model_forward_f64(b, (const double *)x, (double *)y2, B, T));
    } else {
        CHECK_OK(elm_model_forward(a, (const float *)x, (float *)y, B, T));
        CHECK_OK(elm_model_forward(b, (const float *)x, (float *)y2, B, T));
    }
    CHECK(!memcmp(y, y2, ny * rs), "%s: flat-copied parameters give other outputs", what);
    CHECK_OK(elm_model_forward_train(full, x, y2, B, T));
    CHECK(memcmp(y, y2, ny * rs) != 0, "%s: the new parameters changed nothing", what);
    free(x);
    free(y);
    free(y2);
    free(dy);
    elm_model_free(b);
    elm_model_free(full);
}

int main(void) {
    for (int f64 = 0; f64 < 2; f64++) {
        elm_dtype dt = f64 ? ELM_F64 : ELM_F32;
        /* float32 sums in another order than the batch: a few ulps of the largest gradient. */
        double tol = f64 ? 1e-12 : 1e-5;
        for (int kind = 0; kind < 3; kind++) {
            elm_config cfg;
            elm_config_default(&cfg, 12, 2, 5);
            const char *what = "";
            if (kind == 0) {
                what = "v1 routed, fixed tau_m";
                cfg.num_branch = 4;
                cfg.num_synapse_per_branch = 3;
                cfg.input_to_synapse_routing = ELM_ROUTE_NEURONIO;
                cfg.learn_memory_tau = 0;
            } else if (kind == 1) {
                what = "v2";
                cfg.version = ELM_V2;
                cfg.num_branch = 3;
                cfg.num_synapse_per_branch = 4;
                cfg.learn_memory_tau = 1;
            } else {
                what = "lstm";
                cfg.model_type = ELM_MODEL_LSTM;
                cfg.lstm_hidden_size = 4;
            }
            elm_model *m = NULL;
            CHECK_OK(elm_model_create(&m, &cfg, dt, 11));
            if (!m)
                continue;
            check_layout(m, what);
            check_reduce(m, what, tol);
            elm_model_free(m);
        }
    }
    /* Reference names at known places. */
    elm_config cfg;
    elm_config_default(&cfg, 6, 2, 3);
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &cfg, ELM_F32, 1));
    if (m) {
        elm_tensor t;
        elm_model_tensor(m, 0, &t);
        CHECK(!strcmp(t.name, "_proto_w_s") && t.offset == 0, "first tensor %s", t.name);
        int i = elm_model_find_tensor(m, "mlp.network.0.weight");
        CHECK(i > 0, "mlp.network.0.weight missing");
        elm_model_tensor(m, elm_model_num_tensors(m) - 1, &t);
        CHECK(!strcmp(t.name, "tau_s") && !t.trainable, "last tensor %s", t.name);
        elm_model_free(m);
    }
    return test_end();
}
