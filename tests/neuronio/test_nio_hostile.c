/*
 * test_nio_hostile.c - hostile NeuronIO inputs from the second reliability review (issue 15,
 * docs/RELIABILITY.md, findings D2, D3, D11, D21, D23): pickles that reference one spike list or
 * one simulation from many places through the pickle memo, repeated dict keys, and caches whose
 * contents no longer match their checksums. Every input is built here by a small protocol-2
 * pickle writer, so the test needs nothing from ../shared.
 */
#include "elm.h"
#include "neuronio/metrics.h"
#include "neuronio/nio_data.h"
#include "test.h"

#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* ---- a protocol-2 pickle writer ------------------------------------------------------------ */

typedef struct pw {
    uint8_t *b;
    size_t n, cap;
} pw;

static void pw_raw(pw *w, const void *p, size_t n) {
    if (n == 0) /* an empty string's bytes may be NULL; memcpy must not see it */
        return;
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 1024;
        w->b = realloc(w->b, w->cap);
        if (!w->b)
            exit(1);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void pw_op(pw *w, int op) {
    uint8_t c = (uint8_t)op;
    pw_raw(w, &c, 1);
}
static void pw_u32(pw *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pw_raw(w, b, 4);
}
/* An int: BININT1, BININT2 or BININT as Python picks them. */
static void pw_int(pw *w, int32_t v) {
    if (v >= 0 && v < 256) {
        pw_op(w, 'K');
        pw_op(w, v);
    } else if (v >= 0 && v < 65536) {
        pw_op(w, 'M');
        pw_op(w, v & 255);
        pw_op(w, v >> 8);
    } else {
        pw_op(w, 'J');
        pw_u32(w, (uint32_t)v);
    }
}
static void pw_str(pw *w, const char *s) {
    pw_op(w, 'X');
    pw_u32(w, (uint32_t)strlen(s));
    pw_raw(w, s, strlen(s));
}
static void pw_put(pw *w, uint32_t idx) {
    pw_op(w, 'r');
    pw_u32(w, idx);
}
static void pw_get(pw *w, uint32_t idx) {
    pw_op(w, 'j');
    pw_u32(w, idx);
}
/* A 1-D float32 numpy array as numpy pickles it (_reconstruct + BUILD). */
static void pw_f32_array(pw *w, const float *v, uint32_t n) {
    static const char head[] = "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
                               "K\x00\x85U\x01"
                               "b\x87R(K\x01";
    pw_raw(w, head, sizeof head - 1);
    pw_op(w, 'J');
    pw_u32(w, n);
    static const char mid[] = "\x85"
                              "cnumpy\ndtype\nU\x02"
                              "f4\x89\x88\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
                              "K\x00tb\x89T";
    pw_raw(w, mid, sizeof mid - 1);
    pw_u32(w, 4 * n);
    pw_raw(w, v, 4 * (size_t)n);
    pw_raw(w, "tb", 2);
}
static void pw_save(pw *w, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(w->b, 1, w->n, f) != w->n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/*
 * A NeuronIO pickle: n_seg segments, T ms, n_sims rows of listOfSingleSimulationDicts. Memo
 * slots: 1 the soma array, 2 the empty outputSpikeTimes array, 3 the simulation dict. The spike
 * maps are written by `spikes(w, which, ctx)` (which: 0 ex, 1 inh), which must leave one dict on
 * the stack. With share_sim, rows 2.. are LONG_BINGETs of the first simulation dict.
 */
typedef void (*spike_writer)(pw *w, int which, void *ctx);

static void nio_pickle(pw *w, int n_seg, int T, int n_sims, int share_sim, spike_writer spikes,
                       void *ctx) {
    pw_op(w, 0x80);
    pw_op(w, 2);
    pw_op(w, '}');
    pw_op(w, '(');
    pw_str(w, "Params");
    pw_op(w, '}');
    pw_op(w, '(');
    pw_str(w, "allSegmentsType");
    pw_op(w, ']');
    pw_op(w, '(');
    for (int s = 0; s < n_seg; s++)
        pw_str(w, "basal");
    pw_op(w, 'e');
    pw_str(w, "totalSimDurationInSec");
    pw_int(w, T / 1000); /* whole seconds in these tests */
    pw_op(w, 'u');
    pw_str(w, "Results");
    pw_op(w, '}');
    pw_str(w, "listOfSingleSimulationDicts");
    pw_op(w, ']');
    pw_op(w, '(');
    float *soma = malloc(sizeof(float) * (size_t)T);
    for (int t = 0; t < T; t++)
        soma[t] = -70.0f + (float)(t % 7);
    for (int k = 0; k < n_sims; k++) {
        if (share_sim && k > 0) {
            pw_get(w, 3);
            continue;
        }
        pw_op(w, '}');
        if (k == 0)
            pw_put(w, 3);
        pw_op(w, '(');
        pw_str(w, "somaVoltageLowRes");
        if (k == 0) {
            pw_f32_array(w, soma, (uint32_t)T);
            pw_put(w, 1);
        } else {
            pw_get(w, 1);
        }
        pw_str(w, "outputSpikeTimes");
        if (k == 0) {
            pw_f32_array(w, NULL, 0);
            pw_put(w, 2);
        } else {
            pw_get(w, 2);
        }
        pw_str(w, "exInputSpikeTimes");
        spikes(w, 0, ctx);
        pw_str(w, "inhInputSpikeTimes");
        spikes(w, 1, ctx);
        pw_op(w, 'u');
    }
    free(soma);
    pw_op(w, 'e');
    pw_op(w, 's');
    pw_op(w, 'u');
    pw_op(w, '.');
}

/* ---- D3: one list [0]*1000 shared by every segment, rows in descending order ---------------- */

typedef struct shared_list {
    int n_seg, len, value, descending;
} shared_list;

static void spikes_shared(pw *w, int which, void *ctx) {
    shared_list *c = ctx;
    pw_op(w, '}');
    pw_op(w, '(');
    for (int i = 0; i < c->n_seg; i++) {
        int s = c->descending ? c->n_seg - 1 - i : i;
        pw_int(w, s);
        if (which == 0 && i == 0) {
            pw_op(w, ']');
            pw_op(w, '(');
            for (int j = 0; j < c->len; j++)
                pw_int(w, c->value + (j % 3 == 2)); /* mostly `value`, every third value + 1 */
            pw_op(w, 'e');
            pw_put(w, 10);
        } else {
            pw_get(w, 10);
        }
    }
    pw_op(w, 'u');
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long max_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static void test_shared_list(void) {
    /* 639 segments (1278 inputs), 6 s: the shared list [0, 0, 1]*333 + [0] referenced by every
     * row of both maps, in descending row order. The old reader expanded 1.28 M ids into step 0
     * and insertion-sorted them from the wrong end: minutes for this 13 KB file. */
    shared_list c = {.n_seg = 639, .len = 1000, .value = 0, .descending = 1};
    pw w = {0};
    nio_pickle(&w, c.n_seg, 6000, 1, 0, spikes_shared, &c);
    const char *p = tpath("d3_shared_list_sim__.p");
    pw_save(&w, p);
    printf("D3 pickle: %zu bytes\n", w.n);
    free(w.b);
    elm_nio_sim *sims = NULL;
    int n = 0;
    double t0 = now_s();
    CHECK_OK(elm_nio_pickle_read(p, &sims, &n));
    double dt = now_s() - t0;
    printf("D3 read in %.3f s\n", dt);
    CHECK(dt < 5.0, "D3: reading took %.1f s (linear work: milliseconds)", dt);
    if (n == 1) {
        const elm_nio_sim *s = &sims[0];
        /* Steps 0 and 1 hold every input once, ascending; nothing else. */
        CHECK(s->spike_ptr[1] == 1278 && s->spike_ptr[2] == 2556 && s->spike_ptr[6000] == 2556,
              "D3: step sizes %lld %lld, total %lld (want 1278 each, 2556)",
              (long long)s->spike_ptr[1], (long long)(s->spike_ptr[2] - s->spike_ptr[1]),
              (long long)s->spike_ptr[6000]);
        int asc = 1;
        for (int i = 0; i < 2556 && s->spike_ptr[6000] == 2556; i++)
            asc &= s->spike_idx[i] == i % 1278;
        CHECK(asc, "D3: ids of steps 0 and 1 are not 0..1277 ascending");
    }
    elm_nio_sims_free(sims, n);
}

/* ---- D2: a large list shared by every row and one simulation dict shared by every row ------- */

static void spikes_range(pw *w, int which, void *ctx) {
    int T = *(int *)ctx;
    pw_op(w, '}');
    pw_op(w, '(');
    for (int s = 0; s < 639; s++) {
        pw_int(w, s);
        if (which == 0 && s == 0) {
            pw_op(w, ']');
            pw_op(w, '(');
            for (int j = 0; j < T; j++)
                pw_int(w, j);
            pw_op(w, 'e');
            pw_put(w, 10);
        } else {
            pw_get(w, 10);
        }
    }
    pw_op(w, 'u');
}

static void test_expansion_budget(void) {
    /* range(2000) shared by all 1278 inputs of a 2 s simulation, that simulation dict referenced
     * from 400 rows: 1 G spikes in a 31 KB file (the old reader took 1.2 GB for such a file in
     * `data info` and wrote caches of hundreds of MB). Refused, naming the file and the
     * simulation, before the memory is taken. */
    int T = 2000;
    pw w = {0};
    nio_pickle(&w, 639, T, 400, 1, spikes_range, &T);
    const char *p = tpath("d2_shared_sims_sim__.p");
    pw_save(&w, p);
    printf("D2 pickle: %zu bytes\n", w.n);
    free(w.b);
    elm_nio_sim *sims = NULL;
    int n = 0;
    long rss0 = max_rss_mb();
    elm_status st = elm_nio_pickle_read(p, &sims, &n);
    CHECK(st == ELM_ERR_FORMAT && sims == NULL && n == 0, "D2: got %s (%s)", elm_status_str(st),
          elm_last_error());
    CHECK(strstr(elm_last_error(), p) && strstr(elm_last_error(), "simulation ") &&
              strstr(elm_last_error(), "memo") && strstr(elm_last_error(), "-byte file"),
          "D2: message: %s", elm_last_error());
    printf("D2: %s\n", elm_last_error());
    long grew = max_rss_mb() - rss0;
    CHECK(grew < 200, "D2: peak memory grew by %ld MB", grew);

    /* Within the budget, a shared simulation is read as many times as it is referenced, with the
     * same contents: range(10) on every input of a 1 s simulation, 3 rows. */
    T = 1000;
    shared_list c = {.n_seg = 639, .len = 10, .value = 7, .descending = 0};
    pw w2 = {0};
    nio_pickle(&w2, 639, T, 3, 1, spikes_shared, &c);
    p = tpath("shared_ok_sim__.p");
    pw_save(&w2, p);
    free(w2.b);
    CHECK_OK(elm_nio_pickle_read(p, &sims, &n));
    CHECK(n == 3, "shared rows: %d simulations", n);
    for (int k = 0; k < n; k++)
        CHECK(sims[k].spike_ptr[1000] == 2556 && sims[k].spike_ptr[7] == 0 &&
                  sims[k].spike_ptr[8] == 1278 && sims[k].spike_idx[1277] == 1277,
              "shared rows: sim %d holds %lld spikes", k, (long long)sims[k].spike_ptr[1000]);
    elm_nio_sims_free(sims, n);
}

/* ---- D21: a repeated segment key keeps its last value, as Python's dict does --------------- */

static void spikes_repeated_key(pw *w, int which, void *ctx) {
    (void)ctx;
    pw_op(w, '}');
    pw_op(w, '(');
    /* {1: [5, 6], 0: [2], 1: [9]} for ex, {} for inh: Python sees {1: [9], 0: [2]}. */
    if (which == 0) {
        pw_int(w, 1);
        pw_op(w, ']');
        pw_op(w, '(');
        pw_int(w, 5);
        pw_int(w, 6);
        pw_op(w, 'e');
        pw_int(w, 0);
        pw_op(w, ']');
        pw_int(w, 2);
        pw_op(w, 'a');
        pw_int(w, 1);
        pw_op(w, ']');
        pw_int(w, 9);
        pw_op(w, 'a');
    }
    pw_op(w, 'u');
}

static void test_repeated_key(void) {
    pw w = {0};
    nio_pickle(&w, 2, 1000, 1, 0, spikes_repeated_key, NULL);
    const char *p = tpath("d21_repeated_key_sim__.p");
    pw_save(&w, p);
    free(w.b);
    elm_nio_sim *sims = NULL;
    int n = 0;
    CHECK_OK(elm_nio_pickle_read(p, &sims, &n));
    if (n == 1) {
        const elm_nio_sim *s = &sims[0];
        CHECK(s->spike_ptr[1000] == 2 && s->spike_ptr[3] - s->spike_ptr[2] == 1 &&
                  s->spike_idx[s->spike_ptr[2]] == 0 && s->spike_ptr[10] - s->spike_ptr[9] == 1 &&
                  s->spike_idx[s->spike_ptr[9]] == 1,
              "D21: want input 0 at 2 ms and input 1 at 9 ms only, got %lld spikes",
              (long long)s->spike_ptr[1000]);
    }
    elm_nio_sims_free(sims, n);
}

/* ---- D11: a cache whose block no longer matches its checksum, or holds a NaN soma --------- */

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads a whole file into a malloc'd buffer. */
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    if (b && fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}
static void spit(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
        exit(1);
}

/* Opens `path` and gets simulation 0: the status, with the message checked for the phrase. */
static elm_status open_sim0(const char *path, const char *phrase) {
    elm_nio_cache *c = NULL;
    elm_status st = elm_nio_cache_open(&c, path);
    CHECK(st == ELM_OK, "%s: open: %s", path, elm_last_error());
    if (st != ELM_OK)
        return st;
    elm_nio_view v;
    st = elm_nio_cache_sim(c, 0, &v);
    if (phrase)
        CHECK(st != ELM_OK && strstr(elm_last_error(), path) &&
                  strstr(elm_last_error(), "simulation 0") && strstr(elm_last_error(), phrase),
              "%s: got %s (%s), want an error with '%s'", path, elm_status_str(st),
              elm_last_error(), phrase);
    elm_nio_cache_close(c);
    return st;
}

static void test_cache_checks(void) {
    /* One simulation of 100 ms, 4 inputs, a soma that needs float32 (so the cache stores
     * float32), one sample of which is the marker -61.2345. */
    enum { T = 100 };
    int64_t ptr[T + 1];
    uint16_t idx[T];
    float soma[T], out_t[1] = {50.5f};
    for (int t = 0; t <= T; t++)
        ptr[t] = t;
    for (int t = 0; t < T; t++) {
        idx[t] = (uint16_t)(t % 4);
        soma[t] = -70.1234f + 0.01f * (float)t;
    }
    const float marker = -61.2345f;
    soma[40] = marker;
    elm_nio_sim sim = {.T = T, .n_in = 4, .spike_ptr = ptr, .spike_idx = idx, .soma = soma,
                       .n_out_spikes = 1, .out_spike_times = out_t};
    elm_nio_writer *w = NULL;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/cache", tmpdir);
    CHECK_OK(elm_nio_writer_open(&w, dir, "d11"));
    if (!w)
        return;
    CHECK_OK(elm_nio_writer_add(w, &sim));
    CHECK_OK(elm_nio_writer_close(w));
    char good[500], bad[500];
    snprintf(good, sizeof good, "%s/d11.nioc", dir);
    snprintf(bad, sizeof bad, "%s/d11_nan.nioc", tmpdir);
    CHECK(open_sim0(good, NULL) == ELM_OK, "the intact cache: %s", elm_last_error());
    size_t n = 0;
    uint8_t *b = slurp(good, &n);
    uint8_t *at = NULL;
    for (size_t i = 0; b && i + 4 <= n && !at; i++)
        if (!memcmp(b + i, &marker, 4))
            at = b + i;
    CHECK(at != NULL, "marker not found in the cache (not stored as float32?)");
    if (!at) {
        free(b);
        return;
    }
    /* A changed value, checksum left alone: the old reader evaluated it silently. */
    const float nan = NAN, other = -61.0f;
    memcpy(at, &other, 4);
    spit(bad, b, n);
    open_sim0(bad, "checksum mismatch");
    /* A NaN soma with the checksums repaired: the old reader gave soma_RMSE null and exit 0. */
    memcpy(at, &nan, 4);
    uint64_t table = rd64(b + 24);
    uint8_t *e = b + table;
    wr64(e + 40, fnv1a(b + rd64(e + 24), (size_t)rd64(e + 32)));
    wr64(b + 40, fnv1a(b + table, 64));
    spit(bad, b, n);
    open_sim0(bad, "soma voltage at 40 ms is nan");
    free(b);
}

/* ---- D23: window-cutting errors name the file and the simulation --------------------------- */

static void test_window_messages(void) {
    /* A pickle-backed data set whose simulation is corrupted in memory after the checks (the
     * window cutter's own checks are the last line of defence). */
    shared_list c = {.n_seg = 2, .len = 3, .value = 5, .descending = 0};
    pw w = {0};
    nio_pickle(&w, 2, 1000, 1, 0, spikes_shared, &c);
    const char *p = tpath("d23_window_sim__.p");
    pw_save(&w, p);
    free(w.b);
    elm_nio_data *d = NULL;
    CHECK_OK(elm_nio_data_open(&d, &p, 1));
    if (!d)
        return;
    elm_nio_view v;
    CHECK_OK(elm_nio_data_sim(d, 0, &v));
    elm_nio_view broken = v;
    uint16_t ids[8] = {3, 1, 2, 3, 0, 1, 2, 3};
    broken.spike_idx = ids;
    float *x = malloc(sizeof(float) * 1000 * 4);
    elm_status st = elm_nio_fill_window(&broken, 0, 1000, x, NULL, 1);
    char want[700];
    snprintf(want, sizeof want, "%s: simulation 0: input ids not ascending at step 5", p);
    CHECK(st == ELM_ERR_FORMAT && !strcmp(elm_last_error(), want), "D23: '%s', want '%s'",
          elm_last_error(), want);
    free(x);
    /* Evaluation with a window longer than the simulations names the file and simulation. */
    elm_config cfg;
    elm_config_default(&cfg, 4, 2, 3);
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &cfg, ELM_F32, 1));
    if (m) {
        elm_nio_eval_opts o;
        elm_nio_eval_opts_default(&o);
        o.window = 2000;
        o.burn_in = 100;
        elm_nio_metrics r;
        st = elm_nio_evaluate(&r, m, d, &o);
        snprintf(want, sizeof want,
                 "NeuronIO evaluation: %s: simulation 0 has 1000 ms, shorter than the 2000 ms "
                 "window (the simulations of a data set are all as long as its first)",
                 p);
        CHECK(st == ELM_ERR_SHAPE && !strcmp(elm_last_error(), want), "D23: '%s', want '%s'",
              elm_last_error(), want);
        /* Row pointers corrupted in memory after the checks: the evaluation's window cutter
         * names the file too (it once said "NeuronIO simulation 0" alone). */
        int64_t *ptr = (int64_t *)(uintptr_t)v.spike_ptr;
        const int64_t keep = ptr[0];
        ptr[0] = -7;
        o.window = 500;
        st = elm_nio_evaluate(&r, m, d, &o);
        ptr[0] = keep;
        snprintf(want, sizeof want, "%s: simulation 0: corrupt row pointers", p);
        const char *e = elm_last_error();
        CHECK(st == ELM_ERR_FORMAT && strlen(e) >= strlen(want) &&
                  !strcmp(e + strlen(e) - strlen(want), want),
              "D23: '%s', want '...%s'", e, want);
        elm_model_free(m);
    }
    elm_nio_data_free(d);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/elm_test_nio_hostile_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_repeated_key();
    test_shared_list();
    test_expansion_budget();
    test_cache_checks();
    test_window_messages();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_end();
}
