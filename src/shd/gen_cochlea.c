/*
 * gen_cochlea.c - the artificial cochlea of `elm gen shd` (see gen_cochlea.h for the pipeline and
 * docs/SHD-GENERATOR.md for the equations and parameter values).
 *
 * Invariant: every channel is computed from the same preprocessed audio, with its own random
 * stream and the same arithmetic whichever block of channels it is computed in, so channels are
 * independent and the result is the same for any number of threads. Filters run in float; the
 * hair-cell and membrane state too (the time constants are >= 0.1 ms, i.e. >= 2 samples at 22.05
 * kHz, so explicit Euler is stable).
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
static inline float exp1_f(elm__rng *r) {
    return -logf((float)((elm__rng_next(r) >> 40) + 1) * 0x1p-24f);
}

/* Channels computed together, one per SIMD lane, and the time steps done per stage. */
#define LANES 8
#define CHUNK 512

/*
 * Runs channels c0 .. c0+nc-1 (nc <= LANES) over the preprocessed audio x (n samples). Writes each
 * channel's spikes into out[j] when out is not NULL, and the probe outputs (BM RMS, mean release
 * rate per fibre) into bm_rms[j] / ihc_rate[j] when those are not NULL. Returns 0 on allocation
 * failure. The filter and hair cell run for all lanes at once (the compiler vectorises the lane
 * loops; each lane does exactly the arithmetic a lone channel would, so results do not depend on
 * the grouping); the fibres and the bushy cell, which branch on spikes, run lane by lane over a
 * chunk of the hair cells' output.
 */
static int block_run(const elm_cochlea_params *p, double fs, const double *cf, int c0, int nc,
                     const float *x, size_t n, chan_out *out, double *bm_rms, double *ihc_rate) {
    const double dt = 1.0 / fs;
    /*
     * Basilar membrane: 4th-order gammatone as a cascade of four complex one-pole filters
     * (Hohmann 2002): w_k[t] = a w_k[t-1] + (1 - lambda) w_{k-1}[t], a = lambda e^{i beta},
     * lambda = exp(-2 pi b / fs), beta = 2 pi cf / fs. Each stage has gain 1 at cf; the real
     * input's positive-frequency half gives 2 Re(w_4) unit gain at cf.
     */
    float ar[LANES], ai[LANES], gin[LANES];
    float wr[4][LANES], wi[4][LANES];
    /* Meddis hair cell: per-step rates; state starts at its silent steady state. */
    const float kA = (float)MED_A, kAB = (float)(MED_A + MED_B), g_dt = (float)(MED_G * dt);
    const float y_dt = (float)(MED_Y * dt), l_dt = (float)(MED_L * dt);
    const float r_dt = (float)(MED_R * dt), x_dt = (float)(MED_X * dt);
    const double k0 = MED_G * MED_A / (MED_A + MED_B);
    const double c0_ss = MED_Y * k0 / (MED_L * k0 + MED_Y * (MED_L + MED_R));
    float q[LANES], cl[LANES], w[LANES];
    double ss[LANES], csum[LANES];
    for (int j = 0; j < LANES; j++) {
        /* Lanes past nc repeat the last channel; their results are dropped. */
        double f = cf[c0 + (j < nc ? j : nc - 1)];
        double lam = exp(-2.0 * M_PI * p->bw_factor * erb_width(f) / fs);
        ar[j] = (float)(lam * cos(2.0 * M_PI * f / fs));
        ai[j] = (float)(lam * sin(2.0 * M_PI * f / fs));
        gin[j] = (float)(1.0 - lam);
        for (int k = 0; k < 4; k++)
            wr[k][j] = wi[k][j] = 0.0f;
        q[j] = (float)(c0_ss * (MED_L + MED_R) / k0);
        cl[j] = (float)c0_ss;
        w[j] = (float)(c0_ss * MED_R / MED_X);
        ss[j] = csum[j] = 0.0;
    }
    /* Expected fibre spikes per step per unit cleft content, for all fibres together. */
    const float rel = (float)(MED_H * dt * (double)p->fibres);
    /*
     * The F fibres release independently with probability h c dt each, so their pooled spikes
     * are a Poisson process of rate F h c(t). It is drawn by time rescaling: a spike whenever the
     * integrated rate crosses the next Exp(1) mark. That is exact for the piecewise constant rate
     * and costs one logarithm per fibre spike instead of one exponential per time step.
     */
    float acc[LANES], mark[LANES];
    /* Bushy cell: v <- v * decay + weight * (fibre spikes); spike at v >= 1, then v = 0. */
    const float decay = (float)exp(-dt / (p->tau_m_ms * 1e-3));
    const float wgt = (float)p->weight;
    const long ref_steps = lround(p->refractory_ms * 1e-3 * fs);
    float v[LANES];
    long ref[LANES];
    elm__rng rng[LANES];
    for (int j = 0; j < nc; j++) {
        elm__rng_seed(&rng[j], p->seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(c0 + j + 1));
        acc[j] = 0.0f;
        mark[j] = out ? exp1_f(&rng[j]) : 0.0f;
        v[j] = 0.0f;
        ref[j] = 0;
    }
    float clbuf[CHUNK][LANES]; /* cleft content per step and lane */

    for (size_t t0 = 0; t0 < n; t0 += CHUNK) {
        size_t len = n - t0 < CHUNK ? n - t0 : CHUNK;
        for (size_t u = 0; u < len; u++) {
            float xin = x[t0 + u];
            float s[LANES], in_r[LANES], in_i[LANES];
            /* Loops run over lanes innermost so that they vectorise. */
            for (int j = 0; j < LANES; j++) {
                in_r[j] = gin[j] * xin;
                in_i[j] = 0.0f;
            }
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < LANES; j++) {
                    float nr = ar[j] * wr[k][j] - ai[j] * wi[k][j] + in_r[j];
                    float ni = ar[j] * wi[k][j] + ai[j] * wr[k][j] + in_i[j];
                    wr[k][j] = nr;
                    wi[k][j] = ni;
                    in_r[j] = gin[j] * nr;
                    in_i[j] = gin[j] * ni;
                }
            }
            for (int j = 0; j < LANES; j++)
                s[j] = 2.0f * wr[3][j]; /* basilar membrane displacement at this place */
            if (bm_rms)
                for (int j = 0; j < LANES; j++)
                    ss[j] += (double)s[j] * (double)s[j];
            for (int j = 0; j < LANES; j++) {
                /* Permeability: half-wave rectified, saturating (compressive) in s. */
                /* Selects, not branches, so the loop vectorises: the same values as
                 * k = sa > 0 ? g dt sa / (sa + A + B) : 0 and [y dt (1 - q)]_+. */
                float sa = s[j] + kA;
                sa = sa > 0.0f ? sa : 0.0f;
                float kt = g_dt * sa / (sa + kAB);
                float qd = 1.0f - q[j];
                qd = qd > 0.0f ? qd : 0.0f;
                float replenish = y_dt * qd;
                float eject = kt * q[j], loss = l_dt * cl[j], reuptake = r_dt * cl[j];
                float reproc = x_dt * w[j];
                q[j] += replenish - eject + reproc;
                cl[j] += eject - loss - reuptake;
                w[j] += reuptake - reproc;
                clbuf[u][j] = cl[j];
            }
            if (ihc_rate)
                for (int j = 0; j < LANES; j++)
                    csum[j] += (double)cl[j];
        }
        if (!out)
            continue;
        for (int j = 0; j < nc; j++) {
            /* Lane state in locals: chan_push() could alias the arrays as far as the compiler
             * knows, which would keep them in memory. */
            float a = acc[j], m = mark[j], vm = v[j];
            long rf = ref[j];
            for (size_t u = 0; u < len; u++) {
                int nsp = 0;
                a += rel * clbuf[u][j];
                while (a >= m) {
                    a -= m;
                    m = exp1_f(&rng[j]);
                    nsp++;
                }
                vm = vm * decay + wgt * (float)nsp;
                if (rf > 0) {
                    rf--;
                    vm = 0.0f;
                    continue;
                }
                if (vm >= 1.0f) {
                    if (!chan_push(&out[j], (uint32_t)(t0 + u)))
                        return 0;
                    vm = 0.0f;
                    rf = ref_steps;
                }
            }
            acc[j] = a;
            mark[j] = m;
            v[j] = vm;
            ref[j] = rf;
        }
    }
    for (int j = 0; j < nc; j++) {
        if (bm_rms)
            bm_rms[j] = n ? sqrt(ss[j] / (double)n) : 0.0;
        if (ihc_rate)
            ihc_rate[j] = n ? MED_H * csum[j] / (double)n : 0.0;
    }
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
        int nb = (C + LANES - 1) / LANES;
#pragma omp parallel for schedule(dynamic, 1) reduction(&& : ok)
        for (int b = 0; b < nb; b++) {
            int c0 = b * LANES, nc = C - c0 < LANES ? C - c0 : LANES;
            ok = block_run(p, fs, cf, c0, nc, x, n, &ch[c0], NULL, NULL) && ok;
        }
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
    int nb = (C + LANES - 1) / LANES;
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < nb; b++) {
        int c0 = b * LANES, nc = C - c0 < LANES ? C - c0 : LANES;
        block_run(p, fs, cf, c0, nc, x, n, NULL, &bm_rms[c0], ihc_rate ? &ihc_rate[c0] : NULL);
    }
    free(cf);
    free(x);
    return ELM_OK;
}
