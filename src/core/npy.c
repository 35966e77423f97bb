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

static const char *npy_descr(elm__dtype t) {
    static const char *d[] = {"<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8", "|b1"};
    return d[t];
}

void elm__array_free(elm__array *a) {
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

double elm__array_get(const elm__array *a, size_t i) {
    return elm__dtype_get(a->dtype, a->data, i);
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

/*
 * The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False,
 * 'shape': (2, 3), } padded with spaces and a newline. It is parsed as one, the way numpy's
 * ast.literal_eval reads it: keys and values are tokens, not substrings, so a key inside a string
 * cannot stand in for the real one (D14); a repeated key keeps its last value, as in Python; and
 * the keys must be exactly descr, fortran_order and shape, or numpy itself refuses the file.
 */
typedef struct npy_hdr {
    char descr[16];
    int have_descr, descr_long, fortran, have_fortran, have_shape;
    int ndim;
    int64_t shape[8];
} npy_hdr;

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A quoted string without escapes (numpy never writes any): *s, *n; NULL if malformed. */
static const char *parse_str(const char *p, const char **s, size_t *n) {
    char q = *p;
    if (q != '\'' && q != '"')
        return NULL;
    const char *e = p + 1;
    while (*e && *e != q && *e != '\\' && *e != '\n')
        e++;
    if (*e != q)
        return NULL;
    *s = p + 1;
    *n = (size_t)(e - p - 1);
    return e + 1;
}

/* The shape tuple: "()", "(5,)", "(2, 3)" or "(2, 3,)"; "(5)" is an int, not a tuple. */
static elm_status parse_shape(const char *path, const char **pp, npy_hdr *h) {
    const char *p = *pp;
    if (*p != '(')
        return elm__fail(ELM_ERR_FORMAT, "%s: header's 'shape' is not a tuple of dimensions",
                         path);
    p = skip_ws(p + 1);
    h->ndim = 0;
    int commas = 0;
    while (*p != ')') {
        if (*p < '0' || *p > '9')
            return elm__fail(ELM_ERR_FORMAT, "%s: malformed shape in header", path);
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0)
            return elm__fail(ELM_ERR_FORMAT, "%s: malformed shape in header", path);
        if (h->ndim == 8)
            return elm__fail(ELM_ERR_FORMAT, "%s: more than 8 dimensions", path);
        h->shape[h->ndim++] = v;
        p = skip_ws(end);
        if (*p == ',') {
            commas++;
            p = skip_ws(p + 1);
        } else if (*p != ')') {
            return elm__fail(ELM_ERR_FORMAT, "%s: malformed shape in header (dimensions are "
                                             "separated by commas)",
                             path);
        }
    }
    if (h->ndim == 1 && commas == 0)
        return elm__fail(ELM_ERR_FORMAT, "%s: malformed shape in header (a 1-D shape is "
                                         "written (n,))",
                         path);
    *pp = p + 1;
    return ELM_OK;
}

static elm_status parse_header(const char *path, const char *hdr, npy_hdr *h) {
    memset(h, 0, sizeof *h);
    const char *p = skip_ws(hdr);
    if (*p != '{')
        return elm__fail(ELM_ERR_FORMAT, "%s: malformed header (not a dict literal)", path);
    p = skip_ws(p + 1);
    while (*p != '}') {
        const char *k;
        size_t kn;
        const char *q = parse_str(p, &k, &kn);
        if (!q)
            return elm__fail(ELM_ERR_FORMAT, "%s: malformed header at byte %zu (a key must be a "
                                             "quoted string)",
                             path, (size_t)(p - hdr));
        p = skip_ws(q);
        if (*p != ':')
            return elm__fail(ELM_ERR_FORMAT, "%s: malformed header at byte %zu (':' expected)",
                             path, (size_t)(p - hdr));
        p = skip_ws(p + 1);
        elm_status st;
        if (kn == 5 && !memcmp(k, "descr", 5)) {
            const char *s;
            size_t n;
            q = parse_str(p, &s, &n);
            if (!q)
                return elm__fail(ELM_ERR_FORMAT, "%s: unsupported dtype (header's 'descr' is not "
                                                 "a type string)",
                                 path);
            h->descr_long = n >= sizeof h->descr;
            n = h->descr_long ? sizeof h->descr - 1 : n;
            memcpy(h->descr, s, n);
            h->descr[n] = 0;
            h->have_descr = 1;
            p = q;
        } else if (kn == 13 && !memcmp(k, "fortran_order", 13)) {
            if (!strncmp(p, "False", 5) || !strncmp(p, "True", 4)) {
                h->fortran = *p == 'T';
                p += h->fortran ? 4 : 5;
                h->have_fortran = 1;
            } else {
                return elm__fail(ELM_ERR_FORMAT, "%s: header's 'fortran_order' is not True or "
                                                 "False",
                                 path);
            }
        } else if (kn == 5 && !memcmp(k, "shape", 5)) {
            if ((st = parse_shape(path, &p, h)) != ELM_OK)
                return st;
            h->have_shape = 1;
        } else {
            return elm__fail(ELM_ERR_FORMAT, "%s: header has the key '%.*s'; a .npy header holds "
                                             "exactly 'descr', 'fortran_order' and 'shape'",
                             path, (int)(kn > 40 ? 40 : kn), k);
        }
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p != '}')
            return elm__fail(ELM_ERR_FORMAT, "%s: malformed header at byte %zu (',' or '}' "
                                             "expected)",
                             path, (size_t)(p - hdr));
    }
    p = skip_ws(p + 1);
    if (*p)
        return elm__fail(ELM_ERR_FORMAT, "%s: malformed header at byte %zu (text after the dict)",
                         path, (size_t)(p - hdr));
    if (!h->have_descr)
        return elm__fail(ELM_ERR_FORMAT, "%s: header has no 'descr'", path);
    if (!h->have_fortran)
        return elm__fail(ELM_ERR_FORMAT, "%s: header has no 'fortran_order'", path);
    if (!h->have_shape)
        return elm__fail(ELM_ERR_FORMAT, "%s: header has no 'shape'", path);
    return ELM_OK;
}

elm_status elm__npy_load(const char *path, elm__array *out) {
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

    npy_hdr h;
    if ((st = parse_header(path, hdr, &h)) != ELM_OK)
        goto done;
    if (h.descr_long || !parse_descr(h.descr, &out->dtype)) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: unsupported dtype '%s' (need little-endian numbers)",
                       path, h.descr);
        goto done;
    }
    if (h.fortran) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: Fortran-ordered or unreadable array; save C order",
                       path);
        goto done;
    }
    size_t numel = 1;
    out->ndim = h.ndim;
    for (int d = 0; d < h.ndim; d++) {
        int64_t v = h.shape[d];
        out->shape[d] = v;
        if (v != 0 && numel > ELM_MAX_ALLOC / (size_t)v) {
            st = elm__fail(ELM_ERR_FORMAT, "%s: shape is absurdly large", path);
            goto done;
        }
        numel *= (size_t)v;
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
        elm__array_free(out);
    return st;
}

elm_status elm__npy_save(const char *path, elm__dtype dtype, int ndim, const int64_t *shape,
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
