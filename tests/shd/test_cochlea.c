/*
 * test_cochlea.c - the artificial cochlea of `elm gen shd` (src/shd/gen_cochlea.c), its WAV parser
 * and its SHD writer (src/shd/gen_shd.c). Fast and without espeak-ng: inputs are synthetic tones.
 */
#include "shd/gen_cochlea.h"
#include "shd/gen_shd.h"
#include "shd/shd.h"
#include "test.h"

#include <omp.h>
#include <stdint.h>
#include <unistd.h>

#define FS 22050.0
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* A sine of f Hz, `seconds` long, amplitude 1 (the cochlea normalises the RMS anyway). */
static float *tone(double f, double seconds, size_t *n) {
    *n = (size_t)(seconds * FS);
    float *x = malloc(*n * sizeof *x);
    for (size_t i = 0; i < *n; i++)
        x[i] = (float)sin(2.0 * M_PI * f * (double)i / FS);
    return x;
}

static void test_centre_freqs(void) {
    elm_cochlea_params p;
    elm_cochlea_defaults(&p);
    double cf[700];
    CHECK_OK(elm_cochlea_centre_freqs(&p, FS, cf));
    int mono = 1;
    for (int c = 1; c < 700; c++)
        mono &= cf[c] > cf[c - 1];
    CHECK(mono, "centre frequencies must rise strictly with the channel");
    CHECK(fabs(cf[0] - p.f_lo) < 1e-6 * p.f_lo, "cf[0] = %g, want f_lo %g", cf[0], p.f_lo);
    CHECK(fabs(cf[699] - p.f_hi) < 1e-6 * p.f_hi, "cf[699] = %g, want f_hi %g", cf[699], p.f_hi);
    /* ERB-rate spacing: equal steps in 21.4 log10(1 + 0.00437 f). */
    double e1 = 21.4 * log10(1 + 0.00437 * cf[1]) - 21.4 * log10(1 + 0.00437 * cf[0]);
    double e2 = 21.4 * log10(1 + 0.00437 * cf[699]) - 21.4 * log10(1 + 0.00437 * cf[698]);
    CHECK(fabs(e1 - e2) < 1e-9, "ERB-rate steps differ: %g vs %g", e1, e2);
    /* At 16 kHz sampling the top is capped at 0.45 fs = 7.2 kHz. */
    CHECK_OK(elm_cochlea_centre_freqs(&p, 16000.0, cf));
    CHECK(fabs(cf[699] - 7200.0) < 1e-6, "capped top %g, want 7200", cf[699]);
}

/*
 * A pure tone drives the channel whose centre frequency is nearest most strongly. On the
 * basilar membrane (filter RMS) the peak must lie within 2 % of f: 700 channels over ~31 ERB put
 * neighbours < 1 % apart, so 2 % allows two channels of slack. On spikes, the count-weighted
 * (geometric) centroid of the channels firing at least half as often as the busiest one must lie
 * within 8 % of f: with ~10 spikes per channel the single busiest channel is a noisy estimate
 * (Poisson sd ~ 30 %), and the excitation spreads upward at higher levels as in a real cochlea.
 */
static void test_tone_place(void) {
    elm_cochlea_params p;
    elm_cochlea_defaults(&p);
    double cf[700], bm[700];
    CHECK_OK(elm_cochlea_centre_freqs(&p, FS, cf));
    const double freqs[] = {150.0, 500.0, 1000.0, 3000.0, 6000.0};
    for (size_t k = 0; k < sizeof freqs / sizeof freqs[0]; k++) {
        size_t n;
        float *x = tone(freqs[k], 0.3, &n);
        CHECK_OK(elm_cochlea_probe(&p, x, n, FS, bm, NULL));
        int am = 0;
        for (int c = 1; c < 700; c++)
            if (bm[c] > bm[am])
                am = c;
        CHECK(fabs(cf[am] / freqs[k] - 1.0) < 0.02, "tone %g Hz: BM peak at channel %d (%g Hz)",
              freqs[k], am, cf[am]);
        elm_spike_train t;
        CHECK_OK(elm_cochlea_run(&p, x, n, FS, &t));
        int cnt[700] = {0}, mx = 0;
        for (size_t i = 0; i < t.n; i++)
            cnt[t.units[i]]++;
        for (int c = 0; c < 700; c++)
            mx = cnt[c] > mx ? cnt[c] : mx;
        double sw = 0.0, s = 0.0;
        for (int c = 0; c < 700; c++)
            if (mx > 0 && 2 * cnt[c] >= mx) {
                sw += cnt[c] * log(cf[c]);
                s += cnt[c];
            }
        double centroid = s > 0 ? exp(sw / s) : 0.0;
        CHECK(t.n > 50, "tone %g Hz: only %zu spikes", freqs[k], t.n);
        CHECK(fabs(centroid / freqs[k] - 1.0) < 0.08, "tone %g Hz: spike centroid %g Hz", freqs[k],
              centroid);
        elm_spike_train_clear(&t);
        free(x);
    }
}

/* Silence: no stimulus, so only the fibres' spontaneous release, which must not reach threshold. */
static void test_silence(void) {
    elm_cochlea_params p;
    elm_cochlea_defaults(&p);
    size_t n = (size_t)FS;
    float *x = calloc(n, sizeof *x);
    elm_spike_train t;
    CHECK_OK(elm_cochlea_run(&p, x, n, FS, &t));
    /* 700 cells x 1 s: at most a handful of spontaneous spikes (measured: 0). */
    CHECK(t.n <= 10, "silence gave %zu spikes", t.n);
    elm_spike_train_clear(&t);
    /* Empty input is fine too. */
    CHECK_OK(elm_cochlea_run(&p, x, 0, FS, &t));
    CHECK(t.n == 0, "empty input gave %zu spikes", t.n);
    elm_spike_train_clear(&t);
    free(x);
}

/*
 * Louder -> more spikes, up to saturation. The level runs over 10..10000 (60 dB). Counted over the
 * 21 channels around the tone (+-1.5 % in frequency), which see the tone at full strength: their
 * count (~390 once saturated, measured) must not fall by more than 15 % from one level to the next
 * (two Poisson standard deviations of fibre and spike noise at that count), must grow at least
 * 3-fold from 10 to 300, and must grow less than 1.3-fold over the last decade (hair-cell
 * saturation and refractoriness cap each cell's rate). The total over all channels keeps growing
 * at high levels as the excitation spreads to neighbouring places, so it only has to rise.
 */
static void test_level(void) {
    elm_cochlea_params p;
    elm_cochlea_defaults(&p);
    double cf[700];
    CHECK_OK(elm_cochlea_centre_freqs(&p, FS, cf));
    int best = 0;
    for (int c = 0; c < 700; c++)
        if (fabs(cf[c] - 800.0) < fabs(cf[best] - 800.0))
            best = c;
    size_t n;
    float *x = tone(800.0, 0.3, &n);
    const double levels[] = {10, 30, 100, 300, 1000, 3000, 10000};
    size_t cnt[7], total[7];
    for (int k = 0; k < 7; k++) {
        p.level = levels[k];
        elm_spike_train t;
        CHECK_OK(elm_cochlea_run(&p, x, n, FS, &t));
        cnt[k] = 0;
        for (size_t i = 0; i < t.n; i++)
            cnt[k] += abs((int)t.units[i] - best) <= 10;
        total[k] = t.n;
        elm_spike_train_clear(&t);
    }
    for (int k = 1; k < 7; k++) {
        CHECK((double)cnt[k] >= 0.85 * (double)cnt[k - 1], "level %g: %zu spikes < %zu at %g",
              levels[k], cnt[k], cnt[k - 1], levels[k - 1]);
        CHECK(total[k] > total[k - 1], "level %g: %zu spikes in all, %zu at %g", levels[k],
              total[k], total[k - 1], levels[k - 1]);
    }
    CHECK(cnt[3] >= 3 * cnt[0], "level 300 gave %zu spikes, level 10 %zu: not 3x more", cnt[3],
          cnt[0]);
    CHECK((double)cnt[6] < 1.3 * (double)cnt[4], "no saturation: %zu spikes at 1e4, %zu at 1e3",
          cnt[6], cnt[4]);
    free(x);
}

/* Same seed -> bitwise the same spikes, whatever the thread count; another seed -> others. */
static void test_determinism(void) {
    elm_cochlea_params p;
    elm_cochlea_defaults(&p);
    p.seed = 42;
    size_t n;
    float *x = tone(440.0, 0.2, &n);
    for (size_t i = 0; i < n; i++) /* a vowel-like mixture: more channels busy */
        x[i] += 0.5f * (float)sin(2.0 * M_PI * 1300.0 * (double)i / FS);
    elm_spike_train a, b, c;
    omp_set_num_threads(1);
    CHECK_OK(elm_cochlea_run(&p, x, n, FS, &a));
    omp_set_num_threads(2);
    CHECK_OK(elm_cochlea_run(&p, x, n, FS, &b));
    p.seed = 43;
    CHECK_OK(elm_cochlea_run(&p, x, n, FS, &c));
    CHECK(a.n == b.n && a.n > 0, "1 vs 2 threads: %zu vs %zu spikes", a.n, b.n);
    if (a.n == b.n) {
        CHECK(!memcmp(a.times, b.times, a.n * sizeof *a.times) &&
                  !memcmp(a.units, b.units, a.n * sizeof *a.units),
              "1 vs 2 threads: different spikes");
    }
    CHECK(c.n != a.n || memcmp(c.units, a.units, a.n * sizeof *a.units) ||
              memcmp(c.times, a.times, a.n * sizeof *a.times),
          "seeds 42 and 43 gave the same spikes");
    /* Sorted by time, then unit; units in range; times within the audio. */
    int sorted = 1;
    for (size_t i = 1; i < a.n; i++)
        sorted &= a.times[i] > a.times[i - 1] ||
                  (a.times[i] == a.times[i - 1] && a.units[i] > a.units[i - 1]);
    CHECK(sorted, "spikes not sorted by (time, unit)");
    CHECK(a.n == 0 || (a.times[0] >= 0.0f && a.times[a.n - 1] < (float)((double)n / FS)),
          "spike times outside the audio");
    elm_spike_train_clear(&a);
    elm_spike_train_clear(&b);
    elm_spike_train_clear(&c);
    free(x);
}

static void test_bad_args(void) {
    elm_cochlea_params p;
    elm_cochlea_defaults(&p);
    float x[4] = {0, 1, NAN, 0};
    elm_spike_train t;
    CHECK(elm_cochlea_run(&p, x, 4, FS, &t) == ELM_ERR_NUMERIC, "NaN audio accepted");
    CHECK(strstr(elm_last_error(), "not finite") != NULL, "message: %s", elm_last_error());
    p.num_channels = 0;
    CHECK(elm_cochlea_run(&p, x, 2, FS, &t) == ELM_ERR_ARG, "0 channels accepted");
    elm_cochlea_defaults(&p);
    p.f_lo = 9000.0;
    CHECK(elm_cochlea_run(&p, x, 2, FS, &t) == ELM_ERR_ARG, "f_lo > f_hi accepted");
    CHECK(strstr(elm_last_error(), "f_lo") != NULL, "message: %s", elm_last_error());
    elm_cochlea_defaults(&p);
    CHECK(elm_cochlea_run(&p, x, 2, 100.0, &t) == ELM_ERR_ARG, "fs 100 Hz accepted");
}

/* A 16-bit mono WAV in memory, with `declared` as the data chunk's size. */
static size_t make_wav(uint8_t *buf, const int16_t *s, uint32_t n, uint32_t declared,
                       uint16_t channels) {
    uint32_t rate = 22050;
    memcpy(buf, "RIFF", 4);
    uint32_t riff = 36 + declared;
    memcpy(buf + 4, &riff, 4);
    memcpy(buf + 8, "WAVEfmt ", 8);
    uint32_t fmt_len = 16, byte_rate = rate * 2u * channels;
    uint16_t fmt = 1, align = (uint16_t)(2 * channels), bits = 16;
    memcpy(buf + 16, &fmt_len, 4);
    memcpy(buf + 20, &fmt, 2);
    memcpy(buf + 22, &channels, 2);
    memcpy(buf + 24, &rate, 4);
    memcpy(buf + 28, &byte_rate, 4);
    memcpy(buf + 32, &align, 2);
    memcpy(buf + 34, &bits, 2);
    memcpy(buf + 36, "data", 4);
    memcpy(buf + 40, &declared, 4);
    memcpy(buf + 44, s, 2 * n);
    return 44 + 2 * (size_t)n;
}

static void test_wav(void) {
    int16_t s[5] = {0, 16384, -32768, 32767, -1};
    uint8_t buf[64];
    elm_audio a;
    /* espeak-ng --stdout declares 0x7ffff000 data bytes: clamp to what is there. */
    size_t len = make_wav(buf, s, 5, 0x7ffff000u, 1);
    CHECK_OK(elm_wav_parse(buf, len, "mem.wav", &a));
    CHECK(a.n == 5 && a.fs == 22050.0, "n %zu fs %g", a.n, a.fs);
    if (a.n == 5)
        CHECK(a.x[1] == 0.5f && a.x[2] == -1.0f && a.x[4] == -1.0f / 32768.0f, "samples %g %g %g",
              (double)a.x[1], (double)a.x[2], (double)a.x[4]);
    elm_audio_clear(&a);
    len = make_wav(buf, s, 4, 8, 1);
    CHECK_OK(elm_wav_parse(buf, len, "mem.wav", &a));
    CHECK(a.n == 4, "declared 8 bytes: %zu samples", a.n);
    elm_audio_clear(&a);
    len = make_wav(buf, s, 4, 8, 2);
    CHECK(elm_wav_parse(buf, len, "stereo.wav", &a) == ELM_ERR_FORMAT, "stereo accepted");
    CHECK(strstr(elm_last_error(), "stereo.wav") != NULL, "message: %s", elm_last_error());
    CHECK(elm_wav_parse((const uint8_t *)"RIFX", 4, "short.wav", &a) == ELM_ERR_FORMAT,
          "garbage accepted");
    memcpy(buf + 36, "LIST", 4); /* no data chunk any more */
    CHECK(elm_wav_parse(buf, len, "nodata.wav", &a) == ELM_ERR_FORMAT, "no data chunk accepted");
}

/* A missing synthesiser is a clear error naming the Debian package, not a crash or silence. */
static void test_espeak_missing(void) {
    elm_espeak_voice v = {"en", 150, 50};
    elm_audio a;
    CHECK(elm_espeak_say("/nonexistent/espeak-ng", &v, "one", &a) == ELM_ERR_IO,
          "a missing espeak-ng was not an i/o error");
    CHECK(strstr(elm_last_error(), "install the Debian package espeak-ng") != NULL, "message: %s",
          elm_last_error());
    CHECK(a.x == NULL && a.n == 0, "audio returned on failure");
}

/* The writer's file reads back through the SHD reader (src/shd/shd.c) with every field intact. */
static void test_writer(void) {
    char dir[] = "/tmp/elm_test_cochlea_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/shd_tiny.h5", dir);
    float t0[] = {0.0f, 0.0105f, 0.5f, 0.9995f, 1.2f};
    uint16_t u0[] = {0, 699, 3, 350, 7};
    float t2[] = {0.25f};
    uint16_t u2[] = {42};
    elm_spike_train tr[3] = {{5, t0, u0}, {0, NULL, NULL}, {1, t2, u2}};
    uint8_t labels[3] = {3, 19, 10}, speakers[3] = {0, 1, 1};
    elm_shd_speaker_meta meta[2] = {{1, 31, 165.5}, {0, 45, 182.0}};
    CHECK_OK(elm_shd_write(path, 3, tr, labels, speakers, meta, 2));
    elm_shd *d = NULL;
    CHECK_OK(elm_shd_load(&d, path, NULL));
    if (d) {
        CHECK(d->n == 3, "n %d", d->n);
        CHECK(d->labels[0] == 3 && d->labels[1] == 19 && d->labels[2] == 10, "labels");
        CHECK(d->speakers && d->speakers[2] == 1, "speakers");
        CHECK(d->total_spikes == 6 && d->kept_spikes == 5, "spikes %lld kept %lld",
              (long long)d->total_spikes, (long long)d->kept_spikes);
        CHECK(d->max_channel == 699, "max channel %d", d->max_channel);
        CHECK(d->num_keys == 20 && !strcmp(d->keys[15], "fuenf"), "keys");
        CHECK(d->has_meta_info, "no meta_info");
        /* float16 times: 0.0105 s -> bin 1, 0.9995 s -> bin 99 (float16 0.99951171875). */
        CHECK(elm_shd_count(d, 0) == 4 && d->bin[1] == 1 && d->chan[1] == 699 && d->bin[3] == 99,
              "binned spikes of sample 0");
        elm_shd_free(d);
    }
    /* Out-of-range labels and unsorted times are refused before anything is written. */
    labels[1] = 20;
    CHECK(elm_shd_write(path, 3, tr, labels, speakers, meta, 2) == ELM_ERR_ARG, "label 20");
    labels[1] = 19;
    float bad[] = {0.5f, 0.4f};
    uint16_t bu[] = {1, 2};
    elm_spike_train tb = {2, bad, bu};
    CHECK(elm_shd_write(path, 1, &tb, labels, speakers, meta, 2) == ELM_ERR_ARG, "unsorted");
    remove(path);
    rmdir(dir);
}

int main(void) {
    test_centre_freqs();
    test_tone_place();
    test_silence();
    test_level();
    test_determinism();
    test_bad_args();
    test_wav();
    test_espeak_missing();
    test_writer();
    return test_end();
}
