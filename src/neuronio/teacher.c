/*
 * teacher.c - the built-in teacher neuron (see teacher.h and docs/TEACHER.md).
 *
 * Invariant: a simulation is a pure function of (parameters, inputs), and the inputs a pure
 * function of (input parameters, T, seed); nothing depends on threads, time or global state, so
 * `elm gen neuronio-teacher` gives bitwise the same cache on every run and machine with the
 * same libm.
 *
 * Numerics: voltages are advanced by backward Euler on the whole compartment tree (Hines
 * elimination, as NEURON does), with every conductance evaluated at the start of the substep;
 * the gating variables by exponential Euler (Rush-Larsen), exact for a frozen voltage. Both are
 * stable at any step, so the 0.125 ms substep is a matter of accuracy, not stability.
 */
#include "teacher.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Morphology: a fixed tree of 11 compartments, parents before children (Hines order). --- */

enum {
    COMP_SOMA = 0,
    COMP_BASAL0 = 1, /* basal branch b: proximal 1 + 2b, distal 2 + 2b */
    COMP_TRUNK = 7,
    COMP_OBLIQUE = 8,
    COMP_NEXUS = 9,
    COMP_TUFT = 10
};

static const int comp_parent[ELM_TEACHER_NUM_COMP] = {-1, 0, 1, 0, 3, 0, 5, 0, 7, 8, 9};

/*
 * Coupling conductance of each compartment to its parent (nS, before axial_scale). Thin distal
 * links are what attenuate distal inputs: with the default leaks, the steady voltage at the soma
 * is 0.47 of a proximal basal compartment's, 0.14 of a distal basal one's, 0.59 / 0.27 / 0.10 /
 * 0.03 of the trunk / oblique / nexus / tuft ones' (docs/TEACHER.md); input resistance 38 MOhm.
 */
static const double comp_g_axial[ELM_TEACHER_NUM_COMP] = {0,   20.0, 6.0,  20.0, 6.0, 20.0,
                                                          6.0, 30.0, 12.5, 6.0,  3.0};

int elm_teacher_segment_compartment(int seg) {
    if (seg < 0 || seg >= ELM_TEACHER_NUM_SEGMENTS)
        return -1;
    if (seg < ELM_TEACHER_NUM_BASAL) {
        /* Three basal branches of consecutive segments; each branch's first 40 % is proximal. */
        double f = (seg + 0.5) * 3.0 / ELM_TEACHER_NUM_BASAL;
        int b = (int)f;
        return COMP_BASAL0 + 2 * b + (f - b >= 0.4);
    }
    /* Apical segments run from the trunk out to the tuft, as the L5PC's are roughly ordered. */
    double f = (seg - ELM_TEACHER_NUM_BASAL + 0.5) /
               (double)(ELM_TEACHER_NUM_SEGMENTS - ELM_TEACHER_NUM_BASAL);
    if (f < 0.25)
        return COMP_TRUNK;
    if (f < 0.5)
        return COMP_OBLIQUE;
    if (f < 0.7)
        return COMP_NEXUS;
    return COMP_TUFT;
}

/* ---- Parameters ----------------------------------------------------------------------------- */

void elm_teacher_params_default(elm_teacher_params *p) {
    memset(p, 0, sizeof *p);
    p->dt_ms = 0.125;
    p->e_leak = -78.0;
    p->e_na = 50.0;
    p->e_k = -90.0;
    p->e_ampa = 0.0;
    p->e_nmda = 0.0;
    p->e_gaba = -80.0;
    p->mg_mM = 1.0;
    /* 1 uF/cm2: the soma is 1e-4 cm2, each dendritic compartment 0.4e-4 cm2; membrane time
     * constant 12.5 ms everywhere. */
    p->c_soma_pF = 100.0;
    p->g_leak_soma_nS = 8.0;
    p->c_dend_pF = 40.0;
    p->g_leak_dend_nS = 3.2;
    p->axial_scale = 1.0;
    /* Pospischil et al. (2008) regular-spiking Na and K-dr densities (56, 6 mS/cm2) on the
     * 1e-4 cm2 soma; the M-current at 0.3 mS/cm2 (4x theirs), a spike-triggered AHP, and V_T
     * lowered from -56.2 to -64 mV, so that spikes come singly or in short bursts from about
     * -58 mV, as NeuronIO's do (interspike-interval CV 1.8 vs 1.7; docs/TEACHER.md). */
    p->g_na_nS = 5600.0;
    p->g_kdr_nS = 600.0;
    p->g_m_nS = 30.0;
    p->v_t = -64.0;
    p->tau_m_max_ms = 608.0;
    p->g_ahp_nS = 4.0;
    p->tau_ahp_ms = 50.0;
    /* Kinetics of Beniaguev et al.'s NeuronIO synapses: AMPA 0.3/3 ms, NMDA 2/70 ms, GABA_A
     * 0.2/8 ms. Peak conductances are larger than their 0.4 / 0.4 / 1 nS because the teacher
     * has 11 compartments for 639 segments; these give about 1.0 output spikes per second and
     * a mean soma voltage near -66 mV for the default input statistics (docs/TEACHER.md). */
    p->g_ampa_nS = 1.2;
    p->g_nmda_nS = 0.3;
    p->g_gaba_nS = 3.0;
    p->tau_ampa_rise = 0.3;
    p->tau_ampa_decay = 3.0;
    p->tau_nmda_rise = 2.0;
    p->tau_nmda_decay = 70.0;
    p->tau_gaba_rise = 0.2;
    p->tau_gaba_decay = 8.0;
    p->spike_threshold_mV = -20.0;
}

void elm_teacher_input_params_default(elm_teacher_input_params *p) {
    /* The ranges of the NeuronIO dev file's Params (NMDA data set). */
    p->ex_per_100ms_min = 0.0;
    p->ex_per_100ms_max = 800.0;
    p->ex_inh_diff_min = -600.0;
    p->ex_inh_diff_max = 200.0;
    p->rate_scale = 1.0;
}

double elm_teacher_nmda_block(double v_mV, double mg_mM) {
    return 1.0 / (1.0 + mg_mM / 3.57 * exp(-0.062 * v_mV));
}

static elm_status check_params(const elm_teacher_params *p) {
    double steps = 1.0 / p->dt_ms;
    if (!(p->dt_ms > 0 && p->dt_ms <= 1.0) || fabs(steps - floor(steps + 0.5)) > 1e-9)
        return elm__fail(ELM_ERR_ARG, "teacher: dt_ms %g must divide 1 ms", p->dt_ms);
    const struct {
        const char *name;
        double v;
        int positive; /* else non-negative */
    } checks[] = {{"c_soma_pF", p->c_soma_pF, 1},
                  {"c_dend_pF", p->c_dend_pF, 1},
                  {"g_leak_soma_nS", p->g_leak_soma_nS, 1},
                  {"g_leak_dend_nS", p->g_leak_dend_nS, 1},
                  {"axial_scale", p->axial_scale, 1},
                  {"tau_ampa_rise", p->tau_ampa_rise, 1},
                  {"tau_ampa_decay", p->tau_ampa_decay, 1},
                  {"tau_nmda_rise", p->tau_nmda_rise, 1},
                  {"tau_nmda_decay", p->tau_nmda_decay, 1},
                  {"tau_gaba_rise", p->tau_gaba_rise, 1},
                  {"tau_gaba_decay", p->tau_gaba_decay, 1},
                  {"tau_m_max_ms", p->tau_m_max_ms, 1},
                  {"tau_ahp_ms", p->tau_ahp_ms, 1},
                  {"g_na_nS", p->g_na_nS, 0},
                  {"g_kdr_nS", p->g_kdr_nS, 0},
                  {"g_m_nS", p->g_m_nS, 0},
                  {"g_ahp_nS", p->g_ahp_nS, 0},
                  {"g_ampa_nS", p->g_ampa_nS, 0},
                  {"g_nmda_nS", p->g_nmda_nS, 0},
                  {"g_gaba_nS", p->g_gaba_nS, 0},
                  {"mg_mM", p->mg_mM, 0}};
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (!isfinite(checks[i].v) || checks[i].v < 0 || (checks[i].positive && checks[i].v == 0))
            return elm__fail(ELM_ERR_ARG, "teacher: %s must be %s, got %g", checks[i].name,
                             checks[i].positive ? "> 0" : ">= 0", checks[i].v);
    const double reversal[] = {p->e_leak, p->e_na,   p->e_k, p->e_ampa,
                               p->e_nmda, p->e_gaba, p->v_t, p->spike_threshold_mV};
    for (size_t i = 0; i < sizeof reversal / sizeof reversal[0]; i++)
        if (!isfinite(reversal[i]))
            return elm__fail(ELM_ERR_ARG, "teacher: a potential (mV) is not finite");
    if (!(p->tau_ampa_rise < p->tau_ampa_decay && p->tau_nmda_rise < p->tau_nmda_decay &&
          p->tau_gaba_rise < p->tau_gaba_decay))
        return elm__fail(ELM_ERR_ARG, "teacher: every synaptic rise time must be below its decay");
    return ELM_OK;
}

/* ---- Inputs --------------------------------------------------------------------------------- */

/*
 * Bernoulli probability of a spike in a 1 ms bin whose rate is r (spikes/ms). NeuronIO draws a
 * per-bin probability q ~ Exponential(mean r) and then spikes when U < q; integrating q out gives
 * P = E[min(1, q)] = r (1 - exp(-1/r)), so one uniform per bin samples the same distribution.
 * Below r = 0.025, exp(-1/r) < 4.3e-18 is under half a double ulp of 1, so P == r exactly.
 */
static double bin_prob(double r) {
    if (r <= 0)
        return 0;
    return r < 0.025 ? r : r * (1.0 - exp(-1.0 / r));
}

/*
 * Three successive centred box filters of odd width w, zero outside [0, T), approximate a
 * Gaussian of variance 3 (w^2 - 1) / 12 (the central limit; within a few percent of the
 * truncated Gaussian that NeuronIO convolves with, mode 'same', which also sees zeros outside).
 * x (T) is filtered in place; tmp holds T + 1 doubles.
 */
static void smooth3(double *x, double *tmp, int T, int w) {
    int h = w / 2;
    for (int pass = 0; pass < 3; pass++) {
        tmp[0] = 0;
        for (int t = 0; t < T; t++)
            tmp[t + 1] = tmp[t] + x[t];
        for (int t = 0; t < T; t++) {
            int lo = t - h < 0 ? 0 : t - h;
            int hi = t + h + 1 > T ? T : t + h + 1;
            x[t] = (tmp[hi] - tmp[lo]) / w;
        }
    }
}

/* The published NMDA-data script's lists (simulate_L5PC_and_create_dataset.py), each choice
 * then jittered by int(U(-20, 20)) ms. */
static const int interval_options_ms[] = {25, 30, 35, 40, 45,  55,  60,  65,  70,
                                          75, 80, 85, 90, 100, 150, 200, 300, 450};
static const int sigma_options_ms[] = {25,  30,  35,  40,  50,  60,  80,
                                       100, 150, 200, 300, 400, 500, 600};
#define JITTER_MS 20

/* Transposes per-input spike lists (bins ascending) into the per-step CSR of elm_nio_sim. */
static elm_status to_csr(elm_nio_sim *sim, int T, int n_in, int **lists, const int *counts) {
    int64_t nnz = 0;
    for (int i = 0; i < n_in; i++)
        nnz += counts[i];
    sim->spike_ptr = calloc((size_t)T + 1, sizeof *sim->spike_ptr);
    sim->spike_idx = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *sim->spike_idx);
    if (!sim->spike_ptr || !sim->spike_idx) {
        free(sim->spike_ptr);
        free(sim->spike_idx);
        sim->spike_ptr = NULL;
        sim->spike_idx = NULL;
        return elm__fail(ELM_ERR_NOMEM, "teacher: out of memory for %lld input spikes",
                         (long long)nnz);
    }
    for (int i = 0; i < n_in; i++)
        for (int k = 0; k < counts[i]; k++)
            sim->spike_ptr[lists[i][k] + 1]++;
    for (int t = 0; t < T; t++)
        sim->spike_ptr[t + 1] += sim->spike_ptr[t];
    /* Filling inputs in ascending order keeps each step's ids ascending. */
    int64_t *fill = malloc((size_t)T * sizeof *fill);
    if (!fill) {
        free(sim->spike_ptr);
        free(sim->spike_idx);
        sim->spike_ptr = NULL;
        sim->spike_idx = NULL;
        return elm__fail(ELM_ERR_NOMEM, "teacher: out of memory");
    }
    memcpy(fill, sim->spike_ptr, (size_t)T * sizeof *fill);
    for (int i = 0; i < n_in; i++)
        for (int k = 0; k < counts[i]; k++)
            sim->spike_idx[fill[lists[i][k]]++] = (uint16_t)i;
    free(fill);
    sim->T = T;
    sim->n_in = n_in;
    return ELM_OK;
}

/*
 * Rates live on a grid of 5 ms bins ("coarse" bins): smoothing (the bulk of the cost) is 5x
 * cheaper there, and the smoothing widths (at least 5 ms, mostly tens to hundreds) leave little
 * structure below 5 ms. Coarse bin q holds the mean rate of ms 5q..5q+4 and stands for its centre,
 * 5q + 2 ms; the rate in a 1 ms bin is linearly interpolated between centres (held constant
 * beyond the end ones).
 */
#define COARSE_MS 5

static double coarse_at(const double *x, int nq, int t) {
    double u = (t - (COARSE_MS - 1) / 2.0) / COARSE_MS;
    if (u <= 0)
        return x[0];
    if (u >= nq - 1)
        return x[nq - 1];
    int q = (int)u;
    double f = u - q;
    return (1 - f) * x[q] + f * x[q + 1];
}

/* Fills x (n_coarse) with input i's rate in spikes per ms; tmp has n_coarse + 1 doubles. */
typedef void (*rate_fn)(double *x, int i, int n_coarse, void *ctx, double *tmp);

/* Shared by both input generators: draws each input's spikes from its rate, builds the CSR. */
static elm_status draw_inputs(elm_nio_sim *sim, int T, elm__rng *rng, rate_fn fn, void *ctx) {
    const int n_in = ELM_TEACHER_NUM_INPUTS;
    const int nq = (T + COARSE_MS - 1) / COARSE_MS;
    elm_status st = ELM_OK;
    int **lists = calloc(n_in, sizeof *lists);
    int *counts = calloc(n_in, sizeof *counts);
    int *caps = calloc(n_in, sizeof *caps);
    double *x = malloc((size_t)nq * sizeof *x);
    double *tmp = malloc(((size_t)nq + 1) * sizeof *tmp);
    if (!lists || !counts || !caps || !x || !tmp) {
        st = elm__fail(ELM_ERR_NOMEM, "teacher: out of memory drawing inputs");
        goto done;
    }
    for (int i = 0; i < n_in; i++) {
        fn(x, i, nq, ctx, tmp);
        /* Interpolation never exceeds the largest coarse value, and bin_prob increases. */
        double rmax = 0;
        for (int q = 0; q < nq; q++)
            rmax = x[q] > rmax ? x[q] : rmax;
        double pmax = bin_prob(rmax);
        if (pmax <= 0)
            continue;
        /*
         * Thinning: candidate bins come from a Bernoulli(pmax) process, drawn as geometric gaps
         * (one uniform per candidate instead of one per bin), and a candidate at t is kept with
         * probability p(t) / pmax. Each bin then spikes independently with probability p(t),
         * exactly as per-bin draws would, at a cost proportional to the number of spikes.
         */
        double lq = log1p(-pmax); /* -inf when pmax == 1: every bin is a candidate */
        int t = -1;
        for (;;) {
            double gap = floor(log1p(-elm__rng_uniform(rng)) / lq);
            if (!(gap < (double)(T - 1 - t)))
                break;
            t += 1 + (int)gap;
            if (elm__rng_uniform(rng) * pmax >= bin_prob(coarse_at(x, nq, t)))
                continue;
            if (counts[i] == caps[i]) {
                int cap = caps[i] ? 2 * caps[i] : 64;
                int *nl = realloc(lists[i], (size_t)cap * sizeof *nl);
                if (!nl) {
                    st = elm__fail(ELM_ERR_NOMEM, "teacher: out of memory drawing inputs");
                    goto done;
                }
                lists[i] = nl;
                caps[i] = cap;
            }
            lists[i][counts[i]++] = t;
        }
    }
    st = to_csr(sim, T, n_in, lists, counts);
done:
    if (lists)
        for (int i = 0; i < n_in; i++)
            free(lists[i]);
    free(lists);
    free(counts);
    free(caps);
    free(x);
    free(tmp);
    return st;
}

/* NeuronIO's recipe, per simulation (simulate_L5PC_and_create_dataset.py, Beniaguev et al.). */
typedef struct {
    int T, interval_ms, n_int, box_w; /* box_w in coarse bins */
    double *seg_rate;                 /* (n_in, n_int) spikes per ms of each input and interval */
} recipe_ctx;

static void recipe_rate(double *x, int i, int nq, void *vctx, double *tmp) {
    const recipe_ctx *c = vctx;
    const double *sr = c->seg_rate + (size_t)i * c->n_int;
    for (int q = 0; q < nq; q++) {
        /* Mean over the bin's milliseconds (intervals need not align with the grid). */
        int t0 = q * COARSE_MS, t1 = t0 + COARSE_MS < c->T ? t0 + COARSE_MS : c->T;
        int j0 = t0 / c->interval_ms, j1 = (t1 - 1) / c->interval_ms;
        if (j0 == j1) { /* the usual case: the bin lies inside one interval */
            x[q] = sr[j0];
            continue;
        }
        double sum = 0;
        for (int t = t0; t < t1; t++)
            sum += sr[t / c->interval_ms];
        x[q] = sum / (t1 - t0);
    }
    smooth3(x, tmp, nq, c->box_w);
}

elm_status elm_teacher_inputs(elm_nio_sim *sim, const elm_teacher_input_params *ip, int T,
                              uint64_t seed) {
    if (T <= 0 || T > 100000000)
        return elm__fail(ELM_ERR_ARG, "teacher: duration %d ms out of range", T);
    if (!(ip->ex_per_100ms_min >= 0 && ip->ex_per_100ms_max >= ip->ex_per_100ms_min &&
          ip->ex_inh_diff_max >= ip->ex_inh_diff_min && ip->rate_scale >= 0 &&
          isfinite(ip->ex_per_100ms_max) && isfinite(ip->ex_inh_diff_max) &&
          isfinite(ip->ex_inh_diff_min) && isfinite(ip->rate_scale)))
        return elm__fail(ELM_ERR_ARG, "teacher: invalid input statistics");
    elm__rng rng;
    elm__rng_seed(&rng, seed);
    recipe_ctx c;
    c.T = T;
    /* Draw order as in the script: interval, its jitter, sigma, its jitter. The jitter is
     * Python's int(), which truncates toward zero, as C's cast does. */
    c.interval_ms = interval_options_ms[elm__rng_below(&rng, sizeof interval_options_ms /
                                                                sizeof interval_options_ms[0])];
    c.interval_ms += (int)(2.0 * JITTER_MS * elm__rng_uniform(&rng) - JITTER_MS);
    int sigma = sigma_options_ms[elm__rng_below(&rng, sizeof sigma_options_ms /
                                                          sizeof sigma_options_ms[0])];
    sigma += (int)(2.0 * JITTER_MS * elm__rng_uniform(&rng) - JITTER_MS);
    /* Three boxes of odd width w (coarse bins) have variance (w^2 - 1) / 4 bins^2: w is the odd
     * integer nearest sqrt(4 (sigma / 5 ms)^2 + 1) (at least 1, no smoothing). */
    double s_c = (double)sigma / COARSE_MS;
    double w_ideal = sqrt(4.0 * s_c * s_c + 1.0);
    c.box_w = 2 * (int)floor((w_ideal - 1.0) / 2.0 + 0.5) + 1;
    c.n_int = (T + c.interval_ms - 1) / c.interval_ms;
    c.seg_rate = malloc((size_t)ELM_TEACHER_NUM_INPUTS * c.n_int * sizeof *c.seg_rate);
    double *tree = malloc((size_t)4 * c.n_int * sizeof *tree);
    if (!c.seg_rate || !tree) {
        free(c.seg_rate);
        free(tree);
        return elm__fail(ELM_ERR_NOMEM, "teacher: out of memory for %d rate intervals", c.n_int);
    }
    /* Per tree (0 basal, 1 apical) and interval: total excitatory then inhibitory spikes per
     * 100 ms, the inhibitory drawn around the excitatory as NeuronIO does. */
    for (int tr = 0; tr < 2; tr++)
        for (int j = 0; j < c.n_int; j++) {
            double ex = ip->ex_per_100ms_min +
                        (ip->ex_per_100ms_max - ip->ex_per_100ms_min) * elm__rng_uniform(&rng);
            double lo = fmax(0.0, ex + ip->ex_inh_diff_min), hi = ex + ip->ex_inh_diff_max;
            double inh = lo + (hi - lo) * elm__rng_uniform(&rng);
            tree[(2 * tr) * c.n_int + j] = ex;
            tree[(2 * tr + 1) * c.n_int + j] = inh > 0 ? inh : 0.0001;
        }
    /* Spread each tree's total evenly over its segments (the teacher's segments all have the
     * same length), times NeuronIO's spatial noise U(0.5, 1.5) per segment and interval. */
    for (int i = 0; i < ELM_TEACHER_NUM_INPUTS; i++) {
        int seg = i % ELM_TEACHER_NUM_SEGMENTS, inh = i >= ELM_TEACHER_NUM_SEGMENTS;
        int apical = seg >= ELM_TEACHER_NUM_BASAL;
        int nseg =
            apical ? ELM_TEACHER_NUM_SEGMENTS - ELM_TEACHER_NUM_BASAL : ELM_TEACHER_NUM_BASAL;
        const double *tot = tree + (size_t)(2 * apical + inh) * c.n_int;
        for (int j = 0; j < c.n_int; j++)
            c.seg_rate[(size_t)i * c.n_int + j] =
                ip->rate_scale * tot[j] / (100.0 * nseg) * (0.5 + elm__rng_uniform(&rng));
    }
    free(tree);
    elm_status st = draw_inputs(sim, T, &rng, recipe_rate, &c);
    free(c.seg_rate);
    return st;
}

typedef struct {
    double ex_per_ms, inh_per_ms;
} const_ctx;

static void const_rate(double *x, int i, int nq, void *vctx, double *tmp) {
    const const_ctx *c = vctx;
    (void)tmp;
    double v = i < ELM_TEACHER_NUM_SEGMENTS ? c->ex_per_ms : c->inh_per_ms;
    for (int q = 0; q < nq; q++)
        x[q] = v;
}

elm_status elm_teacher_inputs_constant(elm_nio_sim *sim, int T, double ex_hz, double inh_hz,
                                       uint64_t seed) {
    if (T <= 0 || T > 100000000 || !(ex_hz >= 0 && ex_hz <= 1000) ||
        !(inh_hz >= 0 && inh_hz <= 1000))
        return elm__fail(ELM_ERR_ARG, "teacher: invalid constant inputs (T %d, %g Hz, %g Hz)", T,
                         ex_hz, inh_hz);
    elm__rng rng;
    elm__rng_seed(&rng, seed);
    const_ctx c = {ex_hz / 1000.0, inh_hz / 1000.0};
    return draw_inputs(sim, T, &rng, const_rate, &c);
}

/* ---- Simulation ------------------------------------------------------------------------------ */

/* x / (exp(x / y) - 1), with its limit y - x / 2 near x = 0 (the HH rate functions' 0/0). */
static double vtrap(double x, double y) {
    return fabs(x / y) < 1e-6 ? y - x / 2 : x / expm1(x / y);
}

/* Rush-Larsen update of a gate with rates a, b (1/ms) over dt. */
static double gate_step(double x, double a, double b, double dt) {
    double s = a + b;
    double inf = a / s;
    return inf + (x - inf) * exp(-dt * s);
}

/* Traub-Miles rates (Pospischil et al. 2008), V in mV, rates in 1/ms. */
static void hh_rates(double v, double vt, double *am, double *bm, double *ah, double *bh,
                     double *an, double *bn) {
    double u = v - vt;
    *am = 0.32 * vtrap(-(u - 13.0), 4.0);
    *bm = 0.28 * vtrap(u - 40.0, 5.0);
    *ah = 0.128 * exp(-(u - 17.0) / 18.0);
    *bh = 4.0 / (1.0 + exp(-(u - 40.0) / 5.0));
    *an = 0.032 * vtrap(-(u - 15.0), 5.0);
    *bn = 0.5 * exp(-(u - 10.0) / 40.0);
}

static void m_current_rates(double v, double tau_max, double *inf, double *tau) {
    *inf = 1.0 / (1.0 + exp(-(v + 35.0) / 10.0));
    *tau = tau_max / (3.3 * exp((v + 35.0) / 20.0) + exp(-(v + 35.0) / 20.0));
}

/* Peak of exp(-t/td) - exp(-t/tr), so that one spike's conductance peaks at exactly g. */
static double dexp_norm(double tr, double td) {
    double tp = tr * td / (td - tr) * log(td / tr);
    return 1.0 / (exp(-tp / td) - exp(-tp / tr));
}

elm_status elm_teacher_simulate(elm_nio_sim *sim, const elm_teacher_params *p) {
    elm_status st = check_params(p);
    if (st != ELM_OK)
        return st;
    if (!sim || sim->T <= 0 || sim->n_in != ELM_TEACHER_NUM_INPUTS || !sim->spike_ptr ||
        (!sim->spike_idx && sim->spike_ptr[sim->T] > 0))
        return elm__fail(ELM_ERR_ARG, "teacher: the simulation needs T > 0 steps and %d inputs",
                         ELM_TEACHER_NUM_INPUTS);
    const int T = sim->T, N = ELM_TEACHER_NUM_COMP;
    const int nsub = (int)floor(1.0 / p->dt_ms + 0.5);
    const double dt = p->dt_ms;
    float *soma = malloc((size_t)T * sizeof *soma);
    int cap = 64, nspk = 0;
    float *spk = malloc((size_t)cap * sizeof *spk);
    if (!soma || !spk) {
        free(soma);
        free(spk);
        return elm__fail(ELM_ERR_NOMEM, "teacher: out of memory for %d steps", T);
    }

    int seg_comp[ELM_TEACHER_NUM_SEGMENTS];
    for (int s = 0; s < ELM_TEACHER_NUM_SEGMENTS; s++)
        seg_comp[s] = elm_teacher_segment_compartment(s);
    double cap_c[ELM_TEACHER_NUM_COMP], g_leak[ELM_TEACHER_NUM_COMP], g_ax[ELM_TEACHER_NUM_COMP];
    for (int i = 0; i < N; i++) {
        cap_c[i] = i == COMP_SOMA ? p->c_soma_pF : p->c_dend_pF;
        g_leak[i] = i == COMP_SOMA ? p->g_leak_soma_nS : p->g_leak_dend_nS;
        g_ax[i] = comp_g_axial[i] * p->axial_scale;
    }
    /* Double-exponential synapses: conductance = decay - rise state; both jump by w per spike,
     * and each decays with its own time constant. pF / ms = nS, so C/dt is a conductance. */
    const double w_ampa = p->g_ampa_nS * dexp_norm(p->tau_ampa_rise, p->tau_ampa_decay);
    const double w_nmda = p->g_nmda_nS * dexp_norm(p->tau_nmda_rise, p->tau_nmda_decay);
    const double w_gaba = p->g_gaba_nS * dexp_norm(p->tau_gaba_rise, p->tau_gaba_decay);
    const double k_ar = exp(-dt / p->tau_ampa_rise), k_ad = exp(-dt / p->tau_ampa_decay);
    const double k_nr = exp(-dt / p->tau_nmda_rise), k_nd = exp(-dt / p->tau_nmda_decay);
    const double k_gr = exp(-dt / p->tau_gaba_rise), k_gd = exp(-dt / p->tau_gaba_decay);

    double v[ELM_TEACHER_NUM_COMP], d[ELM_TEACHER_NUM_COMP], b[ELM_TEACHER_NUM_COMP];
    double ar[ELM_TEACHER_NUM_COMP] = {0}, ad[ELM_TEACHER_NUM_COMP] = {0};
    double nr[ELM_TEACHER_NUM_COMP] = {0}, nd[ELM_TEACHER_NUM_COMP] = {0};
    double gr[ELM_TEACHER_NUM_COMP] = {0}, gd[ELM_TEACHER_NUM_COMP] = {0};
    for (int i = 0; i < N; i++)
        v[i] = p->e_leak;
    /* Gates start at their steady state at rest. */
    double am, bm, ah, bh, an, bn, minf, mtau;
    hh_rates(v[0], p->v_t, &am, &bm, &ah, &bh, &an, &bn);
    double gm = am / (am + bm), gh = ah / (ah + bh), gn = an / (an + bn);
    m_current_rates(v[0], p->tau_m_max_ms, &minf, &mtau);
    double gp = minf;
    double g_ahp = 0; /* nS, spike-triggered */
    const double k_ahp = exp(-dt / p->tau_ahp_ms);

    double t_now = 0;
    for (int k = 0; k < T; k++) {
        soma[k] = (float)v[0];
        for (int64_t q = sim->spike_ptr[k]; q < sim->spike_ptr[k + 1]; q++) {
            int id = sim->spike_idx[q];
            if (id >= ELM_TEACHER_NUM_INPUTS) {
                free(soma);
                free(spk);
                return elm__fail(ELM_ERR_ARG, "teacher: input id %d at step %d out of range", id,
                                 k);
            }
            int c = seg_comp[id % ELM_TEACHER_NUM_SEGMENTS];
            if (id < ELM_TEACHER_NUM_SEGMENTS) {
                ar[c] += w_ampa;
                ad[c] += w_ampa;
                nr[c] += w_nmda;
                nd[c] += w_nmda;
            } else {
                gr[c] += w_gaba;
                gd[c] += w_gaba;
            }
        }
        for (int s = 0; s < nsub; s++) {
            double v0_old = v[0];
            /* Somatic gates, Rush-Larsen at the start-of-step voltage. */
            hh_rates(v[0], p->v_t, &am, &bm, &ah, &bh, &an, &bn);
            gm = gate_step(gm, am, bm, dt);
            gh = gate_step(gh, ah, bh, dt);
            gn = gate_step(gn, an, bn, dt);
            m_current_rates(v[0], p->tau_m_max_ms, &minf, &mtau);
            gp = minf + (gp - minf) * exp(-dt / mtau);
            /* Backward Euler: (C/dt + sum g) V' - sum_j g_ax (V'_j) = C/dt V + sum g E. */
            for (int i = 0; i < N; i++) {
                double ga = ad[i] - ar[i];
                double gnm = (nd[i] - nr[i]) * elm_teacher_nmda_block(v[i], p->mg_mM);
                double gg = gd[i] - gr[i];
                double c_dt = cap_c[i] / dt;
                d[i] = c_dt + g_leak[i] + ga + gnm + gg;
                b[i] = c_dt * v[i] + g_leak[i] * p->e_leak + ga * p->e_ampa + gnm * p->e_nmda +
                       gg * p->e_gaba;
            }
            double g_na = p->g_na_nS * gm * gm * gm * gh;
            double g_k = p->g_kdr_nS * gn * gn * gn * gn + p->g_m_nS * gp + g_ahp;
            d[0] += g_na + g_k;
            b[0] += g_na * p->e_na + g_k * p->e_k;
            for (int i = 1; i < N; i++) {
                d[i] += g_ax[i];
                d[comp_parent[i]] += g_ax[i];
            }
            /* Hines elimination: children (higher index) fold into their parents, then the
             * soma is solved and the values propagate back out. Off-diagonals are -g_ax. */
            for (int i = N - 1; i >= 1; i--) {
                double f = g_ax[i] / d[i];
                d[comp_parent[i]] -= f * g_ax[i];
                b[comp_parent[i]] += f * b[i];
            }
            v[0] = b[0] / d[0];
            for (int i = 1; i < N; i++)
                v[i] = (b[i] + g_ax[i] * v[comp_parent[i]]) / d[i];
            g_ahp *= k_ahp;
            for (int i = 0; i < N; i++) {
                ar[i] *= k_ar;
                ad[i] *= k_ad;
                nr[i] *= k_nr;
                nd[i] *= k_nd;
                gr[i] *= k_gr;
                gd[i] *= k_gd;
            }
            t_now = k + (s + 1) * dt;
            if (v0_old < p->spike_threshold_mV && v[0] >= p->spike_threshold_mV) {
                if (nspk == cap) {
                    float *ns = realloc(spk, (size_t)cap * 2 * sizeof *ns);
                    if (!ns) {
                        free(soma);
                        free(spk);
                        return elm__fail(ELM_ERR_NOMEM, "teacher: out of memory");
                    }
                    spk = ns;
                    cap *= 2;
                }
                spk[nspk++] = (float)t_now;
                g_ahp += p->g_ahp_nS;
            }
        }
        if (!isfinite(v[0]) || !isfinite(v[N - 1])) {
            free(soma);
            free(spk);
            return elm__fail(ELM_ERR_NUMERIC, "teacher: voltage became non-finite at %d ms", k);
        }
    }
    free(sim->soma);
    free(sim->out_spike_times);
    sim->soma = soma;
    sim->out_spike_times = spk;
    sim->n_out_spikes = nspk;
    return ELM_OK;
}

uint64_t elm_teacher_sim_seed(uint64_t seed, uint64_t k) {
    /* The first output of a generator seeded (through splitmix64) by seed mixed with k times the
     * golden-ratio constant: neighbouring (seed, k) pairs give unrelated streams. */
    elm__rng r;
    elm__rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ull * (k + 1)));
    return elm__rng_next(&r);
}

elm_status elm_teacher_run(elm_nio_sim *sim, const elm_teacher_params *p,
                           const elm_teacher_input_params *ip, int T, uint64_t seed) {
    memset(sim, 0, sizeof *sim);
    elm_status st = elm_teacher_inputs(sim, ip, T, seed);
    if (st == ELM_OK)
        st = elm_teacher_simulate(sim, p);
    if (st != ELM_OK)
        elm_nio_sim_clear(sim);
    return st;
}
