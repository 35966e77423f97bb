/*
 * fuzz_nio_cache.c - libFuzzer driver for the NeuronIO cache reader (.nioc, docs/DATA.md).
 *
 * Input: one control byte, then the file. The cache carries a file size and FNV-1a checksums of
 * its table and blocks, which random mutations almost never keep right, so the control byte's
 * bits ask the driver to repair them after mutating (bit 0: file size, bit 1: block checksums,
 * bit 2: table checksum); with the bits clear the checks themselves are fuzzed.
 *
 * Then: open (the file is mapped; see fuzz_mmap.h), view every simulation, cut a window from each
 * the way training does (without the full verification, which training does not run), and verify.
 */
// fuzz-areas: neuronio
#include "fuzz_mmap.h"
#include "fuzz_util.h"
#include "neuronio/neuronio.h"
#include "neuronio/nio_data.h"

#include <stdlib.h>
#include <string.h>

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Repairs the fields random mutations break (see the opening comment). */
static void repair(uint8_t *m, size_t len, unsigned ctl) {
    if (len < 64)
        return;
    if (ctl & 1)
        put64(m + 32, len);
    uint32_t n = get32(m + 16);
    uint64_t table = get64(m + 24);
    if (table < 64 || table > len || (uint64_t)n * 64 > len - table)
        return;
    if (ctl & 2)
        for (uint32_t k = 0; k < n; k++) {
            uint8_t *e = m + table + 64 * (uint64_t)k;
            uint64_t off = get64(e + 24), bytes = get64(e + 32);
            if (off <= len && bytes <= len - off)
                put64(e + 40, fnv1a(m + off, (size_t)bytes));
        }
    if (ctl & 4)
        put64(m + 40, fnv1a(m + table, (size_t)n * 64));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    if (len < 1)
        return 0;
    size_t flen = len - 1;
    uint8_t *file = malloc(flen ? flen : 1);
    if (!file)
        return 0;
    memcpy(file, data + 1, flen);
    repair(file, flen, data[0]);
    char path[600];
    fuzz_path(path, sizeof path, "fuzz.nioc");
    fuzz_write(path, file, flen);
    free(file);

    elm_nio_cache *c = NULL;
    elm_status st = elm_nio_cache_open(&c, path);
    if (st != ELM_OK) {
        fuzz_note("nio_cache", st, elm_last_error());
        FUZZ_ASSERT(c == NULL, "failed open returned a cache");
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.nioc") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("nio_cache", 0, "opened");
    int n = elm_nio_cache_num_sims(c), n_in = elm_nio_cache_n_in(c);
    FUZZ_ASSERT(n >= 1 && n_in >= 1, "opened with %d sims, %d inputs", n, n_in);
    for (int k = 0; k < n && k < 64; k++) {
        elm_nio_view v;
        st = elm_nio_cache_sim(c, k, &v);
        fuzz_note("nio_cache sim", st, st ? elm_last_error() : "ok");
        if (st != ELM_OK)
            continue;
        /* Training cuts windows from any simulation it is handed; every soma value is read. */
        int W = v.T < 32 ? v.T : 32;
        float *x = malloc(sizeof(float) * (size_t)W * (size_t)n_in);
        float *y = malloc(sizeof(float) * (size_t)W * 2);
        FUZZ_ASSERT(x && y, "oom");
        int64_t *ends = malloc(sizeof *ends * (size_t)W);
        FUZZ_ASSERT(ends, "oom");
        for (int t0 = 0; t0<v.T; t0 += v.T> W ? v.T - W : 1) {
            st = elm_nio_fill_window(&v, t0, W, x, y, 1);
            fuzz_note("nio_cache window", st, st ? elm_last_error() : "ok");
            /* The spike-list window training cuts: refused exactly when the dense one is, and
             * otherwise the dense window's nonzeros in order. */
            int64_t nnz = elm_nio_window_nnz(&v, t0, W);
            size_t cap = nnz > 0 ? (size_t)nnz : 1;
            int32_t *idx = malloc(sizeof *idx * cap);
            float *val = malloc(sizeof *val * cap);
            FUZZ_ASSERT(idx && val, "oom");
            elm_status ss = nnz < 0 ? ELM_ERR_FORMAT
                                    : elm_nio_fill_window_sparse(&v, t0, W, 0, ends, idx, val, cap,
                                                                 NULL, 1);
            if (st == ELM_OK) {
                FUZZ_ASSERT(ss == ELM_OK, "sparse window refused where the dense one was cut: %s",
                            elm_last_error());
                int64_t q = 0;
                for (int t = 0; t < W; t++) {
                    for (int i = 0; i < n_in; i++) {
                        float xv = x[(size_t)t * (size_t)n_in + (size_t)i];
                        if (xv == 0.0f)
                            continue;
                        FUZZ_ASSERT(q < ends[t] && idx[q] == i && val[q] == xv,
                                    "sim %d step %d input %d: spike list differs", k, t0 + t, i);
                        q++;
                    }
                    FUZZ_ASSERT(q == ends[t], "sim %d step %d: extra spike-list entries", k,
                                t0 + t);
                }
            }
            free(idx);
            free(val);
            if (t0 + W >= v.T)
                break;
        }
        free(ends);
        free(x);
        free(y);
    }
    st = elm_nio_cache_verify(c);
    fuzz_note("nio_cache verify", st, st ? elm_last_error() : "ok");
    elm_nio_cache_close(c);
    return 0;
}
