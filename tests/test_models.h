/*
 * test_models.h - the small models the kernel tests share (test_fastpaths, test_grad_groups):
 * each has the shape of a task's model at a test's size, so that the kernels' fast paths run:
 * - nio-like: routed v1 with a two-layer SiLU MLP and learned memory time constants (NeuronIO's
 *   shape: branch traces, sparse inputs);
 * - shd-like: 160 unrouted branches sharing one kappa (the projected-trace path runs);
 * - pathfinder-like: one dense input, widths over 4 blocks of 16 floats / 8 doubles (the
 *   multi-block products run).
 * Synapse weights have mixed signs so that the relu on w_s is exercised. Also the helpers the
 * kernel tests share: inputs, forward outputs and gradients as doubles, bitwise comparison.
 * Include after test.h.
 */
#ifndef ELM_TEST_MODELS_H
#define ELM_TEST_MODELS_H

#include "elm.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { K_NIO = 0, K_SHD = 1, K_PF = 2 };
static const char *const test_model_name[] = {"nio-like", "shd-like", "pathfinder-like"};

/* A model of `kind` in dtype dt, parameters from seed 7 and synapse weights redrawn from seed 3
 * in [-0.3, 1.2); exits when it cannot be made (the failed check says why). */
static inline elm_model *test_model_make(int kind, elm_dtype dt) {
    elm_config c;
    if (kind == K_NIO) {
        elm_config_default(&c, 60, 2, 6);
        c.num_branch = 8;
        c.num_synapse_per_branch = 12;
        c.input_to_synapse_routing = ELM_ROUTE_RANDOM;
        c.mlp_num_layers = 2;
        c.mlp_hidden_size = 12;
        c.mlp_activation = ELM_ACT_SILU;
        c.learn_memory_tau = 1;
        c.memory_tau_max = 150;
    } else if (kind == K_SHD) {
        elm_config_default(&c, 160, 5, 10);
        c.mlp_hidden_size = 20;
        c.memory_tau_max = 500;
        c.delta_t = 10;
    } else {
        elm_config_default(&c, 1, 2, 40);
        c.mlp_hidden_size = 72;
    }
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, dt, 7));
    if (!m)
        exit(1);
    elm_tensor t;
    elm_model_tensor(m, elm_model_find_tensor(m, "_proto_w_s"), &t);
    elm__rng r;
    elm__rng_seed(&r, 3);
    for (size_t i = 0; i < t.numel; i++) {
        double v = -0.3 + 1.5 * elm__rng_uniform(&r);
        if (dt == ELM_F64)
            ((double *)t.data)[i] = v;
        else
            ((float *)t.data)[i] = (float)v;
    }
    elm_model_refresh(m);
    return m;
}

/* Inputs (B, T, I) in double: spikes (p = 0.05, some of them -0.0 "non-spikes") or uniform. */
static inline double *inputs(int kind, int B, int T, int I) {
    size_t n = (size_t)B * (size_t)T * (size_t)I;
    double *x = malloc(sizeof(double) * n);
    elm__rng r;
    elm__rng_seed(&r, 11);
    for (size_t i = 0; i < n; i++) {
        double u = elm__rng_uniform(&r);
        if (kind == K_PF)
            x[i] = u;
        else
            x[i] = u < 0.05 ? (u < 0.01 ? 2.0 : 1.0) : (u > 0.99 ? -0.0 : 0.0);
    }
    return x;
}

static inline void *to_dtype(const double *x, size_t n, elm_dtype dt) {
    void *p = malloc((dt == ELM_F64 ? sizeof(double) : sizeof(float)) * n);
    for (size_t i = 0; i < n; i++) {
        if (dt == ELM_F64)
            ((double *)p)[i] = x[i];
        else
            ((float *)p)[i] = (float)x[i];
    }
    return p;
}

static inline double get(const void *p, size_t i, elm_dtype dt) {
    return dt == ELM_F64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* Forward (inference) of rows b0 .. b0+B-1 of x: y (B, T, O) as doubles. */
static inline double *fwd(elm_model *m, const double *x, int b0, int B, int T) {
    const elm_config *c = elm_model_config(m);
    elm_dtype dt = elm_model_dtype(m);
    size_t nx = (size_t)B * (size_t)T * (size_t)c->num_input;
    size_t ny = (size_t)B * (size_t)T * (size_t)c->num_output;
    void *xb = to_dtype(x + (size_t)b0 * (size_t)T * (size_t)c->num_input, nx, dt);
    void *y = malloc((dt == ELM_F64 ? sizeof(double) : sizeof(float)) * ny);
    if (dt == ELM_F64)
        CHECK_OK(elm_model_forward_f64(m, xb, y, B, T));
    else
        CHECK_OK(elm_model_forward(m, xb, y, B, T));
    double *yd = malloc(sizeof(double) * ny);
    for (size_t i = 0; i < ny; i++)
        yd[i] = get(y, i, dt);
    free(xb);
    free(y);
    return yd;
}

/* All trainable gradients (in table order) of sum(y * w) for fixed weights w, as doubles. */
static inline double *grads(elm_model *m, const double *x, int B, int T, size_t *n_out) {
    const elm_config *c = elm_model_config(m);
    elm_dtype dt = elm_model_dtype(m);
    size_t nx = (size_t)B * (size_t)T * (size_t)c->num_input;
    size_t ny = (size_t)B * (size_t)T * (size_t)c->num_output;
    void *xb = to_dtype(x, nx, dt);
    void *y = malloc((dt == ELM_F64 ? sizeof(double) : sizeof(float)) * ny);
    double *w = malloc(sizeof(double) * ny);
    for (size_t i = 0; i < ny; i++)
        w[i] = sin(0.37 * (double)i) / (double)T;
    void *dy = to_dtype(w, ny, dt);
    elm_model_zero_grad(m);
    CHECK_OK(elm_model_forward_train(m, xb, y, B, T));
    CHECK_OK(elm_model_backward(m, dy));
    size_t n = 0;
    elm_tensor t;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_model_tensor(m, i, &t);
        if (t.trainable)
            n += t.numel;
    }
    double *g = malloc(sizeof(double) * n);
    size_t k = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_model_tensor(m, i, &t);
        if (t.trainable)
            for (size_t j = 0; j < t.numel; j++)
                g[k++] = get(t.grad, j, dt);
    }
    *n_out = n;
    free(xb);
    free(y);
    free(w);
    free(dy);
    return g;
}

static inline int same_bits(const double *a, const double *b, size_t n, size_t *where) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(double)) != 0) {
            *where = i;
            return 0;
        }
    return 1;
}

#endif
