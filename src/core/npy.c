/*
 * npy.c - numpy .npy files (format versions 1, 2 and 3), read and written without numpy.
 *
 * The header is a Python dict literal such as {'descr': '<f4', 'fortran_order': False,
 * 'shape': (2, 300, 1278), }. We parse just that grammar, reject Fortran order and big-endian
 * data, and check that the file holds exactly shape-product elements before allocating.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t elm__dtype_size(elm__dtype t) {
    switch (t) {
    case ELM_DT_F16:
    case ELM_DT_I16:
        return 2;
    case ELM_DT_F32:
    case ELM_DT_I32:
        return 4;
    case ELM_DT_F64:
    case ELM_DT_I64:
        return 8;
    case ELM_DT_I8:
    case ELM_DT_U8:
    case ELM_DT_BOOL:
        return 1;
    }
    return 0;
}

const char *elm__dtype_name(elm__dtype t) {
    static const char *names[] = {"F16", "F32", "F64", "I8", "U8", "I16", "I32", "I64", "BOOL"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static const char *npy_descr(elm__dtype t) {
    static const char *d[] = {"<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8", "|b1"};
    return d[t];
}

void elm_array_free(elm_array *a) {
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

float elm__half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400), (int)exp - 25);
    return sign ? -v : v;
}

uint16_t elm__float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    if (isnan(f))
        return sign | 0x7e00;
    float a = fabsf(f);
    if (a >= 65520.0f)
        return sign | 0x7c00;
    if (a < 0x1p-25f)
        return sign;
    int e;
    float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    if (e < -13) {           /* subnormal half: units of 2^-24, round half to even */
        float q = ldexpf(a, 24);
        float r = nearbyintf(q);
        return sign | (uint16_t)r;
    }
    float q = ldexpf(m, 11); /* 1024..2048 */
    uint32_t mi = (uint32_t)nearbyintf(q);
    if (mi == 2048) {
        mi = 1024;
        e++;
    }
    if (e + 14 >= 31)
        return sign | 0x7c00;
    return sign | (uint16_t)((uint32_t)(e + 14) << 10) | (uint16_t)(mi & 0x3ff);
}

double elm_array_get(const elm_array *a, size_t i) {
    const unsigned char *p = (const unsigned char *)a->data + i * elm__dtype_size(a->dtype);
    switch (a->dtype) {
    case ELM_DT_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return elm__half_to_float(h);
    }
    case ELM_DT_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case ELM_DT_F64: {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    case ELM_DT_I8:
        return (double)(int8_t)p[0];
    case ELM_DT_U8:
    case ELM_DT_BOOL:
        return p[0];
    case ELM_DT_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case ELM_DT_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case ELM_DT_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        return (double)v;
    }
    }
    return 0;
}

static int parse_descr(const char *s, elm__dtype *t) {
    static const struct {
        const char *a, *b;
        elm__dtype t;
    } map[] = {{"<f2", "=f2", ELM_DT_F16}, {"<f4", "=f4", ELM_DT_F32}, {"<f8", "=f8", ELM_DT_F64},
               {"|i1", "<i1", ELM_DT_I8},  {"|u1", "<u1", ELM_DT_U8},  {"<i2", "=i2", ELM_DT_I16},
               {"<i4", "=i4", ELM_DT_I32}, {"<i8", "=i8", ELM_DT_I64}, {"|b1", "<b1", ELM_DT_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].a) || !strcmp(s, map[i].b)) {
            *t = map[i].t;
            return 1;
        }
    return 0;
}

/* Finds 'key' in the header dict and returns a pointer just past its ':' (spaces skipped). */
static const char *dict_value(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

elm_status elm_npy_load(const char *path, elm_array *out) {
    memset(out, 0, sizeof *out);
    FILE *f;
    elm_status st = elm__fopen_regular(path, &f);
    if (st != ELM_OK)
        return st;
    char *hdr = NULL;
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    int major = pre[6];
    size_t hlen;
    long data_off;
    if (major == 1) {
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
        data_off = 10;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: truncated header", path);
            goto done;
        }
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)pre[10] << 16) |
               ((size_t)pre[11] << 24);
        data_off = 12;
    } else {
        st = elm__fail(ELM_ERR_FORMAT, "%s: unsupported .npy version %d", path, major);
        goto done;
    }
    if (hlen > (1u << 20)) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: header of %zu bytes is implausibly large", path, hlen);
        goto done;
    }
    hdr = malloc(hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: truncated header", path);
        goto done;
    }
    hdr[hlen] = 0;
    data_off += (long)hlen;

    const char *p = dict_value(hdr, "descr");
    char descr[16] = {0};
    if (!p || *p != '\'') {
        st = elm__fail(ELM_ERR_FORMAT, "%s: header has no 'descr'", path);
        goto done;
    }
    p++;
    size_t dl = 0;
    while (p[dl] && p[dl] != '\'' && dl < sizeof descr - 1)
        dl++;
    memcpy(descr, p, dl);
    if (!parse_descr(descr, &out->dtype)) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: unsupported dtype '%s' (need little-endian numbers)",
                       path, descr);
        goto done;
    }
    p = dict_value(hdr, "fortran_order");
    if (!p || strncmp(p, "False", 5) != 0) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: Fortran-ordered or unreadable array; save C order",
                       path);
        goto done;
    }
    p = dict_value(hdr, "shape");
    if (!p || *p != '(') {
        st = elm__fail(ELM_ERR_FORMAT, "%s: header has no 'shape'", path);
        goto done;
    }
    p++;
    size_t numel = 1;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || errno) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: malformed shape in header", path);
            goto done;
        }
        if (out->ndim == 8) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: more than 8 dimensions", path);
            goto done;
        }
        out->shape[out->ndim++] = v;
        if (v != 0 && numel > ELM_MAX_ALLOC / (size_t)v) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: shape is absurdly large", path);
            goto done;
        }
        numel *= (size_t)v;
        p = end;
    }
    out->numel = numel;
    size_t esz = elm__dtype_size(out->dtype);
    if (numel > ELM_MAX_ALLOC / esz) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: array of %zu elements is too large", path, numel);
        goto done;
    }
    size_t bytes = numel * esz;
    if (fseek(f, 0, SEEK_END) != 0) {
        st = elm__fail(ELM_ERR_IO, "%s: cannot seek", path);
        goto done;
    }
    long fsize = ftell(f);
    if (fsize < data_off || (size_t)(fsize - data_off) != bytes) {
        st = elm__fail(ELM_ERR_FORMAT,
                       "%s: header promises %zu bytes of data but the file holds %ld", path, bytes,
                       fsize < data_off ? 0L : fsize - data_off);
        goto done;
    }
    fseek(f, data_off, SEEK_SET);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) {
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (bytes && fread(out->data, 1, bytes, f) != bytes) {
        st = elm__fail(ELM_ERR_IO, "%s: read error", path);
        goto done;
    }
done:
    free(hdr);
    fclose(f);
    if (st)
        elm_array_free(out);
    return st;
}

elm_status elm_npy_save(const char *path, elm__dtype dtype, int ndim, const int64_t *shape,
                        const void *data) {
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     npy_descr(dtype));
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[i],
                      i + 1 < ndim ? " " : "");
        numel *= (size_t)shape[i];
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Pad with spaces so the data starts at a multiple of 64 bytes; end with a newline. */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    elm__atomic_file af;
    elm_status st = elm__atomic_open(&af, path);
    if (st)
        return st;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    size_t bytes = numel * elm__dtype_size(dtype);
    int ok = fwrite(pre, 1, 10, af.f) == 10 && fwrite(dict, 1, (size_t)n, af.f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', af.f) != EOF;
    ok = ok && fputc('\n', af.f) != EOF;
    ok = ok && (bytes == 0 || fwrite(data, 1, bytes, af.f) == bytes);
    if (!ok) {
        elm__atomic_abort(&af);
        return elm__fail(ELM_ERR_IO, "%s: write failed", path);
    }
    return elm__atomic_commit(&af);
}
