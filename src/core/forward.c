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

void elm_model_set_batch_split(elm_model *m, const elm_batch_split *s) {
    if (!m)
        return;
    memset(&m->batch_split, 0, sizeof m->batch_split);
    if (s && s->allgather && s->size > 1 && s->rank >= 0 && s->rank < s->size)
        m->batch_split = *s;
}

/*
 * Inference over processes (elm_model_set_batch_split): this process runs samples
 * [B r / n, B (r + 1) / n) of the batch, then the split's allgather fills in the others' outputs.
 * A sample's outputs do not depend on the rest of its batch (kernels.inc), so y is bitwise what
 * one process computes. Sparse inputs are cut at their row pointers (rebased to 0).
 */
elm_status elm__split_forward(elm_model *m, const void *x, const elm_sparse_input *xs, void *y,
                              int B, int T) {
    const elm_batch_split *s = &m->batch_split;
    const size_t es = m->dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    const int b0 = (int)((long)B * s->rank / s->size), b1 = (int)((long)B * (s->rank + 1) / s->size);
    const size_t ylen = (size_t)T * (size_t)m->O * es;
    int *counts = malloc(sizeof(int) * (size_t)s->size);
    if (!counts)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    for (int r = 0; r < s->size; r++)
        counts[r] = (int)((long)B * (r + 1) / s->size - (long)B * r / s->size);
    elm_status st = ELM_OK;
    char *yp = (char *)y + (size_t)b0 * ylen;
    if (b1 > b0 && !xs) {
        const char *xp = (const char *)x + (size_t)b0 * (size_t)T * (size_t)m->I * es;
        st = m->ops->forward(m, xp, yp, b1 - b0, T, 0);
    } else if (b1 > b0) {
        const size_t r0 = (size_t)b0 * (size_t)T, nr = (size_t)(b1 - b0) * (size_t)T;
        int64_t *ptr = malloc(sizeof(int64_t) * (nr + 1));
        if (!ptr)
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
        else {
            const int64_t base = xs->ptr[r0];
            for (size_t i = 0; i <= nr; i++)
                ptr[i] = xs->ptr[r0 + i] - base;
            elm_sparse_input part = {.ptr = ptr, .idx = xs->idx ? xs->idx + base : NULL,
                                     .val = xs->val ? (const char *)xs->val + (size_t)base * es
                                                    : NULL};
            st = m->ops->forward_sparse(m, &part, yp, b1 - b0, T, 0);
            free(ptr);
        }
    }
    /* Every process takes part in the gather, even after a failure of its own: the others wait
     * in it. The caller (an MPI launcher) ends the job on the error. */
    elm_status gs = s->allgather(s->user, y, counts, ylen);
    free(counts);
    return st ? st : gs;
}

elm_status elm_model_forward(elm_model *m, const float *x, float *y, int B, int T) {
    elm_status st = need(m, ELM_F32, "elm_model_forward");
    if (!st && m->batch_split.allgather && B > 0)
        return elm__split_forward(m, x, NULL, y, B, T);
    return st ? st : m->ops->forward(m, x, y, B, T, 0);
}

elm_status elm_model_forward_f64(elm_model *m, const double *x, double *y, int B, int T) {
    elm_status st = need(m, ELM_F64, "elm_model_forward_f64");
    if (!st && m->batch_split.allgather && B > 0)
        return elm__split_forward(m, x, NULL, y, B, T);
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
    if (m->fma)
        return elm__forward_f32fma(m, x, y, B, T, train);
    return elm__forward_f32(m, x, y, B, T, train);
}

elm_status elm__elm_backward(elm_model *m, const void *dy) {
    if (m->dtype == ELM_F64)
        return elm__backward_f64(m, dy);
    if (m->fma)
        return elm__backward_f32fma(m, dy);
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
    if (m->fma)
        elm__step_f32fma(m, s->state, s->scratch, s->B, x, y);
    else
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
