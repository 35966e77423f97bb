/*
 * gen_cochlea.c - the artificial cochlea of `elm gen shd` (see gen_cochlea.h for the pipeline and
 * docs/SHD-GENERATOR.md for the equations and parameter values).
 *
 * Invariant: every channel is computed by one call of channel_run() from the same preprocessed
 * audio and its own random stream, so channels are independent and the result is the same for
 * any number of threads. Filters run in float; the hair-cell and membrane state too (the time
 * constants are >= 0.1 ms, i.e. >= 2 samples at 22.05 kHz, so explicit Euler is stable).
 */
#include "gen_cochlea.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/*
 * Meddis (1986) inner hair cell, with the constants of Meddis, Hewitt & Shackleton (1990) except
 * A, which is lowered from 5 to 2 (a lower spontaneous rate, ~35 spikes/s per fibre instead of
 * ~65): with 40 fibres per bushy cell, the high-spontaneous-rate fibres alone would make the
 * bushy cells fire in silence, which SHD's cells hardly do. Units: s is the stimulus in Meddis'
 * arbitrary units, rates per second.
 */
#define MED_A 2.0
#define MED_B 300.0
#define MED_G 2000.0
#define MED_Y 5.05
#define MED_L 2500.0
#define MED_R 6580.0
#define MED_X 66.31
#define MED_H 50000.0

void elm_cochlea_defaults(elm_cochlea_params *p) {
    memset(p, 0, sizeof *p);
    p->num_channels = 700;
    p->f_lo = 50.0;
    p->f_hi = 8000.0;
    p->level = 150.0;
    p->fade_ms = 10.0;
    p->bw_factor = 1.019;
    p->fibres = 40;
    p->tau_m_ms = 1.0;
    p->weight = 0.1;
    p->refractory_ms = 1.0;
    p->seed = 0;
}

static double f_hi_eff(const elm_cochlea_params *p, double fs) {
    return fmin(p->f_hi, 0.45 * fs);
}

elm_status elm_cochlea_check(const elm_cochlea_params *p, double fs) {
    if (!(fs >= 1000.0 && fs <= 1e6))
        return elm__fail(ELM_ERR_ARG, "cochlea: sample rate %g Hz is outside [1 kHz, 1 MHz]", fs);
    if (p->num_channels < 1 || p->num_channels > 65535)
        return elm__fail(ELM_ERR_ARG, "cochlea: num_channels %d is outside [1, 65535]",
                         p->num_channels);
    if (!(p->f_lo > 0.0) || !(f_hi_eff(p, fs) > p->f_lo))
        return elm__fail(ELM_ERR_ARG,
                         "cochlea: need 0 < f_lo < min(f_hi, 0.45 fs); got f_lo %g, f_hi %g, "
                         "fs %g",
                         p->f_lo, p->f_hi, fs);
    if (!(p->level >= 0.0 && isfinite(p->level)))
        return elm__fail(ELM_ERR_ARG, "cochlea: level %g must be finite and >= 0", p->level);
    if (!(p->fade_ms >= 0.0 && p->fade_ms < 1000.0))
        return elm__fail(ELM_ERR_ARG, "cochlea: fade_ms %g is outside [0, 1000)", p->fade_ms);
    if (!(p->bw_factor > 0.05 && p->bw_factor < 20.0))
        return elm__fail(ELM_ERR_ARG, "cochlea: bw_factor %g is outside (0.05, 20)", p->bw_factor);
    if (p->fibres < 1 || p->fibres > 10000)
        return elm__fail(ELM_ERR_ARG, "cochlea: fibres %d is outside [1, 10000]", p->fibres);
    if (!(p->tau_m_ms >= 0.05 && p->tau_m_ms <= 1000.0))
        return elm__fail(ELM_ERR_ARG, "cochlea: tau_m_ms %g is outside [0.05, 1000]", p->tau_m_ms);
    if (!(p->weight > 0.0 && p->weight <= 1e3))
        return elm__fail(ELM_ERR_ARG, "cochlea: weight %g is outside (0, 1000]", p->weight);
    if (!(p->refractory_ms >= 0.0 && p->refractory_ms <= 1000.0))
        return elm__fail(ELM_ERR_ARG, "cochlea: refractory_ms %g is outside [0, 1000]",
                         p->refractory_ms);
    return ELM_OK;
}

/* Glasberg & Moore (1990): ERB-rate E(f) = 21.4 log10(1 + 0.00437 f) and its inverse. */
static double erb_rate(double f) {
    return 21.4 * log10(1.0 + 0.00437 * f);
}
static double erb_rate_inv(double e) {
    return (pow(10.0, e / 21.4) - 1.0) / 0.00437;
}
/* Equivalent rectangular bandwidth (Hz) at f. */
static double erb_width(double f) {
    return 24.7 * (4.37e-3 * f + 1.0);
}

elm_status elm_cochlea_centre_freqs(const elm_cochlea_params *p, double fs, double *cf) {
    elm_status st = elm_cochlea_check(p, fs);
    if (st != ELM_OK)
        return st;
    double e0 = erb_rate(p->f_lo), e1 = erb_rate(f_hi_eff(p, fs));
    int C = p->num_channels;
    for (int c = 0; c < C; c++)
        cf[c] = C == 1 ? erb_rate_inv(0.5 * (e0 + e1))
                       : erb_rate_inv(e0 + (e1 - e0) * (double)c / (double)(C - 1));
    return ELM_OK;
}

void elm_spike_train_clear(elm_spike_train *s) {
    if (!s)
        return;
    free(s->times);
    free(s->units);
    memset(s, 0, sizeof *s);
}

/* RMS normalisation to p->level and half-Hann ramps at both ends; returns a malloc'd copy. */
static float *preprocess(const elm_cochlea_params *p, const float *audio, size_t n, double fs) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        return NULL;
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (double)audio[i] * (double)audio[i];
    double rms = n ? sqrt(ss / (double)n) : 0.0;
    /* Silence stays silence: there is nothing to normalise. */
    double scale = rms > 0.0 ? p->level / rms : 0.0;
    size_t nf = (size_t)(p->fade_ms * 1e-3 * fs);
    if (nf > n / 2)
        nf = n / 2;
    for (size_t i = 0; i < n; i++) {
        double g = scale;
        size_t d = i < n - 1 - i ? i : n - 1 - i; /* distance to the nearer end */
        if (d < nf)
            g *= 0.5 - 0.5 * cos(M_PI * ((double)d + 0.5) / (double)nf);
        x[i] = (float)((double)audio[i] * g);
    }
    return x;
}

/* One channel's spikes (sample indices), grown as needed. */
typedef struct chan_out {
    uint32_t *idx;
    size_t n, cap;
} chan_out;

static int chan_push(chan_out *o, uint32_t i) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        uint32_t *p = realloc(o->idx, cap * sizeof *p);
        if (!p)
            return 0;
        o->idx = p;
        o->cap = cap;
    }
    o->idx[o->n++] = i;
    return 1;
}

/* An exponential variate of mean 1; the uniform is in (0, 1], so the log is finite. */
static inline float exp1_f(elm_rng *r) {
    return -logf((float)((elm_rng_next(r) >> 40) + 1) * 0x1p-24f);
}

/*
 * Runs channel c over the preprocessed audio x (n samples). Writes spikes into *out when out is
 * not NULL; the probe outputs (BM RMS, mean release rate per fibre) when the pointers are not
 * NULL. Returns 0 on allocation failure.
 */
static int channel_run(const elm_cochlea_params *p, double fs, double cf, int c, const float *x,
                       size_t n, chan_out *out, double *bm_rms, double *ihc_rate) {
    const double dt = 1.0 / fs;
    /*
     * Basilar membrane: 4th-order gammatone as a cascade of four complex one-pole filters
     * (Hohmann 2002): w_k[t] = a w_k[t-1] + (1 - lambda) w_{k-1}[t], a = lambda e^{i beta},
     * lambda = exp(-2 pi b / fs), beta = 2 pi cf / fs. Each stage has gain 1 at cf; the real
     * input's positive-frequency half gives 2 Re(w_4) unit gain at cf.
     */
    const double b = p->bw_factor * erb_width(cf);
    const double lam = exp(-2.0 * M_PI * b / fs);
    const float ar = (float)(lam * cos(2.0 * M_PI * cf / fs));
    const float ai = (float)(lam * sin(2.0 * M_PI * cf / fs));
    const float gin = (float)(1.0 - lam);
    float wr[4] = {0, 0, 0, 0}, wi[4] = {0, 0, 0, 0};

    /* Meddis hair cell: per-step rates; state starts at its silent steady state. */
    const float kA = (float)MED_A, kAB = (float)(MED_A + MED_B), g_dt = (float)(MED_G * dt);
    const float y_dt = (float)(MED_Y * dt), l_dt = (float)(MED_L * dt);
    const float r_dt = (float)(MED_R * dt), x_dt = (float)(MED_X * dt);
    const double k0 = MED_G * MED_A / (MED_A + MED_B);
    const double c0 = MED_Y * k0 / (MED_L * k0 + MED_Y * (MED_L + MED_R));
    float q = (float)(c0 * (MED_L + MED_R) / k0), cl = (float)c0, w = (float)(c0 * MED_R / MED_X);
    /* Expected fibre spikes per step per unit cleft content, for all fibres together. */
    const float rel = (float)(MED_H * dt * (double)p->fibres);
    /*
     * The F fibres release independently with probability h c dt each, so their pooled spikes
     * are a Poisson process of rate F h c(t). It is drawn by time rescaling: a spike whenever the
     * integrated rate crosses the next Exp(1) mark. That is exact for the piecewise constant rate
     * and costs one logarithm per fibre spike instead of one exponential per time step.
     */
    float acc = 0.0f, mark = 0.0f;

    /* Bushy cell: v <- v * decay + weight * (fibre spikes); spike at v >= 1, then v = 0. */
    const float decay = (float)exp(-dt / (p->tau_m_ms * 1e-3));
    const float wgt = (float)p->weight;
    const long ref_steps = lround(p->refractory_ms * 1e-3 * fs);
    float v = 0.0f;
    long ref = 0;

    elm_rng rng;
    elm_rng_seed(&rng, p->seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(c + 1));
    if (out)
        mark = exp1_f(&rng);

    double ss = 0.0, csum = 0.0;
    for (size_t t = 0; t < n; t++) {
        float in_r = gin * x[t], in_i = 0.0f;
        for (int k = 0; k < 4; k++) {
            float nr = ar * wr[k] - ai * wi[k] + in_r;
            float ni = ar * wi[k] + ai * wr[k] + in_i;
            wr[k] = nr;
            wi[k] = ni;
            in_r = gin * nr;
            in_i = gin * ni;
        }
        float s = 2.0f * wr[3]; /* basilar membrane displacement at this place */
        if (bm_rms)
            ss += (double)s * (double)s;

        /* Permeability: half-wave rectified, saturating (compressive) in s. */
        float sa = s + kA;
        float kt = sa > 0.0f ? g_dt * sa / (sa + kAB) : 0.0f;
        float replenish = q < 1.0f ? y_dt * (1.0f - q) : 0.0f;
        float eject = kt * q, loss = l_dt * cl, reuptake = r_dt * cl, reproc = x_dt * w;
        q += replenish - eject + reproc;
        cl += eject - loss - reuptake;
        w += reuptake - reproc;
        if (ihc_rate)
            csum += (double)cl;
        if (!out)
            continue;

        int nsp = 0;
        acc += rel * cl;
        while (acc >= mark) {
            acc -= mark;
            mark = exp1_f(&rng);
            nsp++;
        }
        v = v * decay + wgt * (float)nsp;
        if (ref > 0) {
            ref--;
            v = 0.0f;
            continue;
        }
        if (v >= 1.0f) {
            if (!chan_push(out, (uint32_t)t))
                return 0;
            v = 0.0f;
            ref = ref_steps;
        }
    }
    if (bm_rms)
        *bm_rms = n ? sqrt(ss / (double)n) : 0.0;
    if (ihc_rate)
        *ihc_rate = n ? MED_H * csum / (double)n : 0.0;
    return 1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

elm_status elm_cochlea_run(const elm_cochlea_params *p, const float *audio, size_t n, double fs,
                           elm_spike_train *out) {
    memset(out, 0, sizeof *out);
    elm_status st = elm_cochlea_check(p, fs);
    if (st != ELM_OK)
        return st;
    if (n > UINT32_MAX)
        return elm__fail(ELM_ERR_ARG, "cochlea: %zu audio samples is too long", n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(audio[i]))
            return elm__fail(ELM_ERR_NUMERIC, "cochlea: audio sample %zu is not finite", i);
    int C = p->num_channels;
    double *cf = malloc((size_t)C * sizeof *cf);
    chan_out *ch = calloc((size_t)C, sizeof *ch);
    float *x = preprocess(p, audio, n, fs);
    uint64_t *keys = NULL;
    int ok = cf && ch && x;
    if (ok)
        elm_cochlea_centre_freqs(p, fs, cf);
    if (ok) {
#pragma omp parallel for schedule(dynamic, 4) reduction(&& : ok)
        for (int c = 0; c < C; c++)
            ok = channel_run(p, fs, cf[c], c, x, n, &ch[c], NULL, NULL) && ok;
    }
    size_t total = 0;
    if (ok) {
        for (int c = 0; c < C; c++)
            total += ch[c].n;
        keys = malloc((total ? total : 1) * sizeof *keys);
        out->times = malloc((total ? total : 1) * sizeof *out->times);
        out->units = malloc((total ? total : 1) * sizeof *out->units);
        ok = keys && out->times && out->units;
    }
    if (ok) {
        /* Sort by (time, unit): each key is sample index << 16 | unit. */
        size_t k = 0;
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < ch[c].n; j++)
                keys[k++] = (uint64_t)ch[c].idx[j] << 16 | (uint64_t)c;
        qsort(keys, total, sizeof *keys, cmp_u64);
        for (size_t j = 0; j < total; j++) {
            out->times[j] = (float)((double)(keys[j] >> 16) / fs);
            out->units[j] = (uint16_t)(keys[j] & 0xFFFF);
        }
        out->n = total;
    }
    if (ch)
        for (int c = 0; c < C; c++)
            free(ch[c].idx);
    free(ch);
    free(cf);
    free(x);
    free(keys);
    if (!ok) {
        elm_spike_train_clear(out);
        return elm__fail(ELM_ERR_NOMEM, "cochlea: out of memory for %zu samples x %d channels", n,
                         C);
    }
    return ELM_OK;
}

elm_status elm_cochlea_probe(const elm_cochlea_params *p, const float *audio, size_t n, double fs,
                             double *bm_rms, double *ihc_rate) {
    elm_status st = elm_cochlea_check(p, fs);
    if (st != ELM_OK)
        return st;
    int C = p->num_channels;
    double *cf = malloc((size_t)C * sizeof *cf);
    float *x = preprocess(p, audio, n, fs);
    if (!cf || !x) {
        free(cf);
        free(x);
        return elm__fail(ELM_ERR_NOMEM, "cochlea: out of memory");
    }
    elm_cochlea_centre_freqs(p, fs, cf);
#pragma omp parallel for schedule(dynamic, 4)
    for (int c = 0; c < C; c++)
        channel_run(p, fs, cf[c], c, x, n, NULL, &bm_rms[c], ihc_rate ? &ihc_rate[c] : NULL);
    free(cf);
    free(x);
    return ELM_OK;
}
