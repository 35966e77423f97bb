/*
 * metrics.c - the reference's NeuronIO evaluation (see metrics.h for the recipe and its source).
 *
 * Exactness notes. The ROC follows sklearn's roc_curve: scores sorted descending, one point per
 * distinct score, then "drop_intermediate" removes points whose second differences of both the
 * false- and true-positive counts are zero, then (0, 0) is prepended. "TP @ x FP" and
 * "AUC @ x FP" depend on which points survive, so this is reproduced exactly; np.interp's choice
 * at repeated abscissae (the last point with fpr <= x) too. Spike probabilities are computed in
 * float32 as the reference's torch.sigmoid does, so that saturated scores tie the same way.
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double elm_nio_fp_rates[2] = {0.0025, 0.0100};
const char *const elm_nio_metric_names[8] = {
    "AUC",           "AUC @ 0.0025 FP", "AUC @ 0.0100 FP", "TP @ 0.0025 FP",
    "TP @ 0.0100 FP", "soma_RMSE",      "soma_MAE",        "soma_explained_variance_percent"};

double elm_nio_metric_value(const elm_nio_metrics *m, int i) {
    switch (i) {
    case 0: return m->auc;
    case 1: return m->auc_at_fp[0];
    case 2: return m->auc_at_fp[1];
    case 3: return m->tp_at_fp[0];
    case 4: return m->tp_at_fp[1];
    case 5: return m->soma_rmse;
    case 6: return m->soma_mae;
    case 7: return m->soma_ev_percent;
    default: return NAN;
    }
}

void elm_nio_eval_opts_default(elm_nio_eval_opts *o) {
    o->window = 500;
    o->burn_in = 150;
    o->ignore_ms = 500;
    o->min_spikes = 0;
    o->max_spikes = 24;
    o->batch = 16;
    o->max_sims = 0;
}

/* ---- ROC ------------------------------------------------------------------------------------ */

typedef struct scored {
    double score;
    uint8_t label;
} scored;

static int cmp_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

elm_status elm_roc_curve(elm_roc *roc, const uint8_t *label, const double *score, size_t n) {
    memset(roc, 0, sizeof *roc);
    if (n == 0)
        return elm__fail(ELM_ERR_ARG, "ROC curve of no samples");
    scored *s = malloc(n * sizeof *s);
    /* Points: one per distinct score (at most n), plus the leading (0, 0). */
    double *fps = malloc((n + 1) * sizeof *fps), *tps = malloc((n + 1) * sizeof *tps);
    if (!s || !fps || !tps) {
        free(s);
        free(fps);
        free(tps);
        return elm__fail(ELM_ERR_NOMEM, "ROC curve of %zu samples: out of memory", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(score[i])) {
            free(s);
            free(fps);
            free(tps);
            return elm__fail(ELM_ERR_NUMERIC, "ROC curve: score %zu is %g", i, score[i]);
        }
        s[i].score = score[i];
        s[i].label = label[i] ? 1 : 0;
    }
    qsort(s, n, sizeof *s, cmp_desc);
    /* _binary_clf_curve: cumulative counts at the last index of each distinct score. */
    size_t m = 0;
    double tp = 0;
    for (size_t i = 0; i < n; i++) {
        tp += s[i].label;
        if (i == n - 1 || s[i].score != s[i + 1].score) {
            tps[m] = tp;
            fps[m] = (double)(i + 1) - tp;
            m++;
        }
    }
    free(s);
    /* drop_intermediate (counts are exact integers in double, so the tests are exact). */
    size_t k = 0;
    if (m > 2) {
        double pf = fps[0], pt = tps[0]; /* the previous original point */
        k = 1;
        for (size_t i = 1; i + 1 < m; i++) {
            double d2f = (fps[i + 1] - fps[i]) - (fps[i] - pf);
            double d2t = (tps[i + 1] - tps[i]) - (tps[i] - pt);
            pf = fps[i];
            pt = tps[i];
            if (d2f != 0 || d2t != 0) {
                fps[k] = fps[i];
                tps[k] = tps[i];
                k++;
            }
        }
        fps[k] = fps[m - 1];
        tps[k] = tps[m - 1];
        k++;
    } else {
        k = m;
    }
    /* Prepend (0, 0) and normalise. */
    memmove(fps + 1, fps, k * sizeof *fps);
    memmove(tps + 1, tps, k * sizeof *tps);
    fps[0] = tps[0] = 0;
    k++;
    double nf = fps[k - 1], nt = tps[k - 1];
    for (size_t i = 0; i < k; i++) {
        /* No negatives or no positives: sklearn warns and gives NaN; so do we. */
        fps[i] = nf > 0 ? fps[i] / nf : (double)NAN;
        tps[i] = nt > 0 ? tps[i] / nt : (double)NAN;
    }
    roc->n = k;
    roc->fpr = fps;
    roc->tpr = tps;
    return ELM_OK;
}

void elm_roc_free(elm_roc *roc) {
    if (!roc)
        return;
    free(roc->fpr);
    free(roc->tpr);
    memset(roc, 0, sizeof *roc);
}

double elm_roc_auc(const elm_roc *roc) {
    double a = 0;
    for (size_t i = 0; i + 1 < roc->n; i++)
        a += (roc->fpr[i + 1] - roc->fpr[i]) * (roc->tpr[i + 1] + roc->tpr[i]) / 2.0;
    return a;
}

double elm_roc_tp_at_fp(const elm_roc *roc, double fp) {
    size_t best = 0;
    double bd = INFINITY;
    for (size_t i = 0; i < roc->n; i++) {
        double d = fabs(roc->fpr[i] - fp);
        if (d < bd) { /* strict: np.argmin keeps the first minimum */
            bd = d;
            best = i;
        }
    }
    if (best == 0 && roc->n > 1)
        best = 1;
    return roc->tpr[best];
}

/* np.interp(x, fpr, tpr) for a non-decreasing fpr. */
static double interp(const elm_roc *r, double x) {
    size_t n = r->n;
    if (x < r->fpr[0])
        return r->tpr[0];
    if (x > r->fpr[n - 1])
        return r->tpr[n - 1];
    /* j = the last index with fpr[j] <= x */
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (r->fpr[mid] <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t j = lo;
    if (j == n - 1 || r->fpr[j] == x)
        return r->tpr[j];
    double slope = (r->tpr[j + 1] - r->tpr[j]) / (r->fpr[j + 1] - r->fpr[j]);
    return slope * (x - r->fpr[j]) + r->tpr[j];
}

double elm_roc_auc_at_fp(const elm_roc *roc, double fp) {
    enum { NUM = 20000 };
    const double step = 1.0 / (NUM - 1); /* np.linspace(0, 1, 20000) */
    size_t best = 0;
    double bd = INFINITY;
    for (size_t i = 0; i < NUM; i++) {
        double d = fabs((double)i * step - fp);
        if (d < bd) {
            bd = d;
            best = i;
        }
    }
    if (best < 1)
        best = 1;
    if (best > NUM - 1)
        best = NUM - 1;
    double sum = 0;
    for (size_t i = 0; i < best; i++)
        sum += interp(roc, (double)i * step);
    return sum / (double)best;
}

/* ---- metrics from predictions ---------------------------------------------------------------- */

void elm_nio_rescale(double *hat, const double *ref, size_t n) {
    if (n == 0)
        return;
    double mh = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        mh += hat[i];
        mr += ref[i];
    }
    mh /= (double)n;
    mr /= (double)n;
    double vh = 0, vr = 0;
    for (size_t i = 0; i < n; i++) {
        vh += (hat[i] - mh) * (hat[i] - mh);
        vr += (ref[i] - mr) * (ref[i] - mr);
    }
    double sh = sqrt(vh / (double)n), sr = sqrt(vr / (double)n);
    /* (hat - m_src) / s_src * s_dst + m_dst, in the reference's order of operations. A constant
     * prediction (s_src = 0) gives NaN there; keep it at the target mean instead. */
    for (size_t i = 0; i < n; i++)
        hat[i] = sh > 0 ? sr * ((hat[i] - mh) / sh) + mr : mr;
}

/* 1 when simulation s (row s of spike_gt, T steps) is scored: its output spike count is in
 * o's min_spikes..max_spikes. */
static int sim_kept(const uint8_t *spike_gt, int s, int T, const elm_nio_eval_opts *o) {
    const size_t row = (size_t)s * (size_t)T;
    int c = 0;
    for (int t = 0; t < T; t++)
        c += spike_gt[row + (size_t)t] != 0;
    return c >= o->min_spikes && c <= o->max_spikes;
}

elm_status elm_nio_metrics_compute(elm_nio_metrics *out, const uint8_t *spike_gt,
                                   const double *spike_hat, const double *soma_gt,
                                   const double *soma_hat, int N, int T,
                                   const elm_nio_eval_opts *o) {
    memset(out, 0, sizeof *out);
    out->num_simulations = N;
    if (N <= 0 || T <= o->ignore_ms)
        return elm__fail(ELM_ERR_ARG, "NeuronIO metrics: %d simulations of %d ms (the first %d "
                                      "ms are ignored)",
                         N, T, o->ignore_ms);
    size_t per = (size_t)(T - o->ignore_ms);
    int kept = 0;
    for (int s = 0; s < N; s++)
        kept += sim_kept(spike_gt, s, T, o);
    out->num_kept = kept;
    if (kept == 0)
        return elm__fail(ELM_ERR_ARG, "NeuronIO metrics: none of the %d simulations has %d..%d "
                                      "output spikes",
                         N, o->min_spikes, o->max_spikes);
    size_t n = (size_t)kept * per;
    uint8_t *lab = malloc(n);
    double *sc = malloc(n * sizeof *sc);
    if (!lab || !sc) {
        free(lab);
        free(sc);
        return elm__fail(ELM_ERR_NOMEM, "NeuronIO metrics: out of memory");
    }
    size_t j = 0;
    double se = 0, ae = 0, md = 0, mg = 0;
    for (int s = 0; s < N; s++) {
        if (!sim_kept(spike_gt, s, T, o))
            continue;
        const size_t row = (size_t)s * (size_t)T;
        for (int t = o->ignore_ms; t < T; t++, j++) {
            lab[j] = spike_gt[row + (size_t)t] != 0;
            sc[j] = spike_hat[row + (size_t)t];
            double d = soma_gt[row + (size_t)t] - soma_hat[row + (size_t)t];
            se += d * d;
            ae += fabs(d);
            md += d;
            mg += soma_gt[row + (size_t)t];
        }
    }
    md /= (double)n;
    mg /= (double)n;
    double vd = 0, vg = 0;
    for (int s = 0; s < N; s++) {
        if (!sim_kept(spike_gt, s, T, o))
            continue;
        const size_t row = (size_t)s * (size_t)T;
        for (int t = o->ignore_ms; t < T; t++) {
            double g = soma_gt[row + (size_t)t], d = g - soma_hat[row + (size_t)t];
            vd += (d - md) * (d - md);
            vg += (g - mg) * (g - mg);
        }
    }
    out->soma_rmse = sqrt(se / (double)n);
    out->soma_mae = ae / (double)n;
    /* sklearn's explained_variance_score, with its force_finite handling of a constant target. */
    out->soma_ev_percent = 100.0 * (vg > 0 ? 1.0 - vd / vg : (vd == 0 ? 1.0 : 0.0));

    elm_roc roc;
    elm_status st = elm_roc_curve(&roc, lab, sc, n);
    free(lab);
    free(sc);
    if (st != ELM_OK)
        return st;
    out->auc = elm_roc_auc(&roc);
    for (int i = 0; i < 2; i++) {
        out->tp_at_fp[i] = elm_roc_tp_at_fp(&roc, elm_nio_fp_rates[i]);
        out->auc_at_fp[i] = elm_roc_auc_at_fp(&roc, elm_nio_fp_rates[i]);
    }
    elm_roc_free(&roc);
    return ELM_OK;
}

/* ---- the whole evaluation ------------------------------------------------------------------ */

/* One evaluation's state: the windows' geometry, targets and predictions (N x T each). */
typedef struct {
    elm_model *m;
    const elm_nio_data *d;
    int N, T, win, burn, stride, W, O, B;
    uint8_t *sg;          /* spike targets */
    double *sh, *vg, *vh; /* spike probabilities, soma targets, soma predictions */
    elm__spike_lists L;   /* a batch of windows as spike lists */
    float *y;             /* (B, win, O) model outputs */
    int *job_sim, *job_k; /* (B) each window's simulation and index in it */
} nio_eval;

/* The model, options and data fit together: e gets N (simulations used), T and the windows. */
static elm_status eval_check(nio_eval *e, const elm_nio_eval_opts *o) {
    const elm_config *cfg = elm_model_config(e->m);
    const int n_in = elm_nio_data_n_in(e->d);
    if (elm_model_dtype(e->m) != ELM_F32)
        return elm__fail(ELM_ERR_ARG, "NeuronIO evaluation needs a float32 model");
    if (cfg->num_input != n_in || cfg->num_output < 2)
        return elm__fail(ELM_ERR_SHAPE,
                         "NeuronIO evaluation: the model has %d inputs and %d "
                         "outputs; the data needs %d inputs and 2 outputs",
                         cfg->num_input, cfg->num_output, n_in);
    const int win = e->win = o->window, burn = e->burn = o->burn_in;
    const int stride = e->stride = win - burn;
    if (win <= 0 || burn < 0 || stride <= 0 || o->batch <= 0)
        return elm__fail(ELM_ERR_ARG, "NeuronIO evaluation: window %d, burn-in %d, batch %d", win,
                         burn, o->batch);
    int N = elm_nio_data_num_sims(e->d);
    if (o->max_sims > 0 && o->max_sims < N)
        N = o->max_sims;
    elm_nio_view v;
    elm_status st = elm_nio_data_sim(e->d, 0, &v);
    if (st != ELM_OK)
        return st;
    const int T = v.T;
    char name[600];
    if (T < win)
        return elm__fail(ELM_ERR_SHAPE,
                         "NeuronIO evaluation: %s has %d ms, shorter than the %d "
                         "ms window (the simulations of a data set are all as "
                         "long as its first)",
                         elm_nio_view_name(&v, name, sizeof name), T, win);
    for (int s = 1; s < N; s++) {
        if ((st = elm_nio_data_sim(e->d, s, &v)) != ELM_OK)
            return st;
        if (v.T != T)
            return elm__fail(ELM_ERR_SHAPE,
                             "NeuronIO evaluation: %s has %d ms, the data set's "
                             "first simulation %d",
                             elm_nio_view_name(&v, name, sizeof name), v.T, T);
    }
    e->N = N;
    e->T = T;
    /* The reference's num_test_splits = int(2 + (T - window) / (window - burn_in)). */
    e->W = (int)(2.0 + (double)(T - win) / (double)stride);
    e->O = cfg->num_output;
    e->B = o->batch;
    return ELM_OK;
}

/* The targets: the clipped, centred soma voltage and the 1 ms bins of the output spikes. */
static elm_status eval_targets(nio_eval *e) {
    const int T = e->T;
    elm_nio_view v;
    elm_status st = ELM_OK;
    for (int s = 0; s < e->N && st == ELM_OK; s++) {
        if ((st = elm_nio_data_sim(e->d, s, &v)) != ELM_OK)
            break;
        const size_t row = (size_t)s * (size_t)T;
        for (int t = 0; t < T; t++) {
            double u = (double)elm_nio_view_soma(&v, t);
            if (u > ELM_NIO_SOMA_THRESHOLD)
                u = ELM_NIO_SOMA_THRESHOLD;
            e->vg[row + (size_t)t] = u - ELM_NIO_SOMA_BIAS;
        }
        for (int i = 0; i < v.n_out_spikes; i++) {
            int bin = elm_nio_spike_bin((double)v.out_spike_times[i]);
            if (bin >= 0 && bin < T)
                e->sg[row + (size_t)bin] = 1;
        }
    }
    return st;
}

/* Windows j0 .. j0 + nb - 1 (window j: simulation j / W, index j % W) as spike lists in e->L. */
static elm_status eval_fill(nio_eval *e, long j0, int nb) {
    const int win = e->win;
    elm_nio_view v;
    elm_status st = elm__spike_lists_rows(&e->L, (size_t)nb * (size_t)win);
    for (int b = 0; b < nb && st == ELM_OK; b++) {
        e->job_sim[b] = (int)((j0 + b) / e->W);
        e->job_k[b] = (int)((j0 + b) % e->W);
        if ((st = elm_nio_data_sim(e->d, e->job_sim[b], &v)) != ELM_OK)
            break;
        int64_t *ptr = e->L.ptr + (size_t)b * (size_t)win;
        int64_t nnz = elm_nio_window_nnz(&v, e->job_k[b] * e->stride, win);
        if (nnz < 0) {
            char vname[600];
            st = elm__fail(ELM_ERR_FORMAT, "%s: corrupt row pointers",
                           elm_nio_view_name(&v, vname, sizeof vname));
            break;
        }
        if ((st = elm__spike_lists_reserve(&e->L, (size_t)ptr[0] + (size_t)nnz)) == ELM_OK)
            st = elm_nio_fill_window_sparse(&v, e->job_k[b] * e->stride, win, ptr[0], ptr + 1,
                                            e->L.idx, e->L.val, e->L.cap, NULL, 1);
    }
    return st;
}

/* The predictions of the nb windows in e->y into sh and vh: a window's steps after the burn-in
 * (all of the first window's, and the last one's up to T). */
static elm_status eval_store(nio_eval *e, int nb) {
    const int T = e->T, W = e->W, win = e->win, burn = e->burn, O = e->O;
    for (int b = 0; b < nb; b++) {
        const int k = e->job_k[b], start = k * e->stride;
        int lo, hi, src;
        if (k == 0) {
            lo = 0;
            hi = win;
            src = 0;
        } else {
            lo = start + burn;
            hi = k == W - 1 ? T : start + win;
            src = burn;
        }
        if (hi > T)
            hi = T;
        const size_t row = (size_t)e->job_sim[b] * (size_t)T;
        const float *yb = e->y + (size_t)b * (size_t)win * (size_t)O;
        for (int t = lo; t < hi; t++) {
            const float *yt = yb + (size_t)(src + t - lo) * (size_t)O;
            /* float32 as torch.sigmoid and the division by the 0.1 scale are computed */
            float p = 1.0f / (1.0f + expf(-yt[0]));
            float vs = yt[1] / (float)ELM_NIO_SOMA_SCALE;
            if (!isfinite(yt[0]) || !isfinite(yt[1]))
                return elm__fail(ELM_ERR_NUMERIC,
                                 "NeuronIO evaluation: the model output is "
                                 "not finite (simulation %d, step %d)",
                                 e->job_sim[b], t);
            e->sh[row + (size_t)t] = (double)p;
            e->vh[row + (size_t)t] = (double)vs;
        }
    }
    return ELM_OK;
}

elm_status elm_nio_evaluate(elm_nio_metrics *out, elm_model *m, const elm_nio_data *d,
                            const elm_nio_eval_opts *o) {
    memset(out, 0, sizeof *out);
    nio_eval e = {.m = m, .d = d};
    elm_status st = eval_check(&e, o);
    if (st != ELM_OK)
        return st;
    const int N = e.N, T = e.T, B = e.B;
    const size_t NT = (size_t)N * (size_t)T;
    e.sg = calloc(NT, 1);
    e.sh = calloc(NT, sizeof *e.sh);
    e.vg = calloc(NT, sizeof *e.vg);
    e.vh = calloc(NT, sizeof *e.vh);
    /* The windows go to the model as spike lists (bitwise the dense windows' results). */
    e.y = malloc((size_t)B * (size_t)e.win * (size_t)e.O * sizeof *e.y);
    e.job_sim = malloc((size_t)B * sizeof *e.job_sim);
    e.job_k = malloc((size_t)B * sizeof *e.job_k);
    if (!e.sg || !e.sh || !e.vg || !e.vh || !e.y || !e.job_sim || !e.job_k)
        st = elm__fail(ELM_ERR_NOMEM, "NeuronIO evaluation of %d simulations: out of memory", N);
    if (st == ELM_OK)
        st = eval_targets(&e);
    /* Predictions, B windows at a time (each window starts from a zero state). */
    const long jobs = (long)N * e.W;
    for (long j0 = 0; j0 < jobs && st == ELM_OK; j0 += B) {
        int nb = (int)(jobs - j0 < B ? jobs - j0 : B);
        st = eval_fill(&e, j0, nb);
        elm_sparse_input xs = elm__spike_lists_input(&e.L);
        if (st == ELM_OK && (st = elm_model_forward_sparse(m, &xs, e.y, nb, e.win)) == ELM_OK)
            st = eval_store(&e, nb);
    }
    /* The per-file rescale of the predicted soma (the reference's kept quirk). */
    for (int f = 0; f < elm_nio_data_num_files(d) && st == ELM_OK; f++) {
        int first = elm_nio_data_file_first(d, f), cnt = elm_nio_data_file_count(d, f);
        if (first >= N)
            break;
        if (first + cnt > N)
            cnt = N - first;
        size_t off = (size_t)first * (size_t)T, len = (size_t)cnt * (size_t)T;
        elm_nio_rescale(e.vh + off, e.vg + off, len);
    }
    if (st == ELM_OK)
        st = elm_nio_metrics_compute(out, e.sg, e.sh, e.vg, e.vh, N, T, o);
    free(e.sg);
    free(e.sh);
    free(e.vg);
    free(e.vh);
    elm__spike_lists_free(&e.L);
    free(e.y);
    free(e.job_sim);
    free(e.job_k);
    return st;
}
