/*
 * model_io.c - models in files: elm_model_load and elm_model_save for every model type, and the
 * ELM's mapping onto safetensors under the reference's tensor names.
 *
 * Loading reads and parses the file once, then offers it to the model types in turn
 * (ELM_MODEL_TYPES): the first that recognises it builds the model from the parsed tensors.
 * Saving writes the type's safetensors file, and in a folder model_config.json beside it.
 */
#include "model_internal.h"
#include "pt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Python-repr-like spelling of a double: the fewest significant digits that read back exactly,
 * fixed notation for exponents -4..15 ("150.0", not "1.5e+02"), always with a '.0'.
 */
static void repr_double(char *buf, size_t n, double v) {
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, n, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, n, "%.*e", p - 1, v);
    const char *ep = strchr(buf, 'e');
    int e = ep ? atoi(ep + 1) : 0;
    if (ep && e >= -4 && e < 16) {
        snprintf(buf, n, "%.*f", p - 1 - e > 0 ? p - 1 - e : 0, v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, n, "%.17g", v);
    }
    if (!strpbrk(buf, ".eni"))
        strncat(buf, ".0", n - strlen(buf) - 1);
}

/*
 * Real values in the parameter table of a resolved configuration (the tensors model.c lays out:
 * w_s, the MLP's weights and biases, w_y, tau_m, and tau_s (S) or tau_b (R)). The configuration's
 * limits keep this far below 2^64.
 */
static uint64_t config_values(const elm_config *c) {
    uint64_t S = (uint64_t)c->num_branch * (uint64_t)c->num_synapse_per_branch;
    uint64_t R = (uint64_t)c->num_branch, M = (uint64_t)c->num_memory;
    uint64_t H = (uint64_t)c->mlp_hidden_size, O = (uint64_t)c->num_output;
    uint64_t n = S + O * M + O + M + (c->version == ELM_V2 ? R : S);
    int L = c->mlp_num_layers + 1;
    for (int l = 0; l < L; l++) {
        uint64_t in = l == 0 ? R + M : H, out = l == L - 1 ? M : H;
        n += out * in + out;
    }
    return n;
}

/* ---- Loading ---- */

/* The safetensors file and the model_config.json that may go with it (malloc'd): for a folder,
 * the two files in it; for a file, the file and model_config.json beside it. */
static elm_status model_paths(const char *path, char **st_path, char **cfg_path) {
    *st_path = *cfg_path = NULL;
    if (elm__is_dir(path)) {
        *st_path = elm__model_file_in_dir(path); /* or a .pt state dict */
        *cfg_path = elm__path_join(path, "model_config.json");
    } else {
        *st_path = elm__strdup(path);
        char *dir = elm__strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash) {
            *slash = 0;
            *cfg_path = elm__path_join(dir, "model_config.json");
        } else if (dir) {
            *cfg_path = elm__strdup("model_config.json");
        }
        free(dir);
    }
    if (!*st_path || !*cfg_path) {
        free(*st_path);
        free(*cfg_path);
        *st_path = *cfg_path = NULL;
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    return ELM_OK;
}

elm_status elm_model_load(elm_model **out, const char *path, elm_dtype dtype) {
    *out = NULL;
    if (!path)
        return elm__fail(ELM_ERR_ARG, "elm_model_load: path is NULL");
    char *st_path, *cfg_path;
    elm_status st = model_paths(path, &st_path, &cfg_path);
    if (st)
        return st;
    elm__st_file f;
    st = elm__tensors_read(&f, st_path); /* safetensors or torch.save */
    if (!st) {
        const elm__model_ops *type = NULL;
#define ELM_X_TYPE(ops)                                                                            \
    if (!type && ops.recognises(&f))                                                               \
        type = &ops;
        ELM_MODEL_TYPES(ELM_X_TYPE)
#undef ELM_X_TYPE
        st = type->from_st(out, &f, cfg_path, elm__is_dir(path), dtype);
        elm__st_free(&f);
    }
    free(st_path);
    free(cfg_path);
    return st;
}

/*
 * A folder whose model file's metadata hold a configuration and whose model_config.json says
 * otherwise was two models: the metadata's when the path named the file, the JSON's when it
 * named the folder (D20 of issue 15). Named by its folder, such a pair is now refused with the
 * first option on which they differ. A file named directly is read as it describes itself (the
 * JSON beside it may be another model's: a folder can hold several files).
 */
static elm_status config_agree(const elm_config *meta, const elm_config *json, const char *st_path,
                               const char *cfg_path) {
    elm_config a = *meta, b = *json;
    char *ja = elm_config_resolve(&a) == ELM_OK ? elm_config_to_json(&a) : NULL;
    char *jb = elm_config_resolve(&b) == ELM_OK ? elm_config_to_json(&b) : NULL;
    cJSON *ca = ja ? cJSON_Parse(ja) : NULL, *cb = jb ? cJSON_Parse(jb) : NULL;
    char *va = NULL, *vb = NULL;
    const cJSON *d = ca && cb ? elm__json_first_difference(ca, cb, NULL, &va, &vb) : NULL;
    elm_status st = ELM_OK;
    if (d)
        st = elm__fail(ELM_ERR_CONFIG,
                       "%s: its metadata say %s = %.40s but %s says %.40s: two different models "
                       "(fix or remove one of them)",
                       st_path, d->string, va, cfg_path, vb);
    free(va);
    free(vb);
    cJSON_Delete(ca);
    cJSON_Delete(cb);
    free(ja);
    free(jb);
    return st;
}

/* The ELM's configuration: __metadata__ (unknown keys there are provenance, allowed), then
 * model_config.json when the model was named by its folder (it must then agree with metadata
 * that hold a configuration) or the metadata lack one. The version, when neither says, follows
 * from which time-constant tensor the file holds. */
static elm_status config_from_st(elm_config *cfg, const elm__st_file *f, const char *cfg_path,
                                 int in_folder) {
    elm_config_default(cfg, 0, 0, 0);
    int have_cfg = 0, have_version = 0;
    const cJSON *meta = (const cJSON *)f->meta;
    for (const cJSON *kv = meta ? meta->child : NULL; kv; kv = kv->next) {
        elm_status st = elm_config_set(cfg, kv->string, kv->valuestring, f->path);
        if (st == ELM_ERR_CONFIG && strstr(elm_last_error(), "unknown option"))
            continue;
        if (st)
            return st;
        have_cfg |= !strcmp(kv->string, "num_input");
        have_version |= !strcmp(kv->string, "elm_version");
    }
    struct stat probe; /* present? (elm__read_file refuses a non-file) */
    if (cfg_path && (in_folder || !have_cfg) && stat(cfg_path, &probe) == 0) {
        char *js;
        size_t len;
        elm_status st = elm__read_file(cfg_path, 1 << 20, &js, &len);
        if (st)
            return st;
        elm_config fc = *cfg;
        st = elm_config_from_json(&fc, js, cfg_path);
        free(js);
        if (!st && have_cfg)
            st = config_agree(cfg, &fc, f->path, cfg_path);
        if (st)
            return st;
        *cfg = fc;
        have_cfg = 1;
    }
    if (!have_cfg || cfg->num_input < 1)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: no model configuration (need num_input etc. in __metadata__ or a "
                         "model_config.json beside it)",
                         f->path);
    if (!have_version) {
        if (elm__st_find(f, "tau_b"))
            cfg->version = ELM_V2;
        else if (elm__st_find(f, "tau_s"))
            cfg->version = ELM_V1;
    }
    return ELM_OK;
}

/* The configuration decides how much the model allocates. Before allocating, check that the file
 * holds about that many values: a few bytes claiming num_memory = 20000 must not cost gigabytes
 * (tensors cannot overlap, so the file's size bounds the sum). A small shortfall goes on to the
 * tensor-by-tensor checks, whose messages say what exactly is wrong. */
static elm_status check_value_budget(const elm__st_file *f, const elm_config *cfg) {
    elm_config rc = *cfg;
    size_t have = 0;
    for (int i = 0; i < f->n; i++)
        if (elm__dtype_is_real(f->t[i].dtype))
            have += f->t[i].numel;
    uint64_t need = elm_config_resolve(&rc) == ELM_OK ? config_values(&rc) : 0;
    if (need > have + ((uint64_t)1 << 20))
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: the configuration needs %llu parameter values but the file holds "
                         "only %zu (a truncated file, or a configuration that is not its own)",
                         f->path, (unsigned long long)need, have);
    return ELM_OK;
}

/*
 * Checks one tensor's values. _proto_tau_m = +inf or -inf are the reference's own tau_max and
 * tau_min: its float32 inverse_scaled_sigmoid gives +inf for the memory unit at tau_max whenever
 * tau_max - 1e-6 rounds to tau_max (tau_max above about 16); the sigmoid maps them to exactly 1
 * and 0, with gradient 0, as in the reference. Time constants tau_s and tau_b may be any finite
 * value: kappa = exp(-dt / max(tau, 1e-6)) clamps them as the reference does. NaN, and every
 * other non-finite value, is refused.
 */
static elm_status check_values(const elm_model *m, const elm__ptensor *pt, const char *path) {
    int inf_ok = !strcmp(pt->name, "_proto_tau_m");
    for (size_t k = 0; k < pt->numel; k++) {
        double v = m->dtype == ELM_F64 ? ((double *)m->params)[pt->offset + k]
                                       : (double)((float *)m->params)[pt->offset + k];
        if (isnan(v) || (!isfinite(v) && !inf_ok))
            return elm__fail(ELM_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at %zu",
                             path, pt->name, k);
    }
    return ELM_OK;
}

/* Every tensor of the model's table from the file: present, of its shape, finite. */
static elm_status load_params(elm_model *m, const elm__st_file *f) {
    const char *path = f->path;
    size_t rs = elm__real_size(m->dtype);
    for (int i = 0; i < m->n_tensors; i++) {
        const elm__ptensor *pt = &m->t[i];
        const elm__st_tensor *t = elm__st_find(f, pt->name);
        if (!t)
            return elm__fail(ELM_ERR_FORMAT, "%s: missing tensor '%s' (a %s model needs it)", path,
                             pt->name, m->cfg.version == ELM_V2 ? "v2" : "v1");
        int ok = (size_t)t->numel == pt->numel && t->ndim == pt->ndim &&
                 t->shape[0] == pt->shape[0] && (pt->ndim < 2 || t->shape[1] == pt->shape[1]);
        if (!ok && pt->ndim < 2)
            return elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' has %zu elements, expected [%d]", path,
                             pt->name, t->numel, pt->shape[0]);
        if (!ok)
            return elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' is [%lld%s%lld], expected [%d,%d]",
                             path, pt->name, (long long)t->shape[0], t->ndim > 1 ? "," : "",
                             t->ndim > 1 ? (long long)t->shape[1] : 0LL, pt->shape[0],
                             pt->shape[1]);
        elm_status st = elm__st_copy_real(f, t, (char *)m->params + pt->offset * rs, m->dtype);
        if (!st)
            st = check_values(m, pt, path);
        if (st)
            return st;
    }
    return ELM_OK;
}

/* A routed model's input_to_synapse_indices (integers) and valid_indices_mask (any numbers). */
static elm_status load_routing(elm_model *m, const elm__st_tensor *ti, const elm__st_tensor *tm,
                               const char *path) {
    if (!ti || !tm)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: a routed model needs input_to_synapse_indices and valid_indices_mask",
                         path);
    if (ti->numel != (size_t)m->S || tm->numel != (size_t)m->S || ti->ndim != 1 || tm->ndim != 1)
        return elm__fail(ELM_ERR_SHAPE, "%s: routing tensors must be [%d]", path, m->S);
    if (elm__dtype_is_real(ti->dtype) || ti->dtype == ELM_DT_BOOL)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: input_to_synapse_indices must be an integer tensor (I64), not %s",
                         path, elm__dtype_name(ti->dtype));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)m->S);
    double *mask = malloc(sizeof(double) * (size_t)m->S);
    if (!idx || !mask) {
        free(idx);
        free(mask);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < m->S; k++) {
        /* I64 is read as is: through a double, 2^63 would not convert back (UB). Narrower
         * integers are exact in a double. */
        if (ti->dtype == ELM_DT_I64)
            memcpy(&idx[k], (const char *)ti->data + 8 * (size_t)k, 8);
        else
            idx[k] = (int64_t)elm__dtype_get(ti->dtype, ti->data, (size_t)k);
        mask[k] = elm__dtype_get(tm->dtype, tm->data, (size_t)k);
    }
    m->mask_is_bool = tm->dtype == ELM_DT_BOOL;
    elm_status st = elm__model_set_routing(m, idx, mask);
    free(idx);
    free(mask);
    return st ? elm__fail_prefix(st, path) : ELM_OK;
}

/* Anything in the file that the model does not know is refused, like the reference's
 * load_state_dict(strict=True). */
static elm_status check_known(const elm_model *m, const elm__st_file *f) {
    for (int i = 0; i < f->n; i++) {
        const char *nm = f->t[i].name;
        if (elm_model_find_tensor(m, nm) < 0 && strcmp(nm, "input_to_synapse_indices") &&
            strcmp(nm, "valid_indices_mask"))
            return elm__fail(ELM_ERR_FORMAT, "%s: unexpected tensor '%s' for this configuration",
                             f->path, nm);
    }
    return ELM_OK;
}

elm_status elm__elm_from_st(elm_model **out, const elm__st_file *f, const char *cfg_path,
                            int in_folder, elm_dtype dtype) {
    elm_config cfg;
    elm_model *m = NULL;
    elm_status st = config_from_st(&cfg, f, cfg_path, in_folder);
    if (!st)
        st = check_value_budget(f, &cfg);
    if (!st && (st = elm__model_build(&m, &cfg, dtype)) != ELM_OK)
        elm__fail_prefix(st, f->path);
    if (!st)
        st = load_params(m, f);
    const elm__st_tensor *ti = elm__st_find(f, "input_to_synapse_indices");
    const elm__st_tensor *tm = elm__st_find(f, "valid_indices_mask");
    if (!st && m->routed)
        st = load_routing(m, ti, tm, f->path);
    else if (!st && ((ti && ti->numel) || (tm && tm->numel)))
        st = elm__fail(ELM_ERR_FORMAT,
                       "%s: routing tensors are non-empty but the configuration has no "
                       "input_to_synapse_routing",
                       f->path);
    if (!st)
        st = check_known(m, f);
    if (st) {
        elm_model_free(m);
        return st;
    }
    elm__refresh(m);
    *out = m;
    return ELM_OK;
}

/* ---- Saving ---- */

/* The configuration as __metadata__ pairs kv[2i], kv[2i + 1] (values spelt as Python's repr, in
 * vals), as the reference's files carry it. Returns the number of pairs. */
static int config_metadata(const elm_config *c, char vals[20][48], const char *kv[48]) {
    int nk = 0;
#define META(key, fmtexpr)                                                                         \
    do {                                                                                           \
        kv[2 * nk] = key;                                                                          \
        fmtexpr;                                                                                   \
        kv[2 * nk + 1] = vals[nk];                                                                 \
        nk++;                                                                                      \
    } while (0)
#define INT(key, v) META(key, snprintf(vals[nk], sizeof vals[nk], "%d", (int)(v)))
#define DBL(key, v) META(key, repr_double(vals[nk], sizeof vals[nk], (v)))
#define STR(key, v) META(key, snprintf(vals[nk], sizeof vals[nk], "%s", (v)))
    STR("elm_version", c->version == ELM_V2 ? "v2" : "v1");
    INT("num_input", c->num_input);
    INT("num_output", c->num_output);
    INT("num_memory", c->num_memory);
    DBL("lambda_value", c->lambda_value);
    INT("mlp_num_layers", c->mlp_num_layers);
    INT("mlp_hidden_size", c->mlp_hidden_size);
    STR("mlp_activation", c->mlp_activation == ELM_ACT_SILU ? "silu" : "relu");
    DBL(c->version == ELM_V2 ? "tau_b_value" : "tau_s_value", c->tau_s_value);
    DBL("memory_tau_min", c->memory_tau_min);
    DBL("memory_tau_max", c->memory_tau_max);
    STR("learn_memory_tau", c->learn_memory_tau ? "true" : "false");
    DBL("w_s_value", c->w_s_value);
    INT("num_branch", c->num_branch);
    INT("num_synapse_per_branch", c->num_synapse_per_branch);
    STR("input_to_synapse_routing", c->input_to_synapse_routing == ELM_ROUTE_NONE ? "null"
                                    : c->input_to_synapse_routing == ELM_ROUTE_NEURONIO
                                        ? "neuronio_routing"
                                        : "random_routing");
    DBL("delta_t", c->delta_t);
#undef META
#undef INT
#undef DBL
#undef STR
    return nk;
}

elm_status elm__elm_to_st(const elm_model *m, const char *path) {
    elm__st_out t[ELM_MAX_TENSORS + 2];
    int n = 0;
    size_t rs = m->dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    elm__dtype rdt = m->dtype == ELM_F64 ? ELM_DT_F64 : ELM_DT_F32;
    for (int i = 0; i < m->n_tensors; i++) {
        const elm__ptensor *p = &m->t[i];
        t[n] = (elm__st_out){.name = p->name, .dtype = rdt, .ndim = p->ndim,
                             .data = (char *)m->params + p->offset * rs};
        t[n].shape[0] = p->shape[0];
        t[n].shape[1] = p->shape[1];
        n++;
    }
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)m->S);
    int64_t *mask64 = malloc(sizeof(int64_t) * (size_t)m->S);
    uint8_t *maskb = malloc((size_t)m->S);
    if (!idx || !mask64 || !maskb) {
        free(idx);
        free(mask64);
        free(maskb);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < m->S; k++) {
        idx[k] = m->route_idx[k];
        mask64[k] = m->route_mask[k];
        maskb[k] = m->route_mask[k];
    }
    static const double empty = 0;
    if (m->routed) {
        t[n++] = (elm__st_out){.name = "input_to_synapse_indices", .dtype = ELM_DT_I64,
                               .ndim = 1, .shape = {m->S}, .data = idx};
        t[n++] = (elm__st_out){.name = "valid_indices_mask",
                               .dtype = m->mask_is_bool ? ELM_DT_BOOL : ELM_DT_I64, .ndim = 1,
                               .shape = {m->S}, .data = m->mask_is_bool ? (void *)maskb : mask64};
    } else {
        /* The reference registers these as empty tensors even without routing. */
        t[n++] = (elm__st_out){.name = "input_to_synapse_indices", .dtype = rdt, .ndim = 1,
                               .shape = {0}, .data = &empty};
        t[n++] = (elm__st_out){.name = "valid_indices_mask", .dtype = rdt, .ndim = 1,
                               .shape = {0}, .data = &empty};
    }
    /* Metadata: one string per configuration key (Python repr spelling), the JSON, provenance. */
    const elm_config *c = &m->cfg;
    char vals[20][48];
    const char *kv[48];
    int nk = config_metadata(c, vals, kv);
    char *js = elm_config_to_json(c);
    kv[2 * nk] = "model_config_json";
    kv[2 * nk + 1] = js ? js : "{}";
    nk++;
    kv[2 * nk] = "format";
    kv[2 * nk + 1] = "pt";
    nk++;
    kv[2 * nk] = "written_by";
    kv[2 * nk + 1] = "elm " ELM_VERSION_STRING;
    nk++;
    elm_status st = elm__tensors_write(path, t, n, kv, nk);
    free(js);
    free(idx);
    free(mask64);
    free(maskb);
    return st;
}

elm_status elm_model_save(const elm_model *m, const char *path) {
    if (!(elm__is_dir(path) || elm__ends_with(path, "/"))) {
        elm_status st = m->ops->to_st(m, path);
        /* A .pt state dict carries no configuration: model_config.json goes beside it. */
        if (!st && elm__ends_with(path, ".pt"))
            st = elm__pt_write_config(m, path);
        return st;
    }
    elm_status st = elm__mkdir_p(path);
    if (st)
        return st;
    char *p = elm__path_join(path, "model.safetensors");
    char *q = elm__path_join(path, "model_config.json");
    char *js = elm_config_to_json(&m->cfg);
    st = (!p || !q || !js) ? elm__fail(ELM_ERR_NOMEM, "out of memory") : m->ops->to_st(m, p);
    if (!st)
        st = elm__json_write_text(q, js);
    free(p);
    free(q);
    free(js);
    return st;
}
