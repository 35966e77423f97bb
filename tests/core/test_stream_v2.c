/*
 * test_stream_v2.c - streaming (elm_state + elm_model_step) equals the batch forward bit for bit
 * for ELM v2 models: plain, Branch-ELM v2 (NeuronIO routing into branches) and random routing,
 * in float32 and float64, one sample and a batch of 11 (a full lane group of 8 plus 3), with
 * learnt memory time constants. The v1 models are streamed in test_fastpaths.c.
 *
 * Both paths run the same per-step arithmetic on the same numbers, so any difference, even in
 * the last bit, means the two paths compute different things (a stage skipped or reordered).
 */
#include "elm.h"
#include "model_internal.h"
#include "test.h"

enum { V2_PLAIN = 0, V2_BRANCH = 1, V2_RANDOM = 2 };
static const char *kind_name[] = {"v2 plain", "Branch-ELM v2 (neuronio routing)",
                                  "v2 random routing"};

static elm_model *make(int kind, elm_dtype dt) {
    elm_config c;
    elm_config_default(&c, 24, 2, 5);
    c.version = ELM_V2;
    c.mlp_hidden_size = 9;
    c.learn_memory_tau = 1;
    c.memory_tau_max = 40;
    if (kind == V2_BRANCH) {
        c.num_branch = 6;
        c.num_synapse_per_branch = 4;
        c.input_to_synapse_routing = ELM_ROUTE_NEURONIO;
    } else if (kind == V2_RANDOM) {
        c.num_branch = 5;
        c.num_synapse_per_branch = 7;
        c.input_to_synapse_routing = ELM_ROUTE_RANDOM;
        c.mlp_activation = ELM_ACT_SILU;
        c.mlp_num_layers = 2;
    }
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, dt, 11));
    if (!m)
        return NULL;
    /* Mixed-sign synapse weights (the relu on w_s is exercised) and spread branch constants. */
    elm__rng r;
    elm__rng_seed(&r, 4);
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        int ws = !strcmp(t.name, "_proto_w_s"), tb = !strcmp(t.name, "tau_b");
        for (size_t k = 0; (ws || tb) && k < t.numel; k++) {
            double v = ws ? -0.3 + 1.5 * elm__rng_uniform(&r) : 2 + 20 * elm__rng_uniform(&r);
            if (dt == ELM_F64)
                ((double *)t.data)[k] = v;
            else
                ((float *)t.data)[k] = (float)v;
        }
    }
    elm_model_refresh(m);
    return m;
}

static void check(int kind, elm_dtype dt, int B) {
    const int T = 37;
    elm_model *m = make(kind, dt);
    if (!m)
        return;
    const int I = elm_model_config(m)->num_input, O = elm_model_config(m)->num_output;
    const size_t rs = dt == ELM_F64 ? sizeof(double) : sizeof(float);
    const size_t nx = (size_t)B * T * (size_t)I, ny = (size_t)B * T * (size_t)O;
    char *x = malloc(rs * nx), *y = malloc(rs * ny), *xt = malloc(rs * (size_t)B * (size_t)I);
    char *yt = malloc(rs * (size_t)B * (size_t)O);
    elm__rng r;
    elm__rng_seed(&r, 21);
    for (size_t i = 0; i < nx; i++) {
        /* Spike-like inputs: mostly 0, some 1, a few graded values. */
        double u = elm__rng_uniform(&r), v = u < 0.7 ? 0 : u < 0.9 ? 1 : 3 * u;
        if (dt == ELM_F64)
            ((double *)x)[i] = v;
        else
            ((float *)x)[i] = (float)v;
    }
    if (dt == ELM_F64)
        CHECK_OK(elm_model_forward_f64(m, (double *)x, (double *)y, B, T));
    else
        CHECK_OK(elm_model_forward(m, (float *)x, (float *)y, B, T));
    elm_state *s = NULL;
    CHECK_OK(elm_state_create(&s, m, B));
    long differ = 0, first = -1;
    for (int t = 0; t < T && s; t++) {
        for (int b = 0; b < B; b++)
            memcpy(xt + rs * (size_t)b * (size_t)I, x + rs * ((size_t)b * T + (size_t)t) * (size_t)I,
                   rs * (size_t)I);
        if (dt == ELM_F64)
            CHECK_OK(elm_model_step_f64(m, s, (double *)xt, (double *)yt));
        else
            CHECK_OK(elm_model_step(m, s, (float *)xt, (float *)yt));
        for (int b = 0; b < B; b++)
            if (memcmp(yt + rs * (size_t)b * (size_t)O,
                       y + rs * ((size_t)b * T + (size_t)t) * (size_t)O, rs * (size_t)O)) {
                differ++;
                if (first < 0)
                    first = t;
            }
    }
    CHECK(differ == 0, "%s %s B=%d: streaming differs from the batch forward in %ld (t, b) rows, "
                       "first at t = %ld",
          kind_name[kind], dt == ELM_F64 ? "f64" : "f32", B, differ, first);
    /* The outputs are not trivially equal: they move over time. */
    int moves = 0;
    for (size_t i = (size_t)O; i < (size_t)T * (size_t)O; i++)
        moves |= memcmp(y + rs * i, y + rs * (i - (size_t)O), rs) != 0;
    CHECK(moves, "%s: constant outputs, the comparison would be vacuous", kind_name[kind]);
    elm_state_free(s);
    free(x);
    free(y);
    free(xt);
    free(yt);
    elm_model_free(m);
}

int main(void) {
    for (int kind = 0; kind < 3; kind++)
        for (int d = 0; d < 2; d++) {
            check(kind, d ? ELM_F64 : ELM_F32, 1);
            check(kind, d ? ELM_F64 : ELM_F32, 11);
        }
    return test_end();
}
