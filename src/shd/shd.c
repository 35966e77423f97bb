/*
 * shd.c - reads Spiking Heidelberg Digits HDF5 files, bins them, and builds SHD-Adding pairs.
 *
 * Invariant of an elm_shd: every stored spike has bin < num_bins and chan < num_channels, so
 * elm_shd_fill() writes inside its (num_bins, num_channels) frame without further checks. All
 * checks of the file happen once, in elm_shd_load().
 *
 * The ragged datasets are read a chunk of samples at a time (a hyperslab of read_chunk elements)
 * and converted by HDF5 to native double / 64-bit integers: HDF5's soft float conversion handles
 * the custom 16-bit IEEE type h5py writes for numpy's float16 (exactly: every float16 is a
 * double), as well as float32 and float64 times, and no integer a file holds is clipped.
 */
#include "shd/shd.h"

#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* HDF5 1.12 renamed two calls this file uses; the old names are deprecated there. */
#if H5_VERSION_GE(1, 12, 0)
#define shd_vlen_reclaim(type, space, buf) H5Treclaim(type, space, H5P_DEFAULT, buf)
#define shd_is_hdf5(path)                  H5Fis_accessible(path, H5P_DEFAULT)
#else
#define shd_vlen_reclaim(type, space, buf) H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf)
#define shd_is_hdf5(path)                  H5Fis_hdf5(path)
#endif

void elm_shd_opts_default(elm_shd_opts *o) {
    o->bin_ms = 10.0;
    o->duration_ms = 1000.0;
    o->num_channels = ELM_SHD_CHANNELS;
    o->num_classes = ELM_SHD_CLASSES;
    o->read_chunk = 256;
}

/* HDF5 prints its error stack to stderr by default; the library never prints. */
static void hdf5_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* 1 when the link `name` (a path, each parent checked first) exists in the file. */
static int link_exists(hid_t f, const char *name) {
    char buf[256];
    size_t n = strlen(name);
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, name, n + 1);
    for (char *q = buf; *q; q++) {
        if (*q != '/')
            continue;
        *q = 0;
        int e = H5Lexists(f, buf, H5P_DEFAULT) > 0;
        *q = '/';
        if (!e)
            return 0;
    }
    return H5Lexists(f, buf, H5P_DEFAULT) > 0;
}

int elm_shd_probe(const char *path) {
    hdf5_quiet();
    if (!elm__is_file(path) || shd_is_hdf5(path) <= 0)
        return 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return 0;
    int yes = link_exists(f, "spikes") || link_exists(f, "labels");
    H5Fclose(f);
    return yes;
}

/*
 * Opens the 1-D dataset `name`, checks its type class (and for H5T_VLEN the class of its base
 * type), and returns its length in *len.
 */
static elm_status open_1d(hid_t f, const char *path, const char *name, H5T_class_t cls,
                          H5T_class_t base_cls, hid_t *out, hsize_t *len) {
    static const char *const cls_names[] = {"integer",  "float",  "time",     "string",
                                            "bitfield", "opaque", "compound", "reference",
                                            "enum",     "vlen",   "array"};
    *out = H5I_INVALID_HID;
    if (!link_exists(f, name))
        return elm__fail(ELM_ERR_FORMAT, "%s: no dataset '%s' (not an SHD file?)", path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return elm__fail(ELM_ERR_FORMAT, "%s: '%s' is not a dataset", path, name);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    elm_status st = ELM_OK;
    H5T_class_t c = H5Tget_class(t);
    if (c != cls) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: dataset '%s' has type class %s, expected %s", path,
                       name, (c >= 0 && c <= 10) ? cls_names[c] : "unknown", cls_names[cls]);
    } else if (cls == H5T_VLEN) {
        hid_t b = H5Tget_super(t);
        H5T_class_t bc = H5Tget_class(b);
        if (bc != base_cls)
            st = elm__fail(ELM_ERR_FORMAT, "%s: dataset '%s' holds ragged %s values, expected %s",
                           path, name, (bc >= 0 && bc <= 10) ? cls_names[bc] : "unknown",
                           cls_names[base_cls]);
        H5Tclose(b);
    }
    if (st == ELM_OK) {
        int nd = H5Sget_simple_extent_ndims(s);
        hsize_t dims[1] = {0};
        if (nd != 1)
            st = elm__fail(ELM_ERR_FORMAT, "%s: dataset '%s' has %d dimensions, expected 1", path,
                           name, nd);
        else if (H5Sget_simple_extent_dims(s, dims, NULL) != 1 || dims[0] > INT_MAX)
            st = elm__fail(ELM_ERR_FORMAT, "%s: dataset '%s' has an unusable length", path, name);
        *len = dims[0];
    }
    H5Tclose(t);
    H5Sclose(s);
    if (st != ELM_OK) {
        H5Dclose(d);
        return st;
    }
    *out = d;
    return ELM_OK;
}

/*
 * Integers are read as 64-bit, signed or unsigned as the file stores them, so every value a file
 * can hold (up to 64 bits) arrives unchanged and an error can report the file's own value; HDF5's
 * conversion to native int would saturate 2^32 + 5 to 2147483647.
 */
static int int_is_unsigned(hid_t d) {
    hid_t t = H5Dget_type(d);
    if (t < 0)
        return 0;
    hid_t b = H5Tget_class(t) == H5T_VLEN ? H5Tget_super(t) : H5Tcopy(t);
    int uns = b >= 0 && H5Tget_class(b) == H5T_INTEGER && H5Tget_sign(b) == H5T_SGN_NONE;
    if (b >= 0)
        H5Tclose(b);
    H5Tclose(t);
    return uns;
}

/* A 64-bit integer read from a file (see int_is_unsigned), as text for messages. */
static const char *int_text(uint64_t raw, int uns, char buf[24]) {
    if (uns)
        snprintf(buf, 24, "%llu", (unsigned long long)raw);
    else
        snprintf(buf, 24, "%lld", (long long)(int64_t)raw);
    return buf;
}

/* 1 when the raw value lies in lo..hi. */
static int int_in(uint64_t raw, int uns, int64_t lo, int64_t hi) {
    if (uns)
        return lo <= 0 ? raw <= (uint64_t)hi : raw >= (uint64_t)lo && raw <= (uint64_t)hi;
    return (int64_t)raw >= lo && (int64_t)raw <= hi;
}

/* Reads a whole 1-D integer dataset; every value must lie in lo..hi (else an error naming the
 * sample and the file's own value); stored as int. */
static elm_status read_ints(hid_t d, const char *path, const char *name, int n, int64_t lo,
                            int64_t hi, int **out) {
    *out = malloc((size_t)(n ? n : 1) * sizeof(int));
    uint64_t *raw = malloc((size_t)(n ? n : 1) * sizeof *raw);
    int uns = int_is_unsigned(d);
    elm_status st = ELM_OK;
    if (!*out || !raw)
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory reading '%s'", path, name);
    else if (n && H5Dread(d, uns ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL,
                          H5P_DEFAULT, raw) < 0)
        st = elm__fail(ELM_ERR_FORMAT, "%s: cannot read dataset '%s'", path, name);
    for (int i = 0; i < n && st == ELM_OK; i++) {
        char v[24];
        if (!int_in(raw[i], uns, lo, hi))
            st = elm__fail(ELM_ERR_FORMAT, "%s: sample %d has %s %s, outside %lld..%lld", path, i,
                           !strcmp(name, "labels") ? "label" : name, int_text(raw[i], uns, v),
                           (long long)lo, (long long)hi);
        else
            (*out)[i] = (int)(int64_t)raw[i];
    }
    free(raw);
    if (st != ELM_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Reads extra/keys (fixed or variable-length strings); anything else there is ignored. */
static void read_keys(hid_t f, elm_shd *d) {
    if (!link_exists(f, "extra/keys"))
        return;
    hid_t ds = H5Dopen2(f, "extra/keys", H5P_DEFAULT);
    if (ds < 0)
        return;
    hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds);
    hsize_t dims[1] = {0};
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, dims, NULL) != 1 || dims[0] == 0 || dims[0] > 100000)
        goto done;
    int n = (int)dims[0];
    char **keys = calloc((size_t)n, sizeof *keys);
    if (!keys)
        goto done;
    int ok = 1;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        char **raw = calloc((size_t)n, sizeof *raw);
        if (raw && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0) {
            for (int i = 0; i < n; i++)
                ok &= (keys[i] = elm__strdup(raw[i] ? raw[i] : "")) != NULL;
            shd_vlen_reclaim(mt, sp, raw);
        } else {
            ok = 0;
        }
        free(raw);
        H5Tclose(mt);
    } else {
        size_t w = H5Tget_size(ft);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, w);
        /* NULLPAD in memory: with C's default NULLTERM, HDF5 would give up the last byte of a
         * full-width name to the terminator ("sieben" in 6 bytes would read as "siebe"). */
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        char *raw = w ? malloc((size_t)n * w) : NULL;
        if (raw && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0) {
            for (int i = 0; i < n && ok; i++) {
                size_t len = strnlen(raw + (size_t)i * w, w);
                keys[i] = malloc(len + 1);
                if (!keys[i]) {
                    ok = 0;
                    break;
                }
                memcpy(keys[i], raw + (size_t)i * w, len);
                keys[i][len] = 0;
            }
        } else {
            ok = 0;
        }
        free(raw);
        H5Tclose(mt);
    }
    if (ok) {
        d->keys = keys;
        d->num_keys = n;
    } else {
        for (int i = 0; i < n; i++)
            free(keys[i]);
        free(keys);
    }
done:
    H5Tclose(ft);
    H5Sclose(sp);
    H5Dclose(ds);
}

void elm_shd_free(elm_shd *d) {
    if (!d)
        return;
    free(d->path);
    free(d->labels);
    free(d->speakers);
    free(d->ptr);
    free(d->bin);
    free(d->chan);
    for (int i = 0; i < d->num_keys; i++)
        free(d->keys[i]);
    free(d->keys);
    free(d);
}

/* Grows the kept-spike arrays to hold at least `need` spikes (1.5x steps). */
static elm_status grow(elm_shd *d, size_t *cap, size_t need) {
    if (need <= *cap)
        return ELM_OK;
    size_t c = *cap + *cap / 2 + 1024;
    if (c < need)
        c = need;
    uint16_t *b = realloc(d->bin, c * sizeof *b);
    if (!b)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory for %zu spikes", d->path, c);
    d->bin = b;
    uint16_t *ch = realloc(d->chan, c * sizeof *ch);
    if (!ch)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory for %zu spikes", d->path, c);
    d->chan = ch;
    *cap = c;
    return ELM_OK;
}

/*
 * Checks and bins `count` samples starting at sample `first`, whose ragged rows were read into
 * tv (times, double) and uv (units, 64-bit integers, unsigned when units_uns).
 */
static elm_status take_chunk(elm_shd *d, size_t *cap, int first, int count, const hvl_t *tv,
                             const hvl_t *uv, int units_uns) {
    for (int k = 0; k < count; k++) {
        int i = first + k;
        size_t len = tv[k].len;
        if (uv[k].len != len)
            return elm__fail(ELM_ERR_SHAPE, "%s: sample %d has %zu spike times but %zu spike units",
                             d->path, i, len, uv[k].len);
        const double *t = tv[k].p;
        const uint64_t *u = uv[k].p;
        elm_status st = grow(d, cap, (size_t)d->ptr[i] + len);
        if (st != ELM_OK)
            return st;
        int64_t w = d->ptr[i];
        double last = -1;
        for (size_t j = 0; j < len; j++) {
            double ts = t[j];
            if (!(ts >= 0) || isinf(ts))
                return elm__fail(isnan(ts) || isinf(ts) ? ELM_ERR_NUMERIC : ELM_ERR_FORMAT,
                                 "%s: sample %d, spike %zu: time %g s (times must be finite and "
                                 ">= 0)",
                                 d->path, i, j, ts);
            char uv_text[24];
            if (!int_in(u[j], units_uns, 0, d->num_channels - 1))
                return elm__fail(ELM_ERR_FORMAT,
                                 "%s: sample %d, spike %zu: channel id %s outside 0..%d", d->path,
                                 i, j, int_text(u[j], units_uns, uv_text), d->num_channels - 1);
            int ch = (int)u[j];
            if (ch > d->max_channel)
                d->max_channel = ch;
            if (ts > last)
                last = ts;
            /* Times arrive as double whatever the file stores: float64 times are binned in
             * float64, as the reference bins them (read as float32, 0.01 s fell in bin 0).
             * ts * 1000 is exact in double for float16 and float32 times; one rounding in the
             * division then decides the bin, so a spike on a boundary lands in the later bin. */
            double tms = ts * 1000.0;
            if (tms >= d->duration_ms)
                continue;
            long b = (long)floor(tms / d->bin_ms);
            if (b >= d->num_bins) /* only by rounding, just below the window's end */
                b = d->num_bins - 1;
            d->bin[w] = (uint16_t)b;
            d->chan[w] = (uint16_t)ch;
            w++;
        }
        d->total_spikes += (int64_t)len;
        d->ptr[i + 1] = w;
        if (len == 0) {
            d->empty_samples++;
        } else {
            if (last < d->last_min_s)
                d->last_min_s = last;
            if (last > d->last_max_s)
                d->last_max_s = last;
        }
    }
    return ELM_OK;
}

/* The loading options (opts, or the defaults) checked, into *o. */
static elm_status load_opts(const char *path, const elm_shd_opts *opts, elm_shd_opts *o) {
    if (opts)
        *o = *opts;
    else
        elm_shd_opts_default(o);
    if (!(o->bin_ms > 0) || !(o->duration_ms > 0) || !isfinite(o->bin_ms) ||
        !isfinite(o->duration_ms) || o->duration_ms / o->bin_ms > 65535.0)
        return elm__fail(ELM_ERR_ARG, "%s: bins of %g ms over %g ms: need 1..65535 bins", path,
                         o->bin_ms, o->duration_ms);
    if (o->num_channels < 1 || o->num_channels > 65536)
        return elm__fail(ELM_ERR_ARG, "%s: %d channels: need 1..65536", path, o->num_channels);
    if (o->num_classes < 1)
        return elm__fail(ELM_ERR_ARG, "%s: %d classes: need at least 1", path, o->num_classes);
    if (o->read_chunk < 1)
        o->read_chunk = 256;
    return ELM_OK;
}

/* An empty elm_shd for `path` binned as o says. */
static elm_status new_shd(elm_shd **out, const char *path, const elm_shd_opts *o) {
    elm_shd *d = calloc(1, sizeof *d);
    if (!d || !(d->path = elm__strdup(path))) {
        free(d);
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    }
    d->bin_ms = o->bin_ms;
    d->duration_ms = o->duration_ms;
    d->num_channels = o->num_channels;
    d->num_classes = o->num_classes;
    d->num_bins = (int)floor(o->duration_ms / o->bin_ms);
    if (d->num_bins * o->bin_ms < o->duration_ms)
        d->num_bins++; /* a last, partial bin */
    d->max_channel = -1;
    d->last_min_s = INFINITY;
    d->last_max_s = -INFINITY;
    *out = d;
    return ELM_OK;
}

/* The labels (dataset dl, d->n of them) and their range. */
static elm_status load_labels(elm_shd *d, hid_t dl) {
    elm_status st = read_ints(dl, d->path, "labels", d->n, 0, d->num_classes - 1, &d->labels);
    if (st != ELM_OK)
        return st;
    d->label_min = INT_MAX;
    d->label_max = INT_MIN;
    for (int i = 0; i < d->n; i++) {
        int l = d->labels[i];
        d->label_min = l < d->label_min ? l : d->label_min;
        d->label_max = l > d->label_max ? l : d->label_max;
    }
    if (d->n == 0)
        d->label_min = d->label_max = -1;
    return ELM_OK;
}

/* The optional extra/speaker dataset (nl entries, as labels) and its count of speakers. */
static elm_status load_speakers(elm_shd *d, hid_t f, hsize_t nl) {
    const char *path = d->path;
    if (!link_exists(f, "extra/speaker"))
        return ELM_OK;
    hid_t ds = H5I_INVALID_HID;
    hsize_t ns = 0;
    elm_status st;
    if ((st = open_1d(f, path, "extra/speaker", H5T_INTEGER, H5T_NO_CLASS, &ds, &ns)) != ELM_OK)
        return st;
    if (ns != nl) {
        H5Dclose(ds);
        return elm__fail(ELM_ERR_SHAPE, "%s: extra/speaker has %llu entries but labels %llu", path,
                         (unsigned long long)ns, (unsigned long long)nl);
    }
    st = read_ints(ds, path, "extra/speaker", d->n, INT_MIN, INT_MAX, &d->speakers);
    H5Dclose(ds);
    if (st != ELM_OK)
        return st;
    int *tmp = malloc((size_t)(d->n ? d->n : 1) * sizeof(int));
    if (!tmp)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, d->speakers, (size_t)d->n * sizeof(int));
    qsort(tmp, (size_t)d->n, sizeof(int), cmp_int);
    for (int i = 0; i < d->n; i++)
        d->num_speakers += i == 0 || tmp[i] != tmp[i - 1];
    free(tmp);
    return ELM_OK;
}

/* Reading the ragged spike datasets a chunk of samples at a time. */
typedef struct {
    hid_t dt, du;     /* spikes/times, spikes/units */
    hid_t mt_t, mt_u; /* their vlen memory types (double; 64-bit integers) */
    int units_uns;    /* units read as unsigned */
    int chunk;        /* rows of tv and uv */
    hvl_t *tv, *uv;
    size_t cap; /* spikes d->bin and d->chan hold */
} spike_reader;

/* Samples first .. first + cnt - 1, read and binned. */
static elm_status load_chunk(elm_shd *d, spike_reader *r, int first, hsize_t cnt) {
    hsize_t start[1] = {(hsize_t)first}, count[1] = {cnt};
    hid_t ms = H5Screate_simple(1, count, NULL);
    hid_t fs_t = H5Dget_space(r->dt), fs_u = H5Dget_space(r->du);
    H5Sselect_hyperslab(fs_t, H5S_SELECT_SET, start, NULL, count, NULL);
    H5Sselect_hyperslab(fs_u, H5S_SELECT_SET, start, NULL, count, NULL);
    memset(r->tv, 0, (size_t)r->chunk * sizeof *r->tv);
    memset(r->uv, 0, (size_t)r->chunk * sizeof *r->uv);
    herr_t e1 = H5Dread(r->dt, r->mt_t, ms, fs_t, H5P_DEFAULT, r->tv);
    herr_t e2 = e1 < 0 ? -1 : H5Dread(r->du, r->mt_u, ms, fs_u, H5P_DEFAULT, r->uv);
    elm_status st;
    if (e1 < 0 || e2 < 0)
        st = elm__fail(ELM_ERR_FORMAT, "%s: cannot read %s of samples %d..%llu", d->path,
                       e1 < 0 ? "spikes/times" : "spikes/units", first,
                       (unsigned long long)(first + cnt - 1));
    else
        st = take_chunk(d, &r->cap, first, (int)cnt, r->tv, r->uv, r->units_uns);
    /* Rows HDF5 did not fill are still {0, NULL} from the memset: safe to reclaim. */
    if (e1 >= 0)
        shd_vlen_reclaim(r->mt_t, ms, r->tv);
    if (e2 >= 0)
        shd_vlen_reclaim(r->mt_u, ms, r->uv);
    H5Sclose(ms);
    H5Sclose(fs_t);
    H5Sclose(fs_u);
    return st;
}

/*
 * Spikes, a chunk of samples at a time. The kept arrays start at the most a file of this size
 * can hold with 2-byte times and 2-byte units (the released layout), so a real SHD file needs no
 * regrowth and never more memory than its own size; untouched pages cost nothing, and the
 * arrays are trimmed at the end.
 */
static elm_status load_spikes(elm_shd *d, hid_t dt, hid_t du, int read_chunk, size_t file_size) {
    const char *path = d->path;
    elm_status st = ELM_OK;
    spike_reader r = {.dt = dt, .du = du, .mt_t = H5I_INVALID_HID, .mt_u = H5I_INVALID_HID};
    d->ptr = calloc((size_t)d->n + 1, sizeof *d->ptr);
    if (!d->ptr || (st = grow(d, &r.cap, (size_t)file_size / 4 + 1)) != ELM_OK)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    r.units_uns = int_is_unsigned(du);
    r.mt_t = H5Tvlen_create(H5T_NATIVE_DOUBLE);
    r.mt_u = H5Tvlen_create(r.units_uns ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG);
    const int chunk = r.chunk = read_chunk < d->n ? read_chunk : (d->n ? d->n : 1);
    r.tv = calloc((size_t)chunk, sizeof *r.tv);
    r.uv = calloc((size_t)chunk, sizeof *r.uv);
    if (r.mt_t < 0 || r.mt_u < 0 || !r.tv || !r.uv)
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    for (int first = 0; st == ELM_OK && first < d->n; first += chunk)
        st = load_chunk(d, &r, first, (hsize_t)(d->n - first < chunk ? d->n - first : chunk));
    free(r.tv);
    free(r.uv);
    if (r.mt_t >= 0)
        H5Tclose(r.mt_t);
    if (r.mt_u >= 0)
        H5Tclose(r.mt_u);
    if (st != ELM_OK)
        return st;
    d->kept_spikes = d->ptr[d->n];
    /* Trim to size (realloc to a smaller size keeps the data; failure leaves it as it was). */
    size_t keep = d->kept_spikes ? (size_t)d->kept_spikes : 1;
    uint16_t *b = realloc(d->bin, keep * sizeof *b);
    if (b)
        d->bin = b;
    uint16_t *c = realloc(d->chan, keep * sizeof *c);
    if (c)
        d->chan = c;
    if (d->n == d->empty_samples)
        d->last_min_s = d->last_max_s = 0; /* no spike in the whole file */
    return ELM_OK;
}

/* The file's datasets: times, units and labels, of one length that the file can hold. */
static elm_status open_datasets(elm_shd *d, hid_t f, size_t file_size, hid_t *dt, hid_t *du,
                                hid_t *dl, hsize_t *nl) {
    const char *path = d->path;
    hsize_t nt = 0, nu = 0;
    elm_status st;
    if ((st = open_1d(f, path, "spikes/times", H5T_VLEN, H5T_FLOAT, dt, &nt)) != ELM_OK ||
        (st = open_1d(f, path, "spikes/units", H5T_VLEN, H5T_INTEGER, du, &nu)) != ELM_OK ||
        (st = open_1d(f, path, "labels", H5T_INTEGER, H5T_NO_CLASS, dl, nl)) != ELM_OK)
        return st;
    if (nt != nu || nt != *nl)
        return elm__fail(
            ELM_ERR_SHAPE, "%s: lengths differ: spikes/times %llu, spikes/units %llu, labels %llu",
            path, (unsigned long long)nt, (unsigned long long)nu, (unsigned long long)*nl);
    /* Each sample's ragged times take at least a 16-byte heap reference in the file: a count the
     * file cannot hold is a lie, refused before anything is allocated for it. */
    if (nt > (hsize_t)INT_MAX || nt > (hsize_t)file_size / 16)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: declares %llu samples, more than a file of %lld bytes can hold", path,
                         (unsigned long long)nt, (long long)file_size);
    d->n = (int)nt;
    return ELM_OK;
}

elm_status elm_shd_load(elm_shd **out, const char *path, const elm_shd_opts *opts) {
    *out = NULL;
    hdf5_quiet();
    elm_shd_opts o;
    elm_status st = load_opts(path, opts, &o);
    if (st != ELM_OK)
        return st;

    int fd;
    size_t size;
    if ((st = elm__open_regular(path, &fd, &size)) != ELM_OK)
        return st;
    close(fd);
    if (shd_is_hdf5(path) <= 0)
        return elm__fail(ELM_ERR_FORMAT, "%s: not an HDF5 file (SHD files are HDF5)", path);

    elm_shd *d = NULL;
    if ((st = new_shd(&d, path, &o)) != ELM_OK)
        return st;
    hid_t f = H5I_INVALID_HID, dt = H5I_INVALID_HID, du = H5I_INVALID_HID, dl = H5I_INVALID_HID;
    hsize_t nl = 0;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        st = elm__fail(ELM_ERR_FORMAT, "%s: HDF5 cannot open the file", path);
    else if ((st = open_datasets(d, f, size, &dt, &du, &dl, &nl)) == ELM_OK &&
             (st = load_labels(d, dl)) == ELM_OK && (st = load_speakers(d, f, nl)) == ELM_OK) {
        read_keys(f, d);
        d->has_meta_info = link_exists(f, "extra/meta_info");
        st = load_spikes(d, dt, du, o.read_chunk, size);
    }
    if (st != ELM_OK) {
        elm_shd_free(d);
        d = NULL;
    }
    if (dt >= 0)
        H5Dclose(dt);
    if (du >= 0)
        H5Dclose(du);
    if (dl >= 0)
        H5Dclose(dl);
    if (f >= 0)
        H5Fclose(f);
    *out = d;
    return st;
}

void elm_shd_fill(const elm_shd *d, int i, float *x) {
    size_t C = (size_t)d->num_channels;
    memset(x, 0, (size_t)d->num_bins * C * sizeof *x);
    for (int64_t k = d->ptr[i]; k < d->ptr[i + 1]; k++)
        x[d->bin[k] * C + d->chan[k]] += 1.0f;
}

elm_status elm_shd_fill_sparse(const elm_shd *d, int i, int64_t start, int64_t *ends,
                               int32_t *idx, float *val, size_t cap) {
    const int T = d->num_bins, C = d->num_channels;
    const int64_t a = d->ptr[i], n = d->ptr[i + 1] - a;
    if ((size_t)start + (size_t)n > cap)
        return elm__fail(ELM_ERR_ARG, "SHD sample %d: room for %zu spikes is too small", i, cap);
    /* The sample's spikes in (bin, channel) order: a counting sort by channel, then a stable one
     * by bin (file order is not trusted to be by time). Repeats of a (bin, channel) become
     * counts: the nonzero entries of elm_shd_fill's rows, in order. */
    int64_t *cnt = calloc((size_t)(C > T ? C : T) + 1, sizeof *cnt);
    int32_t *by_chan = malloc(sizeof *by_chan * (size_t)(n + 1));
    int32_t *order = malloc(sizeof *order * (size_t)(n + 1));
    if (!cnt || !by_chan || !order) {
        free(cnt);
        free(by_chan);
        free(order);
        return elm__fail(ELM_ERR_NOMEM, "out of memory binning SHD sample %d", i);
    }
    for (int64_t k = 0; k < n; k++)
        cnt[d->chan[a + k] + 1]++;
    for (int c = 0; c < C; c++)
        cnt[c + 1] += cnt[c];
    for (int64_t k = 0; k < n; k++)
        by_chan[cnt[d->chan[a + k]]++] = (int32_t)k;
    memset(cnt, 0, sizeof *cnt * ((size_t)T + 1));
    for (int64_t k = 0; k < n; k++)
        cnt[d->bin[a + k] + 1]++;
    for (int t = 0; t < T; t++)
        cnt[t + 1] += cnt[t];
    for (int64_t q = 0; q < n; q++) {
        int32_t k = by_chan[q];
        order[cnt[d->bin[a + k]]++] = k;
    }
    /* cnt[t] is now the end of bin t in order. */
    int64_t out = start, q = 0;
    for (int t = 0; t < T; t++) {
        for (int prev = -1; q < cnt[t]; q++) {
            int ch = d->chan[a + order[q]];
            if (ch == prev) {
                val[out - 1] += 1.0f;
                continue;
            }
            idx[out] = ch;
            val[out++] = 1.0f;
            prev = ch;
        }
        ends[t] = out;
    }
    free(cnt);
    free(by_chan);
    free(order);
    return ELM_OK;
}

elm_status elm_shd_split(int n, double frac, uint64_t seed, int **kept, int *nkept, int **held,
                         int *nheld) {
    *kept = *held = NULL;
    *nkept = *nheld = 0;
    if (n < 0 || !(frac >= 0 && frac < 1))
        return elm__fail(ELM_ERR_ARG, "split of %d samples with fraction %g: need 0 <= f < 1", n,
                         frac);
    int nh = (int)floor(frac * n + 0.5);
    if (frac > 0 && n >= 2 && nh < 1)
        nh = 1;
    if (nh >= n)
        nh = n > 0 ? n - 1 : 0;
    if (nh < 0)
        nh = 0;
    size_t na = (size_t)(n - nh);
    int *perm = malloc(((size_t)n + 1) * sizeof *perm);
    int *a = malloc((na + 1) * sizeof *a);
    int *h = malloc(((size_t)nh + 1) * sizeof *h);
    if (!perm || !a || !h) {
        free(perm);
        free(a);
        free(h);
        return elm__fail(ELM_ERR_NOMEM, "out of memory splitting %d samples", n);
    }
    for (int i = 0; i < n; i++)
        perm[i] = i;
    elm__rng r;
    elm__rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)elm__rng_below(&r, (uint64_t)i + 1);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    memcpy(h, perm, (size_t)nh * sizeof *h);
    memcpy(a, perm + nh, (size_t)(n - nh) * sizeof *a);
    qsort(h, (size_t)nh, sizeof *h, cmp_int);
    qsort(a, (size_t)(n - nh), sizeof *a, cmp_int);
    free(perm);
    *kept = a;
    *nkept = n - nh;
    *held = h;
    *nheld = nh;
    return ELM_OK;
}

void elm_shd_adding_draw(int *first, int *second, int n, const int *pool, int npool,
                         elm__rng *rng) {
    for (int k = 0; k < n; k++) {
        first[k] = pool[elm__rng_below(rng, (uint64_t)npool)];
        second[k] = pool[elm__rng_below(rng, (uint64_t)npool)];
    }
}

int elm_shd_adding_fill(const elm_shd *d, int i1, int i2, float *x) {
    elm_shd_fill(d, i1, x);
    elm_shd_fill(d, i2, x + (size_t)d->num_bins * (size_t)d->num_channels);
    return elm_shd_adding_label(d->labels[i1], d->labels[i2]);
}

void elm_shd_input_dropout(float *x, size_t n, double p, elm__rng *rng) {
    if (!(p > 0))
        return;
    float scale = (float)(1.0 / (1.0 - p));
    /* elm__rng_uniform(r) < p, i.e. (next >> 11) 2^-53 < p, decided on the integer: m < p 2^53
     * exactly when m < ceil(p 2^53). */
    const uint64_t below = (uint64_t)ceil(p * 9007199254740992.0);
    elm__rng r = *rng; /* a local copy: its state stays in registers across the stores to x */
    for (size_t k = 0; k < n; k++) {
        if (x[k] == 0.0f)
            continue;
        /* Written as a select (the draw is a coin flip no branch predictor learns). */
        const int drop = (elm__rng_next(&r) >> 11) < below;
        const float kept = x[k] * scale;
        x[k] = drop ? 0.0f : kept;
    }
    *rng = r;
}
