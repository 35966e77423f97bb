/*
 * model.c - configuration -> parameter table, initialisation as the reference does, routing,
 * the ELM type's operation table, and the model's small accessors.
 *
 * The table lists every tensor of the reference's state dict with its shape and offset in the
 * parameter block; load, save, the optimiser and the tests all walk it.
 */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define dsize elm__real_size

static void add_tensor(elm_model *m, const char *name, int ndim, int d0, int d1, int trainable) {
    elm__ptensor *t = &m->t[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 1;
    t->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    t->offset = m->n_total;
    t->trainable = trainable;
    m->n_total += t->numel;
    if (trainable)
        m->n_train = m->n_total;
}

/* Lays out the table for a resolved configuration and allocates the blocks (zeroed). */
static elm_status build(elm_model **out, const elm_config *cfg_in, elm_dtype dtype) {
    elm_config cfg = *cfg_in;
    elm_status st = elm_config_resolve(&cfg);
    if (st)
        return st;
    elm_model *m = calloc(1, sizeof *m);
    if (!m)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    m->ops = &elm__elm_ops;
    m->cfg = cfg;
    m->dtype = dtype;
    m->I = cfg.num_input;
    m->O = cfg.num_output;
    m->M = cfg.num_memory;
    m->H = cfg.mlp_hidden_size;
    m->R = cfg.num_branch;
    m->P = cfg.num_synapse_per_branch;
    m->S = m->R * m->P;
    m->L = cfg.mlp_num_layers + 1;
    m->K = m->R + m->M;
    for (int l = 0; l < m->L; l++) {
        m->layer_in[l] = l == 0 ? m->K : m->H;
        m->layer_out[l] = l == m->L - 1 ? m->M : m->H;
    }
    m->routed = cfg.input_to_synapse_routing != ELM_ROUTE_NONE;
    m->mask_is_bool = cfg.input_to_synapse_routing == ELM_ROUTE_NEURONIO;

    /* Trainable tensors first (see model_internal.h). */
    add_tensor(m, "_proto_w_s", 1, m->S, 0, 1);
    m->off_w_s = m->t[m->n_tensors - 1].offset;
    for (int l = 0; l < m->L; l++) {
        char name[40];
        snprintf(name, sizeof name, "mlp.network.%d.weight", 2 * l);
        add_tensor(m, name, 2, m->layer_out[l], m->layer_in[l], 1);
        m->off_w[l] = m->t[m->n_tensors - 1].offset;
        snprintf(name, sizeof name, "mlp.network.%d.bias", 2 * l);
        add_tensor(m, name, 1, m->layer_out[l], 0, 1);
        m->off_b[l] = m->t[m->n_tensors - 1].offset;
    }
    add_tensor(m, "w_y.weight", 2, m->O, m->M, 1);
    m->off_wy = m->t[m->n_tensors - 1].offset;
    add_tensor(m, "w_y.bias", 1, m->O, 0, 1);
    m->off_by = m->t[m->n_tensors - 1].offset;
    add_tensor(m, "_proto_tau_m", 1, m->M, 0, cfg.learn_memory_tau);
    m->off_tau_m = m->t[m->n_tensors - 1].offset;
    if (cfg.version == ELM_V1)
        add_tensor(m, "tau_s", 1, m->S, 0, 0);
    else
        add_tensor(m, "tau_b", 1, m->R, 0, 0);
    m->off_tau_syn = m->t[m->n_tensors - 1].offset;

    m->params = elm__alloc_aligned(m->n_total * dsize(dtype));
    m->grads = elm__alloc_aligned((m->n_train ? m->n_train : 1) * dsize(dtype));
    m->route_idx = malloc(sizeof(int32_t) * (size_t)m->S);
    m->route_mask = malloc((size_t)m->S);
    m->inv_ptr = calloc((size_t)m->I + 1, sizeof(int32_t));
    m->inv_syn = malloc(sizeof(int32_t) * (size_t)m->S);
    m->inv_branch = malloc(sizeof(int32_t) * (size_t)m->S);
    m->dv = elm__alloc_aligned((2 * (size_t)m->S + (size_t)m->R + 4 * (size_t)m->M) * dsize(dtype));
    if (!m->dv || !m->params || !m->grads || !m->route_idx || !m->route_mask || !m->inv_ptr ||
        !m->inv_syn || !m->inv_branch) {
        size_t n = m->n_total;
        elm_model_free(m);
        return elm__fail(ELM_ERR_NOMEM, "out of memory for a model of %zu parameters", n);
    }
    memset(m->params, 0, m->n_total * dsize(dtype));
    memset(m->grads, 0, (m->n_train ? m->n_train : 1) * dsize(dtype));
    for (int k = 0; k < m->S; k++) {
        m->route_idx[k] = k;
        m->route_mask[k] = 1;
    }
    *out = m;
    return ELM_OK;
}

/* Builds the inverse routing map (ascending synapse ids per input); call after the routing
 * changes. Counting sort without a scratch array: fill each input's slice from its end. */
static void build_inverse(elm_model *m) {
    memset(m->inv_ptr, 0, sizeof(int32_t) * ((size_t)m->I + 1));
    int32_t total = 0;
    for (int k = 0; k < m->S; k++)
        if (m->route_mask[k]) {
            m->inv_ptr[m->route_idx[k] + 1]++;
            total++;
        }
    for (int i = 0; i < m->I; i++)
        m->inv_ptr[i + 1] += m->inv_ptr[i]; /* inv_ptr[i + 1] = end of input i */
    for (int k = m->S - 1; k >= 0; k--)
        if (m->route_mask[k])
            m->inv_syn[--m->inv_ptr[m->route_idx[k] + 1]] = k;
    /* now inv_ptr[i + 1] = start of input i: shift down */
    for (int i = 0; i < m->I; i++)
        m->inv_ptr[i] = m->inv_ptr[i + 1];
    m->inv_ptr[m->I] = total;
    for (int32_t q = 0; q < total; q++)
        m->inv_branch[q] = m->inv_syn[q] / m->P;
}

/* The reference's routing (docs/MODEL.md section 3). */
static void make_routing(elm_model *m, elm__rng *rng) {
    const elm_config *c = &m->cfg;
    if (c->input_to_synapse_routing == ELM_ROUTE_NEURONIO) {
        int I = m->I, stride = (I + m->R - 1) / m->R;
        for (int j = 0; j < m->R; j++)
            for (int e = 0; e < m->P; e++) {
                int k = j * m->P + e, o = j * stride + e;
                int p = o < I ? o : I - 1;
                m->route_idx[k] = (p % 2) * (I / 2) + p / 2;
                m->route_mask[k] = o < I;
            }
    } else if (c->input_to_synapse_routing == ELM_ROUTE_RANDOM) {
        for (int k = 0; k < m->S; k++) {
            m->route_idx[k] = (int32_t)elm__rng_below(rng, (uint64_t)m->I);
            m->route_mask[k] = 1;
        }
    }
}

elm_status elm__model_set_routing(elm_model *m, const int64_t *idx, const double *mask) {
    for (int k = 0; k < m->S; k++) {
        if (idx[k] < 0 || idx[k] >= m->I)
            return elm__fail(ELM_ERR_FORMAT,
                             "input_to_synapse_indices[%d] = %lld is outside 0..%d", k,
                             (long long)idx[k], m->I - 1);
        m->route_idx[k] = (int32_t)idx[k];
        m->route_mask[k] = mask[k] != 0;
    }
    build_inverse(m);
    return ELM_OK;
}

int elm_model_num_routes(const elm_model *m) { return m->routed ? m->S : 0; }

elm_status elm_model_get_routing(const elm_model *m, int64_t *idx, double *mask) {
    if (!m->routed)
        return elm__fail(ELM_ERR_ARG, "the model has no input_to_synapse_routing");
    for (int k = 0; k < m->S; k++) {
        idx[k] = m->route_idx[k];
        mask[k] = m->route_mask[k] ? 1.0 : 0.0;
    }
    return ELM_OK;
}

/* Checked in full first: elm__model_set_routing stops at the first bad index, part-way. */
elm_status elm_model_set_routing(elm_model *m, const int64_t *idx, const double *mask) {
    if (!m->routed)
        return elm__fail(ELM_ERR_ARG, "the model has no input_to_synapse_routing");
    for (int k = 0; k < m->S; k++)
        if (idx[k] < 0 || idx[k] >= m->I)
            return elm__fail(ELM_ERR_ARG, "input_to_synapse_indices[%d] = %lld is outside 0..%d",
                             k, (long long)idx[k], m->I - 1);
    elm_status st = elm__model_set_routing(m, idx, mask);
    if (!st)
        elm__refresh(m); /* the used synaptic weights carry the mask */
    return st;
}

elm_status elm__model_build(elm_model **out, const elm_config *cfg, elm_dtype dtype) {
    elm_status st = build(out, cfg, dtype);
    if (st == ELM_OK && !(*out)->routed)
        build_inverse(*out);
    return st;
}

static void put(elm_model *m, size_t off, double v) {
    if (m->dtype == ELM_F64)
        ((double *)m->params)[off] = v;
    else
        ((float *)m->params)[off] = (float)v;
}

const elm__model_ops *elm__model_ops_for(elm_model_type type) {
#define ELM_X_TYPE(ops) if (ops.type == type) return &ops;
    ELM_MODEL_TYPES(ELM_X_TYPE)
#undef ELM_X_TYPE
    return NULL;
}

elm_status elm_model_create(elm_model **out, const elm_config *cfg, elm_dtype dtype,
                            uint64_t seed) {
    *out = NULL;
    const elm__model_ops *ops = elm__model_ops_for(cfg->model_type);
    if (!ops)
        return elm__fail(ELM_ERR_CONFIG, "unknown model_type %d", (int)cfg->model_type);
    return ops->create(out, cfg, dtype, seed);
}

static elm_status elm_create(elm_model **out, const elm_config *cfg, elm_dtype dtype,
                             uint64_t seed) {
    elm_model *m;
    elm_status st = build(&m, cfg, dtype);
    if (st)
        return st;
    elm__rng rng;
    elm__rng_seed(&rng, seed);
    const elm_config *c = &m->cfg;
    make_routing(m, &rng);
    build_inverse(m);
    for (int k = 0; k < m->S; k++)
        put(m, m->off_w_s + (size_t)k, c->w_s_value);
    /* nn.Linear: weight and bias uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]. */
    for (int l = 0; l <= m->L; l++) {
        int fi = l < m->L ? m->layer_in[l] : m->M, fo = l < m->L ? m->layer_out[l] : m->O;
        size_t ow = l < m->L ? m->off_w[l] : m->off_wy, ob = l < m->L ? m->off_b[l] : m->off_by;
        double bound = 1.0 / sqrt((double)fi);
        for (size_t i = 0; i < (size_t)fo * (size_t)fi; i++)
            put(m, ow + i, (2 * elm__rng_uniform(&rng) - 1) * bound);
        for (int i = 0; i < fo; i++)
            put(m, ob + (size_t)i, (2 * elm__rng_uniform(&rng) - 1) * bound);
    }
    /* tau_m: log-spaced in [tau_min, tau_max], through the inverse scaled sigmoid. */
    double tmin = c->memory_tau_min, tmax = c->memory_tau_max;
    double a = log10(tmin + 1e-6), b = log10(tmax - 1e-6);
    for (int j = 0; j < m->M; j++) {
        double e = m->M == 1 ? a : a + (b - a) * j / (m->M - 1);
        double tau = pow(10.0, e);
        double lo = tmin + 1e-6, hi = tmax - 1e-6;
        double cl = tau < lo ? lo : tau > hi ? hi : tau;
        /* With tau_max == tau_min every proto value gives the same tau: use 0. */
        double p = tmax - tmin < 2e-6 ? 0.0 : log((cl - tmin) / (tmax - cl));
        put(m, m->off_tau_m + (size_t)j, p);
    }
    int nsyn = c->version == ELM_V1 ? m->S : m->R;
    for (int k = 0; k < nsyn; k++)
        put(m, m->off_tau_syn + (size_t)k, c->tau_s_value);
    elm__refresh(m);
    *out = m;
    return ELM_OK;
}

void elm_model_free(elm_model *m) {
    if (m)
        m->ops->destroy(m);
}

static void elm_destroy(elm_model *m) {
    elm__free_aligned(m->params);
    elm__free_aligned(m->grads);
    if (m->dtype == ELM_F64)
        elm__ws_release_f64(m);
    else
        elm__ws_release_f32(m);
    elm__free_aligned(m->dv);
    free(m->route_idx);
    free(m->route_mask);
    free(m->inv_ptr);
    free(m->inv_syn);
    free(m->inv_branch);
    free(m);
}

elm_status elm_model_clone(elm_model **out, const elm_model *src, elm_dtype dtype) {
    *out = NULL;
    return src->ops->clone(out, src, dtype);
}

static elm_status elm_clone(elm_model **out, const elm_model *src, elm_dtype dtype) {
    elm_model *m;
    elm_status st = build(&m, &src->cfg, dtype);
    if (st)
        return st;
    memcpy(m->route_idx, src->route_idx, sizeof(int32_t) * (size_t)m->S);
    memcpy(m->route_mask, src->route_mask, (size_t)m->S);
    build_inverse(m);
    for (size_t i = 0; i < m->n_total; i++) {
        double v = src->dtype == ELM_F64 ? ((double *)src->params)[i]
                                         : (double)((float *)src->params)[i];
        put(m, i, v);
    }
    m->force_general = src->force_general;
    m->threads = src->threads;
    m->ckpt_stride = src->ckpt_stride;
    m->batch_split = src->batch_split;
    m->fma = src->fma && dtype == ELM_F32;
    elm__refresh(m);
    *out = m;
    return ELM_OK;
}

const elm_config *elm_model_config(const elm_model *m) {
    return &m->cfg;
}

elm_dtype elm_model_dtype(const elm_model *m) {
    return m->dtype;
}

size_t elm_model_num_params(const elm_model *m) {
    return m->n_train;
}

int elm_model_num_tensors(const elm_model *m) {
    return m->n_tensors;
}

elm_status elm_model_tensor(const elm_model *m, int i, elm_tensor *o) {
    if (i < 0 || i >= m->n_tensors)
        return elm__fail(ELM_ERR_ARG, "tensor index %d out of range", i);
    const elm__ptensor *t = &m->t[i];
    o->name = t->name;
    o->ndim = t->ndim;
    o->shape[0] = t->shape[0];
    o->shape[1] = t->shape[1];
    o->numel = t->numel;
    o->trainable = t->trainable;
    o->data = (char *)m->params + t->offset * dsize(m->dtype);
    o->grad = t->trainable ? (char *)m->grads + t->offset * dsize(m->dtype) : NULL;
    o->offset = t->offset;
    return ELM_OK;
}

void *elm_model_params(elm_model *m, size_t *count) {
    if (count)
        *count = m->n_total;
    return m->params;
}

void *elm_model_grads(elm_model *m, size_t *count) {
    if (count)
        *count = m->n_train;
    return m->grads;
}

int elm_model_find_tensor(const elm_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->t[i].name, name))
            return i;
    return -1;
}

void elm_model_zero_grad(elm_model *m) {
    memset(m->grads, 0, m->n_train * dsize(m->dtype));
}

double elm_model_clip_grad_norm(elm_model *m, double max_norm) {
    double ss = 0;
    for (size_t i = 0; i < m->n_train; i++) {
        double g = m->dtype == ELM_F64 ? ((double *)m->grads)[i]
                                       : (double)((float *)m->grads)[i];
        ss += g * g;
    }
    double norm = sqrt(ss);
    /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1. */
    if (max_norm > 0 && isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1) {
            for (size_t i = 0; i < m->n_train; i++) {
                if (m->dtype == ELM_F64)
                    ((double *)m->grads)[i] *= coef;
                else
                    ((float *)m->grads)[i] *= (float)coef;
            }
        }
    }
    return norm;
}

void elm_model_set_checkpoint_stride(elm_model *m, int stride) {
    m->ckpt_stride = stride < 0 ? 0 : stride;
}

elm_status elm_model_set_grad_groups(elm_model *m, int group_size, const elm_grad_reducer *r) {
    if (!m)
        return elm__fail(ELM_ERR_ARG, "elm_model_set_grad_groups: no model");
    if (group_size < 0 || group_size > ELM_LANES)
        return elm__fail(ELM_ERR_ARG, "gradient group size %d: must be 0 (off) to %d", group_size,
                         ELM_LANES);
    if (group_size && m->ops->type != ELM_MODEL_ELM)
        return elm__fail(ELM_ERR_ARG, "grouped gradients are computed for ELM models only, not "
                                      "for the %s",
                         m->ops->name);
    if (r && (!r->max_i32 || !r->sum_i64 || r->total_groups < 1))
        return elm__fail(ELM_ERR_ARG, "elm_model_set_grad_groups: a reducer needs max_i32, "
                                      "sum_i64 and total_groups >= 1");
    m->grad_group = group_size;
    memset(&m->grad_reducer, 0, sizeof m->grad_reducer);
    if (r && group_size)
        m->grad_reducer = *r;
    return ELM_OK;
}

elm_status elm_model_set_fma(elm_model *m, int on) {
    if (!m)
        return elm__fail(ELM_ERR_ARG, "elm_model_set_fma: no model");
    if (on && (m->ops->type != ELM_MODEL_ELM || m->dtype != ELM_F32))
        return elm__fail(ELM_ERR_ARG, "fused multiply-adds are a path of float32 ELM models, not "
                                      "of a %s %s",
                         m->dtype == ELM_F64 ? "float64" : "float32", m->ops->name);
    m->fma = on != 0;
    return ELM_OK;
}

void elm_model_set_threads(elm_model *m, int threads) {
    m->threads = threads < 0 ? 0 : threads;
    if (m->ops->set_threads)
        m->ops->set_threads(m);
}

void elm__model_set_general_path(elm_model *m, int on) {
    m->force_general = on;
    elm__refresh(m);
}

void elm__refresh(elm_model *m) {
    if (m->ops->refresh)
        m->ops->refresh(m);
}

static void elm_refresh(elm_model *m) {
    if (m->dtype == ELM_F64)
        elm__refresh_f64(m);
    else
        elm__refresh_f32(m);
}

void elm_model_refresh(elm_model *m) {
    elm__refresh(m);
}

int elm__branch_traces(const elm_model *m) {
    if (m->cfg.version == ELM_V2)
        return 1;
    if (m->force_general)
        return 0;
    for (int j = 0; j < m->R; j++)
        for (int e = 1; e < m->P; e++) {
            size_t a = m->off_tau_syn + (size_t)j * (size_t)m->P, b = a + (size_t)e;
            int same = m->dtype == ELM_F64
                           ? ((double *)m->params)[a] == ((double *)m->params)[b]
                           : ((float *)m->params)[a] == ((float *)m->params)[b];
            if (!same)
                return 0;
        }
    return 1;
}

static int elm_recognises(const elm__st_file *f) {
    (void)f;
    return 1; /* the last type offered a file: anything not claimed by another */
}

const elm__model_ops elm__elm_ops = {
    .type = ELM_MODEL_ELM,
    .name = "elm",
    .create = elm_create,
    .destroy = elm_destroy,
    .clone = elm_clone,
    .forward = elm__elm_forward,
    .forward_sparse = elm__elm_forward_sparse,
    .backward = elm__elm_backward,
    .refresh = elm_refresh,
    .set_threads = NULL,
    .recognises = elm_recognises,
    .from_st = elm__elm_from_st,
    .to_st = elm__elm_to_st,
    .streams = 1,
};
