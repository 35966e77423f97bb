/*
 * forward.c - the public entry points of the forward pass, BPTT and streaming; they check their
 * arguments and dispatch through the model type's operations (model_internal.h), for the ELM to
 * the float32 or float64 kernels (kernels.inc).
 */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static elm_status need(const elm_model *m, elm_dtype d, const char *fn) {
    if (!m)
        return elm__fail(ELM_ERR_ARG, "%s: model is NULL", fn);
    if (m->dtype != d)
        return elm__fail(ELM_ERR_ARG, "%s: the model holds %s parameters; use the %s call or "
                                      "elm_model_clone() to convert",
                         fn, m->dtype == ELM_F64 ? "float64" : "float32",
                         m->dtype == ELM_F64 ? "_f64" : "float32");
    return ELM_OK;
}

elm_status elm_model_forward(elm_model *m, const float *x, float *y, int B, int T) {
    elm_status st = need(m, ELM_F32, "elm_model_forward");
    return st ? st : m->ops->forward(m, x, y, B, T, 0);
}

elm_status elm_model_forward_f64(elm_model *m, const double *x, double *y, int B, int T) {
    elm_status st = need(m, ELM_F64, "elm_model_forward_f64");
    return st ? st : m->ops->forward(m, x, y, B, T, 0);
}

elm_status elm_model_forward_train(elm_model *m, const void *x, void *y, int B, int T) {
    if (!m)
        return elm__fail(ELM_ERR_ARG, "elm_model_forward_train: model is NULL");
    return m->ops->forward(m, x, y, B, T, 1);
}

elm_status elm_model_backward(elm_model *m, const void *dy) {
    if (!m)
        return elm__fail(ELM_ERR_ARG, "elm_model_backward: model is NULL");
    return m->ops->backward(m, dy);
}

/* The ELM type's passes: the kernels of the model's dtype. */
elm_status elm__elm_forward(elm_model *m, const void *x, void *y, int B, int T, int train) {
    if (m->dtype == ELM_F64)
        return elm__forward_f64(m, x, y, B, T, train);
    return elm__forward_f32(m, x, y, B, T, train);
}

elm_status elm__elm_backward(elm_model *m, const void *dy) {
    if (m->dtype == ELM_F64)
        return elm__backward_f64(m, dy);
    return elm__backward_f32(m, dy);
}

/* ---- Streaming ---- */

struct elm_state {
    const elm_model *m;
    elm_dtype dtype;
    int B;
    size_t per_sample; /* reals of state per sample */
    int branch_mode;   /* the trace layout the state was made for */
    void *state;       /* (B, per_sample) in groups of ELM_LANES lanes */
    void *scratch;
};

size_t elm__state_len(const elm_model *m) {
    return (size_t)(m->branch_mode ? m->R : m->S) + (size_t)m->M;
}

elm_status elm_state_create(elm_state **out, const elm_model *m, int B) {
    *out = NULL;
    if (!m || B < 1)
        return elm__fail(ELM_ERR_ARG, "elm_state_create: need a model and B >= 1");
    if (!m->ops->streams)
        return elm__fail(ELM_ERR_UNSUPPORTED,
                         "elm_state_create: streaming is for ELM models, not the %s baseline",
                         m->ops->type == ELM_MODEL_LSTM ? "LSTM" : m->ops->name);
    elm_state *s = calloc(1, sizeof *s);
    if (!s)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    size_t rs = m->dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    s->m = m;
    s->dtype = m->dtype;
    s->B = B;
    s->per_sample = elm__state_len(m);
    s->branch_mode = m->branch_mode;
    s->state = elm__alloc_aligned(s->per_sample * (size_t)B * rs);
    s->scratch = elm__alloc_aligned(m->dtype == ELM_F64 ? elm__step_scratch_bytes_f64(m)
                                                        : elm__step_scratch_bytes_f32(m));
    if (!s->state || !s->scratch) {
        elm_state_free(s);
        return elm__fail(ELM_ERR_NOMEM, "out of memory for the state of %d samples", B);
    }
    /* The scratch opens with a header naming the model it was prepared for (kernels.inc):
     * an all-zero header means "not prepared yet". */
    memset(s->scratch, 0, 64);
    elm_state_reset(s);
    *out = s;
    return ELM_OK;
}

void elm_state_reset(elm_state *s) {
    size_t rs = s->dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    memset(s->state, 0, s->per_sample * (size_t)s->B * rs);
}

void elm_state_free(elm_state *s) {
    if (!s)
        return;
    elm__free_aligned(s->state);
    elm__free_aligned(s->scratch);
    free(s);
}

const void *elm_state_memory(const elm_state *s, int b) {
    /* Samples sit in groups of up to ELM_LANES, lane-interleaved, memory after the traces: sample
     * b's memory unit j is at this pointer + j * elm_state_memory_stride(). */
    if (b < 0 || b >= s->B)
        return NULL;
    size_t rs = s->dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    int b0 = b / ELM_LANES * ELM_LANES;
    size_t tl = s->per_sample - (size_t)s->m->M;
    size_t off = (size_t)b0 * s->per_sample + tl * (size_t)elm_state_memory_stride(s, b) +
                 (size_t)(b - b0);
    return (const char *)s->state + off * rs;
}

int elm_state_memory_stride(const elm_state *s, int b) {
    int b0 = b / ELM_LANES * ELM_LANES;
    return s->B - b0 < ELM_LANES ? s->B - b0 : ELM_LANES;
}

static elm_status step_check(const elm_model *m, const elm_state *s, elm_dtype d) {
    elm_status st = need(m, d, d == ELM_F64 ? "elm_model_step_f64" : "elm_model_step");
    if (st)
        return st;
    if (!s || s->m != m)
        return elm__fail(ELM_ERR_ARG, "elm_model_step: the state was made for another model");
    if (s->branch_mode != m->branch_mode)
        return elm__fail(ELM_ERR_ARG, "elm_model_step: the model's trace layout changed since "
                                      "the state was made; create a new state");
    return ELM_OK;
}

elm_status elm_model_step(const elm_model *m, elm_state *s, const float *x, float *y) {
    elm_status st = step_check(m, s, ELM_F32);
    if (st)
        return st;
    elm__step_f32(m, s->state, s->scratch, s->B, x, y);
    return ELM_OK;
}

elm_status elm_model_step_f64(const elm_model *m, elm_state *s, const double *x, double *y) {
    elm_status st = step_check(m, s, ELM_F64);
    if (st)
        return st;
    elm__step_f64(m, s->state, s->scratch, s->B, x, y);
    return ELM_OK;
}
