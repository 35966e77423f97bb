/*
 * safetensors.c - the safetensors format (8-byte little-endian header length, JSON header, raw
 * little-endian data), and loading and saving models in it under the reference's tensor names.
 *
 * Reading checks everything a hostile file could lie about before touching data: header length
 * within the file, every dtype known, every shape non-negative with a product that cannot
 * overflow, every data range inside the buffer and of exactly shape x dtype bytes.
 */
#include "model_internal.h"

#include "elm_lstm.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_MAX_FILE ((size_t)16 << 30)
#define ST_MAX_HEADER ((size_t)100 << 20)

static int parse_dtype(const char *s, elm__dtype *t) {
    static const struct {
        const char *n;
        elm__dtype t;
    } map[] = {{"F16", ELM_DT_F16}, {"F32", ELM_DT_F32}, {"F64", ELM_DT_F64},
               {"I8", ELM_DT_I8},   {"U8", ELM_DT_U8},   {"I16", ELM_DT_I16},
               {"I32", ELM_DT_I32}, {"I64", ELM_DT_I64}, {"BOOL", ELM_DT_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].n)) {
            *t = map[i].t;
            return 1;
        }
    return 0;
}

void elm__st_free(elm__st_file *f) {
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    free(f->t);
    free(f->buf);
    cJSON_Delete((cJSON *)f->meta);
    memset(f, 0, sizeof *f);
}

static int get_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (uint64_t)v->valuedouble;
    return 1;
}

/* Orders tensors by where their data starts, then where it ends. */
static int cmp_offset(const void *a, const void *b) {
    const elm__st_tensor *x = *(const elm__st_tensor *const *)a;
    const elm__st_tensor *y = *(const elm__st_tensor *const *)b;
    const char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    size_t bx = x->numel * elm__dtype_size(x->dtype), by = y->numel * elm__dtype_size(y->dtype);
    return bx < by ? -1 : bx > by;
}

elm_status elm__st_read(elm__st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    char *buf;
    size_t len;
    elm_status st = elm__read_file(path, ST_MAX_FILE, &buf, &len);
    if (st) {
        f->path = path;
        return st;
    }
    return elm__st_parse(f, buf, len, path);
}

elm_status elm__st_parse(elm__st_file *f, char *buf, size_t len, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->buf = buf;
    f->len = len;
    elm_status st = ELM_OK;
    cJSON *root = NULL;
    char *hdr = NULL;
    const elm__st_tensor **order = NULL;
    if (f->len < 8) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", path,
                       f->len);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | (unsigned char)f->buf[i];
    if (n > ST_MAX_HEADER || n > f->len - 8) {
        st = elm__fail(ELM_ERR_FORMAT,
                       "%s: header length %llu does not fit in the file (%zu bytes): truncated "
                       "or not a safetensors file",
                       path, (unsigned long long)n, f->len);
        goto fail;
    }
    hdr = malloc((size_t)n + 1);
    if (!hdr) {
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    memcpy(hdr, f->buf + 8, (size_t)n);
    hdr[n] = 0;
    root = cJSON_Parse(hdr);
    if (!cJSON_IsObject(root)) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto fail;
    }
    const char *data = f->buf + 8 + n;
    size_t dlen = f->len - 8 - (size_t)n;
    int count = cJSON_GetArraySize(root);
    f->t = calloc((size_t)count + 1, sizeof *f->t);
    if (!f->t) {
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                st = elm__fail(ELM_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                goto fail;
            }
            for (cJSON *kv = it->child; kv; kv = kv->next)
                if (!cJSON_IsString(kv)) {
                    st = elm__fail(ELM_ERR_FORMAT, "%s: __metadata__['%s'] is not a string", path,
                                   kv->string);
                    goto fail;
                }
            f->meta = cJSON_DetachItemViaPointer(root, it);
            break;
        }
    }
    for (cJSON *it = root->child; it; it = it->next) {
        elm__st_tensor *t = &f->t[f->n];
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
            cJSON_GetArraySize(off) != 2) {
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: tensor '%s' lacks a dtype, shape or two data_offsets", path,
                           it->string);
            goto fail;
        }
        if (!parse_dtype(dt->valuestring, &t->dtype)) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' has unsupported dtype '%s'", path,
                           it->string, dt->valuestring);
            goto fail;
        }
        int nd = cJSON_GetArraySize(sh);
        if (nd > 8) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most 8)", path,
                           it->string, nd);
            goto fail;
        }
        size_t numel = 1;
        for (int d = 0; d < nd; d++) {
            uint64_t v;
            if (!get_u64(cJSON_GetArrayItem(sh, d), &v) || v > ELM_MAX_ALLOC ||
                (v && numel > ELM_MAX_ALLOC / v)) {
                st = elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' has an invalid or absurd shape",
                               path, it->string);
                goto fail;
            }
            t->shape[d] = (int64_t)v;
            numel *= (size_t)v;
        }
        uint64_t b, e;
        if (!get_u64(cJSON_GetArrayItem(off, 0), &b) || !get_u64(cJSON_GetArrayItem(off, 1), &e) ||
            e < b || e > dlen) {
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: tensor '%s' has data_offsets outside the %zu data bytes "
                           "(truncated file?)",
                           path, it->string, dlen);
            goto fail;
        }
        if (e - b != numel * elm__dtype_size(t->dtype)) {
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: tensor '%s' spans %llu bytes but its shape and dtype need %zu",
                           path, it->string, (unsigned long long)(e - b),
                           numel * elm__dtype_size(t->dtype));
            goto fail;
        }
        t->name = elm__strdup(it->string);
        if (!t->name) {
            st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        t->ndim = nd;
        t->numel = numel;
        t->data = data + b;
        f->n++;
    }
    /* Tensors may not share bytes (the format forbids it, and it would let a small file pose as
     * many large tensors): sorted by offset, each must start at or after the previous end. */
    if (f->n > 1) {
        order = malloc(sizeof *order * (size_t)f->n);
        if (!order) {
            st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        for (int i = 0; i < f->n; i++)
            order[i] = &f->t[i];
        qsort(order, (size_t)f->n, sizeof *order, cmp_offset);
        const char *end = NULL;
        const elm__st_tensor *prev = NULL;
        for (int i = 0; i < f->n; i++) {
            const elm__st_tensor *t = order[i];
            size_t bytes = t->numel * elm__dtype_size(t->dtype);
            if (!bytes)
                continue;
            if (prev && (const char *)t->data < end) {
                st = elm__fail(ELM_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data",
                               path, prev->name, t->name);
                goto fail;
            }
            end = (const char *)t->data + bytes;
            prev = t;
        }
        free(order);
        order = NULL;
    }
    free(hdr);
    cJSON_Delete(root);
    return ELM_OK;
fail:
    free(order);
    free(hdr);
    cJSON_Delete(root);
    elm__st_free(f);
    return st;
}

const elm__st_tensor *elm__st_find(const elm__st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

elm_status elm__st_copy_real(const elm__st_file *f, const elm__st_tensor *t, void *dst,
                             elm_dtype dtype) {
    if (t->dtype != ELM_DT_F16 && t->dtype != ELM_DT_F32 && t->dtype != ELM_DT_F64)
        return elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' is %s, expected a float type", f->path,
                         t->name, elm__dtype_name(t->dtype));
    elm_array a = {.dtype = t->dtype, .numel = t->numel, .data = (void *)t->data};
    for (size_t i = 0; i < t->numel; i++) {
        double v = elm_array_get(&a, i);
        if (dtype == ELM_F64)
            ((double *)dst)[i] = v;
        else
            ((float *)dst)[i] = (float)v;
    }
    return ELM_OK;
}

static int cmp_out(const void *a, const void *b) {
    const elm__st_out *x = a, *y = b;
    size_t sx = elm__dtype_size(x->dtype), sy = elm__dtype_size(y->dtype);
    if (sx != sy)
        return sx > sy ? -1 : 1; /* larger alignment first, as the reference writer does */
    return strcmp(x->name, y->name);
}

elm_status elm__st_write(const char *path, const elm__st_out *tin, int n, const char *const *meta,
                         int n_meta) {
    elm__st_out *t = malloc(sizeof *t * (size_t)(n ? n : 1));
    if (!t)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    memcpy(t, tin, sizeof *t * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, cmp_out);
    cJSON *root = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        cJSON *o = cJSON_AddObjectToObject(root, t[i].name);
        cJSON_AddStringToObject(o, "dtype", elm__dtype_name(t[i].dtype));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
            numel *= (size_t)t[i].shape[d];
        }
        size_t bytes = numel * elm__dtype_size(t[i].dtype);
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    if (n_meta > 0) {
        cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++)
            cJSON_AddStringToObject(md, meta[2 * i], meta[2 * i + 1]);
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!js) {
        free(t);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
    elm__atomic_file af;
    elm_status st = elm__atomic_open(&af, path);
    if (st) {
        free(js);
        free(t);
        return st;
    }
    unsigned char le[8];
    uint64_t H = hl + pad;
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(H >> (8 * i));
    int ok = fwrite(le, 1, 8, af.f) == 8 && fwrite(js, 1, hl, af.f) == hl;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', af.f) != EOF;
    for (int i = 0; ok && i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        size_t bytes = numel * elm__dtype_size(t[i].dtype);
        ok = bytes == 0 || fwrite(t[i].data, 1, bytes, af.f) == bytes;
    }
    free(js);
    free(t);
    if (!ok) {
        elm__atomic_abort(&af);
        return elm__fail(ELM_ERR_IO, "%s: write failed (disk full?)", path);
    }
    return elm__atomic_commit(&af);
}

/* ---- Models ---- */

elm_status elm__model_build(elm_model **out, const elm_config *cfg, elm_dtype dtype);
elm_status elm__model_set_routing(elm_model *m, const int64_t *idx, const double *mask);

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

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

elm_status elm_model_load(elm_model **out, const char *path, elm_dtype dtype) {
    *out = NULL;
    if (elm_lstm_file_is_lstm(path))
        return elm__lstm_model_load(out, path, dtype);
    char *st_path = NULL, *cfg_path = NULL;
    if (elm__is_dir(path)) {
        st_path = elm__path_join(path, "model.safetensors");
        cfg_path = elm__path_join(path, "model_config.json");
    } else {
        st_path = elm__strdup(path);
        /* A bare file may have its model_config.json beside it. */
        char *dir = elm__strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash) {
            *slash = 0;
            cfg_path = elm__path_join(dir, "model_config.json");
        } else if (dir) {
            cfg_path = elm__strdup("model_config.json");
        }
        free(dir);
    }
    elm__st_file f;
    elm_model *m = NULL;
    elm_status st = elm__st_read(&f, st_path);
    if (st) {
        free(st_path);
        free(cfg_path);
        return st;
    }
    elm_config cfg;
    elm_config_default(&cfg, 0, 0, 0);
    int have_cfg = 0, have_version = 0;
    cJSON *meta = (cJSON *)f.meta;
    for (cJSON *kv = meta ? meta->child : NULL; kv; kv = kv->next) {
        st = elm_config_set(&cfg, kv->string, kv->valuestring, st_path);
        if (st == ELM_ERR_CONFIG && strstr(elm_last_error(), "unknown option")) {
            st = ELM_OK; /* provenance and other entries are allowed in __metadata__ */
            continue;
        }
        if (st)
            goto fail;
        have_cfg |= !strcmp(kv->string, "num_input");
        have_version |= !strcmp(kv->string, "elm_version");
    }
    /* model_config.json: required in a folder without metadata, preferred when present. */
    if (cfg_path && (elm__is_dir(path) || !have_cfg)) {
        struct stat probe;
        if (stat(cfg_path, &probe) == 0) { /* present (elm__read_file refuses a non-file) */
            char *js;
            size_t len;
            st = elm__read_file(cfg_path, 1 << 20, &js, &len);
            if (st)
                goto fail;
            st = elm_config_from_json(&cfg, js, cfg_path);
            free(js);
            if (st)
                goto fail;
            have_cfg = 1;
        }
    }
    if (!have_cfg || cfg.num_input < 1) {
        st = elm__fail(ELM_ERR_FORMAT,
                       "%s: no model configuration (need num_input etc. in __metadata__ or a "
                       "model_config.json beside it)",
                       st_path);
        goto fail;
    }
    if (!have_version) {
        if (elm__st_find(&f, "tau_b"))
            cfg.version = ELM_V2;
        else if (elm__st_find(&f, "tau_s"))
            cfg.version = ELM_V1;
    }
    /* The configuration decides how much the model allocates. Before allocating, check that the
     * file holds about that many values: a few bytes claiming num_memory = 20000 must not cost
     * gigabytes (tensors cannot overlap, so the file's size bounds the sum). A small shortfall
     * goes on to the tensor-by-tensor checks below, whose messages say what exactly is wrong. */
    {
        elm_config rc = cfg;
        size_t have = 0;
        for (int i = 0; i < f.n; i++)
            if (f.t[i].dtype == ELM_DT_F16 || f.t[i].dtype == ELM_DT_F32 ||
                f.t[i].dtype == ELM_DT_F64)
                have += f.t[i].numel;
        uint64_t need = elm_config_resolve(&rc) == ELM_OK ? config_values(&rc) : 0;
        if (need > have + ((uint64_t)1 << 20)) {
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: the configuration needs %llu parameter values but the file holds "
                           "only %zu (a truncated file, or a configuration that is not its own)",
                           st_path, (unsigned long long)need, have);
            goto fail;
        }
    }
    st = elm__model_build(&m, &cfg, dtype);
    if (st) {
        elm__fail_prefix(st, st_path);
        goto fail;
    }
    size_t rs = dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    for (int i = 0; i < m->n_tensors; i++) {
        const elm__ptensor *pt = &m->t[i];
        const elm__st_tensor *t = elm__st_find(&f, pt->name);
        if (!t) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: missing tensor '%s' (a %s model needs it)",
                           st_path, pt->name, cfg.version == ELM_V2 ? "v2" : "v1");
            goto fail;
        }
        int ok = (size_t)t->numel == pt->numel && t->ndim == pt->ndim &&
                 t->shape[0] == pt->shape[0] && (pt->ndim < 2 || t->shape[1] == pt->shape[1]);
        if (!ok) {
            st = elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' is [%lld%s%lld], expected [%d%s%d]",
                           st_path, pt->name, (long long)t->shape[0], t->ndim > 1 ? "," : "",
                           t->ndim > 1 ? (long long)t->shape[1] : 0LL, pt->shape[0],
                           pt->ndim > 1 ? "," : "", pt->ndim > 1 ? pt->shape[1] : 0);
            if (pt->ndim < 2)
                elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' has %zu elements, expected [%d]",
                          st_path, pt->name, t->numel, pt->shape[0]);
            goto fail;
        }
        st = elm__st_copy_real(&f, t, (char *)m->params + pt->offset * rs, dtype);
        if (st)
            goto fail;
        for (size_t k = 0; k < pt->numel; k++) {
            double v = dtype == ELM_F64 ? ((double *)m->params)[pt->offset + k]
                                        : (double)((float *)m->params)[pt->offset + k];
            if (!isfinite(v)) {
                st = elm__fail(ELM_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at %zu",
                               st_path, pt->name, k);
                goto fail;
            }
            /* Synaptic time constants divide delta_t: one <= 0 makes the traces grow without
             * bound (decay exp(-dt/tau) > 1) instead of leaking. */
            if ((!strcmp(pt->name, "tau_s") || !strcmp(pt->name, "tau_b")) && !(v > 0)) {
                st = elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' holds %g at %zu; time constants "
                                               "must be > 0 ms",
                               st_path, pt->name, v, k);
                goto fail;
            }
        }
    }
    /* Routing tensors. */
    const elm__st_tensor *ti = elm__st_find(&f, "input_to_synapse_indices");
    const elm__st_tensor *tm = elm__st_find(&f, "valid_indices_mask");
    if (m->routed) {
        if (!ti || !tm) {
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: a routed model needs input_to_synapse_indices and "
                           "valid_indices_mask",
                           st_path);
            goto fail;
        }
        if (ti->numel != (size_t)m->S || tm->numel != (size_t)m->S || ti->ndim != 1 ||
            tm->ndim != 1) {
            st = elm__fail(ELM_ERR_SHAPE, "%s: routing tensors must be [%d]", st_path, m->S);
            goto fail;
        }
        if (ti->dtype == ELM_DT_F16 || ti->dtype == ELM_DT_F32 || ti->dtype == ELM_DT_F64 ||
            ti->dtype == ELM_DT_BOOL) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: input_to_synapse_indices must be an integer "
                                           "tensor (I64), not %s",
                           st_path, elm__dtype_name(ti->dtype));
            goto fail;
        }
        int64_t *idx = malloc(sizeof(int64_t) * (size_t)m->S);
        double *mask = malloc(sizeof(double) * (size_t)m->S);
        if (!idx || !mask) {
            free(idx);
            free(mask);
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        elm_array ai = {.dtype = ti->dtype, .numel = ti->numel, .data = (void *)ti->data};
        elm_array am = {.dtype = tm->dtype, .numel = tm->numel, .data = (void *)tm->data};
        for (int k = 0; k < m->S; k++) {
            /* I64 is read as is: through a double, 2^63 would not convert back (UB). Narrower
             * integers are exact in a double. */
            if (ti->dtype == ELM_DT_I64)
                memcpy(&idx[k], (const char *)ti->data + 8 * (size_t)k, 8);
            else
                idx[k] = (int64_t)elm_array_get(&ai, (size_t)k);
            mask[k] = elm_array_get(&am, (size_t)k);
        }
        m->mask_is_bool = tm->dtype == ELM_DT_BOOL;
        st = elm__model_set_routing(m, idx, mask);
        free(idx);
        free(mask);
        if (st) {
            elm__fail_prefix(st, st_path);
            goto fail;
        }
    } else if ((ti && ti->numel) || (tm && tm->numel)) {
        st = elm__fail(ELM_ERR_FORMAT,
                       "%s: routing tensors are non-empty but the configuration has no "
                       "input_to_synapse_routing",
                       st_path);
        goto fail;
    }
    /* Anything else in the file is a tensor the model does not know: refuse, like the
     * reference's load_state_dict(strict=True). */
    for (int i = 0; i < f.n; i++) {
        const char *nm = f.t[i].name;
        if (elm_model_find_tensor(m, nm) < 0 && strcmp(nm, "input_to_synapse_indices") &&
            strcmp(nm, "valid_indices_mask")) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: unexpected tensor '%s' for this configuration",
                           st_path, nm);
            goto fail;
        }
    }
    elm__refresh(m);
    elm__st_free(&f);
    free(st_path);
    free(cfg_path);
    *out = m;
    return ELM_OK;
fail:
    elm_model_free(m);
    elm__st_free(&f);
    free(st_path);
    free(cfg_path);
    return st;
}

static elm_status save_file(const elm_model *m, const char *path) {
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
    elm_status st = elm__st_write(path, t, n, kv, nk);
    free(js);
    free(idx);
    free(mask64);
    free(maskb);
    return st;
}

elm_status elm_model_save(const elm_model *m, const char *path) {
    if (m->lstm)
        return elm__lstm_model_save(m, path);
    if (elm__is_dir(path) || ends_with(path, "/")) {
        elm_status st = elm__mkdir_p(path);
        if (st)
            return st;
        char *p = elm__path_join(path, "model.safetensors");
        char *q = elm__path_join(path, "model_config.json");
        char *js = elm_config_to_json(&m->cfg);
        st = (!p || !q || !js) ? elm__fail(ELM_ERR_NOMEM, "out of memory") : save_file(m, p);
        if (!st) {
            size_t n = strlen(js);
            js[n] = '\n'; /* replace the NUL: write the JSON with a final newline */
            st = elm__write_file_atomic(q, js, n + 1);
            js[n] = 0;
        }
        free(p);
        free(q);
        free(js);
        return st;
    }
    return save_file(m, path);
}
