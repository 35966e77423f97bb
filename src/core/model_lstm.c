/*
 * model_lstm.c - the LSTM baseline (lstm.c) behind the elm_model interface.
 *
 * The ablations compare the ELM with an LSTM "with everything else equal": the same tasks, data,
 * losses, trainer, optimiser and evaluation. Rather than teach each of those a second model
 * type, an elm_model can hold an elm_lstm: its parameter table lists the LSTM's six tensors and
 * its params/grads point into the LSTM's blocks, so the optimiser, checkpoints and tensor access
 * work unchanged, and forward/backward/save/load dispatch here.
 */
#include "model_internal.h"

#include "elm_lstm.h"

#include <stdlib.h>
#include <string.h>

static elm_status wrap(elm_model **out, elm_lstm *l) {
    elm_model *m = calloc(1, sizeof *m);
    if (!m) {
        elm_lstm_free(l);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    m->lstm = l;
    m->dtype = elm_lstm_dtype(l);
    elm_config_default(&m->cfg, elm_lstm_num_input(l), elm_lstm_num_output(l), 1);
    m->cfg.model_type = ELM_MODEL_LSTM;
    m->cfg.lstm_hidden_size = elm_lstm_hidden(l);
    m->I = m->cfg.num_input;
    m->O = m->cfg.num_output;
    m->params = elm_lstm_params(l);
    m->grads = elm_lstm_grads(l);
    m->n_total = m->n_train = elm_lstm_num_params(l);
    size_t rs = m->dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    m->n_tensors = elm_lstm_num_tensors(l);
    for (int i = 0; i < m->n_tensors && i < ELM_MAX_TENSORS; i++) {
        elm_tensor t;
        elm_lstm_tensor(l, i, &t);
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

elm_status elm__lstm_model_create(elm_model **out, const elm_config *cfg, elm_dtype dtype,
                                  uint64_t seed) {
    elm_config c = *cfg;
    elm_status st = elm_config_resolve(&c);
    if (st)
        return st;
    elm_lstm *l = NULL;
    st = elm_lstm_create(&l, c.num_input, c.lstm_hidden_size, c.num_output, dtype, seed);
    return st ? st : wrap(out, l);
}

elm_status elm__lstm_model_load(elm_model **out, const char *path, elm_dtype dtype) {
    elm_lstm *l = NULL;
    elm_status st = elm_lstm_load(&l, path, dtype);
    return st ? st : wrap(out, l);
}

elm_status elm__lstm_model_save(const elm_model *m, const char *path) {
    elm_status st = path[strlen(path) - 1] == '/' ? elm__mkdir_p(path) : ELM_OK;
    if (!st)
        st = elm_lstm_save(m->lstm, path);
    if (st || !(elm__is_dir(path) || path[strlen(path) - 1] == '/'))
        return st;
    /* A run folder also gets model_config.json, as for ELM models. */
    char *q = elm__path_join(path, "model_config.json");
    char *js = elm_config_to_json(&m->cfg);
    if (!q || !js) {
        free(q);
        free(js);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    st = elm__write_file_atomic(q, js, strlen(js));
    free(q);
    free(js);
    return st;
}

elm_status elm__lstm_model_clone(elm_model **out, const elm_model *src, elm_dtype dtype) {
    elm_lstm *l = NULL;
    elm_status st = elm_lstm_create(&l, src->I, src->cfg.lstm_hidden_size, src->O, dtype, 0);
    if (st)
        return st;
    void *p = elm_lstm_params(l);
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

void elm__lstm_model_free(elm_model *m) {
    elm_lstm_free(m->lstm);
    free(m);
}
