/*
 * test_models.h - the small models the kernel tests share (test_fastpaths, test_grad_groups):
 * each has the shape of a task's model at a test's size, so that the kernels' fast paths run:
 * - nio-like: routed v1 with a two-layer SiLU MLP and learned memory time constants (NeuronIO's
 *   shape: branch traces, sparse inputs);
 * - shd-like: 160 unrouted branches sharing one kappa (the projected-trace path runs);
 * - pathfinder-like: one dense input, widths over 4 blocks of 16 floats / 8 doubles (the
 *   multi-block products run).
 * Synapse weights have mixed signs so that the relu on w_s is exercised. Include after test.h.
 */
#ifndef ELM_TEST_MODELS_H
#define ELM_TEST_MODELS_H

#include "elm.h"
#include "internal.h"

#include <stdlib.h>

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

#endif
