/*
 * model_lstm.c - the LSTM baseline (lstm.c) behind the elm_model interface: its operation table.
 *
 * The ablations compare the ELM with an LSTM "with everything else equal": the same tasks, data,
 * losses, trainer, optimiser and evaluation. Rather than teach each of those a second model
 * type, an elm_model can hold an elm__lstm (m->impl): its parameter table lists the LSTM's six
 * tensors and its params/grads point into the LSTM's blocks, so the optimiser, checkpoints and
 * tensor access work unchanged, and the operations below forward to lstm.c.
 */
#include "lstm.h"
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

static elm__lstm *lstm_of(const elm_model *m) {
    return (elm__lstm *)m->impl;
}

static elm_status wrap(elm_model **out, elm__lstm *l) {
    elm_model *m = calloc(1, sizeof *m);
    if (!m) {
        elm__lstm_free(l);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    m->ops = &elm__lstm_ops;
    m->impl = l;
    m->dtype = elm__lstm_dtype(l);
    elm_config_default(&m->cfg, elm__lstm_num_input(l), elm__lstm_num_output(l), 1);
    m->cfg.model_type = ELM_MODEL_LSTM;
    m->cfg.lstm_hidden_size = elm__lstm_hidden(l);
    m->I = m->cfg.num_input;
    m->O = m->cfg.num_output;
    m->params = elm__lstm_params(l);
    m->grads = elm__lstm_grads(l);
    m->n_total = m->n_train = elm__lstm_num_params(l);
    size_t rs = elm__real_size(m->dtype);
    m->n_tensors = elm__lstm_num_tensors(l);
    for (int i = 0; i < m->n_tensors && i < ELM_MAX_TENSORS; i++) {
        elm_tensor t;
        elm__lstm_tensor(l, i, &t);
        elm__ptensor *p = &m->t[i];
        snprintf(p->name, sizeof p->name, "%s", t.name);
        p->ndim = t.ndim;
        p->shape[0] = t.shape[0];
        p->shape[1] = t.ndim > 1 ? t.shape[1] : 1;
        p->numel = t.numel;
        p->offset = (size_t)((char *)t.data - (char *)m->params) / rs;
        p->trainable = 1;
    }
    *out = m;
    return ELM_OK;
}

static elm_status lstm_create(elm_model **out, const elm_config *cfg, elm_dtype dtype,
                              uint64_t seed) {
    elm_config c = *cfg;
    elm_status st = elm_config_resolve(&c);
    if (st)
        return st;
    elm__lstm *l = NULL;
    st = elm__lstm_create(&l, c.num_input, c.lstm_hidden_size, c.num_output, dtype, seed);
    return st ? st : wrap(out, l);
}

static void lstm_destroy(elm_model *m) {
    elm__lstm_free(lstm_of(m));
    free(m);
}

static elm_status lstm_clone(elm_model **out, const elm_model *src, elm_dtype dtype) {
    elm__lstm *l = NULL;
    elm_status st = elm__lstm_create(&l, src->I, src->cfg.lstm_hidden_size, src->O, dtype, 0);
    if (st)
        return st;
    void *p = elm__lstm_params(l);
    for (size_t i = 0; i < src->n_total; i++) {
        double v = src->dtype == ELM_F64 ? ((const double *)src->params)[i]
                                         : (double)((const float *)src->params)[i];
        if (dtype == ELM_F64)
            ((double *)p)[i] = v;
        else
            ((float *)p)[i] = (float)v;
    }
    return wrap(out, l);
}

static elm_status lstm_forward(elm_model *m, const void *x, void *y, int B, int T, int train) {
    if (train)
        return elm__lstm_forward_train(lstm_of(m), x, y, B, T);
    if (m->dtype == ELM_F64)
        return elm__lstm_forward_f64(lstm_of(m), x, y, B, T);
    return elm__lstm_forward(lstm_of(m), x, y, B, T);
}

/* Spike lists go to the LSTM's input projection as they are (no dense rows). */
static elm_status lstm_forward_sparse(elm_model *m, const elm_sparse_input *x, void *y, int B,
                                      int T, int train) {
    return elm__lstm_forward_sparse(lstm_of(m), x, y, B, T, train);
}

static elm_status lstm_backward(elm_model *m, const void *dy) {
    return elm__lstm_backward(lstm_of(m), dy);
}

static void lstm_set_threads(elm_model *m) {
    elm__lstm_set_threads(lstm_of(m), m->threads);
}

static elm_status lstm_from_st(elm_model **out, const elm__st_file *f, const char *cfg_path,
                               int in_folder, elm_dtype dtype) {
    (void)cfg_path; /* the sizes come from the tensor shapes */
    (void)in_folder;
    elm__lstm *l = NULL;
    elm_status st = elm__lstm_from_st(&l, f, dtype);
    return st ? st : wrap(out, l);
}

static elm_status lstm_to_st(const elm_model *m, const char *path) {
    return elm__lstm_to_st(lstm_of(m), path);
}

const elm__model_ops elm__lstm_ops = {
    .type = ELM_MODEL_LSTM,
    .name = "lstm",
    .create = lstm_create,
    .destroy = lstm_destroy,
    .clone = lstm_clone,
    .forward = lstm_forward,
    .forward_sparse = lstm_forward_sparse,
    .backward = lstm_backward,
    .refresh = NULL, /* the LSTM derives nothing from its parameters */
    .set_threads = lstm_set_threads,
    .recognises = elm__lstm_st_is_lstm,
    .from_st = lstm_from_st,
    .to_st = lstm_to_st,
    .streams = 0,
};
