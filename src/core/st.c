/*
 * st.c - the safetensors format: an 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and byte range, then the raw little-endian data.
 *
 * A leaf module over dtype.h: it knows files and tensors, not models (model_io.c maps the
 * model's tensors onto it). Reading checks everything a hostile file could lie about before
 * touching data: header length within the file, every dtype known, every shape non-negative with
 * a product that cannot overflow, every data range inside the buffer and of exactly shape x dtype
 * bytes, no two tensors sharing bytes.
 */
#include "st.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ST_MAX_FILE ((size_t)16 << 30)
#define ST_MAX_HEADER ((size_t)100 << 20)

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
static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const elm__st_tensor *const *)a)->name,
                  (*(const elm__st_tensor *const *)b)->name);
}

static int cmp_offset(const void *a, const void *b) {
    const elm__st_tensor *x = *(const elm__st_tensor *const *)a;
    const elm__st_tensor *y = *(const elm__st_tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    size_t bx = x->numel * elm__dtype_size(x->dtype), by = y->numel * elm__dtype_size(y->dtype);
    return bx < by ? -1 : bx > by;
}

static elm_status parse(elm__st_file *f, char *buf, size_t len, size_t file_len,
                        const char *path);

elm_status elm__st_read(elm__st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd;
    size_t size;
    elm_status st = elm__open_regular(path, &fd, &size);
    if (st)
        return st;
    unsigned char n8[8] = {0};
    uint64_t n = 0;
    char *buf = NULL;
    if (size > ST_MAX_FILE)
        st = elm__fail(ELM_ERR_FORMAT, "%s: file is %zu bytes, more than the %zu allowed", path,
                       size, ST_MAX_FILE);
    else if (size >= 8 && !(st = elm__pread_all(fd, n8, 8, 0, path)))
        for (int i = 7; i >= 0; i--)
            n = (n << 8) | n8[i];
    /* The header alone (parse checks its length against the file's size before reading it). */
    const size_t hn = size < 8 ? size : n <= ST_MAX_HEADER && n <= size - 8 ? 8 + (size_t)n : 8;
    if (!st && !(buf = malloc(hn + 1)))
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    if (!st)
        st = elm__pread_all(fd, buf, hn, 0, path);
    if (!st) {
        st = parse(f, buf, hn, size, path);
        buf = NULL; /* f's now, freed on failure */
    }
    /* Header checked: the data its tensors span, and no more. */
    size_t span = 0;
    for (int i = 0; !st && i < f->n; i++) {
        size_t e = f->t[i].offset + f->t[i].numel * elm__dtype_size(f->t[i].dtype);
        span = e > span ? e : span;
    }
    char *all = st ? NULL : realloc(f->buf, hn + span + 1);
    if (!st && !all)
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, hn + span);
    if (all) {
        f->buf = all;
        st = elm__pread_all(fd, all + hn, span, hn, path);
        all[hn + span] = 0;
        f->len = hn + span;
        for (int i = 0; i < f->n; i++)
            f->t[i].data = all + hn + f->t[i].offset;
    }
    close(fd);
    free(buf);
    if (st && f->buf)
        elm__st_free(f);
    f->path = path;
    return st;
}

elm_status elm__st_parse(elm__st_file *f, char *buf, size_t len, const char *path) {
    return parse(f, buf, len, len, path);
}

/* The header of f->buf (file_len bytes in the file) as a JSON object, and its length *n. */
static elm_status parse_header(const elm__st_file *f, size_t file_len, const char *path,
                               cJSON **root, uint64_t *n) {
    *root = NULL;
    if (file_len < 8)
        return elm__fail(ELM_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", path,
                         file_len);
    *n = 0;
    for (int i = 7; i >= 0; i--)
        *n = (*n << 8) | (unsigned char)f->buf[i];
    if (*n > ST_MAX_HEADER || *n > file_len - 8)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: header length %llu does not fit in the file (%zu bytes): truncated "
                         "or not a safetensors file",
                         path, (unsigned long long)*n, file_len);
    char *hdr = malloc((size_t)*n + 1);
    if (!hdr)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    memcpy(hdr, f->buf + 8, (size_t)*n);
    hdr[*n] = 0;
    *root = cJSON_Parse(hdr);
    free(hdr);
    if (!cJSON_IsObject(*root))
        return elm__fail(ELM_ERR_FORMAT, "%s: header is not a JSON object", path);
    return ELM_OK;
}

/* The header's __metadata__ (an object of strings), if any, detached from root into f->meta. */
static elm_status take_metadata(elm__st_file *f, cJSON *root, const char *path) {
    for (cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it))
                return elm__fail(ELM_ERR_FORMAT, "%s: __metadata__ is not an object", path);
            for (cJSON *kv = it->child; kv; kv = kv->next)
                if (!cJSON_IsString(kv))
                    return elm__fail(ELM_ERR_FORMAT, "%s: __metadata__['%s'] is not a string",
                                     path, kv->string);
            f->meta = cJSON_DetachItemViaPointer(root, it);
            break;
        }
    }
    return ELM_OK;
}

/* The dtype and shape of header entry `it` into t; *numel gets the shape's product. */
static elm_status parse_dtype_shape(elm__st_tensor *t, const cJSON *it, const char *path,
                                    size_t *numel) {
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
        cJSON_GetArraySize(off) != 2)
        return elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' lacks a dtype, shape or two data_offsets",
                         path, it->string);
    if (!elm__dtype_parse(dt->valuestring, &t->dtype))
        return elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' has unsupported dtype '%s'", path,
                         it->string, dt->valuestring);
    int nd = cJSON_GetArraySize(sh);
    if (nd > 8)
        return elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most 8)", path,
                         it->string, nd);
    *numel = 1;
    for (int d = 0; d < nd; d++) {
        uint64_t v;
        if (!get_u64(cJSON_GetArrayItem(sh, d), &v) || v > ELM_MAX_ALLOC ||
            (v && *numel > ELM_MAX_ALLOC / v))
            return elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' has an invalid or absurd shape",
                             path, it->string);
        t->shape[d] = (int64_t)v;
        *numel *= (size_t)v;
    }
    t->ndim = nd;
    return ELM_OK;
}

/* Header entry `it` into t: dtype, shape and a data range inside the dlen data bytes (at data,
 * or NULL when only the header was read) of exactly shape x dtype bytes. */
static elm_status parse_tensor(elm__st_tensor *t, const cJSON *it, const char *path,
                               const char *data, size_t dlen) {
    size_t numel = 0;
    elm_status st = parse_dtype_shape(t, it, path, &numel);
    if (st != ELM_OK)
        return st;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    uint64_t b, e;
    if (!get_u64(cJSON_GetArrayItem(off, 0), &b) || !get_u64(cJSON_GetArrayItem(off, 1), &e) ||
        e < b || e > dlen)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: tensor '%s' has data_offsets outside the %zu data bytes "
                         "(truncated file?)",
                         path, it->string, dlen);
    if (e - b != numel * elm__dtype_size(t->dtype))
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: tensor '%s' spans %llu bytes but its shape and dtype need %zu", path,
                         it->string, (unsigned long long)(e - b),
                         numel * elm__dtype_size(t->dtype));
    t->name = elm__strdup(it->string);
    if (!t->name)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    t->numel = numel;
    t->offset = (size_t)b;
    t->data = data ? data + b : NULL;
    return ELM_OK;
}

/*
 * Tensors may not share bytes (the format forbids it, and it would let a small file pose as many
 * large tensors): sorted by offset, each must start at or after the previous end. Names must be
 * unique (D13): elm took the first of two, Python readers the last, so one file was two models.
 */
static elm_status check_layout(const elm__st_file *f, const char *path) {
    if (f->n < 2)
        return ELM_OK;
    const elm__st_tensor **order = malloc(sizeof *order * (size_t)f->n);
    if (!order)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < f->n; i++)
        order[i] = &f->t[i];
    qsort(order, (size_t)f->n, sizeof *order, cmp_offset);
    elm_status st = ELM_OK;
    size_t end = 0;
    const elm__st_tensor *prev = NULL;
    for (int i = 0; i < f->n && st == ELM_OK; i++) {
        const elm__st_tensor *t = order[i];
        size_t bytes = t->numel * elm__dtype_size(t->dtype);
        if (!bytes)
            continue;
        if (prev && t->offset < end)
            st = elm__fail(ELM_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data", path,
                           prev->name, t->name);
        end = t->offset + bytes;
        prev = t;
    }
    /* Sorted by name, a repeat sits next to its twin. */
    if (st == ELM_OK)
        qsort(order, (size_t)f->n, sizeof *order, cmp_name);
    for (int i = 1; i < f->n && st == ELM_OK; i++)
        if (!strcmp(order[i]->name, order[i - 1]->name))
            st = elm__fail(ELM_ERR_FORMAT, "%s: the tensor '%s' appears twice in the header",
                           path, order[i]->name);
    free(order);
    return st;
}

/* Parses buf[0, len), the first len bytes of a file of file_len bytes that holds at least the
 * header; tensor data pointers are set when buf holds the whole file. */
static elm_status parse(elm__st_file *f, char *buf, size_t len, size_t file_len, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->buf = buf;
    f->len = len;
    cJSON *root = NULL;
    uint64_t n = 0;
    elm_status st = parse_header(f, file_len, path, &root, &n);
    if (st == ELM_OK) {
        f->t = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *f->t);
        st = f->t ? take_metadata(f, root, path)
                  : elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (st == ELM_OK) {
        const char *data = len == file_len ? f->buf + 8 + n : NULL;
        const size_t dlen = file_len - 8 - (size_t)n;
        for (cJSON *it = root->child; it && st == ELM_OK; it = it->next)
            if ((st = parse_tensor(&f->t[f->n], it, path, data, dlen)) == ELM_OK)
                f->n++;
    }
    if (st == ELM_OK)
        st = check_layout(f, path);
    cJSON_Delete(root);
    if (st != ELM_OK)
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
    if (!elm__dtype_is_real(t->dtype))
        return elm__fail(ELM_ERR_FORMAT, "%s: tensor '%s' is %s, expected a float type", f->path,
                         t->name, elm__dtype_name(t->dtype));
    for (size_t i = 0; i < t->numel; i++) {
        double v = elm__dtype_get(t->dtype, t->data, i);
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
        /* The reason (ENOSPC, EFBIG, EIO) from the failed write, before the cleanup's calls. */
        st = elm__fail(ELM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        elm__atomic_abort(&af);
        return st;
    }
    return elm__atomic_commit(&af);
}
