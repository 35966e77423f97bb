/*
 * test_nio_cache.c - the NeuronIO cache: pickle -> cache -> mmap reader round trip (bit exact),
 * the folder index, data sets over caches and pickles, model-ready windows (sign applied once,
 * zero padding past the end, targets), float32 soma, and corrupt / truncated cache files, which
 * must give errors naming the file, never crashes.
 */
#include "elm.h"
#include "neuronio/nio_data.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEV_NAME                                                                                   \
    "L5PC_sim__Output_spikes_0056__Input_ranges_Exc_[0520,1017]_Inh_[0385,0839]_per100ms__simXsec_" \
    "8x6_randseed_700001.p"

static char tmpdir[256];

static void view_equals_sim(const elm_nio_view *v, const elm_nio_sim *s, int k) {
    int ok = v->T == s->T && v->n_in == s->n_in && v->n_out_spikes == s->n_out_spikes &&
             v->spike_ptr[v->T] == s->spike_ptr[s->T];
    CHECK(ok, "sim %d: sizes differ after the round trip", k);
    if (!ok)
        return;
    CHECK(!memcmp(v->spike_ptr, s->spike_ptr, sizeof(int64_t) * (size_t)(s->T + 1)) &&
              !memcmp(v->spike_idx, s->spike_idx, 2 * (size_t)s->spike_ptr[s->T]),
          "sim %d: spikes differ", k);
    int bad = 0;
    for (int t = 0; t < s->T; t++)
        bad += elm_nio_view_soma(v, t) != s->soma[t];
    CHECK(bad == 0, "sim %d: %d soma samples differ", k, bad);
    for (int i = 0; i < s->n_out_spikes; i++)
        CHECK(v->out_spike_times[i] == s->out_spike_times[i], "sim %d: output spike %d", k, i);
}

static int copy_file(const char *from, const char *to, size_t keep, long flip_at) {
    FILE *f = fopen(from, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n);
    size_t got = fread(b, 1, n, f);
    fclose(f);
    if (got != n)
        return 0;
    if (flip_at >= 0 && (size_t)flip_at < n)
        b[flip_at] ^= 0x10;
    FILE *g = fopen(to, "wb");
    fwrite(b, 1, keep < n ? keep : n, g);
    fclose(g);
    free(b);
    return 1;
}

static long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

int main(void) {
    const char *shared = test_shared();
    char dev[4096], cache_dir[512], cache_file[600], bad[600], idx[600];
    snprintf(dev, sizeof dev, "%s/data/neuronio/%s", shared, DEV_NAME);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/elm_test_nio_cache_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return test_end();
    }
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", tmpdir);
    snprintf(cache_file, sizeof cache_file, "%s/dev.nioc", cache_dir);
    snprintf(bad, sizeof bad, "%s/bad.nioc", tmpdir);
    snprintf(idx, sizeof idx, "%s/index.json", cache_dir);

    elm_nio_sim *sims = NULL;
    int n = 0;
    CHECK_OK(elm_nio_pickle_read(dev, &sims, &n));
    elm_nio_writer *w = NULL;
    CHECK_OK(elm_nio_writer_open(&w, cache_dir, "dev"));
    for (int k = 0; k < n && w; k++)
        CHECK_OK(elm_nio_writer_add(w, &sims[k]));
    CHECK_OK(elm_nio_writer_close(w));
    long sz = file_size(cache_file);
    printf("cache of %d simulations: %ld bytes (pickle: %ld)\n", n, sz, file_size(dev));
    CHECK(sz > 0 && sz < file_size(dev) / 3, "cache size %ld", sz);
    CHECK(file_size(idx) > 0, "index.json missing");

    elm_nio_cache *c = NULL;
    CHECK_OK(elm_nio_cache_open(&c, cache_file));
    if (c) {
        CHECK(elm_nio_cache_num_sims(c) == n && elm_nio_cache_n_in(c) == 1278, "cache header");
        CHECK_OK(elm_nio_cache_verify(c));
        for (int k = 0; k < n; k++) {
            elm_nio_view v;
            CHECK_OK(elm_nio_cache_sim(c, k, &v));
            CHECK(v.soma_f16 == 1, "float16 soma should be stored as half");
            view_equals_sim(&v, &sims[k], k);
        }
        CHECK(elm_nio_cache_sim(c, n, &(elm_nio_view){0}) == ELM_ERR_ARG, "sim n accepted");
    }
    elm_nio_cache_close(c);

    /* Data sets: the cache folder and the pickle give the same simulations and windows. */
    elm_nio_data *dc = NULL, *dp = NULL;
    const char *pc = cache_dir, *pp = dev;
    CHECK_OK(elm_nio_data_open(&dc, &pc, 1));
    CHECK_OK(elm_nio_data_open(&dp, &pp, 1));
    if (dc && dp) {
        CHECK(elm_nio_data_num_sims(dc) == 8 && elm_nio_data_num_files(dc) == 1 &&
                  elm_nio_data_n_in(dc) == 1278,
              "cache data set shape");
        const int TW = 500, I = 1278;
        float *x1 = malloc(sizeof(float) * TW * I), *x2 = malloc(sizeof(float) * TW * I);
        float *y1 = malloc(sizeof(float) * TW * 2), *y2 = malloc(sizeof(float) * TW * 2);
        elm_nio_view a, b;
        CHECK_OK(elm_nio_data_sim(dc, 2, &a));
        CHECK_OK(elm_nio_data_sim(dp, 2, &b));
        /* Window over the first output spike of simulation 2, with the sign applied. */
        int bin = elm_nio_spike_bin((double)a.out_spike_times[0]);
        int t0 = bin - 100 > 0 ? bin - 100 : 0;
        CHECK_OK(elm_nio_fill_window(&a, t0, TW, x1, y1, 1));
        CHECK_OK(elm_nio_fill_window(&b, t0, TW, x2, y2, 1));
        CHECK(!memcmp(x1, x2, sizeof(float) * TW * I) && !memcmp(y1, y2, sizeof(float) * TW * 2),
              "cache and pickle windows differ");
        CHECK(y1[2 * (bin - t0)] == 1.0f, "spike target missing at bin %d", bin);
        /* Each spike appears once with its sign: +1 for ids < 639, -1 above. */
        long pos = 0, neg = 0, other = 0, want = 0;
        for (int t = 0; t < TW; t++) {
            want += a.spike_ptr[t0 + t + 1] - a.spike_ptr[t0 + t];
            for (int i = 0; i < I; i++) {
                float v = x1[t * I + i];
                if (v == 1.0f && i < 639)
                    pos++;
                else if (v == -1.0f && i >= 639)
                    neg++;
                else if (v != 0.0f)
                    other++;
            }
        }
        CHECK(pos + neg == want && other == 0 && pos > 0 && neg > 0,
              "signed window: %ld + %ld spikes (want %ld), %ld misplaced", pos, neg, want, other);
        /* Unsigned: the same positions, all +1. */
        CHECK_OK(elm_nio_fill_window(&a, t0, TW, x2, NULL, 0));
        int same = 1;
        for (int i = 0; i < TW * I; i++)
            same &= x2[i] == (x1[i] != 0.0f ? 1.0f : 0.0f);
        CHECK(same, "unsigned window differs from |signed|");
        /* Soma target: clipped at -55 mV and scaled. */
        for (int t = 0; t < TW; t++) {
            double v = (double)elm_nio_view_soma(&a, t0 + t);
            double want_s = ((v > -55 ? -55 : v) + 67.7) * 0.1;
            if (fabs((double)y1[2 * t + 1] - want_s) > 1e-5) {
                CHECK(0, "soma target at %d: %g want %g", t, (double)y1[2 * t + 1], want_s);
                break;
            }
        }
        /* Past the end: zeros (the reference pads its last window). */
        CHECK_OK(elm_nio_fill_window(&a, 5800, TW, x1, y1, 1));
        int zeros = 1;
        for (int i = 200 * I; i < TW * I; i++)
            zeros &= x1[i] == 0.0f;
        for (int t = 200; t < TW; t++)
            zeros &= y1[2 * t] == 0.0f && y1[2 * t + 1] == 0.0f;
        CHECK(zeros, "padding past the end is not zero");
        /* Spike-list windows (what training hands the model) are the dense windows' nonzeros,
         * in order, with the same targets: mid-simulation, over the first output spike, and
         * running past the end; two windows back to back in one buffer. */
        {
            const int starts[3] = {500, t0, 5800};
            int64_t *ptr = malloc(sizeof *ptr * (2 * (size_t)TW + 1));
            size_t cap = 0;
            for (int k = 0; k < 3; k++)
                cap += (size_t)elm_nio_window_nnz(&a, starts[k], TW);
            int32_t *ids32 = malloc(sizeof *ids32 * (cap + 1));
            float *val = malloc(sizeof *val * (cap + 1));
            for (int k = 0; k < 3; k++) {
                ptr[0] = 0;
                int64_t nnz = elm_nio_window_nnz(&a, starts[k], TW);
                CHECK(nnz >= 0, "window nnz");
                /* The second copy starts where the first ends: ptr[TW] is its ptr[0]. */
                CHECK_OK(elm_nio_fill_window_sparse(&a, starts[k], TW, ptr[0], ptr + 1, ids32, val,
                                                    cap, y2, 1));
                CHECK_OK(elm_nio_fill_window_sparse(&a, starts[k], TW, ptr[TW], ptr + TW + 1, ids32,
                                                    val, cap, NULL, 1));
                CHECK(ptr[TW] == nnz && ptr[2 * TW] == 2 * nnz, "window %d: %lld spikes, want %lld",
                      k, (long long)ptr[TW], (long long)nnz);
                CHECK_OK(elm_nio_fill_window(&a, starts[k], TW, x1, y1, 1));
                int eq = !memcmp(y1, y2, sizeof(float) * TW * 2);
                for (int t = 0; t < TW && eq; t++) {
                    int64_t q = ptr[t];
                    for (int i = 0; i < I; i++)
                        if (x1[t * I + i] != 0.0f)
                            eq &= q < ptr[t + 1] && ids32[q] == i && val[q++] == x1[t * I + i];
                    eq &= q == ptr[t + 1];
                }
                CHECK(eq, "sparse window %d (t0 %d) differs from the dense one", k, starts[k]);
            }
            /* Too little room, and lists out of order, are errors, not overruns. */
            ptr[0] = 0;
            CHECK(elm_nio_window_nnz(&a, 500, TW) > 0 &&
                      elm_nio_fill_window_sparse(&a, 500, TW, 0, ptr + 1, ids32, val, 1, NULL, 1) ==
                          ELM_ERR_ARG,
                  "a too small buffer is not refused");
            elm_nio_view unsorted = a;
            int64_t tt = 500;
            while (tt < a.T && a.spike_ptr[tt + 1] - a.spike_ptr[tt] < 2)
                tt++;
            uint16_t *ids = malloc(sizeof *ids * (size_t)a.spike_ptr[a.T]);
            memcpy(ids, a.spike_idx, sizeof *ids * (size_t)a.spike_ptr[a.T]);
            uint16_t sw = ids[a.spike_ptr[tt]];
            ids[a.spike_ptr[tt]] = ids[a.spike_ptr[tt] + 1];
            ids[a.spike_ptr[tt] + 1] = sw;
            unsorted.spike_idx = ids;
            ptr[0] = 0;
            CHECK(elm_nio_fill_window_sparse(&unsorted, (int)tt, 10, 0, ptr + 1, ids32, val, cap, NULL, 1) ==
                          ELM_ERR_FORMAT &&
                      strstr(elm_last_error(), "not ascending"),
                  "ids out of order are not refused: %s", elm_last_error());
            CHECK(elm_nio_fill_window(&unsorted, (int)tt, 10, x1, NULL, 1) == ELM_ERR_FORMAT &&
                      strstr(elm_last_error(), "not ascending"),
                  "the dense window accepts ids out of order: %s", elm_last_error());
            free(ids);
            free(ids32);
            free(val);
            free(ptr);
        }
        free(x1);
        free(x2);
        free(y1);
        free(y2);
    }
    elm_nio_data_free(dc);
    elm_nio_data_free(dp);

    /* Float32 soma that half cannot hold: stored as float32, read back exactly. */
    {
        elm_nio_sim s = sims[1];
        float *soma = malloc(sizeof(float) * (size_t)s.T);
        for (int t = 0; t < s.T; t++)
            soma[t] = s.soma[t] + 0.001f * (float)(t % 7);
        s.soma = soma;
        char d2[600];
        snprintf(d2, sizeof d2, "%s/f32", tmpdir);
        CHECK_OK(elm_nio_writer_open(&w, d2, "one"));
        CHECK_OK(elm_nio_writer_add(w, &s));
        CHECK_OK(elm_nio_writer_close(w));
        snprintf(d2, sizeof d2, "%s/f32/one.nioc", tmpdir);
        CHECK_OK(elm_nio_cache_open(&c, d2));
        elm_nio_view v;
        if (c && elm_nio_cache_sim(c, 0, &v) == ELM_OK) {
            CHECK(v.soma_f16 == 0, "float32 soma stored as half");
            view_equals_sim(&v, &s, 0);
        }
        elm_nio_cache_close(c);
        /* NaN soma is refused by the writer. */
        soma[10] = NAN;
        CHECK_OK(elm_nio_writer_open(&w, tmpdir, "nan"));
        CHECK(elm_nio_writer_add(w, &s) == ELM_ERR_NUMERIC, "NaN soma accepted");
        elm_nio_writer_abort(w);
        free(soma);
    }
    /* A writer closed with no simulation fails and leaves no file. */
    CHECK_OK(elm_nio_writer_open(&w, tmpdir, "empty"));
    CHECK(elm_nio_writer_close(w) != ELM_OK, "empty cache accepted");
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty.nioc", tmpdir);
    CHECK(file_size(empty) < 0, "empty cache file left behind");

    /* Truncations and flipped bytes of the cache file. */
    long cuts[] = {0, 10, 63, 64, 1000, sz / 2, sz - 64 * 8 - 1, sz - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_file(cache_file, bad, (size_t)cuts[i], -1);
        CHECK(elm_nio_cache_open(&c, bad) != ELM_OK, "cache cut at %ld opened", cuts[i]);
        CHECK(strstr(elm_last_error(), "bad.nioc") != NULL, "message names no file: %s",
              elm_last_error());
        elm_nio_cache_close(c);
        c = NULL;
    }
    /* A flip in the header or the table: refused at open. */
    long table_flips[] = {0, 9, 17, 25, 33, sz - 64 * 8 + 3, sz - 1 - 20};
    for (size_t i = 0; i < sizeof table_flips / sizeof table_flips[0]; i++) {
        copy_file(cache_file, bad, (size_t)sz, table_flips[i]);
        CHECK(elm_nio_cache_open(&c, bad) != ELM_OK, "flip at %ld opened", table_flips[i]);
        elm_nio_cache_close(c);
        c = NULL;
    }
    /* A flip in simulation data: opens (cheap checks), but verify finds it. */
    copy_file(cache_file, bad, (size_t)sz, 64 + 8 * 3000 + 5);
    CHECK_OK(elm_nio_cache_open(&c, bad));
    if (c)
        CHECK(elm_nio_cache_verify(c) == ELM_ERR_FORMAT, "data flip not found by verify");
    elm_nio_cache_close(c);
    /* A folder without NeuronIO data: a clear error. */
    char nodata[600];
    snprintf(nodata, sizeof nodata, "%s/f32/nothing", tmpdir);
    mkdir(nodata, 0755);
    const char *notdir = nodata;
    elm_nio_data *dn = NULL;
    CHECK(elm_nio_data_open(&dn, &notdir, 1) != ELM_OK, "a folder without data opened");

    elm_nio_sims_free(sims, n);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0, "cleanup");
    return test_end();
}
