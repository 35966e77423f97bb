/*
 * fuzz_shd.c - libFuzzer driver for the SHD reader with valid HDF5 structure and hostile contents.
 *
 * The input bytes describe an SHD-like file, which the driver writes with the HDF5 API and then
 * loads with elm_shd_load (read chunk 3). So libhdf5 only ever parses well-formed files (its own
 * robustness on corrupt structure is fuzz_shd_raw's business) and the fuzzer explores elm's side:
 * dataset types and classes, missing datasets, lengths that disagree, ragged rows whose times and
 * units differ, NaN / infinite / negative times, channel ids out of range, labels out of range,
 * speakers, keys as fixed or variable strings, and declared lengths that no data backs.
 *
 * Input layout (a byte reader that yields zeros past the end):
 *   flags (2 bytes, the F_* bits below), n samples (1 byte, < 48), then per sample: row length
 *   (1 byte, < 24), units-length byte (0xff: one unit fewer than times, 0xfe: one more), per
 *   spike: time code (2 bytes, see time_of) and unit (2 bytes, int16); then a label per sample
 *   (1 byte); then a declared length (4 bytes) used when flag F_DECLARED is set.
 */
// fuzz-areas: shd
#include "fuzz_util.h"
#include "shd/shd.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t n, i;
} reader;
static unsigned get8(reader *r) {
    return r->i < r->n ? r->p[r->i++] : 0;
}
static unsigned get16(reader *r) {
    unsigned a = get8(r);
    return a | get8(r) << 8;
}

/* A time code: mostly 0..1.2 s, a few codes give NaN, infinities, negatives and huge values. */
static double time_of(unsigned c) {
    switch (c) {
    case 0xffff:
        return NAN;
    case 0xfffe:
        return INFINITY;
    case 0xfffd:
        return -INFINITY;
    case 0xfffc:
        return -0.001;
    case 0xfffb:
        return 1e30;
    case 0xfffa:
        return 0.999999; /* just inside the window: rounding to the last bin */
    default:
        return c * (1.2 / 65000.0);
    }
}

/* Writes a 1-D dataset; `declared` > 0 makes it chunked with that extent and no data written. */
static void write_1d(hid_t f, const char *name, hid_t ftype, hid_t mtype, const void *data,
                     hsize_t n, hsize_t declared) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t dims[1] = {declared ? declared : n};
    hsize_t maxd[1] = {H5S_UNLIMITED};
    if (declared || n == 0) {
        hsize_t chunk[1] = {64};
        H5Pset_chunk(dcpl, 1, chunk);
    }
    hid_t sp = H5Screate_simple(1, dims, declared || n == 0 ? maxd : NULL);
    hid_t d = H5Dcreate2(f, name, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0 && !declared && n)
        H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
}

enum {
    F_TIME_F32 = 0x1,         /* times stored as float32 (else float16 when bit 2 clear) */
    F_TIME_F64 = 0x2,         /* float64 */
    F_UNITS_I32 = 0x4,        /* units stored as int32 (else uint16) */
    F_SPEAKER = 0x8,          /* extra/speaker, one per sample */
    F_SPEAKER_SHORT = 0x10,   /* ... one short */
    F_KEYS_FIXED = 0x20,      /* extra/keys as fixed-width strings */
    F_KEYS_VLEN = 0x40,       /* ... as variable-length strings */
    F_NO_LABELS = 0x80,       /* labels missing */
    F_LABELS_FLOAT = 0x100,   /* labels stored as float (wrong class) */
    F_TIMES_NOT_VLEN = 0x200, /* spikes/times a plain float dataset (wrong class) */
    F_DECLARED = 0x400,       /* labels/times/units declare a length no data backs */
    F_LABELS_SHORT = 0x800,   /* labels one shorter than the spikes */
    F_META_INFO = 0x1000,     /* extra/meta_info group */
    F_LABELS_2D = 0x2000,     /* labels as a 2-D dataset */
};

/* Writes the file; returns its flags + 1, or 0 when HDF5 could not create it. */
static unsigned build(const char *path, reader *r) {
    unsigned fl = get16(r);
    int n = (int)(get8(r) % 48);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return 0;
    hvl_t *tv = calloc((size_t)n + 1, sizeof *tv), *uv = calloc((size_t)n + 1, sizeof *uv);
    int *labels = calloc((size_t)n + 1, sizeof *labels);
    for (int i = 0; i < n; i++) {
        size_t len = get8(r) % 24;
        /* Units-length byte: 0xff one unit fewer than times, 0xfe one more, else as many. */
        unsigned ud = get8(r);
        size_t ulen = ud == 0xff ? (len ? len - 1 : 0) : ud == 0xfe ? len + 1 : len;
        double *t = malloc(sizeof(double) * (len + 1));
        int *u = malloc(sizeof(int) * (ulen + 1));
        for (size_t j = 0; j < len || j < ulen; j++) {
            double tt = time_of(get16(r));
            int uu = (int)(int16_t)get16(r);
            if (j < len)
                t[j] = tt;
            if (j < ulen)
                u[j] = uu >= 0 && uu < 1400 ? uu % 700 + (uu >= 1300 ? 700 : 0) : uu;
        }
        tv[i] = (hvl_t){len, t};
        uv[i] = (hvl_t){ulen, u};
    }
    for (int i = 0; i < n; i++)
        labels[i] = (int)get8(r) % 24;
    hsize_t declared = 0;
    if (fl & F_DECLARED) {
        unsigned d = get16(r);
        declared = (hsize_t)d | (hsize_t)get16(r) << 16;
        declared = declared ? declared : 1;
        /* FUZZ_SHD_MAX_DECLARED caps it, to explore the rest while finding 7 (docs/RELIABILITY.md,
         * unbacked declared lengths) is open. */
        const char *cap = getenv("FUZZ_SHD_MAX_DECLARED");
        if (cap && declared > (hsize_t)atol(cap))
            declared = (hsize_t)atol(cap);
    }

    hid_t tfile = fl & F_TIME_F64   ? H5T_IEEE_F64LE
                  : fl & F_TIME_F32 ? H5T_IEEE_F32LE
                                    : H5I_INVALID_HID;
    hid_t half = H5I_INVALID_HID;
    if (tfile == H5I_INVALID_HID) { /* float16 as h5py writes it */
        half = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(half, 15, 10, 5, 0, 10);
        H5Tset_size(half, 2);
        H5Tset_ebias(half, 15);
        tfile = half;
    }
    hid_t ufile = fl & F_UNITS_I32 ? H5T_STD_I32LE : H5T_STD_U16LE;
    hid_t vt_file = H5Tvlen_create(tfile), vu_file = H5Tvlen_create(ufile);
    hid_t vt_mem = H5Tvlen_create(H5T_NATIVE_DOUBLE), vu_mem = H5Tvlen_create(H5T_NATIVE_INT);
    /* Values out of the stored type's range: HDF5 converts with its own (clipping) rules. */
    if (fl & F_TIMES_NOT_VLEN) {
        double *flat = calloc((size_t)n + 1, sizeof *flat);
        write_1d(f, "spikes/times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, flat, (hsize_t)n, 0);
        free(flat);
    } else {
        write_1d(f, "spikes/times", vt_file, vt_mem, tv, (hsize_t)n, declared);
    }
    write_1d(f, "spikes/units", vu_file, vu_mem, uv, (hsize_t)n, declared);
    hsize_t nl = fl & F_LABELS_SHORT && n ? (hsize_t)n - 1 : (hsize_t)n;
    if (!(fl & F_NO_LABELS)) {
        if (fl & F_LABELS_FLOAT) {
            double *lf = calloc((size_t)n + 1, sizeof *lf);
            for (int i = 0; i < n; i++)
                lf[i] = labels[i] + 0.5;
            write_1d(f, "labels", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, lf, nl, declared);
            free(lf);
        } else if (fl & F_LABELS_2D) {
            hsize_t dims[2] = {nl, 1};
            hid_t sp = H5Screate_simple(2, dims, NULL);
            hid_t d =
                H5Dcreate2(f, "labels", H5T_STD_U16LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (d >= 0 && nl)
                H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
            if (d >= 0)
                H5Dclose(d);
            H5Sclose(sp);
        } else {
            write_1d(f, "labels", H5T_STD_U16LE, H5T_NATIVE_INT, labels, nl, declared);
        }
    }
    if (fl & F_SPEAKER)
        write_1d(f, "extra/speaker", H5T_STD_U16LE, H5T_NATIVE_INT, labels,
                 fl & F_SPEAKER_SHORT && n ? (hsize_t)n - 1 : (hsize_t)n, 0);
    if (fl & (F_KEYS_FIXED | F_KEYS_VLEN)) {
        static const char *keys[3] = {"null", "sieben", ""};
        hid_t st = H5Tcopy(H5T_C_S1);
        if (fl & F_KEYS_VLEN) {
            H5Tset_size(st, H5T_VARIABLE);
            write_1d(f, "extra/keys", st, st, keys, 3, 0);
        } else {
            char fixed[3][6];
            for (int k = 0; k < 3; k++)
                strncpy(fixed[k], keys[k], 6); /* full width: no terminator for "sieben" */
            H5Tset_size(st, 6);
            H5Tset_strpad(st, H5T_STR_NULLPAD);
            write_1d(f, "extra/keys", st, st, fixed, 3, 0);
        }
        H5Tclose(st);
    }
    if (fl & F_META_INFO) {
        hid_t g = H5Gcreate2(f, "extra/meta_info", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
            H5Pset_create_intermediate_group(lcpl, 1);
            g = H5Gcreate2(f, "extra/meta_info", lcpl, H5P_DEFAULT, H5P_DEFAULT);
            H5Pclose(lcpl);
        }
        if (g >= 0)
            H5Gclose(g);
    }
    H5Tclose(vt_file);
    H5Tclose(vu_file);
    H5Tclose(vt_mem);
    H5Tclose(vu_mem);
    if (half != H5I_INVALID_HID)
        H5Tclose(half);
    H5Fclose(f);
    for (int i = 0; i < n; i++) {
        free(tv[i].p);
        free(uv[i].p);
    }
    free(tv);
    free(uv);
    free(labels);
    return fl + 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the writer's own errors are not findings */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    char path[600];
    fuzz_path(path, sizeof path, "fuzz_shd.h5");
    reader r = {data, len, 0};
    unsigned fl = build(path, &r);
    if (!fl)
        return 0;
    FUZZ_ASSERT(H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "writer left objects open");
    elm_shd_opts o;
    elm_shd_opts_default(&o);
    /* Small chunks cross chunk boundaries; with a declared length (thousands of fill-value rows)
     * they would only make each execution slow. */
    o.read_chunk = (fl - 1) & F_DECLARED ? 256 : 3;
    elm_shd *d = NULL;
    elm_status st = elm_shd_load(&d, path, &o);
    FUZZ_ASSERT(H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) == 0,
                "elm_shd_load left %zd HDF5 objects open (status %d)",
                H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL), st);
    if (st != ELM_OK) {
        fuzz_note("shd", st, elm_last_error());
        FUZZ_ASSERT(d == NULL, "failed load returned data");
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz_shd.h5") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("shd", 0, "ok");
    size_t frame = (size_t)d->num_bins * (size_t)d->num_channels;
    float *x = malloc(2 * frame * sizeof *x);
    FUZZ_ASSERT(x != NULL, "oom");
    int64_t total = 0;
    for (int i = 0; i < d->n; i++) {
        FUZZ_ASSERT(d->labels[i] >= 0 && d->labels[i] < d->num_classes, "label %d", d->labels[i]);
        FUZZ_ASSERT(d->ptr[i + 1] >= d->ptr[i], "negative spike count");
        for (int64_t j = d->ptr[i]; j < d->ptr[i + 1]; j++)
            FUZZ_ASSERT(d->bin[j] < d->num_bins && d->chan[j] < d->num_channels,
                        "stored spike outside the frame");
        total += elm_shd_count(d, i);
        if (i >= 64)
            continue; /* frames are 280 KB each: bin the first samples only */
        elm_shd_fill(d, i, x);
        double sum = 0;
        for (size_t k = 0; k < frame; k++)
            sum += x[k];
        FUZZ_ASSERT(sum == (double)elm_shd_count(d, i), "frame holds %g spikes, sample %lld", sum,
                    (long long)elm_shd_count(d, i));
        /* The spike lists training uses are the frame's nonzeros, in order. */
        size_t cap = (size_t)(d->ptr[i + 1] - d->ptr[i]) + 1;
        int64_t *ends = malloc(sizeof *ends * (size_t)d->num_bins);
        int32_t *idx = malloc(sizeof *idx * cap);
        float *val = malloc(sizeof *val * cap);
        FUZZ_ASSERT(ends && idx && val, "oom");
        FUZZ_ASSERT(elm_shd_fill_sparse(d, i, 0, ends, idx, val, cap) == ELM_OK, "fill_sparse: %s",
                    elm_last_error());
        int64_t q = 0;
        for (int t = 0; t < d->num_bins; t++) {
            for (int c = 0; c < d->num_channels; c++) {
                float v = x[(size_t)t * (size_t)d->num_channels + (size_t)c];
                if (v == 0.0f)
                    continue;
                FUZZ_ASSERT(q < ends[t] && idx[q] == c && val[q] == v,
                            "sample %d bin %d channel %d: spike lists differ from the frame", i, t,
                            c);
                q++;
            }
            FUZZ_ASSERT(q == ends[t], "sample %d bin %d: extra list entries", i, t);
        }
        free(ends);
        free(idx);
        free(val);
        int l = elm_shd_adding_fill(d, i, d->n - 1 - i, x);
        FUZZ_ASSERT(l >= 0 && l < ELM_SHD_ADD_CLASSES, "adding label %d", l);
    }
    FUZZ_ASSERT(total == d->kept_spikes && d->kept_spikes <= d->total_spikes, "spike totals");
    free(x);
    elm_shd_free(d);
    return 0;
}
