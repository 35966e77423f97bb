/*
 * optim.c - Adam, AdamW and Adamax exactly as torch.optim defines them, over the model's flat
 * trainable block, plus cosine annealing of the learning rate.
 *
 * Moments are kept in float64 whatever the model's dtype, so a float32 run's optimiser state is
 * as precise as the reference's and checkpoints restore it bit-exactly.
 */
#include "model_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct elm_optim {
    elm_optim_config c;
    size_t n;
    long step;
    double *m1; /* exp_avg */
    double *m2; /* exp_avg_sq (Adam, AdamW) or exp_inf (Adamax) */
};

void elm_optim_config_default(elm_optim_config *c, elm_optim_kind kind, double lr) {
    c->kind = kind;
    c->lr = lr;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = kind == ELM_OPT_ADAMW ? 1e-2 : 0.0;
}

elm_status elm_optim_create(elm_optim **out, const elm_model *m, const elm_optim_config *c) {
    *out = NULL;
    if (c->kind != ELM_OPT_ADAM && c->kind != ELM_OPT_ADAMW && c->kind != ELM_OPT_ADAMAX)
        return elm__fail(ELM_ERR_ARG, "unknown optimiser kind %d", (int)c->kind);
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->eps >= 0 &&
          c->weight_decay >= 0))
        return elm__fail(ELM_ERR_ARG, "optimiser: betas must be in [0, 1), eps and weight decay "
                                      ">= 0");
    elm_optim *o = calloc(1, sizeof *o);
    if (!o)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    o->c = *c;
    o->n = m->n_train;
    o->m1 = calloc(o->n ? o->n : 1, sizeof(double));
    o->m2 = calloc(o->n ? o->n : 1, sizeof(double));
    if (!o->m1 || !o->m2) {
        elm_optim_free(o);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    *out = o;
    return ELM_OK;
}

void elm_optim_free(elm_optim *o) {
    if (!o)
        return;
    free(o->m1);
    free(o->m2);
    free(o);
}

elm_status elm_optim_step(elm_optim *o, elm_model *m, double lr) {
    if (o->n != m->n_train)
        return elm__fail(ELM_ERR_ARG, "optimiser was made for another model");
    const elm_optim_config *c = &o->c;
    o->step++;
    double bc1 = 1 - pow(c->beta1, (double)o->step);
    double bc2 = 1 - pow(c->beta2, (double)o->step);
    int f64 = m->dtype == ELM_F64;
    for (size_t i = 0; i < o->n; i++) {
        double p = f64 ? ((double *)m->params)[i] : (double)((float *)m->params)[i];
        double g = f64 ? ((double *)m->grads)[i] : (double)((float *)m->grads)[i];
        if (c->kind == ELM_OPT_ADAMW)
            p *= 1 - lr * c->weight_decay;
        else if (c->weight_decay != 0)
            g += c->weight_decay * p;
        o->m1[i] = c->beta1 * o->m1[i] + (1 - c->beta1) * g;
        if (c->kind == ELM_OPT_ADAMAX) {
            double a = fabs(g) + c->eps, b = c->beta2 * o->m2[i];
            o->m2[i] = a > b ? a : b;
            p -= lr / bc1 * o->m1[i] / o->m2[i];
        } else {
            o->m2[i] = c->beta2 * o->m2[i] + (1 - c->beta2) * g * g;
            double denom = sqrt(o->m2[i]) / sqrt(bc2) + c->eps;
            p -= lr / bc1 * o->m1[i] / denom;
        }
        if (f64)
            ((double *)m->params)[i] = p;
        else
            ((float *)m->params)[i] = (float)p;
    }
    elm__refresh(m);
    return ELM_OK;
}

double elm_lr_cosine(double lr0, double lr_min, long step, long total) {
    if (total <= 0)
        return lr0;
    if (step > total)
        step = total;
    return lr_min + (lr0 - lr_min) * (1 + cos(3.14159265358979323846 * (double)step / (double)total)) / 2;
}

elm_status elm_optim_save(const elm_optim *o, const elm_model *m, const char *path) {
    int64_t step = o->step;
    elm__st_out t[3] = {
        {.name = "exp_avg", .dtype = ELM_DT_F64, .ndim = 1, .shape = {(int64_t)o->n},
         .data = o->m1},
        {.name = o->c.kind == ELM_OPT_ADAMAX ? "exp_inf" : "exp_avg_sq", .dtype = ELM_DT_F64,
         .ndim = 1, .shape = {(int64_t)o->n}, .data = o->m2},
        {.name = "step", .dtype = ELM_DT_I64, .ndim = 1, .shape = {1}, .data = &step},
    };
    static const char *kinds[] = {"adam", "adamw", "adamax"};
    char params[32];
    snprintf(params, sizeof params, "%zu", m->n_train);
    const char *kv[] = {"optimizer", kinds[o->c.kind], "num_params", params};
    return elm__st_write(path, t, 3, kv, 2);
}

elm_status elm_optim_load(elm_optim *o, const elm_model *m, const char *path) {
    elm__st_file f;
    elm_status st = elm__st_read(&f, path);
    if (st)
        return st;
    const elm__st_tensor *a = elm__st_find(&f, "exp_avg");
    const elm__st_tensor *b =
        elm__st_find(&f, o->c.kind == ELM_OPT_ADAMAX ? "exp_inf" : "exp_avg_sq");
    const elm__st_tensor *s = elm__st_find(&f, "step");
    if (!a || !b || !s || a->dtype != ELM_DT_F64 || b->dtype != ELM_DT_F64 ||
        s->dtype != ELM_DT_I64 || s->numel != 1) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: not an optimiser state for this optimiser", path);
    } else if (a->numel != m->n_train || b->numel != m->n_train) {
        st = elm__fail(ELM_ERR_SHAPE, "%s: optimiser state has %zu parameters, the model %zu",
                       path, a->numel, m->n_train);
    } else {
        memcpy(o->m1, a->data, sizeof(double) * o->n);
        memcpy(o->m2, b->data, sizeof(double) * o->n);
        int64_t step;
        memcpy(&step, s->data, sizeof step);
        o->step = (long)step;
    }
    elm__st_free(&f);
    return st;
}
