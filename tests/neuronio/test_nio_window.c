/*
 * test_nio_window.c - the NeuronIO task's training windows (src/neuronio/task.c), over many
 * draws: every window starts at or after 500 ms and inside the reference's range
 * start = 500 + uniform[0, T - 500 - 500), so start + 500 <= T; both ends of that range occur;
 * simulations too short for a window are never drawn and the others are drawn uniformly.
 *
 * The data are written here: five simulations whose soma voltage encodes (simulation k, time t)
 * as v = -70 - 0.01 t - 40 k mV (below the -55 mV clip), so each target row tells exactly which
 * simulation and which millisecond it was cut from. Output spikes at known times check the spike
 * targets: a spike at t ms marks bin (int)(t - 0.5) (the reference's astype(int)), two spikes in
 * one bin mark it once, and a window holds exactly the bins inside it.
 */
#include "elm_train.h"
#include "neuronio/neuronio.h"
#include "test.h"

#include <unistd.h>

enum { NSIM = 5, NIN = 4 };
static const int sim_T[NSIM] = {1001, 1002, 1010, 1000, 2999}; /* sim 3 is too short */
/* Output spikes (ms) of sims 0 and 4, and the bins they mark. */
static const float spikes0[] = {500.5f, 999.7f, 1000.6f};
static const int bins0[] = {500, 999, 1000};
static const float spikes4[] = {600.2f, 700.5f, 701.49f, 1500.9f, 2400.0f};
static const int bins4[] = {599, 700, 700, 1500, 2399};

/* Spike rows expected in a window [t0, t0 + W) of sim k, as a 0/1 mask. */
static void expected_spikes(int k, int t0, int W, unsigned char *mask) {
    memset(mask, 0, (size_t)W);
    const int *b = k == 0 ? bins0 : k == 4 ? bins4 : NULL;
    int n = k == 0 ? 3 : k == 4 ? 5 : 0;
    for (int i = 0; i < n; i++)
        if (b[i] >= t0 && b[i] < t0 + W)
            mask[b[i] - t0] = 1;
}

/* (k, t) from a scaled soma target (ELM_NIO_SOMA_BIAS -67.7, scale 0.1); -1 when it is none. */
static void decode(float target, int *k, int *t) {
    double u = -((double)target * 10 + 2.3); /* 0.01 t + 40 k */
    *k = (int)floor(u / 40 + 1e-6);
    *t = (int)lround((u - 40 * *k) / 0.01);
    if (*k < 0 || *k >= NSIM || *t < 0 || *t >= sim_T[*k])
        *k = *t = -1;
}

static void write_data(const char *dir) {
    elm_nio_writer *w = NULL;
    CHECK_OK(elm_nio_writer_open(&w, dir, "windows"));
    for (int k = 0; k < NSIM && w; k++) {
        elm_nio_sim s = {0};
        s.T = sim_T[k];
        s.n_in = NIN;
        s.spike_ptr = calloc((size_t)s.T + 1, sizeof *s.spike_ptr);
        s.spike_idx = malloc(sizeof *s.spike_idx * (size_t)s.T);
        s.soma = malloc(sizeof *s.soma * (size_t)s.T);
        if (k == 0 || k == 4) {
            s.n_out_spikes = k == 0 ? 3 : 5;
            s.out_spike_times = malloc(sizeof(float) * (size_t)s.n_out_spikes);
            memcpy(s.out_spike_times, k == 0 ? spikes0 : spikes4,
                   sizeof(float) * (size_t)s.n_out_spikes);
        }
        for (int t = 0; t < s.T; t++) {
            s.soma[t] = (float)(-70 - 0.01 * t - 40 * k);
            int64_t n = s.spike_ptr[t];
            if (t % 7 == 0) /* a few input spikes */
                s.spike_idx[n++] = (uint16_t)(t % NIN);
            s.spike_ptr[t + 1] = n;
        }
        CHECK_OK(elm_nio_writer_add(w, &s));
        free(s.spike_ptr);
        free(s.spike_idx);
        free(s.soma);
        free(s.out_spike_times);
    }
    CHECK_OK(elm_nio_writer_close(w));
}

int main(void) {
    char dir[] = "/tmp/elm-test-nio-window-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return test_end();
    }
    write_data(dir);
    elm_task_opts o;
    memset(&o, 0, sizeof o);
    o.data = dir;
    o.seed = 3;
    o.threads = 1;
    o.for_training = 1;
    elm_task *t = NULL;
    CHECK_OK(elm_task_create(&t, "neuronio", &o));
    if (!t)
        return test_end();
    elm_task_info info;
    elm_task_get_info(t, &info);
    CHECK(info.seq_len == 500, "default window %d, want 500", info.seq_len);
    const int B = 8, W = info.seq_len, DRAWS = 400;
    float *target = malloc(sizeof(float) * (size_t)B * info.target_len);
    int lo[NSIM], hi[NSIM], count[NSIM] = {0}, bad_rows = 0, bad_start = 0, bad_spikes = 0;
    long spikes_seen = 0;
    unsigned char *mask = malloc((size_t)W);
    for (int k = 0; k < NSIM; k++) {
        lo[k] = INT32_MAX;
        hi[k] = -1;
    }
    for (int d = 0; d < DRAWS; d++) {
        /* The batches a run seeded 12 trains on, steps 0 .. DRAWS - 1. */
        elm_sparse_input x;
        elm_status st = elm_task_batch(t, 12, d, B, NULL, &x, target);
        if (st != ELM_OK) {
            CHECK(0, "batch %d: %s", d, elm_last_error());
            break;
        }
        for (int b = 0; b < B; b++) {
            const float *tg = target + (size_t)b * info.target_len;
            int k0, t0;
            decode(tg[1], &k0, &t0);
            /* Every row of the window is the next millisecond of the same simulation. */
            for (int j = 0; j < W; j++) {
                int k, tt;
                decode(tg[2 * j + 1], &k, &tt);
                bad_rows += k0 < 0 || k != k0 || tt != t0 + j;
            }
            if (k0 < 0)
                continue;
            expected_spikes(k0, t0, W, mask);
            for (int j = 0; j < W; j++) {
                bad_spikes += tg[2 * j] != (float)mask[j];
                spikes_seen += mask[j];
            }
            count[k0]++;
            lo[k0] = t0 < lo[k0] ? t0 : lo[k0];
            hi[k0] = t0 > hi[k0] ? t0 : hi[k0];
            if (t0 < 500 || t0 + W > sim_T[k0] || t0 > sim_T[k0] - W - 1) {
                if (!bad_start)
                    CHECK(0, "simulation %d (T %d): window starts at %d ms (want 500 .. %d)", k0,
                          sim_T[k0], t0, sim_T[k0] - W - 1);
                bad_start++;
            }
        }
    }
    CHECK(bad_rows == 0, "%d target rows are not consecutive milliseconds of one simulation",
          bad_rows);
    CHECK(bad_start == 0, "%d of %d windows outside [500, T - 501]", bad_start, DRAWS * B);
    CHECK(bad_spikes == 0 && spikes_seen > 1000,
          "%d spike targets differ from the bins (int)(t - 0.5) of the output spikes (%ld spikes "
          "in the windows)",
          bad_spikes, spikes_seen);
    CHECK(elm_nio_spike_bin(0.5) == 0 && elm_nio_spike_bin(1.49) == 0 &&
              elm_nio_spike_bin(1.5) == 1 && elm_nio_spike_bin(5999.9) == 5999,
          "elm_nio_spike_bin: 0.5 -> %d, 1.49 -> %d, 1.5 -> %d, 5999.9 -> %d",
          elm_nio_spike_bin(0.5), elm_nio_spike_bin(1.49), elm_nio_spike_bin(1.5),
          elm_nio_spike_bin(5999.9));
    CHECK(count[3] == 0, "simulation 3 (T 1000, too short for a window) drawn %d times", count[3]);
    for (int k = 0; k < NSIM; k++) {
        if (k == 3)
            continue;
        printf("simulation %d (T %4d): %4d windows, starts %d .. %d\n", k, sim_T[k], count[k],
               lo[k], hi[k]);
        /* Uniform over the 4 usable simulations: 800 expected of 3200, sd ~24. */
        CHECK(count[k] > 650 && count[k] < 950, "simulation %d drawn %d times of %d", k, count[k],
              DRAWS * B);
        /* The range's ends occur (short ranges: certainly, over ~800 draws). */
        if (sim_T[k] < 1100)
            CHECK(lo[k] == 500 && hi[k] == sim_T[k] - W - 1,
                  "simulation %d: starts %d .. %d, want exactly 500 .. %d", k, lo[k], hi[k],
                  sim_T[k] - W - 1);
        else
            CHECK(lo[k] < 520 && hi[k] > sim_T[k] - W - 1 - 20 && hi[k] <= sim_T[k] - W - 1,
                  "simulation %d: starts %d .. %d do not span 500 .. %d", k, lo[k], hi[k],
                  sim_T[k] - W - 1);
    }
    free(target);
    free(mask);
    elm_task_free(t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return test_end();
}
