/*
 * test_shd.c - the SHD reader, binning, splits, SHD-Adding pairs and input dropout.
 *
 * Fixtures: tests/fixtures/shd_tiny.h5 (+ shd_tiny_f32.h5 and the shd_bad folder), written by
 * tests/shd/make_tiny_shd.py. The expected counts below are the script's hand-made cases (and,
 * for its random samples, the kept counts and checksums it prints); binning is integer counting,
 * so every comparison here is exact.
 */
#include "shd/shd.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static char fixture_dir[2048];

static const char *fx(const char *name) {
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fixture_dir, name);
    return buf[k];
}

/* From make_tiny_shd.py's output. */
static const int labels_want[10] = {0, 19, 3, 10, 7, 12, 9, 15, 1, 18};
static const int64_t kept_want[10] = {7, 0, 3, 42, 15, 5, 31, 36, 19, 26};
static const int64_t checksum_want[10] = {142115, 0,       43443,   1253046, 554291,
                                          142403, 1062714, 1301559, 856052,  1013634};

typedef struct {
    int bin, chan, count;
} cell;

/* Checks that frame x (T, C) has exactly the listed nonzero cells. */
static void check_frame(const char *what, const float *x, int T, int C, const cell *cells,
                        int ncells) {
    double total = 0, want_total = 0;
    for (int k = 0; k < T * C; k++)
        total += (double)x[k];
    for (int k = 0; k < ncells; k++) {
        float got = x[cells[k].bin * C + cells[k].chan];
        CHECK(got == (float)cells[k].count, "%s: bin %d channel %d: got %g want %d", what,
              cells[k].bin, cells[k].chan, (double)got, cells[k].count);
        want_total += cells[k].count;
    }
    CHECK(total == want_total, "%s: frame sums to %g, want %g (stray counts)", what, total,
          want_total);
}

static int64_t frame_checksum(const float *x, int T, int C) {
    int64_t s = 0;
    for (int b = 0; b < T; b++)
        for (int c = 0; c < C; c++)
            s += (int64_t)x[b * C + c] * (b * 700 + c + 1);
    return s;
}

static void test_tiny(void) {
    elm_shd *d = NULL;
    CHECK_OK(elm_shd_load(&d, fx("shd_tiny.h5"), NULL));
    if (!d)
        return;
    CHECK(d->n == 10 && d->num_bins == 100 && d->num_channels == 700, "geometry %d %d %d", d->n,
          d->num_bins, d->num_channels);
    for (int i = 0; i < 10; i++)
        CHECK(d->labels[i] == labels_want[i], "label %d: %d", i, d->labels[i]);
    CHECK(d->total_spikes == 220, "total spikes %lld", (long long)d->total_spikes);
    int64_t kept = 0;
    for (int i = 0; i < 10; i++)
        kept += kept_want[i];
    CHECK(d->kept_spikes == kept, "kept %lld want %lld", (long long)d->kept_spikes,
          (long long)kept);
    CHECK(d->max_channel == 699, "max channel %d", d->max_channel);
    CHECK(d->empty_samples == 1, "empty samples %d", d->empty_samples);
    CHECK(d->last_min_s == 0.25 && d->last_max_s == 1.5, "last spike range %g..%g", d->last_min_s,
          d->last_max_s);
    CHECK(d->label_min == 0 && d->label_max == 19, "labels %d..%d", d->label_min, d->label_max);
    CHECK(d->speakers && d->num_speakers == 3, "speakers %d", d->num_speakers);
    CHECK(d->num_keys == 20 && !strcmp(d->keys[0], "zero") && !strcmp(d->keys[15], "fuenf") &&
              !strcmp(d->keys[17], "sieben"),
          "keys %d", d->num_keys);
    CHECK(d->has_meta_info == 1, "meta_info");

    float *x = malloc(100 * 700 * sizeof *x);
    /* Sample 0: bin edges (see make_tiny_shd.py); 1.0 s and 1.5 s dropped. */
    const cell s0[] = {{0, 0, 1}, {0, 699, 1}, {0, 5, 1}, {1, 5, 1}, {50, 350, 2}, {99, 699, 1}};
    elm_shd_fill(d, 0, x);
    check_frame("sample 0", x, 100, 700, s0, 6);
    elm_shd_fill(d, 1, x);
    check_frame("sample 1 (empty)", x, 100, 700, NULL, 0);
    const cell s2[] = {{25, 10, 2}, {12, 20, 1}};
    elm_shd_fill(d, 2, x);
    check_frame("sample 2", x, 100, 700, s2, 2);
    for (int i = 0; i < 10; i++) {
        elm_shd_fill(d, i, x);
        double sum = 0;
        for (int k = 0; k < 100 * 700; k++)
            sum += (double)x[k];
        CHECK(sum == (double)kept_want[i] && elm_shd_count(d, i) == kept_want[i],
              "sample %d: %g counts, want %lld", i, sum, (long long)kept_want[i]);
        int64_t cs = frame_checksum(x, 100, 700);
        CHECK(cs == checksum_want[i], "sample %d: checksum %lld want %lld", i, (long long)cs,
              (long long)checksum_want[i]);
    }

    /* Reading 3 samples at a time (chunk boundaries inside the file) gives the same data. */
    elm_shd_opts o;
    elm_shd_opts_default(&o);
    o.read_chunk = 3;
    elm_shd *d3 = NULL;
    CHECK_OK(elm_shd_load(&d3, fx("shd_tiny.h5"), &o));
    if (d3) {
        CHECK(!memcmp(d->ptr, d3->ptr, 11 * sizeof *d->ptr) &&
                  !memcmp(d->bin, d3->bin, (size_t)kept * sizeof *d->bin) &&
                  !memcmp(d->chan, d3->chan, (size_t)kept * sizeof *d->chan),
              "chunked read differs");
    }
    elm_shd_free(d3);

    /* float32 times, int32 units, int64 labels, no extra/: the same spikes. */
    elm_shd *df = NULL;
    CHECK_OK(elm_shd_load(&df, fx("shd_tiny_f32.h5"), NULL));
    if (df) {
        CHECK(df->n == 10 && df->kept_spikes == kept && df->total_spikes == 220,
              "f32 file: n %d kept %lld", df->n, (long long)df->kept_spikes);
        CHECK(!memcmp(d->ptr, df->ptr, 11 * sizeof *d->ptr) &&
                  !memcmp(d->bin, df->bin, (size_t)kept * sizeof *d->bin) &&
                  !memcmp(d->chan, df->chan, (size_t)kept * sizeof *d->chan) &&
                  !memcmp(d->labels, df->labels, 10 * sizeof(int)),
              "f32 file differs from the f16 one");
        CHECK(!df->speakers && df->num_keys == 0 && !df->has_meta_info, "f32 file has no extra");
    }
    elm_shd_free(df);
    free(x);
    elm_shd_free(d);
}

static void test_overrides(void) {
    elm_shd_opts o;
    elm_shd_opts_default(&o);
    o.bin_ms = 20;
    o.duration_ms = 500;
    elm_shd *d = NULL;
    CHECK_OK(elm_shd_load(&d, fx("shd_tiny.h5"), &o));
    if (!d)
        return;
    CHECK(d->num_bins == 25, "bins %d", d->num_bins);
    float *x = malloc(25 * 700 * sizeof *x);
    /* 0, 4, 9.99 and 10.002 ms fall in the first 20 ms bin; 500 ms and later are dropped. */
    const cell s0[] = {{0, 0, 1}, {0, 699, 1}, {0, 5, 2}};
    elm_shd_fill(d, 0, x);
    check_frame("20 ms bins, sample 0", x, 25, 700, s0, 3);
    /* 250 ms -> bin 12, 125 ms -> bin 6. */
    const cell s2[] = {{12, 10, 2}, {6, 20, 1}};
    elm_shd_fill(d, 2, x);
    check_frame("20 ms bins, sample 2", x, 25, 700, s2, 2);
    free(x);
    elm_shd_free(d);

    /* A partial last bin: 1000 / 30 -> 34 bins. */
    elm_shd_opts_default(&o);
    o.bin_ms = 30;
    CHECK_OK(elm_shd_load(&d, fx("shd_tiny.h5"), &o));
    if (d)
        CHECK(d->num_bins == 34, "30 ms bins: %d", d->num_bins);
    elm_shd_free(d);

    /* Fewer channels than the file uses, fewer classes than its labels: errors. */
    elm_shd_opts_default(&o);
    o.num_channels = 600;
    elm_status st = elm_shd_load(&d, fx("shd_tiny.h5"), &o);
    CHECK(st == ELM_ERR_FORMAT && d == NULL && strstr(elm_last_error(), "channel id 699"),
          "600 channels: %s", elm_last_error());
    elm_shd_opts_default(&o);
    o.num_classes = 19;
    st = elm_shd_load(&d, fx("shd_tiny.h5"), &o);
    CHECK(st == ELM_ERR_FORMAT && strstr(elm_last_error(), "label 19"), "19 classes: %s",
          elm_last_error());
}

static void expect_fail(const char *path, elm_status want, const char *msg) {
    elm_shd *d = NULL;
    elm_status st = elm_shd_load(&d, path, NULL);
    CHECK(st == want && d == NULL, "%s: got %s (%s), want %s", path, elm_status_str(st),
          elm_last_error(), elm_status_str(want));
    CHECK(strstr(elm_last_error(), msg) && strstr(elm_last_error(), path),
          "%s: message '%s' lacks '%s' or the path", path, elm_last_error(), msg);
}

static void test_bad(void) {
    char tmp[] = "/tmp/elm_shd_notHDF5_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) {
        const char text[] = "this is not an HDF5 file\n";
        CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1), "write");
        close(fd);
        expect_fail(tmp, ELM_ERR_FORMAT, "not an HDF5 file");
        CHECK(elm_shd_probe(tmp) == 0, "probe of a text file");
        unlink(tmp);
    }
    expect_fail("/nonexistent/shd_train.h5", ELM_ERR_IO, "cannot open");
    expect_fail(fx("shd_bad/no_labels.h5"), ELM_ERR_FORMAT, "no dataset 'labels'");
    expect_fail(fx("shd_bad/unit900.h5"), ELM_ERR_FORMAT, "sample 2, spike 1: channel id 900");
    expect_fail(fx("shd_bad/length_mismatch.h5"), ELM_ERR_SHAPE, "labels 2");
    expect_fail(fx("shd_bad/row_mismatch.h5"), ELM_ERR_SHAPE,
                "sample 2 has 3 spike times but 2 spike units");
    expect_fail(fx("shd_bad/nan_time.h5"), ELM_ERR_NUMERIC, "sample 2, spike 1: time nan");
    expect_fail(fx("shd_bad/negative_time.h5"), ELM_ERR_FORMAT, "time -0.125");
    expect_fail(fx("shd_bad/label25.h5"), ELM_ERR_FORMAT, "sample 1 has label 25");
    expect_fail(fx("shd_bad/float_units.h5"), ELM_ERR_FORMAT, "ragged float values");
    /* D22: the file's own values, not HDF5's conversions (2147483647, -inf, 2147483647). */
    expect_fail(fx("shd_bad/unit_2p32_plus5.h5"), ELM_ERR_FORMAT,
                "sample 2, spike 1: channel id 4294967301 outside 0..699");
    expect_fail(fx("shd_bad/time_minus_1e300.h5"), ELM_ERR_FORMAT,
                "sample 2, spike 1: time -1e+300 s");
    expect_fail(fx("shd_bad/label_2p32_plus5.h5"), ELM_ERR_FORMAT,
                "sample 1 has label 4294967301, outside 0..19");

    CHECK(elm_shd_probe(fx("shd_tiny.h5")) == 1, "probe tiny");
    CHECK(elm_shd_probe(fx("shd_bad/no_labels.h5")) == 1, "probe of a broken SHD file");
    CHECK(elm_shd_probe("/nonexistent.h5") == 0, "probe of a missing file");
    CHECK(elm_shd_probe(fixture_dir) == 0, "probe of a folder");
}

/* D9: float64 times are binned in float64 (as float32, 0.01 s and 0.03 s fell one bin early). */
static void test_f64_edges(void) {
    elm_shd *d = NULL;
    CHECK_OK(elm_shd_load(&d, fx("shd_f64_edges.h5"), NULL));
    if (!d)
        return;
    float *x = calloc((size_t)100 * 700, sizeof *x);
    elm_shd_fill(d, 0, x);
    static const int want[4] = {1, 3, 7, 29};
    for (int k = 0; k < 4; k++)
        CHECK(x[want[k] * 700 + 1] == 1.0f, "f64 edges: spike %d not in bin %d", k, want[k]);
    float total = 0;
    for (size_t i = 0; i < (size_t)100 * 700; i++)
        total += x[i];
    CHECK(total == 4.0f, "f64 edges: %g spikes binned, want 4", (double)total);
    memset(x, 0, (size_t)100 * 700 * sizeof *x);
    elm_shd_fill(d, 1, x);
    CHECK(x[50 * 700 + 2] == 1.0f, "f64 edges: 0.5 s not in bin 50");
    free(x);
    elm_shd_free(d);
}

static void test_split(void) {
    int *a = NULL, *h = NULL, na = 0, nh = 0;
    CHECK_OK(elm_shd_split(8156, 0.1, 42, &a, &na, &h, &nh));
    CHECK(nh == 816 && na == 8156 - 816, "split sizes %d %d", na, nh);
    /* Disjoint, covering, sorted. */
    char *seen = calloc(8156, 1);
    int ok = 1;
    for (int i = 0; i < na; i++)
        ok &= a[i] >= 0 && a[i] < 8156 && !seen[a[i]]++ && (i == 0 || a[i] > a[i - 1]);
    for (int i = 0; i < nh; i++)
        ok &= h[i] >= 0 && h[i] < 8156 && !seen[h[i]]++ && (i == 0 || h[i] > h[i - 1]);
    CHECK(ok, "split is not a sorted partition");
    int *a2, *h2, na2, nh2;
    CHECK_OK(elm_shd_split(8156, 0.1, 42, &a2, &na2, &h2, &nh2));
    CHECK(nh2 == nh && !memcmp(h, h2, (size_t)nh * sizeof *h), "same seed, different split");
    free(a2);
    free(h2);
    CHECK_OK(elm_shd_split(8156, 0.1, 43, &a2, &na2, &h2, &nh2));
    CHECK(memcmp(h, h2, (size_t)nh * sizeof *h) != 0, "another seed, same split");
    free(a2);
    free(h2);
    free(seen);
    free(a);
    free(h);
    /* Tiny sizes: never empty on either side. */
    CHECK_OK(elm_shd_split(3, 0.2, 1, &a, &na, &h, &nh));
    CHECK(na == 2 && nh == 1, "split of 3: %d %d", na, nh);
    free(a);
    free(h);
    CHECK(elm_shd_split(10, 1.0, 1, &a, &na, &h, &nh) == ELM_ERR_ARG, "fraction 1 accepted");
}

static void test_adding(void) {
    /* Labels of every pair of SHD classes fall in 0..18, and all 19 occur. */
    int hit[19] = {0};
    int ok = 1;
    for (int l1 = 0; l1 < 20; l1++)
        for (int l2 = 0; l2 < 20; l2++) {
            int l = elm_shd_adding_label(l1, l2);
            ok &= l >= 0 && l < 19 && l == l1 % 10 + l2 % 10;
            if (l >= 0 && l < 19)
                hit[l]++;
        }
    for (int l = 0; l < 19; l++)
        ok &= hit[l] > 0;
    CHECK(ok, "adding labels");
    CHECK(elm_shd_adding_label(19, 13) == 12 && elm_shd_adding_label(0, 10) == 0, "9+3, 0+0");

    elm_shd *d = NULL;
    CHECK_OK(elm_shd_load(&d, fx("shd_tiny.h5"), NULL));
    if (!d)
        return;
    int pool[] = {0, 2, 3, 5, 8, 9};
    enum { N = 64 };
    int f1[N], s1[N], f2[N], s2[N], f3[N], s3[N];
    elm__rng r;
    elm__rng_seed(&r, 7);
    elm_shd_adding_draw(f1, s1, N, pool, 6, &r);
    elm_shd_adding_draw(f3, s3, N, pool, 6, &r); /* the next epoch from the same stream */
    elm__rng_seed(&r, 7);
    elm_shd_adding_draw(f2, s2, N, pool, 6, &r);
    CHECK(!memcmp(f1, f2, sizeof f1) && !memcmp(s1, s2, sizeof s1), "same seed, other pairs");
    CHECK(memcmp(f1, f3, sizeof f1) || memcmp(s1, s3, sizeof s1), "next epoch repeats pairs");
    int inpool = 1, same = 0;
    for (int k = 0; k < N; k++) {
        int a = 0, b = 0;
        for (int p = 0; p < 6; p++) {
            a |= f1[k] == pool[p];
            b |= s1[k] == pool[p];
        }
        inpool &= a && b;
        same += f1[k] == s1[k];
        int l = elm_shd_adding_label(d->labels[f1[k]], d->labels[s1[k]]);
        CHECK(l >= 0 && l <= 18, "pair %d label %d", k, l);
    }
    CHECK(inpool, "a draw left the pool");
    /* With replacement: with 6 samples, 64 pairs all distinct-within would have p ~ (5/6)^64. */
    CHECK(same > 0, "no pair drew the same sample twice (not with replacement?)");
    /* ...but independently: about 1 pair in 6 repeats its sample (64 / 6 ~ 11), not most. */
    CHECK(same < N / 3, "%d of %d pairs draw the same sample twice (not independent?)", same, N);

    /* Frames: sample 0's 100 steps, then sample 2's. */
    float *x = malloc(200 * 700 * sizeof *x), *y = malloc(100 * 700 * sizeof *y);
    int l = elm_shd_adding_fill(d, 0, 2, x);
    CHECK(l == (0 % 10) + (3 % 10), "pair label %d", l);
    elm_shd_fill(d, 0, y);
    CHECK(!memcmp(x, y, 100 * 700 * sizeof *x), "first half is not sample 0");
    elm_shd_fill(d, 2, y);
    CHECK(!memcmp(x + 100 * 700, y, 100 * 700 * sizeof *x), "second half is not sample 2");
    const cell both[] = {{0, 0, 1},    {0, 699, 1},  {0, 5, 1},    {1, 5, 1},
                         {50, 350, 2}, {99, 699, 1}, {125, 10, 2}, {112, 20, 1}};
    check_frame("pair (0, 2)", x, 200, 700, both, 8);
    free(x);
    free(y);
    elm_shd_free(d);
}

static void test_dropout(void) {
    enum { N = 200000 };
    float *x = malloc(N * sizeof *x);
    for (int k = 0; k < N; k++)
        x[k] = k % 2 ? (float)(k % 3 + 1) : 0.0f;
    elm__rng r;
    elm__rng_seed(&r, 3);
    elm_shd_input_dropout(x, N, 0.5, &r);
    int ok = 1, zeroed = 0;
    for (int k = 0; k < N; k++) {
        if (k % 2 == 0) {
            ok &= x[k] == 0.0f;
            continue;
        }
        float orig = (float)(k % 3 + 1);
        ok &= x[k] == 0.0f || x[k] == 2.0f * orig;
        zeroed += x[k] == 0.0f;
    }
    CHECK(ok, "dropout values are not 0 or 2x");
    /* 100000 nonzero inputs: binomial sd of the dropped fraction is 0.0016; allow 6 sd. */
    double frac = zeroed / 100000.0;
    CHECK(fabs(frac - 0.5) < 0.01, "dropped fraction %g", frac);
    for (int k = 0; k < N; k++)
        x[k] = 1.0f;
    elm_shd_input_dropout(x, N, 0.0, &r);
    for (int k = 0; k < N; k++)
        ok &= x[k] == 1.0f;
    CHECK(ok, "p = 0 changed the input");
    free(x);
}

/* elm_shd_fill_sparse against elm_shd_fill on a hand-made data set whose spikes are out of time
 * order and repeat (bin, channel) pairs (counts above 1), two samples written back to back. */
static void test_fill_sparse(void) {
    enum { T = 6, C = 9, N0 = 14, N1 = 5 };
    int64_t ptr[3] = {0, N0, N0 + N1};
    uint16_t bin[N0 + N1] = {5, 0, 2, 2, 5, 0, 2, 3, 5, 5, 0, 1, 2, 5, /* sample 1: */ 4, 4, 4, 0,
                             4};
    uint16_t chan[N0 + N1] = {3, 8, 1, 7, 3, 8, 1, 0, 2, 3, 4, 6, 7, 0, /* sample 1: */ 8, 2, 8, 5,
                              8};
    elm_shd d;
    memset(&d, 0, sizeof d);
    d.n = 2;
    d.num_bins = T;
    d.num_channels = C;
    d.ptr = ptr;
    d.bin = bin;
    d.chan = chan;
    int64_t rp[2 * T + 1];
    int32_t idx[N0 + N1];
    float val[N0 + N1], dense[T * C], back[T * C];
    rp[0] = 0;
    CHECK_OK(elm_shd_fill_sparse(&d, 0, 0, rp + 1, idx, val, N0 + N1));
    CHECK_OK(elm_shd_fill_sparse(&d, 1, rp[T], rp + T + 1, idx, val, N0 + N1));
    for (int i = 0; i < 2; i++) {
        elm_shd_fill(&d, i, dense);
        memset(back, 0, sizeof back);
        int sorted = 1;
        for (int t = 0; t < T; t++)
            for (int64_t k = rp[i * T + t]; k < rp[i * T + t + 1]; k++) {
                sorted &= k == rp[i * T + t] || idx[k] > idx[k - 1];
                back[t * C + idx[k]] = val[k];
            }
        CHECK(sorted && !memcmp(dense, back, sizeof dense),
              "sample %d: spike lists differ from the dense bins", i);
    }
    CHECK(rp[1] == 2 && idx[0] == 4 && idx[1] == 8 && val[0] == 1.0f && val[1] == 2.0f,
          "bin 0: channels 4 (1 spike) and 8 (2 spikes) expected");
    CHECK(elm_shd_fill_sparse(&d, 0, 0, rp + 1, idx, val, N0 - 1) == ELM_ERR_ARG,
          "a too small buffer is not refused");
}

int main(void) {
    test_fill_sparse();
    test_fixture(fixture_dir, "");
    test_tiny();
    test_overrides();
    test_bad();
    test_f64_edges();
    test_split();
    test_adding();
    test_dropout();
    return test_end();
}
